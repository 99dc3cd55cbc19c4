import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  EndpointLoadTracker, HashRing, RingHashBalancer, RoundRobinBalancer, createRequestBalancer, requestHashKey,
  type RequestCandidate,
} from '../../../src/l7/request-balancer.js';
import { FakeClock, head, seededRandom } from './helpers.js';

const C = (...keys: string[]): RequestCandidate[] => keys.map((key) => ({ key, weight: 1 }));

function countPicks(pick: () => RequestCandidate | undefined, n: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const k = pick()?.key ?? 'none';
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

test('least-request (P2C) prefers the less loaded endpoint and never picks the busiest of three', () => {
  const clock = new FakeClock();
  const load = new EndpointLoadTracker(clock);
  const b = createRequestBalancer('least-request', { load, random: seededRandom(1) });
  const cs = C('a', 'b', 'c');
  for (let i = 0; i < 10; i++) load.start('a');
  load.start('b');
  const counts = countPicks(() => b.pick(cs), 1000);
  assert.equal(counts.get('a') ?? 0, 0, 'the busiest of three never wins a pair');
  assert.ok((counts.get('c') ?? 0) > (counts.get('b') ?? 0), `idle c beats b (1 active): ${JSON.stringify([...counts])}`);
  const two = countPicks(() => b.pick(C('a', 'b')), 100);
  assert.deepEqual([...two], [['b', 100]]);
  assert.equal(b.pick([]), undefined);
  assert.equal(b.pick(C('z'))?.key, 'z');
});

test('least-request honours weights (slow-start factors) and exclusions', () => {
  const load = new EndpointLoadTracker(new FakeClock());
  const b = createRequestBalancer('least-request', { load, random: seededRandom(2) });
  const cs: RequestCandidate[] = [{ key: 'new', weight: 0.1 }, { key: 'x', weight: 1 }, { key: 'y', weight: 1 }];
  const counts = countPicks(() => b.pick(cs), 3000);
  assert.ok((counts.get('new') ?? 0) < 300, `a 10 % weight endpoint gets a small share (${counts.get('new')})`);
  const excl = countPicks(() => b.pick(C('a', 'b', 'c'), { exclude: new Set(['a', 'b']) }), 50);
  assert.deepEqual([...excl], [['c', 50]]);
  assert.equal(b.pick(C('a'), { exclude: new Set(['a']) })?.key, 'a', 'excluding everything falls back to all');
});

test('peak EWMA prefers the faster endpoint, penalises load and failures, and recovers a slow endpoint over time', () => {
  const clock = new FakeClock();
  const load = new EndpointLoadTracker(clock, { decayMs: 10_000, defaultRttMs: 30 });
  const b = createRequestBalancer('peak-ewma', { load, random: seededRandom(3) });
  const cs = C('fast', 'slow');
  const observe = (key: string, ms: number): void => {
    load.start(key);
    load.finish(key, { kind: 'response', status: 200, latencyMs: ms });
  };
  assert.equal(load.rtt('never'), 30, 'unobserved endpoints start at the default RTT');
  observe('fast', 10);
  observe('slow', 100);
  assert.equal(load.rtt('slow'), 100, 'peak: a slower observation is taken at once');
  assert.deepEqual([...countPicks(() => b.pick(cs), 50)], [['fast', 50]]);

  for (let i = 0; i < 10; i++) load.start('fast');
  assert.equal(load.cost('fast'), 10 * 11);
  assert.deepEqual([...countPicks(() => b.pick(cs), 20)], [['slow', 20]], 'cost = rtt x (active + 1)');
  for (let i = 0; i < 10; i++) load.finish('fast', { kind: 'response', status: 200, latencyMs: 10 });

  // 'slow' gets no traffic and therefore no observations; its estimate decays with time while 'fast' keeps
  // reporting 10 ms, so 'slow' is tried again within a bounded time.
  let recoveredAt = -1;
  for (let s = 1; s <= 60 && recoveredAt < 0; s++) {
    clock.advance(1000);
    observe('fast', 10);
    if (b.pick(cs)?.key === 'slow') recoveredAt = s;
  }
  assert.ok(recoveredAt > 0 && recoveredAt <= 30, `slow endpoint probed again after ${recoveredAt} s`);
  // Fast observations now pull its estimate down.
  for (let i = 0; i < 5; i++) {
    clock.advance(1000);
    observe('slow', 5);
  }
  assert.ok(load.rtt('slow') < load.rtt('fast') + 5, `slow recovered: ${load.rtt('slow')} vs ${load.rtt('fast')}`);

  load.start('fast');
  load.finish('fast', { kind: 'connect-failure' }, 1);
  assert.equal(load.rtt('fast'), 1000, 'a failure counts as the failure penalty');
  load.start('fast');
  load.finish('fast', { kind: 'response', status: 503, latencyMs: 2 });
  assert.ok(load.rtt('fast') >= 999);
});

test('load tracker: active counts never go negative; retain keeps endpoints with requests in flight', () => {
  const load = new EndpointLoadTracker(new FakeClock());
  load.finish('a', { kind: 'timeout' });
  assert.equal(load.active('a'), 0);
  load.start('b');
  load.retain([]);
  assert.equal(load.active('b'), 1);
  assert.equal(load.rtt('a'), 30, 'a was forgotten');
});

test('round robin: smooth weighted interleaving, deterministic', () => {
  const rr = new RoundRobinBalancer();
  const seq = Array.from({ length: 6 }, () => rr.pick(C('a', 'b', 'c'))?.key).join('');
  assert.equal(seq, 'abcabc');
  const w = new RoundRobinBalancer();
  const cs: RequestCandidate[] = [{ key: 'a', weight: 3 }, { key: 'b', weight: 1 }];
  const seq2 = Array.from({ length: 8 }, () => w.pick(cs)?.key).join('');
  assert.equal(seq2, 'aabaaaba');
  assert.equal(w.pick(cs, { exclude: new Set(['a']) })?.key, 'b');
});

test('consistent hash: the same header/cookie/source value always lands on the same endpoint', () => {
  const b = createRequestBalancer('ring-hash', { load: new EndpointLoadTracker(new FakeClock()), random: seededRandom(4) });
  const cs = C('10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80', '10.0.0.4:80');
  const byHeader = head({ headers: [['X-User', 'alice']] });
  const byCookie = head({ headers: [['cookie', 'theme=dark; session="s-123"'], ['cookie', 'other=1']] });
  const bySource = head({ sourceAddress: '10.1.2.3' });
  const hk = requestHashKey({ kind: 'header', name: 'x-user' }, byHeader);
  const ck = requestHashKey({ kind: 'cookie', name: 'session' }, byCookie);
  const sk = requestHashKey({ kind: 'source' }, bySource);
  assert.deepEqual([hk, ck, sk], ['alice', 's-123', '10.1.2.3']);
  assert.equal(requestHashKey({ kind: 'cookie', name: 'missing' }, byCookie), undefined);
  assert.equal(requestHashKey({ kind: 'header', name: 'x-user' }, head()), undefined);
  assert.equal(requestHashKey(undefined, byHeader), undefined);
  for (const key of [hk, ck, sk]) {
    const first = b.pick(cs, { hashKey: key })?.key;
    for (let i = 0; i < 20; i++) assert.equal(b.pick([...cs], { hashKey: key })?.key, first, `stable for ${key}`);
    const other = new RingHashBalancer(() => 0.5);
    assert.equal(other.pick(cs, { hashKey: key })?.key, first, 'same answer in another instance (another sidecar)');
  }
});

test('consistent hash: removing an endpoint moves only its keys; keys spread evenly; exclusions walk the ring', () => {
  const five = C('e1', 'e2', 'e3', 'e4', 'e5');
  const ring5 = new HashRing(five);
  const ring4 = new HashRing(five.filter((c) => c.key !== 'e3'));
  const share = new Map<string, number>();
  let moved = 0;
  for (let i = 0; i < 2000; i++) {
    const k = `user-${i}`;
    const before = ring5.lookup(k)?.key ?? '';
    const after = ring4.lookup(k)?.key ?? '';
    share.set(before, (share.get(before) ?? 0) + 1);
    if (before !== 'e3') assert.equal(after, before, `${k} stays on ${before}`);
    else moved++;
  }
  for (const [k, n] of share) assert.ok(n > 200 && n < 600, `${k} holds ${n} of 2000 keys`);
  assert.equal(moved, share.get('e3'));
  const owner = ring5.lookup('user-1')?.key ?? '';
  const next = ring5.lookup('user-1', new Set([owner]))?.key;
  assert.ok(next !== undefined && next !== owner);
  assert.equal(ring5.lookup('user-1', new Set(five.map((c) => c.key)))?.key, owner, 'all excluded: the owner');
});

test('consistent hash without a key spreads at random; the ring is rebuilt only when the set changes', () => {
  const b = new RingHashBalancer(seededRandom(5));
  const cs = C('a', 'b', 'c');
  const counts = countPicks(() => b.pick(cs), 300);
  for (const k of ['a', 'b', 'c']) assert.ok((counts.get(k) ?? 0) > 50, `${k}: ${counts.get(k)}`);
  const r1 = b.ring(cs);
  assert.equal(b.ring([...cs]), r1, 'an equal set reuses the ring');
  assert.notEqual(b.ring(C('a', 'b')), r1);
  assert.notEqual(b.ring([{ key: 'a', weight: 2 }, { key: 'b', weight: 1 }]), b.ring(C('a', 'b')), 'weights are part of the set');
});
