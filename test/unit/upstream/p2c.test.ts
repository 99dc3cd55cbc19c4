import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LEAST_LOADED, TwoChoicePicker } from '../../../src/upstream/balancer/p2c.js';
import { countPicks, keyOf, pickerEndpoints, seededRandom } from './helpers.js';

test('of two distinct random choices the less loaded wins', () => {
  const { endpoints, loads } = pickerEndpoints([1, 1, 1]);
  [0, 5, 10].forEach((a, i) => { (loads[i] as { active: number }).active = a; });
  const picker = new TwoChoicePicker(endpoints, { random: seededRandom(31) }, LEAST_LOADED);
  const n = 30_000;
  const counts = countPicks(() => picker.pick(), n);
  const [least, middle, most] = endpoints.map((e) => counts.get(e.endpoint.key) ?? 0);
  // The most loaded can only lose; the least loaded wins whenever drawn (2 of 3 pairs).
  assert.equal(most, 0);
  assert.ok(Math.abs((least as number) / n - 2 / 3) < 0.02, String(least));
  assert.ok(Math.abs((middle as number) / n - 1 / 3) < 0.02, String(middle));
});

test('with two endpoints the choices are always distinct', () => {
  const { endpoints, loads } = pickerEndpoints([1, 1]);
  (loads[1] as { active: number }).active = 1;
  const picker = new TwoChoicePicker(endpoints, { random: seededRandom(32) }, LEAST_LOADED);
  for (let i = 0; i < 1000; i++) assert.equal(keyOf(picker.pick()), endpoints[0]?.endpoint.key);
});

test('idle equal weights spread evenly', () => {
  const { endpoints } = pickerEndpoints([1, 1, 1, 1]);
  const picker = new TwoChoicePicker(endpoints, { random: seededRandom(33) }, LEAST_LOADED);
  const n = 40_000;
  const counts = countPicks(() => picker.pick(), n);
  for (const c of counts.values()) assert.ok(Math.abs(c / n - 0.25) < 0.015, String(c));
});

test('with connections that stay open, load ends up proportional to weight', () => {
  const { endpoints, loads } = pickerEndpoints([5, 1, 1]);
  const picker = new TwoChoicePicker(endpoints, { random: seededRandom(34) }, LEAST_LOADED);
  for (let i = 0; i < 7000; i++) {
    const key = keyOf(picker.pick());
    (loads[endpoints.findIndex((e) => e.endpoint.key === key)] as { active: number }).active++;
  }
  loads.forEach((l, i) => {
    const want = (endpoints[i]?.endpoint.weight ?? 0) * 1000;
    assert.ok(Math.abs(l.active - want) / want < 0.05, `${l.active} vs ${want}`);
  });
});

test('exclude: never an excluded endpoint; one left -> that one; none left -> all-excluded', () => {
  const { endpoints, loads } = pickerEndpoints([1, 1, 1]);
  const keys = endpoints.map((e) => e.endpoint.key) as [string, string, string];
  (loads[0] as { active: number }).active = 0;
  (loads[1] as { active: number }).active = 10;
  const picker = new TwoChoicePicker(endpoints, { random: seededRandom(35) }, LEAST_LOADED);
  const counts = countPicks(() => picker.pick({ exclude: new Set([keys[0]]) }), 2000);
  assert.equal(counts.get(keys[0]), undefined);
  assert.ok((counts.get(keys[2]) ?? 0) > (counts.get(keys[1]) ?? 0));
  assert.equal(keyOf(picker.pick({ exclude: new Set([keys[0], keys[2]]) })), keys[1]);
  assert.deepEqual(picker.pick({ exclude: new Set(keys) }), { kind: 'none', reason: 'all-excluded' });
});
