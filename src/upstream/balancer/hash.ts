// A fast, well-mixed 32-bit string hash for the consistent-hashing balancers (MurmurHash3 x86_32 over UTF-16 code
// units, two per block). Deterministic across processes, so every sidecar maps a key to the same endpoint.

export function hash32(text: string, seed = 0): number {
  let h = seed | 0;
  const len = text.length;
  let i = 0;
  for (; i + 1 < len; i += 2) {
    let k = (text.charCodeAt(i) & 0xffff) | ((text.charCodeAt(i + 1) & 0xffff) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < len) {
    let k = text.charCodeAt(i) & 0xffff;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= len * 2;
  // fmix32
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** murmur3's 32-bit finalizer: a bijection on uint32 with full avalanche. */
export function mix32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The n-th derived hash of a base hash (ring points): depends only on (base, n). */
export function derivedHash(base: number, n: number): number {
  return mix32(mix32(base ^ Math.imul(n + 1, 0x9e3779b9)) + n);
}

/** The key a hashing balancer hashes: hashKey, else sourceAddress, else undefined (the caller picks at random). */
export function hashInput(ctx: { readonly hashKey?: string; readonly sourceAddress?: string } | undefined): string | undefined {
  return ctx?.hashKey ?? ctx?.sourceAddress;
}
