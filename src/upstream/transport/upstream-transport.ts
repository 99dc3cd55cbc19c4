// The transport of a cluster's connections beyond plain TCP: TLS origination to a server outside the mesh
// (src/upstream/transport/tls-origination.ts) or mesh mTLS to another sidecar (src/upstream/transport/mesh-tls.ts).
// The connect stage (src/upstream/transport/connect.ts) opens TCP and hands the socket to wrap(); a failure after TCP
// is up is classified by the transport.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** Why a handshake failed, as an error code: not the endpoint's reachability, the TLS layer's verdict. */
export type HandshakeFailureCode = 'REMORA_ERR_UPSTREAM_TLS' | 'REMORA_ERR_MTLS_HANDSHAKE' | 'REMORA_ERR_PEER_IDENTITY';

export interface UpstreamTransport {
  /** 'tls' = TLS origination, 'mtls' = mesh mTLS. */
  readonly kind: 'tls' | 'mtls';
  /** The port to open for an endpoint listening on `endpointPort` (tls_port wins). */
  portFor(endpointPort: number): number;
  /** TLS over `tcp` (still connecting): 'secureConnect' = verified and ready. `host`: the endpoint's address. */
  wrap(tcp: Socket, host: string): TLSSocket;
  /** The code and reason of a failure after TCP was up. */
  classify(err: Error): { readonly code: HandshakeFailureCode; readonly reason: string };
}
