// Per-listener connection handling: accept -> original destination (done by the capture listener) -> route ->
// connect -> forward, plus the bookkeeping of every connection: counters, the live set used by drain, and one log
// line per outcome. Per-connection errors are counted by code and logged at warn; they never propagate.
import type { Socket } from 'node:net';
import { formatHostPort, unmapIpv4 } from '../core/addr.js';
import { isSystemError, type RemoraErrorCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { ListenerCounters, Stats } from '../core/stats.js';
import type { CaptureHandlers, CaptureRejectCode } from '../interceptor/capture-listener.js';
import type { OriginalDst } from '../interceptor/original-dst.js';
import { connectUpstream } from '../l4/connect.js';
import { TcpForward } from '../l4/tcp-forward.js';
import { routeConnection, type Direction, type RouteOptions } from './route.js';

/** The connections being forwarded right now, across listeners; drain waits on it and aborts what is left. */
export class ConnectionTracker {
  readonly #live = new Set<TcpForward>();
  #waiters: (() => void)[] = [];

  get size(): number { return this.#live.size; }

  add(forward: TcpForward): void { this.#live.add(forward); }

  delete(forward: TcpForward): void {
    this.#live.delete(forward);
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
  readonly route: RouteOptions;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
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
};

function systemCode(err: Error | undefined): string | undefined {
  return isSystemError(err) ? err.code : undefined;
}

export class ConnectionHandler implements CaptureHandlers {
  readonly #o: ConnectionHandlerOptions;
  readonly #debug: boolean;

  constructor(opts: ConnectionHandlerOptions) {
    this.#o = opts;
    this.#debug = opts.log.isLevelEnabled('debug');
  }

  // === hot path ===
  accepted(downstream: Socket, origDst: OriginalDst): void {
    const o = this.#o;
    o.counters.accepted++;
    o.counters.active++;
    const info: ConnectionInfo = {
      id: o.nextId(), peer: downstream.remoteAddress, peerPort: downstream.remotePort, origDst, startedAt: Date.now(),
    };
    const target = routeConnection(o.direction, origDst, o.route);
    let forward: TcpForward;
    try {
      const upstream = connectUpstream(target, o.connectTimeoutMs);
      forward = new TcpForward(downstream, upstream, {
        idleTimeoutMs: o.idleTimeoutMs,
        counters: o.counters,
        onEnd: (f) => { this.#ended(f, info); },
      });
    } catch (err) {
      // A bug or an unexpected synchronous throw from node:net: this connection fails, the proxy does not.
      o.counters.active--;
      o.counters.closed++;
      o.stats.countError('REMORA_ERR_INTERNAL', systemCode(err as Error));
      o.log.error({ ...this.#fields(info), err }, 'cannot set up forwarding; connection reset');
      if (!downstream.destroyed) downstream.resetAndDestroy();
      return;
    }
    o.tracker.add(forward);
    if (this.#debug) {
      o.log.debug({ ...this.#fields(info), upstream: formatHostPort(target.host, target.port), source: target.localAddress },
        'connection accepted');
    }
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
