import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RemoraError } from '../../../src/core/errors.js';
import { checkIdentity } from '../../../src/proxy/proxy.js';

const configured = { uid: 1337, gid: 1337 };

test('root may start (it switches to the configured ids after binding)', () => {
  assert.doesNotThrow(() => checkIdentity(configured, { euid: 0, egid: 0 }));
});

test('the configured non-root ids are accepted', () => {
  assert.doesNotThrow(() => checkIdentity(configured, { euid: 1337, egid: 1337 }));
});

test('any other non-root uid or gid is REMORA_ERR_UID_MISMATCH (its traffic would loop)', () => {
  for (const id of [{ euid: 1000, egid: 1337 }, { euid: 1337, egid: 1000 }, { euid: 1000, egid: 1000 }]) {
    assert.throws(() => checkIdentity(configured, id),
      (err: unknown) => err instanceof RemoraError && err.code === 'REMORA_ERR_UID_MISMATCH' && /loop/.test(err.message));
  }
});
