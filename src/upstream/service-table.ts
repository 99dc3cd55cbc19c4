// Which service a connection is for. Pure lookups over the parsed registry:
//   * original destination (ip, port) -> the service with exactly that VIP:port;
//   * host name (TLS SNI or HTTP Host) and destination port -> the service with that name (exact name before
//     "*.suffix" wildcard; a name declared for this port before one declared for any port);
//   * nothing matched -> passthrough to the original destination, or refuse, per [registry] mode.
// The protocol of a match is the service's `protocol` unless it is `auto`; then (and for unmatched destinations)
// the [registry] port_protocols declaration of the destination port; else undefined: nothing is declared and the
// protocol detector applies its own defaults (src/l4/protocol-ports.ts: default opaque ports, else detect).
import { canonicalAddress } from '../config/service-registry.js';
import { type RegistryMode, type RegistryOptions, type ServiceProtocol, type ServiceRegistry, type ServiceSpec } from '../config/service-spec.js';
import { endpointKey } from '../config/service-spec.js';

export type ServiceMatch =
  | {
    readonly kind: 'service';
    readonly service: ServiceSpec;
    readonly matchedBy: 'address' | 'hostname';
    /** undefined: nothing declared (the detector's defaults apply). */
    readonly protocol: ServiceProtocol | undefined;
  }
  /** No service: forward to the original destination as it is. */
  | { readonly kind: 'passthrough'; readonly protocol: ServiceProtocol | undefined }
  /** No service and the registry is registry-only: close the connection. */
  | { readonly kind: 'refuse'; readonly reason: string };

export interface DestinationQuery {
  /** Original destination address (IPv4, IPv6 or IPv4-mapped IPv6). */
  readonly address: string;
  readonly port: number;
  /** SNI or Host, when known ("api.example.com", "API.example.com.", "api.example.com:8080"). */
  readonly hostname?: string | undefined;
}

/** Lower-case, no trailing dot, no ":port" suffix; undefined when empty or an IP literal. */
export function normalizeHostname(text: string): string | undefined {
  let h = text.trim().toLowerCase();
  if (h.startsWith('[')) return undefined; // "[::1]:80": an IPv6 literal Host
  const colon = h.lastIndexOf(':');
  if (colon >= 0) {
    if (h.indexOf(':') !== colon || !/^\d{1,5}$/.test(h.slice(colon + 1))) return undefined;
    h = h.slice(0, colon);
  }
  h = h.replace(/\.$/, '');
  if (h === '' || canonicalAddress(h) !== undefined) return undefined;
  return h;
}

export class ServiceTable {
  readonly #services: readonly ServiceSpec[];
  readonly #byName = new Map<string, ServiceSpec>();
  readonly #byAddress = new Map<string, ServiceSpec>();
  /** The ports of every VIP: a destination on another port needs no address lookup (the route filter asks per request). */
  readonly #vipPorts = new Set<number>();
  /** "pattern|port" and "pattern|*" -> service. */
  readonly #byHostname = new Map<string, ServiceSpec>();
  /** Ports on which at least one hostname applies; `anyPortHostnames` when some hostname has no port. */
  readonly #hostnamePorts = new Set<number>();
  readonly #anyPortHostnames: boolean;
  readonly #mode: RegistryMode;
  readonly #portProtocols: RegistryOptions['portProtocols'];

  constructor(services: readonly ServiceSpec[], registry: Pick<RegistryOptions, 'mode' | 'portProtocols'>) {
    this.#services = services;
    this.#mode = registry.mode;
    this.#portProtocols = registry.portProtocols;
    let anyPort = false;
    for (const s of services) {
      this.#byName.set(s.name, s);
      // The registry parser refuses duplicates; if a caller builds specs by hand, the first one wins.
      for (const a of s.addresses) {
        const key = endpointKey({ address: canonicalAddress(a.address) ?? a.address, port: a.port });
        if (!this.#byAddress.has(key)) this.#byAddress.set(key, s);
        this.#vipPorts.add(a.port);
      }
      for (const h of s.hostnames) {
        const key = `${h.pattern}|${h.port ?? '*'}`;
        if (!this.#byHostname.has(key)) this.#byHostname.set(key, s);
        if (h.port === undefined) anyPort = true;
        else this.#hostnamePorts.add(h.port);
      }
    }
    this.#anyPortHostnames = anyPort;
  }

  static fromRegistry(reg: ServiceRegistry): ServiceTable {
    return new ServiceTable(reg.services, reg.registry);
  }

  get services(): readonly ServiceSpec[] {
    return this.#services;
  }

  get mode(): RegistryMode {
    return this.#mode;
  }

  /** The [registry] port_protocols declarations. */
  get portProtocols(): RegistryOptions['portProtocols'] {
    return this.#portProtocols;
  }

  service(name: string): ServiceSpec | undefined {
    return this.#byName.get(name);
  }

  /** The service whose VIP is exactly address:port. */
  byAddress(address: string, port: number): ServiceSpec | undefined {
    if (!this.#vipPorts.has(port)) return undefined;
    const a = canonicalAddress(address);
    return a === undefined ? undefined : this.#byAddress.get(endpointKey({ address: a, port }));
  }

  /** The service reached by this SNI/Host name on this destination port. */
  byHostname(hostname: string, port: number): ServiceSpec | undefined {
    const h = normalizeHostname(hostname);
    if (h === undefined) return undefined;
    const exact = this.#byHostname.get(`${h}|${port}`) ?? this.#byHostname.get(`${h}|*`);
    if (exact !== undefined) return exact;
    const dot = h.indexOf('.');
    if (dot <= 0) return undefined;
    const wild = `*${h.slice(dot)}`;
    return this.#byHostname.get(`${wild}|${port}`) ?? this.#byHostname.get(`${wild}|*`);
  }

  /**
   * True when no VIP matches but a hostname-matched service could apply on this port: the caller should learn the
   * SNI/Host (sniff) before treating the destination as unknown.
   */
  hostnameMayMatch(address: string, port: number): boolean {
    if (this.byAddress(address, port) !== undefined) return false;
    return this.hostnamesOnPort(port);
  }

  /** True when a service's hostname applies on this destination port (for a caller that already found no VIP). */
  hostnamesOnPort(port: number): boolean {
    return this.#anyPortHostnames || this.#hostnamePorts.has(port);
  }

  /** The [registry] port_protocols declaration for a port; undefined when the port is not declared. */
  portProtocol(port: number): ServiceProtocol | undefined {
    return this.#portProtocols.find((p) => port >= p.first && port <= p.last)?.protocol;
  }

  /** VIP first, then host name, then the registry mode. */
  lookup(q: DestinationQuery): ServiceMatch {
    const byAddress = this.byAddress(q.address, q.port);
    if (byAddress !== undefined) return this.#match(byAddress, 'address', q.port);
    const byName = q.hostname === undefined ? undefined : this.byHostname(q.hostname, q.port);
    if (byName !== undefined) return this.#match(byName, 'hostname', q.port);
    if (this.#mode === 'registry-only') {
      const what = q.hostname === undefined ? '' : ` (host name ${q.hostname})`;
      return { kind: 'refuse', reason: `no service for ${endpointKey({ address: canonicalAddress(q.address) ?? q.address, port: q.port })}${what} and [registry] mode = registry-only` };
    }
    return { kind: 'passthrough', protocol: this.portProtocol(q.port) };
  }

  #match(service: ServiceSpec, matchedBy: 'address' | 'hostname', port: number): ServiceMatch {
    const protocol = service.protocol === 'auto' ? this.portProtocol(port) : service.protocol;
    return { kind: 'service', service, matchedBy, protocol };
  }
}
