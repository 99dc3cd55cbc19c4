// Shared vocabulary of the upstream layer: what an endpoint is and which balancers exist. Service definitions
// (src/config/service-registry.ts), discovery (dns-discovery.ts) and balancers (balancer/*.ts) all speak it.

/** One reachable address of a service, as configured or discovered. */
export interface EndpointSpec {
  readonly address: string;
  readonly port: number;
  /** Relative weight, 1-1000 (default 1). */
  readonly weight: number;
  /** Optional zone label ("zone-a"). */
  readonly zone?: string;
  /** Subsets the endpoint belongs to (endpoint attribute `subset=v2`, repeatable), for routes to "web subset=v2". */
  readonly subsets?: readonly string[];
}

/** True if the two lists of subset labels are the same (both absent counts as equal). */
export function sameSubsets(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === b) return true;
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((s, i) => s === y[i]);
}

export const BALANCER_KINDS = ['round-robin', 'least-connections', 'random', 'p2c', 'ring-hash', 'maglev'] as const;
export type BalancerKind = (typeof BALANCER_KINDS)[number];

/** The stable identity of an endpoint ("10.0.0.1:80", "[fd00::1]:80"). */
export function endpointKey(e: { readonly address: string; readonly port: number }): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}
