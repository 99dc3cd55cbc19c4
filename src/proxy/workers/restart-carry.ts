// Counters that stay monotonic when a worker restarts (docs/operations.md#workers). A worker's counters live in its
// process: when it dies (a crash, SIGKILL, an out-of-memory kill) and is started again, the new process counts from
// zero, so a plain sum over the workers would go DOWN by what the dead process had counted, and a consumer that takes
// deltas of cumulative counters (the control plane's windows, src/control/report-sequence.ts; Prometheus's rate())
// would read the drop as a reset and count the survivors' whole totals a second time.
//
// So the primary keeps, per report, the last reading it took of each worker process, and when that process is gone
// (its slot is empty or runs another pid) folds the reading's cumulative part into a base that is added to every later
// merge. What a dead process counted after the primary's last reading of it is lost with it (as a single process that
// is killed loses what it had not reported), but nothing is ever counted twice and the merged counters never go down.
// A process still running that did not answer one collect (a timeout) stands in with its last reading for that merge.
// Pure: no I/O; the primary says which pid runs in which slot.
import { MIN_FAMILIES, SAME_FAMILIES, mergeExpositions, mergeGolden, type WorkerPart } from './merge.js';
import type { GoldenEdgeSample } from '../../telemetry/golden-samples.js';
import { addPolicyCounts, type EndpointStatus, type PolicyStatus, type RouteStatus, type SidecarStatus } from '../../control/status-report.js';

/** How the counters of a report outlive the process that counted them. */
export interface CarryRule<T> {
  /**
   * `kept` (undefined: nothing yet) plus the cumulative part of `last`, the last reading of a process now gone
   * (`gone`), or of one still running that did not answer this time (its counters stand in until it answers again).
   */
  keep(kept: T | undefined, last: T, gone: boolean): T;
  /** The live workers' merged report with what gone processes counted added in. */
  add(merged: T, kept: T): T;
}

/** One report's carry: the last reading per worker slot and the base of the processes gone. */
export class RestartCarry<T> {
  readonly #rule: CarryRule<T>;
  readonly #last = new Map<number, { readonly pid: number; readonly value: T }>();
  #kept: T | undefined;

  constructor(rule: CarryRule<T>) {
    this.#rule = rule;
  }

  /**
   * The merge of `parts` (the live workers' answers, already merged into `merged`) made monotonic: a slot whose last
   * reading came from a process that no longer runs in it (`running(slot)`: the pid running now, undefined: none) has
   * that reading folded into the base first.
   */
  apply(merged: T, parts: readonly WorkerPart<T>[], running: (worker: number) => number | undefined): T {
    // A newer reading of the same process supersedes its last one.
    const answered = (worker: number, pid: number): boolean => parts.some((p) => p.worker === worker && p.pid === pid);
    for (const [worker, last] of this.#last) {
      if (answered(worker, last.pid) || running(worker) === last.pid) continue;
      this.#kept = this.#rule.keep(this.#kept, last.value, true);
      this.#last.delete(worker);
    }
    // Still running but it did not answer this time (a timeout): its last reading stands in for this merge only.
    let base = this.#kept;
    for (const [worker, last] of this.#last) if (!answered(worker, last.pid)) base = this.#rule.keep(base, last.value, false);
    for (const p of parts) this.#last.set(p.worker, { pid: p.pid, value: p.value });
    return base === undefined ? merged : this.#rule.add(merged, base);
  }
}

// === the reports with counters ===

/** Golden edges: everything is cumulative; a gone process's connections were closed with it. */
export const GOLDEN_CARRY: CarryRule<GoldenEdgeSample[]> = {
  keep: (kept, last, gone) => mergeGolden([kept ?? [], gone ? last.map((e) => ({ ...e, tcpClosed: e.tcpOpened })) : last]),
  add: (merged, kept) => mergeGolden([merged, kept]),
};

/** Prometheus text: the counter and histogram families (not gauges, not the copies every worker holds). */
export const EXPOSITION_CARRY: CarryRule<string> = {
  keep: (kept, last) => mergeExpositions([kept ?? '', cumulativeFamilies(last)]),
  add: (merged, kept) => mergeExpositions([merged], [kept]),
};

/** The families of `text` whose TYPE is counter or histogram and that are summed over the workers (not a copy every worker holds). */
export function cumulativeFamilies(text: string): string {
  let out = '';
  let keep = false;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    if (line.startsWith('# TYPE ')) {
      const [name = '', type = ''] = line.slice(7).split(' ');
      keep = (type === 'counter' || type === 'histogram') && !SAME_FAMILIES.has(name) && !MIN_FAMILIES.has(name);
      if (keep) out += `${line}\n`;
      continue;
    }
    if (keep && !line.startsWith('#')) out += `${line}\n`;
  }
  return out;
}

/**
 * The status report: the per-policy and per-route counts and the endpoints' ejection counts are cumulative; the rest
 * (readiness, certificate, endpoints' health and connections in flight) is now, and only the live workers say it. A
 * kept count is added to a policy, route backend or endpoint the live workers still report (one the configuration
 * no longer has is not brought back).
 */
export const STATUS_CARRY: CarryRule<SidecarStatus> = {
  keep: (kept, last) => ({
    ...last,
    endpoints: sumEndpoints(kept?.endpoints ?? [], last.endpoints, true),
    policies: sumPolicies(kept?.policies ?? [], last.policies, true),
    routes: sumRoutes(kept?.routes ?? [], last.routes, true),
  }),
  add: (merged, kept) => ({
    ...merged,
    endpoints: sumEndpoints(merged.endpoints, kept.endpoints, false),
    policies: sumPolicies(merged.policies, kept.policies, false),
    routes: sumRoutes(merged.routes, kept.routes, false),
  }),
};

const endpointKey = (e: EndpointStatus): string => `${e.service}\u0000${e.address}`;

/** `into` with `more`'s counts added (`union`: `more`'s entries that `into` lacks are added too). */
function sumEndpoints(into: readonly EndpointStatus[], more: readonly EndpointStatus[], union: boolean): EndpointStatus[] {
  const out = new Map(into.map((e) => [endpointKey(e), e]));
  for (const e of more) {
    const seen = out.get(endpointKey(e));
    if (seen !== undefined) out.set(endpointKey(e), { ...seen, ejections: seen.ejections + e.ejections });
    else if (union) out.set(endpointKey(e), { ...e, activeConnections: 0 });
  }
  return [...out.values()];
}

function sumPolicies(into: readonly PolicyStatus[], more: readonly PolicyStatus[], union: boolean): PolicyStatus[] {
  const out = new Map(into.map((p) => [p.name, p]));
  for (const p of more) {
    const s = out.get(p.name);
    if (s !== undefined) out.set(p.name, addPolicyCounts(s, p));
    else if (union) out.set(p.name, p);
  }
  return [...out.values()];
}

function sumRoutes(into: readonly RouteStatus[], more: readonly RouteStatus[], union: boolean): RouteStatus[] {
  const out = new Map(into.map((r) => [r.route, r]));
  for (const r of more) {
    const s = out.get(r.route);
    if (s === undefined) {
      if (union) out.set(r.route, r);
      continue;
    }
    const backends = new Map(s.backends.map((b) => [b.backend, b]));
    for (const b of r.backends) {
      const sb = backends.get(b.backend);
      if (sb !== undefined) backends.set(b.backend, { ...sb, requests: sb.requests + b.requests });
      else if (union) backends.set(b.backend, b);
    }
    out.set(r.route, { ...s, backends: [...backends.values()] });
  }
  return [...out.values()];
}
