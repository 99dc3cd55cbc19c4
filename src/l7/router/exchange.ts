// One proxied request, independent of the downstream protocol: route it, pick endpoints, run attempts on the
// upstream pools, retry, enforce timeouts, and either forward the chosen response or answer locally.
//
// Attempt rules:
// - The response of an attempt is *committed* (sent downstream) as soon as its head arrives, unless the retry policy
//   wants another attempt for that status and the request can be replayed. After the commit, an upstream failure can
//   only reset the downstream (HTTP/1.1: close; HTTP/2: RST_STREAM).
// - Stale connection: a request that failed on a *reused* HTTP/1.1 connection before any byte of the response
//   arrived (the server closed the idle connection as we wrote: Envoy's "503 UC"), or that an HTTP/2 server refused
//   (REFUSED_STREAM, GOAWAY), is sent once more on a fresh connection whatever its method, when its body is still
//   replayable. This retry is not a policy attempt and is not reported to the outlier detector.
// - Policy retries (RetryDecider) re-pick the endpoint (preferring untried ones when the policy says so), wait the
//   backoff, need a breaker 'retry' slot, and replay the body.
// - Timeouts: the route timeout runs from the request head to the end of the response (0 = none); the per-try timeout
//   from the start of an attempt to its response head (0 = none). Tunnels stop both at the 101 / 2xx.
import { performance } from 'node:perf_hooks';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import { errorCodeOf } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { LocalReply, LocalReplyReason, RequestHead, RouteDecision } from '../request-types.js';
import type { AttemptOutcome } from '../../upstream/health/attempt-outcome.js';
import type { HeaderList } from '../../config/route-spec.js';
import {
  PASSTHROUGH_DECISION,
  PASSTHROUGH_SERVICE,
  type EngineCore,
  type HttpConnectionContext,
  type L7Endpoint,
  type UpstreamCluster,
} from '../engine/http-deps.js';
import type { RequestBody } from '../http/request-body.js';
import { fromH2Headers, headerValue, removeHeader, stripHopByHop, toH2Headers } from '../http/headers.js';
import { ensureRequestId } from '../filters/request-id.js';
import type {
  AttemptControl,
  PoolAdmission,
  UpstreamFailure,
  UpstreamHandler,
  UpstreamProtocol,
  UpstreamRequest,
  UpstreamResponse,
} from '../pool/pool-types.js';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_CANCEL } = http2.constants;

export type DownstreamProtocol = 'http/1.1' | 'h2';

/** A request as the downstream engine hands it to the exchange. */
export interface DownstreamRequest {
  readonly protocol: DownstreamProtocol;
  readonly method: string;
  /** HTTP/1.1 request-target as sent, or the HTTP/2 :path. */
  readonly target: string;
  /** Host (HTTP/1.1) or :authority (HTTP/2), as received. */
  readonly authority: string;
  readonly scheme: 'http' | 'https';
  /**
   * Headers to forward, flat: HTTP/1.1 with hop-by-hop fields already removed (case and order as received), HTTP/2
   * lower-case without pseudo-headers. The exchange appends x-request-id and the route's mutations in place.
   */
  readonly headers: string[];
  readonly body: RequestBody | undefined;
  /** An Upgrade or CONNECT request (HTTP/1.1; HTTP/2 CONNECT): the exchange ends with a tunnel. */
  readonly tunnel: boolean;
  readonly grpc: boolean;
  readonly conn: HttpConnectionContext;
  readonly log: Logger;
}

/** How the exchange answers downstream. Header arrays are already in the downstream protocol's conventions. */
export interface DownstreamResponder {
  /** The response head went out: only reset() can end the exchange now. */
  readonly headersSent: boolean;
  informational(statusCode: number, headers: readonly string[]): void;
  /**
   * Send the response head. `close`: the upstream closes its connection after this response (HTTP/1.1 downstream
   * closes too). `bodyless`: nothing follows (HTTP/2 downstream sends END_STREAM with the head). Returns false if the
   * head could not be sent (invalid header): nothing went out.
   */
  start(statusCode: number, statusText: string, headers: string[], close: boolean, bodyless: boolean): boolean;
  /** Returns false when the downstream is full: call onDrain. */
  write(chunk: Buffer): boolean;
  /** Call `cb` once when the downstream can take more. */
  onDrain(cb: () => void): void;
  end(trailers: readonly string[]): void;
  localReply(status: number, reason: LocalReplyReason, body: string, close: boolean, grpc: boolean): void;
  /** Abort the response (HTTP/1.1: close the connection; HTTP/2: RST_STREAM with h2Code). */
  reset(h2Code: number): void;
  /** The upstream accepted the tunnel: hand over (only for tunnel requests). */
  tunnel(statusCode: number, statusText: string, headers: string[], upstream: Socket, rest: Buffer): void;
}

interface ResolvedCluster {
  readonly name: string;
  readonly protocol: UpstreamProtocol;
  readonly cluster: UpstreamCluster | undefined;
}

function endpointKeyOf(e: L7Endpoint): string {
  return e.key ?? (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`);
}

/** RequestHead with the header tuples built only when a policy reads them. */
class Head implements RequestHead {
  readonly method: string;
  readonly target: string;
  readonly path: string;
  readonly query: string;
  readonly authority: string;
  readonly protocol: 'http/1.1' | 'h2';
  readonly sourceAddress: string;
  readonly originalDst: { readonly address: string; readonly port: number };
  readonly #flat: readonly string[];
  #tuples: HeaderList | undefined;

  constructor(req: DownstreamRequest) {
    this.method = req.method;
    this.target = req.target;
    this.protocol = req.protocol;
    this.sourceAddress = req.conn.sourceAddress;
    this.originalDst = req.conn.originalDst;
    this.#flat = req.headers;
    let authority = req.authority;
    let pathAndQuery = req.target;
    if (req.method === 'CONNECT') {
      pathAndQuery = '';
      if (authority === '') authority = req.target;
    } else if (pathAndQuery.charCodeAt(0) !== 47 /* / */ && pathAndQuery !== '*') {
      // absolute-form
      try {
        const u = new URL(pathAndQuery);
        pathAndQuery = `${u.pathname}${u.search}`;
        if (authority === '') authority = u.host;
      } catch {
        // keep it as it came
      }
    }
    const q = pathAndQuery.indexOf('?');
    this.path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
    this.query = q < 0 ? '' : pathAndQuery.slice(q + 1);
    this.authority = authority.toLowerCase();
  }

  get headers(): HeaderList {
    if (this.#tuples === undefined) {
      const t: (readonly [string, string])[] = [];
      for (let i = 0; i < this.#flat.length; i += 2) t.push([this.#flat[i] as string, this.#flat[i + 1] as string]);
      this.#tuples = t;
    }
    return this.#tuples;
  }
}

function applyMutations(headers: string[], m: { readonly add: HeaderList; readonly remove: readonly string[] }, lower: boolean): void {
  for (const name of m.remove) removeHeader(headers, name.toLowerCase());
  for (const [name, value] of m.add) headers.push(lower ? name.toLowerCase() : name, value);
}

function grpcStatusOf(headers: readonly string[]): number | undefined {
  const v = headerValue(headers, 'grpc-status');
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isInteger(n) ? n : undefined;
}

interface Attempt {
  readonly endpoint: L7Endpoint;
  readonly startedAt: number;
  control: AttemptControl | undefined;
  over: boolean;
  /** Its outcome went to the cluster (report), or it was abandoned (abandon): the pick is settled. */
  settled: boolean;
}

type Forward = Extract<RouteDecision, { kind: 'forward' }>;

export class Exchange {
  readonly #core: EngineCore;
  readonly #req: DownstreamRequest;
  readonly #res: DownstreamResponder;
  #head!: Head;
  #decision!: Forward;
  #cluster!: ResolvedCluster;
  #base!: Omit<UpstreamRequest, 'body'>;
  #requestId = '';
  #release: (() => void) | undefined;
  /** The cluster's breaker for the pools' connections and queue (undefined: passthrough / no breaker). */
  #poolAdmit: PoolAdmission | undefined;
  #attempts = 0;
  #staleRetried = false;
  readonly #tried = new Set<string>();
  #current: Attempt | undefined;
  #routeTimer: NodeJS.Timeout | undefined;
  #tryTimer: NodeJS.Timeout | undefined;
  #backoffTimer: NodeJS.Timeout | undefined;
  #committed = false;
  #done = false;

  constructor(core: EngineCore, req: DownstreamRequest, res: DownstreamResponder) {
    this.#core = core;
    this.#req = req;
    this.#res = res;
  }

  get done(): boolean {
    return this.#done;
  }

  start(): void {
    try {
      this.#start();
    } catch (err) {
      // A policy or a bug threw: this request fails, the process and the connection's other requests do not.
      this.#core.stats.increment('errors.REMORA_ERR_INTERNAL');
      this.#req.log.error({ err, code: 'REMORA_ERR_INTERNAL' }, 'request handling failed');
      if (!this.#done) this.#reply('upstream-reset', err);
    }
  }

  #start(): void {
    const core = this.#core;
    const req = this.#req;
    core.stats.increment('http.requests');
    this.#requestId = ensureRequestId(req.headers);
    this.#head = new Head(req);
    let decision: RouteDecision;
    const route = core.deps.route;
    if (route === undefined) {
      decision = PASSTHROUGH_DECISION;
    } else {
      try {
        decision = route(this.#head);
      } catch (err) {
        req.log.error({ err }, 'route policy threw');
        this.#reply('no-route', err);
        return;
      }
    }
    if (decision.kind === 'reply') {
      this.#reply(decision.reply.reason, undefined, decision.reply);
      return;
    }
    this.#decision = decision;
    const resolved = this.#resolveCluster(decision);
    if (resolved === undefined) {
      this.#reply('no-route', undefined);
      return;
    }
    this.#cluster = resolved;
    if (resolved.cluster?.admit !== undefined) {
      const release = resolved.cluster.admit('request');
      if (release === undefined) {
        this.#reply('circuit-open', undefined);
        return;
      }
      this.#release = release;
      this.#poolAdmit = resolved.cluster.admit.bind(resolved.cluster);
    }
    const m = decision.requestHeaders;
    if (m.add.length > 0 || m.remove.length > 0) applyMutations(req.headers, m, req.protocol === 'h2');
    this.#base = this.#buildUpstreamRequest(resolved.protocol);
    if (decision.timeoutMs > 0) {
      this.#routeTimer = setTimeout(() => this.#onRouteTimeout(), decision.timeoutMs);
    }
    this.#runAttempt(false, undefined);
  }

  /** The downstream went away (client closed / reset the stream). */
  downstreamAborted(h2Code?: number): void {
    if (this.#done) return;
    this.#core.stats.increment('http.downstream_aborts');
    this.#abortAttempt(h2Code ?? NGHTTP2_CANCEL);
    this.#finish();
  }

  // ---------------------------------------------------------------------------------------------------------------

  #resolveCluster(d: Forward): ResolvedCluster | undefined {
    const req = this.#req;
    const downstreamProto: UpstreamProtocol = req.protocol === 'h2' ? 'http2' : 'http1';
    if (d.backend.service === PASSTHROUGH_SERVICE) {
      return { name: PASSTHROUGH_SERVICE, protocol: this.#protocolFor(downstreamProto), cluster: undefined };
    }
    const lookup = this.#core.deps.cluster;
    const cluster = lookup === undefined ? undefined : lookup(d.backend, this.#head); // a throw is caught by start()
    if (cluster === undefined) return undefined;
    const p = cluster.protocol === 'downstream' ? downstreamProto : cluster.protocol;
    return { name: cluster.name, protocol: this.#protocolFor(p), cluster };
  }

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

  #pick(): L7Endpoint | undefined {
    const c = this.#cluster.cluster;
    if (c === undefined) return this.#req.conn.originalDst;
    try {
      return c.pick({
        head: this.#head,
        tried: this.#tried,
        preferOtherHosts: this.#decision.retry.preferOtherHosts,
        attempt: this.#attempts + 1,
        hashOn: this.#decision.hashOn,
      });
    } catch (err) {
      this.#req.log.error({ err }, 'endpoint pick threw');
      return undefined;
    }
  }

  /** Start an attempt. `stale`: the transparent retry on a fresh connection of the given endpoint. */
  #runAttempt(stale: boolean, endpoint: L7Endpoint | undefined): void {
    if (this.#done) return;
    const ep = endpoint ?? this.#pick();
    if (ep === undefined) {
      this.#reply('no-healthy-upstream', undefined);
      return;
    }
    if (!stale) this.#attempts++;
    this.#tried.add(endpointKeyOf(ep));
    const body = this.#req.body;
    const reader = body === undefined ? undefined : body.reader();
    if (body !== undefined && reader === undefined) {
      // Cannot happen: retries are only started while the body is replayable.
      this.#reply('upstream-reset', undefined);
      return;
    }
    const attempt: Attempt = { endpoint: ep, startedAt: performance.now(), control: undefined, over: false, settled: false };
    this.#current = attempt;
    const perTry = this.#decision.retry.perTryTimeoutMs;
    if (perTry > 0) this.#tryTimer = setTimeout(() => this.#onTryTimeout(attempt), perTry);
    const request: UpstreamRequest = { ...this.#base, body: reader };
    const control = this.#core.pools.dispatch(
      this.#cluster.name,
      ep,
      this.#cluster.protocol,
      request,
      this.#handlerFor(attempt),
      stale,
      this.#poolAdmit,
    );
    if (!attempt.over) attempt.control = control;
  }

  #handlerFor(a: Attempt): UpstreamHandler {
    return {
      onInformational: (statusCode, headers) => {
        if (this.#current !== a || this.#res.headersSent) return;
        if (statusCode === 100 || statusCode === 102 || statusCode === 103) {
          this.#res.informational(statusCode, this.#toDownstreamHeaders(headers, false));
        }
      },
      onResponse: (res) => this.#onResponse(a, res),
      onData: (chunk) => {
        if (this.#current !== a) return true;
        if (this.#res.write(chunk)) return true;
        this.#res.onDrain(() => {
          if (this.#current === a) a.control?.resume();
        });
        return false;
      },
      onEnd: (trailers) => {
        if (this.#current !== a) return;
        a.over = true;
        this.#res.end(this.#toDownstreamTrailers(trailers));
        this.#finish();
      },
      onTunnel: (res, socket, rest) => {
        if (this.#current !== a) {
          socket.destroy();
          return;
        }
        a.over = true;
        this.#clearTryTimer();
        this.#report(a, { kind: 'response', status: res.statusCode, latencyMs: performance.now() - a.startedAt });
        this.#committed = true;
        this.#core.stats.increment('http.tunnels');
        const headers = stripHopByHop(res.headers, true);
        this.#res.tunnel(res.statusCode, res.statusText, headers, socket, rest);
        this.#finish();
      },
      onError: (f) => this.#onAttemptError(a, f),
    };
  }

  #onResponse(a: Attempt, res: UpstreamResponse): void {
    if (this.#current !== a) return;
    this.#clearTryTimer();
    const grpcStatus = grpcStatusOf(res.headers);
    const outcome: AttemptOutcome =
      grpcStatus === undefined
        ? { kind: 'response', status: res.statusCode, latencyMs: performance.now() - a.startedAt }
        : { kind: 'response', status: res.statusCode, grpcStatus, latencyMs: performance.now() - a.startedAt };
    this.#report(a, outcome);
    if (this.#maybeRetry(a, outcome)) return;
    this.#committed = true;
    let headers = this.#toDownstreamHeaders(res.headers, false);
    const m = this.#decision.responseHeaders;
    if (m.add.length > 0 || m.remove.length > 0) {
      headers = [...headers];
      applyMutations(headers, m, this.#req.protocol === 'h2');
    }
    this.#core.stats.increment(`http.responses.${Math.floor(res.statusCode / 100)}xx`);
    if (!this.#res.start(res.statusCode, res.statusText, headers, res.close, res.bodyless)) {
      this.#committed = false;
      a.over = true;
      a.control?.abort();
      this.#reply('upstream-reset', new Error('response header not valid downstream'));
    }
  }

  #onAttemptError(a: Attempt, f: UpstreamFailure): void {
    if (this.#current !== a || a.over) return;
    a.over = true;
    this.#clearTryTimer();
    const req = this.#req;
    if (this.#committed || this.#res.headersSent) {
      this.#core.stats.increment('http.upstream_resets_after_response');
      req.log.debug({ err: f.error, requestId: this.#requestId }, 'upstream failed after the response started');
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
      this.#core.stats.increment(staleConnection ? 'http.retries.stale_connection' : 'http.retries.refused_stream');
      req.log.debug({ err: f.error, requestId: this.#requestId }, 'retrying on a fresh connection');
      this.#runAttempt(true, a.endpoint);
      return;
    }
    // Counted by code like every per-connection error: ECONNREFUSED, REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT, ECONNRESET...
    this.#core.stats.increment(`errors.${f.kind === 'protocol-error' ? 'REMORA_ERR_UPSTREAM_RESET' : errorCodeOf(f.error)}`);
    const outcome: AttemptOutcome =
      f.kind === 'connect-failure' ? { kind: 'connect-failure' } : { kind: 'reset', bytesSent: f.requestSent && !f.refused };
    this.#report(a, outcome);
    if (this.#maybeRetry(a, outcome)) return;
    if (f.refused && req.protocol === 'h2') {
      // Let the client retry: the upstream did not process the request.
      this.#core.stats.increment('http.refused_streams');
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
    this.#core.stats.increment('http.per_try_timeouts');
    const outcome: AttemptOutcome = { kind: 'timeout' };
    this.#report(a, outcome);
    if (this.#maybeRetry(a, outcome)) return;
    this.#reply('upstream-timeout', undefined);
  }

  #onRouteTimeout(): void {
    this.#routeTimer = undefined;
    if (this.#done) return;
    this.#core.stats.increment('http.route_timeouts');
    this.#abortAttempt(NGHTTP2_CANCEL);
    if (this.#committed || this.#res.headersSent) {
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
    const decider = this.#core.deps.retry;
    const policy = this.#decision.retry;
    if (decider === undefined || this.#attempts >= policy.maxAttempts || !this.#replayable() || this.#req.tunnel && outcome.kind === 'response') {
      return false;
    }
    let d;
    try {
      d = decider.decide(policy, outcome, { attempts: this.#attempts, method: this.#req.method, replayable: this.#replayable(), grpc: this.#req.grpc });
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
      this.#core.stats.increment('http.retries.budget_exhausted');
      if (outcome.kind === 'response') return false; // the upstream's own answer goes to the client
      a.over = true;
      this.#reply('retry-budget-exhausted', undefined);
      return true;
    }
    if (admitted === 'circuit-open') {
      this.#core.stats.increment('http.retries.breaker_denied');
      return false;
    }
    const releaseRetry = admitted;
    a.over = true;
    a.control?.abort();
    this.#current = undefined;
    this.#core.stats.increment('http.retries');
    const go = (): void => {
      this.#backoffTimer = undefined;
      releaseRetry?.();
      this.#runAttempt(false, undefined);
    };
    if (d.backoffMs > 0) this.#backoffTimer = setTimeout(go, d.backoffMs);
    else go();
    return true;
  }

  /** The cluster's breaker slot for a retry: its release (undefined: no breaker), or why it was refused. */
  #admitRetry(): (() => void) | undefined | 'circuit-open' | 'retry-budget-exhausted' {
    const c = this.#cluster.cluster;
    if (c?.admitRetry !== undefined) return c.admitRetry();
    if (c?.admit === undefined) return undefined;
    return c.admit('retry') ?? 'circuit-open';
  }

  #report(a: Attempt, outcome: AttemptOutcome): void {
    a.settled = true;
    const c = this.#cluster.cluster;
    if (c?.report === undefined) return;
    try {
      c.report(a.endpoint, outcome);
    } catch (err) {
      this.#req.log.error({ err }, 'outcome report threw');
    }
  }

  #toDownstreamHeaders(headers: string[], keepUpgrade: boolean): string[] {
    const fromH1 = this.#cluster.protocol === 'http1';
    const h = fromH1 ? stripHopByHop(headers, keepUpgrade) : headers;
    if (this.#req.protocol === 'h2') return fromH1 ? toH2Headers(h) : h;
    return h;
  }

  #toDownstreamTrailers(trailers: string[]): string[] {
    if (trailers.length === 0) return trailers;
    if (this.#req.protocol === 'h2' && this.#cluster.protocol === 'http1') return toH2Headers(trailers);
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
    const c = this.#cluster?.cluster;
    if (c?.abandon === undefined) return;
    try {
      c.abandon(a.endpoint);
    } catch (err) {
      this.#req.log.error({ err }, 'abandon threw');
    }
  }

  #reply(reason: LocalReplyReason, cause: unknown, given?: LocalReply): void {
    if (this.#done) return;
    const r = given ?? this.#core.localReply(reason);
    this.#core.stats.increment(`http.local_replies.${reason}`);
    const req = this.#req;
    req.log.info(
      { reason, status: r.status, requestId: this.#requestId, method: req.method, authority: req.authority, path: this.#head?.path, err: cause },
      'local reply',
    );
    this.#abortAttempt(NGHTTP2_CANCEL);
    if (this.#res.headersSent) this.#res.reset(NGHTTP2_INTERNAL_ERROR);
    else this.#res.localReply(r.status, reason, r.body, r.close, this.#req.grpc);
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
  }
}

