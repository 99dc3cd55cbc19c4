// The router: the terminal stage of the request chain. It forwards one request, independent of the downstream
// protocol, to the cluster the route filter chose: pick endpoints, run attempts on the upstream pools, retry, enforce
// timeouts, and either forward the chosen response or answer locally (src/l7/router/local-replies.ts).
//
// Attempt rules:
// - The response of an attempt is *committed* (sent downstream) as soon as its head arrives, unless the retry policy
//   wants another attempt for that status and the request can be replayed. After the commit, an upstream failure can
//   only reset the downstream (HTTP/1.1: close; HTTP/2: RST_STREAM).
// - Stale connection: a request that failed on a *reused* HTTP/1.1 connection before any byte of the response
//   arrived (the server closed the idle connection as we wrote: Envoy's "503 UC"), or that an HTTP/2 server refused
//   (REFUSED_STREAM, GOAWAY), is sent once more on a fresh connection whatever its method, when its body is still
//   replayable. This retry is not a policy attempt and is not reported to the cluster's health.
// - Policy retries (the runtime's RetryDecider) re-pick the endpoint (preferring untried ones when the policy says
//   so), wait the backoff, need a breaker 'retry' slot, and replay the body.
// - Timeouts: the route timeout runs from the request head to the end of the response (0 = none); the per-try timeout
//   from the start of an attempt to its response head (0 = none). Tunnels stop both at the 101 / 2xx.
// Every attempt's outcome goes to the cluster (outlier detection, load-aware balancing); a connect failure is
// counted there by the connect path itself, never twice.
import { monotonicMs } from '../../core/monotonic-clock.js';
import { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_REFUSED_STREAM } from '../http/http2-codes.js';
import { errorCodeOf } from '../../core/errors.js';
import type { AttemptOutcome } from '../../upstream/health/attempt-outcome.js';
import type { ClusterView, PickedEndpoint } from '../../upstream/cluster.js';
import { fromH2Headers, headerValue, stripHopByHop, toH2Headers } from '../http/headers.js';
import type { Socket } from 'node:net';
import type { AttemptControl, UpstreamFailure, UpstreamHandler, UpstreamProtocol, UpstreamRequest, UpstreamResponse } from '../pool/pool-types.js';
import type { RequestContext } from '../request-context.js';
import type { DownstreamResponder, ForwardDecision, HttpHandler, LocalReplyReason } from '../request-types.js';
import { requestHashKey } from './hash-key.js';
import { replyLocally } from './local-replies.js';

function grpcStatusOf(headers: readonly string[]): number | undefined {
  const v = headerValue(headers, 'grpc-status');
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isInteger(n) ? n : undefined;
}

/**
 * One attempt of an exchange, and the pool's handler for it: one object per attempt, whose events go to the exchange
 * with the attempt they belong to (an event of an attempt that is no longer the current one is ignored there).
 */
class Attempt implements UpstreamHandler {
  readonly #exchange: Exchange;
  readonly endpoint: PickedEndpoint;
  readonly startedAt: number;
  control: AttemptControl | undefined = undefined;
  over = false;
  /** Its outcome went to the cluster (report), or it was abandoned (abandon): the pick is settled. */
  settled = false;

  constructor(exchange: Exchange, endpoint: PickedEndpoint) {
    this.#exchange = exchange;
    this.endpoint = endpoint;
    this.startedAt = monotonicMs();
  }

  onInformational(statusCode: number, headers: string[]): void { this.#exchange.attemptInformational(this, statusCode, headers); }
  onResponse(res: UpstreamResponse): void { this.#exchange.attemptResponse(this, res); }
  onData(chunk: Buffer): boolean { return this.#exchange.attemptData(this, chunk); }
  onEnd(trailers: string[]): void { this.#exchange.attemptEnd(this, trailers); }
  onReadEnd(): void { this.#exchange.attemptReadEnd(this); }
  onTunnel(res: UpstreamResponse, socket: Socket, rest: Buffer): void { this.#exchange.attemptTunnel(this, res, socket, rest); }
  onError(f: UpstreamFailure): void { this.#exchange.attemptError(this, f); }
}

function flushResponse(res: DownstreamResponder): void {
  res.flush();
}

/** The router as the terminal HttpHandler: one Exchange per request. */
export const routerHandler: HttpHandler = (req, res) => {
  new Exchange(req, res).start();
};

export class Exchange {
  readonly #ctx: RequestContext;
  readonly #res: DownstreamResponder;
  /** The request as the engine received it (ctx.downstream, read on every attempt and response: a field, not a getter). */
  readonly #req: RequestContext['downstream'];
  #decision!: ForwardDecision;
  #cluster!: ClusterView;
  #protocol: UpstreamProtocol = 'http1';
  #base!: Omit<UpstreamRequest, 'body'>;
  #release: (() => void) | undefined;
  #attempts = 0;
  #staleRetried = false;
  /** The first attempt's endpoint key; the set of every key tried is made only when a second attempt needs it. */
  #firstTried: string | undefined;
  #tried: Set<string> | undefined;
  #current: Attempt | undefined;
  #routeTimer: NodeJS.Timeout | undefined;
  #tryTimer: NodeJS.Timeout | undefined;
  #backoffTimer: NodeJS.Timeout | undefined;
  #committed = false;
  #done = false;

  constructor(ctx: RequestContext, res: DownstreamResponder) {
    this.#ctx = ctx;
    this.#res = res;
    this.#req = ctx.downstream;
  }

  get done(): boolean {
    return this.#done;
  }

  start(): void {
    this.#ctx.onAbort((h2Code) => { this.downstreamAborted(h2Code); });
    try {
      this.#start();
    } catch (err) {
      // A policy or a bug threw: this request fails, the process and the connection's other requests do not.
      this.#ctx.core.stats.increment('errors.REMORA_ERR_INTERNAL');
      this.#req.log.error({ err, code: 'REMORA_ERR_INTERNAL' }, 'request handling failed');
      if (!this.#done) this.#reply('upstream-reset', err);
    }
  }

  #start(): void {
    const ctx = this.#ctx;
    const decision = ctx.route;
    const cluster = ctx.cluster;
    if (decision === undefined || cluster === undefined) {
      this.#reply('no-route', undefined);
      return;
    }
    this.#decision = decision;
    this.#cluster = cluster;
    const downstreamProto: UpstreamProtocol = this.#req.protocol === 'h2' ? 'http2' : 'http1';
    this.#protocol = this.#protocolFor(cluster.protocol === 'downstream' ? downstreamProto : cluster.protocol);
    const release = cluster.admit('request');
    if (release === undefined) {
      this.#reply('circuit-open', undefined);
      return;
    }
    this.#release = release;
    this.#base = this.#buildUpstreamRequest(this.#protocol);
    if (decision.timeoutMs > 0) {
      this.#routeTimer = setTimeout(() => this.#onRouteTimeout(), decision.timeoutMs);
    }
    this.#runAttempt(false, undefined);
  }

  /** The downstream went away (client closed / reset the stream). */
  downstreamAborted(h2Code?: number): void {
    if (this.#done) return;
    this.#ctx.core.stats.increment('http.downstream_aborts');
    this.#abortAttempt(h2Code ?? NGHTTP2_CANCEL);
    this.#finish();
  }

  // ---------------------------------------------------------------------------------------------------------------

  /** gRPC needs HTTP/2 upstream; tunnels need HTTP/1.1 (no extended CONNECT upstream). */
  #protocolFor(p: UpstreamProtocol): UpstreamProtocol {
    if (this.#req.tunnel) return 'http1';
    if (this.#req.grpc) return 'http2';
    return p;
  }

  #buildUpstreamRequest(protocol: UpstreamProtocol): Omit<UpstreamRequest, 'body'> {
    const req = this.#req;
    const body = req.body;
    const bodyLength = body?.length;
    if (protocol === 'http1') {
      let headers = req.headers;
      if (req.protocol === 'h2') {
        headers = fromH2Headers(req.headers);
        if (headerValue(headers, 'host') === undefined && req.authority !== '') headers.unshift('host', req.authority);
      }
      return { method: req.method, target: req.target, authority: req.authority, scheme: req.scheme, headers, bodyLength, tunnel: req.tunnel };
    }
    // HTTP/2 upstream
    let target = req.target;
    let authority = req.authority;
    let headers = req.headers;
    if (req.protocol === 'http/1.1') {
      headers = toH2Headers(req.headers);
      if (req.method !== 'CONNECT' && target.charCodeAt(0) !== 47 && target !== '*') {
        try {
          const u = new URL(target);
          target = `${u.pathname}${u.search}`;
          authority = u.host;
        } catch {
          // leave as is: the upstream will answer 400
        }
      }
    }
    return { method: req.method, target, authority, scheme: req.scheme, headers, bodyLength, tunnel: false };
  }

  /** Every endpoint key tried so far (undefined before the first attempt). */
  #triedKeys(): Set<string> | undefined {
    if (this.#tried === undefined && this.#firstTried !== undefined) this.#tried = new Set([this.#firstTried]);
    return this.#tried;
  }

  #pick(): PickedEndpoint | undefined {
    const d = this.#req;
    return this.#cluster.pickForRequest({
      hashKey: requestHashKey(this.#decision.hashOn, this.#ctx.head),
      sourceAddress: d.conn.sourceAddress === '' ? undefined : d.conn.sourceAddress,
      exclude: this.#decision.retry.preferOtherHosts ? this.#triedKeys() : undefined,
      originalDst: d.conn.originalDst,
    });
  }

  /** Start an attempt. `stale`: the transparent retry on a fresh connection of the given endpoint. */
  #runAttempt(stale: boolean, endpoint: PickedEndpoint | undefined): void {
    if (this.#done) return;
    const ep = endpoint ?? this.#pick();
    if (ep === undefined) {
      this.#reply('no-healthy-upstream', undefined);
      return;
    }
    if (!stale) this.#attempts++;
    this.#ctx.attempts = this.#attempts;
    this.#ctx.upstreamHost = ep.key;
    if (this.#firstTried === undefined) this.#firstTried = ep.key;
    else this.#triedKeys()?.add(ep.key);
    const body = this.#req.body;
    const reader = body === undefined ? undefined : body.reader();
    if (body !== undefined && reader === undefined) {
      // Cannot happen: retries are only started while the body is replayable.
      this.#reply('upstream-reset', undefined);
      return;
    }
    const attempt = new Attempt(this, ep);
    this.#current = attempt;
    const perTry = this.#decision.retry.perTryTimeoutMs;
    if (perTry > 0) this.#tryTimer = setTimeout(() => this.#onTryTimeout(attempt), perTry);
    // Spelled out, not `{ ...base, body }`: a spread copies the base's shape and then adds `body` through V8's slow
    // transition path, measurably on every request (docs/performance-notes.md, "Issue 15, seventh part").
    const b = this.#base;
    const request: UpstreamRequest = {
      method: b.method, target: b.target, authority: b.authority, scheme: b.scheme, headers: b.headers, body: reader,
      bodyLength: b.bodyLength, tunnel: b.tunnel,
    };
    const control = this.#ctx.core.pools.dispatch(
      this.#cluster,
      ep,
      this.#protocol,
      request,
      attempt,
      stale,
      this.#cluster,
    );
    if (!attempt.over) attempt.control = control;
  }

  // ---- the current attempt's events (Attempt) ----

  /** @internal */
  attemptInformational(a: Attempt, statusCode: number, headers: string[]): void {
    if (this.#current !== a || this.#res.headersSent) return;
    if (statusCode === 100 || statusCode === 102 || statusCode === 103) {
      this.#res.informational(statusCode, this.#toDownstreamHeaders(headers, true));
    }
  }

  /** @internal */
  attemptData(a: Attempt, chunk: Buffer): boolean {
    if (this.#current !== a) return true;
    if (this.#res.write(chunk)) return true;
    this.#res.onDrain(() => {
      if (this.#current === a) a.control?.resume();
    });
    return false;
  }

  /** @internal */
  attemptEnd(a: Attempt, trailers: string[]): void {
    if (this.#current !== a) return;
    a.over = true;
    this.#res.end(this.#toDownstreamTrailers(trailers));
    this.#finish();
  }

  /** @internal */
  attemptTunnel(a: Attempt, res: UpstreamResponse, socket: Socket, rest: Buffer): void {
    if (this.#current !== a) {
      socket.destroy();
      return;
    }
    a.over = true;
    this.#clearTryTimer();
    this.#report(a, { kind: 'response', status: res.statusCode, latencyMs: monotonicMs() - a.startedAt });
    this.#committed = true;
    this.#ctx.core.stats.increment('http.tunnels');
    const headers = stripHopByHop(res.headers, true);
    this.#res.tunnel(res.statusCode, res.statusText, headers, socket, rest);
    this.#finish();
  }

  /** @internal */
  attemptResponse(a: Attempt, res: UpstreamResponse): void {
    if (this.#current !== a) return;
    this.#clearTryTimer();
    const grpcStatus = grpcStatusOf(res.headers);
    const outcome: AttemptOutcome =
      grpcStatus === undefined
        ? { kind: 'response', status: res.statusCode, latencyMs: monotonicMs() - a.startedAt }
        : { kind: 'response', status: res.statusCode, grpcStatus, latencyMs: monotonicMs() - a.startedAt };
    this.#report(a, outcome);
    if (this.#maybeRetry(a, outcome)) return;
    this.#committed = true;
    const headers = this.#toDownstreamHeaders(res.headers, res.hopByHop);
    if (!this.#res.start(res.statusCode, res.statusText, headers, res.close, res.bodyless)) {
      this.#committed = false;
      a.over = true;
      a.control?.abort();
      this.#reply('upstream-reset', new Error('response header not valid downstream'));
      return;
    }
    // The head may be held for the body: it goes out at the end of the upstream's read, or at the next tick when the
    // pool does not say when its reads end.
    if (!res.readEnds) process.nextTick(flushResponse, this.#res);
  }

  /** @internal the upstream read that carried part of the response is processed: send what the responder holds. */
  attemptReadEnd(a: Attempt): void {
    if (this.#current === a && this.#committed && !this.#done) this.#res.flush();
  }

  /** @internal */
  attemptError(a: Attempt, f: UpstreamFailure): void {
    if (this.#current !== a || a.over) return;
    a.over = true;
    this.#clearTryTimer();
    const req = this.#req;
    if (this.#committed || this.#res.headersSent) {
      this.#ctx.core.stats.increment('http.upstream_resets_after_response');
      req.log.debug({ err: f.error, requestId: this.#ctx.requestId }, 'upstream failed after the response started');
      this.#ctx.resetCause = 'upstream-reset';
      this.#res.reset(f.h2Code !== undefined && f.h2Code !== 0 ? f.h2Code : NGHTTP2_INTERNAL_ERROR);
      this.#finish();
      return;
    }
    if (f.kind === 'overflow') {
      this.#reply('circuit-open', f.error);
      return;
    }
    const staleConnection = f.kind === 'reset' && !f.responseBytes && f.reusedConnection;
    if ((staleConnection || f.refused) && !this.#staleRetried && this.#replayable()) {
      this.#staleRetried = true;
      this.#ctx.core.stats.increment(staleConnection ? 'http.retries.stale_connection' : 'http.retries.refused_stream');
      req.log.debug({ err: f.error, requestId: this.#ctx.requestId }, 'retrying on a fresh connection');
      this.#runAttempt(true, a.endpoint);
      return;
    }
    // Counted by code like every per-connection error: ECONNREFUSED, REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT, ECONNRESET...
    this.#ctx.core.stats.increment(`errors.${f.kind === 'protocol-error' ? 'REMORA_ERR_UPSTREAM_RESET' : errorCodeOf(f.error)}`);
    const outcome: AttemptOutcome =
      f.kind === 'connect-failure' ? { kind: 'connect-failure' } : { kind: 'reset', bytesSent: f.requestSent && !f.refused };
    this.#report(a, outcome);
    if (this.#maybeRetry(a, outcome)) return;
    if (f.refused && req.protocol === 'h2') {
      // Let the client retry: the upstream did not process the request.
      this.#ctx.core.stats.increment('http.refused_streams');
      this.#ctx.resetCause = 'upstream-refused';
      this.#res.reset(NGHTTP2_REFUSED_STREAM);
      this.#finish();
      return;
    }
    this.#reply(f.kind === 'connect-failure' ? 'upstream-connect-failure' : 'upstream-reset', f.error);
  }

  #onTryTimeout(a: Attempt): void {
    this.#tryTimer = undefined;
    if (this.#current !== a || a.over) return;
    a.over = true;
    a.control?.abort();
    this.#ctx.core.stats.increment('http.per_try_timeouts');
    const outcome: AttemptOutcome = { kind: 'timeout' };
    this.#report(a, outcome);
    if (this.#maybeRetry(a, outcome)) return;
    this.#reply('upstream-timeout', undefined);
  }

  #onRouteTimeout(): void {
    this.#routeTimer = undefined;
    if (this.#done) return;
    this.#ctx.core.stats.increment('http.route_timeouts');
    this.#abortAttempt(NGHTTP2_CANCEL);
    if (this.#committed || this.#res.headersSent) {
      this.#ctx.resetCause = 'upstream-timeout';
      this.#res.reset(NGHTTP2_CANCEL);
      this.#finish();
      return;
    }
    this.#reply('upstream-timeout', undefined);
  }

  #replayable(): boolean {
    const b = this.#req.body;
    return b === undefined || b.replayable;
  }

  /** Ask the retry policy; on yes schedule the next attempt and return true. */
  #maybeRetry(a: Attempt, outcome: AttemptOutcome): boolean {
    const decider = this.#ctx.runtime.retry;
    const policy = this.#decision.retry;
    if (this.#attempts >= policy.maxAttempts || !this.#replayable() || this.#req.tunnel && outcome.kind === 'response') {
      return false;
    }
    let d;
    try {
      d = decider.decide(policy, outcome, { attempts: this.#attempts, method: this.#req.method, replayable: this.#replayable() });
    } catch (err) {
      this.#req.log.error({ err }, 'retry policy threw');
      return false;
    }
    if (!d.retry) {
      if (d.reply !== undefined && outcome.kind !== 'response') {
        a.over = true;
        this.#reply(d.reply, undefined);
        return true;
      }
      return false;
    }
    const admitted = this.#admitRetry();
    if (admitted === 'retry-budget-exhausted') {
      this.#ctx.core.stats.increment('http.retries.budget_exhausted');
      if (outcome.kind === 'response') return false; // the upstream's own answer goes to the client
      a.over = true;
      this.#reply('retry-budget-exhausted', undefined);
      return true;
    }
    if (admitted === 'circuit-open') {
      this.#ctx.core.stats.increment('http.retries.breaker_denied');
      return false;
    }
    const releaseRetry = admitted;
    a.over = true;
    a.control?.abort();
    this.#current = undefined;
    this.#ctx.core.stats.increment('http.retries');
    const go = (): void => {
      this.#backoffTimer = undefined;
      releaseRetry?.();
      this.#runAttempt(false, undefined);
    };
    if (d.backoffMs > 0) this.#backoffTimer = setTimeout(go, d.backoffMs);
    else go();
    return true;
  }

  /** The cluster's breaker slot for a retry, or why it was refused. */
  #admitRetry(): (() => void) | 'circuit-open' | 'retry-budget-exhausted' {
    return this.#cluster.admitRetry();
  }

  #report(a: Attempt, outcome: AttemptOutcome): void {
    a.settled = true;
    try {
      this.#cluster.report(a.endpoint, outcome);
    } catch (err) {
      this.#req.log.error({ err }, 'outcome report threw');
    }
  }

  /**
   * A response's (or 1xx's) fields as the downstream gets them: from an HTTP/1.1 upstream without its hop-by-hop
   * fields (`hopByHop`: the parser saw one; when it saw none the array goes on as it is, not copied).
   */
  #toDownstreamHeaders(headers: string[], hopByHop: boolean): string[] {
    const fromH1 = this.#protocol === 'http1';
    const h = fromH1 && hopByHop ? stripHopByHop(headers, false) : headers;
    if (this.#req.protocol === 'h2') return fromH1 ? toH2Headers(h) : h;
    return h;
  }

  #toDownstreamTrailers(trailers: string[]): string[] {
    if (trailers.length === 0) return trailers;
    if (this.#req.protocol === 'h2' && this.#protocol === 'http1') return toH2Headers(trailers);
    return trailers;
  }

  #clearTryTimer(): void {
    if (this.#tryTimer !== undefined) {
      clearTimeout(this.#tryTimer);
      this.#tryTimer = undefined;
    }
  }

  #abortAttempt(h2Code: number): void {
    const a = this.#current;
    if (a !== undefined && !a.over) {
      a.over = true;
      a.control?.abort(h2Code);
    }
    if (a !== undefined && !a.settled) this.#abandon(a);
    this.#current = undefined;
  }

  /** The attempt's pick gets no outcome (client gone, route timeout, pool overflow): tell the cluster. */
  #abandon(a: Attempt): void {
    a.settled = true;
    try {
      this.#cluster.abandon(a.endpoint);
    } catch (err) {
      this.#req.log.error({ err }, 'abandon threw');
    }
  }

  #reply(reason: LocalReplyReason, cause: unknown): void {
    if (this.#done) return;
    this.#abortAttempt(NGHTTP2_CANCEL);
    replyLocally(this.#ctx, this.#res, reason, cause);
    this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#clearTryTimer();
    if (this.#routeTimer !== undefined) clearTimeout(this.#routeTimer);
    if (this.#backoffTimer !== undefined) clearTimeout(this.#backoffTimer);
    this.#routeTimer = undefined;
    this.#backoffTimer = undefined;
    this.#current = undefined;
    const release = this.#release;
    this.#release = undefined;
    release?.();
    this.#req.body?.dispose();
    this.#ctx.finish();
  }
}

