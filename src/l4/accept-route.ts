// Route stage (L4, pure lookups): where a connection goes and what it is declared to carry, decided from its
// direction and original destination at accept time, and — when the destination can only be identified by name —
// again once the TLS SNI or HTTP Host is known (byName). Map reads only (src/upstream/service-table.ts).
//
// Outbound:
//   1. VIP: the original destination is a service's address -> that service's cluster (its protocol, or
//      port_protocols / the default opaque ports when it says auto).
//   2. No VIP, but a service's hostname could apply on this port, and the bytes may carry a name -> the name decides
//      after detection (byName); until then `destination` is the fallback: passthrough, or refuse (registry-only).
//   3. Otherwise: the passthrough cluster to the original destination, or refuse in registry-only mode.
// Inbound: the inbound cluster, to the local app:
//   original-dst (default) -> the pod address and port the client dialed, from source 127.0.0.6 (IPv4) or ::6
//              (IPv6). The rules RETURN traffic from that source on lo, so it reaches the app instead of being
//              captured again; an app bound to 127.0.0.1 stays unreachable from outside the pod, as without the mesh
//              (Istio's behaviour since 1.10);
//   loopback -> 127.0.0.1 / ::1 at the original port, from the same source (the pre-1.10 Istio behaviour, for apps
//              that listen on localhost only; it exposes them to the network).
// port_protocols and the default opaque ports apply in both directions.
import { formatHostPort, type OriginalDst } from '../core/addr.js';
import type { PortProtocol, ServiceProtocol } from '../config/service-spec.js';
import type { Cluster } from '../upstream/cluster.js';
import type { ClusterSet } from '../upstream/cluster-set.js';
import type { ConnectTarget } from '../upstream/transport/connect.js';
import { declaredProtocol, DEFAULT_OPAQUE_PORTS, type PortDeclaration } from './detect/protocol-ports.js';

export type Direction = 'outbound' | 'inbound';
export type InboundDelivery = 'original-dst' | 'loopback';

/** What the connection is declared to carry; 'detect' = sniff it. */
export type Declared = 'opaque' | 'http' | 'http2' | 'tls' | 'detect';

export type Destination =
  /**
   * A cluster. `target` is the one endpoint of an original-destination cluster (passthrough, inbound delivery, a
   * service with discovery = original-dst); undefined for a cluster whose balancer picks.
   */
  | { readonly kind: 'cluster'; readonly cluster: Cluster; readonly target: ConnectTarget | undefined }
  | { readonly kind: 'refuse'; readonly reason: string };

export interface AcceptRoute {
  readonly declared: Declared;
  /** Where the connection goes without a name (when needName: unless a name matches a service). */
  readonly destination: Destination;
  /** A service could be chosen by the SNI / Host: learn it before routing. */
  readonly needName: boolean;
}

/** The local app's address for an inbound connection (inbound_delivery). */
export function inboundTarget(origDst: OriginalDst, delivery: InboundDelivery): ConnectTarget {
  if (delivery === 'loopback') return { address: origDst.family === 4 ? '127.0.0.1' : '::1', port: origDst.port };
  return { address: origDst.address, port: origDst.port };
}

function toDeclarations(list: readonly PortProtocol[]): PortDeclaration[] {
  return list.map((p) => ({ first: p.first, last: p.last, protocol: p.protocol === 'auto' ? 'detect' : p.protocol }));
}

export class AcceptRouter {
  readonly #clusters: ClusterSet;
  readonly #delivery: InboundDelivery;
  readonly #declarations: readonly PortDeclaration[];
  /** No service, passthrough, no port declaration: every outbound destination is passthrough (the fast path). */
  readonly #empty: boolean;

  constructor(clusters: ClusterSet, inboundDelivery: InboundDelivery) {
    this.#clusters = clusters;
    this.#delivery = inboundDelivery;
    const table = clusters.table;
    this.#declarations = toDeclarations(table.portProtocols);
    this.#empty = table.services.length === 0 && table.mode === 'passthrough' && table.portProtocols.length === 0;
  }

  /** A service's protocol (or, for auto/unknown, the port's declaration and the default opaque ports) as Declared. */
  #declared(protocol: ServiceProtocol | undefined, port: number): Declared {
    if (protocol === undefined) return declaredProtocol(port, this.#declarations, DEFAULT_OPAQUE_PORTS);
    return protocol === 'auto' ? 'detect' : protocol;
  }

  #serviceDestination(cluster: Cluster, origDst: OriginalDst): Destination {
    return { kind: 'cluster', cluster, target: cluster.originalDst ? { address: origDst.address, port: origDst.port } : undefined };
  }

  accept(direction: Direction, origDst: OriginalDst): AcceptRoute {
    const clusters = this.#clusters;
    if (direction === 'inbound') {
      return {
        declared: declaredProtocol(origDst.port, this.#declarations, DEFAULT_OPAQUE_PORTS),
        destination: { kind: 'cluster', cluster: clusters.inbound, target: inboundTarget(origDst, this.#delivery) },
        needName: false,
      };
    }
    if (this.#empty) return { declared: declaredProtocol(origDst.port, [], DEFAULT_OPAQUE_PORTS), destination: this.#passthrough(origDst), needName: false };
    const table = clusters.table;
    const vip = table.byAddress(origDst.address, origDst.port);
    const vipCluster = vip === undefined ? undefined : clusters.get(vip.name);
    if (vip !== undefined && vipCluster !== undefined) {
      const protocol = vip.protocol === 'auto' ? table.portProtocol(origDst.port) : vip.protocol;
      return { declared: this.#declared(protocol, origDst.port), destination: this.#serviceDestination(vipCluster, origDst), needName: false };
    }
    const declared = this.#declared(table.portProtocol(origDst.port), origDst.port);
    // No VIP here (looked up once, above): only the port decides whether a hostname could still apply.
    const needName = declared !== 'opaque' && vip === undefined && table.hostnamesOnPort(origDst.port);
    const destination: Destination = table.mode === 'registry-only'
      ? { kind: 'refuse', reason: `no service for ${formatHostPort(origDst.address, origDst.port)} and [registry] mode = registry-only` }
      : this.#passthrough(origDst);
    return { declared, destination, needName };
  }

  #passthrough(origDst: OriginalDst): Destination {
    return { kind: 'cluster', cluster: this.#clusters.passthrough, target: { address: origDst.address, port: origDst.port } };
  }

  /** The service a name (SNI or Host) selects on this destination port, or undefined. */
  byName(origDst: OriginalDst, hostname: string): Destination | undefined {
    const spec = this.#clusters.table.byHostname(hostname, origDst.port);
    const cluster = spec === undefined ? undefined : this.#clusters.get(spec.name);
    return cluster === undefined ? undefined : this.#serviceDestination(cluster, origDst);
  }
}
