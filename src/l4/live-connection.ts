// What GET /debug/connections shows of one live connection. Nothing here is kept up to date on the data path: the
// tracked objects (a staged connection, a plain forward) already hold their context and sockets, and describe()
// reads them only when the admin API asks (socket byte counters and stream states included).
import type { Socket } from 'node:net';
import { formatHostPort } from '../core/addr.js';
import type { Direction } from './accept-route.js';
import type { ConnectionContext } from './connection-context.js';

/**
 * One side's half-close state: 'open'; 'fin-received' (its FIN arrived: it sends no more, we may still write);
 * 'fin-sent' (we ended our write side: it may still send); 'closed' (both, or destroyed); 'not-connected' (upstream
 * not dialed or still connecting).
 */
export type SideState = 'open' | 'fin-received' | 'fin-sent' | 'closed' | 'not-connected';

export function sideState(socket: Socket | undefined): SideState {
  if (socket === undefined) return 'not-connected';
  if (socket.destroyed) return 'closed';
  if (socket.connecting) return 'not-connected';
  const gotFin = socket.readableEnded;
  const sentFin = socket.writableEnded;
  if (gotFin && sentFin) return 'closed';
  if (gotFin) return 'fin-received';
  if (sentFin) return 'fin-sent';
  return 'open';
}

/** The phase a connection is in: before forwarding (detect / connect), forwarding bytes, in the HTTP engine, in the mTLS handshake. */
export type LivePhase = 'detect' | 'connect' | 'forward' | 'http' | 'mtls-handshake';

export interface LiveConnection {
  readonly id: number;
  readonly direction: Direction;
  /** The client: "10.0.0.5:41234". */
  readonly downstream: string | undefined;
  /** The address the client dialed (SO_ORIGINAL_DST). */
  readonly originalDst: string;
  readonly phase: LivePhase;
  /** Detection outcome or declaration ("http1", "opaque:server-first", "declared:opaque", "mtls/http1"); undefined while detecting. */
  readonly protocol: string | undefined;
  readonly service: string | undefined;
  /** The upstream endpoint ("10.0.0.7:8080"); HTTP connections pick one per request (undefined). */
  readonly endpoint: string | undefined;
  /** The client's SPIFFE ID when it came over mesh mTLS. */
  readonly peerIdentity: string | undefined;
  readonly ageMs: number;
  /** Bytes from the client (to the upstream) and to the client. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly downstreamState: SideState;
  /** undefined for HTTP connections (the engine's pools own the upstream connections). */
  readonly upstreamState: SideState | undefined;
}

/** The protocol as shown: a connection inside mesh mTLS is "mtls/<protocol>", as its log line says. */
export function shownProtocol(conn: ConnectionContext, protocol: string | undefined): string | undefined {
  if (conn.peerIdentity === undefined) return protocol;
  return protocol === undefined ? 'mtls' : `mtls/${protocol}`;
}

/** The fields every live connection takes from its context. */
export function contextFields(conn: ConnectionContext, now: number): Pick<LiveConnection, 'id' | 'direction' | 'downstream' | 'originalDst' | 'peerIdentity' | 'ageMs'> {
  return {
    id: conn.id,
    direction: conn.direction,
    downstream: conn.peerAddress === undefined ? undefined : formatHostPort(conn.peerAddress, conn.peerPort ?? 0),
    originalDst: formatHostPort(conn.originalDst.address, conn.originalDst.port),
    peerIdentity: conn.peerIdentity,
    ageMs: Math.max(0, now - conn.startedAt),
  };
}
