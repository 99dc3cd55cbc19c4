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
import { H2Pool } from './h2-pool.js';
import type {
  AttemptControl,
  MultiplexPool,
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
  /** The endpoint's key as its cluster names it ("10.0.0.1:80", "[fd00::1]:80"): the pools of a cluster are keyed by it. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
}

/** The pools of one cluster object, by endpoint key; each endpoint has at most one HTTP/1.1 and one HTTP/2 pool. */
interface ClusterPools {
  readonly connector: UpstreamConnector;
  readonly unsubscribe: () => void;
  readonly h1: Map<string, Http1Pool>;
  readonly h2: Map<string, MultiplexPool>;
}

export class UpstreamPools {
  readonly #options: UpstreamPoolOptions;
  readonly #stats: PoolStatsSink;
  /** By cluster id. */
  readonly #clusters = new Map<string, ClusterPools>();
  #closed = false;
  /** HTTP/2 pools on remora's codec (h2-pool.ts) or on node:http2 (http2-pool.ts). */
  readonly #codec: 'remora' | 'node';

  constructor(options: UpstreamPoolOptions, stats: PoolStatsSink, codec: 'remora' | 'node' = 'remora') {
    this.#options = options;
    this.#stats = stats;
    this.#codec = codec;
  }

  #clusterPools(cluster: ClusterView): ClusterPools {
    let c = this.#clusters.get(cluster.id);
    if (c === undefined) {
      const id = cluster.id;
      const h1 = new Map<string, Http1Pool>();
      const h2 = new Map<string, MultiplexPool>();
      const unsubscribe = cluster.subscribe({
        onEndpointsRemoved: (removed) => {
          for (const ep of removed) drainEndpoint(h1, h2, ep);
        },
        onClusterClosed: () => {
          for (const ep of [...h1.keys(), ...h2.keys()]) drainEndpoint(h1, h2, ep);
          this.#clusters.delete(id);
        },
      });
      c = { connector: clusterConnector(cluster), unsubscribe, h1, h2 };
      this.#clusters.set(id, c);
    }
    return c;
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
    const c = this.#clusterPools(cluster);
    const epKey = endpoint.key;
    if (protocol === 'http2') {
      const pools = c.h2;
      let pool = pools.get(epKey);
      if (pool === undefined) {
        const target: UpstreamTarget = { address: endpoint.address, port: endpoint.port, protocol, cluster: cluster.name };
        const onEmpty = (p: MultiplexPool): void => {
          if (pools.get(epKey) === p) pools.delete(epKey);
        };
        pool = this.#codec === 'remora'
          ? new H2Pool(target, c.connector, this.#options.http2, this.#stats, onEmpty)
          : new Http2Pool(target, c.connector, this.#options.http2, this.#stats, onEmpty);
        if (this.#closed) pool.close();
        pools.set(epKey, pool);
      }
      return pool.dispatch(request, handler, admit);
    }
    const pools = c.h1;
    let pool = pools.get(epKey);
    if (pool === undefined) {
      const target: UpstreamTarget = { address: endpoint.address, port: endpoint.port, protocol, cluster: cluster.name };
      pool = new Http1Pool(target, c.connector, this.#options.http1, this.#stats, (p) => {
        if (pools.get(epKey) === p) pools.delete(epKey);
      });
      if (this.#closed) pool.close();
      pools.set(epKey, pool);
    }
    return pool.dispatch(request, handler, fresh, admit);
  }

  #allH1(): Http1Pool[] {
    const out: Http1Pool[] = [];
    for (const c of this.#clusters.values()) out.push(...c.h1.values());
    return out;
  }

  #allH2(): MultiplexPool[] {
    const out: MultiplexPool[] = [];
    for (const c of this.#clusters.values()) out.push(...c.h2.values());
    return out;
  }

  /** Counts for /stats and tests. */
  snapshot(): { http1Pools: number; http1Connections: number; http1Idle: number; http2Pools: number; http2Sessions: number } {
    let c = 0;
    let idle = 0;
    const h1 = this.#allH1();
    for (const p of h1) {
      c += p.connections;
      idle += p.idleConnections;
    }
    const h2 = this.#allH2();
    let s = 0;
    for (const p of h2) s += p.sessions;
    return { http1Pools: h1.length, http1Connections: c, http1Idle: idle, http2Pools: h2.length, http2Sessions: s };
  }

  /** Stop pooling: idle connections close, HTTP/2 sessions get GOAWAY, exchanges in flight finish. */
  close(): void {
    this.#closed = true;
    for (const p of this.#allH1()) p.close();
    for (const p of this.#allH2()) p.close();
  }

  /** Tear everything down, exchanges in flight included. */
  destroy(): void {
    this.#closed = true;
    const h1 = this.#allH1();
    const h2 = this.#allH2();
    for (const c of this.#clusters.values()) c.unsubscribe();
    this.#clusters.clear();
    for (const p of h1) p.destroy();
    for (const p of h2) p.destroy();
  }
}

/** Close an endpoint's pools gracefully and forget them (new requests to it get new pools). */
function drainEndpoint(h1: Map<string, Http1Pool>, h2: Map<string, MultiplexPool>, key: string): void {
  const p1 = h1.get(key);
  if (p1 !== undefined) {
    h1.delete(key);
    p1.close();
  }
  const p2 = h2.get(key);
  if (p2 !== undefined) {
    h2.delete(key);
    p2.close();
  }
}
