// Behaviour every balancer shares: built through the factory from its config name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBalancerKind, pickerBuilderFor } from '../../../src/upstream/balancer-factory.js';
import { BALANCER_KINDS, DEFAULT_BALANCER } from '../../../src/config/service-spec.js';
import { countPicks, keyOf, pickerEndpoints, seededRandom, sourceAddresses } from './helpers.js';

const deps = { random: seededRandom(99) };

test('every config name builds a picker; unknown names are not balancer kinds', () => {
  for (const kind of BALANCER_KINDS) assert.equal(isBalancerKind(kind), true);
  assert.equal(isBalancerKind('least-request'), true, 'Envoy\'s name for p2c');
  assert.equal(isBalancerKind('fastest'), false);
  assert.equal(isBalancerKind(DEFAULT_BALANCER), true);
});

for (const kind of BALANCER_KINDS) {
  test(`${kind}: empty set -> no-endpoints`, () => {
    const picker = pickerBuilderFor(kind)([], deps);
    assert.deepEqual(picker.pick(), { kind: 'none', reason: 'no-endpoints' });
    assert.deepEqual(picker.endpoints, []);
  });

  test(`${kind}: a single endpoint is always picked; excluding it -> all-excluded`, () => {
    const { endpoints } = pickerEndpoints([3]);
    const picker = pickerBuilderFor(kind)(endpoints, deps);
    const key = endpoints[0]?.endpoint.key as string;
    for (const src of sourceAddresses(20)) assert.equal(keyOf(picker.pick({ sourceAddress: src })), key);
    assert.deepEqual(picker.pick({ exclude: new Set([key]) }), { kind: 'none', reason: 'all-excluded' });
  });

  test(`${kind}: excluded endpoints are never returned; every other one is`, () => {
    const { endpoints } = pickerEndpoints([1, 2, 1, 3, 1]);
    const picker = pickerBuilderFor(kind)(endpoints, deps);
    const keys = endpoints.map((e) => e.endpoint.key);
    const exclude = new Set([keys[1] as string, keys[3] as string]);
    const srcs = sourceAddresses(3000);
    let i = 0;
    const counts = countPicks(() => picker.pick({ sourceAddress: srcs[i++ % srcs.length] as string, exclude }), 3000);
    assert.deepEqual([...counts.keys()].sort(), [keys[0], keys[2], keys[4]].sort());
  });

  test(`${kind}: results are frozen and name endpoints of the snapshot`, () => {
    const { endpoints } = pickerEndpoints([1, 1, 1]);
    const picker = pickerBuilderFor(kind)(endpoints, deps);
    const r = picker.pick({ sourceAddress: '172.16.0.9' });
    assert.equal(Object.isFrozen(r), true);
    assert.equal(Object.isFrozen(picker.endpoints), true);
    assert.ok(r.kind === 'endpoint' && picker.endpoints.includes(r.endpoint));
    assert.equal(r.kind === 'endpoint' && Object.isFrozen(r.endpoint), true);
  });
}

test('balancer options reach the pickers', () => {
  const { endpoints } = pickerEndpoints([1, 1, 1]);
  assert.throws(() => pickerBuilderFor('maglev', { maglev: { tableSize: 100 } })(endpoints, deps), RangeError);
});
