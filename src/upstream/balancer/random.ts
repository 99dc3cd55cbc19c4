// Weighted random: each pick is an independent draw with probability weight / total weight. Uses Vose's alias
// method, so a pick is O(1) whatever the weights (one random number, one table read).
import type { Picker, PickContext, PickerDeps, PickerEndpoint, PickResult, RandomSource, UpstreamEndpoint } from '../picker.js';
import { activeExclusions, endpointResults, frozenEndpointList, noneResult } from '../picker.js';

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

/** Rejection-sampling attempts before a draw with exclusions falls back to an O(n) weighted scan. */
const EXCLUDE_REJECTION_TRIES = 8;

/** Weighted draws of an endpoint index (probability weight / total weight), used by the random and p2c pickers. */
export class WeightedSampler {
  readonly #all: readonly PickerEndpoint[];
  readonly #random: RandomSource;
  readonly #table: AliasTable;

  constructor(endpoints: readonly PickerEndpoint[], random: RandomSource) {
    this.#all = endpoints;
    this.#random = random;
    this.#table = new AliasTable(endpoints.map((p) => p.weight));
  }

  /** One draw over all endpoints: O(1). */
  sample(): number {
    return this.#table.sample(this.#random);
  }

  /**
   * A draw among the endpoints neither excluded nor at index `skip` (-1: none), or -1 if there is none: rejection
   * sampling first, an O(n) scan if the exclusions cover most of the weight.
   */
  sampleExcluding(exclude: ReadonlySet<string>, skip = -1): number {
    for (let i = 0; i < EXCLUDE_REJECTION_TRIES; i++) {
      const idx = this.#table.sample(this.#random);
      if (idx !== skip && !exclude.has((this.#all[idx] as PickerEndpoint).endpoint.key)) return idx;
    }
    return weightedIndexSkipping(this.#all, exclude, skip, this.#random);
  }
}

/** Weighted choice among endpoints not excluded and not `skip`; -1 if none. O(n). */
function weightedIndexSkipping(
  all: readonly PickerEndpoint[], exclude: ReadonlySet<string>, skip: number, random: RandomSource,
): number {
  let total = 0;
  let chosen = -1;
  for (let i = 0; i < all.length; i++) {
    if (i === skip) continue;
    const p = all[i] as PickerEndpoint;
    if (exclude.has(p.endpoint.key)) continue;
    total += p.weight;
    if (random() * total < p.weight) chosen = i;
  }
  return chosen;
}

export class RandomPicker implements Picker {
  readonly endpoints: readonly UpstreamEndpoint[];
  readonly #results: readonly PickResult[];
  readonly #sampler: WeightedSampler;

  constructor(endpoints: readonly PickerEndpoint[], deps: PickerDeps) {
    this.endpoints = frozenEndpointList(endpoints);
    this.#results = endpointResults(endpoints);
    this.#sampler = new WeightedSampler(endpoints, deps.random);
  }

  pick(ctx?: PickContext): PickResult {
    if (this.#results.length === 0) return noneResult('no-endpoints');
    const exclude = activeExclusions(ctx);
    if (exclude === undefined) return this.#results[this.#sampler.sample()] as PickResult;
    const idx = this.#sampler.sampleExcluding(exclude);
    return idx < 0 ? noneResult('all-excluded') : (this.#results[idx] as PickResult);
  }
}
