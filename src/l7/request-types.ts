// The vocabulary of the L7 request path: what a downstream engine (engine/http1-engine.ts, engine/http2-engine.ts)
// hands over for each request, how it answers, the route decisions, and the request filter chain
// (src/l7/request-context.ts is the per-request context the chain passes along).
import type { Socket } from 'node:net';
import type { HashOn, HeaderList, HeaderMutations, RetryPolicy, WeightedBackend } from '../config/route-spec.js';
import type { Logger } from '../core/log.js';
import type { RequestBody } from './http/request-body.js';
import type { RequestContext } from './request-context.js';
import type { RouteCounter } from './router/route-counters.js';

/** A request head as routing and balancing read it (built lazily from the downstream request). */
export interface RequestHead {
  readonly method: string;
  /** The request-target as sent (origin-form "/a?b=1", or absolute-form for proxies). */
  readonly target: string;
  /** Path without the query ("/a"). */
  readonly path: string;
  /** Raw query string without "?" ("b=1&c=2"), "" when absent. */
  readonly query: string;
  /** Host header (HTTP/1.1) or :authority (HTTP/2), lower-cased, port kept. */
  readonly authority: string;
  readonly headers: HeaderList;
  readonly protocol: 'http/1.1' | 'h2';
  /** Client address as seen by the proxy (for source-address hashing). */
  readonly sourceAddress: string;
  /** The original destination the app dialed (from SO_ORIGINAL_DST). */
  readonly originalDst: { readonly address: string; readonly port: number };
}

/** Why the proxy answered itself; sent as `x-remora-error: <reason>` with a one-line body. */
export type LocalReplyReason =
  | 'no-route'
  | 'no-healthy-upstream'
  | 'circuit-open'
  | 'upstream-connect-failure'
  | 'upstream-reset'
  | 'upstream-timeout'
  | 'request-timeout'
  | 'bad-request'
  | 'request-smuggling'
  | 'header-too-large'
  | 'retry-budget-exhausted'
  | 'rbac-denied';

export interface LocalReply {
  readonly status: number;
  readonly reason: LocalReplyReason;
  /** One line, ends with "\n" (except rbac-denied: exactly "RBAC: access denied", as Envoy). */
  readonly body: string;
  /** Close the downstream connection after the reply (HTTP/1.1). */
  readonly close: boolean;
  /** The grpc-status of the trailers-only reply to a gRPC request. */
  readonly grpcStatus: number;
}

export interface ForwardDecision {
  readonly kind: 'forward';
  readonly route: string;
  readonly backend: WeightedBackend;
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
  readonly requestHeaders: HeaderMutations;
  readonly responseHeaders: HeaderMutations;
  /** How to hash for consistent-hash balancing, when the service uses it. */
  readonly hashOn?: HashOn;
  /** The requests sent to this backend of this route (named routes, when the runtime counts them). */
  readonly counter?: RouteCounter;
}

export type RouteDecision = ForwardDecision | { readonly kind: 'reply'; readonly reply: LocalReply };

/** What the caller knows about a connection it hands to the HTTP engine. */
export interface HttpConnectionContext {
  /** The sniffer's verdict: HTTP/1.x request line, or the HTTP/2 connection preface. */
  readonly protocol: 'http1' | 'http2';
  /** The address the application dialed (SO_ORIGINAL_DST); inbound: the local app's delivery address. */
  readonly originalDst: { readonly address: string; readonly port: number };
  /** The client's address (no port). */
  readonly sourceAddress: string;
  /** The service whose VIP is the original destination (found at accept), if any. */
  readonly service?: string | undefined;
  /** The L4 connection id, for log lines. */
  readonly connectionId?: number | undefined;
  /** The client's verified identity (SPIFFE id), when the connection came over mesh mTLS. */
  readonly peerIdentity?: string | undefined;
  /** SHA-256 (hex) of the client's certificate, with peerIdentity. */
  readonly peerCertificateHash?: string | undefined;
  /** A logger for this connection (default: the engine's). */
  readonly log?: Logger | undefined;
}

export type DownstreamProtocol = 'http/1.1' | 'h2';

/** A request as the downstream engine hands it over. */
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
   * lower-case without pseudo-headers. Filters edit it in place (x-request-id, the route's header edits).
   */
  readonly headers: string[];
  readonly body: RequestBody | undefined;
  /** An Upgrade or CONNECT request (HTTP/1.1; HTTP/2 CONNECT): the exchange ends with a tunnel. */
  readonly tunnel: boolean;
  readonly grpc: boolean;
  readonly conn: HttpConnectionContext;
  readonly log: Logger;
}

/** How a request is answered downstream. Header arrays are already in the downstream protocol's conventions. */
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
  /**
   * Send now what start() kept back to go out with what follows (HTTP/1.1: the head, held for the first body chunk or
   * the end, so that a small response is one write). Call it when nothing more of the response is coming right away:
   * after the upstream read that delivered the head, or at the next tick.
   */
  flush(): void;
  /** Call `cb` once when the downstream can take more. */
  onDrain(cb: () => void): void;
  end(trailers: readonly string[]): void;
  /** Answer with a local reply (rendered by src/l7/local-reply.ts renderLocalReply). */
  localReply(reply: LocalReply, grpc: boolean): void;
  /** Abort the response (HTTP/1.1: close the connection; HTTP/2: RST_STREAM with h2Code). */
  reset(h2Code: number): void;
  /** The upstream accepted the tunnel: hand over (only for tunnel requests). */
  tunnel(statusCode: number, statusText: string, headers: string[], upstream: Socket, rest: Buffer): void;
}

/** One stage of the request chain: handle the request and answer it through `res`. */
export type HttpHandler = (req: RequestContext, res: DownstreamResponder) => void;
/** A request filter: wraps the next stage (`(next) => handler`, as undici's compose). */
export type HttpFilter = (next: HttpHandler) => HttpHandler;

/** filters[0] runs first. */
export function composeHttpFilters(filters: readonly HttpFilter[], terminal: HttpHandler): HttpHandler {
  let h = terminal;
  for (let i = filters.length - 1; i >= 0; i--) h = (filters[i] as HttpFilter)(h);
  return h;
}
