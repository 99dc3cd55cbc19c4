// The picker contract of the upstream layer (grpc-js style): a balancer publishes an immutable Picker snapshot of
// the endpoints that may be used right now, and the data path calls `pick()` synchronously — no awaits, no locks.
// Membership, weights and health of a snapshot never change; only the live load counters it reads (active
// connections, owned by the EndpointSet) and a picker's own cursor/random state move.
import { endpointKey, type EndpointSpec } from '../config/service-spec.js';

/** An endpoint as pickers hand it out: the spec plus its stable key (see endpointKey()). Frozen. */
export interface UpstreamEndpoint extends EndpointSpec {
  readonly key: string;
}

/** What the caller knows about the connection or request being balanced. Every field is optional. */
export interface PickContext {
  /** The client's address (no port). Hashing balancers use it when hashKey is absent. */
  readonly sourceAddress?: string | undefined;
  /** An explicit hash key (takes precedence over sourceAddress for ring-hash and maglev). */
  readonly hashKey?: string | undefined;
  /** Endpoint keys not to return (endpoints already tried by this connection or request). */
  readonly exclude?: ReadonlySet<string> | undefined;
  /** The original destination: the endpoint of an original-destination cluster (pickers ignore it). */
  readonly originalDst?: { readonly address: string; readonly port: number } | undefined;
}

/**
 * Why no endpoint was returned:
 * - `no-endpoints`: the service has no endpoints at all;
 * - `no-healthy-endpoint`: it has endpoints but all are ejected (passive) or unhealthy (active);
 * - `all-excluded`: healthy endpoints exist but every one is in `exclude`.
 */
export type PickFailureReason = 'no-endpoints' | 'no-healthy-endpoint' | 'all-excluded';

export type PickResult =
  | { readonly kind: 'endpoint'; readonly endpoint: UpstreamEndpoint }
  | { readonly kind: 'none'; readonly reason: PickFailureReason };

export interface Picker {
  /** Synchronous; O(1) or O(log n) except where a balancer documents otherwise (least-connections: O(n)). */
  pick(ctx?: PickContext): PickResult;
  /**
   * What pick() would return now, without moving the picker's own state (a round-robin cursor), for `remora
   * explain`. Absent: pick() keeps no state of its own (it reads the loads and the random source only), so a pick is
   * its own peek.
   */
  peek?(ctx?: PickContext): PickResult;
  /** The endpoints this snapshot picks from (sorted by key, frozen). */
  readonly endpoints: readonly UpstreamEndpoint[];
}

/**
 * A live, read-only view of an endpoint's load (src/upstream/balancer/endpoint-load.ts): what is in flight on it and
 * its peak-EWMA cost. The cluster updates it as connections and request attempts start and end.
 */
export interface PickerLoad {
  readonly active: number;
  /** Peak-EWMA latency x (active + 1), for peak-ewma. */
  cost(): number;
}

/** What a picker builder receives for each endpoint it may pick. */
export interface PickerEndpoint {
  readonly endpoint: UpstreamEndpoint;
  readonly load: PickerLoad;
  /**
   * The weight to balance by: the endpoint's weight, or while some endpoint of the set ramps up after an ejection
   * (slow start) every weight scaled by SLOW_START_SCALE and the ramping ones by their factor. A positive integer.
   */
  readonly weight: number;
}

/** A source of uniform random numbers in [0, 1), like Math.random. Injected so tests are deterministic. */
export type RandomSource = () => number;

export interface PickerDeps {
  readonly random: RandomSource;
  /** The zone of this sidecar, if known. No balancer uses it yet: the hook for locality-aware balancing. */
  readonly localZone?: string;
}

/** Builds a picker from the endpoints that may be used (already filtered for health, sorted by key). */
export type PickerBuilder = (endpoints: readonly PickerEndpoint[], deps: PickerDeps) => Picker;

export function toUpstreamEndpoint(spec: EndpointSpec): UpstreamEndpoint {
  const e: { key: string; address: string; port: number; weight: number; zone?: string; subsets?: readonly string[] } = {
    key: endpointKey(spec), address: spec.address, port: spec.port, weight: spec.weight,
  };
  if (spec.zone !== undefined) e.zone = spec.zone;
  if (spec.subsets !== undefined && spec.subsets.length > 0) e.subsets = Object.freeze([...spec.subsets]);
  return Object.freeze(e);
}

const NONE_RESULTS: Readonly<Record<PickFailureReason, PickResult>> = Object.freeze({
  'no-endpoints': Object.freeze({ kind: 'none', reason: 'no-endpoints' }),
  'no-healthy-endpoint': Object.freeze({ kind: 'none', reason: 'no-healthy-endpoint' }),
  'all-excluded': Object.freeze({ kind: 'none', reason: 'all-excluded' }),
});

export function noneResult(reason: PickFailureReason): PickResult {
  return NONE_RESULTS[reason];
}

/** Frozen `{ kind: 'endpoint' }` results, one per endpoint, so a pick allocates nothing. */
export function endpointResults(endpoints: readonly PickerEndpoint[]): readonly PickResult[] {
  return Object.freeze(endpoints.map((p) => Object.freeze({ kind: 'endpoint', endpoint: p.endpoint }) as PickResult));
}

export function frozenEndpointList(endpoints: readonly PickerEndpoint[]): readonly UpstreamEndpoint[] {
  return Object.freeze(endpoints.map((p) => p.endpoint));
}

/** The exclude set of a context if it is non-empty, else undefined (the fast path). */
export function activeExclusions(ctx: PickContext | undefined): ReadonlySet<string> | undefined {
  const ex = ctx?.exclude;
  return ex !== undefined && ex.size > 0 ? ex : undefined;
}

/** True if every endpoint's key is in exclude (O(n)). */
export function allExcluded(endpoints: readonly PickerEndpoint[], exclude: ReadonlySet<string>): boolean {
  for (const p of endpoints) if (!exclude.has(p.endpoint.key)) return false;
  return true;
}

/** A picker that always fails with one reason (grpc-js UnavailablePicker). */
export class UnavailablePicker implements Picker {
  readonly endpoints: readonly UpstreamEndpoint[] = Object.freeze([]);
  readonly #result: PickResult;

  constructor(reason: PickFailureReason) {
    this.#result = noneResult(reason);
  }

  pick(): PickResult {
    return this.#result;
  }
}

/**
 * Slow path shared by the balancers for picks with exclusions: a weighted random choice among the endpoints not
 * excluded (O(n)). Returns the index, or -1 if every endpoint is excluded.
 */
export function weightedIndexExcluding(
  endpoints: readonly PickerEndpoint[], exclude: ReadonlySet<string>, random: RandomSource,
): number {
  let total = 0;
  let chosen = -1;
  for (let i = 0; i < endpoints.length; i++) {
    const p = endpoints[i] as PickerEndpoint;
    if (exclude.has(p.endpoint.key)) continue;
    total += p.weight;
    // Weighted reservoir sampling: keep i with probability weight / (weight seen so far).
    if (random() * total < p.weight) chosen = i;
  }
  return chosen;
}
