import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { silentLogger } from '../../../src/core/log.js';
import { RemoraError } from '../../../src/core/errors.js';
import { lockTarget, netnsInode, withInitLock } from '../../../src/interceptor/init-lock.js';

const dir = mkdtempSync(join(tmpdir(), 'remora-lock-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the lock name carries the network namespace inode', () => {
  assert.equal(lockTarget('/run/remora', 4026531840), '/run/remora/init-netns-4026531840');
  assert.equal(typeof netnsInode(), process.platform === 'linux' ? 'number' : 'undefined');
});

test('runs in one namespace are serialised', async () => {
  const events: string[] = [];
  const opts = { dir, timeoutMs: 5000, inode: 1, log: silentLogger() };
  const job = (name: string) => withInitLock(opts, async () => {
    events.push(`${name} in`);
    await new Promise((r) => setTimeout(r, 50));
    events.push(`${name} out`);
    return name;
  });
  const results = await Promise.all([job('a'), job('b')]);
  assert.deepEqual(results, ['a', 'b']);
  assert.deepEqual(events.map((e) => e.split(' ')[1]), ['in', 'out', 'in', 'out']);
});

test('different namespaces do not wait for each other', async () => {
  const log = silentLogger();
  await withInitLock({ dir, timeoutMs: 0, inode: 2, log }, () => withInitLock({ dir, timeoutMs: 0, inode: 3, log }, async () => 'ok'));
});

test('a held lock fails with REMORA_ERR_LOCK after the timeout', async () => {
  const log = silentLogger();
  await withInitLock({ dir, timeoutMs: 1000, inode: 4, log }, async () => {
    await assert.rejects(withInitLock({ dir, timeoutMs: 100, inode: 4, log }, async () => 'never'),
      (e: unknown) => e instanceof RemoraError && e.code === 'REMORA_ERR_LOCK' && /after 100 ms/.test(e.message));
  });
});

test('an unusable lock directory is REMORA_ERR_LOCK', async () => {
  const file = join(dir, 'a-file');
  writeFileSync(file, '');
  await assert.rejects(withInitLock({ dir: join(file, 'sub'), timeoutMs: 0, inode: 5, log: silentLogger() }, async () => 1),
    (e: unknown) => e instanceof RemoraError && e.code === 'REMORA_ERR_LOCK');
});
