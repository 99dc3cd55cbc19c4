// Report sources: everything the proxy reports about itself (the admin API's bodies, the control plane's reports)
// is read through ONE mechanism, the Collector, so that with `workers` > 1 it covers every worker:
//
//   single process   collect(name) = read(proxy)
//   workers = N      the primary sends {kind: 'collect', body: name} to every live worker (src/proxy/workers/ipc-peer.ts),
//                    each worker answers read(its proxy), and the primary answers merge(parts)
//
// Adding a report (as the control plane's status report, `status`, was):
//   1. add an entry here: `read` (what one proxy process says; JSON-able: it crosses the IPC channel by structured
//      clone) and `merge` (how N workers' answers become one proxy's: src/proxy/workers/merge.ts has the rules for
//      counters, JSON, Prometheus text and golden edges);
//   2. read it with `collector.collect('NAME')` where it is needed (src/cli/proxy-control.ts hands the collector to
//      the sync client; src/proxy/workers/primary.ts to the admin listener). Nothing else changes: the worker side
//      answers any name of this table.
import type { RouteAdminView } from '../../admin/route-weights.js';
import type { ProxyStatsJson } from '../../admin/stats-json.js';
import type { GoldenEdgeSample } from '../../telemetry/golden-samples.js';
import type { SidecarStatus } from '../../control/status-report.js';
import type { CertsJson } from '../certs-json.js';
import type { ConnectionsJson, Proxy } from '../proxy.js';
import type { ReadinessJson } from '../readiness.js';
import { mergeExpositions, mergeGolden, mergeJson, type WorkerPart } from './merge.js';
import { mergeStatus } from './merge-status.js';

export interface ReportSource<T> {
  /** What one proxy process reports. */
  read(proxy: Proxy): T | Promise<T>;
  /** The workers' reports as one proxy's. */
  merge(parts: readonly WorkerPart<T>[]): T;
}

/** One worker's line in /stats `workers` (the distribution of the traffic over the workers). */
export interface WorkerStatsJson {
  readonly worker: number;
  readonly pid: number;
  readonly state: string;
  readonly uptimeMs: number;
  /** The config version the worker serves (the same in every worker once a reload is committed). */
  readonly configVersion: number;
  readonly connections: ProxyStatsJson['connections'];
  readonly listeners: Readonly<Record<string, { readonly accepted: number; readonly active: number }>>;
  /** HTTP requests read by the worker's engines (both listeners), when the HTTP engine runs. */
  readonly requests?: number;
}

export interface StatsWithWorkers extends ProxyStatsJson {
  readonly workers?: readonly WorkerStatsJson[];
}

function workerLine(p: WorkerPart<ProxyStatsJson>): WorkerStatsJson {
  const s = p.value;
  const listeners: Record<string, { accepted: number; active: number }> = {};
  for (const [name, l] of Object.entries(s.listeners)) listeners[name] = { accepted: l.connections.accepted, active: l.connections.active };
  const requests = s.http === undefined ? undefined : (s.http.outbound['http.requests'] ?? 0) + (s.http.inbound['http.requests'] ?? 0);
  return {
    worker: p.worker, pid: p.pid, state: s.state, uptimeMs: s.uptimeMs, configVersion: s.config.version, connections: s.connections, listeners,
    ...(requests === undefined ? {} : { requests }),
  };
}

const first = <T>(parts: readonly WorkerPart<T>[]): T => {
  const p = parts[0];
  if (p === undefined) throw new Error('no worker answered');
  return p.value;
};

const source = <T>(s: ReportSource<T>): ReportSource<T> => s;

/** The report sources, by name (see the top of this file). */
export const REPORT_SOURCES = {
  /** GET /stats: summed (src/proxy/workers/merge.ts), plus one line per worker. */
  stats: source({
    read: (p: Proxy): StatsWithWorkers => p.stats(),
    merge: (parts: readonly WorkerPart<StatsWithWorkers>[]): StatsWithWorkers => ({
      ...mergeJson(parts.map((x) => x.value)), workers: parts.map(workerLine),
    }),
  }),
  /** GET /stats/prometheus: one exposition, series summed. */
  prometheus: source({
    read: (p: Proxy): string => p.prometheus(),
    merge: (parts: readonly WorkerPart<string>[]): string => mergeExpositions(parts.map((x) => x.value)),
  }),
  /** The golden-metric edges the sync client reports to the control plane. */
  golden: source({
    read: (p: Proxy): GoldenEdgeSample[] => p.golden(),
    merge: (parts: readonly WorkerPart<GoldenEdgeSample[]>[]): GoldenEdgeSample[] => mergeGolden(parts.map((x) => x.value)),
  }),
  /**
   * The status the sync client reports to the control plane (POST /api/v1/sync/status): counters summed, endpoints
   * merged per endpoint (src/proxy/workers/merge-status.ts); the primary folds its own readiness in.
   */
  status: source({
    read: (p: Proxy): SidecarStatus => p.status(),
    merge: (parts: readonly WorkerPart<SidecarStatus>[]): SidecarStatus => mergeStatus(parts),
  }),
  /** Readiness (the primary folds it with mergeReadiness: every worker must be ready). */
  readiness: source({
    read: (p: Proxy): ReadinessJson => p.readiness(),
    merge: (parts: readonly WorkerPart<ReadinessJson>[]): ReadinessJson => first([...parts].sort((a, b) => Number(a.value.ready) - Number(b.value.ready))),
  }),
  /** GET /certs: the same identity in every worker. */
  certs: source({ read: (p: Proxy): CertsJson => p.certs(), merge: first }),
  /** GET /debug/connections: every worker's, each connection with its worker. */
  connections: source({
    read: (p: Proxy): ConnectionsJson => p.connections(),
    merge: (parts: readonly WorkerPart<ConnectionsJson>[]): ConnectionsJson => {
      const connections = parts.flatMap((x) => x.value.connections.map((c) => ({ ...c, worker: x.worker })));
      return { at: first(parts).at, count: connections.length, connections };
    },
  }),
  /** GET /routes: the same table in every worker. */
  routes: source({
    read: (p: Proxy): { version: number; routes: RouteAdminView[] } => p.runtimes.routes(),
    merge: first,
  }),
  /** The SPIFFE ID in force ('' without an identity): what the sync client says it is. */
  identity: source({
    read: (p: Proxy): string => p.runtime.mesh?.identity.spiffeId ?? '',
    merge: first,
  }),
} as const;

export type ReportName = keyof typeof REPORT_SOURCES;
export type ReportValue<K extends ReportName> = (typeof REPORT_SOURCES)[K] extends ReportSource<infer T> ? T : never;

/** Reads a report of the whole proxy (every worker's, merged). */
export interface Collector {
  collect<K extends ReportName>(name: K): Promise<ReportValue<K>>;
}

/** A single process: the report is the proxy's own. */
export function localCollector(proxy: Proxy): Collector {
  return {
    collect: async <K extends ReportName>(name: K): Promise<ReportValue<K>> => {
      const source = REPORT_SOURCES[name] as ReportSource<ReportValue<K>>;
      return source.read(proxy);
    },
  };
}

/** A worker: answer the primary's collect of `name` (unknown names are refused). */
export function readReport(proxy: Proxy, name: unknown): unknown {
  if (typeof name !== 'string' || !Object.hasOwn(REPORT_SOURCES, name)) throw new Error(`no report named ${String(name)}`);
  return (REPORT_SOURCES[name as ReportName] as ReportSource<unknown>).read(proxy);
}

/** The primary: fold the workers' answers to `name`. */
export function mergeReport<K extends ReportName>(name: K, parts: readonly WorkerPart<ReportValue<K>>[]): ReportValue<K> {
  return (REPORT_SOURCES[name] as ReportSource<ReportValue<K>>).merge(parts);
}
