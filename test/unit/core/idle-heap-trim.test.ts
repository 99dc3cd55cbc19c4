// IdleHeapTrim on fake CPU time: after a busy period, the malloc release at 10 s of quiet and the full release at a
// minute of it, each once per busy -> quiet change, never while busy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  IdleHeapTrim, LONG_QUIET_PERIODS, QUIET_PERIODS, releasesHeap, TRIM_PERIOD_MS, type ReleaseTrigger,
} from '../../../src/core/idle-heap-trim.js';

function rig(): { trim: IdleHeapTrim; period: (coreShare: number) => void; collected: () => number; triggers: ReleaseTrigger[] } {
  let cpu = 0;
  let tick: (() => void) | undefined;
  let collected = 0;
  const triggers: ReleaseTrigger[] = [];
  const trim = new IdleHeapTrim({
    cpuMicros: () => cpu,
    collect: (trigger) => { collected++; triggers.push(trigger); },
    setInterval: (fn) => { tick = fn; return 1; },
    clearInterval: () => { tick = undefined; },
  }).start();
  return {
    trim,
    period: (share) => { cpu += share * TRIM_PERIOD_MS * 1_000; tick?.(); },
    collected: () => collected,
    triggers,
  };
}

test('quiet from the start: no collection', () => {
  const r = rig();
  for (let i = 0; i < 5; i++) r.period(0);
  assert.equal(r.collected(), 0);
});

test('busy, then quiet: the malloc release at the second quiet period in a row, the full one at the twelfth, none after', () => {
  const r = rig();
  r.period(0.8);
  r.period(0.5);
  assert.equal(r.collected(), 0, 'never while busy');
  r.period(0.001);
  assert.equal(r.collected(), 0, 'one quiet period is not enough');
  r.period(0.001);
  assert.equal(r.collected(), 1);
  assert.deepEqual(r.triggers, ['idle']);
  for (let i = QUIET_PERIODS; i < LONG_QUIET_PERIODS - 1; i++) r.period(0);
  assert.equal(r.collected(), 1, 'nothing more before a minute of quiet');
  r.period(0);
  assert.deepEqual(r.triggers, ['idle', 'long-idle']);
  for (let i = 0; i < 2 * LONG_QUIET_PERIODS; i++) r.period(0);
  assert.equal(r.collected(), 2, 'quiet on: nothing more');
  assert.equal(r.trim.collections, 2);
});

test('busy again before the minute: the full release waits for the next long quiet', () => {
  const r = rig();
  r.period(0.5);
  r.period(0);
  r.period(0);
  assert.deepEqual(r.triggers, ['idle']);
  for (let i = 0; i < 5; i++) r.period(0);
  r.period(0.4); // traffic again after 35 s: the code it runs is still compiled
  assert.deepEqual(r.triggers, ['idle']);
  for (let i = 0; i < LONG_QUIET_PERIODS; i++) r.period(0);
  assert.deepEqual(r.triggers, ['idle', 'idle', 'long-idle']);
});

test('only the releases after a short quiet leave V8\'s heap (and its compiled code) alone', () => {
  assert.equal(releasesHeap('idle'), false);
  assert.equal(releasesHeap('long-idle'), true);
  assert.equal(releasesHeap('start'), true);
});

test('a trickle between the thresholds waits; busy again re-arms it; stop() ends the sampling', () => {
  const r = rig();
  r.period(0.5);
  r.period(0);
  r.period(0.03);
  assert.equal(r.collected(), 0, 'a period with some traffic breaks the quiet');
  r.period(0);
  r.period(0);
  assert.equal(r.collected(), 1);
  r.period(0.2);
  r.period(0);
  r.period(0);
  assert.equal(r.collected(), 2);
  r.trim.stop();
  r.period(0.9);
  for (let i = 0; i < LONG_QUIET_PERIODS; i++) r.period(0);
  assert.equal(r.collected(), 2);
  assert.deepEqual(r.triggers, ['idle', 'idle']);
});

test('settle() releases once at once, whatever the CPU history, and leaves the busy/quiet cycle as it was', () => {
  const r = rig();
  r.trim.settle();
  assert.equal(r.collected(), 1);
  assert.equal(r.trim.collections, 1);
  r.period(0);
  r.period(0);
  assert.equal(r.collected(), 1, 'quiet without a busy period: nothing more');
  r.period(0.6);
  r.period(0);
  r.period(0);
  assert.equal(r.collected(), 2);
  assert.deepEqual(r.triggers, ['start', 'idle']);
});
