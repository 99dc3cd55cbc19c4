// Weighted least connections (nginx least_conn): pick the endpoint with the fewest active connections per unit of
// weight (active / weight, compared exactly by cross-multiplication); ties are broken by a weighted random choice,
// so an idle service still spreads connections in proportion to the weights.
// This is the one O(n) picker: it reads every endpoint's live counter on each pick. That is exact and cheap for the
// endpoint counts a sidecar sees (tens to hundreds); for very large services prefer p2c, which is O(1).
import type { Picker, PickContext, PickerDeps, PickerEndpoint, PickResult, RandomSource, UpstreamEndpoint } from '../picker.js';
import { activeExclusions, endpointResults, frozenEndpointList, noneResult } from '../picker.js';

export class LeastConnectionsPicker implements Picker {
  readonly endpoints: readonly UpstreamEndpoint[];
  readonly #all: readonly PickerEndpoint[];
  readonly #results: readonly PickResult[];
  readonly #random: RandomSource;

  constructor(endpoints: readonly PickerEndpoint[], deps: PickerDeps) {
    this.#all = endpoints;
    this.endpoints = frozenEndpointList(endpoints);
    this.#results = endpointResults(endpoints);
    this.#random = deps.random;
  }

  pick(ctx?: PickContext): PickResult {
    const all = this.#all;
    if (all.length === 0) return noneResult('no-endpoints');
    const exclude = activeExclusions(ctx);
    let best = -1;
    let bestActive = 0;
    let bestWeight = 1;
    let tiedWeight = 0;
    for (let i = 0; i < all.length; i++) {
      const p = all[i] as PickerEndpoint;
      if (exclude !== undefined && exclude.has(p.endpoint.key)) continue;
      const active = p.load.active;
      const weight = p.weight;
      // active/weight < bestActive/bestWeight, without division.
      const lhs = active * bestWeight;
      const rhs = bestActive * weight;
      if (best < 0 || lhs < rhs) {
        best = i;
        bestActive = active;
        bestWeight = weight;
        tiedWeight = weight;
      } else if (lhs === rhs) {
        tiedWeight += weight;
        if (this.#random() * tiedWeight < weight) {
          best = i;
          bestActive = active;
          bestWeight = weight;
        }
      }
    }
    return best < 0 ? noneResult('all-excluded') : (this.#results[best] as PickResult);
  }
}
