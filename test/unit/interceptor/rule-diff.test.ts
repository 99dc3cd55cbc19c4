import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffLines } from '../../../src/interceptor/rule-diff.js';

test('equal lists: no diff', () => {
  assert.equal(diffLines(['a', 'b'], ['a', 'b']), undefined);
  assert.equal(diffLines([], []), undefined);
});

test('a changed, a missing and an extra line, with labels', () => {
  const d = diffLines(['x', 'a', 'b', 'c'], ['x', 'a', 'B', 'c', 'd'], { expectedLabel: 'expected IPv4', actualLabel: 'actual' });
  assert.equal(d, [
    '--- expected IPv4',
    '+++ actual',
    ' x',
    ' a',
    '-b',
    '+B',
    ' c',
    '+d',
    '',
  ].join('\n'));
});

test('long unchanged stretches are elided around the changes', () => {
  const exp = Array.from({ length: 30 }, (_, i) => `line ${i}`);
  const act = exp.map((l, i) => (i === 15 ? 'changed' : l));
  const d = diffLines(exp, act, { context: 2 }) ?? '';
  const body = d.split('\n').slice(2).filter((l) => l !== '');
  assert.deepEqual(body, ['@@ ... @@', ' line 13', ' line 14', '-line 15', '+changed', ' line 16', ' line 17', '@@ ... @@']);
});

test('everything missing shows every expected line removed', () => {
  const d = diffLines(['-A OUTPUT -p tcp -j REMORA_OUTPUT', ':REMORA_OUTPUT'], []) ?? '';
  assert.match(d, /^-:REMORA_OUTPUT$/m);
  assert.match(d, /^--A OUTPUT -p tcp -j REMORA_OUTPUT$/m);
});
