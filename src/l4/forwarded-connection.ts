// A connection of the staged path (src/l4/staged-connection.ts) once it is forwarded as opaque TCP: what its end
// reports and what /debug/connections and the drain need of it, and nothing of the stages before (sockets, dials,
// detection, their listeners). The staged connection hands itself over to one of these when forwarding begins and is
// then free to be collected: an idle connection held for hours keeps this object, its forward and its context, not the
// whole staged machinery (with the native forwarding thread, not even the closed sockets it handed over).
import type { RemoraErrorCode } from '../core/errors.js';
import type { ConnectionContext, ConnectionDone } from './connection-context.js';
import type { ConnectionTracker, TrackedConnection } from './connection-pipeline.js';
import type { LiveEntry } from '../core/live-set.js';
import { contextFields, shownProtocol, type LiveConnection } from './live-connection.js';
import type { OpaqueForward } from './tcp-forward.js';

/** What the stages learned of the connection, for its outcome. */
export interface ForwardedFacts {
  /** Detection's label ("opaque:server-first", "declared:tls", ...). */
  readonly protocol: string | undefined;
  readonly service: string | undefined;
  /** "10.0.0.1:80" of the connected endpoint. */
  readonly endpoint: string | undefined;
  readonly attempts: number;
}

export class ForwardedConnection implements TrackedConnection {
  readonly #conn: ConnectionContext;
  readonly #facts: ForwardedFacts;
  readonly #done: ConnectionDone;
  readonly #tracker: ConnectionTracker;
  #forward: OpaqueForward | undefined;
  #tracked: LiveEntry<TrackedConnection> | undefined;
  #ended = false;

  constructor(conn: ConnectionContext, facts: ForwardedFacts, done: ConnectionDone, tracker: ConnectionTracker) {
    this.#conn = conn;
    this.#facts = facts;
    this.#done = done;
    this.#tracker = tracker;
  }

  /**
   * The forward runs: tracked from now on (the caller untracks the stage that made it after this, so that the
   * tracker is never empty in between).
   */
  start(forward: OpaqueForward): void {
    this.#forward = forward;
    if (!this.#ended) this.#tracked = this.#tracker.add(this);
  }

  /** The forward's onEnd: the connection is over. */
  readonly end = (f: OpaqueForward): void => {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#tracked !== undefined) this.#tracker.delete(this.#tracked);
    this.#tracked = undefined;
    const facts = this.#facts;
    this.#done({
      code: f.errorCode,
      error: f.error,
      bytesIn: f.bytesDownstreamToUpstream,
      bytesOut: f.bytesUpstreamToDownstream,
      idleTimeout: f.idleTimedOut,
      protocol: facts.protocol,
      service: facts.service,
      endpoint: facts.endpoint,
      attempts: facts.attempts,
      tlsCode: undefined,
      http: false,
      peerIdentity: this.#conn.peerIdentity,
    });
  };

  abort(code: RemoraErrorCode): void {
    this.#forward?.abort(code);
  }

  describe(now: number): LiveConnection | undefined {
    const f = this.#forward;
    if (this.#ended || f === undefined) return undefined;
    const facts = this.#facts;
    return {
      ...contextFields(this.#conn, now),
      phase: 'forward',
      protocol: shownProtocol(this.#conn, facts.protocol),
      service: facts.service,
      endpoint: facts.endpoint,
      bytesIn: f.bytesDownstreamToUpstream,
      bytesOut: f.bytesUpstreamToDownstream,
      downstreamState: f.downstreamState,
      upstreamState: f.upstreamState,
    };
  }
}
