// The live load of one endpoint: in-flight count and the peak-EWMA latency estimate (Finagle / linkerd2-proxy).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_EWMA, EndpointLoad } from '../../../src/upstream/balancer/endpoint-load.js';
import { FakeTime } from './helpers.js';

const near = (actual: number, expected: number, what: string): void => {
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} vs ${expected}`);
};

test('defaults: decay 10 s, default rtt 30 ms, failure penalty 1 s', () => {
  assert.deepEqual({ ...DEFAULT_EWMA }, { decayMs: 10_000, defaultRttMs: 30, failurePenaltyMs: 1_000 });
});

test('an endpoint never observed starts at the default rtt; the first observation replaces it, even a faster one', () => {
  const time = new FakeTime();
  const load = new EndpointLoad(time);
  assert.equal(load.rtt(), 30);
  assert.equal(load.cost(), 30);
  assert.equal(new EndpointLoad(time, { ...DEFAULT_EWMA, defaultRttMs: 50 }).rtt(), 50);
  load.observe(5, false);
  assert.equal(load.rtt(), 5, 'no blending with the seed');
});

test('peak: a slower observation is taken at once', () => {
  const time = new FakeTime();
  const load = new EndpointLoad(time);
  load.observe(10, false);
  time.advance(1);
  load.observe(100, false);
  assert.equal(load.rtt(), 100);
});

test('reading decays the estimate with time, so an idle slow endpoint is probed again', () => {
  const time = new FakeTime();
  const load = new EndpointLoad(time);
  load.observe(100, false);
  time.advance(10_000);
  near(load.rtt(), 100 * Math.exp(-1), 'one time constant later');
  time.advance(20_000);
  near(load.rtt(), 100 * Math.exp(-3), 'three');
});

test('faster observations are blended in with weight 1 - e^(-elapsed / decay)', () => {
  const time = new FakeTime();
  const load = new EndpointLoad(time);
  load.observe(100, false);
  load.observe(5, false);
  assert.equal(load.rtt(), 100, 'no time elapsed: no weight');
  time.advance(1_000);
  load.observe(5, false);
  const w = Math.exp(-0.1);
  near(load.rtt(), 100 * w + 5 * (1 - w), 'after 1 s');
  // Five more fast observations a second apart pull a slow endpoint close to its new latency.
  let expected = load.rtt();
  for (let i = 0; i < 5; i++) {
    time.advance(1_000);
    load.observe(5, false);
    expected = expected * w + 5 * (1 - w);
  }
  near(load.rtt(), expected, 'after 6 s');
  assert.ok(load.rtt() < 60, String(load.rtt()));
});

test('a failed attempt observes max(latency, failure penalty); penalty 0 observes the latency only', () => {
  const time = new FakeTime();
  const load = new EndpointLoad(time);
  load.observe(10, false);
  load.observe(2, true);
  assert.equal(load.rtt(), 1_000, 'a fast failure does not attract traffic');
  load.observe(1_500, true);
  assert.equal(load.rtt(), 1_500, 'a slow failure counts its own latency');
  const noPenalty = new EndpointLoad(time, { ...DEFAULT_EWMA, failurePenaltyMs: 0 });
  noPenalty.observe(2, true);
  assert.equal(noPenalty.rtt(), 2);
});

test('cost = rtt x (active + 1); invalid observations are ignored', () => {
  const time = new FakeTime();
  const load = new EndpointLoad(time);
  load.observe(10, false);
  load.active = 10;
  assert.equal(load.cost(), 110);
  load.observe(Number.NaN, false);
  load.observe(-1, false);
  assert.equal(load.rtt(), 10);
});
