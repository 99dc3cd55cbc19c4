import { test } from 'node:test';
import assert from 'node:assert/strict';
import { radixSortPairs, RingHashPicker } from '../../../src/upstream/balancer/ring-hash.js';
import { pickerEndpoints, seededRandom } from './helpers.js';
import {
  checkBalanced, checkExclude, checkMovement, checkNoKeyIsRandom, checkSticky, checkWeighted,
} from './consistent-hash.js';

test('the same source address always maps to the same endpoint', () => checkSticky(RingHashPicker));

test('equal weights give a balanced distribution (N=5..10, each share within 10%)', () => {
  for (let n = 5; n <= 10; n++) checkBalanced(RingHashPicker, n, 0.1);
});

test('weights are respected (5:1:1 and 1:2:3:4)', () => {
  checkWeighted(RingHashPicker, [5, 1, 1], 0.03);
  checkWeighted(RingHashPicker, [1, 2, 3, 4], 0.03);
});

test('adding or removing one of N endpoints moves ~1/N of the keys, only to/from that endpoint', () => {
  for (let n = 5; n <= 10; n++) checkMovement(RingHashPicker, n, 0.2, true);
});

test('ring points are proportional to weight and capped by maxRingSize', () => {
  const { endpoints } = pickerEndpoints([2, 4, 6]);
  assert.equal(new RingHashPicker(endpoints, { random: seededRandom(1) }).ringSize, (1 + 2 + 3) * 1024);
  assert.equal(new RingHashPicker(endpoints, { random: seededRandom(1) }, { vnodesPerWeight: 10 }).ringSize, 60);
  const capped = new RingHashPicker(endpoints, { random: seededRandom(1) }, { maxRingSize: 600 });
  assert.ok(capped.ringSize <= 600 && capped.ringSize >= 597);
});

test('exclude walks to the next endpoint on the ring', () => checkExclude(RingHashPicker));

test('without a hash key or source address the pick is random', () => checkNoKeyIsRandom(RingHashPicker));

test('radix sort orders keys and keeps equal keys in their original order', () => {
  const random = seededRandom(8);
  const keys = Uint32Array.from({ length: 5000 }, () => Math.floor(random() * 50) * 0x0101_0101);
  const vals = Uint32Array.from({ length: 5000 }, (_, i) => i);
  const expected = [...keys].map((k, i) => [k, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  radixSortPairs(keys, vals);
  assert.deepEqual([...keys], expected.map((e) => e[0]));
  assert.deepEqual([...vals], expected.map((e) => e[1]));
});
