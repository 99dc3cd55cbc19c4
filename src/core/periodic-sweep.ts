// One timer for many deadlines: instead of a setTimeout per socket (a Timeout object and a bound callback each, kept
// by the socket for its whole life, and re-armed on every read and write), the members of a sweep are visited every
// `periodMs` and each decides itself whether its deadline has passed. A deadline then fires between its time and one
// period later. The interval runs (unref'd) only while the sweep has members.
//
// Members are kept in a LiveSet (src/core/live-set.ts): add() returns the member's entry, delete() takes it back.
//
// Used for the idle timeout of opaque TCP forwards (src/l4/tcp-forward.ts) and the connect timeout of upstream sockets
// (src/upstream/transport/connect.ts).

import { LiveSet, type LiveEntry } from './live-set.js';

export interface SweepMember {
  /** Visited once per period with the sweep's clock; false = done, leave the sweep. */
  sweep(now: number): boolean;
}

export interface SweepTimers {
  now(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const REAL_TIMERS: SweepTimers = {
  now: Date.now,
  setInterval: (fn, ms) => {
    const t = setInterval(fn, ms);
    t.unref();
    return t;
  },
  clearInterval: (h) => { clearInterval(h as NodeJS.Timeout); },
};

/** The period for a deadline of `ms`: a quarter of it, between 10 ms and 1 s (a deadline fires at most 25 % late). */
export function periodFor(ms: number): number {
  return Math.min(1_000, Math.max(10, Math.floor(ms / 4)));
}

export class PeriodicSweep {
  readonly #timers: SweepTimers;
  readonly #members = new LiveSet<SweepMember>();
  #periodMs: number;
  #handle: unknown;

  constructor(periodMs = 1_000, timers: SweepTimers = REAL_TIMERS) {
    this.#periodMs = periodMs;
    this.#timers = timers;
  }

  get size(): number { return this.#members.size; }
  get periodMs(): number { return this.#periodMs; }

  now(): number { return this.#timers.now(); }

  /**
   * Add a member; `periodMs`, when shorter than the sweep's period, shortens it (from now on, for every member: a
   * short deadline is never swept late because of long ones). The entry is what delete() takes.
   */
  add(member: SweepMember, periodMs?: number): LiveEntry<SweepMember> {
    if (periodMs !== undefined && periodMs < this.#periodMs) {
      this.#periodMs = periodMs;
      this.#stop();
    }
    const entry = this.#members.add(member);
    if (this.#handle === undefined) this.#handle = this.#timers.setInterval(this.#tick, this.#periodMs);
    return entry;
  }

  /** Remove a member (nothing when it already left). */
  delete(entry: LiveEntry<SweepMember>): void {
    this.#members.delete(entry);
    if (this.#members.size === 0) this.#stop();
  }

  readonly #tick = (): void => {
    const now = this.#timers.now();
    for (const e of this.#members.entries()) {
      if (!this.#members.has(e)) continue; // deleted by a member visited before it
      let keep: boolean;
      try {
        keep = e.item.sweep(now);
      } catch {
        keep = false; // a member that throws is dropped; the others are still visited, the process goes on
      }
      if (!keep) this.#members.delete(e);
    }
    if (this.#members.size === 0) this.#stop();
  };

  #stop(): void {
    if (this.#handle === undefined) return;
    this.#timers.clearInterval(this.#handle);
    this.#handle = undefined;
  }
}
