// X.509-SVIDs (spiffe/spiffe standards/X509-SVID.md) read with node:crypto: the SPIFFE ID of a certificate and the
// leaf rules a workload certificate must follow (exactly one URI SAN, a SPIFFE ID with a path, not a CA), PEM bundles
// split into certificates, and the validity window as wall-clock ms. Used by the proxy (identity files, peer
// certificates) and by `remora ca` (what it prints). Issuing lives in src/pki/ (a library builds certificates).
import { X509Certificate } from 'node:crypto';
import { parseSpiffeId } from './spiffe.js';

export interface SvidInfo {
  readonly spiffeId: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly serial: string;
  /** SHA-256 of the DER, hex lower-case without colons (Envoy's XFCC Hash). */
  readonly sha256: string;
}

export type SvidCheck = { readonly ok: true; readonly value: SvidInfo } | { readonly ok: false; readonly expected: string };

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificates of a file, in order (anything between them is ignored). */
export function splitPemCertificates(text: string): string[] {
  return text.match(PEM_CERT_RE)?.map((pem) => `${pem}\n`) ?? [];
}

/** The URI SANs of a certificate. */
export function uriSans(cert: X509Certificate): string[] {
  return uriSansOf(cert.subjectAltName);
}

/** The URI SANs in Node's subjectAltName text (`URI:x, DNS:y`, values JSON-quoted when they need it). */
export function uriSansOf(text: string | undefined): string[] {
  if (text === undefined) return [];
  const out: string[] = [];
  // Entries are "TYPE:value" separated by ", "; a value with special characters is JSON-quoted.
  const re = /(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[1] !== 'URI') continue;
    const raw = m[2] ?? '';
    out.push(raw.startsWith('"') ? String(JSON.parse(raw)) : raw);
  }
  return out;
}

/** Wall-clock ms of a certificate's validity bounds. */
export function validityOf(cert: X509Certificate): { notBefore: number; notAfter: number } {
  return { notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
}

/** The SPIFFE ID of an X.509-SVID's URI SANs (exactly one, a workload ID), or what was expected. */
export function spiffeIdOfSans(uris: readonly string[]): { ok: true; id: string } | { ok: false; expected: string } {
  if (uris.length !== 1) {
    return { ok: false, expected: `exactly one URI SAN holding a SPIFFE ID (the certificate has ${uris.length})` };
  }
  const id = parseSpiffeId(uris[0] ?? '');
  return id.ok ? { ok: true, id: id.value.id } : { ok: false, expected: `a URI SAN that is ${id.expected}` };
}

/** Check the leaf rules of an X.509-SVID; the validity window is reported, not judged (see checkValidity). */
export function inspectSvid(cert: X509Certificate): SvidCheck {
  const id = spiffeIdOfSans(uriSans(cert));
  if (!id.ok) return id;
  if (cert.ca) return { ok: false, expected: 'a workload certificate (basic constraints cA=false), not a CA certificate' };
  const { notBefore, notAfter } = validityOf(cert);
  return {
    ok: true,
    value: { spiffeId: id.id, notBefore, notAfter, serial: cert.serialNumber, sha256: cert.fingerprint256.replaceAll(':', '').toLowerCase() },
  };
}

/** Why a certificate is not valid at `now` (undefined when it is). */
export function checkValidity(cert: X509Certificate, now: number): string | undefined {
  const { notBefore, notAfter } = validityOf(cert);
  if (now < notBefore) return `not valid before ${new Date(notBefore).toISOString()}`;
  if (now >= notAfter) return `expired at ${new Date(notAfter).toISOString()}`;
  return undefined;
}

/** The first root of `roots` that issued and signed `cert`, else undefined. */
export function issuerIn(cert: X509Certificate, roots: readonly X509Certificate[]): X509Certificate | undefined {
  return roots.find((r) => cert.checkIssued(r) && cert.verify(r.publicKey));
}
