// The workload identity files of [proxy] identity_dir, in Istio's layout (what `remora ca issue` writes):
//   cert-chain.pem   the workload certificate (an X.509-SVID: one SPIFFE URI SAN), then any intermediates;
//   key.pem          its private key;
//   root-cert.pem    the trust bundle: every root whose certificates this workload accepts (several during a root
//                    rotation's overlap).
// checkIdentityFiles() reads and checks them together, as the proxy will use them: each file readable, the
// certificate an X.509-SVID valid now, the key its key, the chain leading to a root of the bundle. At start a problem
// is a configuration error naming the file (exit 2); on rotation the proxy keeps its last good identity.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { checkValidity, inspectSvid, issuerIn, splitPemCertificates } from '../core/svid.js';
import type { ConfigIssue } from './config-issue.js';

export const IDENTITY_FILE_NAMES = { certChain: 'cert-chain.pem', key: 'key.pem', roots: 'root-cert.pem' } as const;
export type IdentityFileRole = keyof typeof IDENTITY_FILE_NAMES;

export type IdentityPaths = Readonly<Record<IdentityFileRole, string>>;

export function identityPaths(dir: string): IdentityPaths {
  return {
    certChain: join(dir, IDENTITY_FILE_NAMES.certChain),
    key: join(dir, IDENTITY_FILE_NAMES.key),
    roots: join(dir, IDENTITY_FILE_NAMES.roots),
  };
}

/** The PEM contents of the three files. */
export type IdentityPems = Readonly<Record<IdentityFileRole, string>>;

export type IdentityCheck =
  | { readonly ok: true; readonly pems: IdentityPems; readonly spiffeId: string; readonly notAfter: number }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

function message(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Read and check the identity files of `dir` at wall-clock `now` (see the file comment). `read` returns the content
 * or throws (fs.readFileSync's errors).
 */
export function checkIdentityFiles(dir: string, read: (path: string) => Buffer, now: number): IdentityCheck {
  const paths = identityPaths(dir);
  const issues: ConfigIssue[] = [];
  const at = (role: IdentityFileRole, expected: string): void => {
    issues.push({ source: paths[role], key: `identity ${IDENTITY_FILE_NAMES[role]}`, expected });
  };
  const pems: Partial<Record<IdentityFileRole, string>> = {};
  for (const role of ['certChain', 'key', 'roots'] as const) {
    try {
      pems[role] = read(paths[role]).toString('utf8');
    } catch (err) {
      at(role, `a readable file (${message(err)}) in identity_dir ${dir}; \`remora ca issue --out ${dir}\` writes it`);
    }
  }
  if (issues.length > 0) return { ok: false, issues };
  const { certChain = '', key = '', roots = '' } = pems;

  const parse = (role: IdentityFileRole, text: string): X509Certificate[] | undefined => {
    const blocks = splitPemCertificates(text);
    if (blocks.length === 0) {
      at(role, 'PEM certificates (-----BEGIN CERTIFICATE-----); the file has none');
      return undefined;
    }
    try {
      return blocks.map((b) => new X509Certificate(b));
    } catch (err) {
      at(role, `PEM certificates that parse (${message(err)})`);
      return undefined;
    }
  };
  const chain = parse('certChain', certChain);
  const bundle = parse('roots', roots);
  let spiffeId = '';
  let notAfter = 0;
  const leaf = chain?.[0];
  if (leaf !== undefined) {
    const svid = inspectSvid(leaf);
    if (!svid.ok) at('certChain', `an X.509-SVID first: ${svid.expected}`);
    else {
      spiffeId = svid.value.spiffeId;
      notAfter = svid.value.notAfter;
    }
    const invalid = checkValidity(leaf, now);
    if (invalid !== undefined) at('certChain', `a certificate valid now (it is ${invalid}); issue a new one`);
    try {
      if (!leaf.checkPrivateKey(createPrivateKey(key))) {
        at('key', `the private key of ${IDENTITY_FILE_NAMES.certChain} (this key does not match its certificate)`);
      }
    } catch (err) {
      at('key', `a PEM private key (${message(err)})`);
    }
  }
  if (bundle !== undefined) {
    const notCa = bundle.findIndex((c) => !c.ca);
    if (notCa >= 0) at('roots', `CA certificates only (certificate ${notCa + 1} of the bundle is not a CA)`);
    const live = bundle.filter((c) => checkValidity(c, now) === undefined);
    if (live.length === 0) at('roots', 'at least one root valid now (every root of the bundle is expired or not yet valid)');
  }
  if (chain !== undefined && bundle !== undefined && leaf !== undefined) {
    // The chain in order (leaf, intermediates ...), each issued by the next; the last by a root of the bundle.
    for (let i = 0; i + 1 < chain.length; i++) {
      const c = chain[i] as X509Certificate;
      const up = chain[i + 1] as X509Certificate;
      if (!(c.checkIssued(up) && c.verify(up.publicKey))) {
        at('certChain', `certificates in order, each issued by the next (certificate ${i + 1} is not issued by ${i + 2})`);
        break;
      }
    }
    const top = chain[chain.length - 1] as X509Certificate;
    if (issuerIn(top, bundle) === undefined && !bundle.some((r) => r.fingerprint256 === top.fingerprint256)) {
      at('certChain', `a certificate issued by a root of ${IDENTITY_FILE_NAMES.roots} (no root of the bundle signed it)`);
    }
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, pems: { certChain, key, roots }, spiffeId, notAfter };
}
