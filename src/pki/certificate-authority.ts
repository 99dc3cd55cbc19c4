// Building certificates for `remora ca`: self-signed roots and X.509-SVID leaves (spiffe/spiffe standards/X509-SVID.md),
// with @peculiar/x509 on Node's WebCrypto (no hand-written ASN.1). Only `remora ca` loads this module; the proxy reads
// certificates with node:crypto (src/core/svid.ts) and never imports src/pki.
//
// Root:  ECDSA P-256, subject O=remora, CN=remora root <first 8 hex digits of the serial>, one URI SAN naming the trust
//        domain (spiffe://TD, no path: allowed for signing certificates), basicConstraints cA=true pathLen=0 (critical:
//        the root signs workload leaves directly and nothing else can chain below it), keyUsage keyCertSign+cRLSign
//        (critical), subjectKeyIdentifier.
// Leaf:  ECDSA P-256 with a fresh key per issue, empty subject, exactly one URI SAN = the SPIFFE ID (critical, as the
//        subject is empty), basicConstraints cA=false (critical), keyUsage digitalSignature (critical; keyEncipherment
//        means nothing for an EC key), extKeyUsage serverAuth+clientAuth, authorityKeyIdentifier = the root's SKI,
//        subjectKeyIdentifier. NotBefore = now - 2 minutes (clock skew between nodes), NotAfter = min(now + ttl, the
//        root's NotAfter).
// Serials: 128 random bits, positive (the top byte is non-zero, so the DER integer keeps 16 octets, plus a leading
//        zero octet when the top bit is set).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, createPrivateKey, createPublicKey, getRandomValues, webcrypto } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
import { RemoraError } from '../core/errors.js';
import { validityOf } from '../core/svid.js';

x509.cryptoProvider.set(globalThis.crypto);

/** Clock skew allowance: leaves (and roots) are valid from this long before they are made. */
export const CLOCK_SKEW_MS = 2 * 60_000;

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** A certificate and its private key, both PEM (the key PKCS#8). */
export interface CertificateAndKey {
  readonly certPem: string;
  readonly keyPem: string;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface IssuedLeaf extends CertificateAndKey {
  /** NotAfter was cut to the root's NotAfter (the requested TTL reached past it). */
  readonly clamped: boolean;
}

export interface RootRequest {
  readonly trustDomain: string;
  readonly ttlMs: number;
  readonly now: number;
}

/** A TLS server certificate (the control plane's listener): DNS names and IP addresses, and optionally a SPIFFE ID. */
export interface ServerCertificateRequest {
  readonly dnsNames: readonly string[];
  readonly ips: readonly string[];
  readonly spiffeId?: string;
  readonly ttlMs: number;
  readonly now: number;
}

export interface LeafRequest {
  /** A validated workload SPIFFE ID in the CA's trust domain. */
  readonly spiffeId: string;
  readonly ttlMs: number;
  readonly now: number;
}

/** 16 random bytes as hex, top byte non-zero (a positive 128-bit serial that keeps all 16 octets). */
function randomSerial(): string {
  const bytes = getRandomValues(new Uint8Array(16));
  if (bytes[0] === 0) bytes[0] = 1;
  return Buffer.from(bytes).toString('hex');
}

async function newKeyPair(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']) ;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
}

function toResult(cert: x509.X509Certificate, key: string): CertificateAndKey {
  const pem = `${cert.toString('pem')}\n`;
  const { notBefore, notAfter } = validityOf(new X509Certificate(pem));
  return { certPem: pem, keyPem: key, serial: cert.serialNumber.toLowerCase(), notBefore, notAfter };
}

/** The signing side of a root: its certificate and private key. */
export class CertificateAuthority {
  readonly #cert: x509.X509Certificate;
  readonly #key: CryptoKey;
  readonly #notAfter: number;
  readonly #notBefore: number;

  private constructor(cert: x509.X509Certificate, key: CryptoKey, validity: { notBefore: number; notAfter: number }) {
    this.#cert = cert;
    this.#key = key;
    this.#notBefore = validity.notBefore;
    this.#notAfter = validity.notAfter;
  }

  /** A new self-signed root for `trustDomain`, valid from now - 2 minutes for ttlMs. */
  static async createRoot(request: RootRequest): Promise<CertificateAndKey> {
    const keys = await newKeyPair();
    const serialNumber = randomSerial();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber,
      name: [{ O: ['remora'] }, { CN: [`remora root ${serialNumber.slice(0, 8)}`] }],
      notBefore: new Date(request.now - CLOCK_SKEW_MS),
      notAfter: new Date(request.now + request.ttlMs),
      keys,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${request.trustDomain}` }], false),
      ],
    });
    return toResult(cert, await keyPem(keys.privateKey));
  }

  /**
   * The CA of a root certificate and its key (PEM). Throws REMORA_ERR_CA when the key is not an ECDSA P-256 key or
   * does not belong to the certificate.
   */
  static async load(certPem: string, rootKeyPem: string, names: { cert: string; key: string }): Promise<CertificateAuthority> {
    const nodeCert = new X509Certificate(certPem);
    let keyObject;
    try {
      keyObject = createPrivateKey(rootKeyPem);
    } catch (err) {
      throw new RemoraError('REMORA_ERR_CA', `${names.key} is not a readable private key`, { cause: err });
    }
    if (keyObject.asymmetricKeyType !== 'ec' || keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new RemoraError('REMORA_ERR_CA', `${names.key} is not an ECDSA P-256 key`);
    }
    const fromKey = createPublicKey(keyObject).export({ type: 'spki', format: 'der' });
    const fromCert = nodeCert.publicKey.export({ type: 'spki', format: 'der' });
    if (!fromKey.equals(fromCert)) {
      throw new RemoraError(
        'REMORA_ERR_CA',
        `${names.key} does not belong to ${names.cert} (an interrupted rotate-root? run "remora ca rotate-root" again to finish it)`,
      );
    }
    const pkcs8 = keyObject.export({ type: 'pkcs8', format: 'der' });
    const key = await webcrypto.subtle.importKey('pkcs8', pkcs8, EC_P256, false, ['sign']);
    return new CertificateAuthority(new x509.X509Certificate(certPem), key, validityOf(nodeCert));
  }

  /** Issue an X.509-SVID for `spiffeId` with a fresh P-256 key. The caller checks the root is not expired. */
  async issue(request: LeafRequest): Promise<IssuedLeaf> {
    const keys = await newKeyPair();
    const { cert, clamped } = await this.#signLeaf(keys.publicKey, request);
    return { ...toResult(cert, await keyPem(keys.privateKey)), clamped };
  }

  /**
   * Issue an X.509-SVID for a key the CA never sees (a CSR's public key, checked by the caller: signature, P-256,
   * the SPIFFE ID). The same certificate as issue() makes.
   */
  async issueForKey(publicKey: CryptoKey, request: LeafRequest): Promise<Omit<IssuedLeaf, 'keyPem'>> {
    const { cert, clamped } = await this.#signLeaf(publicKey, request);
    const { keyPem: _none, ...rest } = toResult(cert, '');
    return { ...rest, clamped };
  }

  async #signLeaf(publicKey: CryptoKey, request: LeafRequest): Promise<{ cert: x509.X509Certificate; clamped: boolean }> {
    const wanted = request.now + request.ttlMs;
    const clamped = wanted > this.#notAfter;
    const rootSki = this.#cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    const aki = rootSki === undefined
      ? await x509.AuthorityKeyIdentifierExtension.create(this.#cert.publicKey)
      : new x509.AuthorityKeyIdentifierExtension(rootSki);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      // Empty subject: the identity is the URI SAN alone, which is therefore critical (RFC 5280 4.2.1.6).
      issuer: this.#cert.subjectName,
      notBefore: new Date(Math.max(request.now - CLOCK_SKEW_MS, this.#notBefore)),
      notAfter: new Date(Math.min(wanted, this.#notAfter)),
      publicKey,
      signingKey: this.#key,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: request.spiffeId }], true),
        aki,
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
      ],
    });
    return { cert, clamped };
  }

  /**
   * Issue a TLS server certificate with a fresh P-256 key: subject CN=remora control, the DNS names and IP addresses
   * (and the SPIFFE ID, when given) as SANs, cA=false, keyUsage digitalSignature, extKeyUsage serverAuth. Valid from
   * now - 2 minutes, never past the root.
   */
  async issueServer(request: ServerCertificateRequest): Promise<IssuedLeaf> {
    const keys = await newKeyPair();
    const wanted = request.now + request.ttlMs;
    const rootSki = this.#cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    const aki = rootSki === undefined
      ? await x509.AuthorityKeyIdentifierExtension.create(this.#cert.publicKey)
      : new x509.AuthorityKeyIdentifierExtension(rootSki);
    const names: x509.JsonGeneralName[] = [
      ...request.dnsNames.map((value) => ({ type: 'dns' as const, value })),
      ...request.ips.map((value) => ({ type: 'ip' as const, value })),
      ...(request.spiffeId === undefined ? [] : [{ type: 'url' as const, value: request.spiffeId }]),
    ];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: [{ CN: ['remora control'] }],
      issuer: this.#cert.subjectName,
      notBefore: new Date(Math.max(request.now - CLOCK_SKEW_MS, this.#notBefore)),
      notAfter: new Date(Math.min(wanted, this.#notAfter)),
      publicKey: keys.publicKey,
      signingKey: this.#key,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension(names, false),
        aki,
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return { ...toResult(cert, await keyPem(keys.privateKey)), clamped: wanted > this.#notAfter };
  }
}
