// The proxy's HTTP layer: one HTTP engine per listener (src/l7/engine/http-engine.ts), created once and kept across
// reloads, and the hand-offs the L4 stages call for connections detected (or declared) as HTTP/1.x or h2c. Each
// engine reads the current runtime's HTTP part at every request head. Inbound connections are handed over with the
// local app's delivery address as their original destination (the inbound cluster connects there from 127.0.0.6 /
// ::6).
import { CounterMap } from '../core/stats.js';
import type { Logger } from '../core/log.js';
import { inboundTarget, type Direction, type InboundDelivery } from '../l4/accept-route.js';
import type { HttpHandoff, HttpHandoffContext } from '../l4/http-handoff.js';
import { createHttpEngine, type HttpEngine, type HttpEngineOptions } from '../l7/engine/http-engine.js';
import type { HttpRuntime } from '../l7/http-runtime.js';
import type { HttpConnectionContext } from '../l7/request-types.js';
import type { HttpStatsJson } from '../admin/stats-json.js';

export interface HttpLayerOptions {
  readonly log: Logger;
  /** The HTTP runtime of a listener now. */
  readonly runtime: (direction: Direction) => HttpRuntime;
  /** inbound_delivery now. */
  readonly inboundDelivery: () => InboundDelivery;
  readonly engine?: Partial<HttpEngineOptions>;
}

export class HttpLayer {
  readonly handoffs: Readonly<Record<Direction, HttpHandoff>>;
  readonly #counters: Record<Direction, CounterMap> = { outbound: new CounterMap(), inbound: new CounterMap() };
  readonly #engines: Record<Direction, HttpEngine>;
  readonly #o: HttpLayerOptions;
  #shutdown: Promise<void> | undefined;

  constructor(o: HttpLayerOptions) {
    this.#o = o;
    const make = (direction: Direction): HttpEngine => createHttpEngine({
      log: o.log, stats: this.#counters[direction], runtime: () => o.runtime(direction),
    }, o.engine);
    this.#engines = { outbound: make('outbound'), inbound: make('inbound') };
    const handoff = (direction: Direction): HttpHandoff => ({
      handleConnection: (socket, bytes, ctx) => {
        if (this.#refused(direction)) socket.destroy();
        else this.#engines[direction].handleConnection(socket, bytes, this.#context(direction, ctx));
      },
      handleHttp1Handle: (handle, bytes, ctx, closed) => {
        if (this.#refused(direction)) {
          handle.listen({ data() {}, end() {}, close: () => { closed(0, 0); } });
          handle.destroy();
        } else {
          this.#engines[direction].handleHttp1Handle(handle, bytes, this.#context(direction, ctx), closed);
        }
      },
    });
    this.handoffs = { outbound: handoff('outbound'), inbound: handoff('inbound') };
  }

  /**
   * Stopped (the drain deadline passed): a connection detected just now is not served. During the drain itself
   * connections are served (the engine answers with Connection: close / GOAWAY).
   */
  #refused(direction: Direction): boolean {
    if (this.#shutdown === undefined) return false;
    this.#counters[direction].increment('http.connections_refused_draining');
    return true;
  }

  #context(direction: Direction, ctx: HttpHandoffContext): HttpConnectionContext {
    const c = ctx.connection;
    const originalDst = direction === 'inbound' ? inboundTarget(c.originalDst, this.#o.inboundDelivery()) : c.originalDst;
    return {
      protocol: ctx.protocol,
      originalDst: { address: originalDst.address, port: originalDst.port },
      sourceAddress: c.peerAddress ?? '',
      service: ctx.service,
      connectionId: c.id,
      peerIdentity: c.peerIdentity,
      peerCertificateHash: c.peerCertificateHash,
      // Every L7 log line of the connection names it (conn), as its L4 lines do.
      log: this.#o.log.child({ conn: c.id }),
    };
  }

  /**
   * Begin the drain of one listener's HTTP connections: answers say Connection: close, sessions get GOAWAY; requests
   * are still taken and answered (src/l7/engine/http-engine.ts drain()).
   */
  drain(direction: Direction): void {
    this.#engines[direction].drain();
  }

  /** End of the drain grace for one listener: idle HTTP/1.1 connections close, the others after their response. */
  closeIdle(direction: Direction): void {
    this.#engines[direction].closeIdle();
  }

  /**
   * Stop: both engines close idle connections and destroy what is left after `graceMs`, and their pools close. The
   * proxy calls it when its drain is over (with 0: the tracker already waited).
   */
  shutdown(graceMs: number): Promise<void> {
    this.#shutdown ??= Promise.all([
      this.#engines.outbound.shutdown(graceMs),
      this.#engines.inbound.shutdown(graceMs),
    ]).then(() => undefined);
    return this.#shutdown;
  }

  get activeConnections(): number {
    return this.#engines.outbound.activeConnections + this.#engines.inbound.activeConnections;
  }

  stats(routeTableVersion: number): HttpStatsJson {
    return {
      outbound: this.#counters.outbound.json(),
      inbound: this.#counters.inbound.json(),
      pools: { outbound: this.#engines.outbound.poolSnapshot(), inbound: this.#engines.inbound.poolSnapshot() },
      routeTableVersion,
    };
  }
}
