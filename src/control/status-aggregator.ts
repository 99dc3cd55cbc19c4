// The control plane's view of the sidecars' status reports (status-report.ts; docs/control-plane.md#sidecar-status).
// Pure: no sockets, no timers; the caller passes the time.
//
//   * The last report of each sidecar is kept: its readiness, certificate and roots for GET /api/v1/sidecars, its
//     endpoints for GET /api/v1/endpoints (only sidecars heard of within freshMs count: a sidecar gone quiet stops
//     voting on an endpoint's health).
//   * The per-policy and per-route counters are cumulative at the sidecar; consecutive reports become deltas (the
//     rules of report-sequence.ts, shared with the golden metrics: a new epoch counts from zero, a counter that went
//     down counts from zero, the first report of a sidecar already reporting for a while is only a baseline, a replayed
//     seq is ignored) added to slotMs-wide slots kept for retentionMs; a window sums the slots of its last 1, 5 or 15
//     minutes over every sidecar.
//   * Bounded: at most maxSidecars sidecars (ingest answers 'too-many-sidecars' beyond), maxSeries policy series and
//     maxSeries route-backend series (new ones beyond are dropped and counted); sidecars not heard of for retentionMs
//     and slots older than it are pruned.
import { METRIC_WINDOWS, type MetricWindow } from './metrics-aggregator.js';
import { counterDeltas, sequenceStep } from './report-sequence.js';
import { POLICY_COUNTS, policyCounts, type CertificateStatus, type PolicyAction, type PolicyStatus, type StatusReport } from './status-report.js';

export interface SidecarStatusView {
  readonly ready: boolean;
  readonly certificate: CertificateStatus | null;
  readonly rootsNotAfter: readonly string[];
  /** ISO time the last report arrived. */
  readonly statusAt: string;
}

export interface EndpointView {
  readonly service: string;
  readonly address: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly weight: number;
  /** Reporting sidecars that see it healthy (in rotation) now. */
  readonly healthy: number;
  /** Reporting sidecars that have it ejected now. */
  readonly ejected: number;
  /** The sum of the sidecars' ejection counts. */
  readonly ejections: number;
  /** How many sidecars reported it. */
  readonly sidecars: number;
  readonly activeConnections: number;
}

/** A policy's decisions in a window, summed over the sidecars: the fields of a report's policy (status-report.ts). */
export type PolicyView = PolicyStatus;

export interface RouteSplitView {
  readonly route: string;
  readonly service: string;
  readonly backends: { readonly backend: string; readonly weight: number; readonly requests: number; readonly share: number }[];
}

/** A route as configured now (the control plane's desired state), for routes(). */
export interface ConfiguredRoute {
  readonly route: string;
  readonly service: string;
  readonly backends: readonly { readonly backend: string; readonly weight: number }[];
}

export interface StatusAggregatorOptions {
  readonly slotMs?: number;
  readonly retentionMs?: number;
  /** A sidecar's endpoints count for this long after its last report (default 30 s: six reports). */
  readonly freshMs?: number;
  readonly maxSidecars?: number;
  readonly maxSeries?: number;
}

export type StatusIngestResult = { readonly result: 'ok'; readonly changed: boolean } | { readonly result: 'duplicate' | 'too-many-sidecars' };

interface Slot {
  readonly index: number;
  readonly values: number[];
}

interface Series {
  readonly slots: Slot[];
}

interface SidecarEntry {
  epoch: string;
  seq: number;
  lastSeen: number;
  report: StatusReport;
  prevPolicies: Map<string, number[]>;
  prevRoutes: Map<string, number[]>;
}


/** Counts per key in time slots (one series per policy, per route and backend). */
class WindowedCounts {
  readonly #series = new Map<string, Series>();
  readonly #max: number;
  #dropped = 0;

  constructor(max: number) {
    this.#max = max;
  }

  get dropped(): number { return this.#dropped; }

  add(key: string, delta: readonly number[], slotIndex: number): void {
    if (delta.every((v) => v === 0)) return;
    let s = this.#series.get(key);
    if (s === undefined) {
      if (this.#series.size >= this.#max) {
        this.#dropped++;
        return;
      }
      s = { slots: [] };
      this.#series.set(key, s);
    }
    let slot = s.slots[s.slots.length - 1];
    if (slot === undefined || slot.index !== slotIndex) {
      slot = { index: slotIndex, values: delta.map(() => 0) };
      s.slots.push(slot);
    }
    for (let i = 0; i < delta.length; i++) slot.values[i] = (slot.values[i] ?? 0) + (delta[i] ?? 0);
  }

  /** The sums of `key`'s slots from index `first` on (zeros of `width` without any). */
  sum(key: string, first: number, width: number): number[] {
    const out = new Array<number>(width).fill(0);
    for (const slot of this.#series.get(key)?.slots ?? []) {
      if (slot.index < first) continue;
      for (let i = 0; i < width; i++) out[i] = (out[i] ?? 0) + (slot.values[i] ?? 0);
    }
    return out;
  }

  prune(oldest: number): void {
    for (const [k, s] of this.#series) {
      let drop = 0;
      while (drop < s.slots.length && (s.slots[drop] as Slot).index < oldest) drop++;
      if (drop > 0) s.slots.splice(0, drop);
      if (s.slots.length === 0) this.#series.delete(k);
    }
  }
}

const routeKey = (route: string, backend: string): string => `${route}\u0000${backend}`;
const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function sameCertificate(a: CertificateStatus | null, b: CertificateStatus | null): boolean {
  if (a === null || b === null) return a === b;
  return a.identity === b.identity && a.notAfter === b.notAfter && a.serial === b.serial;
}

export class StatusAggregator {
  readonly #slotMs: number;
  readonly #retentionMs: number;
  readonly #freshMs: number;
  readonly #maxSidecars: number;
  readonly #sidecars = new Map<string, SidecarEntry>();
  readonly #policies: WindowedCounts;
  readonly #routes: WindowedCounts;

  constructor(o: StatusAggregatorOptions = {}) {
    this.#slotMs = o.slotMs ?? 5_000;
    this.#retentionMs = o.retentionMs ?? METRIC_WINDOWS['15m'];
    this.#freshMs = o.freshMs ?? 30_000;
    this.#maxSidecars = o.maxSidecars ?? 10_000;
    this.#policies = new WindowedCounts(o.maxSeries ?? 2_000);
    this.#routes = new WindowedCounts(o.maxSeries ?? 10_000);
  }

  get sidecarCount(): number { return this.#sidecars.size; }
  /** Samples of new series dropped because maxSeries was reached (since start). */
  get droppedSeries(): number { return this.#policies.dropped + this.#routes.dropped; }

  /**
   * One report of the sidecar known by `sidecar` (pod name and identity) at time `now`. `changed`: its readiness or
   * certificate differ from its previous report (or this is its first).
   */
  ingest(sidecar: string, report: StatusReport, now: number): StatusIngestResult {
    let s = this.#sidecars.get(sidecar);
    const step = sequenceStep(s, report);
    if (step === 'duplicate') return { result: 'duplicate' };
    const before = s?.report;
    if (s === undefined) {
      if (this.#sidecars.size >= this.#maxSidecars) this.prune(now);
      if (this.#sidecars.size >= this.#maxSidecars) return { result: 'too-many-sidecars' };
      s = { epoch: report.epoch, seq: 0, lastSeen: now, report, prevPolicies: new Map(), prevRoutes: new Map() };
      this.#sidecars.set(sidecar, s);
    } else if (step === 'restart') {
      s.prevPolicies = new Map();
      s.prevRoutes = new Map();
    }
    s.epoch = report.epoch;
    s.seq = report.seq;
    s.lastSeen = now;
    s.report = report;
    const count = step !== 'baseline';
    const slot = Math.floor(now / this.#slotMs);
    const policies = new Map<string, number[]>();
    for (const p of report.policies) {
      const cur = POLICY_COUNTS.map((k) => p[k]);
      policies.set(p.name, cur);
      if (count) this.#policies.add(p.name, counterDeltas(s.prevPolicies.get(p.name), cur), slot);
    }
    const routes = new Map<string, number[]>();
    for (const r of report.routes) {
      for (const b of r.backends) {
        const key = routeKey(r.route, b.backend);
        const cur = [b.requests];
        routes.set(key, cur);
        if (count) this.#routes.add(key, counterDeltas(s.prevRoutes.get(key), cur), slot);
      }
    }
    s.prevPolicies = policies;
    s.prevRoutes = routes;
    const changed = before === undefined || before.ready !== report.ready || !sameCertificate(before.certificate, report.certificate);
    return { result: 'ok', changed };
  }

  /** The last status of a sidecar, or undefined before its first report. */
  sidecar(sidecar: string): SidecarStatusView | undefined {
    const s = this.#sidecars.get(sidecar);
    if (s === undefined) return undefined;
    return { ready: s.report.ready, certificate: s.report.certificate, rootsNotAfter: s.report.rootsNotAfter, statusAt: new Date(s.lastSeen).toISOString() };
  }

  /** Forget sidecars not heard of for the retention and slots older than it. */
  prune(now: number): void {
    for (const [k, s] of this.#sidecars) if (now - s.lastSeen > this.#retentionMs) this.#sidecars.delete(k);
    const oldest = Math.floor((now - this.#retentionMs) / this.#slotMs);
    this.#policies.prune(oldest);
    this.#routes.prune(oldest);
  }

  #fresh(now: number): SidecarEntry[] {
    return [...this.#sidecars.values()].filter((s) => now - s.lastSeen <= this.#freshMs);
  }

  /** Every endpoint the fresh sidecars report (of `service` only, when given), by service then address. */
  endpoints(now: number, service?: string): EndpointView[] {
    const out = new Map<string, { -readonly [K in keyof EndpointView]: EndpointView[K] }>();
    // Oldest report first: labels and weight as configured are the ones the latest report says.
    for (const s of this.#fresh(now).sort((a, b) => a.lastSeen - b.lastSeen)) {
      for (const e of s.report.endpoints) {
        if (service !== undefined && e.service !== service) continue;
        const key = `${e.service}\u0000${e.address}`;
        let v = out.get(key);
        if (v === undefined) {
          v = { service: e.service, address: e.address, labels: e.labels, weight: e.weight, healthy: 0, ejected: 0, ejections: 0, sidecars: 0, activeConnections: 0 };
          out.set(key, v);
        }
        v.labels = e.labels;
        v.weight = e.weight;
        if (e.healthy) v.healthy++;
        if (e.ejected) v.ejected++;
        v.ejections += e.ejections;
        v.sidecars++;
        v.activeConnections += e.activeConnections;
      }
    }
    return [...out.values()].sort((a, b) => byText(a.service, b.service) || byText(a.address, b.address));
  }

  /** First slot index of a window ending at `now`. */
  #first(window: MetricWindow, now: number): number {
    return Math.floor((now - METRIC_WINDOWS[window]) / this.#slotMs) + 1;
  }

  /**
   * Decisions per policy in the window, summed over the sidecars: every policy of `configured` (the desired state's,
   * with its action), then any other policy a sidecar heard of within the retention reports (its action as the latest
   * such report says).
   */
  policies(window: MetricWindow, now: number, configured: readonly { readonly name: string; readonly action: PolicyAction }[]): PolicyView[] {
    this.prune(now);
    const first = this.#first(window, now);
    const actions = new Map<string, PolicyAction>();
    for (const p of configured) actions.set(p.name, p.action);
    const reported = new Map<string, PolicyAction>();
    for (const s of [...this.#sidecars.values()].sort((a, b) => a.lastSeen - b.lastSeen)) for (const p of s.report.policies) reported.set(p.name, p.action);
    for (const [name, action] of reported) if (!actions.has(name)) actions.set(name, action);
    return [...actions].map(([name, action]) => {
      return { name, action, ...policyCounts(this.#policies.sum(name, first, POLICY_COUNTS.length)) };
    }).sort((a, b) => byText(a.name, b.name));
  }

  /**
   * Requests per route and backend in the window, summed over the sidecars, with each backend's share of its route's.
   * The routes of `configured` (the desired state: weights as configured now), then any other route a sidecar
   * heard of within the retention reported (weights as the latest such report says).
   */
  routes(window: MetricWindow, now: number, configured: readonly ConfiguredRoute[]): RouteSplitView[] {
    this.prune(now);
    const first = this.#first(window, now);
    const routes = new Map<string, ConfiguredRoute>();
    for (const r of configured) routes.set(r.route, r);
    const fixed = new Set(configured.map((c) => c.route));
    // Routes only the sidecars know: as the last report that has them says (every sidecar kept, fresh or not).
    for (const s of [...this.#sidecars.values()].sort((a, b) => a.lastSeen - b.lastSeen)) {
      for (const r of s.report.routes) {
        if (fixed.has(r.route)) continue;
        routes.set(r.route, { route: r.route, service: r.service, backends: r.backends.map((b) => ({ backend: b.backend, weight: b.weight })) });
      }
    }
    return [...routes.values()].map((r) => {
      const counts = r.backends.map((b) => this.#routes.sum(routeKey(r.route, b.backend), first, 1)[0] ?? 0);
      const total = counts.reduce((a, n) => a + n, 0);
      return {
        route: r.route, service: r.service,
        backends: r.backends.map((b, i) => {
          const requests = counts[i] ?? 0;
          return { backend: b.backend, weight: b.weight, requests, share: total === 0 ? 0 : Math.round((requests / total) * 10_000) / 10_000 };
        }),
      };
    }).sort((a, b) => byText(a.route, b.route));
  }
}
