// Time as the upstream layer sees it: a monotonic clock and timers, both injected so health logic is testable
// with a fake clock (no sleeps, no timing assertions).
import { monotonicMs } from '../core/monotonic-clock.js';

/** Milliseconds on a monotonic scale (only differences are meaningful). */
export interface Clock {
  now(): number;
}

export interface TimerHandle {
  readonly __timerHandle?: never;
}

export interface Timers {
  /** Schedules fn after ms; production timers are unref'd (they never keep the process alive). */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = Object.freeze({ now: monotonicMs });

export const systemTimers: Timers = Object.freeze({
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return t as unknown as TimerHandle;
  },
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as unknown as NodeJS.Timeout);
  },
});
