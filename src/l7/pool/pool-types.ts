// Vocabulary shared by the upstream pools (http1-pool.ts, http1-connection.ts, http2-pool.ts, upstream-pools.ts)
// and the router that drives them (src/l7/router/exchange.ts). A pool runs one *attempt* of a request on one endpoint and reports
// back through an UpstreamHandler; the exchange decides what to do with the outcome (forward, retry, reply).
import type { Socket } from 'node:net';
import type { BodyReader } from '../http/request-body.js';

export type UpstreamProtocol = 'http1' | 'http2';

/** Where an upstream connection goes. */
export interface UpstreamTarget {
  readonly address: string;
  readonly port: number;
  /** The protocol the connection will speak (a TLS connector offers it as ALPN). */
  readonly protocol: UpstreamProtocol;
  /** The cluster (service name, or "passthrough") the connection serves. */
  readonly cluster: string;
}

/**
 * Opens one upstream connection to `target` and calls `settle` exactly once: with the error, or with the socket
 * ready to carry requests (TCP connected, TLS handshake done for TLS origination). The pools build it from the
 * cluster (ClusterView.connect, the one connect path), which applies the connect timeout. The socket has an 'error'
 * listener attached and was created with `allowHalfOpen: true` (tunnels need half-close).
 */
export type UpstreamConnector = (target: UpstreamTarget, settle: (err: Error | undefined, socket: Socket | undefined) => void) => void;

/**
 * The service's circuit-breaker admission for pool resources (a cluster view is one): asked before opening a new
 * upstream connection ('connection', released when that connection closes) and before queueing a request that waits
 * for a connection ('pending', released when it leaves the queue). Returns the release function, or undefined when
 * the limit is reached (the pool then fails the attempt with kind 'overflow' -> 503 circuit-open).
 */
export interface PoolAdmission {
  admit(kind: 'connection' | 'pending'): (() => void) | undefined;
}

/** One request as the pool sends it. */
export interface UpstreamRequest {
  readonly method: string;
  /** HTTP/1.1 request-target as the client sent it (origin-form or absolute-form); the :path for HTTP/2. */
  readonly target: string;
  /** :authority for HTTP/2 (HTTP/1.1 carries Host in `headers`). */
  readonly authority: string;
  readonly scheme: 'http' | 'https';
  /**
   * Flat [name, value, ...] headers in the upstream protocol's conventions: for HTTP/1.1 hop-by-hop-free, case and
   * order as received, with Host and Content-Length (the pool adds `Transfer-Encoding: chunked` itself when the body
   * has no declared length); for HTTP/2 lower-case, no connection-specific fields, no pseudo-headers.
   */
  readonly headers: string[];
  /** The body, or undefined for a request without one. */
  readonly body: BodyReader | undefined;
  /** Declared body length; undefined = unknown (chunked on HTTP/1.1). Ignored when body is undefined. */
  readonly bodyLength: number | undefined;
  /** HTTP/1.1 only: the request asks for a tunnel (Upgrade, or CONNECT); 101 / 2xx hands the socket over. */
  readonly tunnel: boolean;
}

export interface UpstreamResponse {
  readonly statusCode: number;
  /** Reason phrase (HTTP/1.1), "" for HTTP/2. */
  readonly statusText: string;
  /** Flat raw headers: HTTP/1.1 as received (hop-by-hop fields still present); HTTP/2 without pseudo-headers. */
  readonly headers: string[];
  /** HTTP/1.1: the upstream intends to close the connection after this response. */
  readonly close: boolean;
  /**
   * Nothing follows the head: no body, no trailers (HTTP/2 HEADERS with END_STREAM, e.g. a gRPC trailers-only
   * response; HTTP/1.1 HEAD, 204, 304).
   */
  readonly bodyless: boolean;
  /** HTTP/1.1: some field is hop-by-hop, so the headers must be filtered before they go on (false for HTTP/2). */
  readonly hopByHop: boolean;
  /**
   * The pool calls the handler's onReadEnd() after each read that delivered part of this response and did not end it
   * (the HTTP/1.1 pool): what the handler holds back to write together can wait for it. False: no such call comes.
   */
  readonly readEnds: boolean;
}

export type UpstreamFailureKind =
  /** The connection could not be established (refused, unreachable, connect timeout). */
  | 'connect-failure'
  /** The connection or stream broke (RST, FIN before the response was complete, RST_STREAM, GOAWAY). */
  | 'reset'
  /** The upstream sent something that is not valid HTTP (framing, headers). */
  | 'protocol-error'
  /** The pool's queue for this endpoint is full. */
  | 'overflow';

export interface UpstreamFailure {
  readonly kind: UpstreamFailureKind;
  readonly error: Error;
  /** The response head was delivered (onResponse / onTunnel called). */
  readonly responseStarted: boolean;
  /** Some byte of a response (even an interim one, even a partial status line) arrived. */
  readonly responseBytes: boolean;
  /** The request went out on a connection that had already carried a complete exchange. */
  readonly reusedConnection: boolean;
  /** Some byte of the request was handed to the socket / stream. */
  readonly requestSent: boolean;
  /** The server provably did not process the request (HTTP/2 REFUSED_STREAM, or a stream above GOAWAY's last id). */
  readonly refused: boolean;
  /** HTTP/2 RST_STREAM error code, when the stream was reset by the peer. */
  readonly h2Code?: number;
}

/** Callbacks of one attempt. After onEnd, onTunnel or onError nothing else is called. */
export interface UpstreamHandler {
  /** An interim (1xx, not 101) response. */
  onInformational(statusCode: number, headers: string[]): void;
  /** The final response head. Body chunks follow. */
  onResponse(response: UpstreamResponse): void;
  /** A body chunk; return false to stop the flow until AttemptControl.resume(). */
  onData(chunk: Buffer): boolean;
  /** The response is complete; trailers is a flat array (possibly empty). */
  onEnd(trailers: string[]): void;
  /** Everything of one read is delivered and the response is not complete (only when the response says readEnds). */
  onReadEnd(): void;
  /**
   * HTTP/1.1: 101 to an Upgrade, or 2xx to CONNECT. The socket now belongs to the handler (paused, with the pool's
   * listeners removed); `rest` holds bytes that arrived after the response head.
   */
  onTunnel(response: UpstreamResponse, socket: Socket, rest: Buffer): void;
  onError(failure: UpstreamFailure): void;
}

export interface AttemptControl {
  /** Stop reading the response body (backpressure). */
  pause(): void;
  resume(): void;
  /**
   * Give up on the attempt: no further callbacks; the connection (HTTP/1.1) or stream (HTTP/2, RST_STREAM with
   * `h2Code`, CANCEL by default) is torn down unless the exchange already finished.
   */
  abort(h2Code?: number): void;
}

/** Counters the pools report into (names are documented in docs/l7-engines.md). */
export interface PoolStatsSink {
  increment(name: string, by?: number): void;
}

/** An HTTP/2 pool of one endpoint (http2-pool.ts on node:http2, h2-pool.ts on remora's codec). */
export interface MultiplexPool {
  readonly target: UpstreamTarget;
  /** Connections open or opening. */
  readonly sessions: number;
  /** Requests waiting for a stream. */
  readonly pending: number;
  dispatch(request: UpstreamRequest, handler: UpstreamHandler, admit?: PoolAdmission): AttemptControl;
  /** GOAWAY every connection (streams in flight finish); refuse new requests. */
  close(): void;
  destroy(): void;
}
