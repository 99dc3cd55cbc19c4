// Mesh mTLS origination: the transport of a cluster whose [service NAME] says mtls = true. TLS 1.3 to the endpoint
// (the peer sidecar's inbound listener, reached at the endpoint's own address and port: the iptables rules of the
// server's pod send it there), offering the mesh ALPN so that the server sidecar recognises the hop during
// detection; our certificate chain as the client certificate; the server's chain verified against the trust bundle;
// then its X.509-SVID checked and its SPIFFE ID matched against the service's `identities` (exact, "prefix*",
// "*suffix", "*"). A mismatch fails the handshake as REMORA_ERR_PEER_IDENTITY; any other failure after TCP is
// REMORA_ERR_MTLS_HANDSHAKE with OpenSSL's reason. Handshakes and failures are counted (MeshStats.outbound).
import type { Socket } from 'node:net';
import type * as tls from 'node:tls';
import { nodeTls } from '../../core/lazy-builtins.js';
import type { ServiceMtlsSpec } from '../../config/mtls-settings.js';
import type { MeshStats } from '../../core/mesh-stats.js';
import { matchesPattern } from '../../core/spiffe.js';
import { tlsFailureCode } from './tls-origination.js';
import { checkPeerCertificate, MESH_ALPN, type MeshIdentity } from './mesh-identity.js';
import type { HandshakeFailureCode, UpstreamTransport } from './upstream-transport.js';

const PEER_IDENTITY = 'ERR_REMORA_PEER_IDENTITY';
const ALPN = [MESH_ALPN];


export class MeshTlsOriginator implements UpstreamTransport {
  readonly kind = 'mtls';
  readonly identity: MeshIdentity;
  readonly #patterns: readonly string[];
  readonly #any: boolean;
  readonly #stats: MeshStats | undefined;
  readonly #checkServerIdentity: (host: string, cert: tls.PeerCertificate) => Error | undefined;

  constructor(identity: MeshIdentity, spec: ServiceMtlsSpec, stats: MeshStats | undefined) {
    this.identity = identity;
    this.#patterns = spec.identities;
    this.#any = spec.identities.includes('*');
    this.#stats = stats;
    this.#checkServerIdentity = (_host, cert) => {
      const peer = checkPeerCertificate(cert);
      if (!peer.ok) return Object.assign(new Error(`the server's certificate is not an X.509-SVID (${peer.reason})`), { code: peer.reason });
      if (this.#any || this.#patterns.some((p) => matchesPattern(p, peer.spiffeId))) return undefined;
      return Object.assign(new Error(`the server presented ${peer.spiffeId}, which identities (${this.#patterns.join(', ')}) do not accept`),
        { code: PEER_IDENTITY, peerIdentity: peer.spiffeId });
    };
  }

  portFor(endpointPort: number): number {
    return endpointPort;
  }

  wrap(tcp: Socket, host: string): tls.TLSSocket {
    const socket = nodeTls().connect({
      socket: tcp,
      host,
      secureContext: this.identity.clientContext,
      minVersion: 'TLSv1.3',
      ALPNProtocols: ALPN,
      rejectUnauthorized: true,
      checkServerIdentity: this.#checkServerIdentity,
      allowHalfOpen: true,
    } as tls.ConnectionOptions & { allowHalfOpen: boolean });
    const stats = this.#stats;
    if (stats !== undefined) socket.once('secureConnect', () => { stats.outbound.increment('handshakes'); });
    return socket;
  }

  classify(err: Error): { code: HandshakeFailureCode; reason: string } {
    const reason = tlsFailureCode(err);
    this.#stats?.outbound.increment(`failures.${reason}`);
    return { code: reason === PEER_IDENTITY ? 'REMORA_ERR_PEER_IDENTITY' : 'REMORA_ERR_MTLS_HANDSHAKE', reason };
  }
}
