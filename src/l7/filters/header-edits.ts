// The header-edits filter: applies the route's request header edits (remove, then add) to the request before the
// router forwards it, and its response header edits to the response head the router sends downstream. Header names
// are matched case-insensitively; HTTP/2 names are written lower-case. Runs after the route filter.
import type { HeaderMutations } from '../../config/route-spec.js';
import { removeHeader } from '../http/headers.js';
import type { DownstreamResponder, HttpFilter } from '../request-types.js';

/** Edit a flat [name, value, ...] header array in place: remove every header named in `m.remove`, then add. */
export function applyHeaderEdits(headers: string[], m: HeaderMutations, lowerCase: boolean): void {
  for (const name of m.remove) removeHeader(headers, name.toLowerCase());
  for (const [name, value] of m.add) headers.push(lowerCase ? name.toLowerCase() : name, value);
}

/** A responder whose response heads get the route's response header edits. */
class EditedResponder implements DownstreamResponder {
  readonly #res: DownstreamResponder;
  readonly #edits: HeaderMutations;
  readonly #lower: boolean;

  constructor(res: DownstreamResponder, edits: HeaderMutations, lower: boolean) {
    this.#res = res;
    this.#edits = edits;
    this.#lower = lower;
  }

  get headersSent(): boolean { return this.#res.headersSent; }
  informational(statusCode: number, headers: readonly string[]): void { this.#res.informational(statusCode, headers); }
  start(statusCode: number, statusText: string, headers: string[], close: boolean, bodyless: boolean): boolean {
    const edited = [...headers];
    applyHeaderEdits(edited, this.#edits, this.#lower);
    return this.#res.start(statusCode, statusText, edited, close, bodyless);
  }
  write(chunk: Buffer): boolean { return this.#res.write(chunk); }
  flush(): void { this.#res.flush(); }
  onDrain(cb: () => void): void { this.#res.onDrain(cb); }
  end(trailers: readonly string[]): void { this.#res.end(trailers); }
  localReply(...args: Parameters<DownstreamResponder['localReply']>): void { this.#res.localReply(...args); }
  reset(h2Code: number): void { this.#res.reset(h2Code); }
  tunnel(...args: Parameters<DownstreamResponder['tunnel']>): void { this.#res.tunnel(...args); }
}

export const headerEditsFilter: HttpFilter = (next) => (req, res) => {
  const route = req.route;
  if (route === undefined) {
    next(req, res);
    return;
  }
  const lower = req.downstream.protocol === 'h2';
  const q = route.requestHeaders;
  if (q.add.length > 0 || q.remove.length > 0) applyHeaderEdits(req.downstream.headers, q, lower);
  const r = route.responseHeaders;
  next(req, r.add.length > 0 || r.remove.length > 0 ? new EditedResponder(res, r, lower) : res);
};
