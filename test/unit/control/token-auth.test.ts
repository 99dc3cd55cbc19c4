import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenSet, parseTokenSpec, parseTokensFile } from '../../../src/control/token-auth.js';

const W = 'write-token-0123456789';
const R = 'read-token-0123456789';
const S = 'sidecar-token-0123456789';

test('token specs: a bare token is write, SCOPE:TOKEN sets the scope, short or odd tokens are refused', () => {
  assert.deepEqual(parseTokenSpec(W), { ok: true, scope: 'write', token: W });
  assert.deepEqual(parseTokenSpec(`read:${R}`), { ok: true, scope: 'read', token: R });
  assert.equal(parseTokenSpec('admin:0123456789abcdefgh').ok, false);
  assert.equal(parseTokenSpec('short').ok, false);
  assert.equal(parseTokenSpec('has space 0123456789').ok, false);
  const f = parseTokensFile(`# tokens\n${W}\n\nread:${R}\nbogus\n`, 't.txt');
  assert.deepEqual(f.tokens.map((t) => t.scope), ['write', 'read']);
  assert.deepEqual(f.problems.map((p) => p.split(':').slice(0, 2).join(':')), ['t.txt:5']);
});

test('scopes: read reads, write reads and writes, sidecar only syncs; unknown or missing tokens are unauthenticated', () => {
  const set = new TokenSet([{ scope: 'write', token: W }, { scope: 'read', token: R }, { scope: 'sidecar', token: S }]);
  assert.equal(set.check(`Bearer ${R}`, 'read'), 'ok');
  assert.equal(set.check(`Bearer ${R}`, 'write'), 'forbidden');
  assert.equal(set.check(`Bearer ${W}`, 'write'), 'ok');
  assert.equal(set.check(`bearer ${W}`, 'read'), 'ok');
  assert.equal(set.check(`Bearer ${S}`, 'read'), 'forbidden');
  assert.equal(set.check(`Bearer ${S}`, 'sidecar'), 'ok');
  assert.equal(set.check(`Bearer ${R}`, 'sidecar'), 'forbidden');
  assert.equal(set.check(undefined, 'read'), 'unauthenticated');
  assert.equal(set.check(`Basic ${W}`, 'read'), 'unauthenticated');
  assert.equal(set.check(`Bearer ${W}x`, 'read'), 'unauthenticated');
});
