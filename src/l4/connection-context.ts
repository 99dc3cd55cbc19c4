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
import type { AcceptRouter, Direction } from './accept-route.js';
import type { HttpHandoff } from './http-handoff.js';

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
}

export interface ConnectionContext {
  /** Unique per process (shared by the listeners). */
  readonly id: number;
  readonly direction: Direction;
  readonly socket: Socket;
  readonly originalDst: OriginalDst;
  /** The client's address (IPv4 unmapped), when known. */
  readonly peerAddress: string | undefined;
  readonly peerPort: number | undefined;
  /** Date.now() at accept. */
  readonly startedAt: number;
  /** The runtime in force when the connection was accepted; the connection keeps it to its end. */
  readonly runtime: ListenerRuntime;
  /** The client's verified identity (SPIFFE id), once a filter has established one. */
  readonly peerIdentity: string | undefined;
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
}

export type ConnectionDone = (outcome: ConnectionOutcome) => void;
export type ConnectionStage = (conn: ConnectionContext, done: ConnectionDone) => void;
export type ConnectionFilter = (next: ConnectionStage) => ConnectionStage;

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
    attempts: 0, tlsCode: undefined, http: false,
  };
}
