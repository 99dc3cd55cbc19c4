// HTTP/2 downstream engine on remora's own codec (src/l7/h2/, `http2_codec = remora`, the default): h2c with prior
// knowledge, and HTTP/2 over TLS once the integrator terminated it. Each handed-over connection is an H2Downstream
// (h2-downstream.ts); the engine holds them, the drain, and one sweep timer for the idle timeout of all of them.
// The node:http2 engine (http2-engine.ts, `http2_codec = node`) is the same contract on Node's stack.
import type { Socket } from 'node:net';
import { LiveSet, type LiveEntry } from '../../core/live-set.js';
import type { HttpConnectionContext } from '../request-types.js';
import { EmptyWaiters, shutdownEngine } from './drain-wait.js';
import type { EngineCore } from './engine-core.js';
import { H2Downstream, type H2DownstreamOwner } from './h2-downstream.js';

const SWEEP_MAX_MS = 1_000;
const SWEEP_MIN_MS = 25;

export class H2Engine implements H2DownstreamOwner {
  readonly core: EngineCore;
  readonly #conns = new LiveSet<H2Downstream>();
  #draining = false;
  #stopped = false;
  readonly #empty = new EmptyWaiters(() => this.#conns.size);
  #sweep: NodeJS.Timeout | undefined;
  readonly #sweepMs: number;

  constructor(core: EngineCore) {
    this.core = core;
    const idle = core.options.downstreamIdleTimeoutMs;
    this.#sweepMs = idle > 0 ? Math.min(SWEEP_MAX_MS, Math.max(SWEEP_MIN_MS, Math.floor(idle / 4))) : 0;
  }

  get activeConnections(): number {
    return this.#conns.size;
  }

  get draining(): boolean {
    return this.#draining;
  }

  handle(socket: Socket, initialBytes: Buffer, ctx: HttpConnectionContext): void {
    if (this.#stopped) {
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    this.core.stats.increment('http2.connections');
    const conn = new H2Downstream(socket, this, ctx);
    if (this.#sweep === undefined && this.#sweepMs > 0) {
      this.#sweep = setInterval(this.#onSweep, this.#sweepMs);
      this.#sweep.unref();
    }
    conn.start(initialBytes);
  }

  /** Begin the drain: GOAWAY to every connection (each closes after its streams in flight). */
  drain(): void {
    this.#draining = true;
    for (const c of this.#conns.items()) c.goaway();
  }

  closeIdle(): void {
    this.drain();
  }

  whenEmpty(): Promise<void> {
    return this.#empty.wait();
  }

  destroyAll(): void {
    this.#stopped = true;
    for (const c of this.#conns.items()) c.destroy();
  }

  shutdown(graceMs: number): Promise<void> {
    return shutdownEngine(this, graceMs);
  }

  opened(conn: H2Downstream): LiveEntry<H2Downstream> {
    return this.#conns.add(conn);
  }

  closed(entry: LiveEntry<H2Downstream>): void {
    this.#conns.delete(entry);
    if (this.#conns.size === 0 && this.#sweep !== undefined) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
    this.#empty.closed();
  }

  readonly #onSweep = (): void => {
    const now = Date.now();
    const idle = this.core.options.downstreamIdleTimeoutMs;
    for (const c of this.#conns.items()) {
      if (c.idleSince > 0 && now - c.idleSince >= idle) c.goaway('idle');
    }
  };
}
