// The request stats filter: counts every request (`http.requests`), every response the router starts by status class
// (`http.responses.2xx`, ...), and every local reply by reason (`http.local_replies.<reason>`), into the listener's
// HTTP counters. A cross-cutting concern, so a filter around the router rather than code inside it.
//
// With an observer (metrics or access logs on: src/telemetry/), the same wrapper also produces the request's one
// observation (RequestObservation: status, bytes each way, timings, local reply, downstream abort, gRPC status) and
// hands it to the observer exactly once, when the request ends: the response's end, a local reply, a reset, a tunnel,
// or the client going away. The responder itself is the observation (no second object per request); what the router
// learns (the upstream host, attempts, why it reset a response) is read from the RequestContext.
import { monotonicMs } from '../../core/monotonic-clock.js';
import type { L7Stats } from '../engine/engine-core.js';
import { headerValue } from '../http/headers.js';
import type { AbortWatcher, RequestContext } from '../request-context.js';
import type { DownstreamResponder, HttpFilter, LocalReply, LocalReplyReason } from '../request-types.js';

const CLASS_NAMES = ['http.responses.1xx', 'http.responses.1xx', 'http.responses.2xx', 'http.responses.3xx', 'http.responses.4xx', 'http.responses.5xx'];

function className(statusCode: number): string {
  return CLASS_NAMES[Math.floor(statusCode / 100)] ?? `http.responses.${Math.floor(statusCode / 100)}xx`;
}

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
    if (ok) this.#stats.increment(className(statusCode));
    return ok;
  }
  write(chunk: Buffer): boolean { return this.#res.write(chunk); }
  flush(): void { this.#res.flush(); }
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

/** How a request ended, as observed around the router (read it inside the observer call, or keep the object). */
export interface RequestObservation {
  readonly req: RequestContext;
  /** monotonicMs() at the request head (the filter's entry). */
  readonly startedAt: number;
  /** monotonicMs() when the response head went out (0: none did). */
  readonly firstByteAt: number;
  /** monotonicMs() when the request ended. */
  readonly endedAt: number;
  /** The status sent downstream (0: none was: reset or abandoned before a response). */
  readonly status: number;
  /** grpc-status of a gRPC response (trailers, or a trailers-only head), -1 when none. */
  readonly grpcStatus: number;
  /** Body bytes read from the client. */
  readonly requestBytes: number;
  /** Body bytes sent to the client. */
  readonly responseBytes: number;
  /** The local reply that answered the request, if one did. */
  readonly localReplyReason: LocalReplyReason | undefined;
  /** The client went away before the request was done. */
  readonly downstreamAborted: boolean;
  /** The exchange became a tunnel (Upgrade, CONNECT). */
  readonly tunneled: boolean;
  /** The response was reset after it started (or instead of one). */
  readonly wasReset: boolean;
}

export type RequestObserver = (o: RequestObservation) => void;

class ObservingResponder implements DownstreamResponder, RequestObservation, AbortWatcher {
  readonly #res: DownstreamResponder;
  readonly #stats: L7Stats;
  readonly #observe: RequestObserver;
  readonly req: RequestContext;
  readonly startedAt: number;
  firstByteAt = 0;
  endedAt = 0;
  status = 0;
  grpcStatus = -1;
  responseBytes = 0;
  localReplyReason: LocalReplyReason | undefined = undefined;
  downstreamAborted = false;
  tunneled = false;
  wasReset = false;
  #over = false;

  constructor(req: RequestContext, res: DownstreamResponder, stats: L7Stats, observe: RequestObserver) {
    this.req = req;
    this.#res = res;
    this.#stats = stats;
    this.#observe = observe;
    this.startedAt = monotonicMs();
  }

  get requestBytes(): number {
    return this.req.downstream.body?.bytesRead ?? 0;
  }

  get headersSent(): boolean { return this.#res.headersSent; }
  informational(statusCode: number, headers: readonly string[]): void { this.#res.informational(statusCode, headers); }

  start(statusCode: number, statusText: string, headers: string[], close: boolean, bodyless: boolean): boolean {
    const ok = this.#res.start(statusCode, statusText, headers, close, bodyless);
    if (ok) {
      this.#stats.increment(className(statusCode));
      this.status = statusCode;
      this.firstByteAt = monotonicMs();
      if (this.req.downstream.grpc) this.#grpcFrom(headers);
    }
    return ok;
  }

  write(chunk: Buffer): boolean {
    this.responseBytes += chunk.length;
    return this.#res.write(chunk);
  }

  flush(): void { this.#res.flush(); }

  onDrain(cb: () => void): void { this.#res.onDrain(cb); }

  end(trailers: readonly string[]): void {
    if (this.req.downstream.grpc && trailers.length > 0) this.#grpcFrom(trailers);
    this.#res.end(trailers);
    this.#finish();
  }

  localReply(reply: LocalReply, grpc: boolean): void {
    this.#stats.increment(`http.local_replies.${reply.reason}`);
    this.localReplyReason = reply.reason;
    this.#res.localReply(reply, grpc);
    if (this.status === 0) {
      // What renderLocalReply sends: a gRPC request gets a trailers-only 200 with the table's grpc-status.
      const trailersOnly = grpc && this.req.downstream.protocol === 'h2';
      this.status = trailersOnly ? 200 : reply.status;
      if (grpc) this.grpcStatus = reply.grpcStatus;
      if (!trailersOnly) this.responseBytes += Buffer.byteLength(reply.body);
      this.firstByteAt = monotonicMs();
    }
    this.#finish();
  }

  reset(h2Code: number): void {
    this.wasReset = true;
    this.#res.reset(h2Code);
    this.#finish();
  }

  tunnel(...args: Parameters<DownstreamResponder['tunnel']>): void {
    this.tunneled = true;
    this.status = args[0];
    this.firstByteAt = monotonicMs();
    this.#res.tunnel(...args);
    this.#finish();
  }

  /** RequestContext.watchAbort: the client went away before the request was done. */
  onDownstreamAbort(): void {
    this.downstreamAborted = true;
    this.#finish();
  }

  #grpcFrom(headers: readonly string[]): void {
    const v = headerValue(headers, 'grpc-status');
    if (v === undefined) return;
    const n = Number(v);
    if (Number.isInteger(n) && n >= 0) this.grpcStatus = n;
  }

  #finish(): void {
    if (this.#over) return;
    this.#over = true;
    this.endedAt = monotonicMs();
    try {
      this.#observe(this);
    } catch (err) {
      // An observer's bug must not fail the request (it is over anyway).
      this.req.downstream.log.error({ event: 'http.observer-error', err, code: 'REMORA_ERR_INTERNAL' }, 'request observer failed');
    }
  }
}

/** The stats filter that also produces each request's observation for `observe` (metrics, access log). */
export function observingRequestStatsFilter(observe: RequestObserver): HttpFilter {
  return (next) => (req, res) => {
    const stats = req.core.stats;
    stats.increment('http.requests');
    const o = new ObservingResponder(req, res, stats, observe);
    req.watchAbort(o);
    next(req, o);
  };
}
