// PeriodicSweep: one interval for many deadlines (idle timeouts, connect timeouts), on fake timers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PeriodicSweep, periodFor, type SweepMember, type SweepTimers } from '../../../src/core/periodic-sweep.js';

class FakeTimers implements SweepTimers {
  t = 0;
  readonly intervals = new Map<number, { fn: () => void; ms: number; next: number }>();
  #id = 0;
  now(): number { return this.t; }
  setInterval(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.intervals.set(id, { fn, ms, next: this.t + ms });
    return id;
  }
  clearInterval(h: unknown): void { this.intervals.delete(h as number); }
  /** Advance to `to`, running due intervals in order. */
  advance(to: number): void {
    for (let guard = 0; guard < 10_000; guard++) {
      let due: { fn: () => void; ms: number; next: number } | undefined;
      for (const i of this.intervals.values()) if (i.next <= to && (due === undefined || i.next < due.next)) due = i;
      if (due === undefined) break;
      this.t = due.next;
      due.next += due.ms;
      due.fn();
    }
    this.t = to;
  }
}

/** A member with a deadline; records when it fired. */
class Deadline implements SweepMember {
  firedAt: number | undefined;
  visits = 0;
  constructor(readonly at: number) {}
  sweep(now: number): boolean {
    this.visits++;
    if (now < this.at) return true;
    this.firedAt = now;
    return false;
  }
}

test('periodFor: a quarter of the deadline, between 10 ms and 1 s', () => {
  assert.equal(periodFor(100), 25);
  assert.equal(periodFor(8), 10);
  assert.equal(periodFor(3_600_000), 1_000);
});

test('members fire at the first visit at or after their deadline, then leave; the interval stops when empty', () => {
  const timers = new FakeTimers();
  const sweep = new PeriodicSweep(100, timers);
  const a = new Deadline(250);
  const b = new Deadline(1_000);
  sweep.add(a);
  sweep.add(b);
  assert.equal(timers.intervals.size, 1);
  timers.advance(299);
  assert.equal(a.firedAt, undefined);
  timers.advance(300);
  assert.equal(a.firedAt, 300);
  assert.equal(sweep.size, 1);
  timers.advance(1_000);
  assert.equal(b.firedAt, 1_000);
  assert.equal(sweep.size, 0);
  assert.equal(timers.intervals.size, 0, 'no interval runs for an empty sweep');
});

test('a shorter period asked by a new member applies to every member from then on', () => {
  const timers = new FakeTimers();
  const sweep = new PeriodicSweep(1_000, timers);
  const long = new Deadline(5_000);
  sweep.add(long);
  const short = new Deadline(30);
  sweep.add(short, 10);
  assert.equal(sweep.periodMs, 10);
  timers.advance(30);
  assert.equal(short.firedAt, 30);
  timers.advance(5_000);
  assert.equal(long.firedAt, 5_000);
});

test('delete removes a member before its deadline; a member that throws is dropped and the others still run', () => {
  const timers = new FakeTimers();
  const sweep = new PeriodicSweep(10, timers);
  const gone = new Deadline(20);
  const thrower: SweepMember = { sweep: () => { throw new Error('bug'); } };
  const kept = new Deadline(40);
  const goneEntry = sweep.add(gone);
  sweep.add(thrower);
  sweep.add(kept);
  sweep.delete(goneEntry);
  timers.advance(40);
  assert.equal(gone.firedAt, undefined);
  assert.equal(gone.visits, 0);
  assert.equal(kept.firedAt, 40);
  assert.equal(sweep.size, 0);
});

test('a member that deletes another during a visit: the deleted one is not visited', () => {
  const timers = new FakeTimers();
  const sweep = new PeriodicSweep(10, timers);
  const late = new Deadline(1_000);
  let lateEntry: ReturnType<typeof sweep.add> | undefined;
  const deleter: SweepMember = { sweep: () => { if (lateEntry !== undefined) sweep.delete(lateEntry); return true; } };
  // The walk goes in insertion order: the deleter runs first and removes the member after it.
  sweep.add(deleter);
  lateEntry = sweep.add(late);
  timers.advance(10);
  assert.equal(late.visits, 0);
  assert.equal(sweep.size, 1);
});
