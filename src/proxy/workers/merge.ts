// The pure half of `workers = N`: how the primary folds what each worker reports into the answer of ONE proxy
// (docs/operations.md#workers). Every report source (src/proxy/workers/report-sources.ts) names one of these.
//
//   JSON (/stats): numbers are summed (counters, connections in flight, bytes), except the ones every worker holds
//     the same copy of (config version, reload counts, probe rounds, identity events: the maximum) and the ones that
//     are states, not amounts (uptime: the maximum; an endpoint's slow-start factor: the minimum). Booleans: an
//     endpoint is `ejected` when any worker ejected it, `inRotation` when any worker can pick it, `healthy` only when
//     every worker finds it healthy. Strings: the first worker's (they are the same config). Endpoint lists are
//     merged by endpoint.
//   Prometheus text: one family block per name, in first-seen order; a series' value is the sum over workers,
//     except the families in SAME_FAMILIES (the maximum) and MIN_FAMILIES (the minimum: `remora_ready` is 1 only when
//     every worker is ready).
//   Golden edges (the control plane's reports): summed per (reporter, source, destination, mTLS).
import type { GoldenEdgeSample } from '../../telemetry/golden-samples.js';

/** One worker's answer: its id (1..N), process id and value. */
export interface WorkerPart<T> {
  readonly worker: number;
  readonly pid: number;
  readonly value: T;
}

export type MergeRule = 'sum' | 'max' | 'min' | 'first' | 'all' | 'any';

/** JSON keys (at any depth) whose numbers are not amounts to add. */
const KEY_RULES: Readonly<Record<string, MergeRule>> = {
  uptimeMs: 'max',
  version: 'max',
  routeTableVersion: 'max',
  probeIntervalMs: 'max',
  weight: 'max',
  weightFactor: 'min',
  lastSuccessAt: 'max',
  consecutiveFailures: 'max',
  // Every worker applies every reload, sees the same identity files and the same probe rounds.
  reloads: 'max',
  identity: 'max',
  probes: 'max',
  // Booleans.
  healthy: 'all',
  ready: 'all',
  ejected: 'any',
  inRotation: 'any',
  ipv4Only: 'any',
};

/** The rule of a key, inherited by everything under it (reloads.ok is a 'max' because reloads is). */
function ruleOf(key: string, inherited: MergeRule): MergeRule {
  return KEY_RULES[key] ?? inherited;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function mergeScalars(values: readonly unknown[], rule: MergeRule): unknown {
  const first = values[0];
  if (typeof first === 'number' && values.every((v) => typeof v === 'number')) {
    const nums = values as readonly number[];
    switch (rule) {
      case 'max': return Math.max(...nums);
      case 'min': return Math.min(...nums);
      case 'first': return first;
      default: return nums.reduce((a, b) => a + b, 0);
    }
  }
  if (typeof first === 'boolean' && values.every((v) => typeof v === 'boolean')) {
    if (rule === 'any') return values.some((v) => v === true);
    if (rule === 'all') return values.every((v) => v === true);
    return first;
  }
  return first;
}

/** Lists of objects keyed by `endpoint` (a cluster's endpoints) are merged per endpoint; other lists: the first. */
function mergeArrays(values: readonly unknown[][], rule: MergeRule): unknown[] {
  const first = values[0] ?? [];
  const keyed = values.every((a) => a.every((e) => isRecord(e) && typeof e.endpoint === 'string'));
  if (!keyed || first.length === 0) return first;
  const order: string[] = [];
  const byKey = new Map<string, unknown[]>();
  for (const list of values) {
    for (const e of list as Record<string, unknown>[]) {
      const k = e.endpoint as string;
      let group = byKey.get(k);
      if (group === undefined) {
        group = [];
        byKey.set(k, group);
        order.push(k);
      }
      group.push(e);
    }
  }
  return order.map((k) => mergeValues(byKey.get(k) ?? [], rule));
}

function mergeValues(values: readonly unknown[], rule: MergeRule): unknown {
  const present = values.filter((v) => v !== undefined);
  if (present.length === 0) return undefined;
  if (rule === 'first') return present[0];
  if (present.every(isRecord)) {
    const out: Record<string, unknown> = {};
    const keys: string[] = [];
    for (const o of present) for (const k of Object.keys(o)) if (!keys.includes(k)) keys.push(k);
    for (const k of keys) {
      const v = mergeValues(present.map((o) => o[k]), ruleOf(k, rule));
      if (v !== undefined) out[k] = v;
    }
    return out;
  }
  if (present.every(Array.isArray)) return mergeArrays(present as unknown[][], rule);
  return mergeScalars(present, rule);
}

/** The JSON of N workers as one: see the top of this file (the primary then sets its own state, readiness, drain). */
export function mergeJson<T>(parts: readonly T[], rule: MergeRule = 'sum'): T {
  return mergeValues(parts, rule) as T;
}

// === Prometheus text (format 0.0.4) ===

/** Families every worker holds the same copy of: the maximum (not N times the value). */
export const SAME_FAMILIES: ReadonlySet<string> = new Set([
  'istio_build', 'remora_build_info', 'remora_config_version', 'remora_config_reloads_total', 'remora_identity_events_total',
  'remora_redirect_probes_total', 'remora_metrics_series_limit', 'remora_endpoint_in_rotation',
]);

/** Families that are 1 only when every worker says 1. */
export const MIN_FAMILIES: ReadonlySet<string> = new Set(['remora_ready', 'remora_redirect_probe_up']);

interface Family {
  readonly header: string[];
  readonly samples: Map<string, number[]>;
}

/** The family a sample belongs to: histogram samples carry _bucket/_sum/_count after the family name. */
function familyOf(series: string, current: string | undefined): string {
  const name = series.split('{', 1)[0] ?? series;
  if (current !== undefined && (name === current || name === `${current}_bucket` || name === `${current}_sum` || name === `${current}_count`)) return current;
  return name;
}

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

function formatValue(n: number): string {
  if (Number.isFinite(n)) return String(n);
  if (Number.isNaN(n)) return 'NaN';
  return n > 0 ? '+Inf' : '-Inf';
}

/**
 * N expositions as one (see the top of this file). Lines that are neither HELP, TYPE nor a sample are dropped.
 * `carried`: counters of worker processes that are gone (src/proxy/workers/restart-carry.ts), summed in; they do not
 * vote in MIN_FAMILIES.
 */
export function mergeExpositions(texts: readonly string[], carried: readonly string[] = []): string {
  const families = new Map<string, Family>();
  const get = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) {
      f = { header: [], samples: new Map() };
      families.set(name, f);
    }
    return f;
  };
  [...texts, ...carried].forEach((text, worker) => {
    let current: string | undefined;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
        const name = line.slice(7).split(' ', 1)[0] ?? '';
        current = name;
        const f = get(name);
        if (worker === 0 || f.header.length < 2) {
          if (!f.header.includes(line)) f.header.push(line);
        }
        continue;
      }
      if (line.startsWith('#')) continue;
      // The value is after the last space (label values may hold spaces; no timestamps are written).
      const at = line.lastIndexOf(' ');
      if (at <= 0) continue;
      const series = line.slice(0, at);
      const family = familyOf(series, current);
      const f = get(family);
      const list = f.samples.get(series);
      const v = parseValue(line.slice(at + 1));
      if (list === undefined) f.samples.set(series, [v]);
      else list.push(v);
    }
  });
  let out = '';
  for (const [name, f] of families) {
    if (f.samples.size === 0) continue;
    for (const h of f.header) out += `${h}\n`;
    for (const [series, values] of f.samples) {
      let v: number;
      if (SAME_FAMILIES.has(name)) v = Math.max(...values);
      else if (MIN_FAMILIES.has(name)) v = values.length < texts.length ? 0 : Math.min(...values);
      else v = values.reduce((a, b) => a + b, 0);
      out += `${series} ${formatValue(v)}\n`;
    }
  }
  return out;
}

// === golden edges ===

/** The workers' cumulative edges as one sidecar's: summed per (reporter, source, destination, mTLS). */
export function mergeGolden(parts: readonly (readonly GoldenEdgeSample[])[]): GoldenEdgeSample[] {
  const edges = new Map<string, { -readonly [K in keyof GoldenEdgeSample]: GoldenEdgeSample[K] }>();
  for (const list of parts) {
    for (const e of list) {
      const key = `${e.reporter}\u0000${e.source}\u0000${e.destination}\u0000${e.mtls ? 1 : 0}`;
      const m = edges.get(key);
      if (m === undefined) {
        edges.set(key, { ...e, requests: [...e.requests], latency: [...e.latency] });
        continue;
      }
      for (let i = 0; i < 4; i++) m.requests[i] = (m.requests[i] ?? 0) + (e.requests[i] ?? 0);
      for (let i = 0; i < e.latency.length; i++) m.latency[i] = (m.latency[i] ?? 0) + (e.latency[i] ?? 0);
      m.tcpOpened += e.tcpOpened;
      m.tcpClosed += e.tcpClosed;
      m.tcpBytes += e.tcpBytes;
    }
  }
  return [...edges.values()];
}

// === readiness ===

export interface ReadinessLike {
  readonly ready: boolean;
  readonly reason: string;
}

/**
 * One proxy's readiness from its workers': ready only when `expected` workers answered and every one is ready; else
 * the first worker's reason that is not ready, naming the worker (draining and starting stay as they are: /ready's
 * body for them is the lifecycle word).
 */
export function mergeReadiness<R extends ReadinessLike>(parts: readonly WorkerPart<R>[], expected: number): ReadinessLike {
  const down = parts.find((p) => !p.value.ready);
  if (down !== undefined) {
    const r = down.value.reason;
    if (r === 'draining' || r === 'starting') return { ready: false, reason: r };
    const why = r.startsWith('not ready: ') ? r.slice('not ready: '.length) : r;
    return { ready: false, reason: `not ready: worker ${down.worker}: ${why}` };
  }
  if (parts.length < expected) return { ready: false, reason: `not ready: ${parts.length} of ${expected} workers answered` };
  return { ready: true, reason: 'ready' };
}
