import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoundRobinPicker, smoothWeightedSchedule } from '../../../src/upstream/balancer/round-robin.js';
import { countPicks, keyOf, pickerEndpoints, seededRandom } from './helpers.js';

test('smooth weighted schedule for 5:1:1 is nginx\'s a a b a c a a', () => {
  assert.deepEqual([...smoothWeightedSchedule([5, 1, 1])], [0, 0, 1, 0, 2, 0, 0]);
});

test('5:1:1 gives exact proportions over whole cycles, and the cycle up to rotation', () => {
  const { endpoints } = pickerEndpoints([5, 1, 1]);
  const [a, b, c] = endpoints.map((e) => e.endpoint.key);
  const picker = new RoundRobinPicker(endpoints, { random: seededRandom(7) });
  const seq = Array.from({ length: 7 }, () => keyOf(picker.pick()));
  const cycle = [a, a, b, a, c, a, a];
  const rotations = cycle.map((_, r) => [...cycle.slice(r), ...cycle.slice(0, r)].join(' '));
  assert.ok(rotations.includes(seq.join(' ')), `unexpected sequence ${seq.join(' ')}`);
  const counts = countPicks(() => picker.pick(), 7 * 100);
  assert.deepEqual([counts.get(a as string), counts.get(b as string), counts.get(c as string)], [500, 100, 100]);
});

test('weights are reduced by their gcd (50:10:10 behaves like 5:1:1)', () => {
  const { endpoints } = pickerEndpoints([50, 10, 10]);
  const picker = new RoundRobinPicker(endpoints, { random: seededRandom(1) });
  const counts = countPicks(() => picker.pick(), 70);
  assert.deepEqual([...counts.values()].sort((x, y) => y - x), [50, 10, 10]);
});

test('equal weights rotate: every endpoint once per round', () => {
  const { endpoints } = pickerEndpoints([1, 1, 1, 1]);
  const picker = new RoundRobinPicker(endpoints, { random: seededRandom(3) });
  for (let round = 0; round < 5; round++) {
    const seen = new Set(Array.from({ length: 4 }, () => keyOf(picker.pick())));
    assert.equal(seen.size, 4);
  }
});

test('pickers start at a seed-dependent point of the cycle', () => {
  const { endpoints } = pickerEndpoints([1, 1, 1, 1, 1, 1, 1, 1]);
  const firsts = new Set([1, 2, 3, 4, 5, 6, 7, 8].map((s) => keyOf(new RoundRobinPicker(endpoints, { random: seededRandom(s) }).pick())));
  assert.ok(firsts.size > 1);
});

test('long cycles fall back to EDF with the same long-run proportions', () => {
  const { endpoints } = pickerEndpoints([5, 3, 1]);
  const picker = new RoundRobinPicker(endpoints, { random: seededRandom(5) }, { maxScheduleLength: 2 });
  const counts = countPicks(() => picker.pick(), 9 * 200);
  const got = endpoints.map((e) => counts.get(e.endpoint.key) ?? 0);
  const want = endpoints.map((e) => e.endpoint.weight * 200);
  got.forEach((g, i) => assert.ok(Math.abs(g - (want[i] as number)) <= 2, `${g} vs ${want[i]}`));
});

test('exclude skips endpoints and keeps the remaining proportions', () => {
  const { endpoints } = pickerEndpoints([5, 1, 1]);
  const [a, b, c] = endpoints.map((e) => e.endpoint.key) as [string, string, string];
  const picker = new RoundRobinPicker(endpoints, { random: seededRandom(2) });
  const counts = countPicks(() => picker.pick({ exclude: new Set([a]) }), 200);
  assert.equal(counts.get(a), undefined);
  assert.equal(counts.get(b), 100);
  assert.equal(counts.get(c), 100);
  assert.deepEqual(picker.pick({ exclude: new Set([a, b, c]) }), { kind: 'none', reason: 'all-excluded' });
});
