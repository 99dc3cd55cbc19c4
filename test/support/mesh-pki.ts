// Certificates for mesh tests, made by remora's own CA code (src/pki): a root per TestCa, X.509-SVIDs issued at any
// time (an expired or not-yet-valid one: a `now` in the past or future), written in Istio's layout with the CA's
// writer. Foreign CAs are just other TestCa instances.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/pki/certificate-authority.js';
import { writeIdentity } from '../../src/pki/identity-writer.js';

export const TRUST_DOMAIN = 'cluster.local';
export const HOUR = 3_600_000;

export function spiffe(ns: string, sa: string, td = TRUST_DOMAIN): string {
  return `spiffe://${td}/ns/${ns}/sa/${sa}`;
}

export interface Leaf {
  readonly certPem: string;
  readonly keyPem: string;
  readonly serial: string;
}

export class TestCa {
  readonly rootPem: string;
  readonly #ca: CertificateAuthority;

  private constructor(rootPem: string, ca: CertificateAuthority) {
    this.rootPem = rootPem;
    this.#ca = ca;
  }

  static async create(opts: { trustDomain?: string; now?: number; ttlMs?: number } = {}): Promise<TestCa> {
    const root = await CertificateAuthority.createRoot({
      trustDomain: opts.trustDomain ?? TRUST_DOMAIN, now: opts.now ?? Date.now(), ttlMs: opts.ttlMs ?? 24 * 365 * HOUR,
    });
    return new TestCa(root.certPem, await CertificateAuthority.load(root.certPem, root.keyPem, { cert: 'root', key: 'root key' }));
  }

  issue(spiffeId: string, opts: { now?: number; ttlMs?: number } = {}): Promise<Leaf> {
    return this.#ca.issue({ spiffeId, now: opts.now ?? Date.now(), ttlMs: opts.ttlMs ?? 24 * HOUR });
  }

  /** Issue a leaf and write it into `dir` with the trust bundle `bundle` (default: this root only). */
  async writeIdentity(dir: string, spiffeId: string, opts: { now?: number; ttlMs?: number; bundle?: readonly string[] } = {}): Promise<Leaf> {
    const leaf = await this.issue(spiffeId, opts);
    writeLeaf(dir, leaf, opts.bundle ?? [this.rootPem]);
    return leaf;
  }
}

export function writeLeaf(dir: string, leaf: Leaf, bundle: readonly string[]): void {
  writeIdentity(dir, { bundlePem: bundle.join(''), certChainPem: leaf.certPem, keyPem: leaf.keyPem });
}

/** A temporary directory removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => { rmSync(dir, { recursive: true, force: true }); } };
}
