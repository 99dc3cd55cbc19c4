// Service routing stage: where a connection goes and what it is declared to carry, decided from its original
// destination at accept time, and (when the destination can only be identified by name) again once the TLS SNI or
// HTTP Host is known. Synchronous; the lookups are Map reads (src/upstream/service-table.ts).
//
// Outbound:
//   1. VIP: the original destination is a service's address -> that service (its protocol, or port_protocols /
//      the default opaque ports when it says auto).
//   2. No VIP, but a service's hostname could apply on this port, and the bytes may carry a name -> the name decides
//      after detection (byName); until then `destination` is the fallback: passthrough, or refuse (registry-only).
//   3. Otherwise: passthrough to the original destination, or refuse in registry-only mode.
// Inbound: always the local app (route.ts, inbound_delivery); port_protocols and the default opaque ports apply.
import { formatHostPort } from '../core/addr.js';
import type { PortProtocol, ServiceProtocol } from '../config/service-spec.js';
import type { OriginalDst } from '../interceptor/original-dst.js';
import type { ConnectTarget } from './connect.js';
import { declaredProtocol, DEFAULT_OPAQUE_PORTS, type PortDeclaration } from './detect/protocol-ports.js';
import { routeConnection, type Direction, type RouteOptions } from './inbound-delivery.js';
import type { ServiceRuntime, Services } from '../proxy/services.js';

/** What the connection is declared to carry; 'detect' = sniff it. */
export type Declared = 'opaque' | 'http' | 'http2' | 'tls' | 'detect';

export type Destination =
  | { readonly kind: 'direct'; readonly target: ConnectTarget }
  | { readonly kind: 'service'; readonly service: ServiceRuntime }
  | { readonly kind: 'refuse'; readonly reason: string };

export interface AcceptRoute {
  readonly declared: Declared;
  /** Where the connection goes without a name (when needName: unless a name matches a service). */
  readonly destination: Destination;
  /** A service could be chosen by the SNI / Host: learn it before routing. */
  readonly needName: boolean;
}

function toDeclarations(list: readonly PortProtocol[]): PortDeclaration[] {
  return list.map((p) => ({ first: p.first, last: p.last, protocol: p.protocol === 'auto' ? 'detect' : p.protocol }));
}

export class ServiceRouter {
  readonly #services: Services | undefined;
  readonly #route: RouteOptions;
  readonly #declarations: readonly PortDeclaration[];

  /** `services` undefined (or empty): every outbound destination is passthrough (the fast path). */
  constructor(services: Services | undefined, route: RouteOptions) {
    this.#services = services === undefined || services.empty ? undefined : services;
    this.#route = route;
    this.#declarations = services === undefined ? [] : toDeclarations(services.registry.registry.portProtocols);
  }

  /** A service's protocol (or, for auto/unknown, the port's declaration and the default opaque ports) as Declared. */
  #declared(protocol: ServiceProtocol | undefined, port: number): Declared {
    if (protocol === undefined) return declaredProtocol(port, this.#declarations, DEFAULT_OPAQUE_PORTS);
    return protocol === 'auto' ? 'detect' : protocol;
  }

  accept(direction: Direction, origDst: OriginalDst): AcceptRoute {
    const services = this.#services;
    if (direction === 'inbound' || services === undefined) {
      return {
        declared: declaredProtocol(origDst.port, this.#declarations, DEFAULT_OPAQUE_PORTS),
        destination: { kind: 'direct', target: routeConnection(direction, origDst, this.#route) },
        needName: false,
      };
    }
    const table = services.table;
    const vip = table.byAddress(origDst.address, origDst.port);
    if (vip !== undefined) {
      const runtime = services.runtime(vip.name);
      if (runtime !== undefined) {
        const protocol = vip.protocol === 'auto' ? table.portProtocol(origDst.port) : vip.protocol;
        return { declared: this.#declared(protocol, origDst.port), destination: { kind: 'service', service: runtime }, needName: false };
      }
    }
    const declared = this.#declared(table.portProtocol(origDst.port), origDst.port);
    const needName = declared !== 'opaque' && table.hostnameMayMatch(origDst.address, origDst.port);
    const destination: Destination = table.mode === 'registry-only'
      ? { kind: 'refuse', reason: `no service for ${formatHostPort(origDst.address, origDst.port)} and [registry] mode = registry-only` }
      : { kind: 'direct', target: routeConnection('outbound', origDst, this.#route) };
    return { declared, destination, needName };
  }

  /** The service a name (SNI or Host) selects on this destination port, or undefined. */
  byName(origDst: OriginalDst, hostname: string): Destination | undefined {
    const spec = this.#services?.table.byHostname(hostname, origDst.port);
    const runtime = spec === undefined ? undefined : this.#services?.runtime(spec.name);
    return runtime === undefined ? undefined : { kind: 'service', service: runtime };
  }
}
