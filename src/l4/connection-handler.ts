// Per-listener connection handling: accept -> original destination (done by the capture listener) -> service route
// -> (detect -> pick + connect with retries) -> forward, plus the bookkeeping of every connection: counters, the live
// set used by drain, and one log line per outcome. Per-connection errors are counted by code and logged at warn;
// they never propagate.
//
// Two paths:
//   * plain: a direct destination (passthrough, inbound delivery) whose protocol needs no detection (declared
//     opaque/tls, or HTTP while no HTTP engine is installed): connect and forward at once, as the opaque TCP proxy
//     always did (the upstream is wired while it connects; Node queues the client's bytes);
//   * staged (src/proxy/proxied-connection.ts): detection, services, retries, TLS origination, the HTTP hand-off.
import type { Socket } from 'node:net';
import { formatHostPort, unmapIpv4 } from '../core/addr.js';
import { isSystemError, type RemoraErrorCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { ListenerCounters, Stats } from '../core/stats.js';
import type { CaptureHandlers, CaptureRejectCode } from '../interceptor/capture-listener.js';
import type { OriginalDst } from '../interceptor/original-dst.js';
import { connectUpstream, type ConnectTarget } from './connect.js';
import type { SnifferOptions } from './detect/protocol-sniffer.js';
import { TcpForward } from './tcp-forward.js';
import { DEFAULT_HTTP_DESTINATION_CAPACITY, DEFAULT_HTTP_DESTINATION_TTL_MS, HttpDestinationMemory } from './detect/http-destinations.js';
import { ProxiedConnection, type ConnectionOutcome, type HttpHandoff, type PipelineDeps } from './staged-connection.js';
import type { Direction } from './inbound-delivery.js';
import type { ServiceRouter } from './accept-route.js';

/** Something the drain can reset: a forward, or a connection still in its early stages. */
export interface Abortable {
  abort(code: RemoraErrorCode): void;
}

/** The connections being handled right now, across listeners; drain waits on it and aborts what is left. */
export class ConnectionTracker {
  readonly #live = new Set<Abortable>();
  #waiters: (() => void)[] = [];

  get size(): number { return this.#live.size; }

  add(conn: Abortable): void { this.#live.add(conn); }

  delete(conn: Abortable): void {
    this.#live.delete(conn);
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

  /** Reset every open connection; each one's end is then counted under `code`. */
  abortAll(code: RemoraErrorCode): number {
    const all = [...this.#live];
    for (const f of all) f.abort(code);
    return all.length;
  }
}

export interface ConnectionHandlerOptions {
  readonly direction: Direction;
  readonly listener: string;
  readonly counters: ListenerCounters;
  readonly stats: Stats;
  readonly tracker: ConnectionTracker;
  readonly router: ServiceRouter;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Protocol detection deadline (detect_timeout). */
  readonly detectTimeoutMs: number;
  /** Where connections detected (or declared) as HTTP go; until set, HTTP is forwarded as opaque TCP. */
  readonly httpHandler?: HttpHandoff | undefined;
  readonly sniffer?: SnifferOptions | undefined;
  readonly log: Logger;
  /** Next connection id (shared by all listeners so ids are unique per process). */
  readonly nextId: () => number;
}

interface ConnectionInfo {
  readonly id: number;
  readonly peer: string | undefined;
  readonly peerPort: number | undefined;
  readonly origDst: OriginalDst;
  readonly startedAt: number;
}

const MESSAGES: Readonly<Record<string, string>> = {
  REMORA_ERR_UPSTREAM_CONNECT: 'connecting to the upstream failed; downstream reset',
  REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT: 'connecting to the upstream timed out; downstream reset',
  REMORA_ERR_UPSTREAM_RESET: 'the upstream failed the connection; downstream reset',
  REMORA_ERR_DOWNSTREAM_RESET: 'the downstream failed the connection; upstream reset',
  REMORA_ERR_DRAIN_TIMEOUT: 'connection still open at the drain deadline; both sides reset',
  REMORA_ERR_UPSTREAM_TLS: 'the TLS handshake with the upstream failed; downstream reset',
  REMORA_ERR_NO_HEALTHY_ENDPOINT: 'the service has no endpoint to connect to; downstream reset',
  REMORA_ERR_UNKNOWN_DESTINATION: 'no service matches the destination and the registry is registry-only; downstream reset',
};

function systemCode(err: Error | undefined): string | undefined {
  return isSystemError(err) ? err.code : undefined;
}

function tlsMessage(code: RemoraErrorCode, tlsCode: string | undefined): string {
  const m = MESSAGES[code] ?? 'connection failed';
  return tlsCode === undefined ? m : `${m} (${tlsCode})`;
}

const DECLARED = { opaque: 'declared:opaque', tls: 'declared:tls', http: 'declared:http', http2: 'declared:http2', detect: 'detect' } as const;

export class ConnectionHandler implements CaptureHandlers {
  readonly #o: ConnectionHandlerOptions;
  readonly #debug: boolean;
  readonly #pipeline: PipelineDeps;

  constructor(opts: ConnectionHandlerOptions) {
    this.#o = opts;
    this.#debug = opts.log.isLevelEnabled('debug');
    this.#pipeline = {
      router: opts.router,
      detectTimeoutMs: opts.detectTimeoutMs,
      idleTimeoutMs: opts.idleTimeoutMs,
      connectTimeoutMs: opts.connectTimeoutMs,
      httpHandler: opts.httpHandler,
      sniffer: opts.sniffer,
      counters: opts.counters,
      countSniff: (label) => { opts.stats.countSniff(label); },
      httpDestinations: opts.httpHandler === undefined ? undefined : new HttpDestinationMemory({
        capacity: DEFAULT_HTTP_DESTINATION_CAPACITY, ttlMs: DEFAULT_HTTP_DESTINATION_TTL_MS, clock: { now: () => Date.now() },
      }),
    };
  }

  // === hot path ===
  accepted(downstream: Socket, origDst: OriginalDst): void {
    const o = this.#o;
    o.counters.accepted++;
    o.counters.active++;
    const info: ConnectionInfo = {
      id: o.nextId(), peer: downstream.remoteAddress, peerPort: downstream.remotePort, origDst, startedAt: Date.now(),
    };
    const route = o.router.accept(o.direction, origDst);
    const d = route.declared;
    if (route.destination.kind === 'direct' && !route.needName
      && (d === 'opaque' || d === 'tls' || (d !== 'detect' && o.httpHandler === undefined))) {
      o.stats.countSniff(DECLARED[d]);
      this.#plain(downstream, info, route.destination.target);
      return;
    }
    let conn: ProxiedConnection;
    try {
      conn = new ProxiedConnection(this.#pipeline, downstream, origDst, route, (c, outcome) => { this.#stagedEnded(c, info, outcome); });
      o.tracker.add(conn);
      if (this.#debug) {
        const dest = route.destination;
        o.log.debug({
          ...this.#fields(info), upstream: conn.describeDestination(),
          source: dest.kind === 'direct' ? dest.target.localAddress : undefined, declared: d, needName: route.needName || undefined,
        }, 'connection accepted');
      }
      conn.start();
    } catch (err) {
      this.#setupFailed(downstream, info, err);
    }
  }

  #plain(downstream: Socket, info: ConnectionInfo, target: ConnectTarget): void {
    const o = this.#o;
    let forward: TcpForward;
    try {
      const upstream = connectUpstream(target, o.connectTimeoutMs);
      forward = new TcpForward(downstream, upstream, {
        idleTimeoutMs: o.idleTimeoutMs,
        counters: o.counters,
        onEnd: (f) => { this.#ended(f, info); },
      });
    } catch (err) {
      this.#setupFailed(downstream, info, err);
      return;
    }
    o.tracker.add(forward);
    if (this.#debug) {
      o.log.debug({ ...this.#fields(info), upstream: formatHostPort(target.host, target.port), source: target.localAddress },
        'connection accepted');
    }
  }

  /** A bug or an unexpected synchronous throw from node:net: this connection fails, the proxy does not. */
  #setupFailed(downstream: Socket, info: ConnectionInfo, err: unknown): void {
    const o = this.#o;
    o.counters.active--;
    o.counters.closed++;
    o.stats.countError('REMORA_ERR_INTERNAL', systemCode(err as Error));
    o.log.error({ ...this.#fields(info), err }, 'cannot set up forwarding; connection reset');
    if (!downstream.destroyed) downstream.resetAndDestroy();
  }

  #ended(forward: TcpForward, info: ConnectionInfo): void {
    const o = this.#o;
    o.counters.active--;
    o.counters.closed++;
    o.tracker.delete(forward);
    const code = forward.errorCode;
    if (code !== undefined) {
      o.stats.countError(code, systemCode(forward.error));
      o.log.warn({ ...this.#fields(info), ...this.#result(forward, info), code, err: forward.error },
        MESSAGES[code] ?? 'connection failed');
    } else if (this.#debug) {
      o.log.debug({ ...this.#fields(info), ...this.#result(forward, info), idleTimeout: forward.idleTimedOut || undefined },
        'connection closed');
    }
  }

  #stagedEnded(conn: ProxiedConnection, info: ConnectionInfo, r: ConnectionOutcome): void {
    const o = this.#o;
    o.counters.active--;
    o.counters.closed++;
    o.tracker.delete(conn);
    const code = r.code;
    if (code === undefined && !this.#debug) return;
    const fields = {
      ...this.#fields(info),
      protocol: r.protocol,
      service: r.service,
      endpoint: r.endpoint,
      attempts: r.attempts > 1 ? r.attempts : undefined,
      http: r.http || undefined,
      bytesIn: r.bytesIn,
      bytesOut: r.bytesOut,
      durMs: Date.now() - info.startedAt,
    };
    if (code !== undefined) {
      const cause = r.tlsCode ?? systemCode(r.error);
      o.stats.countError(code, cause);
      o.log.warn({ ...fields, code, tlsCode: r.tlsCode, err: r.error }, tlsMessage(code, r.tlsCode));
    } else {
      o.log.debug({ ...fields, idleTimeout: r.idleTimeout || undefined }, 'connection closed');
    }
  }
  rejected(socket: Socket, code: CaptureRejectCode, reason: string, err?: Error): void {
    const o = this.#o;
    o.counters.accepted++;
    o.counters.closed++;
    o.stats.countError(code, systemCode(err));
    o.log.warn({
      listener: o.listener,
      peer: socket.remoteAddress === undefined ? undefined : formatHostPort(unmapIpv4(socket.remoteAddress), socket.remotePort ?? 0),
      local: socket.localAddress === undefined ? undefined : formatHostPort(unmapIpv4(socket.localAddress), socket.localPort ?? 0),
      code,
      err,
    }, `${reason}; connection reset`);
  }

  listenerError(err: Error): void {
    const code = (err as { code?: unknown }).code;
    this.#o.stats.countError(typeof code === 'string' ? code : 'REMORA_ERR_INTERNAL');
    this.#o.log.warn({ listener: this.#o.listener, err }, 'listener error');
  }

  #fields(info: ConnectionInfo): Record<string, unknown> {
    return {
      conn: info.id,
      listener: this.#o.listener,
      peer: info.peer === undefined ? undefined : formatHostPort(unmapIpv4(info.peer), info.peerPort ?? 0),
      origDst: formatHostPort(info.origDst.address, info.origDst.port),
    };
  }

  #result(forward: TcpForward, info: ConnectionInfo): Record<string, unknown> {
    return {
      bytesIn: forward.bytesDownstreamToUpstream,
      bytesOut: forward.bytesUpstreamToDownstream,
      durMs: Date.now() - info.startedAt,
    };
  }
}
