// The control plane's aggregation of the sidecars' golden metrics (GET /api/v1/metrics, docs/control-plane.md).
// Pure: no sockets, no timers; the caller passes the time.
//
//   * Each sidecar reports cumulative counters per edge (golden-samples.ts) every few seconds; the aggregator turns
//     consecutive reports into deltas and adds them to per-edge time slots (slotMs wide, kept for retentionMs).
//   * Counter resets (the rules of report-sequence.ts, shared with the status reports): a report from a new process of the sidecar (another `epoch`) counts from zero; a counter lower
//     than in the previous report (a series evicted and made again, labels changed) counts from zero too, as
//     Prometheus's rate() does. The first report seen from a sidecar already reporting for a while (seq > 1: the
//     control plane restarted, or the sidecar was forgotten) is only a baseline, so history is not counted as new.
//   * Bounded: at most maxEdges edge series (further new edges are dropped and counted), at most maxSidecars
//     sidecars; sidecars not heard of for retentionMs and slots older than retentionMs are pruned.
//   * Windows: rates over the slots of the last 1, 5 or 15 minutes (divided by the window, or by the time since the
//     aggregator started when shorter); success rate = non-5xx / all; p50/p95/p99 from the summed bucket counts,
//     interpolated as Prometheus's histogram_quantile does.
//   * Per service, the destination's sidecars' reports are used when there are any (each request counted once, as
//     Linkerd's and Kiali's inbound view), else the sources'; per edge (source -> destination) the source's, else the
//     destination's.
import { ENVOY_DEFAULT_BUCKETS } from '../telemetry/histogram.js';
import type { GoldenEdgeSample, Reporter } from '../telemetry/golden-samples.js';
import { sequenceStep } from './report-sequence.js';

export const METRIC_WINDOWS = { '1m': 60_000, '5m': 300_000, '15m': 900_000 } as const;
export type MetricWindow = keyof typeof METRIC_WINDOWS;

export function isMetricWindow(v: string): v is MetricWindow {
  return Object.hasOwn(METRIC_WINDOWS, v);
}

export interface MetricsReport {
  /** Changes with each process of the sidecar (its counters start over). */
  readonly epoch: string;
  /** 1 for a process's first report, then increasing. */
  readonly seq: number;
  readonly edges: readonly GoldenEdgeSample[];
}

export interface ServiceStat {
  readonly name: string;
  readonly rps: number;
  /** null without requests in the window. */
  readonly successRate: number | null;
  readonly p50: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
  /** TCP connections open now (opened - closed, as last reported). */
  readonly tcpConnections: number;
  readonly requests: number;
}

export interface EdgeStat {
  readonly source: string;
  readonly destination: string;
  readonly reporter: Reporter;
  readonly rps: number;
  readonly successRate: number | null;
  readonly p50: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
  /** Every request of the edge in the window went over mesh mTLS. */
  readonly mtls: boolean;
  readonly requests: number;
}

export interface MetricsView {
  readonly window: string;
  readonly services: ServiceStat[];
  readonly edges: EdgeStat[];
  readonly sidecars: number;
  /** Samples of new edges dropped because maxEdges was reached (since start). */
  readonly droppedEdges: number;
}

export interface MetricsAggregatorOptions {
  /** When the aggregator started (rates over a window longer than its life divide by its life). */
  readonly startedAt: number;
  readonly slotMs?: number;
  readonly retentionMs?: number;
  readonly maxEdges?: number;
  readonly maxSidecars?: number;
}

export type IngestResult = 'ok' | 'duplicate' | 'too-many-sidecars';

const BUCKETS = ENVOY_DEFAULT_BUCKETS.length + 1;

/** Prometheus's histogram_quantile on non-cumulative bucket counts with these upper bounds (+Inf last, implied). */
export function histogramQuantile(q: number, bounds: readonly number[], counts: ArrayLike<number>): number | null {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i] as number;
  if (total <= 0) return null;
  const rank = q * total;
  let cum = 0;
  for (let b = 0; b < counts.length; b++) {
    const c = counts[b] as number;
    if (cum + c >= rank && c > 0) {
      if (b >= bounds.length) return bounds[bounds.length - 1] ?? null; // the +Inf bucket: its lower bound
      const end = bounds[b] as number;
      const start = b === 0 ? 0 : (bounds[b - 1] as number);
      if (b === 0 && end <= 0) return end;
      return start + (end - start) * ((rank - cum) / c);
    }
    cum += c;
  }
  return bounds[bounds.length - 1] ?? null;
}

interface Slot {
  readonly index: number;
  readonly requests: [number, number, number, number];
  readonly latency: Float64Array;
  tcpOpened: number;
  tcpBytes: number;
}

interface EdgeSeries {
  readonly reporter: Reporter;
  readonly source: string;
  readonly destination: string;
  readonly mtls: boolean;
  /** Oldest first. */
  readonly slots: Slot[];
}

interface SidecarState {
  epoch: string;
  seq: number;
  lastSeen: number;
  prev: Map<string, GoldenEdgeSample>;
}

interface Sum {
  requests: [number, number, number, number];
  latency: Float64Array;
  tcpOpened: number;
  tcpBytes: number;
  allMtls: boolean;
}

function edgeKey(e: Pick<GoldenEdgeSample, 'reporter' | 'source' | 'destination' | 'mtls'>): string {
  return `${e.reporter}\u0000${e.source}\u0000${e.destination}\u0000${e.mtls ? 1 : 0}`;
}

/** Counter deltas from prev to cur; from zero when any counter went down (a reset). */
function delta(prev: GoldenEdgeSample | undefined, cur: GoldenEdgeSample): GoldenEdgeSample {
  if (prev === undefined) return cur;
  const down = cur.requests.some((v, i) => v < (prev.requests[i] ?? 0)) || cur.latency.some((v, i) => v < (prev.latency[i] ?? 0))
    || cur.tcpOpened < prev.tcpOpened || cur.tcpClosed < prev.tcpClosed || cur.tcpBytes < prev.tcpBytes;
  if (down) return cur;
  return {
    ...cur,
    requests: [cur.requests[0] - prev.requests[0], cur.requests[1] - prev.requests[1], cur.requests[2] - prev.requests[2], cur.requests[3] - prev.requests[3]],
    latency: cur.latency.map((v, i) => v - (prev.latency[i] ?? 0)),
    tcpOpened: cur.tcpOpened - prev.tcpOpened,
    tcpClosed: cur.tcpClosed - prev.tcpClosed,
    tcpBytes: cur.tcpBytes - prev.tcpBytes,
  };
}

const round = (v: number, digits = 3): number => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};

export class MetricsAggregator {
  readonly #startedAt: number;
  readonly #slotMs: number;
  readonly #retentionMs: number;
  readonly #maxEdges: number;
  readonly #maxSidecars: number;
  readonly #sidecars = new Map<string, SidecarState>();
  readonly #edges = new Map<string, EdgeSeries>();
  #droppedEdges = 0;

  constructor(o: MetricsAggregatorOptions) {
    this.#startedAt = o.startedAt;
    this.#slotMs = o.slotMs ?? 5_000;
    this.#retentionMs = o.retentionMs ?? METRIC_WINDOWS['15m'];
    this.#maxEdges = o.maxEdges ?? 2_000;
    this.#maxSidecars = o.maxSidecars ?? 10_000;
  }

  get edgeCount(): number { return this.#edges.size; }
  get sidecarCount(): number { return this.#sidecars.size; }
  get droppedEdges(): number { return this.#droppedEdges; }
  get maxEdges(): number { return this.#maxEdges; }

  /** One report of the sidecar known by `sidecar` (pod name and identity) at time `now`. */
  ingest(sidecar: string, report: MetricsReport, now: number): IngestResult {
    let s = this.#sidecars.get(sidecar);
    const step = sequenceStep(s, report);
    if (step === 'duplicate') return 'duplicate';
    if (s === undefined) {
      if (this.#sidecars.size >= this.#maxSidecars) this.prune(now);
      if (this.#sidecars.size >= this.#maxSidecars) return 'too-many-sidecars';
      s = { epoch: report.epoch, seq: 0, lastSeen: now, prev: new Map() };
      this.#sidecars.set(sidecar, s);
    } else if (step === 'restart') {
      s.epoch = report.epoch; // a restarted sidecar: its counters started over
      s.prev = new Map();
    }
    const baseline = step === 'baseline';
    s.seq = report.seq;
    s.lastSeen = now;
    const next = new Map<string, GoldenEdgeSample>();
    const slot = Math.floor(now / this.#slotMs);
    for (const cur of report.edges) {
      const key = edgeKey(cur);
      next.set(key, cur);
      if (baseline) continue;
      this.#add(key, delta(s.prev.get(key), cur), slot);
    }
    s.prev = next;
    return 'ok';
  }

  #add(key: string, d: GoldenEdgeSample, slotIndex: number): void {
    const empty = d.requests.every((v) => v === 0) && d.tcpOpened === 0 && d.tcpBytes === 0;
    if (empty) return;
    let e = this.#edges.get(key);
    if (e === undefined) {
      if (this.#edges.size >= this.#maxEdges) {
        this.#droppedEdges++;
        return;
      }
      e = { reporter: d.reporter, source: d.source, destination: d.destination, mtls: d.mtls, slots: [] };
      this.#edges.set(key, e);
    }
    let slot = e.slots[e.slots.length - 1];
    if (slot === undefined || slot.index !== slotIndex) {
      slot = { index: slotIndex, requests: [0, 0, 0, 0], latency: new Float64Array(BUCKETS), tcpOpened: 0, tcpBytes: 0 };
      e.slots.push(slot);
    }
    for (let i = 0; i < 4; i++) slot.requests[i] = (slot.requests[i] as number) + (d.requests[i] as number);
    const n = Math.min(BUCKETS, d.latency.length);
    for (let i = 0; i < n; i++) slot.latency[i] = (slot.latency[i] as number) + (d.latency[i] as number);
    slot.tcpOpened += d.tcpOpened;
    slot.tcpBytes += d.tcpBytes;
  }

  /** Forget sidecars not heard of for the retention and slots older than it. */
  prune(now: number): void {
    const oldest = Math.floor((now - this.#retentionMs) / this.#slotMs);
    for (const [k, s] of this.#sidecars) if (now - s.lastSeen > this.#retentionMs) this.#sidecars.delete(k);
    for (const [k, e] of this.#edges) {
      let drop = 0;
      while (drop < e.slots.length && (e.slots[drop] as Slot).index < oldest) drop++;
      if (drop > 0) e.slots.splice(0, drop);
      if (e.slots.length === 0) this.#edges.delete(k);
    }
  }

  /** The services and edges over the last `windowMs`. */
  query(window: MetricWindow, now: number): MetricsView {
    this.prune(now);
    const windowMs = METRIC_WINDOWS[window];
    const seconds = Math.max(this.#slotMs, Math.min(windowMs, now - this.#startedAt)) / 1000;
    const first = Math.floor((now - windowMs) / this.#slotMs) + 1;
    // Sums per (reporter, source, destination) and per (reporter, destination).
    const edgeSums = new Map<string, { reporter: Reporter; source: string; destination: string; sum: Sum }>();
    const serviceSums = new Map<string, { reporter: Reporter; destination: string; sum: Sum }>();
    const newSum = (): Sum => ({ requests: [0, 0, 0, 0], latency: new Float64Array(BUCKETS), tcpOpened: 0, tcpBytes: 0, allMtls: true });
    const addTo = (sum: Sum, slot: Slot, mtls: boolean): void => {
      for (let i = 0; i < 4; i++) sum.requests[i] = (sum.requests[i] as number) + (slot.requests[i] as number);
      for (let i = 0; i < BUCKETS; i++) sum.latency[i] = (sum.latency[i] as number) + (slot.latency[i] as number);
      sum.tcpOpened += slot.tcpOpened;
      sum.tcpBytes += slot.tcpBytes;
      if (!mtls && slot.requests.some((v) => v > 0)) sum.allMtls = false;
    };
    for (const e of this.#edges.values()) {
      for (const slot of e.slots) {
        if (slot.index < first) continue;
        const ek = `${e.reporter}\u0000${e.source}\u0000${e.destination}`;
        let es = edgeSums.get(ek);
        if (es === undefined) edgeSums.set(ek, es = { reporter: e.reporter, source: e.source, destination: e.destination, sum: newSum() });
        addTo(es.sum, slot, e.mtls);
        const sk = `${e.reporter}\u0000${e.destination}`;
        let ss = serviceSums.get(sk);
        if (ss === undefined) serviceSums.set(sk, ss = { reporter: e.reporter, destination: e.destination, sum: newSum() });
        addTo(ss.sum, slot, e.mtls);
      }
    }
    // TCP connections open now, per (reporter, destination), from the sidecars' last reports.
    const open = new Map<string, number>();
    for (const s of this.#sidecars.values()) {
      for (const e of s.prev.values()) {
        const k = `${e.reporter}\u0000${e.destination}`;
        open.set(k, (open.get(k) ?? 0) + Math.max(0, e.tcpOpened - e.tcpClosed));
      }
    }
    const stats = (sum: Sum): { rps: number; successRate: number | null; p50: number | null; p95: number | null; p99: number | null; requests: number } => {
      const total = sum.requests[0] + sum.requests[1] + sum.requests[2] + sum.requests[3];
      const q = (x: number): number | null => {
        const v = histogramQuantile(x, ENVOY_DEFAULT_BUCKETS, sum.latency);
        return v === null ? null : round(v);
      };
      return {
        rps: round(total / seconds), successRate: total === 0 ? null : round((total - sum.requests[3]) / total, 4),
        p50: q(0.5), p95: q(0.95), p99: q(0.99), requests: total,
      };
    };
    const services: ServiceStat[] = [];
    const names = new Set([...serviceSums.values()].map((s) => s.destination));
    for (const k of open.keys()) if ((open.get(k) ?? 0) > 0) names.add(k.split('\u0000')[1] as string);
    for (const name of names) {
      const reporter: Reporter = serviceSums.has(`destination\u0000${name}`) ? 'destination' : 'source';
      const sum = serviceSums.get(`${reporter}\u0000${name}`)?.sum ?? newSum();
      const tcp = open.get(`${reporter}\u0000${name}`) ?? open.get(`${reporter === 'destination' ? 'source' : 'destination'}\u0000${name}`) ?? 0;
      services.push({ name, ...stats(sum), tcpConnections: tcp });
    }
    const edges: EdgeStat[] = [];
    for (const es of edgeSums.values()) {
      if (es.reporter === 'destination' && edgeSums.has(`source\u0000${es.source}\u0000${es.destination}`)) continue;
      const s = stats(es.sum);
      edges.push({ source: es.source, destination: es.destination, reporter: es.reporter, ...s, mtls: s.requests > 0 && es.sum.allMtls });
    }
    services.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    edges.sort((a, b) => (a.source + '\u0000' + a.destination < b.source + '\u0000' + b.destination ? -1 : 1));
    return { window, services, edges, sidecars: this.#sidecars.size, droppedEdges: this.#droppedEdges };
  }
}
