// HTTP/1.x downstream engine on the raw connection: no http.Server, no IncomingMessage / ServerResponse. Each
// handed-over connection, a net.Socket or the accepted TCP handle itself (downstream-transport.ts), is an
// Http1Downstream (http1-downstream.ts): request heads are parsed by the strict RequestParser
// (src/l7/http/http1-request-parser.ts: 64 KiB heads, raw header arrays keeping case and order, every smuggling
// defence), each request becomes a RequestContext run through the runtime's request chain (src/l7/http-runtime.ts)
// with an Http1Responder writing straight to the transport (http1-responder.ts); Upgrade and CONNECT requests use a
// RawResponder on the connection made a socket (http1-tunnel.ts).
//
// The engine holds the connections, the drain (drain / closeIdle / whenEmpty / destroyAll) and one sweep timer for
// the headers timeout (408) and the idle timeout of all its connections (no timer per connection or request).
import type { HttpConnectionContext } from '../request-types.js';
import type { DownstreamTransport } from './downstream-transport.js';
import { EmptyWaiters, shutdownEngine } from './drain-wait.js';
import type { EngineCore } from './engine-core.js';
import { LiveSet, type LiveEntry } from '../../core/live-set.js';
import { Http1Downstream, type DownstreamOwner } from './http1-downstream.js';

/** The sweep runs at a quarter of the shortest timeout, within these bounds (ms). */
const SWEEP_MIN_MS = 25;
const SWEEP_MAX_MS = 1_000;

export class Http1Engine implements DownstreamOwner {
  readonly core: EngineCore;
  /** The live connections (a LiveSet, src/core/live-set.ts: a Set would keep closed ones through scavenges). */
  readonly #conns = new LiveSet<Http1Downstream>();
  /** Draining: every response says Connection: close; connections are still taken and served. */
  #draining = false;
  /** End of the drain grace: idle connections are closed, and each one as soon as it becomes idle. */
  #closingIdle = false;
  /** Stopped (the drain deadline): connections handed over now are destroyed. */
  #stopped = false;
  readonly #empty = new EmptyWaiters(() => this.#conns.size);
  #sweep: NodeJS.Timeout | undefined;
  readonly #sweepMs: number;

  constructor(core: EngineCore) {
    this.core = core;
    const o = core.options;
    const shortest = Math.min(o.headersTimeoutMs > 0 ? o.headersTimeoutMs : Infinity, o.downstreamIdleTimeoutMs > 0 ? o.downstreamIdleTimeoutMs : Infinity);
    this.#sweepMs = Number.isFinite(shortest) ? Math.min(SWEEP_MAX_MS, Math.max(SWEEP_MIN_MS, Math.floor(shortest / 4))) : 0;
  }

  get activeConnections(): number {
    return this.#conns.size;
  }

  /** Responses say Connection: close (the drain has begun). */
  get closing(): boolean {
    return this.#draining;
  }

  get closingIdle(): boolean {
    return this.#closingIdle;
  }

  handle(transport: DownstreamTransport, initialBytes: Buffer, ctx: HttpConnectionContext): void {
    const conn = new Http1Downstream(transport, this, ctx);
    this.core.stats.increment('http1.connections');
    if (transport.directReads) this.core.stats.increment('http1.direct_reads');
    if (transport.kind === 'handle') this.core.stats.increment('http1.tcp_handles');
    // Draining, a connection is still served (its request gets Connection: close): its bytes were read by detection,
    // and a well-behaved client that was told to reconnect must not find the door shut. Only the deadline refuses.
    if (this.#stopped) {
      transport.destroy();
      return;
    }
    if (this.#sweep === undefined && this.#sweepMs > 0) {
      this.#sweep = setInterval(this.#onSweep, this.#sweepMs);
      this.#sweep.unref();
    }
    conn.start(initialBytes);
  }

  /** Begin the drain: every response from now on carries Connection: close and ends its connection. */
  drain(): void {
    this.#draining = true;
  }

  /**
   * End of the drain grace: close the idle connections now (no request in flight, no byte of a next request read),
   * and every other one as soon as it becomes idle (its response in flight carries Connection: close).
   * A connection holding unanswered bytes is never closed under them.
   */
  closeIdle(): void {
    this.#draining = true;
    this.#closingIdle = true;
    for (const c of this.#conns.items()) this.#closeIfIdle(c);
  }

  /** Resolves when no connection is left. */
  whenEmpty(): Promise<void> {
    return this.#empty.wait();
  }

  /** Destroy every connection left (the drain deadline); connections handed over afterwards are destroyed. */
  destroyAll(): void {
    this.#stopped = true;
    for (const c of this.#conns.items()) c.destroy();
  }

  shutdown(graceMs: number): Promise<void> {
    return shutdownEngine(this, graceMs);
  }

  becameIdle(conn: Http1Downstream): void {
    // A response that began before the drain kept the connection alive: close it now if it stays idle.
    if (this.#closingIdle) this.#closeIfIdle(conn);
  }

  opened(conn: Http1Downstream): LiveEntry<Http1Downstream> {
    return this.#conns.add(conn);
  }

  closed(entry: LiveEntry<Http1Downstream>): void {
    this.#conns.delete(entry);
    if (this.#conns.size === 0 && this.#sweep !== undefined) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
    this.#empty.closed();
  }

  #closeIfIdle(conn: Http1Downstream): void {
    // destroy(), not end(): a late request then meets a reset the client can retry, never a silent half-close.
    if (!conn.transport.destroyed && conn.idle) {
      this.core.stats.increment('http1.drain_idle_closed');
      conn.destroy();
    }
  }

  readonly #onSweep = (): void => {
    const now = Date.now();
    const o = this.core.options;
    for (const c of this.#conns.items()) c.checkTimers(now, o.headersTimeoutMs, o.downstreamIdleTimeoutMs);
  };
}
