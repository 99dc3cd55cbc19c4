// One connection through the terminal stage (src/l4/connection-pipeline.ts) while it is still the accepted TCP handle
// (src/core/tcp-handle.ts: no net.Socket). It comes here only when it is most likely HTTP/1.1 for the HTTP engine: a
// port declared `http`, or a detected port whose destination's last connection was HTTP/1.x (HttpDestinationMemory),
// on a cluster, with no name to route by and no mesh mTLS. Then:
//   declared http  -> the HTTP engine at once (HttpHandoff.handleHttp1Handle), on the handle;
//   detect         -> the client's first bytes, read from the handle, go to the sniffer:
//                       HTTP/1.x                     -> the HTTP engine on the handle, with those bytes;
//                       anything else, the client's FIN, or no decision within HTTP_DESTINATION_PREDIAL_DELAY_MS
//                                                    -> a net.Socket on the handle, the bytes put back, and the
//                                                       staged path (StagedConnection) from its start, exactly as a
//                                                       socket accepted by Node would take it.
// The wait is the one StagedConnection makes at such a destination before it pre-dials (a silent client, or a
// server-first protocol, waits that long either way); after it the destination is forgotten as HTTP, so the staged
// path pre-dials at once. Every connection ends exactly once (`done`, after it leaves the tracker): when the engine
// reports the connection closed, when the client leaves during detection, or through the staged path.
import { RemoraError, type RemoraErrorCode } from '../core/errors.js';
import type { LiveEntry } from '../core/live-set.js';
import type { TcpHandle } from '../core/tcp-handle.js';
import type { AcceptRoute } from './accept-route.js';
import { takenIntoSocket, type ConnectionContext, type ConnectionDone } from './connection-context.js';
import type { ConnectionTracker, TrackedConnection } from './connection-pipeline.js';
import { createSniffer, type SniffDecision, type Sniffer } from './detect/protocol-sniffer.js';
import { contextFields, shownProtocol, type LiveConnection } from './live-connection.js';
import { HTTP_DESTINATION_PREDIAL_DELAY_MS, sniffLabel, StagedConnection, type StagedDeps } from './staged-connection.js';

type Phase = 'detect' | 'http' | 'ended';

const EMPTY = Buffer.alloc(0);

export class HandleConnection implements TrackedConnection {
  readonly #deps: StagedDeps;
  readonly #conn: ConnectionContext;
  readonly #handle: TcpHandle;
  readonly #route: AcceptRoute;
  /** The original destination's key in HttpDestinationMemory. */
  readonly #key: string;
  readonly #done: ConnectionDone;
  readonly #tracker: ConnectionTracker;
  #tracked: LiveEntry<TrackedConnection> | undefined;
  #phase: Phase = 'detect';
  #held: Buffer[] = [];
  #sniffer: Sniffer | undefined;
  #timer: NodeJS.Timeout | undefined;
  #protocol: string | undefined;
  #code: RemoraErrorCode | undefined;
  #error: Error | undefined;

  constructor(deps: StagedDeps, conn: ConnectionContext, handle: TcpHandle, route: AcceptRoute, key: string, done: ConnectionDone,
    tracker: ConnectionTracker) {
    this.#deps = deps;
    this.#conn = conn;
    this.#handle = handle;
    this.#route = route;
    this.#key = key;
    this.#done = done;
    this.#tracker = tracker;
  }

  start(): void {
    this.#tracked = this.#tracker.add(this);
    const h = this.#handle;
    // Until the engine listens (in the hand-off), this object hears the handle: a close is never missed.
    h.listen({ data: this.#onData, end: this.#onEnd, close: this.#onDetectClose });
    if (this.#route.declared === 'http') {
      this.#protocol = 'declared:http';
      this.#deps.countSniff(this.#protocol);
      this.#handOff(EMPTY);
      return;
    }
    this.#timer = setTimeout(this.#onTimeout, HTTP_DESTINATION_PREDIAL_DELAY_MS);
    h.resume();
  }

  /**
   * End the connection now (the drain deadline): closed in the HTTP engine (as the staged path closes a socket the
   * engine holds), reset during detection. The engine's close, or the detection's, then ends the connection.
   */
  abort(code: RemoraErrorCode): void {
    if (this.#phase === 'ended') return;
    this.#code ??= code;
    this.#error ??= new RemoraError(code, 'the connection was aborted');
    this.#clearTimer();
    if (this.#phase === 'http') this.#handle.destroy();
    else this.#handle.reset();
  }

  describe(now: number): LiveConnection | undefined {
    if (this.#phase === 'ended') return undefined;
    const http = this.#phase === 'http';
    const h = this.#handle;
    return {
      ...contextFields(this.#conn, now),
      phase: http ? 'http' : 'detect',
      protocol: shownProtocol(this.#conn, this.#protocol),
      service: http ? this.#service() : undefined,
      endpoint: undefined,
      bytesIn: h.bytesRead,
      bytesOut: h.bytesWritten,
      downstreamState: h.destroyed ? 'closed' : h.readableEnded ? 'fin-received' : 'open',
      upstreamState: undefined,
    };
  }

  // === detection ===
  readonly #onData = (chunk: Buffer): void => {
    this.#held.push(chunk);
    const r = (this.#sniffer ??= createSniffer(this.#deps.sniffer)).push(chunk);
    if (r.kind !== 'need-more') this.#decided(r);
  };

  readonly #onEnd = (): void => {
    this.#decided((this.#sniffer ??= createSniffer(this.#deps.sniffer)).finish('eof'));
  };

  readonly #onTimeout = (): void => {
    this.#timer = undefined;
    // A busy event loop runs its timers before it polls: the client's bytes may be waiting in this very turn. Decide
    // after the poll (setImmediate), so that only a client that really said nothing leaves the handle.
    setImmediate(this.#onSilent);
  };

  readonly #onSilent = (): void => {
    if (this.#phase !== 'detect') return;
    // Nothing decided in the staged path's pre-dial wait: from here on the staged path decides (and pre-dials now).
    this.#deps.httpDestinations?.forget(this.#key);
    this.#toStaged();
  };

  /** The client left (or reset) before it said anything decisive. */
  readonly #onDetectClose = (err: Error | undefined): void => {
    this.#clearTimer();
    if (err !== undefined) {
      this.#code ??= 'REMORA_ERR_DOWNSTREAM_RESET';
      this.#error ??= err;
    }
    this.#finish(0, 0, false);
  };

  #decided(d: SniffDecision): void {
    this.#sniffer = undefined; // decided: neither it nor the head it parsed stays with the connection
    if (d.kind !== 'http1') {
      // Not HTTP/1.x: the staged path detects it again from the same bytes and takes it wherever it goes (its own
      // counters and memory updates included).
      this.#toStaged();
      return;
    }
    this.#clearTimer();
    this.#protocol = sniffLabel(d);
    this.#deps.countSniff(this.#protocol);
    this.#deps.httpDestinations?.recordHttp(this.#key, 'http1');
    const held = this.#held;
    this.#held = [];
    this.#handOff(held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held));
  }

  /** The connection leaves the handle: a socket, the bytes read put back, the staged path from its start. */
  #toStaged(): void {
    this.#clearTimer();
    const h = this.#handle;
    const held = this.#held;
    this.#held = [];
    this.#untrack();
    this.#phase = 'ended';
    const conn = takenIntoSocket(this.#conn, h, held.length === 1 ? held[0] : Buffer.concat(held), this.#done);
    if (conn === undefined) return;
    new StagedConnection(this.#deps, conn, this.#route, this.#done, this.#tracker).start();
  }

  // === the HTTP engine ===
  #handOff(head: Buffer): void {
    const http = this.#conn.runtime.http;
    this.#phase = 'http';
    if (http?.handleHttp1Handle === undefined) {
      this.#toStaged(); // not reached: the pipeline sends only connections with this hand-off here
      return;
    }
    http.handleHttp1Handle(this.#handle, head, { protocol: 'http1', connection: this.#conn, service: this.#service() }, this.#onHttpClosed);
  }

  readonly #onHttpClosed = (bytesIn: number, bytesOut: number): void => {
    this.#finish(bytesIn, bytesOut, true);
  };

  // === the end ===
  #finish(bytesIn: number, bytesOut: number, http: boolean): void {
    if (this.#phase === 'ended') return;
    this.#phase = 'ended';
    this.#untrack();
    if (http) {
      // An HTTP connection's bytes are the client's (read from it, written to it), counted once at its close.
      this.#deps.counters.downstreamToUpstream += bytesIn;
      this.#deps.counters.upstreamToDownstream += bytesOut;
    }
    this.#done({
      code: this.#code,
      error: this.#error,
      bytesIn,
      bytesOut,
      idleTimeout: false,
      protocol: this.#protocol,
      service: http ? this.#service() : undefined,
      endpoint: undefined,
      attempts: 0,
      tlsCode: undefined,
      http,
      peerIdentity: this.#conn.peerIdentity,
    });
  }

  /** The service whose VIP the client dialed, if any (the engine may still route by Host). */
  #service(): string | undefined {
    const dest = this.#route.destination;
    return dest.kind === 'cluster' && dest.cluster.spec.service !== undefined ? dest.cluster.name : undefined;
  }

  #untrack(): void {
    if (this.#tracked !== undefined) this.#tracker.delete(this.#tracked);
    this.#tracked = undefined;
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
