// EarliestDeadlineTimer: one timer for the earliest of many deadlines (the pools' idle retirement), on fake timers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EarliestDeadlineTimer, type DeadlineTimers } from '../../../src/core/earliest-deadline-timer.js';

class FakeTimers implements DeadlineTimers {
  t = 0;
  readonly pending = new Map<number, { fn: () => void; at: number }>();
  created = 0;
  #id = 0;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.created++;
    this.pending.set(id, { fn, at: this.t + ms });
    return id;
  }
  clearTimeout(h: unknown): void { this.pending.delete(h as number); }
  /** Advance to `to`, running due timers in order. */
  advance(to: number): void {
    for (let guard = 0; guard < 1_000; guard++) {
      let due: [number, { fn: () => void; at: number }] | undefined;
      for (const e of this.pending) if (e[1].at <= to && (due === undefined || e[1].at < due[1].at)) due = e;
      if (due === undefined) break;
      this.pending.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = to;
  }
}

test('a later deadline costs no timer; an earlier one re-arms', () => {
  const timers = new FakeTimers();
  const fired: number[] = [];
  const d = new EarliestDeadlineTimer(() => fired.push(timers.t), timers);
  /** `arm` with the fake clock at `now`. */
  const armAt = (at: number, now: number): void => {
    timers.t = now;
    d.arm(at, now);
  };
  armAt(100, 0);
  armAt(150, 10);
  armAt(100, 20);
  assert.equal(timers.created, 1, 'one timer for deadlines at or after the armed one');
  assert.equal(timers.pending.size, 1);
  armAt(40, 30);
  assert.equal(timers.created, 2);
  assert.equal(timers.pending.size, 1, 'the later timer was cleared');
  timers.advance(1_000);
  assert.deepEqual(fired, [40], 'fires once, at the earliest deadline');
});

test('after firing it is disarmed: the owner arms it again for what is left', () => {
  const timers = new FakeTimers();
  const deadlines = [50, 120, 300];
  const fired: number[] = [];
  const d: EarliestDeadlineTimer = new EarliestDeadlineTimer(() => {
    const now = timers.t;
    fired.push(now);
    const left = deadlines.filter((x) => x > now);
    if (left.length > 0) d.arm(Math.min(...left), now);
  }, timers);
  for (const x of deadlines) d.arm(x, 0);
  timers.advance(1_000);
  assert.deepEqual(fired, [50, 120, 300]);
  assert.equal(timers.pending.size, 0);
});

test('disarm cancels; a deadline already passed fires after at least 1 ms', () => {
  const timers = new FakeTimers();
  let fired = 0;
  const d = new EarliestDeadlineTimer(() => { fired++; }, timers);
  d.arm(100, 0);
  d.disarm();
  timers.advance(500);
  assert.equal(fired, 0);
  d.arm(400, 500);
  assert.equal([...timers.pending.values()][0]?.at, 501);
  timers.advance(501);
  assert.equal(fired, 1);
  d.arm(10_000, 501);
  assert.equal(timers.pending.size, 1, 'armed again after firing');
});
