import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeastConnectionsPicker } from '../../../src/upstream/balancer/least-connections.js';
import { countPicks, keyOf, pickerEndpoints, seededRandom } from './helpers.js';

test('picks the endpoint with the fewest active connections', () => {
  const { endpoints, loads } = pickerEndpoints([1, 1, 1]);
  const picker = new LeastConnectionsPicker(endpoints, { random: seededRandom(1) });
  [3, 0, 5].forEach((a, i) => { (loads[i] as { active: number }).active = a; });
  for (let i = 0; i < 20; i++) assert.equal(keyOf(picker.pick()), endpoints[1]?.endpoint.key);
  (loads[1] as { active: number }).active = 9;
  assert.equal(keyOf(picker.pick()), endpoints[0]?.endpoint.key);
});

test('load is compared per unit of weight', () => {
  const { endpoints, loads } = pickerEndpoints([2, 1]);
  const picker = new LeastConnectionsPicker(endpoints, { random: seededRandom(1) });
  const set = (x: number, y: number): void => { (loads[0] as { active: number }).active = x; (loads[1] as { active: number }).active = y; };
  set(3, 2); // 1.5 vs 2
  assert.equal(keyOf(picker.pick()), endpoints[0]?.endpoint.key);
  set(4, 1); // 2 vs 1
  assert.equal(keyOf(picker.pick()), endpoints[1]?.endpoint.key);
});

test('ties are broken at random in proportion to weight', () => {
  const { endpoints } = pickerEndpoints([5, 1, 1]);
  const picker = new LeastConnectionsPicker(endpoints, { random: seededRandom(11) });
  const n = 70_000;
  const counts = countPicks(() => picker.pick(), n);
  for (const e of endpoints) {
    const share = (counts.get(e.endpoint.key) ?? 0) / n;
    assert.ok(Math.abs(share - e.endpoint.weight / 7) < 0.01, `${e.endpoint.key}: ${share}`);
  }
});

test('with connections that stay open, load ends up proportional to weight', () => {
  const { endpoints, loads } = pickerEndpoints([3, 1]);
  const picker = new LeastConnectionsPicker(endpoints, { random: seededRandom(4) });
  for (let i = 0; i < 400; i++) {
    const key = keyOf(picker.pick());
    const idx = endpoints.findIndex((e) => e.endpoint.key === key);
    (loads[idx] as { active: number }).active++;
  }
  assert.ok(Math.abs((loads[0]?.active ?? 0) - 300) <= 3);
  assert.ok(Math.abs((loads[1]?.active ?? 0) - 100) <= 3);
});

test('exclude skips the least loaded when it was already tried', () => {
  const { endpoints, loads } = pickerEndpoints([1, 1, 1]);
  const picker = new LeastConnectionsPicker(endpoints, { random: seededRandom(1) });
  [0, 1, 2].forEach((a, i) => { (loads[i] as { active: number }).active = a; });
  const first = endpoints[0]?.endpoint.key as string;
  assert.equal(keyOf(picker.pick({ exclude: new Set([first]) })), endpoints[1]?.endpoint.key);
  assert.deepEqual(picker.pick({ exclude: new Set(endpoints.map((e) => e.endpoint.key)) }), { kind: 'none', reason: 'all-excluded' });
});
