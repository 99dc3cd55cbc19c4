// The upstream connection pools of the L7 engines: one pool per (cluster, endpoint, protocol), created on first use
// and dropped when it has no connection and no waiting request left. HTTP/1.1 pools reuse keep-alive connections
// (http1-pool.ts); HTTP/2 pools multiplex streams over few sessions (http2-pool.ts). Every upstream socket comes from
// the cluster's connect path (ClusterView.connect: plain TCP or TLS origination, with its connect timeout).
//
// Pools are keyed by the cluster object's id: a cluster carried over by a reload keeps its pools; a cluster that a
// reload replaced or removed closes, and its pools drain (idle connections close at once, connections busy with an
// exchange close when it is over, HTTP/2 sessions get GOAWAY) while new requests use the new cluster's pools. When
// endpoints leave a cluster, their pools drain the same way.
import type { Socket } from 'node:net';
import { RemoraError } from '../../core/errors.js';
import type { ClusterView } from '../../upstream/cluster.js';
import { isHandshakeFailure } from '../../upstream/transport/connect.js';
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
    maxHeadBytes: 64 * 1024,
  }),
  http2: Object.freeze({
    maxSessions: 4,
    maxPending: 1024,
    idleTimeoutMs: 60_000,
    maxSessionMemoryMb: 32,
    maxHeaderListPairs: 2000,
  }),
});

/** The pools' connector for a cluster: its connect path, with the failure as an Error the exchange can count. */
function clusterConnector(cluster: ClusterView): UpstreamConnector {
  return (target: UpstreamTarget, settle: (err: Error | undefined, socket: Socket | undefined) => void) => {
    cluster.connect({ address: target.address, port: target.port }, {
      onUpstreamReady: (socket) => { settle(undefined, socket); },
      onUpstreamFailed: (_socket, f) => {
        settle(isHandshakeFailure(f.code)
          ? new RemoraError(f.code, `the TLS handshake with the upstream failed (${f.tlsCode ?? 'unknown'})`, { cause: f.error })
          : f.error, undefined);
      },
    });
  };
}

export interface PoolEndpoint {
  readonly address: string;
  readonly port: number;
}

interface ClusterPools {
  readonly connector: UpstreamConnector;
  readonly unsubscribe: () => void;
  /** Pool keys of this cluster, by endpoint key ("10.0.0.1:80"). */
  readonly keys: Map<string, Set<string>>;
}

export class UpstreamPools {
  readonly #options: UpstreamPoolOptions;
  readonly #stats: PoolStatsSink;
  readonly #h1 = new Map<string, Http1Pool>();
  readonly #h2 = new Map<string, Http2Pool>();
  /** By cluster id. */
  readonly #clusters = new Map<string, ClusterPools>();
  #closed = false;

  constructor(options: UpstreamPoolOptions, stats: PoolStatsSink) {
    this.#options = options;
    this.#stats = stats;
  }

  #clusterPools(cluster: ClusterView): ClusterPools {
    let c = this.#clusters.get(cluster.id);
    if (c === undefined) {
      const id = cluster.id;
      const keys = new Map<string, Set<string>>();
      const unsubscribe = cluster.subscribe({
        onEndpointsRemoved: (removed) => {
          for (const ep of removed) {
            for (const key of keys.get(ep) ?? []) this.#drain(key);
            keys.delete(ep);
          }
        },
        onClusterClosed: () => {
          for (const set of keys.values()) for (const key of set) this.#drain(key);
          this.#clusters.delete(id);
        },
      });
      c = { connector: clusterConnector(cluster), unsubscribe, keys };
      this.#clusters.set(id, c);
    }
    return c;
  }

  /** Close one pool gracefully and forget it (new requests to that key get a new pool). */
  #drain(key: string): void {
    const h1 = this.#h1.get(key);
    if (h1 !== undefined) {
      this.#h1.delete(key);
      h1.close();
    }
    const h2 = this.#h2.get(key);
    if (h2 !== undefined) {
      this.#h2.delete(key);
      h2.close();
    }
  }

  /**
   * Run one attempt of `request` on `endpoint` of `cluster` over `protocol`. `fresh` (HTTP/1.1): do not use a
   * connection that has been idle in the pool. `admit`: the cluster's breaker for new connections and queued
   * requests (absent = only the pool's own caps apply).
   */
  dispatch(
    cluster: ClusterView,
    endpoint: PoolEndpoint,
    protocol: UpstreamProtocol,
    request: UpstreamRequest,
    handler: UpstreamHandler,
    fresh: boolean,
    admit?: PoolAdmission,
  ): AttemptControl {
    const key = `${cluster.id}|${endpoint.address}|${endpoint.port}|${protocol}`;
    const target: UpstreamTarget = { address: endpoint.address, port: endpoint.port, protocol, cluster: cluster.name };
    const c = this.#clusterPools(cluster);
    const epKey = endpoint.address.includes(':') ? `[${endpoint.address}]:${endpoint.port}` : `${endpoint.address}:${endpoint.port}`;
    if (protocol === 'http2') {
      let pool = this.#h2.get(key);
      if (pool === undefined) {
        pool = new Http2Pool(target, c.connector, this.#options.http2, this.#stats, (p) => {
          if (this.#h2.get(key) === p) this.#h2.delete(key);
        });
        if (this.#closed) pool.close();
        this.#h2.set(key, pool);
        (c.keys.get(epKey) ?? c.keys.set(epKey, new Set()).get(epKey))?.add(key);
      }
      return pool.dispatch(request, handler, admit);
    }
    let pool = this.#h1.get(key);
    if (pool === undefined) {
      pool = new Http1Pool(target, c.connector, this.#options.http1, this.#stats, (p) => {
        if (this.#h1.get(key) === p) this.#h1.delete(key);
      });
      if (this.#closed) pool.close();
      this.#h1.set(key, pool);
      (c.keys.get(epKey) ?? c.keys.set(epKey, new Set()).get(epKey))?.add(key);
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
    for (const c of this.#clusters.values()) c.unsubscribe();
    this.#clusters.clear();
    for (const p of [...this.#h1.values()]) p.destroy();
    for (const p of [...this.#h2.values()]) p.destroy();
    this.#h1.clear();
    this.#h2.clear();
  }
}
