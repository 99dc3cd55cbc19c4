// Consistent hashing on a ketama-style ring. Each endpoint owns `vnodesPerWeight x weight` points (weights reduced
// by their gcd) at derivedHash(hash32(key), n); a connection goes to the owner of the first point at or after
// hash32(hashKey ?? sourceAddress), wrapping around. Points depend only on an endpoint's own key and weight, so
// adding or removing one of N equal endpoints moves about 1/N of the keys and no others (unless the ring has to be
// scaled down to maxRingSize, or the weights' gcd changes). A pick is a binary search: O(log ring size).
// With no hash input the pick is random. Excluded endpoints are skipped by walking the ring clockwise.
import type { Picker, PickContext, PickerDeps, PickerEndpoint, PickResult, RandomSource, UpstreamEndpoint } from '../picker.js';
import { activeExclusions, allExcluded, endpointResults, frozenEndpointList, noneResult } from '../picker.js';
import { derivedHash, hash32, hashInput } from './hash.js';

export interface RingHashOptions {
  /** Ring points per unit of (gcd-reduced) weight. Default 1024. */
  readonly vnodesPerWeight?: number;
  /** Upper bound on ring points; larger rings are scaled down (every endpoint keeps at least one). Default 131072. */
  readonly maxRingSize?: number;
}

export const DEFAULT_VNODES_PER_WEIGHT = 1024;
export const DEFAULT_MAX_RING_SIZE = 131_072;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Sorts uint32 keys ascending, moving vals along; stable (LSD radix, 4 passes of 8 bits): O(n). */
export function radixSortPairs(keys: Uint32Array, vals: Uint32Array): void {
  const n = keys.length;
  let srcK: Uint32Array = keys;
  let srcV: Uint32Array = vals;
  let dstK: Uint32Array = new Uint32Array(n);
  let dstV: Uint32Array = new Uint32Array(n);
  const count = new Uint32Array(256);
  for (let shift = 0; shift < 32; shift += 8) {
    count.fill(0);
    for (let i = 0; i < n; i++) {
      const b = ((srcK[i] as number) >>> shift) & 255;
      count[b] = (count[b] as number) + 1;
    }
    let sum = 0;
    for (let b = 0; b < 256; b++) {
      const c = count[b] as number;
      count[b] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const k = srcK[i] as number;
      const b = (k >>> shift) & 255;
      const pos = count[b] as number;
      count[b] = pos + 1;
      dstK[pos] = k;
      dstV[pos] = srcV[i] as number;
    }
    [srcK, dstK] = [dstK, srcK];
    [srcV, dstV] = [dstV, srcV];
  }
  // After an even number of passes the sorted data is back in the caller's arrays.
}

/** First index i with sorted[i] >= value, or sorted.length. */
function lowerBound(sorted: Uint32Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class RingHashPicker implements Picker {
  readonly endpoints: readonly UpstreamEndpoint[];
  readonly #all: readonly PickerEndpoint[];
  readonly #results: readonly PickResult[];
  readonly #random: RandomSource;
  /** Ring point hashes, ascending, and the endpoint index owning each. */
  readonly #hashes: Uint32Array;
  readonly #owners: Uint32Array;

  constructor(endpoints: readonly PickerEndpoint[], deps: PickerDeps, options: RingHashOptions = {}) {
    this.#all = endpoints;
    this.endpoints = frozenEndpointList(endpoints);
    this.#results = endpointResults(endpoints);
    this.#random = deps.random;
    const perWeight = Math.max(1, Math.floor(options.vnodesPerWeight ?? DEFAULT_VNODES_PER_WEIGHT));
    const maxRing = Math.max(endpoints.length, Math.floor(options.maxRingSize ?? DEFAULT_MAX_RING_SIZE));
    const weights = endpoints.map((p) => p.weight);
    const g = weights.reduce((a, w) => gcd(a, w), 0) || 1;
    let counts = weights.map((w) => (w / g) * perWeight);
    const total = counts.reduce((s, c) => s + c, 0);
    if (total > maxRing) counts = counts.map((c) => Math.max(1, Math.floor((c * maxRing) / total)));
    const size = counts.reduce((s, c) => s + c, 0);
    const hashes = new Uint32Array(size);
    const owners = new Uint32Array(size);
    let at = 0;
    endpoints.forEach((p, idx) => {
      const base = hash32(p.endpoint.key);
      const count = counts[idx] as number;
      for (let v = 0; v < count; v++) {
        hashes[at] = derivedHash(base, v);
        owners[at++] = idx;
      }
    });
    // Stable sort: equal hashes stay in owner (= key) order, so the ring does not depend on input order.
    radixSortPairs(hashes, owners);
    this.#hashes = hashes;
    this.#owners = owners;
  }

  /** Number of points on the ring (for tests and the admin view). */
  get ringSize(): number {
    return this.#hashes.length;
  }

  pick(ctx?: PickContext): PickResult {
    const size = this.#hashes.length;
    if (size === 0) return noneResult('no-endpoints');
    const input = hashInput(ctx);
    const h = input === undefined ? Math.floor(this.#random() * 0x1_0000_0000) : hash32(input);
    let i = lowerBound(this.#hashes, h);
    if (i === size) i = 0;
    const exclude = activeExclusions(ctx);
    if (exclude === undefined) return this.#results[this.#owners[i] as number] as PickResult;
    if (allExcluded(this.#all, exclude)) return noneResult('all-excluded');
    for (let step = 0; step < size; step++) {
      const owner = this.#owners[i] as number;
      if (!exclude.has((this.#all[owner] as PickerEndpoint).endpoint.key)) return this.#results[owner] as PickResult;
      i = i + 1 === size ? 0 : i + 1;
    }
    return noneResult('all-excluded');
  }
}
