// The directory of `remora ca`:
//   DIR/                 0700 when created by `ca init`
//   DIR/ca.json          {"trustDomain": "cluster.local", "created": "2025-...Z"}
//   DIR/root-cert.pem    the active root (signs every `ca issue`)
//   DIR/root-key.pem     its private key (PKCS#8 PEM, 0600)
//   DIR/roots/SERIAL.pem previous roots: no key any more (rotate-root deletes it, so they can never sign again), but
//                        still in the trust bundle so that leaves they signed keep verifying during the overlap,
//                        until `ca retire-root` removes them
// Every file is replaced atomically (atomic-write.ts). The trust bundle is the active root followed by the previous
// roots, newest first.
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { RemoraError } from '../core/errors.js';
import { checkTrustDomain } from '../core/spiffe.js';
import { splitPemCertificates, uriSans, validityOf } from '../core/svid.js';
import { fsyncDirectory, publishKeyAndCertificate, stageFile, writeFileAtomic, type StagedFile } from './atomic-write.js';
import { CertificateAuthority } from './certificate-authority.js';

export const CA_FILES = {
  meta: 'ca.json',
  rootCert: 'root-cert.pem',
  rootKey: 'root-key.pem',
  previousRoots: 'roots',
} as const;

const KEY_MODE = 0o600;
const CERT_MODE = 0o644;
const DIR_MODE = 0o700;

export interface RootCertificate {
  /** Serial number, lower-case hex without colons or leading zeros (the retire-root selector). */
  readonly serial: string;
  /** "O=remora, CN=remora root 1a2b3c4d". */
  readonly subject: string;
  /** SHA-256 fingerprint, upper-case hex with colons (as openssl prints it). */
  readonly sha256: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly pem: string;
  /** The file holding it. */
  readonly file: string;
  readonly active: boolean;
}

export interface InitRequest {
  readonly trustDomain: string;
  readonly ttlMs: number;
  readonly now: number;
}

/** Serial numbers compare as lower-case hex without colons and leading zeros (openssl prints "0A:1B..." or "0A1B..."). */
export function normalizeSerial(text: string): string {
  const hex = text.toLowerCase().replaceAll(':', '').replace(/^0+(?=.)/, '');
  return hex;
}

function caError(message: string, cause?: unknown): RemoraError {
  return new RemoraError('REMORA_ERR_CA', message, cause === undefined ? {} : { cause });
}

function readRoot(file: string, active: boolean): RootCertificate {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw caError(`cannot read ${file}: ${(err as Error).message}`, err);
  }
  const pems = splitPemCertificates(text);
  if (pems.length !== 1) throw caError(`${file} holds ${pems.length} certificates; a root file holds exactly one`);
  const pem = pems[0] ?? '';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw caError(`${file} is not a readable certificate`, err);
  }
  if (!cert.ca) throw caError(`${file} is not a CA certificate`);
  const { notBefore, notAfter } = validityOf(cert);
  return {
    serial: normalizeSerial(cert.serialNumber),
    subject: cert.subject.split('\n').join(', '),
    sha256: cert.fingerprint256,
    notBefore,
    notAfter,
    pem,
    file,
    active,
  };
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** A CA directory, loaded. Reads are snapshots: after rotate() or retire(), open the directory again. */
export class CaStore {
  readonly #dir: string;
  readonly #trustDomain: string;
  readonly #created: string;
  readonly #active: RootCertificate;
  readonly #previous: readonly RootCertificate[];

  private constructor(dir: string, meta: { trustDomain: string; created: string }, active: RootCertificate, previous: RootCertificate[]) {
    this.#dir = dir;
    this.#trustDomain = meta.trustDomain;
    this.#created = meta.created;
    this.#active = active;
    this.#previous = previous;
  }

  get dir(): string { return this.#dir; }
  get trustDomain(): string { return this.#trustDomain; }
  /** When `ca init` ran (ISO 8601). */
  get created(): string { return this.#created; }
  get activeRoot(): RootCertificate { return this.#active; }
  /** Previous roots still trusted, newest first. */
  get previousRoots(): readonly RootCertificate[] { return this.#previous; }
  /** Every trusted root: the active one, then the previous ones. */
  get roots(): readonly RootCertificate[] { return [this.#active, ...this.#previous]; }

  /** The trust bundle (PEM): the active root, then the previous roots. */
  trustBundle(): string {
    return this.roots.map((r) => r.pem).join('');
  }

  /** The file names of a CA directory that mean "a CA is here". */
  static existingCaFiles(dir: string): string[] {
    return [CA_FILES.rootCert, CA_FILES.rootKey, CA_FILES.meta].filter((f) => existsSync(join(dir, f)));
  }

  /**
   * Create a CA in `dir` (created 0700 if missing): a new root, its key (0600) and ca.json. Refuses with REMORA_ERR_CA,
   * writing nothing, when the directory already holds a CA file.
   */
  static async init(dir: string, request: InitRequest): Promise<CaStore> {
    const refuse = (found: readonly string[]): RemoraError => caError(
      `${dir} already holds a CA (${found.join(', ')}); nothing was written (use "remora ca rotate-root --dir ${dir}" for a new root)`,
    );
    const found = CaStore.existingCaFiles(dir);
    if (found.length > 0) throw refuse(found);
    mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    const root = await CertificateAuthority.createRoot(request);
    const meta = `${JSON.stringify({ trustDomain: request.trustDomain, created: new Date(request.now).toISOString() }, null, 2)}\n`;
    const staged: StagedFile[] = [];
    try {
      // Published with link(2): a CA written meanwhile by another `ca init` is never replaced.
      staged.push(stageFile(join(dir, CA_FILES.rootKey), root.keyPem, { mode: KEY_MODE, exclusive: true }));
      staged.push(stageFile(join(dir, CA_FILES.rootCert), root.certPem, { mode: CERT_MODE, exclusive: true }));
      staged.push(stageFile(join(dir, CA_FILES.meta), meta, { mode: CERT_MODE, exclusive: true }));
      for (const file of staged) file.commit();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw refuse(CaStore.existingCaFiles(dir));
      throw err;
    } finally {
      for (const file of staged) file.discard();
    }
    return CaStore.open(dir);
  }

  /** Load the CA of `dir` (certificates and metadata; the key is read by authority()). */
  static open(dir: string): CaStore {
    const metaFile = join(dir, CA_FILES.meta);
    let metaText: string;
    try {
      metaText = readFileSync(metaFile, 'utf8');
    } catch (err) {
      if (isNotFound(err)) {
        const partial = CaStore.existingCaFiles(dir);
        throw caError(partial.length === 0
          ? `no CA in ${dir} (create one with "remora ca init --dir ${dir}")`
          : `incomplete CA in ${dir}: ${CA_FILES.meta} is missing (found ${partial.join(', ')}; an interrupted "ca init"? remove them and run init again)`);
      }
      throw caError(`cannot read ${metaFile}: ${(err as Error).message}`, err);
    }
    let meta: { trustDomain?: unknown; created?: unknown };
    try {
      meta = JSON.parse(metaText) as { trustDomain?: unknown; created?: unknown };
    } catch (err) {
      throw caError(`${metaFile} is not valid JSON`, err);
    }
    const trustDomain = typeof meta.trustDomain === 'string' ? meta.trustDomain : '';
    if (checkTrustDomain(trustDomain) !== undefined) throw caError(`${metaFile} does not name a valid trustDomain`);
    const created = typeof meta.created === 'string' ? meta.created : '';

    const active = readRoot(join(dir, CA_FILES.rootCert), true);
    const activeCert = new X509Certificate(active.pem);
    if (!uriSans(activeCert).includes(`spiffe://${trustDomain}`)) {
      throw caError(`${active.file} is not a root of trust domain ${trustDomain} (the one ${metaFile} names)`);
    }
    const rootsDir = join(dir, CA_FILES.previousRoots);
    let names: string[] = [];
    try {
      names = readdirSync(rootsDir).filter((n) => n.endsWith('.pem') && !n.startsWith('.')).sort();
    } catch (err) {
      if (!isNotFound(err)) throw caError(`cannot read ${rootsDir}: ${(err as Error).message}`, err);
    }
    const previous = names
      .map((n) => readRoot(join(rootsDir, n), false))
      // After an interrupted rotate-root the active root may also sit in roots/: it is listed once, as active.
      .filter((r) => r.serial !== active.serial)
      .sort((a, b) => b.notBefore - a.notBefore || a.serial.localeCompare(b.serial));
    return new CaStore(dir, { trustDomain, created }, active, previous);
  }

  /** The active root with its key, ready to sign. REMORA_ERR_CA when the key is missing or not the root's. */
  async authority(): Promise<CertificateAuthority> {
    const keyFile = join(this.#dir, CA_FILES.rootKey);
    let keyPem: string;
    try {
      keyPem = readFileSync(keyFile, 'utf8');
    } catch (err) {
      throw caError(`cannot read the root key ${keyFile}: ${(err as Error).message}`, err);
    }
    return CertificateAuthority.load(this.#active.pem, keyPem, { cert: this.#active.file, key: keyFile });
  }

  /**
   * Replace the active root with a new one (new key). The old root certificate moves to roots/SERIAL.pem and stays in
   * the trust bundle; its key is deleted (replaced by the new key), so it never signs again. Order: the old
   * certificate is copied to roots/ first; then the new key and certificate are staged and renamed, key first.
   * Interrupted after the key rename, the directory holds the new key with the old certificate: `ca issue` refuses
   * (the key does not match) and running rotate-root again completes a rotation (it never reads the old key).
   */
  async rotate(request: { ttlMs: number; now: number }): Promise<{ retired: RootCertificate; store: CaStore }> {
    const rootsDir = join(this.#dir, CA_FILES.previousRoots);
    mkdirSync(rootsDir, { recursive: true, mode: DIR_MODE });
    const kept = join(rootsDir, `${this.#active.serial}.pem`);
    writeFileAtomic(kept, this.#active.pem, { mode: CERT_MODE });
    const root = await CertificateAuthority.createRoot({ trustDomain: this.#trustDomain, ...request });
    publishKeyAndCertificate(
      { path: join(this.#dir, CA_FILES.rootKey), data: root.keyPem, mode: KEY_MODE },
      { path: join(this.#dir, CA_FILES.rootCert), data: root.certPem, mode: CERT_MODE },
    );
    const store = CaStore.open(this.#dir);
    const retired = store.previousRoots.find((r) => r.serial === this.#active.serial);
    if (retired === undefined) throw caError(`rotate-root: ${kept} was not found after writing it`);
    return { retired, store };
  }

  /**
   * Remove previous roots from the trust bundle (their files in roots/ are deleted). `serials` selects them, or 'all'.
   * Refuses the active root and unknown serials (REMORA_ERR_CA, nothing removed).
   */
  retire(selector: readonly string[] | 'all'): RootCertificate[] {
    let chosen: RootCertificate[];
    if (selector === 'all') {
      chosen = [...this.#previous];
    } else {
      chosen = [];
      for (const raw of selector) {
        const serial = normalizeSerial(raw);
        if (serial === this.#active.serial) {
          throw caError(`root ${serial} is the active root; it cannot be retired (run "remora ca rotate-root" first, then retire it)`);
        }
        const found = this.#previous.find((r) => r.serial === serial);
        if (found === undefined) {
          const known = this.#previous.map((r) => r.serial);
          throw caError(`no previous root with serial ${serial} in ${this.#dir} (previous roots: ${known.length === 0 ? 'none' : known.join(', ')})`);
        }
        if (!chosen.includes(found)) chosen.push(found);
      }
    }
    for (const r of chosen) unlinkSync(r.file);
    if (chosen.length > 0) fsyncDirectory(join(this.#dir, CA_FILES.previousRoots));
    return chosen;
  }
}
