import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES, RemoraError, errorCodeOf, systemError } from '../../../src/core/errors.js';

const docs = readFileSync(new URL('../../../../docs/errors.md', import.meta.url), 'utf8');

test('every registered code is documented in docs/errors.md and every documented code is registered', () => {
  for (const code of Object.keys(ERROR_CODES)) {
    assert.ok(docs.includes(`| ${code} |`), `${code} is missing from docs/errors.md`);
  }
  for (const m of docs.matchAll(/^\| (REMORA_ERR_[A-Z0-9_]+) \|/gm)) {
    assert.ok(m[1] !== undefined && m[1] in ERROR_CODES, `${m[1]} is documented but not in src/core/errors.ts`);
  }
});

test('system errors keep Node\'s code, errno and syscall', () => {
  const err = systemError(-2, 'getsockopt');
  assert.equal(err.code, 'ENOENT');
  assert.equal(err.errno, -2);
  assert.equal(err.syscall, 'getsockopt');
  assert.equal(errorCodeOf(err), 'ENOENT');
  assert.equal(errorCodeOf(new RemoraError('REMORA_ERR_LOCK', 'x')), 'REMORA_ERR_LOCK');
  assert.equal(errorCodeOf('weird'), 'REMORA_ERR_INTERNAL');
});
