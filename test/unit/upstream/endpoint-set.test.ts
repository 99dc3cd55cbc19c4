import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EndpointSet } from '../../../src/upstream/endpoint-set.js';
import type { EndpointSpec } from '../../../src/config/service-spec.js';
import type { Picker } from '../../../src/upstream/picker.js';
import { countPicks, FakeTime, flushMicrotasks, keyOf, seededRandom, spec, specs } from './helpers.js';

function makeSet(endpoints: readonly EndpointSpec[], extra: ConstructorParameters<typeof EndpointSet>[1] = {}) {
  const time = new FakeTime();
  const set = new EndpointSet(endpoints, {
    balancer: 'round-robin', clock: time, timers: time, random: seededRandom(1), ...extra,
  });
  return { set, time };
}

const keys = (p: Picker): string[] => p.endpoints.map((e) => e.key);

test('an empty set answers no-endpoints; endpoints appear with update()', () => {
  const { set } = makeSet([]);
  assert.deepEqual(set.pick(), { kind: 'none', reason: 'no-endpoints' });
  set.update(specs([1, 1]));
  assert.equal(set.pick().kind, 'endpoint');
  assert.equal(set.size, 2);
  set.close();
});

test('publishes a new picker only when membership, weight or zone changes', () => {
  const { set } = makeSet(specs([1, 1]));
  const published: number[] = [];
  set.subscribe((_p, v) => published.push(v));
  const v0 = set.version;
  set.update(specs([1, 1]));
  set.update([...specs([1, 1])].reverse());
  assert.deepEqual(published, []);
  set.update(specs([1, 2]));
  set.update([spec(0, 1, 'zone-a'), spec(1, 2)]);
  set.update(specs([1]));
  assert.deepEqual(published, [v0 + 1, v0 + 2, v0 + 3]);
  assert.equal(set.picker.endpoints.length, 1);
  set.close();
});

test('a change of subset labels alone publishes a new picker whose endpoints carry them', () => {
  const { set } = makeSet(specs([1, 1]));
  const published: number[] = [];
  set.subscribe((_p, v) => published.push(v));
  set.update([{ ...spec(0, 1), subsets: ['v1'] }, spec(1, 1)]);
  set.update([{ ...spec(0, 1), subsets: ['v1'] }, spec(1, 1)]);
  assert.equal(published.length, 1, 'same labels again: no new picker');
  set.update([{ ...spec(0, 1), subsets: ['v2'] }, { ...spec(1, 1), subsets: ['v2'] }]);
  assert.equal(published.length, 2);
  assert.deepEqual(set.picker.endpoints.map((e) => e.subsets), [['v2'], ['v2']]);
  set.close();
});

test('duplicate keys: the first wins', () => {
  const { set } = makeSet([spec(0, 5), spec(0, 1), spec(1, 1)]);
  assert.deepEqual(set.picker.endpoints.map((e) => e.weight), [5, 1]);
  set.close();
});

test('an old picker keeps working after a membership change (immutable snapshots)', () => {
  const { set } = makeSet(specs([1, 1, 1]));
  const old = set.picker;
  const oldKeys = keys(old);
  set.update(specs([1]));
  assert.notEqual(set.picker, old);
  assert.deepEqual(keys(old), oldKeys);
  assert.equal(Object.isFrozen(old.endpoints), true);
  const counts = countPicks(() => old.pick(), 30);
  assert.deepEqual([...counts.keys()].sort(), [...oldKeys].sort());
  assert.deepEqual(keys(set.picker), [oldKeys[0]]);
});

test('zone labels stay on the endpoints; the locality hook can narrow the usable set', () => {
  const eps = [spec(0, 1, 'zone-a'), spec(1, 1, 'zone-b'), spec(2, 1, 'zone-a')];
  const { set } = makeSet(eps, {
    localZone: 'zone-a',
    locality: (usable, zone) => {
      const local = usable.filter((p) => p.endpoint.zone === zone);
      return local.length > 0 ? local : usable;
    },
  });
  assert.deepEqual(set.picker.endpoints.map((e) => e.zone), ['zone-a', 'zone-a']);
  const [a1, a2] = keys(set.picker) as [string, string];
  set.setHealth(a1, false);
  assert.deepEqual(keys(set.picker), [a2]);
  set.setHealth(a2, false); // no local endpoint left: this hook falls back to the other zones
  assert.deepEqual(set.picker.endpoints.map((e) => e.zone), ['zone-b']);
  set.close();
});

test('connect failures eject an endpoint; it returns when the fake clock passes the ejection time', () => {
  const { set, time } = makeSet(specs([1, 1, 1]));
  const [a, b, c] = keys(set.picker) as [string, string, string];
  for (let i = 0; i < 4; i++) assert.equal(set.reportConnectFailure(a)?.kind, 'counted');
  assert.equal(set.reportConnectFailure(a)?.kind, 'ejected');
  assert.deepEqual(keys(set.picker), [b, c]);
  const counts = countPicks(() => set.pick(), 20);
  assert.equal(counts.get(a), undefined);
  assert.equal(set.status().find((s) => s.key === a)?.ejected, true);
  time.advance(29_999);
  assert.deepEqual(keys(set.picker), [b, c]);
  time.advance(1); // the set's timer fires
  assert.deepEqual(keys(set.picker), [a, b, c]);
  assert.equal(set.status().find((s) => s.key === a)?.inRotation, true);
  set.close();
});

test('returns are also applied lazily by pick() when timers do not fire', () => {
  const time = new FakeTime();
  const inertTimers = { setTimeout: () => ({}), clearTimeout: () => {} };
  const set = new EndpointSet(specs([1, 1]), { balancer: 'round-robin', clock: time, timers: inertTimers, random: seededRandom(1) });
  const a = keys(set.picker)[0] as string;
  for (let i = 0; i < 5; i++) set.reportConnectFailure(a);
  assert.equal(keys(set.picker).includes(a), false);
  time.advance(30_000);
  const counts = countPicks(() => set.pick(), 4);
  assert.equal(counts.get(a), 2);
});

test('the max ejection share keeps endpoints in: two members, both failing -> one stays', () => {
  const { set } = makeSet(specs([1, 1]));
  const [a, b] = keys(set.picker) as [string, string];
  for (let i = 0; i < 5; i++) set.reportConnectFailure(a);
  const outcomes = Array.from({ length: 10 }, () => set.reportConnectFailure(b)?.kind);
  assert.ok(outcomes.every((k) => k === 'counted' || k === 'suppressed'));
  assert.deepEqual(keys(set.picker), [b]);
  assert.equal(keyOf(set.pick()), b);
  set.close();
});

test('a membership shrink under ejections returns the soonest-returning ejected endpoints', () => {
  const { set, time } = makeSet(specs([1, 1, 1, 1]));
  const [a, b, c] = keys(set.picker) as [string, string, string, string];
  for (let i = 0; i < 5; i++) set.reportConnectFailure(a);
  time.advance(1_000);
  for (let i = 0; i < 5; i++) set.reportConnectFailure(b);
  assert.equal(set.picker.endpoints.length, 2);
  // Keep a, b, c: 3 members allow 1 ejected; a (returning first) comes back, b stays out.
  set.update(specs([1, 1, 1]));
  assert.deepEqual(keys(set.picker), [a, c]);
  set.close();
});

test('no usable endpoint -> no-healthy-endpoint; exclusions of all usable -> all-excluded', () => {
  const { set } = makeSet(specs([1, 1]), { passiveHealth: { maxEjectionShare: 1 } });
  const [a, b] = keys(set.picker) as [string, string];
  assert.deepEqual(set.pick({ exclude: new Set([a, b]) }), { kind: 'none', reason: 'all-excluded' });
  for (let i = 0; i < 5; i++) { set.reportConnectFailure(a); set.reportConnectFailure(b); }
  assert.deepEqual(set.pick(), { kind: 'none', reason: 'no-healthy-endpoint' });
  set.close();
});

test('setHealth takes endpoints out and back; all unhealthy -> no-healthy-endpoint', () => {
  const { set } = makeSet(specs([1, 1]));
  const [a, b] = keys(set.picker) as [string, string];
  set.setHealth(a, false);
  assert.deepEqual(keys(set.picker), [b]);
  set.setHealth(b, false);
  assert.deepEqual(set.pick(), { kind: 'none', reason: 'no-healthy-endpoint' });
  set.setHealth(a, true);
  assert.deepEqual(keys(set.picker), [a]);
  set.setHealth('10.9.9.9:1', false);
  set.close();
});

test('the connect-retry loop: pick, fail, report, exclude, pick again — each attempt a new endpoint', () => {
  const { set } = makeSet(specs([1, 1, 1]), { balancer: 'ring-hash' });
  const tried = new Set<string>();
  const attempts: string[] = [];
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = set.pick({ sourceAddress: '172.16.1.2', exclude: tried });
    if (r.kind === 'none') {
      assert.equal(r.reason, 'all-excluded');
      break;
    }
    const release = set.acquire(r.endpoint.key);
    release(); // the connect failed
    set.reportConnectFailure(r.endpoint.key);
    tried.add(r.endpoint.key);
    attempts.push(r.endpoint.key);
  }
  assert.equal(attempts.length, 3);
  assert.equal(new Set(attempts).size, 3);
  set.close();
});

test('acquire/release drive least-connections; release is idempotent; removed endpoints give a no-op', () => {
  const { set } = makeSet(specs([1, 1]), { balancer: 'least-connections' });
  const [a, b] = keys(set.picker) as [string, string];
  const r1 = set.acquire(a);
  assert.equal(keyOf(set.pick()), b);
  const r2 = set.acquire(b);
  const r3 = set.acquire(b);
  assert.equal(keyOf(set.pick()), a);
  r2();
  r2();
  assert.deepEqual(set.status().map((s) => s.activeConnections), [1, 1]);
  r3();
  assert.equal(keyOf(set.pick()), b);
  r1();
  assert.deepEqual(set.status().map((s) => s.activeConnections), [0, 0]);
  set.acquire('10.9.9.9:1')();
  set.close();
});

test('load survives a weight change (same key, new picker)', () => {
  const { set } = makeSet(specs([1, 1]), { balancer: 'least-connections' });
  const [a, b] = keys(set.picker) as [string, string];
  set.acquire(a);
  set.acquire(a);
  set.update(specs([1, 3]));
  assert.deepEqual(set.picker.endpoints.map((e) => e.weight), [1, 3]);
  assert.equal(set.status().find((s) => s.key === a)?.activeConnections, 2);
  assert.equal(keyOf(set.pick()), b);
  set.close();
});

test('passive health can be turned off', () => {
  const { set } = makeSet(specs([1, 1]), { passiveHealth: false });
  const a = keys(set.picker)[0] as string;
  for (let i = 0; i < 50; i++) assert.equal(set.reportConnectFailure(a), undefined);
  assert.equal(set.picker.endpoints.length, 2);
  set.close();
});

test('active health checks (injected probe) take a failing endpoint out and bring it back', async () => {
  const down = new Set<string>();
  const { set, time } = makeSet(specs([1, 1]), {
    activeHealth: { probe: (e) => Promise.resolve(!down.has(e.key)), intervalMs: 5_000, jitter: 0 },
  });
  const [a, b] = keys(set.picker) as [string, string];
  down.add(a);
  const step = async (): Promise<void> => { time.advance(5_000); await flushMicrotasks(); };
  time.advance(0);
  await flushMicrotasks();
  await step();
  assert.deepEqual(keys(set.picker), [a, b]);
  await step(); // third failure
  assert.deepEqual(keys(set.picker), [b]);
  assert.equal(set.status().find((s) => s.key === a)?.healthy, false);
  down.delete(a);
  await step();
  await step();
  assert.deepEqual(keys(set.picker), [a, b]);
  set.close();
  assert.equal(time.pending, 0);
});

test('a custom picker builder can be plugged in', () => {
  const { set } = makeSet(specs([1, 1]), {
    balancer: (endpoints) => ({
      endpoints: endpoints.map((p) => p.endpoint),
      pick: () => ({ kind: 'endpoint', endpoint: (endpoints[1] ?? endpoints[0])!.endpoint }),
    }),
  });
  assert.equal(keyOf(set.pick()), keys(set.picker)[1]);
  set.close();
});

test('close() clears the ejection timer and the last picker keeps working', () => {
  const { set, time } = makeSet(specs([1, 1]));
  const a = keys(set.picker)[0] as string;
  for (let i = 0; i < 5; i++) set.reportConnectFailure(a);
  assert.equal(time.pending, 1);
  set.close();
  assert.equal(time.pending, 0);
  assert.equal(set.pick().kind, 'endpoint');
  set.update(specs([1, 1, 1]));
  assert.equal(set.picker.endpoints.length, 1);
});
