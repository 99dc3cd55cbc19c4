// A sidecar's workload identity from the control plane (docs/control-plane.md#certificates-by-csr): a fresh ECDSA
// P-256 key made here for every certificate (never sent), a CSR for the sidecar's SPIFFE ID, the signed X.509-SVID
// and the trust bundle written into identity_dir in the layout and order of `remora ca issue` (src/pki/identity-writer.ts:
// bundle, then key, then certificate, each atomically). The proxy's identity watcher reloads them like any rotation.
// Renewal: every 30 s by the wall clock, once half of the certificate's life has passed (±1% jitter, Istio's rule),
// or at once when the files are missing, unreadable, for another ID, or expired; a failure is logged and retried at
// the next tick while the certificate in force keeps serving.
import { X509Certificate } from 'node:crypto';
import { chownSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IDENTITY_FILE_NAMES } from '../config/identity-files.js';
import type { Logger } from '../core/log.js';
import { uriSans, validityOf } from '../core/svid.js';
import { writeIdentity } from '../pki/identity-writer.js';
import type { ControlCaller } from './control-client.js';
import { createCsr } from './csr.js';

export const RENEW_CHECK_MS = 30_000;

export interface IdentityRenewerOptions {
  /** The control plane: a ControlChannel in the proxy (the sync connection once it is up), a ControlClient alone. */
  readonly client: ControlCaller;
  readonly spiffeId: string;
  readonly dir: string;
  readonly log: Logger;
  /** Owner to give the files (the proxy's uid/gid) when running as root. */
  readonly owner?: { readonly uid: number; readonly gid: number };
  readonly ttlSeconds?: number;
  readonly now?: () => number;
  /** The renewal point as a fraction of the life (default 0.5 with ±0.01 jitter). */
  readonly renewFraction?: number;
}

/** When a certificate valid from notBefore to notAfter is renewed. */
export function renewAt(notBefore: number, notAfter: number, fraction: number): number {
  return notBefore + Math.round((notAfter - notBefore) * fraction);
}

export class IdentityRenewer {
  readonly #o: IdentityRenewerOptions;
  readonly #fraction: number;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(options: IdentityRenewerOptions) {
    this.#o = options;
    this.#fraction = options.renewFraction ?? 0.5 + (Math.random() * 0.02 - 0.01);
  }

  /** Why the files in force must be replaced now, or undefined while they are good. */
  due(): string | undefined {
    const now = (this.#o.now ?? Date.now)();
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(readFileSync(join(this.#o.dir, IDENTITY_FILE_NAMES.certChain)));
      readFileSync(join(this.#o.dir, IDENTITY_FILE_NAMES.key));
      readFileSync(join(this.#o.dir, IDENTITY_FILE_NAMES.roots));
    } catch (err) {
      return `no usable identity files (${(err as { code?: string }).code ?? (err as Error).message})`;
    }
    if (!uriSans(cert).includes(this.#o.spiffeId)) return `the certificate is for ${uriSans(cert).join(', ')}, not ${this.#o.spiffeId}`;
    const { notBefore, notAfter } = validityOf(cert);
    if (now >= notAfter) return 'the certificate expired';
    if (now >= renewAt(notBefore, notAfter, this.#fraction)) return 'half of its life has passed';
    return undefined;
  }

  /** Request and write a new certificate. Throws when the control plane refuses or cannot be reached. */
  async renew(reason: string): Promise<{ serial: string; notAfter: string }> {
    const { keyPem, csrPem } = await createCsr(this.#o.spiffeId);
    const r = await this.#o.client.call('POST', '/api/v1/certificates', { csr: csrPem, ...(this.#o.ttlSeconds === undefined ? {} : { ttlSeconds: this.#o.ttlSeconds }) }) as
      { certChain: string; roots: string; serial: string; notAfter: string };
    const paths = writeIdentity(this.#o.dir, { bundlePem: r.roots, certChainPem: r.certChain, keyPem });
    const owner = this.#o.owner;
    if (owner !== undefined && process.geteuid?.() === 0) {
      chownSync(this.#o.dir, owner.uid, owner.gid);
      for (const p of [paths.bundle, paths.key, paths.certChain]) chownSync(p, owner.uid, owner.gid);
    }
    this.#o.log.info({ event: 'identity.issued', spiffeId: this.#o.spiffeId, serial: r.serial, notAfter: r.notAfter, reason, dir: this.#o.dir },
      'workload certificate issued by the control plane');
    return { serial: r.serial, notAfter: r.notAfter };
  }

  /** Renew when due; failures are logged (the certificate in force keeps serving) and retried at the next check. */
  async check(): Promise<void> {
    if (this.#busy) return;
    const why = this.due();
    if (why === undefined) return;
    this.#busy = true;
    try {
      await this.renew(why);
    } catch (err) {
      this.#o.log.error({ event: 'identity.renew-failed', err: err instanceof Error ? err.message : String(err), reason: why, spiffeId: this.#o.spiffeId },
        'renewing the workload certificate failed; retrying at the next check');
    } finally {
      this.#busy = false;
    }
  }

  start(intervalMs = RENEW_CHECK_MS): void {
    this.#timer = setInterval(() => { void this.check(); }, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }
}
