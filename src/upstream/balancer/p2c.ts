// Power of two choices (Envoy LEAST_REQUEST, nginx "random two least_conn"): draw two distinct endpoints at random
// (each with probability proportional to its weight) and take the less loaded one, load being
// (active connections + 1) / weight. On a tie the first draw wins (itself random). O(1) per pick, and it avoids
// the herd behaviour of a strict least-connections choice when many sidecars see the same stale counts.
import type { Picker, PickContext, PickerDeps, PickerEndpoint, PickResult, RandomSource, UpstreamEndpoint } from '../picker.js';
import { activeExclusions, endpointResults, frozenEndpointList, noneResult } from '../picker.js';
import { WeightedSampler } from './random.js';

/** Redraws of the second choice when it equals the first, before falling back to a uniform other endpoint. */
const DISTINCT_TRIES = 4;

export class P2cPicker implements Picker {
  readonly endpoints: readonly UpstreamEndpoint[];
  readonly #all: readonly PickerEndpoint[];
  readonly #results: readonly PickResult[];
  readonly #random: RandomSource;
  readonly #sampler: WeightedSampler;

  constructor(endpoints: readonly PickerEndpoint[], deps: PickerDeps) {
    this.#all = endpoints;
    this.endpoints = frozenEndpointList(endpoints);
    this.#results = endpointResults(endpoints);
    this.#random = deps.random;
    this.#sampler = new WeightedSampler(endpoints, deps.random);
  }

  pick(ctx?: PickContext): PickResult {
    const n = this.#all.length;
    if (n === 0) return noneResult('no-endpoints');
    const exclude = activeExclusions(ctx);
    let a: number;
    let b: number;
    if (exclude === undefined) {
      if (n === 1) return this.#results[0] as PickResult;
      a = this.#sampler.sample();
      b = this.#sampler.sample();
      for (let i = 0; b === a && i < DISTINCT_TRIES; i++) b = this.#sampler.sample();
      if (b === a) b = (a + 1 + Math.floor(this.#random() * (n - 1))) % n;
    } else {
      // Retry path: the same rule over the endpoints not excluded — rejection sampling first, O(n) scans if the
      // exclusions cover most of the weight.
      a = this.#sampler.sampleExcluding(exclude);
      if (a < 0) return noneResult('all-excluded');
      b = this.#sampler.sampleExcluding(exclude, a);
      if (b < 0) return this.#results[a] as PickResult;
    }
    const pa = this.#all[a] as PickerEndpoint;
    const pb = this.#all[b] as PickerEndpoint;
    // (activeA + 1) / weightA <= (activeB + 1) / weightB, without division.
    const chooseA = (pa.load.active + 1) * pb.weight <= (pb.load.active + 1) * pa.weight;
    return this.#results[chooseA ? a : b] as PickResult;
  }
}
