import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttemptOutcome } from '../../../src/upstream/health/attempt-outcome.js';
import { OutlierDetector } from '../../../src/upstream/health/outlier-detector.js';
import { DEFAULT_OUTLIER_CONFIG, DEFAULT_SUCCESS_RATE, type OutlierConfig } from '../../../src/config/traffic-policy-spec.js';
import { FakeClock } from '../l7/helpers.js';

const ok: AttemptOutcome = { kind: 'response', status: 200, latencyMs: 5 };
const e503: AttemptOutcome = { kind: 'response', status: 503, latencyMs: 5 };
const e500: AttemptOutcome = { kind: 'response', status: 500, latencyMs: 5 };
const EPS = ['a', 'b', 'c', 'd'];

function detector(over: Partial<OutlierConfig> = {}, endpoints = EPS): { d: OutlierDetector; clock: FakeClock } {
  const clock = new FakeClock();
  const d = new OutlierDetector({ ...DEFAULT_OUTLIER_CONFIG, ...over }, clock);
  d.setEndpoints(endpoints);
  return { d, clock };
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
  assert.equal(DEFAULT_OUTLIER_CONFIG.probation, true);
});

test('consecutive gateway errors (502/503/504, connect failure, reset, timeout, gRPC UNAVAILABLE) eject at the Nth', () => {
  const { d, clock } = detector();
  const failures: AttemptOutcome[] = [
    { kind: 'response', status: 502, latencyMs: 1 }, { kind: 'connect-failure' }, { kind: 'reset', bytesSent: true },
    { kind: 'timeout' },
  ];
  for (const f of failures) assert.equal(d.record('a', f), undefined);
  assert.equal(d.isEjected('a'), false);
  const ev = d.record('a', { kind: 'response', status: 200, grpcStatus: 14, latencyMs: 1 });
  assert.deepEqual(ev, { kind: 'ejected', endpoint: 'a', reason: 'consecutive-gateway-error', untilMs: 30_000, ejectionCount: 1 });
  assert.equal(d.isEjected('a'), true);
  assert.equal(d.weightFactor('a'), 0);
  assert.deepEqual(d.ejected(), ['a']);
  for (let i = 0; i < 10; i++) assert.equal(d.record('a', e503), undefined, 'outcomes while ejected are ignored');
  clock.advance(29_999);
  assert.equal(d.isEjected('a'), true);
  clock.advance(1);
  assert.equal(d.isEjected('a'), false, 'back after the base ejection time, without any tick');
  assert.deepEqual(d.tick(), [{ kind: 'returned', endpoint: 'a' }]);
  assert.deepEqual(d.tick(), [], 'returned is reported once');
  assert.equal(d.stats().ejections['consecutive-gateway-error'], 1);
});

test('a success resets the counters; a non-gateway 5xx resets the gateway counter only', () => {
  const { d } = detector();
  for (let i = 0; i < 4; i++) d.record('a', e503);
  d.record('a', ok);
  for (let i = 0; i < 4; i++) d.record('a', e503);
  d.record('a', e500);
  for (let i = 0; i < 4; i++) d.record('a', e503);
  assert.equal(d.isEjected('a'), false);
  assert.equal(d.endpointStates().find((s) => s.key === 'a')?.consecutiveGatewayErrors, 4);
  assert.equal(d.endpointStates().find((s) => s.key === 'a')?.consecutive5xx, 9, 'the 5xx streak is restarted by the success only');
  assert.notEqual(d.record('a', e503), undefined);
});

test('consecutive 5xx (opt-in) ejects on any 5xx; 4xx and gRPC NOT_FOUND are successes', () => {
  const { d } = detector({ consecutive5xx: 3, consecutiveGatewayErrors: 0 });
  d.record('b', e500);
  d.record('b', { kind: 'response', status: 404, latencyMs: 1 });
  d.record('b', { kind: 'response', status: 200, grpcStatus: 5, latencyMs: 1 });
  d.record('b', e500);
  d.record('b', { kind: 'response', status: 200, grpcStatus: 13, latencyMs: 1 }); // INTERNAL counts as 5xx
  const ev = d.record('b', e503);
  assert.equal(ev?.kind === 'ejected' ? ev.reason : undefined, 'consecutive-5xx');
  const { d: off } = detector({ consecutive5xx: 0, consecutiveGatewayErrors: 0 });
  for (let i = 0; i < 50; i++) off.record('a', e503);
  assert.equal(off.isEjected('a'), false, 'both detectors off: nothing ejects');
});

test('ejection time grows with each ejection (base x count) up to the cap; probation re-ejects at the first failure', () => {
  const { d, clock } = detector({ baseEjectionMs: 30_000, maxEjectionMs: 70_000 });
  const eject = (): number => {
    let ev;
    for (let i = 0; i < 5 && ev === undefined; i++) ev = d.record('a', e503);
    assert.ok(ev?.kind === 'ejected');
    return ev.kind === 'ejected' ? ev.untilMs - clock.now() : -1;
  };
  assert.equal(eject(), 30_000);
  clock.advance(30_000);
  const again = d.record('a', e503); // first outcome after the return: probation
  assert.ok(again?.kind === 'ejected' && again.reason === 'probation-failure');
  assert.equal(again.kind === 'ejected' ? again.untilMs - clock.now() : 0, 60_000);
  assert.equal(again.kind === 'ejected' ? again.ejectionCount : 0, 2);
  clock.advance(60_000);
  const third = d.record('a', { kind: 'connect-failure' });
  assert.equal(third?.kind === 'ejected' ? third.untilMs - clock.now() : 0, 70_000, 'capped at maxEjectionMs');
  clock.advance(70_000);
  assert.equal(d.record('a', ok), undefined, 'a success ends probation');
  for (let i = 0; i < 4; i++) assert.equal(d.record('a', e503), undefined, 'after probation: N failures again');
  assert.equal(d.stats().ejections['probation-failure'], 2);

  const { d: noProbation, clock: c2 } = detector({ probation: false });
  for (let i = 0; i < 5; i++) noProbation.record('a', e503);
  c2.advance(30_000);
  assert.equal(noProbation.record('a', e503), undefined);
});

test('the multiplier drops by one per interval spent in service without ejection', () => {
  const { d, clock } = detector({ probation: false });
  for (let i = 0; i < 5; i++) d.record('a', e503);
  clock.advance(30_000);
  d.tick(); // interval ending at 30 s: 'a' was ejected during it
  assert.equal(d.endpointStates().find((s) => s.key === 'a')?.ejectionCount, 1);
  clock.advance(10_000);
  d.tick(); // 30 s..40 s in service
  assert.equal(d.endpointStates().find((s) => s.key === 'a')?.ejectionCount, 0);
  let ev;
  for (let i = 0; i < 5; i++) ev = d.record('a', e503) ?? ev;
  assert.ok(ev?.kind === 'ejected' && ev.untilMs - clock.now() === 30_000, 'back to the base time');
});

test('max ejected share: at most the percentage (at least one), never the last endpoint in service', () => {
  const { d } = detector({ maxEjectedPercent: 50 }, ['a', 'b', 'c', 'd']);
  for (const k of ['a', 'b', 'c']) for (let i = 0; i < 5; i++) d.record(k, e503);
  assert.deepEqual(d.ejected().sort(), ['a', 'b']);
  assert.equal(d.stats().ejectionsRefused, 1);

  const { d: small } = detector({ maxEjectedPercent: 10 }, ['a', 'b', 'c']);
  for (const k of ['a', 'b']) for (let i = 0; i < 5; i++) small.record(k, e503);
  assert.deepEqual(small.ejected(), ['a'], '10 % of 3 rounds down to 0, but one may always be ejected');

  const { d: two } = detector({ maxEjectedPercent: 100 }, ['a', 'b']);
  for (const k of ['a', 'b']) for (let i = 0; i < 5; i++) two.record(k, e503);
  assert.deepEqual(two.ejected(), ['a'], 'the last endpoint in service stays');

  const { d: one } = detector({ maxEjectedPercent: 100 }, ['a']);
  for (let i = 0; i < 10; i++) one.record('a', e503);
  assert.deepEqual(one.ejected(), []);

  const { d: zero } = detector({ maxEjectedPercent: 0 });
  for (let i = 0; i < 5; i++) zero.record('a', e503);
  assert.deepEqual(zero.ejected(), [], '0 % disables ejection');
});

test('success rate: evaluated each interval over hosts with enough volume; below mean - factor * stdev is ejected', () => {
  const eps = ['a', 'b', 'c', 'd', 'e', 'f'];
  const { d, clock } = detector({ successRate: DEFAULT_SUCCESS_RATE, consecutiveGatewayErrors: 0 }, eps);
  const feed = (k: string, total: number, failures: number): void => {
    for (let i = 0; i < total; i++) d.record(k, i < failures ? e500 : ok);
  };
  for (const k of ['a', 'b', 'c', 'd']) feed(k, 100, 1);
  feed('e', 100, 50);
  feed('f', 10, 10); // below request_volume: not evaluated
  clock.advance(9_999);
  assert.deepEqual(d.tick(), [], 'not before the interval');
  clock.advance(1);
  const events = d.tick();
  assert.deepEqual(events.map((e) => (e.kind === 'ejected' ? [e.endpoint, e.reason] : [])), [['e', 'success-rate']]);
  assert.equal(d.isEjected('f'), false);

  clock.advance(10_000);
  d.tick(); // new window: old counts are gone
  for (const k of ['a', 'b', 'c']) feed(k, 100, 0);
  feed('d', 100, 60);
  clock.advance(10_000);
  assert.deepEqual(d.tick().filter((e) => e.kind === 'ejected'), [], 'only 4 hosts with volume (< minimum_hosts 5): no evaluation');

  const { d: even, clock: c2 } = detector({ successRate: DEFAULT_SUCCESS_RATE }, eps.slice(0, 5));
  for (const k of eps.slice(0, 5)) for (let i = 0; i < 100; i++) even.record(k, ok);
  c2.advance(10_000);
  assert.deepEqual(even.tick(), [], 'equal rates: stdev 0, nobody below the mean');
});

test('gradual return (slow start): the weight factor ramps from the minimum to 1 over slowStartMs', () => {
  const { d, clock } = detector({ slowStartMs: 20_000, slowStartMinWeightPercent: 10 });
  assert.equal(d.weightFactor('a'), 1, 'never ejected: full weight');
  for (let i = 0; i < 5; i++) d.record('a', e503);
  assert.equal(d.weightFactor('a'), 0);
  clock.advance(30_000);
  assert.equal(d.weightFactor('a'), 0.1);
  clock.advance(10_000);
  assert.ok(Math.abs(d.weightFactor('a') - 0.55) < 1e-9);
  clock.advance(9_999);
  assert.ok(d.weightFactor('a') < 1);
  clock.advance(1);
  assert.equal(d.weightFactor('a'), 1);
  const { d: off, clock: c2 } = detector({ slowStartMs: 0 });
  for (let i = 0; i < 5; i++) off.record('a', e503);
  c2.advance(30_000);
  assert.equal(off.weightFactor('a'), 1);
});

test('ejection jitter comes from the injected random; endpoints can be replaced', () => {
  const clock = new FakeClock();
  const d = new OutlierDetector({ ...DEFAULT_OUTLIER_CONFIG, ejectionJitterMs: 1000 }, clock, () => 0.5);
  d.setEndpoints(EPS);
  let ev;
  for (let i = 0; i < 5; i++) ev = d.record('a', e503) ?? ev;
  assert.ok(ev?.kind === 'ejected' && ev.untilMs === 30_500);
  d.setEndpoints(['b', 'c', 'x']);
  assert.deepEqual(d.endpointStates().map((s) => s.key).sort(), ['b', 'c', 'x']);
  assert.equal(d.isEjected('a'), false, 'forgotten endpoints carry no state');
  assert.equal(d.stats().endpoints, 3);
});
