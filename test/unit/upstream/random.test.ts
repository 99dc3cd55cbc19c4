import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AliasTable, RandomPicker } from '../../../src/upstream/balancer/random.js';
import { countPicks, pickerEndpoints, seededRandom } from './helpers.js';

test('alias table samples in proportion to weights', () => {
  const weights = [1, 2, 3, 4, 10];
  const table = new AliasTable(weights);
  const random = seededRandom(9);
  const counts = new Array<number>(weights.length).fill(0);
  const n = 200_000;
  for (let i = 0; i < n; i++) { const s = table.sample(random); counts[s] = (counts[s] as number) + 1; }
  weights.forEach((w, i) => assert.ok(Math.abs((counts[i] as number) / n - w / 20) < 0.005, `${i}: ${counts[i]}`));
});

test('equal weights are balanced', () => {
  const { endpoints } = pickerEndpoints([1, 1, 1, 1, 1]);
  const picker = new RandomPicker(endpoints, { random: seededRandom(21) });
  const n = 50_000;
  const counts = countPicks(() => picker.pick(), n);
  assert.equal(counts.size, 5);
  for (const c of counts.values()) assert.ok(Math.abs(c / n - 0.2) < 0.01, String(c));
});

test('weights 5:1:1 are respected', () => {
  const { endpoints } = pickerEndpoints([5, 1, 1]);
  const picker = new RandomPicker(endpoints, { random: seededRandom(22) });
  const n = 70_000;
  const counts = countPicks(() => picker.pick(), n);
  for (const e of endpoints) {
    assert.ok(Math.abs((counts.get(e.endpoint.key) ?? 0) / n - e.endpoint.weight / 7) < 0.01);
  }
});

test('exclude never returns an excluded endpoint and renormalizes the rest', () => {
  const { endpoints } = pickerEndpoints([100, 1, 1]);
  const heavy = endpoints[0]?.endpoint.key as string;
  const picker = new RandomPicker(endpoints, { random: seededRandom(23) });
  const n = 10_000;
  const counts = countPicks(() => picker.pick({ exclude: new Set([heavy]) }), n);
  assert.equal(counts.get(heavy), undefined);
  for (const c of counts.values()) assert.ok(Math.abs(c / n - 0.5) < 0.03, String(c));
  assert.deepEqual(picker.pick({ exclude: new Set(endpoints.map((e) => e.endpoint.key)) }), { kind: 'none', reason: 'all-excluded' });
});
