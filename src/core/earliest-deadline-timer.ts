// One timer for the earliest of many deadlines that are set far more often than they pass: the upstream pools'
// idle retirement (src/l7/pool/), where a connection goes idle after every response. Setting a deadline later than
// the one armed costs a comparison, not a timer: when the timer fires, its owner handles what is due and arms again
// for the earliest deadline left. (PeriodicSweep, next to this file, polls at a fixed period instead; this one fires
// at the deadline itself.)

/** What the timer needs from node:timers, injectable for the unit test. */
export interface DeadlineTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_TIMERS: DeadlineTimers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => { clearTimeout(h as NodeJS.Timeout); },
};

export class EarliestDeadlineTimer {
  readonly #fire: () => void;
  readonly #timers: DeadlineTimers;
  #handle: unknown;
  #at = Infinity;

  /** `fire` runs once per expiry, with the timer disarmed (it calls `arm` for what is left). */
  constructor(fire: () => void, timers: DeadlineTimers = REAL_TIMERS) {
    this.#fire = fire;
    this.#timers = timers;
  }

  /** Fire no later than `at` (ms on the caller's clock, which reads `now`); an earlier or equal armed time stays. */
  arm(at: number, now: number): void {
    if (at >= this.#at) return;
    if (this.#handle !== undefined) this.#timers.clearTimeout(this.#handle);
    this.#at = at;
    this.#handle = this.#timers.setTimeout(this.#onTimer, Math.max(1, Math.ceil(at - now)));
  }

  disarm(): void {
    if (this.#handle !== undefined) this.#timers.clearTimeout(this.#handle);
    this.#handle = undefined;
    this.#at = Infinity;
  }

  readonly #onTimer = (): void => {
    this.#handle = undefined;
    this.#at = Infinity;
    this.#fire();
  };
}
