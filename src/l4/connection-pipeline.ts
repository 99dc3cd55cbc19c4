// The terminal connection stage of a listener: route -> (detect -> pick + connect with retries) -> forward, or the
// hand-off to the HTTP engine. It runs after the connection filters (src/l4/connection-context.ts), with the runtime
// the connection took at accept. A connection of the native accept (no socket: the forwarding thread holds it) stays
// in the thread when its bytes cannot change its route or handler (src/l4/native-connection.ts: pick, connect,
// forward and detection's label there). A connection accepted as a TCP handle (a listener with an HTTP engine: no
// socket yet) that is most likely HTTP/1.1 for the engine stays a handle (src/l4/handle-connection.ts: served on the
// handle, or made a socket if its bytes say otherwise). Any other becomes a socket here and takes one of two paths:
//   * plain: an original-destination cluster (passthrough, inbound delivery) whose protocol needs no detection
//     (declared opaque/tls, or HTTP while no HTTP engine is installed): connect and forward at once (the upstream is
//     wired while it connects; Node queues the client's bytes);
//   * staged (src/l4/staged-connection.ts): detection, services, retries, TLS origination, the HTTP hand-off.
// Every connection is registered with the tracker (drain) until it is over.
import { RemoraError, type RemoraErrorCode } from '../core/errors.js';
import { LiveSet, type LiveEntry } from '../core/live-set.js';
import { resetSocket } from '../core/reset-socket.js';
import type { Socket } from 'node:net';
import type { TcpHandle } from '../core/tcp-handle.js';
import type { AcceptRoute, Declared, Destination } from './accept-route.js';
import { destinationKey } from './detect/http-destinations.js';
import { contextFields, shownProtocol, sideState, type LiveConnection } from './live-connection.js';
import {
  emptyOutcome, takenIntoSocket, type ConnectionContext, type ConnectionDone, type ConnectionStage, type SocketConnectionContext,
} from './connection-context.js';
import { HandleConnection } from './handle-connection.js';
import { NativeConnection } from './native-connection.js';
import { sniffLabel, StagedConnection, type StagedDeps } from './staged-connection.js';
import { TcpForward } from './tcp-forward.js';

export { sniffLabel };

/** Something the drain can reset: a forward, or a connection still in its early stages. */
export interface Abortable {
  abort(code: RemoraErrorCode): void;
}

/** A connection the tracker holds: the drain resets it, /debug/connections describes it (read at request time). */
export interface TrackedConnection extends Abortable {
  /** undefined: over, or not shown (the mTLS shell of a connection tracked itself). */
  describe(now: number): LiveConnection | undefined;
}

/**
 * The connections being handled right now, across listeners; drain waits on it and aborts what is left, and
 * /debug/connections lists it. Bounded by the live connections: each is added at accept and deleted when over (a
 * LiveSet, src/core/live-set.ts: a Set churned at this rate keeps dead connections through young collections).
 */
export class ConnectionTracker {
  readonly #live = new LiveSet<TrackedConnection>();
  #waiters: (() => void)[] = [];

  get size(): number { return this.#live.size; }

  /** Track a connection until delete() gets the entry back. */
  add(conn: TrackedConnection): LiveEntry<TrackedConnection> { return this.#live.add(conn); }

  delete(entry: LiveEntry<TrackedConnection>): void {
    this.#live.delete(entry);
    if (this.#live.size === 0 && this.#waiters.length > 0) {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w();
    }
  }

  /** Resolves when no connection is open (at once if none is). */
  whenEmpty(): Promise<void> {
    if (this.#live.size === 0) return Promise.resolve();
    return new Promise((resolve) => { this.#waiters.push(resolve); });
  }

  /** Every live connection as /debug/connections shows it, by id. */
  list(now: number): LiveConnection[] {
    const out: LiveConnection[] = [];
    for (const c of this.#live.items()) {
      const d = c.describe(now);
      if (d !== undefined) out.push(d);
    }
    return out.sort((a, b) => a.id - b.id);
  }

  /** Reset every open connection; each one's end is then counted under `code`. */
  abortAll(code: RemoraErrorCode): number {
    const all = this.#live.items();
    for (const f of all) f.abort(code);
    return all.length;
  }
}

/** Inbound mesh mTLS must look at this connection's first bytes (it is not one already inside mTLS). */
function meshApplies(conn: ConnectionContext): boolean {
  const mtls = conn.runtime.mtls;
  return mtls !== undefined && conn.peerIdentity === undefined && mtls.modeFor(conn.originalDst.port) !== 'disable';
}

const DECLARED = { opaque: 'declared:opaque', tls: 'declared:tls', http: 'declared:http', http2: 'declared:http2', detect: 'detect' } as const;

export class ConnectionPipeline {
  readonly #deps: StagedDeps;
  readonly #tracker: ConnectionTracker;

  constructor(deps: StagedDeps, tracker: ConnectionTracker) {
    this.#deps = { ...deps, reenter: this.run };
    this.#tracker = tracker;
  }

  /** The terminal ConnectionStage. */
  readonly run: ConnectionStage = (accepted, done) => {
    const rt = accepted.runtime;
    const route = rt.router.accept(accepted.direction, accepted.originalDst);
    const d = route.declared;
    const dest = route.destination;
    const native = accepted.native;
    let conn: SocketConnectionContext;
    if (native !== undefined) {
      if (dest.kind === 'cluster' && !route.needName && rt.http === undefined && dest.cluster.tls === undefined && !meshApplies(accepted)) {
        new NativeConnection(this.#deps, accepted, native, d, dest, done, this.#tracker).start();
        return;
      }
      // It needs a socket: a refusal, a name to route by, the HTTP engine, mesh mTLS, TLS origination.
      const taken = takenIntoSocket(accepted, native, undefined, done);
      if (taken === undefined) return;
      conn = taken;
    } else if (accepted.handle !== undefined) {
      const handle = accepted.handle;
      const key = this.#onHandle(accepted, handle, route);
      if (key !== undefined) {
        new HandleConnection(this.#deps, accepted, handle, route, key, done, this.#tracker).start();
        return;
      }
      // It needs a socket (not likely HTTP/1.1 for the engine): the staged path, as a socket Node accepted.
      const taken = takenIntoSocket(accepted, handle, undefined, done);
      if (taken === undefined) return;
      conn = taken;
    } else if (accepted.socket !== undefined) {
      conn = accepted as SocketConnectionContext;
    } else {
      done(emptyOutcome('REMORA_ERR_INTERNAL', new Error('a connection with neither a socket nor a native accept')));
      return;
    }
    if (dest.kind === 'cluster' && dest.target !== undefined && dest.cluster.spec.service === undefined && !route.needName
      && (d === 'opaque' || d === 'tls' || (d !== 'detect' && rt.http === undefined)) && !meshApplies(conn)) {
      this.#deps.countSniff(DECLARED[d]);
      this.#plain(conn, dest, d, done);
      return;
    }
    new StagedConnection(this.#deps, conn, route, done, this.#tracker).start();
  };

  /**
   * Serve this accepted TCP handle on the handle (HandleConnection): HTTP/1.1 for the engine, declared, or most likely
   * (a detected port whose destination's last connection was HTTP/1.x), on a cluster, with no name to route by and no
   * mesh mTLS. Returns the destination's key in HttpDestinationMemory then; undefined: it becomes a socket.
   */
  #onHandle(conn: ConnectionContext, handle: TcpHandle, route: AcceptRoute): string | undefined {
    const http = conn.runtime.http;
    if (http?.handleHttp1Handle === undefined || route.destination.kind !== 'cluster' || route.needName || meshApplies(conn)) return undefined;
    if (handle.destroyed || (route.declared !== 'http' && route.declared !== 'detect')) return undefined;
    const key = destinationKey(conn.originalDst.address, conn.originalDst.port);
    if (route.declared === 'http') return key;
    return this.#deps.httpDestinations?.lastHttp(key) === 'http1' ? key : undefined;
  }

  #plain(conn: SocketConnectionContext, dest: Extract<Destination, { kind: 'cluster' }>, declared: Declared, done: ConnectionDone): void {
    const authorize = conn.runtime.authorize;
    if (authorize !== undefined && !authorize(conn)) {
      // Denied (logged and counted by the authorizer): closed before anything is connected or read.
      resetSocket(conn.socket);
      done({ ...emptyOutcome('REMORA_ERR_AUTHZ_DENIED', new RemoraError('REMORA_ERR_AUTHZ_DENIED', 'an authorization policy denied the connection')), peerIdentity: conn.peerIdentity });
      return;
    }
    const target = dest.target as { address: string; port: number };
    const upstream: Socket = dest.cluster.connect(target);
    const endpoint = target.address.includes(':') ? `[${target.address}]:${target.port}` : `${target.address}:${target.port}`;
    const forward = new TcpForward(conn.socket, upstream, {
      idleTimeoutMs: conn.runtime.idleTimeoutMs,
      counters: this.#deps.counters,
      onEnd: (f) => {
        this.#tracker.delete(entry);
        done({
          code: f.errorCode, error: f.error, bytesIn: f.bytesDownstreamToUpstream, bytesOut: f.bytesUpstreamToDownstream,
          idleTimeout: f.idleTimedOut, protocol: undefined, service: undefined, endpoint, attempts: 1, tlsCode: undefined,
          http: false, peerIdentity: conn.peerIdentity,
        });
      },
    });
    const tracked: TrackedConnection = {
      abort: (code) => { forward.abort(code); },
      describe: (now) => (forward.ended ? undefined : {
        ...contextFields(conn, now),
        phase: 'forward', protocol: shownProtocol(conn, DECLARED[declared]), service: undefined, endpoint,
        bytesIn: forward.bytesDownstreamToUpstream, bytesOut: forward.bytesUpstreamToDownstream,
        downstreamState: sideState(forward.downstreamSocket), upstreamState: sideState(forward.upstreamSocket),
      }),
    };
    const entry = this.#tracker.add(tracked);
    conn.watch?.forwarding(conn, undefined, endpoint, forward);
  }
}
