import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { stageFile, writeFileAtomic } from '../../../src/pki/atomic-write.js';

const dir = mkdtempSync(join(tmpdir(), 'remora-atomic-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('writeFileAtomic replaces a file with the given mode, whatever the umask, leaving no temporary file', () => {
  const file = join(dir, 'a.pem');
  writeFileSync(file, 'old', { mode: 0o644 });
  const umask = process.umask(0o077);
  try {
    writeFileAtomic(join(dir, 'public.pem'), 'x', { mode: 0o644 });
  } finally {
    process.umask(umask);
  }
  assert.equal(statSync(join(dir, 'public.pem')).mode & 0o777, 0o644);
  writeFileAtomic(file, 'new', { mode: 0o600 });
  assert.equal(readFileSync(file, 'utf8'), 'new');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp-')), []);
});

test('a staged file is invisible until commit; discard removes it; exclusive never replaces', () => {
  const file = join(dir, 'b.pem');
  const staged = stageFile(file, 'data', { mode: 0o600 });
  assert.equal(existsSync(file), false);
  assert.equal(readdirSync(dir).filter((n) => n.startsWith('.b.pem.tmp-')).length, 1);
  staged.commit();
  staged.discard();
  assert.equal(readFileSync(file, 'utf8'), 'data');

  const dropped = stageFile(join(dir, 'c.pem'), 'data', { mode: 0o600 });
  dropped.discard();
  assert.equal(existsSync(join(dir, 'c.pem')), false);

  assert.throws(() => writeFileAtomic(file, 'other', { mode: 0o600, exclusive: true }), { code: 'EEXIST' });
  assert.equal(readFileSync(file, 'utf8'), 'data');
  writeFileAtomic(join(dir, 'd.pem'), 'fresh', { mode: 0o600, exclusive: true });
  assert.equal(readFileSync(join(dir, 'd.pem'), 'utf8'), 'fresh');
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp-')), []);
});
