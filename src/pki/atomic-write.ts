// Atomic file replacement for the CA's files: the data goes to a temporary file in the same directory (created with
// its final mode, so a key is never readable by others, not even for a moment), is fsynced, and is then renamed over
// the destination; the directory is fsynced after the rename so the new name survives a crash. A reader sees the old
// file or the new one, never a partial one.
//
// Two-phase use (stageFile) lets a caller write several files first and publish them in a chosen order: `ca issue`
// stages key.pem and cert-chain.pem, then renames the key, then the certificate (see identity-writer.ts).
// `exclusive` publishes with link(2) instead of rename(2): it fails with EEXIST instead of replacing an existing file
// (`ca init` never overwrites a CA, even when two run at once).
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, linkSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface StagedFile {
  /** The destination path. */
  readonly path: string;
  /** Publish the staged data under `path` (rename, or link when exclusive) and fsync the directory. */
  commit(): void;
  /** Remove the temporary file (no-op after commit). */
  discard(): void;
}

export interface StageOptions {
  /** File mode, set at creation and again with fchmod (the umask does not apply). */
  readonly mode: number;
  /** Refuse to replace an existing file (EEXIST) instead of renaming over it. */
  readonly exclusive?: boolean;
}

/** fsync a directory so that a rename or unlink inside it is durable. */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Write `data` to a temporary file next to `path` (fsynced), to be published with commit(). */
export function stageFile(path: string, data: string | Uint8Array, options: StageOptions): StagedFile {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const fd = openSync(temp, 'wx', options.mode);
  try {
    fchmodSync(fd, options.mode);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(temp);
    throw err;
  }
  closeSync(fd);
  let pending = true;
  return {
    path,
    commit(): void {
      if (!pending) return;
      if (options.exclusive === true) {
        try {
          linkSync(temp, path);
        } finally {
          pending = false;
          unlinkSync(temp);
        }
      } else {
        renameSync(temp, path);
        pending = false;
      }
      fsyncDirectory(dir);
    },
    discard(): void {
      if (!pending) return;
      pending = false;
      try {
        unlinkSync(temp);
      } catch {
        // already gone
      }
    },
  };
}

/** Replace (or, exclusive, create) `path` atomically with `data`. */
export function writeFileAtomic(path: string, data: string | Uint8Array, options: StageOptions): void {
  const staged = stageFile(path, data, options);
  try {
    staged.commit();
  } finally {
    staged.discard();
  }
}

/**
 * Publish a private key and its certificate: both are staged (written and fsynced) first, then the key is renamed
 * into place, then the certificate, so a reader that sees the new certificate also sees its key. Nothing is
 * published when staging fails; the temporary files never stay behind.
 */
export function publishKeyAndCertificate(
  key: { readonly path: string; readonly data: string; readonly mode: number },
  cert: { readonly path: string; readonly data: string; readonly mode: number },
): void {
  const k = stageFile(key.path, key.data, { mode: key.mode });
  try {
    const c = stageFile(cert.path, cert.data, { mode: cert.mode });
    try {
      k.commit();
      c.commit();
    } finally {
      c.discard();
    }
  } finally {
    k.discard();
  }
}
