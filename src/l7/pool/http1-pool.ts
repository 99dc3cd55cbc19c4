// The HTTP/1.1 connection pool of one upstream endpoint.
//
// - Idle connections are reused LIFO (the most recently used first: it is the least likely to have been closed by
//   the server, and the others age out).
// - An idle connection is retired before the server would close it: `keepAliveMarginMs` (1 s) before the server's
//   `Keep-Alive: timeout=N` hint, or after `idleTimeoutMs` when the server gave none; a FIN, RST or stray byte seen
//   while idle discards it at once (Http1Connection). One timer per pool, armed for the earliest deadline of its
//   idle connections, retires them: not a timer per release (one per request under keep-alive load).
// - At most `maxConnections` connections (connecting included); further requests wait in a FIFO queue of at most
//   `maxPending`, beyond which they fail at once with kind 'overflow'.
// - The service's circuit breaker (the request's PoolAdmission) is asked too: 'connection' before opening a
//   connection (held until it closes), 'pending' before queueing (held until the request leaves the queue). A request
//   refused a connection queues (if 'pending' admits it and this pool has a connection that can serve it later);
//   otherwise it fails at once with kind 'overflow'.
// - `fresh` requests (the retry of a request that failed on a reused connection) never take an idle connection:
//   they open a new one, or take a connection handed over directly by an exchange that just finished on it.
import { EarliestDeadlineTimer } from '../../core/earliest-deadline-timer.js';
import { monotonicMs } from '../../core/monotonic-clock.js';
import { Http1Connection, type Http1ConnectionOwner } from './http1-connection.js';
import { connectUpstream, poolFailure } from './pool-common.js';
import type {
  AttemptControl,
  PoolAdmission,
  PoolStatsSink,
  UpstreamConnector,
  UpstreamHandler,
  UpstreamRequest,
  UpstreamTarget,
} from './pool-types.js';

export interface Http1PoolOptions {
  readonly maxConnections: number;
  readonly maxPending: number;
  /** Idle lifetime when the server sent no keep-alive hint. */
  readonly idleTimeoutMs: number;
  /** Retire this long before the server's hinted timeout. */
  readonly keepAliveMarginMs: number;
  /** Upper bound for a hinted idle lifetime. */
  readonly maxIdleTimeoutMs: number;
  readonly maxHeadBytes: number;
}

class Waiter implements AttemptControl {
  readonly pool: Http1Pool;
  readonly request: UpstreamRequest;
  readonly handler: UpstreamHandler;
  readonly fresh: boolean;
  readonly admit: PoolAdmission | undefined;
  /** Held while the waiter is queued. */
  releasePending: (() => void) | undefined;
  /** Set once the request runs on a connection. */
  inner: AttemptControl | undefined;
  cancelled = false;

  constructor(pool: Http1Pool, request: UpstreamRequest, handler: UpstreamHandler, fresh: boolean, admit: PoolAdmission | undefined) {
    this.pool = pool;
    this.admit = admit;
    this.request = request;
    this.handler = handler;
    this.fresh = fresh;
  }

  pause(): void {
    this.inner?.pause();
  }

  resume(): void {
    this.inner?.resume();
  }

  abort(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    if (this.inner !== undefined) this.inner.abort();
    else this.pool.cancel(this);
  }
}

function noSlot(): void {}
const NO_SLOT: () => void = noSlot;

/** The breaker's connection slot for `w` (NO_SLOT without a breaker), or undefined when it is refused. */
function admitConnection(w: Waiter): (() => void) | undefined {
  return w.admit === undefined ? NO_SLOT : w.admit.admit('connection');
}

function leftQueue(w: Waiter): void {
  const r = w.releasePending;
  if (r !== undefined) {
    w.releasePending = undefined;
    r();
  }
}

export class Http1Pool implements Http1ConnectionOwner {
  readonly target: UpstreamTarget;
  readonly #connector: UpstreamConnector;
  readonly #options: Http1PoolOptions;
  readonly #stats: PoolStatsSink;
  readonly #onEmpty: (pool: Http1Pool) => void;
  /** Idle connections, most recently used last. */
  readonly #idle: Http1Connection[] = [];
  readonly #all = new Set<Http1Connection>();
  #connecting = 0;
  readonly #queue: Waiter[] = [];
  /** Breaker slots of open connections (connections opened without an admission have none). */
  readonly #slots = new Map<Http1Connection, () => void>();
  #closed = false;
  /** Armed for the earliest deadline of the idle connections: retires those whose deadline passed. */
  readonly #retire = new EarliestDeadlineTimer(() => { this.#retireDue(); });

  constructor(
    target: UpstreamTarget,
    connector: UpstreamConnector,
    options: Http1PoolOptions,
    stats: PoolStatsSink,
    onEmpty: (pool: Http1Pool) => void,
  ) {
    this.target = target;
    this.#connector = connector;
    this.#options = options;
    this.#stats = stats;
    this.#onEmpty = onEmpty;
  }

  get connections(): number {
    return this.#all.size + this.#connecting;
  }

  get idleConnections(): number {
    return this.#idle.length;
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Run `request` on a connection of this pool. `fresh`: never on a connection that has been idle. */
  dispatch(request: UpstreamRequest, handler: UpstreamHandler, fresh: boolean, admit?: PoolAdmission): AttemptControl {
    const w = new Waiter(this, request, handler, fresh, admit);
    if (this.#closed) {
      handler.onError(poolFailure('connect-failure', new Error('pool closed')));
      return w;
    }
    if (!fresh) {
      const conn = this.#takeIdle();
      if (conn !== undefined) {
        this.#stats.increment('pool.http1.reused');
        this.#run(w, conn);
        return w;
      }
    }
    if (this.connections < this.#options.maxConnections) {
      const slot = admitConnection(w);
      if (slot !== undefined) {
        this.#open(w, slot);
        return w;
      }
    }
    if (fresh) {
      // Make room: a fresh connection replaces the oldest idle one (whose breaker slot is released first).
      const oldest = this.#idle.shift();
      if (oldest !== undefined) {
        oldest.destroy();
        const slot = admitConnection(w);
        if (slot !== undefined) {
          this.#open(w, slot);
          return w;
        }
      }
    }
    if (this.#queue.length >= this.#options.maxPending) {
      this.#stats.increment('pool.http1.overflow');
      handler.onError(poolFailure('overflow', new Error('upstream pool queue is full')));
      return w;
    }
    if (admit !== undefined) {
      // Nothing in this pool could ever serve a queued request: the breaker refused this pool's first connection.
      const release = this.connections > 0 ? admit.admit('pending') : undefined;
      if (release === undefined) {
        this.#stats.increment('pool.http1.circuit_open');
        handler.onError(poolFailure('overflow', new Error('circuit breaker open (upstream connections / pending requests)')));
        this.#checkEmpty();
        return w;
      }
      w.releasePending = release;
    }
    this.#queue.push(w);
    return w;
  }

  /** @internal a queued waiter gave up */
  cancel(w: Waiter): void {
    const i = this.#queue.indexOf(w);
    if (i >= 0) {
      this.#queue.splice(i, 1);
      leftQueue(w);
    }
    this.#checkEmpty();
  }

  /** Close idle connections and refuse new requests; busy connections finish their exchange and close. */
  close(): void {
    this.#closed = true;
    this.#retire.disarm();
    for (const c of this.#idle.splice(0)) c.destroy();
    for (const w of this.#queue.splice(0)) {
      leftQueue(w);
      w.cancelled = true;
      w.handler.onError(poolFailure('connect-failure', new Error('pool closed')));
    }
    this.#checkEmpty();
  }

  /** Destroy every connection, busy ones included. */
  destroy(): void {
    this.close();
    for (const c of [...this.#all]) c.destroy();
  }

  // ---- Http1ConnectionOwner ----

  onReusable(conn: Http1Connection): void {
    if (this.#closed) {
      conn.destroy();
      return;
    }
    const next = this.#dequeue();
    if (next !== undefined) {
      this.#run(next, conn);
      return;
    }
    const hint = conn.keepAliveHintMs;
    let idleMs = this.#options.idleTimeoutMs;
    if (hint !== undefined) idleMs = Math.min(hint - this.#options.keepAliveMarginMs, this.#options.maxIdleTimeoutMs);
    if (idleMs <= 0) {
      // The server keeps idle connections for about a second or less: reuse would race its close.
      this.#stats.increment('pool.http1.closed_short_keepalive');
      conn.destroy();
      return;
    }
    const now = monotonicMs();
    conn.idleDeadline = now + idleMs;
    this.#idle.push(conn);
    this.#retire.arm(conn.idleDeadline, now);
  }

  onGone(conn: Http1Connection): void {
    this.#all.delete(conn);
    const slot = this.#slots.get(conn);
    if (slot !== undefined) {
      this.#slots.delete(conn);
      slot();
    }
    const i = this.#idle.indexOf(conn);
    if (i >= 0) {
      this.#idle.splice(i, 1);
      this.#stats.increment('pool.http1.idle_closed_by_peer');
    }
    // Capacity freed: serve the oldest waiter with a new connection.
    this.#openForQueue();
  }

  // ---- internals ----

  #takeIdle(): Http1Connection | undefined {
    for (;;) {
      const conn = this.#idle.pop();
      if (conn === undefined) return undefined;
      if (conn.alive) return conn;
      conn.destroy();
    }
  }

  /** Retire every idle connection whose deadline has passed, then arm for the earliest one left. */
  #retireDue(): void {
    const now = monotonicMs();
    let next = Infinity;
    const idle = this.#idle;
    const due: Http1Connection[] = [];
    // Out of the idle list (kept in its order) before they are destroyed: onGone counts a connection still in it as
    // closed by the peer.
    let kept = 0;
    for (const conn of idle) {
      if (conn.idleDeadline <= now) {
        due.push(conn);
      } else {
        if (conn.idleDeadline < next) next = conn.idleDeadline;
        idle[kept++] = conn;
      }
    }
    idle.length = kept;
    for (const conn of due) {
      this.#stats.increment('pool.http1.idle_retired');
      conn.destroy();
    }
    if (next !== Infinity && !this.#closed) this.#retire.arm(next, now);
  }

  #run(w: Waiter, conn: Http1Connection): void {
    if (w.cancelled) {
      this.onReusable(conn);
      return;
    }
    w.inner = conn.dispatch(w.request, w.handler);
  }

  /** Take the oldest waiter out of the queue (its pending slot is released). */
  #dequeue(): Waiter | undefined {
    const w = this.#queue.shift();
    if (w !== undefined) leftQueue(w);
    return w;
  }

  /**
   * Capacity may have freed: open a connection for the oldest waiter. When the breaker refuses and this pool has no
   * connection left to serve the queue later, the waiters fail with 'overflow' (circuit-open) instead of hanging.
   */
  #openForQueue(): void {
    const head = this.#queue[0];
    if (head !== undefined && this.connections < this.#options.maxConnections && !this.#closed) {
      const slot = admitConnection(head);
      if (slot !== undefined) {
        this.#dequeue();
        this.#open(head, slot);
        return;
      }
      if (this.connections === 0) {
        for (const w of this.#queue.splice(0)) {
          leftQueue(w);
          w.cancelled = true;
          this.#stats.increment('pool.http1.circuit_open');
          w.handler.onError(poolFailure('overflow', new Error('circuit breaker open (upstream connections)')));
        }
      }
    }
    this.#checkEmpty();
  }

  #open(w: Waiter, slot: () => void): void {
    this.#connecting++;
    this.#stats.increment('pool.http1.connect');
    connectUpstream(this.#connector, this.target, (err, socket) => {
      this.#connecting--;
      if (err !== undefined || socket === undefined) {
        slot();
        this.#stats.increment('pool.http1.connect_failure');
        if (!w.cancelled) {
          w.cancelled = true;
          w.handler.onError(poolFailure('connect-failure', err ?? new Error('connect failed')));
        }
        // A waiter queued behind this attempt would wait forever if nothing else frees capacity: give it its own try.
        this.#openForQueue();
        return;
      }
      const conn = new Http1Connection(socket, this, this.#options.maxHeadBytes);
      this.#all.add(conn);
      if (slot !== NO_SLOT) this.#slots.set(conn, slot);
      if (this.#closed) {
        conn.destroy();
        if (!w.cancelled) w.handler.onError(poolFailure('connect-failure', new Error('pool closed')));
        return;
      }
      if (w.cancelled) {
        const next = this.#dequeue();
        if (next !== undefined) this.#run(next, conn);
        else this.onReusable(conn);
        return;
      }
      this.#run(w, conn);
    });
  }

  #checkEmpty(): void {
    if (this.#all.size === 0 && this.#connecting === 0 && this.#queue.length === 0) {
      this.#retire.disarm();
      this.#onEmpty(this);
    }
  }
}
