// Peak EWMA (Finagle, linkerd2-proxy's default): power of two choices on cost = latency estimate x (in flight + 1),
// where the estimate jumps to any slower observation at once and decays toward faster ones (src/upstream/balancer/
// endpoint-load.ts). Two distinct endpoints are drawn in proportion to their weights; the cheaper one wins (ties: the
// first draw). Latency-aware without coordination: a slow or overloaded endpoint gets less traffic within one
// request of becoming slow. O(1) per pick.
import type { Picker, PickContext, PickerDeps, PickerEndpoint, PickResult, RandomSource, UpstreamEndpoint } from '../picker.js';
import { activeExclusions, endpointResults, frozenEndpointList, noneResult } from '../picker.js';
import { WeightedSampler } from './random.js';

const DISTINCT_TRIES = 4;

export class PeakEwmaPicker implements Picker {
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
      a = this.#sampler.sampleExcluding(exclude);
      if (a < 0) return noneResult('all-excluded');
      b = this.#sampler.sampleExcluding(exclude, a);
      if (b < 0) return this.#results[a] as PickResult;
    }
    const ca = (this.#all[a] as PickerEndpoint).load.cost();
    const cb = (this.#all[b] as PickerEndpoint).load.cost();
    return this.#results[cb < ca ? b : a] as PickResult;
  }
}
