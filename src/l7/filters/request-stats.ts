// The request stats filter: counts every request (`http.requests`), every response the router starts by status class
// (`http.responses.2xx`, ...), and every local reply by reason (`http.local_replies.<reason>`), into the listener's
// HTTP counters. A cross-cutting concern, so a filter around the router rather than code inside it.
import type { L7Stats } from '../engine/engine-core.js';
import type { DownstreamResponder, HttpFilter, LocalReply } from '../request-types.js';

const CLASS_NAMES = ['http.responses.1xx', 'http.responses.1xx', 'http.responses.2xx', 'http.responses.3xx', 'http.responses.4xx', 'http.responses.5xx'];

class CountingResponder implements DownstreamResponder {
  readonly #res: DownstreamResponder;
  readonly #stats: L7Stats;

  constructor(res: DownstreamResponder, stats: L7Stats) {
    this.#res = res;
    this.#stats = stats;
  }

  get headersSent(): boolean { return this.#res.headersSent; }
  informational(statusCode: number, headers: readonly string[]): void { this.#res.informational(statusCode, headers); }
  start(statusCode: number, statusText: string, headers: string[], close: boolean, bodyless: boolean): boolean {
    const ok = this.#res.start(statusCode, statusText, headers, close, bodyless);
    if (ok) this.#stats.increment(CLASS_NAMES[Math.floor(statusCode / 100)] ?? `http.responses.${Math.floor(statusCode / 100)}xx`);
    return ok;
  }
  write(chunk: Buffer): boolean { return this.#res.write(chunk); }
  onDrain(cb: () => void): void { this.#res.onDrain(cb); }
  end(trailers: readonly string[]): void { this.#res.end(trailers); }
  localReply(reply: LocalReply, grpc: boolean): void {
    this.#stats.increment(`http.local_replies.${reply.reason}`);
    this.#res.localReply(reply, grpc);
  }
  reset(h2Code: number): void { this.#res.reset(h2Code); }
  tunnel(...args: Parameters<DownstreamResponder['tunnel']>): void { this.#res.tunnel(...args); }
}

export const requestStatsFilter: HttpFilter = (next) => (req, res) => {
  const stats = req.core.stats;
  stats.increment('http.requests');
  next(req, new CountingResponder(res, stats));
};
