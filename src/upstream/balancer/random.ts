// Weighted random: each pick is an independent draw with probability weight / total weight. Uses Vose's alias
// method, so a pick is O(1) whatever the weights (one random number, one table read).
import type { Picker, PickContext, PickerDeps, PickerEndpoint, PickResult, RandomSource, UpstreamEndpoint } from '../picker.js';
import {
  activeExclusions, endpointResults, frozenEndpointList, noneResult, weightedIndexExcluding,
} from '../picker.js';

/** O(1) weighted sampling of an index (Vose's alias method). Equal weights skip the tables. */
export class AliasTable {
  readonly size: number;
  readonly #prob: Float64Array | null;
  readonly #alias: Uint32Array | null;

  constructor(weights: readonly number[]) {
    const n = weights.length;
    this.size = n;
    if (n === 0 || weights.every((w) => w === weights[0])) {
      this.#prob = null;
      this.#alias = null;
      return;
    }
    const total = weights.reduce((s, w) => s + w, 0);
    const prob = new Float64Array(n);
    const alias = new Uint32Array(n);
    const scaled = weights.map((w) => (w * n) / total);
    const small: number[] = [];
    const large: number[] = [];
    scaled.forEach((p, i) => (p < 1 ? small : large).push(i));
    while (small.length > 0 && large.length > 0) {
      const s = small.pop() as number;
      const l = large.pop() as number;
      prob[s] = scaled[s] as number;
      alias[s] = l;
      scaled[l] = (scaled[l] as number) + (scaled[s] as number) - 1;
      ((scaled[l] as number) < 1 ? small : large).push(l);
    }
    // Leftovers are 1 up to rounding error.
    for (const i of large) { prob[i] = 1; alias[i] = i; }
    for (const i of small) { prob[i] = 1; alias[i] = i; }
    this.#prob = prob;
    this.#alias = alias;
  }

  sample(random: RandomSource): number {
    const r = random() * this.size;
    const i = Math.floor(r);
    if (this.#prob === null || this.#alias === null) return i;
    return r - i < (this.#prob[i] as number) ? i : (this.#alias[i] as number);
  }
}

/** Rejection-sampling attempts before a pick with exclusions falls back to an O(n) weighted scan. */
const EXCLUDE_REJECTION_TRIES = 8;

export class RandomPicker implements Picker {
  readonly endpoints: readonly UpstreamEndpoint[];
  readonly #all: readonly PickerEndpoint[];
  readonly #results: readonly PickResult[];
  readonly #random: RandomSource;
  readonly #table: AliasTable;

  constructor(endpoints: readonly PickerEndpoint[], deps: PickerDeps) {
    this.#all = endpoints;
    this.endpoints = frozenEndpointList(endpoints);
    this.#results = endpointResults(endpoints);
    this.#random = deps.random;
    this.#table = new AliasTable(endpoints.map((p) => p.endpoint.weight));
  }

  pick(ctx?: PickContext): PickResult {
    if (this.#results.length === 0) return noneResult('no-endpoints');
    const exclude = activeExclusions(ctx);
    if (exclude === undefined) return this.#results[this.#table.sample(this.#random)] as PickResult;
    for (let i = 0; i < EXCLUDE_REJECTION_TRIES; i++) {
      const idx = this.#table.sample(this.#random);
      if (!exclude.has((this.#all[idx] as PickerEndpoint).endpoint.key)) return this.#results[idx] as PickResult;
    }
    const idx = weightedIndexExcluding(this.#all, exclude, this.#random);
    return idx < 0 ? noneResult('all-excluded') : (this.#results[idx] as PickResult);
  }
}
