// The one passive-health machine of a cluster: connect failures, request outcomes, probation, slow start, the
// max-ejected share, membership changes. Pure over an injected clock (FakeTime starts at 1000).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttemptOutcome } from '../../../src/upstream/health/attempt-outcome.js';
import { EJECTION_REASONS, OutlierDetector, type HealthConfig } from '../../../src/upstream/health/outlier-detector.js';
import { DEFAULT_OUTLIER_CONFIG, DEFAULT_SUCCESS_RATE } from '../../../src/config/traffic-policy-spec.js';
import { FakeTime } from './helpers.js';

const ok: AttemptOutcome = { kind: 'response', status: 200, latencyMs: 5 };
const e503: AttemptOutcome = { kind: 'response', status: 503, latencyMs: 5 };
const e500: AttemptOutcome = { kind: 'response', status: 500, latencyMs: 5 };
const EPS = ['a', 'b', 'c', 'd'];

function detector(over: Partial<HealthConfig> = {}, endpoints = EPS): { d: OutlierDetector; time: FakeTime } {
  const time = new FakeTime();
  const d = new OutlierDetector({ ...DEFAULT_OUTLIER_CONFIG, consecutiveConnectFailures: 5, ...over }, time);
  assert.deepEqual(d.setEndpoints(endpoints), []);
  return { d, time };
}

/** Records `n` outcomes; returns the last event any of them caused. */
function outcomes(d: OutlierDetector, key: string, outcome: AttemptOutcome, n: number) {
  let ev;
  for (let i = 0; i < n; i++) ev = d.recordOutcome(key, outcome) ?? ev;
  return ev;
}

/** Records `n` failed connects; returns the last event any of them caused. */
function connectFailures(d: OutlierDetector, key: string, n: number) {
  let ev;
  for (let i = 0; i < n; i++) ev = d.recordConnect(key, false) ?? ev;
  return ev;
}

test('defaults: gateway errors 5, 5xx and success rate off, 10 s / 30 s / 300 s, 50 %, slow start 30 s, probation', () => {
  assert.equal(DEFAULT_OUTLIER_CONFIG.consecutiveGatewayErrors, 5);
  assert.equal(DEFAULT_OUTLIER_CONFIG.consecutive5xx, 0);
  assert.equal(DEFAULT_OUTLIER_CONFIG.successRate, undefined);
  assert.equal(DEFAULT_OUTLIER_CONFIG.intervalMs, 10_000);
  assert.equal(DEFAULT_OUTLIER_CONFIG.baseEjectionMs, 30_000);
  assert.equal(DEFAULT_OUTLIER_CONFIG.maxEjectionMs, 300_000);
  assert.equal(DEFAULT_OUTLIER_CONFIG.maxEjectedPercent, 50);
  assert.equal(DEFAULT_OUTLIER_CONFIG.slowStartMs, 30_000);
  assert.equal(DEFAULT_OUTLIER_CONFIG.slowStartMinWeightPercent, 10);
  assert.equal(DEFAULT_OUTLIER_CONFIG.probation, true);
  const { d } = detector();
  assert.deepEqual(d.stats(), {
    endpoints: 4, ejected: 0, ejections: Object.fromEntries(EJECTION_REASONS.map((r) => [r, 0])), ejectionsRefused: 0,
  });
});

test('consecutive gateway errors (502/503/504, reset, timeout, gRPC UNAVAILABLE / DEADLINE_EXCEEDED) eject at the Nth', () => {
  const { d, time } = detector();
  const failures: AttemptOutcome[] = [
    { kind: 'response', status: 502, latencyMs: 1 }, { kind: 'reset', bytesSent: true }, { kind: 'timeout' },
    { kind: 'response', status: 200, grpcStatus: 4, latencyMs: 1 },
  ];
  for (const f of failures) assert.equal(d.recordOutcome('a', f), undefined);
  assert.equal(d.recordOutcome('a', { kind: 'connect-failure' }), undefined, 'connect failures are recordConnect\'s');
  assert.equal(d.state('a')?.consecutiveGatewayErrors, 4, 'a connect-failure outcome is not counted');
  assert.equal(d.isEjected('a'), false);
  const ev = d.recordOutcome('a', { kind: 'response', status: 200, grpcStatus: 14, latencyMs: 1 });
  assert.deepEqual(ev, {
    kind: 'ejected', endpoint: 'a', reason: 'consecutive-gateway-error', untilMs: 31_000, durationMs: 30_000, ejectionCount: 1,
  });
  assert.equal(d.isEjected('a'), true);
  assert.equal(d.weightFactor('a'), 0);
  assert.deepEqual(d.ejected(), ['a']);
  assert.equal(d.state('a')?.ejectedUntilMs, 31_000);
  assert.equal(outcomes(d, 'a', e503, 10), undefined, 'outcomes while ejected are ignored');
  assert.equal(connectFailures(d, 'a', 10), undefined, 'connect results while ejected are ignored');
  assert.equal(d.state('a')?.consecutiveGatewayErrors, 0);
  time.advance(29_999);
  assert.equal(d.isEjected('a'), true);
  assert.deepEqual(d.tick(), []);
  time.advance(1);
  assert.equal(d.isEjected('a'), false, 'back after the base ejection time, without any tick');
  assert.deepEqual(d.tick(), [{ kind: 'returned', endpoint: 'a' }]);
  assert.deepEqual(d.tick(), [], 'returned is reported once');
  assert.equal(d.stats().ejections['consecutive-gateway-error'], 1);
  assert.equal(d.recordOutcome('zz', e503), undefined, 'an unknown endpoint is ignored');
});

test('a success resets the counters; a non-gateway 5xx resets the gateway counter only', () => {
  const { d } = detector();
  outcomes(d, 'a', e503, 4);
  d.recordOutcome('a', ok);
  outcomes(d, 'a', e503, 4);
  d.recordOutcome('a', e500);
  outcomes(d, 'a', e503, 4);
  assert.equal(d.isEjected('a'), false);
  assert.equal(d.state('a')?.consecutiveGatewayErrors, 4);
  assert.equal(d.state('a')?.consecutive5xx, 9, 'the 5xx streak is restarted by the success only');
  assert.equal(d.recordOutcome('a', e503)?.kind, 'ejected');
});

test('consecutive 5xx (opt-in) ejects on any 5xx; 4xx and gRPC NOT_FOUND are successes', () => {
  const { d } = detector({ consecutive5xx: 3, consecutiveGatewayErrors: 0 });
  d.recordOutcome('b', e500);
  d.recordOutcome('b', { kind: 'response', status: 404, latencyMs: 1 });
  d.recordOutcome('b', { kind: 'response', status: 200, grpcStatus: 5, latencyMs: 1 });
  d.recordOutcome('b', e500);
  assert.equal(d.recordOutcome('b', { kind: 'response', status: 200, grpcStatus: 13, latencyMs: 1 }), undefined); // INTERNAL: a 5xx
  const ev = d.recordOutcome('b', e503);
  assert.equal(ev?.kind === 'ejected' ? ev.reason : undefined, 'consecutive-5xx');
  const { d: off } = detector({ consecutive5xx: 0, consecutiveGatewayErrors: 0 });
  assert.equal(outcomes(off, 'a', e503, 50), undefined);
  assert.equal(off.isEjected('a'), false, 'both request detectors off: nothing ejects');
});

test('consecutive connect failures eject at the Nth; a success (connect or request) resets the run; 0 turns it off', () => {
  const { d, time } = detector();
  assert.equal(connectFailures(d, 'a', 4), undefined);
  assert.equal(d.state('a')?.consecutiveConnectFailures, 4);
  d.recordConnect('a', true);
  assert.equal(d.state('a')?.consecutiveConnectFailures, 0);
  assert.equal(connectFailures(d, 'a', 4), undefined);
  d.recordOutcome('a', ok);
  assert.equal(d.state('a')?.consecutiveConnectFailures, 0, 'a successful request proves the endpoint reachable');
  assert.equal(connectFailures(d, 'a', 4), undefined);
  outcomes(d, 'a', e503, 3);
  assert.equal(d.state('a')?.consecutiveConnectFailures, 4, 'request failures do not touch the connect run');
  const ev = d.recordConnect('a', false);
  assert.deepEqual(ev, {
    kind: 'ejected', endpoint: 'a', reason: 'consecutive-connect-failure', untilMs: time.now() + 30_000, durationMs: 30_000, ejectionCount: 1,
  });
  assert.equal(d.state('a')?.consecutiveConnectFailures, 0, 'the run restarts with the ejection');
  assert.equal(d.state('a')?.consecutiveGatewayErrors, 0);
  assert.equal(d.stats().ejections['consecutive-connect-failure'], 1);
  assert.equal(d.recordConnect('zz', false), undefined, 'an unknown endpoint is ignored');

  const { d: off } = detector({ consecutiveConnectFailures: 0 });
  assert.equal(connectFailures(off, 'a', 50), undefined);
  assert.equal(off.isEjected('a'), false);
  assert.equal(off.state('a')?.consecutiveConnectFailures, 50, 'still counted (for /stats)');
});

test('ejection time grows linearly (base x count) up to the cap; probation re-ejects at the first failure', () => {
  const { d, time } = detector({ baseEjectionMs: 30_000, maxEjectionMs: 70_000 });
  const first = outcomes(d, 'a', e503, 5);
  assert.equal(first?.kind === 'ejected' ? first.durationMs : -1, 30_000);
  time.advance(30_000);
  assert.equal(d.state('a')?.onProbation, true);
  const again = d.recordOutcome('a', e503); // first outcome after the return: probation
  assert.ok(again?.kind === 'ejected' && again.reason === 'probation-failure');
  assert.equal(again.durationMs, 60_000);
  assert.equal(again.untilMs - time.now(), 60_000);
  assert.equal(again.ejectionCount, 2);
  time.advance(60_000);
  const third = d.recordConnect('a', false); // a connect failure on probation ejects at once too
  assert.ok(third?.kind === 'ejected' && third.reason === 'probation-failure');
  assert.equal(third.durationMs, 70_000, 'capped at maxEjectionMs');
  assert.equal(third.ejectionCount, 3);
  time.advance(70_000);
  assert.equal(d.recordOutcome('a', ok), undefined, 'a success ends probation');
  assert.equal(d.state('a')?.onProbation, false);
  assert.equal(outcomes(d, 'a', e503, 4), undefined, 'after probation: N failures again');
  assert.equal(d.stats().ejections['probation-failure'], 2);
  assert.equal(d.state('a')?.totalEjections, 3);

  // Envoy's linear growth (the old L4 machine doubled: 10, 20, 40, 50, 50, 50 s).
  const { d: series, time: t1 } = detector({ baseEjectionMs: 10_000, maxEjectionMs: 50_000 });
  const durations: number[] = [];
  let ev = connectFailures(series, 'a', 5);
  for (let i = 0; i < 6; i++) {
    assert.ok(ev?.kind === 'ejected', `ejection ${i + 1}`);
    durations.push(ev.durationMs);
    t1.advance(ev.durationMs);
    ev = series.recordConnect('a', false); // on probation: the first failure ejects again
  }
  assert.deepEqual(durations, [10_000, 20_000, 30_000, 40_000, 50_000, 50_000]);
  assert.equal(series.state('a')?.totalEjections, 7);

  const { d: noProbation, time: t2 } = detector({ probation: false });
  outcomes(noProbation, 'a', e503, 5);
  t2.advance(30_000);
  assert.equal(noProbation.state('a')?.onProbation, false);
  assert.equal(noProbation.recordOutcome('a', e503), undefined);
  assert.equal(noProbation.recordConnect('a', false), undefined);
});

test('probation after a connect-failure ejection: the first result decides, whichever detector it reaches', () => {
  const { d, time } = detector({ baseEjectionMs: 10_000, maxEjectionMs: 50_000 });
  assert.equal(connectFailures(d, 'a', 5)?.kind, 'ejected');
  time.advance(10_000);
  assert.deepEqual(d.tick(), [{ kind: 'returned', endpoint: 'a' }]);
  assert.equal(d.state('a')?.onProbation, true);
  const ev = d.recordConnect('a', false);
  assert.deepEqual(ev, {
    kind: 'ejected', endpoint: 'a', reason: 'probation-failure', untilMs: time.now() + 20_000, durationMs: 20_000, ejectionCount: 2,
  });
  time.advance(20_000);
  d.recordConnect('a', true);
  assert.equal(d.state('a')?.onProbation, false, 'a connect success ends the probation');
  assert.equal(connectFailures(d, 'a', 4), undefined, 'then a full run is needed again');

  const { d: g, time: t2 } = detector();
  connectFailures(g, 'a', 5);
  t2.advance(30_000);
  assert.equal(g.recordOutcome('a', e503)?.kind, 'ejected', 'a gateway error on probation ejects at once');
  assert.equal(g.stats().ejections['probation-failure'], 1);

  const { d: uncounted, time: t3 } = detector();
  connectFailures(uncounted, 'a', 5);
  t3.advance(30_000);
  assert.equal(uncounted.recordOutcome('a', e500), undefined, 'a 500 with consecutive5xx off is not a counted failure');
  assert.equal(uncounted.state('a')?.onProbation, false, '... but it ends the probation');
  assert.equal(uncounted.recordConnect('a', false), undefined);
});

test('the multiplier drops by one per interval spent in service; totalEjections does not', () => {
  const { d, time } = detector({ probation: false });
  outcomes(d, 'a', e503, 5);
  time.advance(30_000);
  d.tick(); // interval ending at 31 s: 'a' was ejected during it
  assert.equal(d.state('a')?.ejectionCount, 1);
  time.advance(10_000);
  d.tick(); // 31 s..41 s in service
  assert.equal(d.state('a')?.ejectionCount, 0);
  assert.equal(d.state('a')?.totalEjections, 1);
  const ev = outcomes(d, 'a', e503, 5);
  assert.ok(ev?.kind === 'ejected' && ev.durationMs === 30_000 && ev.ejectionCount === 1, 'back to the base time');
  assert.equal(d.state('a')?.totalEjections, 2);
});

test('max ejected share: at most the percentage (at least one); a refused ejection is an event and waits for room', () => {
  const { d, time } = detector({ maxEjectedPercent: 50 }, ['a', 'b', 'c', 'd']);
  assert.equal(outcomes(d, 'a', e503, 5)?.kind, 'ejected');
  time.advance(1_000);
  assert.equal(outcomes(d, 'b', e503, 5)?.kind, 'ejected');
  outcomes(d, 'c', e503, 4);
  assert.deepEqual(d.recordOutcome('c', e503), { kind: 'refused', endpoint: 'c', reason: 'consecutive-gateway-error' });
  assert.deepEqual(d.ejected().sort(), ['a', 'b']);
  assert.equal(d.isEjected('c'), false);
  assert.deepEqual(d.recordOutcome('c', e503), { kind: 'refused', endpoint: 'c', reason: 'consecutive-gateway-error' });
  assert.equal(d.stats().ejectionsRefused, 2);
  time.advance(29_000); // a returns
  assert.equal(d.recordOutcome('c', e503)?.kind, 'ejected', 'the streak was kept: the next failure ejects');
  assert.deepEqual(d.ejected().sort(), ['b', 'c']);
});

test('max ejected share bounds: floor(n x percent), at least one, never the last endpoint in service', () => {
  const capacity = (members: number, maxEjectedPercent: number): number => {
    const keys = Array.from({ length: members }, (_, i) => `e${i}`);
    const { d } = detector({ maxEjectedPercent }, keys);
    for (const k of keys) connectFailures(d, k, 5);
    assert.equal(d.stats().ejectionsRefused, members - d.ejected().length);
    return d.ejected().length;
  };
  assert.deepEqual([1, 2, 3, 4, 5, 10].map((n) => capacity(n, 50)), [0, 1, 1, 2, 2, 5]);
  assert.deepEqual([1, 2, 5, 20].map((n) => capacity(n, 10)), [0, 1, 1, 2], '10 % rounds down, but one may always be ejected');
  assert.deepEqual([1, 2, 3].map((n) => capacity(n, 100)), [0, 1, 2], 'the last endpoint in service stays');
  assert.equal(capacity(10, 0), 0, '0 % disables ejection');

  const { d: one } = detector({ maxEjectedPercent: 100 }, ['a']);
  for (let i = 0; i < 4; i++) one.recordOutcome('a', e503);
  assert.deepEqual(one.recordOutcome('a', e503), { kind: 'refused', endpoint: 'a', reason: 'consecutive-gateway-error' });
  assert.deepEqual(one.ejected(), []);
});

test('membership shrink: ejections beyond what the new membership allows end, the ones closest to their end first', () => {
  const { d, time } = detector({}, ['a', 'b', 'c', 'd']);
  connectFailures(d, 'a', 5); // until 31 s
  time.advance(1_000);
  connectFailures(d, 'b', 5); // until 32 s
  assert.deepEqual(d.ejected().sort(), ['a', 'b']);
  // 3 members allow 1 ejected: a (ending first) returns now, b stays out.
  assert.deepEqual(d.setEndpoints(['a', 'b', 'c']), [{ kind: 'returned', endpoint: 'a' }]);
  assert.deepEqual(d.ejected(), ['b']);
  assert.equal(d.state('a')?.onProbation, true, 'a returns on probation');
  assert.equal(d.weightFactor('a'), 0.1, 'and slow-starts from now');
  assert.deepEqual(d.tick(), [], 'its return is not reported again');
  assert.equal(d.state('a')?.totalEjections, 1);
  assert.deepEqual(d.setEndpoints(['a', 'b', 'c', 'x']), [], 'growth ends nothing');
  time.advance(30_000);
  assert.deepEqual(d.tick(), [{ kind: 'returned', endpoint: 'b' }]);
  // Removing an ejected endpoint forgets it; a shrink that leaves the ejections within the cap ends none.
  connectFailures(d, 'c', 5);
  assert.deepEqual(d.setEndpoints(['a', 'c']), []);
  assert.deepEqual(d.ejected(), ['c']);
  assert.deepEqual(d.setEndpoints(['c']), [{ kind: 'returned', endpoint: 'c' }], 'never the last endpoint in service');
});

test('nextChangeAt: the earliest ejection end, then slow-start steps until the ramp ends, else Infinity', () => {
  const { d, time } = detector({ slowStartMs: 30_000 });
  assert.equal(d.nextChangeAt(3_000), Infinity, 'nothing ejected, nothing ramping');
  connectFailures(d, 'a', 5); // until 31 s
  time.advance(5_000);
  connectFailures(d, 'b', 5); // until 36 s
  assert.equal(d.nextChangeAt(3_000), 31_000);
  time.advance(25_000); // 31 s: a returns and ramps; b is still out
  assert.equal(d.nextChangeAt(3_000), 34_000, 'a slow-start step');
  assert.equal(d.nextChangeAt(0), 31_001, 'a step is at least 1 ms');
  time.advance(5_000); // 36 s: b returns too
  assert.equal(d.nextChangeAt(3_000), 39_000);
  time.advance(24_000); // 60 s: a's ramp ends at 61 s
  assert.equal(d.nextChangeAt(3_000), 61_000, 'not past the end of the ramp');
  time.advance(1_000);
  assert.equal(d.nextChangeAt(3_000), 64_000, 'only b ramps now');
  time.advance(5_000);
  assert.equal(d.nextChangeAt(3_000), Infinity);

  const { d: noRamp, time: t2 } = detector({ slowStartMs: 0 });
  connectFailures(noRamp, 'a', 5);
  assert.equal(noRamp.nextChangeAt(250), 31_000);
  t2.advance(30_000);
  assert.equal(noRamp.nextChangeAt(250), Infinity, 'without slow start a return is the last change');
});

test('success rate: evaluated each interval over hosts with enough volume; below mean - factor * stdev is ejected', () => {
  const eps = ['a', 'b', 'c', 'd', 'e', 'f'];
  const { d, time } = detector({ successRate: DEFAULT_SUCCESS_RATE, consecutiveGatewayErrors: 0 }, eps);
  const feed = (k: string, total: number, failures: number): void => {
    for (let i = 0; i < total; i++) d.recordOutcome(k, i < failures ? e500 : ok);
  };
  for (const k of ['a', 'b', 'c', 'd']) feed(k, 100, 1);
  feed('e', 100, 50);
  feed('f', 10, 10); // below request_volume: not evaluated
  time.advance(9_999);
  assert.deepEqual(d.tick(), [], 'not before the interval');
  time.advance(1);
  const events = d.tick();
  assert.deepEqual(events.map((e) => (e.kind === 'ejected' ? [e.endpoint, e.reason] : [e.kind])), [['e', 'success-rate']]);
  assert.equal(d.isEjected('f'), false);

  time.advance(10_000);
  d.tick(); // new window: old counts are gone
  for (const k of ['a', 'b', 'c']) feed(k, 100, 0);
  feed('d', 100, 60);
  time.advance(10_000);
  assert.deepEqual(d.tick().filter((e) => e.kind !== 'returned'), [], 'only 4 hosts with volume (< minimum_hosts 5): no evaluation');

  const { d: even, time: t2 } = detector({ successRate: DEFAULT_SUCCESS_RATE }, eps.slice(0, 5));
  for (const k of eps.slice(0, 5)) for (let i = 0; i < 100; i++) even.recordOutcome(k, ok);
  t2.advance(10_000);
  assert.deepEqual(even.tick(), [], 'equal rates: stdev 0, nobody below the mean');
});

test('gradual return (slow start): the weight factor ramps from the minimum to 1 over slowStartMs', () => {
  const { d, time } = detector({ slowStartMs: 20_000, slowStartMinWeightPercent: 10 });
  assert.equal(d.weightFactor('a'), 1, 'never ejected: full weight');
  assert.equal(d.weightFactor('unknown'), 1);
  outcomes(d, 'a', e503, 5);
  assert.equal(d.weightFactor('a'), 0);
  time.advance(30_000);
  assert.equal(d.weightFactor('a'), 0.1);
  assert.equal(d.state('a')?.weightFactor, 0.1);
  time.advance(10_000);
  assert.ok(Math.abs(d.weightFactor('a') - 0.55) < 1e-9, String(d.weightFactor('a')));
  time.advance(9_999);
  assert.ok(d.weightFactor('a') < 1);
  time.advance(1);
  assert.equal(d.weightFactor('a'), 1);
  const { d: off, time: t2 } = detector({ slowStartMs: 0 });
  outcomes(off, 'a', e503, 5);
  t2.advance(30_000);
  assert.equal(off.weightFactor('a'), 1);
});

test('ejection jitter comes from the injected random; endpoints can be replaced', () => {
  const time = new FakeTime();
  const d = new OutlierDetector({ ...DEFAULT_OUTLIER_CONFIG, consecutiveConnectFailures: 5, ejectionJitterMs: 1000 }, time, () => 0.5);
  d.setEndpoints(EPS);
  const ev = outcomes(d, 'a', e503, 5);
  assert.ok(ev?.kind === 'ejected');
  assert.equal(ev.untilMs, 31_500);
  assert.equal(ev.durationMs, 30_500);
  assert.deepEqual(d.setEndpoints(['b', 'c', 'x']), []);
  assert.deepEqual(['a', 'b', 'c', 'd', 'x'].map((k) => d.state(k)?.key), [undefined, 'b', 'c', undefined, 'x']);
  assert.equal(d.isEjected('a'), false, 'forgotten endpoints carry no state');
  assert.equal(d.stats().endpoints, 3);
  assert.equal(d.stats().ejected, 0);
  d.setEndpoints(['a', 'b']);
  assert.equal(d.state('a')?.totalEjections, 0, 'a rejoining endpoint starts clean');
});
