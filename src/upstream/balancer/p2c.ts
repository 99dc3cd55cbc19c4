// The two-choice balancers: draw two distinct endpoints at random (each with probability proportional to its
// weight) and keep the better one; on a tie the first draw wins (itself random). O(1) per pick, and it avoids the
// herd behaviour of a strict "least" choice when many sidecars see the same stale counts.
//   p2c (least-request: Envoy LEAST_REQUEST, nginx "random two least_conn"): the less loaded one, load being
//       (in flight + 1) / weight, so that under sustained load each endpoint carries a share proportional to its
//       weight;
//   peak-ewma (Finagle, linkerd2-proxy's default): the cheaper one, cost = latency estimate x (in flight + 1), the
//       estimate jumping to any slower observation at once and decaying toward faster ones (endpoint-load.ts):
//       latency-aware without coordination.
import type { Picker, PickContext, PickerDeps, PickerEndpoint, PickResult, RandomSource, UpstreamEndpoint } from '../picker.js';
import { activeExclusions, endpointResults, frozenEndpointList, noneResult } from '../picker.js';
import { WeightedSampler } from './random.js';

/** Redraws of the second choice when it equals the first, before falling back to a uniform other endpoint. */
const DISTINCT_TRIES = 4;

/** Whether `b` is strictly better than `a` (the first draw). */
export type TwoChoiceRule = (a: PickerEndpoint, b: PickerEndpoint) => boolean;

/** (in flight + 1) / weight, compared without division. */
export const LEAST_LOADED: TwoChoiceRule = (a, b) => (b.load.active + 1) * a.weight < (a.load.active + 1) * b.weight;

/** The lower peak-EWMA cost. */
export const CHEAPEST: TwoChoiceRule = (a, b) => b.load.cost() < a.load.cost();

export class TwoChoicePicker implements Picker {
  readonly endpoints: readonly UpstreamEndpoint[];
  readonly #all: readonly PickerEndpoint[];
  readonly #results: readonly PickResult[];
  readonly #random: RandomSource;
  readonly #sampler: WeightedSampler;
  readonly #better: TwoChoiceRule;

  constructor(endpoints: readonly PickerEndpoint[], deps: PickerDeps, better: TwoChoiceRule = LEAST_LOADED) {
    this.#all = endpoints;
    this.endpoints = frozenEndpointList(endpoints);
    this.#results = endpointResults(endpoints);
    this.#random = deps.random;
    this.#sampler = new WeightedSampler(endpoints, deps.random);
    this.#better = better;
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
    const better = this.#better(this.#all[a] as PickerEndpoint, this.#all[b] as PickerEndpoint);
    return this.#results[better ? b : a] as PickResult;
  }
}
