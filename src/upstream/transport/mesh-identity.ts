// The workload's mesh identity, built from the PEM contents of identity_dir (checked by
// src/config/identity-files.ts when the snapshot was loaded): its SPIFFE ID, the TLS contexts of both directions of
// mesh mTLS (the certificate chain and key, the trust bundle as the only CAs, TLS 1.3), and the check of a peer's
// certificate once OpenSSL has verified its chain. One MeshIdentity per distinct set of files; a runtime built from a
// snapshot with the same files reuses the previous one (src/proxy/runtime.ts). Rotation = a new snapshot with new
// files: new handshakes use the new contexts, established connections keep theirs.
import { createHash, X509Certificate } from 'node:crypto';
import type { PeerCertificate, SecureContext } from 'node:tls';
import { nodeTls } from '../../core/lazy-builtins.js';
import type { IdentityPems } from '../../config/identity-files.js';
import { inspectSvid, spiffeIdOfSans, splitPemCertificates, uriSansOf, validityOf } from '../../core/svid.js';

/** The ALPN protocol of the mesh hop: a ClientHello offering it is a sidecar's, terminated by the inbound sidecar. */
export const MESH_ALPN = 'remora';

/** A certificate as /certs shows it. */
export interface CertificateSummary {
  readonly subject: string;
  readonly spiffeId: string | undefined;
  readonly serial: string;
  readonly sha256: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly secondsLeft: number;
}

export type PeerCheck =
  | { readonly ok: true; readonly spiffeId: string; readonly sha256: string }
  | { readonly ok: false; readonly reason: string };

function summarize(c: X509Certificate, now: number): CertificateSummary {
  const { notBefore, notAfter } = validityOf(c);
  const uri = spiffeIdOfSans(uriSansOf(c.subjectAltName));
  return {
    // An X.509-SVID's subject is usually empty (Node 20 reports undefined).
    subject: (c.subject as string | undefined ?? '').replaceAll('\n', ', '),
    spiffeId: uri.ok ? uri.id : undefined,
    serial: c.serialNumber.toLowerCase(),
    sha256: c.fingerprint256.replaceAll(':', '').toLowerCase(),
    notBefore: new Date(notBefore).toISOString(),
    notAfter: new Date(notAfter).toISOString(),
    secondsLeft: Math.floor((notAfter - now) / 1000),
  };
}

export class MeshIdentity {
  readonly spiffeId: string;
  /** sha256 of the three PEM contents: equal files, equal key (runtimes reuse an identity by it). */
  readonly key: string;
  /** Wall-clock ms of the workload certificate's validity. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** The PEM contents (the inbound side builds its TLS server from them: src/l4/mesh-termination.ts). Never logged. */
  readonly pems: IdentityPems;
  /** Client side of the mesh hop: our chain and key; the server's chain verified against the bundle. */
  readonly clientContext: SecureContext;
  readonly #chain: readonly X509Certificate[];
  readonly #roots: readonly X509Certificate[];

  /** Throws when the PEMs are not usable (they were checked at load; a throw here is a bug or a race). */
  constructor(pems: IdentityPems) {
    this.#chain = splitPemCertificates(pems.certChain).map((p) => new X509Certificate(p));
    this.#roots = splitPemCertificates(pems.roots).map((p) => new X509Certificate(p));
    const leaf = this.#chain[0];
    if (leaf === undefined) throw new Error('no certificate in cert-chain.pem');
    const svid = inspectSvid(leaf);
    if (!svid.ok) throw new Error(`cert-chain.pem: expected ${svid.expected}`);
    this.spiffeId = svid.value.spiffeId;
    this.notBefore = svid.value.notBefore;
    this.notAfter = svid.value.notAfter;
    this.key = createHash('sha256').update(pems.certChain).update('\0').update(pems.key).update('\0').update(pems.roots).digest('hex');
    this.pems = pems;
    this.clientContext = nodeTls().createSecureContext({ cert: pems.certChain, key: pems.key, ca: pems.roots, minVersion: 'TLSv1.3' });
  }

  /** For /certs. */
  describe(now: number): { spiffeId: string; chain: CertificateSummary[]; roots: CertificateSummary[] } {
    return {
      spiffeId: this.spiffeId,
      chain: this.#chain.map((c) => summarize(c, now)),
      roots: this.#roots.map((c) => summarize(c, now)),
    };
  }
}

/**
 * After OpenSSL verified the peer's chain against the bundle (and its validity): the X.509-SVID rules on its
 * certificate (as node:tls presents it) — exactly one URI SAN, a SPIFFE workload ID, not a CA.
 */
export function checkPeerCertificate(cert: PeerCertificate | undefined): PeerCheck {
  if (cert === undefined || cert.raw === undefined || Object.keys(cert).length === 0) return { ok: false, reason: 'no-peer-certificate' };
  if ((cert as PeerCertificate & { ca?: boolean }).ca === true) return { ok: false, reason: 'peer-certificate-is-ca' };
  const id = spiffeIdOfSans(uriSansOf(cert.subjectaltname));
  if (!id.ok) return { ok: false, reason: 'no-spiffe-id' };
  return { ok: true, spiffeId: id.id, sha256: cert.fingerprint256.replaceAll(':', '').toLowerCase() };
}
