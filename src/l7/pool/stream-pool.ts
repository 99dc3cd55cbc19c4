// The policy of an HTTP/2 pool of one upstream endpoint, whichever stack carries its connections (h2-pool.ts on
// remora's codec, http2-pool.ts on node:http2): the subclasses open streams and watch their connections; this class
// decides where a request goes, when a connection opens and when it retires.
//
// Requests are multiplexed on as few connections as possible: a request goes to the first ready connection that is
// not going away and has a free stream slot (the peer's SETTINGS_MAX_CONCURRENT_STREAMS, 100 until it is known); a
// new connection is opened only when none has room, up to `maxSessions`; beyond that requests wait in a FIFO queue of
// at most `maxPending`. A connection that receives GOAWAY takes no new stream and closes after its last stream; one
// without streams for `idleTimeoutMs` is closed (one timer per pool, armed for the earliest such deadline). The
// service's circuit breaker (the request's PoolAdmission) is asked too: 'pending' before a request is queued (held
// until it leaves the queue), 'connection' before a connection is opened (held until it closes). A request the breaker
// refuses, or that waits in a pool with no connection and none allowed, fails with kind 'overflow'.
import type { Socket } from 'node:net';
import { EarliestDeadlineTimer } from '../../core/earliest-deadline-timer.js';
import { monotonicMs } from '../../core/monotonic-clock.js';
import { connectUpstream, poolFailure } from './pool-common.js';
import type {
  AttemptControl, MultiplexPool, PoolAdmission, PoolStatsSink, UpstreamConnector, UpstreamFailure, UpstreamHandler,
  UpstreamRequest, UpstreamTarget,
} from './pool-types.js';

export interface StreamPoolOptions {
  readonly maxSessions: number;
  readonly maxPending: number;
  /** Close a connection that has carried no stream for this long. */
  readonly idleTimeoutMs: number;
}

/** One connection of a pool, as the policy sees it. */
export interface PoolEntry {
  /** Can carry streams (set up). */
  ready: boolean;
  /** Takes no new stream (GOAWAY, retiring, the pool closing). */
  draining: boolean;
  /** Streams open on it. */
  active: number;
  /** Streams ever opened on it: > 0 means a request rides a reused connection. */
  opened: number;
  /** Without streams since: when the pool retires it (monotonic ms); Infinity while it has streams. */
  idleDeadline: number;
  /** Ready, not draining, and a stream slot free. */
  readonly hasRoom: boolean;
  /** Tear it down now. */
  retire(): void;
  /** GOAWAY: no new stream; it closes after those in flight. */
  closeGracefully(): void;
}

/** One attempt, as the queue sees it. */
export interface QueuedAttempt {
  readonly admit: PoolAdmission | undefined;
  /** Held while the attempt is queued: the breaker's 'pending' slot. */
  releasePending: (() => void) | undefined;
  fail(f: UpstreamFailure): void;
}

function noSlot(): void {}

function leftQueue(a: QueuedAttempt): void {
  const r = a.releasePending;
  if (r !== undefined) {
    a.releasePending = undefined;
    r();
  }
}

export abstract class StreamPool<E extends PoolEntry, A extends QueuedAttempt & AttemptControl> implements MultiplexPool {
  readonly target: UpstreamTarget;
  protected readonly stats: PoolStatsSink;
  readonly #connector: UpstreamConnector;
  readonly #options: StreamPoolOptions;
  readonly #onEmpty: (pool: MultiplexPool) => void;
  /** An array, not a Set (src/core/live-set.ts says why): a handful of connections at most. */
  readonly #entries: E[] = [];
  /** Connections connecting or setting up (counted in `sessions`, not yet in #entries' ready ones). */
  #connecting = 0;
  readonly #queue: A[] = [];
  #closed = false;
  readonly #retire = new EarliestDeadlineTimer(() => { this.#retireDue(); });

  constructor(target: UpstreamTarget, connector: UpstreamConnector, options: StreamPoolOptions, stats: PoolStatsSink, onEmpty: (pool: MultiplexPool) => void) {
    this.target = target;
    this.#connector = connector;
    this.#options = options;
    this.stats = stats;
    this.#onEmpty = onEmpty;
  }

  /** A new attempt of `request` (not started). */
  protected abstract newAttempt(request: UpstreamRequest, handler: UpstreamHandler, admit: PoolAdmission | undefined): A;
  /** Open the attempt's stream on `e` (which has room); count it in e.active / e.opened. */
  protected abstract start(a: A, e: E): void;
  /**
   * Make a connection of a connected socket. The subclass calls entryReady() when it can carry streams (at once, or
   * when its stack says so), entryClosed() when it closes, entryGoaway() on GOAWAY and afterStream() when a stream
   * ends. `slot` is the breaker's connection slot, released by entryClosed().
   */
  protected abstract attach(socket: Socket, slot: () => void): E;

  get sessions(): number {
    let setup = 0;
    for (const e of this.#entries) if (!e.ready) setup++;
    return this.#entries.length - setup + this.#connecting;
  }

  get pending(): number {
    return this.#queue.length;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler, admit?: PoolAdmission): AttemptControl {
    const a = this.newAttempt(request, handler, admit);
    if (this.#closed) {
      handler.onError(poolFailure('connect-failure', new Error('pool closed')));
      return a;
    }
    const e = this.#pickEntry();
    if (e !== undefined) {
      this.start(a, e);
      return a;
    }
    if (this.#queue.length >= this.#options.maxPending) {
      this.stats.increment('pool.http2.overflow');
      handler.onError(poolFailure('overflow', new Error('upstream pool queue is full')));
      return a;
    }
    if (admit !== undefined) {
      const release = admit.admit('pending');
      if (release === undefined) {
        this.stats.increment('pool.http2.circuit_open');
        handler.onError(poolFailure('overflow', new Error('circuit breaker open (pending requests)')));
        this.#checkEmpty();
        return a;
      }
      a.releasePending = release;
    }
    this.#queue.push(a);
    if (this.#connecting === 0 && this.sessions < this.#options.maxSessions) this.#open();
    return a;
  }

  /** A queued attempt was aborted: it leaves the queue. */
  cancel(a: A): void {
    const i = this.#queue.indexOf(a);
    if (i >= 0) {
      this.#queue.splice(i, 1);
      leftQueue(a);
    }
    this.#checkEmpty();
  }

  /** GOAWAY every connection (streams in flight finish); refuse new requests. */
  close(): void {
    this.#closed = true;
    this.#retire.disarm();
    this.#failQueue(poolFailure('connect-failure', new Error('pool closed')));
    for (const e of [...this.#entries]) {
      e.draining = true;
      if (e.active === 0) e.retire();
      else e.closeGracefully();
    }
    this.#checkEmpty();
  }

  destroy(): void {
    this.close();
    for (const e of [...this.#entries]) e.retire();
  }

  // ---- called by subclasses ----

  /** `e` can carry streams now. */
  protected entryReady(e: E): void {
    if (e.ready) return;
    e.ready = true;
    this.#connecting--;
    this.drainQueue();
  }

  /** The peer sent GOAWAY on `e`. */
  protected entryGoaway(e: E): void {
    e.draining = true;
    this.stats.increment('pool.http2.goaway');
    if (e.active === 0) e.retire();
    // Requests still waiting need another connection.
    if (this.#queue.length > 0 && this.#connecting === 0 && !this.#closed) this.#open();
  }

  /** `e` closed (`slot` is the one attach() got). */
  protected entryClosed(e: E, slot: () => void): void {
    slot();
    const i = this.#entries.indexOf(e);
    if (i >= 0) this.#entries.splice(i, 1);
    if (!e.ready) {
      this.#connecting--;
      this.#failQueue(poolFailure('connect-failure', new Error('upstream session closed during setup')));
    } else if (this.#queue.length > 0 && !this.#closed && this.#connecting === 0) {
      this.#open();
    }
    this.#checkEmpty();
  }

  /** A stream of `e` ended (e.active already counts it out). */
  protected afterStream(e: E): void {
    if (e.active > 0) {
      this.drainQueue();
      return;
    }
    if (e.draining || this.#closed) {
      // Nothing in flight any more: close it now.
      e.retire();
      return;
    }
    if (this.#queue.length > 0) {
      this.drainQueue();
      return;
    }
    const now = monotonicMs();
    e.idleDeadline = now + this.#options.idleTimeoutMs;
    this.#retire.arm(e.idleDeadline, now);
  }

  /** Requests waiting go to connections with room; a new connection is opened when none has. */
  protected drainQueue(): void {
    while (this.#queue.length > 0) {
      const e = this.#pickEntry();
      if (e === undefined) break;
      const a = this.#queue.shift() as A;
      leftQueue(a);
      this.start(a, e);
    }
    if (this.#queue.length > 0 && this.#connecting === 0 && this.sessions < this.#options.maxSessions && !this.#closed) this.#open();
  }

  // ---- policy ----

  #pickEntry(): E | undefined {
    for (const e of this.#entries) if (e.hasRoom) return e;
    return undefined;
  }

  #failQueue(f: UpstreamFailure): void {
    for (const a of this.#queue.splice(0)) {
      leftQueue(a);
      a.fail(f);
    }
  }

  /** Open a connection for the queue, under the breaker of the oldest queued request. */
  #open(): void {
    const head = this.#queue[0];
    const slot = head?.admit === undefined ? noSlot : head.admit.admit('connection');
    if (slot === undefined) {
      // The breaker refused a connection: the queue waits for one of this pool's, or fails when there is none.
      if (this.#entries.length === 0 && this.#connecting === 0) {
        this.stats.increment('pool.http2.circuit_open');
        this.#failQueue(poolFailure('overflow', new Error('circuit breaker open (upstream connections)')));
        this.#checkEmpty();
      }
      return;
    }
    this.#connecting++;
    this.stats.increment('pool.http2.connect');
    connectUpstream(this.#connector, this.target, (err, socket) => {
      if (err !== undefined || socket === undefined) {
        slot();
        this.#connecting--;
        this.stats.increment('pool.http2.connect_failure');
        // Everything waiting for this endpoint fails: the next request will try again.
        this.#failQueue(poolFailure('connect-failure', err ?? new Error('connect failed')));
        this.#checkEmpty();
        return;
      }
      if (this.#closed) {
        slot();
        this.#connecting--;
        socket.destroy();
        this.#checkEmpty();
        return;
      }
      // HTTP/2 has no half-close: a FIN from the server closes the connection.
      socket.allowHalfOpen = false;
      const e = this.attach(socket, slot);
      this.#entries.push(e);
      if (e.ready) {
        this.#connecting--;
        this.drainQueue();
      }
    });
  }

  /** Close the connections without streams whose idle deadline passed; arm for the earliest one left. */
  #retireDue(): void {
    const now = monotonicMs();
    let next = Infinity;
    for (const e of [...this.#entries]) {
      if (e.active > 0 || e.draining) continue;
      if (e.idleDeadline <= now) {
        this.stats.increment('pool.http2.idle_retired');
        e.draining = true;
        e.retire();
      } else if (e.idleDeadline < next) {
        next = e.idleDeadline;
      }
    }
    if (next !== Infinity && !this.#closed) this.#retire.arm(next, now);
  }

  #checkEmpty(): void {
    if (this.#entries.length === 0 && this.#connecting === 0 && this.#queue.length === 0) {
      this.#retire.disarm();
      this.#onEmpty(this);
    }
  }
}
