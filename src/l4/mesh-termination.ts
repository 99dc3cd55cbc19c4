// Inbound mesh mTLS termination: a connection whose ClientHello offers the mesh ALPN (recognised by detection, see
// src/l4/staged-connection.ts) is handed, with the bytes detection read, to a node:tls server that never listens —
// one per workload identity, so a rotation gives new handshakes the new certificate while established connections
// keep theirs. It requires TLS 1.3 and a client certificate; a certificate that does not verify against the trust
// bundle (foreign root, expired, not yet valid) or is not an X.509-SVID fails the connection with
// REMORA_ERR_MTLS_HANDSHAKE and a reason (OpenSSL's code or remora's: no-peer-certificate, no-spiffe-id, ...).
// On success the owner gets the TLS socket (plaintext from then on), the client's SPIFFE ID and its certificate's
// SHA-256 (for x-forwarded-client-cert).
//
// node:tls checks a client certificate against the CAs only in a tls.Server's own connection handling (a standalone
// server-side TLSSocket does not enforce rejectUnauthorized), so the socket is given to a tls.Server with
// emit('connection'), and the server's events are routed back to the connection by the client's address and port
// (unique among live connections).
import type { Socket } from 'node:net';
import type * as tls from 'node:tls';
import { nodeTls } from '../core/lazy-builtins.js';
import type { MeshStats } from '../core/mesh-stats.js';
import { LiveTable } from '../core/live-table.js';
import { checkPeerCertificate, MESH_ALPN, type MeshIdentity } from '../upstream/transport/mesh-identity.js';

export type TerminationResult =
  | { readonly ok: true; readonly socket: tls.TLSSocket; readonly spiffeId: string; readonly certificateSha256: string }
  | { readonly ok: false; readonly reason: string; readonly error: Error };

interface Pending {
  readonly onDone: (r: TerminationResult) => void;
  readonly raw: Socket;
  settled: boolean;
}

function keyOf(address: string | undefined, port: number | undefined): string {
  return `${address ?? ''}|${port ?? 0}`;
}

export class MeshTerminator {
  readonly identity: MeshIdentity;
  readonly #server: tls.Server;
  /** Handshakes in progress by the client's address and port (a LiveTable: no Map churned per connection). */
  readonly #pending = new LiveTable<Pending>();
  readonly #stats: MeshStats | undefined;

  constructor(identity: MeshIdentity, handshakeTimeoutMs: number, stats?: MeshStats) {
    this.identity = identity;
    const pems = identity.pems;
    this.#stats = stats;
    this.#server = nodeTls().createServer({
      cert: pems.certChain,
      key: pems.key,
      ca: pems.roots,
      minVersion: 'TLSv1.3',
      requestCert: true,
      // Checked below, so that a refusal has a reason (the server would otherwise close without saying why).
      rejectUnauthorized: false,
      ALPNProtocols: [MESH_ALPN],
      handshakeTimeout: handshakeTimeoutMs,
      allowHalfOpen: true,
    });
    this.#server.on('secureConnection', (socket: tls.TLSSocket) => { this.#secure(socket); });
    this.#server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => { this.#failed(socket, err); });
  }

  /**
   * Terminate mesh mTLS on `raw` (paused, no listener of the L4 stages left on it), whose first bytes `head` were
   * read by detection. `onDone` is called once, unless the raw socket closes first (then never: the owner sees the
   * close). Returns a function that forgets the connection (its owner is gone).
   */
  terminate(raw: Socket, head: Buffer, onDone: (r: TerminationResult) => void): () => void {
    const key = keyOf(raw.remoteAddress, raw.remotePort);
    const pending: Pending = { onDone, raw, settled: false };
    this.#pending.set(key, pending);
    const forget = (): void => {
      if (this.#pending.get(key) === pending) this.#pending.delete(key);
    };
    raw.once('close', forget);
    if (head.length > 0) raw.unshift(head);
    // The TLS socket takes allowHalfOpen from the socket it wraps (not from the server's options): the listener's
    // sockets allow half-open, and a client that closes its side during the handshake (a sidecar refusing our
    // certificate or identity) would then hold the connection until the handshake timeout, reported as
    // ERR_TLS_HANDSHAKE_TIMEOUT. So no half-open until the handshake is done; then it is allowed again (#secure).
    raw.allowHalfOpen = false;
    this.#server.emit('connection', raw);
    return forget;
  }

  #take(socket: tls.TLSSocket): Pending | undefined {
    const key = keyOf(socket.remoteAddress, socket.remotePort);
    const p = this.#pending.get(key);
    if (p === undefined || p.settled) return undefined;
    p.settled = true;
    this.#pending.delete(key);
    return p;
  }

  #secure(socket: tls.TLSSocket): void {
    const p = this.#take(socket);
    if (p === undefined) {
      socket.destroy();
      return;
    }
    const peer = checkPeerCertificate(socket.getPeerCertificate(false));
    let reason: string | undefined;
    if (!peer.ok) reason = peer.reason;
    else if (!socket.authorized) reason = String(socket.authorizationError ?? 'unauthorized');
    if (reason !== undefined || !peer.ok) {
      this.#stats?.inbound.increment(`failures.${reason ?? 'unauthorized'}`);
      socket.destroy();
      p.onDone({ ok: false, reason: reason ?? 'unauthorized', error: new Error(`client certificate refused: ${reason ?? 'unauthorized'}`) });
      return;
    }
    this.#stats?.inbound.increment('handshakes');
    socket.allowHalfOpen = true;
    p.raw.allowHalfOpen = true;
    p.onDone({ ok: true, socket, spiffeId: peer.spiffeId, certificateSha256: peer.sha256 });
  }

  #failed(socket: tls.TLSSocket, err: Error): void {
    const p = this.#take(socket);
    const code = (err as { code?: unknown }).code;
    const reason = typeof code === 'string' && code !== '' ? code : 'ERR_TLS_HANDSHAKE';
    this.#stats?.inbound.increment(`failures.${reason}`);
    socket.destroy();
    p?.onDone({ ok: false, reason, error: err });
  }
}
