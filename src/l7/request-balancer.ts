// Per-request endpoint choice for HTTP (the L4 balancers in src/upstream/balancer/ choose per connection). All
// balancers are synchronous `pick(candidates, ctx)` over the endpoints that may take the request now — the engine
// passes the service's endpoints minus the ejected ones, with weights already multiplied by the outlier
// detector's slow-start factor — and read the live load from an EndpointLoadTracker the engine feeds with
// start()/finish() around every attempt.
//
//   least-request (default; Envoy/Istio's LEAST_REQUEST): power of two choices — two distinct endpoints drawn at
//       random in proportion to weight, the one with fewer active requests wins (ties: the first drawn).
//   peak-ewma (Finagle / linkerd2-proxy): P2C on cost = rtt_estimate * (active + 1), where the estimate
//       jumps up to any slower observation at once (peak) and decays toward newer, faster ones with time constant
//       decayMs (10 s); an endpoint without observations starts at defaultRttMs (30 ms); a failed attempt counts as
//       an observation of failurePenaltyMs (so a fast-failing endpoint does not attract traffic).
//   round-robin: smooth weighted round robin (nginx): deterministic, even interleaving.
//   ring-hash: consistent hashing (ketama-style ring) on a header, a cookie or the source address;
//       the ring of a candidate set is built once and reused while the same set is passed (immutable snapshot).
//       Requests without the hash input are spread at random. Pass ring-hash the endpoints' configured weights,
//       not slow-start-scaled ones: the ring is rebuilt whenever keys or weights change, and moving weights would
//       move keys between endpoints, which defeats its purpose.
// ctx.exclude (endpoints already tried by this request, RetryPolicy.preferOtherHosts) is honoured while other
// candidates remain.
import { hash32 } from '../upstream/balancer/hash.js';
import type { RequestHead } from './request-types.js';
import type { AttemptOutcome } from '../upstream/health/attempt-outcome.js';
import type { HashOn } from '../config/route-spec.js';
import {
  DEFAULT_EWMA_DECAY_MS, DEFAULT_EWMA_FAILURE_PENALTY_MS, DEFAULT_EWMA_RTT_MS, DEFAULT_RING_POINTS_PER_WEIGHT,
  type RequestBalancerKind,
} from '../config/traffic-policy-spec.js';


export interface RequestCandidate {
  /** endpointKey() of the endpoint. */
  readonly key: string;
  /** Relative weight > 0 (fractions allowed, e.g. endpoint weight x slow-start factor). */
  readonly weight: number;
}

export interface RequestPickContext {
  /** Input of ring-hash (see requestHashKey()); ignored by the others. */
  readonly hashKey?: string | undefined;
  /** Endpoint keys to avoid while other candidates remain. */
  readonly exclude?: ReadonlySet<string> | undefined;
}

export interface RequestBalancer {
  readonly kind: RequestBalancerKind;
  /** undefined only when there are no candidates. */
  pick(candidates: readonly RequestCandidate[], ctx?: RequestPickContext): RequestCandidate | undefined;
}

export interface LoadTrackerOptions {
  /** EWMA time constant (default 10 s). */
  readonly decayMs?: number;
  /** Initial estimate for an endpoint never observed (default 30 ms, Linkerd's). */
  readonly defaultRttMs?: number;
  /** RTT recorded for a failed attempt (default 1 s); 0 = failures observe their real latency only. */
  readonly failurePenaltyMs?: number;
}


interface Load {
  active: number;
  rtt: number;
  stamp: number;
  /** false while rtt is still the default seed: the first observation replaces it outright. */
  observed: boolean;
}

/** Live per-endpoint load of one service: active requests and a peak-EWMA latency estimate. */
export class EndpointLoadTracker {
  readonly #clock: { now(): number };
  readonly #decayMs: number;
  readonly #defaultRtt: number;
  readonly #penalty: number;
  readonly #loads = new Map<string, Load>();

  constructor(clock: { now(): number }, opts: LoadTrackerOptions = {}) {
    this.#clock = clock;
    this.#decayMs = Math.max(1, opts.decayMs ?? DEFAULT_EWMA_DECAY_MS);
    this.#defaultRtt = opts.defaultRttMs ?? DEFAULT_EWMA_RTT_MS;
    this.#penalty = opts.failurePenaltyMs ?? DEFAULT_EWMA_FAILURE_PENALTY_MS;
  }

  /** An attempt on `key` starts. */
  start(key: string): void {
    this.#load(key).active++;
  }

  /**
   * The attempt ended. Responses feed the latency estimate with their latencyMs; failures (connect failure, reset,
   * timeout, 502/503/504) with max(latency, failurePenaltyMs). `latencyMs` is needed only for non-response outcomes.
   */
  finish(key: string, outcome: AttemptOutcome, latencyMs?: number): void {
    const l = this.#load(key);
    if (l.active > 0) l.active--;
    const failed = outcome.kind !== 'response' || outcome.status === 502 || outcome.status === 503 || outcome.status === 504;
    const measured = outcome.kind === 'response' ? outcome.latencyMs : latencyMs;
    if (failed) {
      const rtt = Math.max(measured ?? 0, this.#penalty);
      if (rtt > 0) this.#observe(l, rtt);
    } else if (measured !== undefined) {
      this.#observe(l, measured);
    }
  }

  /** The attempt was abandoned without an outcome (client went away, route timeout): no latency observed. */
  cancel(key: string): void {
    const l = this.#loads.get(key);
    if (l !== undefined && l.active > 0) l.active--;
  }

  active(key: string): number {
    return this.#loads.get(key)?.active ?? 0;
  }

  /** The current latency estimate (decayed to now), ms. */
  rtt(key: string): number {
    const l = this.#loads.get(key);
    if (l === undefined) return this.#defaultRtt;
    return this.#decayed(l, this.#clock.now());
  }

  /** Peak-EWMA cost: rtt * (active + 1). */
  cost(key: string): number {
    const l = this.#loads.get(key);
    if (l === undefined) return this.#defaultRtt;
    return this.#decayed(l, this.#clock.now()) * (l.active + 1);
  }

  /** Forget endpoints not in `keys` (ones with requests in flight are kept until those finish). */
  retain(keys: Iterable<string>): void {
    const want = new Set(keys);
    for (const [k, l] of this.#loads) if (!want.has(k) && l.active === 0) this.#loads.delete(k);
  }

  #load(key: string): Load {
    let l = this.#loads.get(key);
    if (l === undefined) {
      l = { active: 0, rtt: this.#defaultRtt, stamp: this.#clock.now(), observed: false };
      this.#loads.set(key, l);
    }
    return l;
  }

  // Finagle's PeakEwma: reading decays the estimate toward 0 with time (so an idle endpoint that was slow gets
  // probed again); an observation above the estimate replaces it (peak); below it, it is blended in with weight
  // 1 - e^(-elapsed/decay). The first observation replaces the default seed.
  #decayed(l: Load, now: number): number {
    const elapsed = Math.max(0, now - l.stamp);
    return l.rtt * Math.exp(-elapsed / this.#decayMs);
  }

  #observe(l: Load, rtt: number): void {
    const now = this.#clock.now();
    const elapsed = Math.max(0, now - l.stamp);
    if (rtt > l.rtt || !l.observed) {
      l.rtt = rtt;
      l.observed = true;
    } else {
      const w = Math.exp(-elapsed / this.#decayMs);
      l.rtt = l.rtt * w + rtt * (1 - w);
    }
    l.stamp = now;
  }
}

/** The value to hash for a request, or undefined (then ring-hash picks at random). */
export function requestHashKey(hashOn: HashOn | undefined, head: RequestHead): string | undefined {
  if (hashOn === undefined) return undefined;
  if (hashOn.kind === 'source') return head.sourceAddress === '' ? undefined : head.sourceAddress;
  const want = (hashOn.name ?? '').toLowerCase();
  if (hashOn.kind === 'header') {
    for (const [n, v] of head.headers) if (n.toLowerCase() === want) return v;
    return undefined;
  }
  const cookie = hashOn.name ?? '';
  for (const [n, v] of head.headers) {
    if (n.toLowerCase() !== 'cookie') continue;
    for (const pair of v.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      if (pair.slice(0, eq).trim() === cookie) return pair.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    }
  }
  return undefined;
}

function usable(candidates: readonly RequestCandidate[], exclude: ReadonlySet<string> | undefined): readonly RequestCandidate[] {
  if (exclude === undefined || exclude.size === 0) return candidates;
  const rest = candidates.filter((c) => !exclude.has(c.key));
  return rest.length === 0 ? candidates : rest;
}

/** Index of a weighted random draw among cs, skipping index `skip`. */
function weightedIndex(cs: readonly RequestCandidate[], random: () => number, skip: number): number {
  let total = 0;
  for (let i = 0; i < cs.length; i++) if (i !== skip) total += Math.max(0, (cs[i] as RequestCandidate).weight);
  if (total <= 0) {
    // all weights 0: uniform
    const n = skip < 0 ? cs.length : cs.length - 1;
    let j = Math.min(n - 1, Math.floor(random() * n));
    if (skip >= 0 && j >= skip) j++;
    return j;
  }
  let x = random() * total;
  let last = -1;
  for (let i = 0; i < cs.length; i++) {
    if (i === skip) continue;
    const w = Math.max(0, (cs[i] as RequestCandidate).weight);
    if (w <= 0) continue;
    last = i;
    if (x < w) return i;
    x -= w;
  }
  return last;
}

/**
 * Power of two choices: two distinct draws in proportion to weight, the lower score wins (ties keep the first
 * draw). Weight acts through the draw only: dividing the score by the weight as well would starve a low-weight
 * (slow-starting) endpoint completely whenever its peers are idle.
 */
function p2c(
  cs: readonly RequestCandidate[], random: () => number, score: (c: RequestCandidate) => number,
): RequestCandidate | undefined {
  if (cs.length <= 1) return cs[0];
  const a = cs[weightedIndex(cs, random, -1)] as RequestCandidate;
  const b = cs[weightedIndex(cs, random, cs.indexOf(a))] as RequestCandidate;
  return score(b) < score(a) ? b : a;
}

/** least-request (score: active requests) and peak-ewma (score: the tracker's cost): P2C over the usable candidates. */
export class P2cBalancer implements RequestBalancer {
  readonly kind: 'least-request' | 'peak-ewma';
  readonly #random: () => number;
  readonly #score: (c: RequestCandidate) => number;

  constructor(kind: 'least-request' | 'peak-ewma', load: EndpointLoadTracker, random: () => number) {
    this.kind = kind;
    this.#random = random;
    this.#score = kind === 'least-request' ? (c) => load.active(c.key) : (c) => load.cost(c.key);
  }

  pick(candidates: readonly RequestCandidate[], ctx?: RequestPickContext): RequestCandidate | undefined {
    const cs = usable(candidates, ctx?.exclude);
    return p2c(cs, this.#random, this.#score);
  }
}

export class RoundRobinBalancer implements RequestBalancer {
  readonly kind = 'round-robin' as const;
  readonly #current = new Map<string, number>();

  pick(candidates: readonly RequestCandidate[], ctx?: RequestPickContext): RequestCandidate | undefined {
    const cs = usable(candidates, ctx?.exclude);
    if (cs.length <= 1) return cs[0];
    let total = 0;
    let best: RequestCandidate | undefined;
    let bestValue = Number.NEGATIVE_INFINITY;
    for (const c of cs) {
      const w = c.weight > 0 ? c.weight : 0;
      total += w;
      const v = (this.#current.get(c.key) ?? 0) + w;
      this.#current.set(c.key, v);
      if (v > bestValue) {
        bestValue = v;
        best = c;
      }
    }
    if (best === undefined) return cs[0];
    this.#current.set(best.key, bestValue - total);
    if (this.#current.size > cs.length * 2 + 16) {
      const keep = new Set(cs.map((c) => c.key));
      for (const k of this.#current.keys()) if (!keep.has(k)) this.#current.delete(k);
    }
    return best;
  }
}

const MAX_RING_POINTS = 1 << 17;

/**
 * An immutable hash ring over one candidate set (ketama-style). Each endpoint owns round(pointsPerWeight x weight)
 * points (at least one) at hash("key_i"), independent of the other endpoints: removing an endpoint moves only the
 * keys it owned, adding one takes keys only for itself. (Envoy sizes points by share of a fixed ring size, which
 * moves other keys on every membership change.) Above MAX_RING_POINTS in total, every count is scaled down.
 */
export class HashRing {
  readonly #points: Uint32Array;
  readonly #owners: readonly RequestCandidate[];
  readonly candidates: readonly RequestCandidate[];

  constructor(candidates: readonly RequestCandidate[], pointsPerWeight = DEFAULT_RING_POINTS_PER_WEIGHT) {
    this.candidates = candidates;
    const want = candidates.map((c) => Math.max(1, Math.round(pointsPerWeight * Math.max(0, c.weight))));
    const total = want.reduce((a, n) => a + n, 0);
    const scale = total > MAX_RING_POINTS ? MAX_RING_POINTS / total : 1;
    const entries: { hash: number; owner: RequestCandidate }[] = [];
    candidates.forEach((c, idx) => {
      const n = Math.max(1, Math.floor((want[idx] as number) * scale));
      for (let i = 0; i < n; i++) entries.push({ hash: hash32(`${c.key}_${i}`), owner: c });
    });
    entries.sort((a, b) => a.hash - b.hash || (a.owner.key < b.owner.key ? -1 : a.owner.key > b.owner.key ? 1 : 0));
    this.#points = Uint32Array.from(entries.map((e) => e.hash));
    this.#owners = entries.map((e) => e.owner);
  }

  /** The owner of the first point at or after hash(key), skipping excluded owners while others exist. */
  lookup(key: string, exclude?: ReadonlySet<string>): RequestCandidate | undefined {
    const n = this.#points.length;
    if (n === 0) return undefined;
    const h = hash32(key);
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#points[mid] as number) < h) lo = mid + 1;
      else hi = mid;
    }
    const start = lo % n;
    const first = this.#owners[start] as RequestCandidate;
    if (exclude === undefined || exclude.size === 0 || !exclude.has(first.key)) return first;
    for (let i = 1; i < n; i++) {
      const o = this.#owners[(start + i) % n] as RequestCandidate;
      if (!exclude.has(o.key)) return o;
    }
    return first;
  }
}

export class RingHashBalancer implements RequestBalancer {
  readonly kind = 'ring-hash' as const;
  readonly #random: () => number;
  readonly #pointsPerWeight: number;
  #ring: HashRing | undefined;
  #signature = '';

  constructor(random: () => number, pointsPerWeight = DEFAULT_RING_POINTS_PER_WEIGHT) {
    this.#random = random;
    this.#pointsPerWeight = pointsPerWeight;
  }

  /** The ring for a candidate set (rebuilt only when the set of keys or their weights change). */
  ring(candidates: readonly RequestCandidate[]): HashRing {
    if (this.#ring !== undefined && this.#ring.candidates === candidates) return this.#ring;
    const sig = candidates.map((c) => `${c.key} ${c.weight}`).join('\n');
    if (this.#ring === undefined || sig !== this.#signature) {
      this.#ring = new HashRing(candidates, this.#pointsPerWeight);
      this.#signature = sig;
    }
    return this.#ring;
  }

  pick(candidates: readonly RequestCandidate[], ctx?: RequestPickContext): RequestCandidate | undefined {
    if (candidates.length <= 1) return candidates[0];
    const key = ctx?.hashKey;
    if (key === undefined) {
      const cs = usable(candidates, ctx?.exclude);
      return cs[weightedIndex(cs, this.#random, -1)];
    }
    const found = this.ring(candidates).lookup(key, ctx?.exclude);
    // Return the caller's object for the key (the ring may hold an equal-keyed one from an earlier array).
    return found === undefined ? undefined : candidates.find((c) => c.key === found.key) ?? found;
  }
}

export interface RequestBalancerOptions {
  readonly random: () => number;
  /** Needed by least-request and peak-ewma. */
  readonly load: EndpointLoadTracker;
  /** ring-hash points per unit of endpoint weight (default 128). */
  readonly ringPointsPerWeight?: number;
}

export function createRequestBalancer(kind: RequestBalancerKind, opts: RequestBalancerOptions): RequestBalancer {
  switch (kind) {
    case 'least-request': return new P2cBalancer('least-request', opts.load, opts.random);
    case 'peak-ewma': return new P2cBalancer('peak-ewma', opts.load, opts.random);
    case 'round-robin': return new RoundRobinBalancer();
    case 'ring-hash': return new RingHashBalancer(opts.random, opts.ringPointsPerWeight);
  }
}
