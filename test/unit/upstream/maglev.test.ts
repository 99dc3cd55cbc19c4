import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMaglevTable, isPrime, MaglevPicker } from '../../../src/upstream/balancer/maglev.js';
import { pickerEndpoints, seededRandom } from './helpers.js';
import {
  checkBalanced, checkExclude, checkMovement, checkNoKeyIsRandom, checkSticky, checkWeighted,
} from './consistent-hash.js';

test('the same source address always maps to the same endpoint', () => checkSticky(MaglevPicker));

test('equal weights give a balanced distribution (N=5..10, each share within 10%)', () => {
  for (let n = 5; n <= 10; n++) checkBalanced(MaglevPicker, n, 0.1);
});

test('weights are respected (5:1:1 and 1:2:3:4)', () => {
  checkWeighted(MaglevPicker, [5, 1, 1], 0.03);
  checkWeighted(MaglevPicker, [1, 2, 3, 4], 0.03);
});

test('table slots are shared in proportion to weight', () => {
  const table = buildMaglevTable(['a', 'b', 'c'], [5, 1, 1], 65_537);
  const counts = [0, 0, 0];
  for (const owner of table) counts[owner] = (counts[owner] as number) + 1;
  assert.equal(counts.reduce((x, y) => x + y, 0), 65_537);
  [5, 1, 1].forEach((w, i) => assert.ok(Math.abs((counts[i] as number) / 65_537 - w / 7) < 0.001, String(counts)));
});

test('adding or removing one of N endpoints moves about 1/N of the keys', () => {
  for (let n = 5; n <= 10; n++) checkMovement(MaglevPicker, n, 0.25, false);
});

test('the table size must be a prime larger than the endpoint count', () => {
  const { endpoints } = pickerEndpoints([1, 1, 1]);
  assert.throws(() => new MaglevPicker(endpoints, { random: seededRandom(1) }, { tableSize: 65_536 }), RangeError);
  assert.throws(() => new MaglevPicker(endpoints, { random: seededRandom(1) }, { tableSize: 3 }), RangeError);
  assert.doesNotThrow(() => new MaglevPicker(endpoints, { random: seededRandom(1) }, { tableSize: 251 }));
  assert.deepEqual([2, 3, 65_537, 4, 1, 65_535].map(isPrime), [true, true, true, false, false, false]);
});

test('exclude walks the table to another endpoint', () => checkExclude(MaglevPicker));

test('without a hash key or source address the pick is random', () => checkNoKeyIsRandom(MaglevPicker));
