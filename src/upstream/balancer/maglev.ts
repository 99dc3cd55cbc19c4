// Maglev consistent hashing (Eisenbud et al., NSDI 2016; Envoy MAGLEV): a lookup table of prime size M (default
// 65537) filled by letting endpoints take turns claiming their next free slot along their own permutation
// (offset, skip derived from the endpoint key). Weighted as in Envoy: an endpoint of weight w takes a turn in
// w/max(weight) of the rounds, so it owns about w/total of the slots. Lookups are one modulo and one array read:
// O(1). Adding or removing one of N endpoints moves a little more than 1/N of the keys (less even than ring-hash's
// minimal disruption, but better balance). The table is built from endpoints sorted by key, so every sidecar
// builds the same table from the same set. No hash input -> a random slot; excluded endpoints are skipped by
// walking the table forward.
import type { Picker, PickContext, PickerDeps, PickerEndpoint, PickResult, RandomSource, UpstreamEndpoint } from '../picker.js';
import { activeExclusions, allExcluded, endpointResults, frozenEndpointList, noneResult } from '../picker.js';
import { hash32, hashInput } from './hash.js';

export interface MaglevOptions {
  /** Lookup table size; must be a prime larger than the number of endpoints (ideally 100x). Default 65537. */
  readonly tableSize?: number;
}

export const DEFAULT_MAGLEV_TABLE_SIZE = 65_537;
const OFFSET_SEED = 0x6d61676c; // "magl"
const SKIP_SEED = 0x65763031; // "ev01"

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** Builds the Maglev lookup table: slot -> index into `keys`/`weights`. */
export function buildMaglevTable(keys: readonly string[], weights: readonly number[], size: number): Int32Array {
  const n = keys.length;
  const table = new Int32Array(size).fill(-1);
  if (n === 0) return table;
  // Slot arithmetic stays below 2 * size, so Int32 math with a conditional subtract replaces the modulo.
  const pos = new Int32Array(n);
  const skip = new Int32Array(n);
  const target = new Float64Array(n);
  keys.forEach((key, i) => {
    pos[i] = hash32(key, OFFSET_SEED) % size;
    skip[i] = (hash32(key, SKIP_SEED) % (size - 1)) + 1;
  });
  const maxWeight = Math.max(...weights);
  let filled = 0;
  for (let round = 1; filled < size; round++) {
    for (let i = 0; i < n && filled < size; i++) {
      if (round * (weights[i] as number) < (target[i] as number)) continue;
      target[i] = (target[i] as number) + maxWeight;
      const step = skip[i] as number;
      let c = pos[i] as number;
      while ((table[c] as number) >= 0) {
        c += step;
        if (c >= size) c -= size;
      }
      table[c] = i;
      c += step;
      pos[i] = c >= size ? c - size : c;
      filled++;
    }
  }
  return table;
}

export class MaglevPicker implements Picker {
  readonly endpoints: readonly UpstreamEndpoint[];
  readonly #all: readonly PickerEndpoint[];
  readonly #results: readonly PickResult[];
  readonly #random: RandomSource;
  readonly #table: Int32Array;

  constructor(endpoints: readonly PickerEndpoint[], deps: PickerDeps, options: MaglevOptions = {}) {
    const size = options.tableSize ?? DEFAULT_MAGLEV_TABLE_SIZE;
    if (!isPrime(size) || size <= endpoints.length) {
      throw new RangeError(`maglev: table size ${size} must be a prime larger than the endpoint count`);
    }
    this.#all = endpoints;
    this.endpoints = frozenEndpointList(endpoints);
    this.#results = endpointResults(endpoints);
    this.#random = deps.random;
    this.#table = buildMaglevTable(
      endpoints.map((p) => p.endpoint.key), endpoints.map((p) => p.weight), size,
    );
  }

  pick(ctx?: PickContext): PickResult {
    if (this.#results.length === 0) return noneResult('no-endpoints');
    const size = this.#table.length;
    const input = hashInput(ctx);
    let slot = input === undefined ? Math.floor(this.#random() * size) : hash32(input) % size;
    const exclude = activeExclusions(ctx);
    if (exclude === undefined) return this.#results[this.#table[slot] as number] as PickResult;
    if (allExcluded(this.#all, exclude)) return noneResult('all-excluded');
    for (let step = 0; step < size; step++) {
      const owner = this.#table[slot] as number;
      if (!exclude.has((this.#all[owner] as PickerEndpoint).endpoint.key)) return this.#results[owner] as PickResult;
      slot = slot + 1 === size ? 0 : slot + 1;
    }
    return noneResult('all-excluded');
  }
}
