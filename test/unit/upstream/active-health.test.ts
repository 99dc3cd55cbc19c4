import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ActiveHealthChecker, type HealthProbe } from '../../../src/upstream/health/active-health.js';
import { toUpstreamEndpoint, type UpstreamEndpoint } from '../../../src/upstream/picker.js';
import { FakeTime, flushMicrotasks, seededRandom, spec } from './helpers.js';

const A = toUpstreamEndpoint(spec(0));
const B = toUpstreamEndpoint(spec(1));

/** A probe whose answer per endpoint the test sets; records every call. */
function scriptedProbe(): { probe: HealthProbe; up: Map<string, boolean>; calls: string[] } {
  const up = new Map<string, boolean>();
  const calls: string[] = [];
  const probe: HealthProbe = (e: UpstreamEndpoint) => {
    calls.push(e.key);
    return Promise.resolve(up.get(e.key) ?? true);
  };
  return { probe, up, calls };
}

test('3 failures mark unhealthy, 2 successes bring it back (checkNow, no timers)', async () => {
  const { probe, up } = scriptedProbe();
  const changes: [string, boolean][] = [];
  const checker = new ActiveHealthChecker({
    probe, timers: new FakeTime(), random: seededRandom(1), onChange: (k, h) => changes.push([k, h]),
  });
  checker.setEndpoints([A, B]);
  assert.equal(checker.isHealthy(A.key), true);
  up.set(A.key, false);
  assert.equal(await checker.checkNow(A.key), true);
  assert.equal(await checker.checkNow(A.key), true);
  assert.equal(await checker.checkNow(A.key), false);
  assert.deepEqual(changes, [[A.key, false]]);
  up.set(A.key, true);
  assert.equal(await checker.checkNow(A.key), false);
  assert.equal(await checker.checkNow(A.key), true);
  assert.deepEqual(changes, [[A.key, false], [A.key, true]]);
  assert.equal(checker.isHealthy(B.key), true);
  assert.equal(await checker.checkNow('nope'), undefined);
  checker.close();
});

test('a failure in between restarts the count', async () => {
  const { probe, up } = scriptedProbe();
  const checker = new ActiveHealthChecker({ probe, timers: new FakeTime(), unhealthyThreshold: 2 });
  checker.setEndpoints([A]);
  up.set(A.key, false);
  await checker.checkNow(A.key);
  up.set(A.key, true);
  await checker.checkNow(A.key);
  up.set(A.key, false);
  await checker.checkNow(A.key);
  assert.equal(checker.isHealthy(A.key), true);
  await checker.checkNow(A.key);
  assert.equal(checker.isHealthy(A.key), false);
  checker.close();
});

test('probes run every interval (first one within the jitter window)', async () => {
  const time = new FakeTime();
  const { probe, calls } = scriptedProbe();
  const checker = new ActiveHealthChecker({ probe, timers: time, random: seededRandom(2), intervalMs: 10_000, jitter: 0 });
  checker.setEndpoints([A]);
  for (let i = 0; i < 4; i++) {
    time.advance(i === 0 ? 0 : 10_000);
    await flushMicrotasks();
  }
  assert.equal(calls.length, 4);
  checker.close();
  time.advance(100_000);
  await flushMicrotasks();
  assert.equal(calls.length, 4);
  assert.equal(time.pending, 0);
});

test('jitter spreads the intervals within +/- the fraction', async () => {
  const time = new FakeTime();
  const stamps: number[] = [];
  const checker = new ActiveHealthChecker({
    probe: () => { stamps.push(time.now()); return Promise.resolve(true); },
    timers: time, random: seededRandom(3), intervalMs: 10_000, jitter: 0.2,
  });
  checker.setEndpoints([A]);
  for (let i = 0; i < 300; i++) {
    time.advance(500);
    await flushMicrotasks();
  }
  checker.close();
  assert.ok(stamps.length >= 12, String(stamps.length));
  assert.ok((stamps[0] as number) - 1_000 <= 2_000 + 500, 'first probe within the jitter window');
  const gaps = stamps.slice(1).map((t, i) => t - (stamps[i] as number));
  assert.ok(gaps.every((g) => g >= 8_000 - 500 && g <= 12_000 + 500), gaps.join(','));
  assert.ok(new Set(gaps).size > 1, 'gaps vary');
});

test('a probe that hangs past the timeout, throws, or rejects counts as a failure', async () => {
  const time = new FakeTime();
  const errors: string[] = [];
  let mode: 'hang' | 'throw' | 'reject' = 'hang';
  let aborted = 0;
  const probe: HealthProbe = (_e, signal) => {
    if (mode === 'throw') throw new Error('sync boom');
    if (mode === 'reject') return Promise.reject(new Error('async boom'));
    return new Promise<boolean>(() => { signal.addEventListener('abort', () => { aborted++; }); });
  };
  const checker = new ActiveHealthChecker({
    probe, timers: time, timeoutMs: 1_000, unhealthyThreshold: 3,
    onError: (_k, err) => errors.push((err as Error).message),
  });
  checker.setEndpoints([A]);
  const hung = checker.checkNow(A.key);
  time.advance(1_000);
  await hung;
  assert.equal(aborted, 1);
  mode = 'throw';
  await checker.checkNow(A.key);
  mode = 'reject';
  await checker.checkNow(A.key);
  assert.equal(checker.isHealthy(A.key), false);
  assert.deepEqual(errors, ['sync boom', 'async boom']);
  checker.close();
});

test('removing an endpoint stops its probes and aborts the one in flight; its result is ignored', async () => {
  const time = new FakeTime();
  let release: ((ok: boolean) => void) | undefined;
  let aborted = false;
  const changes: string[] = [];
  const checker = new ActiveHealthChecker({
    probe: (_e, signal) => new Promise<boolean>((resolve) => {
      release = resolve;
      signal.addEventListener('abort', () => { aborted = true; });
    }),
    timers: time, unhealthyThreshold: 1, onChange: (k) => changes.push(k),
  });
  checker.setEndpoints([A]);
  const inflight = checker.checkNow(A.key);
  checker.setEndpoints([B]);
  assert.equal(aborted, true);
  release?.(false);
  await inflight;
  assert.deepEqual(changes, []);
  assert.equal(checker.isHealthy(A.key), undefined);
  assert.equal(checker.isHealthy(B.key), true);
  checker.close();
});

test('endpoints can start unhealthy until their first probes pass', async () => {
  const { probe } = scriptedProbe();
  const checker = new ActiveHealthChecker({ probe, timers: new FakeTime(), initialHealthy: false, healthyThreshold: 1 });
  checker.setEndpoints([A]);
  assert.equal(checker.isHealthy(A.key), false);
  await checker.checkNow(A.key);
  assert.equal(checker.isHealthy(A.key), true);
  checker.close();
});

test('an onChange that throws is reported through onError and probing goes on', async () => {
  const time = new FakeTime();
  const errors: unknown[] = [];
  let calls = 0;
  const checker = new ActiveHealthChecker({
    probe: () => { calls++; return Promise.resolve(false); },
    timers: time, intervalMs: 1_000, jitter: 0, unhealthyThreshold: 1,
    onChange: () => { throw new Error('listener bug'); },
    onError: (_k, err) => errors.push(err),
  });
  checker.setEndpoints([A]);
  for (let i = 0; i < 3; i++) {
    time.advance(i === 0 ? 0 : 1_000);
    await flushMicrotasks();
  }
  assert.equal(calls, 3);
  assert.equal(errors.length, 1);
  assert.equal(checker.isHealthy(A.key), false);
  checker.close();
});
