import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EndpointLoad } from '../../../src/upstream/balancer/endpoint-load.js';
import { CHEAPEST, TwoChoicePicker } from '../../../src/upstream/balancer/p2c.js';
import type { PickerEndpoint } from '../../../src/upstream/picker.js';
import { countPicks, FakeTime, keyOf, pickerEndpoints, seededRandom } from './helpers.js';

test('of two endpoints the cheaper one always wins', () => {
  const { endpoints, loads } = pickerEndpoints([1, 1]);
  const [fast, slow] = endpoints.map((e) => e.endpoint.key) as [string, string];
  (loads[0] as { rttMs: number }).rttMs = 10;
  (loads[1] as { rttMs: number }).rttMs = 100;
  const picker = new TwoChoicePicker(endpoints, { random: seededRandom(41) }, CHEAPEST);
  assert.deepEqual(countPicks(() => picker.pick(), 200), new Map([[fast, 200]]));
  // cost = rtt x (active + 1): ten in flight make the fast one dearer (110 > 100).
  (loads[0] as { active: number }).active = 10;
  assert.deepEqual(countPicks(() => picker.pick(), 200), new Map([[slow, 200]]));
});

test('of three, the dearest never wins and the cheapest wins whenever drawn', () => {
  const { endpoints, loads } = pickerEndpoints([1, 1, 1]);
  [10, 50, 100].forEach((rtt, i) => { (loads[i] as { rttMs: number }).rttMs = rtt; });
  const picker = new TwoChoicePicker(endpoints, { random: seededRandom(42) }, CHEAPEST);
  const n = 30_000;
  const counts = countPicks(() => picker.pick(), n);
  const [cheap, middle, dear] = endpoints.map((e) => counts.get(e.endpoint.key) ?? 0);
  assert.equal(dear, 0);
  assert.ok(Math.abs((cheap as number) / n - 2 / 3) < 0.02, String(cheap));
  assert.ok(Math.abs((middle as number) / n - 1 / 3) < 0.02, String(middle));
});

test('at equal cost the draws follow the weights (ties: the first draw)', () => {
  const { endpoints } = pickerEndpoints([3, 1]);
  const picker = new TwoChoicePicker(endpoints, { random: seededRandom(43) }, CHEAPEST);
  const n = 20_000;
  const counts = countPicks(() => picker.pick(), n);
  const heavy = counts.get(endpoints[0]?.endpoint.key as string) ?? 0;
  assert.ok(Math.abs(heavy / n - 0.75) < 0.02, String(heavy));
});

test('exclude: never an excluded endpoint; one left -> that one; none left -> all-excluded', () => {
  const { endpoints, loads } = pickerEndpoints([1, 1, 1]);
  const keys = endpoints.map((e) => e.endpoint.key) as [string, string, string];
  [10, 100, 50].forEach((rtt, i) => { (loads[i] as { rttMs: number }).rttMs = rtt; });
  const picker = new TwoChoicePicker(endpoints, { random: seededRandom(44) }, CHEAPEST);
  assert.deepEqual(countPicks(() => picker.pick({ exclude: new Set([keys[0]]) }), 100), new Map([[keys[2], 100]]));
  assert.equal(keyOf(picker.pick({ exclude: new Set([keys[0], keys[2]]) })), keys[1]);
  assert.deepEqual(picker.pick({ exclude: new Set(keys) }), { kind: 'none', reason: 'all-excluded' });
  const single = new TwoChoicePicker(endpoints.slice(0, 1), { random: seededRandom(45) }, CHEAPEST);
  assert.equal(keyOf(single.pick()), keys[0]);
});

test('with live EWMA loads a slow endpoint that gets no traffic decays and is tried again', () => {
  const time = new FakeTime();
  const { endpoints } = pickerEndpoints([1, 1]);
  const [fastLoad, slowLoad] = [new EndpointLoad(time), new EndpointLoad(time)];
  const live: PickerEndpoint[] = endpoints.map((e, i) => ({ ...e, load: i === 0 ? fastLoad : slowLoad }));
  const [fast, slow] = live.map((e) => e.endpoint.key) as [string, string];
  const picker = new TwoChoicePicker(live, { random: seededRandom(46) }, CHEAPEST);
  fastLoad.observe(10, false);
  slowLoad.observe(100, false);
  assert.equal(keyOf(picker.pick()), fast);
  // 'fast' keeps reporting 10 ms; 'slow' decays as 100 e^(-t/10 s) and is cheaper once that is below 10: after 23 s.
  let recoveredAt = -1;
  for (let s = 1; s <= 60 && recoveredAt < 0; s++) {
    time.advance(1_000);
    fastLoad.observe(10, false);
    if (keyOf(picker.pick()) === slow) recoveredAt = s;
  }
  assert.equal(recoveredAt, 24);
});
