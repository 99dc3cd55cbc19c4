// The upstream connection pools of the L7 engines: one pool per (cluster, endpoint, protocol), created on first use
// and dropped when it has no connection and no waiting request left. HTTP/1.1 pools reuse keep-alive connections
// (pool-http1.ts); HTTP/2 pools multiplex streams over few sessions (pool-http2.ts). Every upstream socket comes from
// the injected UpstreamConnector, so TLS origination or socket marks stay the integrator's business.
import { Socket } from 'node:net';
import { Http1Pool, type Http1PoolOptions } from './http1-pool.js';
import { Http2Pool, type Http2PoolOptions } from './http2-pool.js';
import type {
  AttemptControl,
  PoolAdmission,
  PoolStatsSink,
  UpstreamConnector,
  UpstreamHandler,
  UpstreamProtocol,
  UpstreamRequest,
  UpstreamTarget,
} from './pool-types.js';

export interface UpstreamPoolOptions {
  readonly http1: Http1PoolOptions;
  readonly http2: Http2PoolOptions;
}

export const DEFAULT_POOL_OPTIONS: UpstreamPoolOptions = Object.freeze({
  http1: Object.freeze({
    maxConnections: 1024,
    maxPending: 1024,
    idleTimeoutMs: 4_000,
    keepAliveMarginMs: 1_000,
    maxIdleTimeoutMs: 600_000,
    connectTimeoutMs: 10_000,
    maxHeadBytes: 64 * 1024,
  }),
  http2: Object.freeze({
    maxSessions: 4,
    maxPending: 1024,
    idleTimeoutMs: 60_000,
    connectTimeoutMs: 10_000,
    maxSessionMemoryMb: 32,
    maxHeaderListPairs: 2000,
  }),
});

function ignoreError(): void {}

/** The default connector: plain TCP, half-open allowed, Nagle off. */
export const tcpConnector: UpstreamConnector = (target, signal) =>
  new Promise<Socket>((resolve, reject) => {
    const socket = new Socket({ allowHalfOpen: true });
    // Permanent: an error after the owner detached must never be unhandled.
    socket.on('error', ignoreError);
    const onAbort = (): void => {
      socket.destroy();
      reject(signal.reason instanceof Error ? signal.reason : new Error('connect aborted'));
    };
    const onError = (err: Error): void => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(err);
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.connect({ host: target.address, port: target.port });
  });

export interface PoolEndpoint {
  readonly address: string;
  readonly port: number;
}

export class UpstreamPools {
  readonly #connector: UpstreamConnector;
  readonly #options: UpstreamPoolOptions;
  readonly #stats: PoolStatsSink;
  readonly #h1 = new Map<string, Http1Pool>();
  readonly #h2 = new Map<string, Http2Pool>();
  #closed = false;

  constructor(connector: UpstreamConnector, options: UpstreamPoolOptions, stats: PoolStatsSink) {
    this.#connector = connector;
    this.#options = options;
    this.#stats = stats;
  }

  /**
   * Run one attempt of `request` on `endpoint` of `cluster` over `protocol`. `fresh` (HTTP/1.1): do not use a
   * connection that has been idle in the pool. `admit`: the cluster's breaker for new connections and queued
   * requests (absent = only the pool's own caps apply, e.g. passthrough).
   */
  dispatch(
    cluster: string,
    endpoint: PoolEndpoint,
    protocol: UpstreamProtocol,
    request: UpstreamRequest,
    handler: UpstreamHandler,
    fresh: boolean,
    admit?: PoolAdmission,
  ): AttemptControl {
    const key = `${cluster}|${endpoint.address}|${endpoint.port}`;
    const target: UpstreamTarget = { address: endpoint.address, port: endpoint.port, protocol, cluster };
    if (protocol === 'http2') {
      let pool = this.#h2.get(key);
      if (pool === undefined) {
        pool = new Http2Pool(target, this.#connector, this.#options.http2, this.#stats, (p) => {
          if (this.#h2.get(key) === p) this.#h2.delete(key);
        });
        if (this.#closed) pool.close();
        this.#h2.set(key, pool);
      }
      return pool.dispatch(request, handler, admit);
    }
    let pool = this.#h1.get(key);
    if (pool === undefined) {
      pool = new Http1Pool(target, this.#connector, this.#options.http1, this.#stats, (p) => {
        if (this.#h1.get(key) === p) this.#h1.delete(key);
      });
      if (this.#closed) pool.close();
      this.#h1.set(key, pool);
    }
    return pool.dispatch(request, handler, fresh, admit);
  }

  /** Counts for /stats and tests. */
  snapshot(): { http1Pools: number; http1Connections: number; http1Idle: number; http2Pools: number; http2Sessions: number } {
    let c = 0;
    let idle = 0;
    for (const p of this.#h1.values()) {
      c += p.connections;
      idle += p.idleConnections;
    }
    let s = 0;
    for (const p of this.#h2.values()) s += p.sessions;
    return { http1Pools: this.#h1.size, http1Connections: c, http1Idle: idle, http2Pools: this.#h2.size, http2Sessions: s };
  }

  /** Stop pooling: idle connections close, HTTP/2 sessions get GOAWAY, exchanges in flight finish. */
  close(): void {
    this.#closed = true;
    for (const p of [...this.#h1.values()]) p.close();
    for (const p of [...this.#h2.values()]) p.close();
  }

  /** Tear everything down, exchanges in flight included. */
  destroy(): void {
    this.#closed = true;
    for (const p of [...this.#h1.values()]) p.destroy();
    for (const p of [...this.#h2.values()]) p.destroy();
    this.#h1.clear();
    this.#h2.clear();
  }
}
