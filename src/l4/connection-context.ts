// The connection context and the connection filter chain.
//
// Every accepted connection gets one ConnectionContext: what is known of it at accept (its listener, original
// destination, peer) and the listener runtime it took then. Contexts are immutable: a filter that learns something
// (the peer's identity once mesh mTLS is terminated, a replaced socket) passes a derived context to the next stage.
//
// A listener's connection stages are composed as `(next) => stage` filters around the terminal stage (detect ->
// route -> pick -> connect -> forward, src/l4/connection-pipeline.ts), like undici's dispatcher composition. A stage
// calls `done` exactly once with the connection's outcome when the connection is over; a filter may wrap `done` to
// see it (stats, logs), may answer itself (close the connection and call done), or may call next.
import type { Socket } from 'node:net';
import type { OriginalDst } from '../core/addr.js';
import type { RemoraErrorCode } from '../core/errors.js';
import type { MtlsMode } from '../config/mtls-settings.js';
import type { MeshStats } from '../core/mesh-stats.js';
import { TcpHandle } from '../core/tcp-handle.js';
import type { AcceptRouter, Direction } from './accept-route.js';
import type { HttpHandoff } from './http-handoff.js';
import type { MeshTerminator } from './mesh-termination.js';
import type { NativeAccepted } from './native-accepted.js';

/** Inbound mesh mTLS of a listener runtime (identity_dir set). */
export interface InboundMtls {
  readonly terminator: MeshTerminator;
  readonly stats: MeshStats;
  /** mtls_mode, or its mtls_port_modes override, for an original destination port. */
  modeFor(port: number): MtlsMode;
}

/**
 * The authorization of a connection forwarded as opaque TCP (inbound, when [authorization] policies exist): true =
 * allowed. It logs and counts its decision (src/l4/filters/tcp-authorization.ts).
 */
export type ConnectionAuthorizer = (conn: ConnectionContext) => boolean;

/** The per-listener part of the runtime that the L4 stages read (built by src/proxy/runtime.ts). */
export interface ListenerRuntime {
  /** The snapshot version this runtime was built from. */
  readonly version: number;
  readonly router: AcceptRouter;
  /** Protocol detection deadline (detect_timeout). */
  readonly detectTimeoutMs: number;
  /** Close a forwarded connection after this long without a byte (0 = never). */
  readonly idleTimeoutMs: number;
  /** Where connections detected (or declared) as HTTP go; undefined: forwarded as opaque TCP (http_engine = off). */
  readonly http: HttpHandoff | undefined;
  /** The composed connection filters around the terminal stage. */
  readonly chain: ConnectionStage;
  /** Inbound mesh mTLS; undefined: none (outbound, or no identity). */
  readonly mtls: InboundMtls | undefined;
  /** Authorization of opaque TCP; undefined: everything is allowed (no policy, or outbound). */
  readonly authorize: ConnectionAuthorizer | undefined;
}

export interface ConnectionContext {
  /** Unique per process (shared by the listeners). */
  readonly id: number;
  readonly direction: Direction;
  /**
   * The client's socket; undefined while the forwarding thread holds the connection (native accept: `native`) or
   * while it is still the accepted TCP handle (`handle`).
   */
  readonly socket: Socket | undefined;
  /**
   * Native accept: the connection as the forwarding thread holds it (src/l4/native-accepted.ts); the terminal stage
   * forwards it there, or takes it into a socket (a context with `socket` and no `native`). Undefined for a socket.
   */
  readonly native: NativeAccepted | undefined;
  /**
   * The accepted TCP handle, no net.Socket yet (a capture listener with an HTTP engine: src/core/tcp-handle.ts); the
   * terminal stage serves it as HTTP/1.1 on the handle or makes it a socket. Undefined otherwise.
   */
  readonly handle?: TcpHandle | undefined;
  readonly originalDst: OriginalDst;
  /** The client's address (IPv4 unmapped), when known. */
  readonly peerAddress: string | undefined;
  readonly peerPort: number | undefined;
  /** Date.now() at accept. */
  readonly startedAt: number;
  /** The runtime in force when the connection was accepted; the connection keeps it to its end. */
  readonly runtime: ListenerRuntime;
  /** The client's verified identity (SPIFFE id), once mesh mTLS is terminated (then `socket` is the TLS socket). */
  readonly peerIdentity: string | undefined;
  /** SHA-256 (hex) of the client's certificate, with peerIdentity. */
  readonly peerCertificateHash: string | undefined;
  /** Hears when forwarding as opaque TCP begins (set by the stats filter for an observer: metrics, access log). */
  readonly watch?: ForwardingWatcher | undefined;
}

/** A connection Node holds a socket for (every stage but the native accept's and the handle's). */
export type SocketConnectionContext = ConnectionContext & { readonly socket: Socket };

/** The byte counts of a forward, read while it runs (src/l4/tcp-forward.ts TcpForward). */
export interface ForwardBytes {
  readonly bytesDownstreamToUpstream: number;
  readonly bytesUpstreamToDownstream: number;
}

/**
 * Told once when a connection starts being forwarded as opaque TCP (live TCP metrics of long connections). `conn` is
 * the context of the forwarded connection: inside mesh mTLS, the inner one, with the client's identity.
 */
export interface ForwardingWatcher {
  forwarding(conn: ConnectionContext, service: string | undefined, endpoint: string | undefined, bytes: ForwardBytes): void;
}

/** How a connection ended, for the filters' bookkeeping and its one log line. */
export interface ConnectionOutcome {
  readonly code: RemoraErrorCode | undefined;
  readonly error: Error | undefined;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly idleTimeout: boolean;
  /** Detection outcome ("http1", "opaque:server-first", "declared:tls", ...). */
  readonly protocol: string | undefined;
  readonly service: string | undefined;
  readonly endpoint: string | undefined;
  readonly attempts: number;
  /** For REMORA_ERR_UPSTREAM_TLS: OpenSSL's/Node's reason. */
  readonly tlsCode: string | undefined;
  /** Handed to the HTTP engine. */
  readonly http: boolean;
  /** The client's SPIFFE ID when the connection came over mesh mTLS. */
  readonly peerIdentity: string | undefined;
}

export type ConnectionDone = (outcome: ConnectionOutcome) => void;
export type ConnectionStage = (conn: ConnectionContext, done: ConnectionDone) => void;
export type ConnectionFilter = (next: ConnectionStage) => ConnectionStage;

/**
 * A context with another socket (a native accept's connection or a TCP handle taken into Node) or watch: spelled out
 * field by field,
 * as `{ ...conn, watch }` made V8 build a hidden class (and its descriptor array, ~360 bytes kept for the
 * connection's life) for every connection.
 */
export function derivedContext(conn: ConnectionContext, socket: Socket | undefined, native: NativeAccepted | undefined,
  handle: TcpHandle | undefined, watch: ForwardingWatcher | undefined): ConnectionContext {
  return {
    id: conn.id,
    direction: conn.direction,
    socket,
    native,
    handle,
    originalDst: conn.originalDst,
    peerAddress: conn.peerAddress,
    peerPort: conn.peerPort,
    startedAt: conn.startedAt,
    runtime: conn.runtime,
    peerIdentity: conn.peerIdentity,
    peerCertificateHash: conn.peerCertificateHash,
    watch,
  };
}

/**
 * The context of a connection taken into a socket, from the forwarding thread or from its TCP handle, with `held`
 * (bytes already read from it) put back first. Undefined, with the connection reset and done, when that fails.
 */
export function takenIntoSocket(conn: ConnectionContext, from: NativeAccepted | TcpHandle, held: Buffer | undefined,
  done: ConnectionDone): SocketConnectionContext | undefined {
  try {
    const socket = from.toSocket();
    if (held !== undefined && held.length > 0) socket.unshift(held);
    return derivedContext(conn, socket, undefined, undefined, conn.watch) as SocketConnectionContext;
  } catch (err) {
    if (from instanceof TcpHandle) from.reset();
    else from.abort();
    done({ ...emptyOutcome('REMORA_ERR_INTERNAL', err as Error), peerIdentity: conn.peerIdentity });
    return undefined;
  }
}

/** filters[0] runs first. */
export function composeConnectionFilters(filters: readonly ConnectionFilter[], terminal: ConnectionStage): ConnectionStage {
  let stage = terminal;
  for (let i = filters.length - 1; i >= 0; i--) stage = (filters[i] as ConnectionFilter)(stage);
  return stage;
}

/** The outcome of a connection that ended before any stage could do anything with it. */
export function emptyOutcome(code: RemoraErrorCode | undefined, error: Error | undefined): ConnectionOutcome {
  return {
    code, error, bytesIn: 0, bytesOut: 0, idleTimeout: false, protocol: undefined, service: undefined, endpoint: undefined,
    attempts: 0, tlsCode: undefined, http: false, peerIdentity: undefined,
  };
}
