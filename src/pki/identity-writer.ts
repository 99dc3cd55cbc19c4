// Writes a workload identity in Istio's layout (what the proxy's identity_dir reads):
//   OUTDIR/root-cert.pem   the trust bundle (every root currently trusted), 0644
//   OUTDIR/cert-chain.pem  the leaf (then intermediates: remora's CA has none), 0644
//   OUTDIR/key.pem         the leaf's private key, PKCS#8 PEM, 0600
// Order, each file replaced atomically (atomic-write.ts):
//   1. root-cert.pem: a bundle that trusts the new leaf's root is in place before the leaf appears;
//   2. key.pem and cert-chain.pem are both written to temporary files (fsynced);
//   3. key.pem is renamed into place, then cert-chain.pem.
// Between 3's two renames a reader sees the new key with the old certificate for an instant; the proxy watching
// OUTDIR checks that key and certificate match and retries on a mismatch (the certificate rename is the last event).
// Re-issuing into the same OUTDIR replaces all three: that is how leaves are rotated.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { publishKeyAndCertificate, writeFileAtomic } from './atomic-write.js';

export const IDENTITY_FILES = {
  bundle: 'root-cert.pem',
  certChain: 'cert-chain.pem',
  key: 'key.pem',
} as const;

export interface IdentityFiles {
  readonly bundlePem: string;
  readonly certChainPem: string;
  readonly keyPem: string;
}

export interface WrittenIdentity {
  readonly bundle: string;
  readonly certChain: string;
  readonly key: string;
}

export function writeIdentity(outDir: string, files: IdentityFiles): WrittenIdentity {
  mkdirSync(outDir, { recursive: true, mode: 0o755 });
  const paths = {
    bundle: join(outDir, IDENTITY_FILES.bundle),
    certChain: join(outDir, IDENTITY_FILES.certChain),
    key: join(outDir, IDENTITY_FILES.key),
  };
  writeFileAtomic(paths.bundle, files.bundlePem, { mode: 0o644 });
  publishKeyAndCertificate({ path: paths.key, data: files.keyPem, mode: 0o600 }, { path: paths.certChain, data: files.certChainPem, mode: 0o644 });
  return paths;
}
