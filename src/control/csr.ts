// Certificate signing requests for workload identities (docs/control-plane.md#certificates-by-csr), with
// @peculiar/x509 on Node's WebCrypto, as src/pki does. The sidecar makes an ECDSA P-256 key that never leaves it and a
// PKCS#10 request whose one URI SAN is its SPIFFE ID; the control plane checks the request (PEM, signature, P-256,
// exactly one URI SAN, a workload SPIFFE ID of its trust domain) before its CA signs the key.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, webcrypto } from 'node:crypto';
import { parseSpiffeId } from '../core/spiffe.js';

x509.cryptoProvider.set(globalThis.crypto);

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface NewCsr {
  /** The private key, PKCS#8 PEM (stays with the sidecar). */
  readonly keyPem: string;
  readonly csrPem: string;
}

/** A fresh P-256 key and a CSR for `spiffeId`. */
export async function createCsr(spiffeId: string): Promise<NewCsr> {
  const keys = await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: SIGNING,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true)],
  });
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
  return { keyPem, csrPem: `${csr.toString('pem')}\n` };
}

export type CsrCheck =
  | { readonly ok: true; readonly spiffeId: string; readonly publicKey: webcrypto.CryptoKey }
  | { readonly ok: false; readonly expected: string };

/** Check a CSR for a workload of `trustDomain`; the public key is returned ready for CertificateAuthority.issueForKey. */
export async function checkCsr(csrPem: string, trustDomain: string): Promise<CsrCheck> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch {
    return { ok: false, expected: 'a PEM PKCS#10 certificate request (-----BEGIN CERTIFICATE REQUEST-----)' };
  }
  let signed = false;
  try {
    signed = await csr.verify();
  } catch {
    signed = false;
  }
  if (!signed) return { ok: false, expected: 'a request signed by its own key (the signature does not verify)' };
  const algorithm = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (algorithm.name !== 'ECDSA' || algorithm.namedCurve !== 'P-256') return { ok: false, expected: 'an ECDSA P-256 key' };
  const san = csr.extensions.find((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension);
  const names = san?.names.toJSON() ?? [];
  const uris = names.filter((n) => n.type === 'url').map((n) => n.value);
  if (uris.length !== 1 || names.length !== 1) return { ok: false, expected: 'exactly one subject alternative name: the URI of a SPIFFE ID' };
  const id = parseSpiffeId(uris[0] ?? '', true);
  if (!id.ok) return { ok: false, expected: id.expected };
  if (id.value.trustDomain !== trustDomain) return { ok: false, expected: `a SPIFFE ID of the trust domain ${trustDomain} (not ${id.value.trustDomain})` };
  return { ok: true, spiffeId: id.value.id, publicKey: await csr.publicKey.export(EC_P256, ['verify']) };
}
