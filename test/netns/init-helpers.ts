// Shared setup of the `remora init` netns tests: a lock directory of the file's own, and a fresh Mesh per describe().
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { Mesh } from './harness.js';

/** A lock directory for this test file only (removed after its tests): the environment to give remoraInit(). */
export function privateLockEnv(prefix: string): { REMORA_LOCK_DIR: string } {
  const lockDir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(lockDir, { recursive: true, force: true }));
  return { REMORA_LOCK_DIR: lockDir };
}

/**
 * Inside a describe(): a fresh Mesh, given to `setup` to add its pods before the tests and destroyed after them.
 * Nothing is created where the netns tests are skipped.
 */
export function meshPerSuite(opts: { skip?: string }, setup: (mesh: Mesh) => Promise<void>): void {
  let mesh: Mesh | undefined;
  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create();
    await setup(mesh);
  });
  after(async () => { await mesh?.destroy(); });
}
