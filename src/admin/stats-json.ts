// The body of GET /stats: the proxy-wide counters (src/core/stats.ts), every service's cluster (endpoints with load
// and health, breaker, outlier detection: src/upstream/cluster.ts ClusterStatus), the HTTP layer's counters and
// pools, and the configuration in force with the reload counts.
import type { MeshStatsJson } from '../core/mesh-stats.js';
import type { CoreStatsJson } from '../core/stats.js';
import type { ClusterStatus } from '../upstream/cluster.js';

/** The HTTP engines' counters (names in docs/l7-engines.md) per listener, and their pools. */
export interface HttpStatsJson {
  readonly outbound: Readonly<Record<string, number>>;
  readonly inbound: Readonly<Record<string, number>>;
  readonly pools: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** The snapshot version of the route table in force. */
  readonly routeTableVersion: number;
}

/** The configuration in force and what happened to reloads. */
export interface ConfigStatsJson {
  readonly version: number;
  readonly hash: string;
  /** "file:/etc/remora/remora.ini", "admin:route web weights", "defaults". */
  readonly source: string;
  /** ISO time the snapshot in force was accepted. */
  readonly loadedAt: string;
  /** Reload attempts by result: ok (swapped in), rejected (problems; the old config serves), unchanged (same hash). */
  readonly reloads: Readonly<Record<'ok' | 'rejected' | 'unchanged', number>>;
  /** The last rejected reload's problems (cleared by a later successful one). */
  readonly lastRejected?: { readonly at: string; readonly issues: readonly string[] } | undefined;
}

/** The state of one redirect probe (src/proxy/readiness.ts). */
export type ProbeStateJson = 'pending' | 'ok' | 'failed' | 'unavailable';

/** Readiness and the redirect probes behind it (src/proxy/readiness.ts, docs/operations.md). */
export interface ReadinessJson {
  readonly ready: boolean;
  /** The body of /ready: "ready", "starting", "draining", "not ready: <probe> redirect probe failed: <why>". */
  readonly reason: string;
  /** ISO time of the last change of `ready` or `reason`. */
  readonly since: string;
  /** readiness_probe_interval in ms; 0 = off (no probes). */
  readonly probeIntervalMs: number;
  /** Per probe (loopback-ipv4, loopback-ipv6, outbound), the ones that run here. */
  readonly probes: Readonly<Record<string, {
    readonly state: ProbeStateJson;
    readonly detail: string;
    readonly lastAt?: string | undefined;
    readonly passed: number;
    readonly failed: number;
  }>>;
}

/** The drain (absent before one begins). */
export interface DrainJson {
  /** ISO time the drain began. */
  readonly startedAt: string;
  /** What began it: "received SIGTERM", "POST /drain", "POST /quitquitquit". */
  readonly reason: string;
  /** The proxy exits at the end of the drain (false after POST /drain alone). */
  readonly exiting: boolean;
  /** The drain grace is over: the inbound listener is closed. */
  readonly graceOver: boolean;
}

/** Plus mesh security (src/core/mesh-stats.ts): `mtls` handshakes and failures by reason, `identity` rotations, `authz` decisions. */
export interface ProxyStatsJson extends CoreStatsJson, MeshStatsJson {
  /** Per [service NAME]: its cluster (absent when the proxy has no services). */
  readonly services?: Readonly<Record<string, ClusterStatus>>;
  /** The HTTP layer (absent when http_engine = off). */
  readonly http?: HttpStatsJson;
  readonly config: ConfigStatsJson;
  readonly readiness?: ReadinessJson;
  readonly drain?: DrainJson;
}
