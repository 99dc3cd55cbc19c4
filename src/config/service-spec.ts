// The service model: what a [service NAME] section defines (where a service is, where its endpoints come from, how
// to balance, check and reach them) and what the [registry] section defines. Definitions only (data, no sockets, no
// timers): src/config/service-registry.ts parses them from INI; src/upstream builds clusters from them.
import { formatHostPort, type HostPort } from '../core/addr.js';
import type { ServiceMtlsSpec } from './mtls-settings.js';
import type { TlsOriginationSpec } from './tls-settings.js';

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

/** The stable identity of an endpoint ("10.0.0.1:80", "[fd00::1]:80"). */
export function endpointKey(e: { readonly address: string; readonly port: number }): string {
  return formatHostPort(e.address, e.port);
}

/**
 * The balancers, one family for connections (L4) and requests (L7): the same name is the same algorithm at both
 * layers (src/upstream/balancer/). `least-request` is another name for `p2c` (Envoy's name for it).
 */
export const BALANCER_KINDS = [
  'round-robin', 'least-request', 'least-connections', 'random', 'p2c', 'peak-ewma', 'ring-hash', 'maglev',
] as const;
export type BalancerKind = (typeof BALANCER_KINDS)[number];

export const SERVICE_PROTOCOLS = ['auto', 'opaque', 'http', 'http2', 'tls'] as const;
export type ServiceProtocol = (typeof SERVICE_PROTOCOLS)[number];
export const REGISTRY_MODES = ['passthrough', 'registry-only'] as const;
export type RegistryMode = (typeof REGISTRY_MODES)[number];
export const DISCOVERY_KINDS = ['static', 'dns', 'original-dst'] as const;
export type DiscoveryKind = (typeof DISCOVERY_KINDS)[number];
export const DNS_RECORD_TYPES = ['A', 'AAAA', 'A+AAAA', 'SRV'] as const;
export type DnsRecordType = (typeof DNS_RECORD_TYPES)[number];
export const DNS_ADDRESS_TYPES = ['A', 'AAAA', 'A+AAAA'] as const;
export type DnsAddressType = (typeof DNS_ADDRESS_TYPES)[number];
export const HEALTH_CHECK_KINDS = ['none', 'tcp'] as const;
export type HealthCheckKind = (typeof HEALTH_CHECK_KINDS)[number];

export const DEFAULT_BALANCER: BalancerKind = 'p2c';
export const DEFAULT_CONNECT_ATTEMPTS = 3;
export const DEFAULT_DNS_REFRESH_MIN_MS = 5_000;
export const DEFAULT_DNS_REFRESH_MAX_MS = 300_000;
export const DEFAULT_RESOLVER_TIMEOUT_MS = 2_000;

/** A virtual address (VIP) of a service: connections whose original destination is exactly this address:port. */
export interface ServiceAddress {
  /** Canonical IP text (IPv4-mapped IPv6 is stored as IPv4). */
  readonly address: string;
  readonly port: number;
}

/** A name a service is reached by, matched against the TLS SNI or HTTP Host. */
export interface ServiceHostname {
  /** Lower-case, no trailing dot; "*.example.com" matches exactly one extra label ("a.example.com"). */
  readonly pattern: string;
  /** Original-destination port it applies to; undefined = any port. */
  readonly port: number | undefined;
}

export interface DnsDiscoverySpec {
  readonly name: string;
  readonly type: DnsRecordType;
  /** Endpoint port for A/AAAA; undefined for SRV (ports come from the SRV records). */
  readonly port: number | undefined;
  /** Address records looked up for SRV targets. */
  readonly targetType: DnsAddressType;
  readonly refreshMinMs: number;
  readonly refreshMaxMs: number;
}

export type EndpointSource =
  | { readonly kind: 'static'; readonly endpoints: readonly EndpointSpec[] }
  | { readonly kind: 'dns'; readonly dns: DnsDiscoverySpec }
  /** Forward to the connection's own original destination (or to tls_port on that address). */
  | { readonly kind: 'original-dst' };

export interface PassiveHealthSpec {
  /** Consecutive connect failures that eject an endpoint; 0 = passive ejection off. */
  readonly ejectAfterFailures: number;
  /** First ejection lasts this long; each further ejection of the same endpoint lasts this long once more ... */
  readonly ejectBaseTimeMs: number;
  /** ... up to this. */
  readonly ejectMaxTimeMs: number;
  /** Never eject more than this share of a service's endpoints (at least one may always be ejected). */
  readonly maxEjectedPercent: number;
}

export type ActiveHealthSpec =
  | { readonly kind: 'none' }
  | {
    readonly kind: 'tcp';
    readonly intervalMs: number;
    readonly timeoutMs: number;
    /** Consecutive successes that return an unhealthy endpoint to service. */
    readonly healthyThreshold: number;
    /** Consecutive failures that take an endpoint out of service. */
    readonly unhealthyThreshold: number;
  };

export interface ServiceSpec {
  readonly name: string;
  /** "file:line" of the section header. */
  readonly source: string;
  readonly addresses: readonly ServiceAddress[];
  readonly hostnames: readonly ServiceHostname[];
  readonly protocol: ServiceProtocol;
  readonly balancer: BalancerKind;
  readonly endpoints: EndpointSource;
  /** undefined = the proxy's connect_timeout. */
  readonly connectTimeoutMs: number | undefined;
  /** Connection attempts per downstream connection, each on a different endpoint while there are untried ones. */
  readonly connectAttempts: number;
  readonly passiveHealth: PassiveHealthSpec;
  readonly activeHealth: ActiveHealthSpec;
  /** undefined = no TLS origination. */
  readonly tls: TlsOriginationSpec | undefined;
  /** undefined = no mesh mTLS (src/config/mtls-settings.ts). */
  readonly mtls: ServiceMtlsSpec | undefined;
}

/**
 * A [registry] port_protocols entry: ports first..last carry `protocol`. Same shape as the sniffer's
 * PortDeclaration (src/l4/protocol-ports.ts), whose 'detect' is this file's 'auto'.
 */
export interface PortProtocol {
  readonly first: number;
  readonly last: number;
  readonly protocol: ServiceProtocol;
}

export interface RegistryOptions {
  /** What happens to a destination that matches no service. */
  readonly mode: RegistryMode;
  /** DNS server for discovery; undefined = the system's resolvers (/etc/resolv.conf). */
  readonly resolver: HostPort | undefined;
  readonly resolverTimeoutMs: number;
  /** Protocol declarations by destination port, for destinations whose service says `auto` or that match none. */
  readonly portProtocols: readonly PortProtocol[];
}

export interface ServiceRegistry {
  readonly services: readonly ServiceSpec[];
  readonly registry: RegistryOptions;
}

export const DEFAULT_REGISTRY_OPTIONS: RegistryOptions = {
  mode: 'passthrough', resolver: undefined, resolverTimeoutMs: DEFAULT_RESOLVER_TIMEOUT_MS, portProtocols: [],
};
