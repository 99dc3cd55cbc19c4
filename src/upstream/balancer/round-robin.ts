// Weighted round robin, nginx "smooth" style: with weights 5:1:1 the cycle is a a b a c a a — the heavy endpoint's
// turns are spread out instead of bunched. The picker precomputes one period of nginx's sequence (sum of the
// weights divided by their gcd), so a pick is one array read: O(1). Equal weights need no table (plain rotation).
// When a period would be too long to precompute (many endpoints with large coprime weights) the picker falls back
// to earliest-deadline-first scheduling (Envoy's weighted round robin): O(log n), the same long-run proportions.
// Each picker starts at a random point of the cycle so sidecars do not all start on the same endpoint.
import type { Picker, PickContext, PickerDeps, PickerEndpoint, PickResult, RandomSource, UpstreamEndpoint } from '../picker.js';
import {
  activeExclusions, endpointResults, frozenEndpointList, noneResult, weightedIndexExcluding,
} from '../picker.js';

export interface RoundRobinOptions {
  /** Longest precomputed cycle (entries); longer cycles use EDF scheduling. Default 65536. */
  readonly maxScheduleLength?: number;
}

const DEFAULT_MAX_SCHEDULE = 65_536;
/** Bound on the work to precompute a cycle (period x endpoints), to keep rebuilds in the low milliseconds. */
const MAX_SCHEDULE_BUILD_STEPS = 4_000_000;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** One period of nginx's smooth weighted round robin over (gcd-reduced) integer weights. */
export function smoothWeightedSchedule(weights: readonly number[]): Uint32Array {
  const period = weights.reduce((s, w) => s + w, 0);
  const current = new Float64Array(weights.length);
  const out = new Uint32Array(period);
  for (let step = 0; step < period; step++) {
    let best = -1;
    for (let i = 0; i < weights.length; i++) {
      current[i] = (current[i] as number) + (weights[i] as number);
      if (best < 0 || (current[i] as number) > (current[best] as number)) best = i;
    }
    current[best] = (current[best] as number) - period;
    out[step] = best;
  }
  return out;
}

/** Earliest-deadline-first scheduler: a binary min-heap of (deadline, index); each pick advances by 1/weight. */
class EdfScheduler {
  readonly #weights: Float64Array;
  readonly #deadline: Float64Array;
  readonly #heap: Uint32Array;

  constructor(weights: readonly number[], random: RandomSource) {
    const n = weights.length;
    this.#weights = Float64Array.from(weights);
    this.#deadline = new Float64Array(n);
    this.#heap = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      // A random phase per endpoint stands in for a random starting point of the cycle.
      this.#deadline[i] = random() / (weights[i] as number);
      this.#heap[i] = i;
    }
    for (let i = (n >> 1) - 1; i >= 0; i--) this.#siftDown(i);
  }

  /** The index next() returns, without advancing. */
  peek(): number {
    return this.#heap[0] as number;
  }

  next(): number {
    const top = this.#heap[0] as number;
    this.#deadline[top] = (this.#deadline[top] as number) + 1 / (this.#weights[top] as number);
    this.#siftDown(0);
    return top;
  }

  #less(a: number, b: number): boolean {
    const da = this.#deadline[a] as number;
    const db = this.#deadline[b] as number;
    return da < db || (da === db && a < b);
  }

  #siftDown(start: number): void {
    const heap = this.#heap;
    const n = heap.length;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      let m = l;
      if (r < n && this.#less(heap[r] as number, heap[l] as number)) m = r;
      if (!this.#less(heap[m] as number, heap[i] as number)) return;
      const t = heap[i] as number;
      heap[i] = heap[m] as number;
      heap[m] = t;
      i = m;
    }
  }
}

export class RoundRobinPicker implements Picker {
  readonly endpoints: readonly UpstreamEndpoint[];
  readonly #all: readonly PickerEndpoint[];
  readonly #results: readonly PickResult[];
  readonly #random: RandomSource;
  /** One nginx cycle, or null for plain rotation (equal weights) or EDF. */
  readonly #schedule: Uint32Array | null;
  readonly #edf: EdfScheduler | null;
  readonly #period: number;
  #cursor: number;

  constructor(endpoints: readonly PickerEndpoint[], deps: PickerDeps, options: RoundRobinOptions = {}) {
    this.#all = endpoints;
    this.endpoints = frozenEndpointList(endpoints);
    this.#results = endpointResults(endpoints);
    this.#random = deps.random;
    const weights = endpoints.map((p) => p.weight);
    const g = weights.reduce((a, w) => gcd(a, w), 0) || 1;
    const reduced = weights.map((w) => w / g);
    const period = reduced.reduce((s, w) => s + w, 0);
    const maxSchedule = options.maxScheduleLength ?? DEFAULT_MAX_SCHEDULE;
    if (period === endpoints.length) {
      this.#schedule = null;
      this.#edf = null;
      this.#period = period;
    } else if (period <= maxSchedule && period * endpoints.length <= MAX_SCHEDULE_BUILD_STEPS) {
      this.#schedule = smoothWeightedSchedule(reduced);
      this.#edf = null;
      this.#period = period;
    } else {
      this.#schedule = null;
      this.#edf = new EdfScheduler(reduced, deps.random);
      this.#period = 0;
    }
    this.#cursor = this.#period > 0 ? Math.floor(deps.random() * this.#period) : 0;
  }

  pick(ctx?: PickContext): PickResult {
    const n = this.#results.length;
    if (n === 0) return noneResult('no-endpoints');
    const exclude = activeExclusions(ctx);
    if (exclude === undefined) return this.#results[this.#next()] as PickResult;
    // Retry path: walk the cycle past excluded endpoints (bounded), then fall back to a weighted random choice.
    const limit = 4 * n + 16;
    for (let i = 0; i < limit; i++) {
      const idx = this.#next();
      if (!exclude.has((this.#all[idx] as PickerEndpoint).endpoint.key)) return this.#results[idx] as PickResult;
    }
    const idx = weightedIndexExcluding(this.#all, exclude, this.#random);
    return idx < 0 ? noneResult('all-excluded') : (this.#results[idx] as PickResult);
  }

  /** The endpoint the next pick without exclusions returns; the cursor (or the EDF heap) does not move. */
  peek(): PickResult {
    if (this.#results.length === 0) return noneResult('no-endpoints');
    return this.#results[this.#edf !== null ? this.#edf.peek() : this.#schedule === null ? this.#cursor : (this.#schedule[this.#cursor] as number)] as PickResult;
  }

  #next(): number {
    if (this.#edf !== null) return this.#edf.next();
    const c = this.#cursor;
    this.#cursor = c + 1 === this.#period ? 0 : c + 1;
    return this.#schedule === null ? c : (this.#schedule[c] as number);
  }
}
