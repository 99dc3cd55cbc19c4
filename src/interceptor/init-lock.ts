// Serialising `remora init` runs in one network namespace. The lock (proper-lockfile: an atomic mkdir, refreshed
// while held, taken over when stale after a crash) lives in the lock directory (default /run/remora, option lock_dir
// / env REMORA_LOCK_DIR) and is named after the network namespace's inode, so pods sharing a host (and a /run) do not
// wait for each other. Waiting is bounded by lock_timeout; failing to get the lock is REMORA_ERR_LOCK.
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { RemoraError } from '../core/errors.js';
import type { Logger } from '../core/log.js';

/** A holder that has not refreshed its lock for this long is presumed dead. */
const STALE_MS = 10_000;
const RETRY_MIN_MS = 25;
const RETRY_MAX_MS = 250;

/** The inode of this process's network namespace (what `ip netns identify` compares), or undefined. */
export function netnsInode(): number | undefined {
  try {
    return statSync('/proc/self/ns/net').ino;
  } catch {
    return undefined;
  }
}

export function lockTarget(dir: string, inode: number | undefined): string {
  return join(dir, `init-netns-${inode ?? 'unknown'}`);
}

export interface InitLockOptions {
  readonly dir: string;
  readonly timeoutMs: number;
  readonly inode: number | undefined;
  readonly log: Logger;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Run `fn` while holding this namespace's init lock. */
export async function withInitLock<T>(opts: InitLockOptions, fn: () => Promise<T>): Promise<T> {
  const target = lockTarget(opts.dir, opts.inode);
  try {
    mkdirSync(opts.dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'EIO';
    throw new RemoraError('REMORA_ERR_LOCK', `cannot create the lock directory ${opts.dir} (${code}); set lock_dir / `
      + 'REMORA_LOCK_DIR to a writable directory', { cause: err });
  }
  const deadline = Date.now() + opts.timeoutMs;
  const maxAttempts = Math.ceil(opts.timeoutMs / RETRY_MIN_MS) + 2;
  let release: (() => Promise<void>) | undefined;
  let waited = false;
  let lastError: unknown;
  for (let attempt = 0; attempt < maxAttempts && release === undefined; attempt++) {
    try {
      release = await lockfile.lock(target, {
        realpath: false,
        stale: STALE_MS,
        retries: 0,
        onCompromised: (err) => opts.log.error({ err, lock: target }, 'the init lock was taken over while held'),
      });
    } catch (err) {
      lastError = err;
      if ((err as { code?: string }).code !== 'ELOCKED') {
        throw new RemoraError('REMORA_ERR_LOCK', `cannot take the lock ${target}.lock: ${String(err)}`, { cause: err });
      }
      if (Date.now() >= deadline) break;
      if (!waited) {
        opts.log.info({ lock: `${target}.lock`, timeoutMs: opts.timeoutMs }, 'another remora init runs in this network namespace; waiting');
        waited = true;
      }
      await sleep(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(attempt, 4), Math.max(1, deadline - Date.now())));
    }
  }
  if (release === undefined) {
    throw new RemoraError('REMORA_ERR_LOCK', `another remora init still holds ${target}.lock after ${opts.timeoutMs} ms `
      + '(raise lock_timeout, or remove the lock directory if no init is running)', { cause: lastError });
  }
  opts.log.debug({ lock: `${target}.lock` }, 'init lock taken');
  try {
    return await fn();
  } finally {
    await release().catch((err: unknown) => opts.log.warn({ err }, 'releasing the init lock failed'));
  }
}
