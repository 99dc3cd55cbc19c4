import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassiveHealth } from '../../../src/upstream/health/passive-health.js';
import { FakeTime } from './helpers.js';

const fail = (ph: PassiveHealth, key: string, times: number, members = 10): string[] =>
  Array.from({ length: times }, () => ph.recordFailure(key, members).kind);

test('5 consecutive connect failures eject; 4 do not; a success resets the run', () => {
  const time = new FakeTime();
  const ph = new PassiveHealth({}, time);
  assert.deepEqual(fail(ph, 'a', 4), ['counted', 'counted', 'counted', 'counted']);
  ph.recordSuccess('a');
  assert.deepEqual(fail(ph, 'a', 4), ['counted', 'counted', 'counted', 'counted']);
  assert.equal(ph.isEjected('a'), false);
  const out = ph.recordFailure('a', 10);
  assert.deepEqual(out, { kind: 'ejected', until: time.now() + 30_000, durationMs: 30_000, level: 1 });
  assert.equal(ph.isEjected('a'), true);
  assert.equal(ph.recordFailure('a', 10).kind, 'already-ejected');
});

test('an ejected endpoint returns when its time is up', () => {
  const time = new FakeTime();
  const ph = new PassiveHealth({}, time);
  fail(ph, 'a', 5);
  assert.equal(ph.nextReturnAt(), time.now() + 30_000);
  time.advance(29_999);
  assert.equal(ph.isEjected('a'), true);
  assert.deepEqual(ph.sweep(), []);
  time.advance(1);
  assert.equal(ph.isEjected('a'), false);
  assert.deepEqual(ph.sweep(), ['a']);
  assert.equal(ph.nextReturnAt(), Infinity);
  assert.equal(ph.status('a').onProbation, true);
});

test('ejection time doubles per ejection (base * 2^(n-1)) up to the cap; probation re-ejects at once', () => {
  const time = new FakeTime();
  const ph = new PassiveHealth({ baseEjectionMs: 10_000, maxEjectionMs: 50_000 }, time);
  const durations: number[] = [];
  let out = fail(ph, 'a', 5).at(-1);
  assert.equal(out, 'ejected');
  for (let i = 0; i < 5; i++) {
    const s = ph.status('a');
    durations.push((s.ejectedUntil as number) - time.now());
    time.advance((s.ejectedUntil as number) - time.now());
    ph.sweep();
    // On probation: the first failure ejects again, no new run of 5 needed.
    out = ph.recordFailure('a', 10).kind;
    assert.equal(out, 'ejected');
  }
  assert.deepEqual(durations, [10_000, 20_000, 40_000, 50_000, 50_000]);
  assert.equal(ph.status('a').totalEjections, 6);
});

test('a success on probation clears it: the next failure starts a new run', () => {
  const time = new FakeTime();
  const ph = new PassiveHealth({}, time);
  fail(ph, 'a', 5);
  time.advance(30_000);
  ph.sweep();
  ph.recordSuccess('a');
  assert.equal(ph.status('a').onProbation, false);
  assert.deepEqual(fail(ph, 'a', 4), ['counted', 'counted', 'counted', 'counted']);
});

test('probation can be turned off', () => {
  const time = new FakeTime();
  const ph = new PassiveHealth({ probation: false }, time);
  fail(ph, 'a', 5);
  time.advance(30_000);
  assert.equal(ph.recordFailure('a', 10).kind, 'counted');
});

test('levels are forgiven after time spent un-ejected', () => {
  const time = new FakeTime();
  const ph = new PassiveHealth({ baseEjectionMs: 10_000, maxEjectionMs: 1_000_000 }, time);
  fail(ph, 'a', 5); // level 1: 10 s
  time.advance(10_000);
  ph.recordFailure('a', 10); // probation failure -> level 2: 20 s
  assert.equal(ph.status('a').level, 2);
  time.advance(20_000);
  ph.recordSuccess('a');
  time.advance(20_000); // two decay periods healthy -> both levels forgiven
  const out = fail(ph, 'a', 5).at(-1);
  assert.equal(out, 'ejected');
  assert.equal(ph.status('a').level, 1);
  assert.equal((ph.status('a').ejectedUntil as number) - time.now(), 10_000);
});

test('max ejection share: 50% of 4 members -> 2; the third is suppressed until one returns', () => {
  const time = new FakeTime();
  const ph = new PassiveHealth({}, time);
  assert.equal(fail(ph, 'a', 5, 4).at(-1), 'ejected');
  time.advance(1_000);
  assert.equal(fail(ph, 'b', 5, 4).at(-1), 'ejected');
  assert.equal(fail(ph, 'c', 5, 4).at(-1), 'suppressed');
  assert.equal(ph.isEjected('c'), false);
  assert.equal(ph.recordFailure('c', 4).kind, 'suppressed');
  time.advance(29_000); // a returns
  assert.equal(ph.recordFailure('c', 4).kind, 'ejected');
  assert.deepEqual(ph.ejectedKeys(), ['b', 'c']);
});

test('max ejection share bounds: at least one stays in, at least one may be ejected', () => {
  const ph = new PassiveHealth({}, new FakeTime());
  assert.deepEqual([0, 1, 2, 3, 4, 5, 10].map((n) => ph.maxEjected(n)), [0, 0, 1, 1, 2, 2, 5]);
  const tenPercent = new PassiveHealth({ maxEjectionShare: 0.1 }, new FakeTime());
  assert.deepEqual([1, 2, 5, 20].map((n) => tenPercent.maxEjected(n)), [0, 1, 1, 2]);
  const all = new PassiveHealth({ maxEjectionShare: 1 }, new FakeTime());
  assert.deepEqual([1, 3].map((n) => all.maxEjected(n)), [1, 3]);
  const none = new PassiveHealth({ maxEjectionShare: 0 }, new FakeTime());
  assert.equal(none.maxEjected(10), 0);
  // A single endpoint is never ejected with the default share.
  assert.deepEqual(fail(ph, 'only', 7, 1).slice(4), ['suppressed', 'suppressed', 'suppressed']);
});

test('consecutiveFailures 0 disables ejection', () => {
  const ph = new PassiveHealth({ consecutiveFailures: 0 }, new FakeTime());
  assert.equal(ph.enabled, false);
  assert.ok(fail(ph, 'a', 20).every((k) => k === 'counted'));
});

test('release ends an ejection early; retain forgets non-members', () => {
  const time = new FakeTime();
  const ph = new PassiveHealth({}, time);
  fail(ph, 'a', 5);
  fail(ph, 'b', 5);
  ph.release('a');
  assert.equal(ph.isEjected('a'), false);
  assert.equal(ph.status('a').onProbation, true);
  ph.retain(new Set(['a']));
  assert.equal(ph.status('b').ejected, false);
  assert.equal(ph.status('b').totalEjections, 0);
  assert.equal(ph.nextReturnAt(), Infinity);
});
