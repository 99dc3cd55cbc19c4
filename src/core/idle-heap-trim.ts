// Gives memory back after a busy period. Under load V8 grows its young generation (up to 2 x 16 MB) and keeps it:
// once the traffic stops, no garbage collection runs, so nothing shrinks it and the proxy stays ~40 MB above its idle
// RSS for as long as it stays quiet. This watches the process's CPU time: after a period in which the process was
// busy (at least BUSY_SHARE of a core), the second quiet period in a row (below QUIET_SHARE: 10 s of quiet, so that
// V8's own measure of the allocation rate, over the last 5 s, is low and lets it shrink the young generation)
// triggers one full garbage collection. At most one collection per busy -> quiet change, never while busy; a few
// milliseconds when nothing is being served.
//
// The collection is V8's `gc()`, exposed at run time (v8.setFlagsFromString('--expose-gc')) only by start().

export interface HeapTrimDeps {
  /** CPU time of the process so far, in microseconds (user + system). */
  cpuMicros(): number;
  /** A full garbage collection. */
  collect(): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** How often the CPU time is sampled. */
export const TRIM_PERIOD_MS = 5_000;
/** A period with at least this share of one core counts as busy. */
export const BUSY_SHARE = 0.05;
/** A period below this share of one core counts as quiet. */
export const QUIET_SHARE = 0.01;
/** Quiet periods in a row before the collection. */
export const QUIET_PERIODS = 2;

export class IdleHeapTrim {
  readonly #deps: HeapTrimDeps;
  readonly #periodMs: number;
  #lastCpu: number;
  #busy = false;
  #quiet = 0;
  #handle: unknown;
  #collections = 0;

  constructor(deps: HeapTrimDeps, periodMs = TRIM_PERIOD_MS) {
    this.#deps = deps;
    this.#periodMs = periodMs;
    this.#lastCpu = deps.cpuMicros();
  }

  /** Collections made so far. */
  get collections(): number { return this.#collections; }

  start(): this {
    if (this.#handle === undefined) this.#handle = this.#deps.setInterval(this.#sample, this.#periodMs);
    return this;
  }

  stop(): void {
    if (this.#handle === undefined) return;
    this.#deps.clearInterval(this.#handle);
    this.#handle = undefined;
  }

  readonly #sample = (): void => {
    const cpu = this.#deps.cpuMicros();
    const share = (cpu - this.#lastCpu) / (this.#periodMs * 1_000);
    this.#lastCpu = cpu;
    if (share >= BUSY_SHARE) {
      this.#busy = true;
      this.#quiet = 0;
      return;
    }
    if (!this.#busy) return;
    this.#quiet = share < QUIET_SHARE ? this.#quiet + 1 : 0;
    if (this.#quiet < QUIET_PERIODS) return;
    this.#busy = false;
    this.#quiet = 0;
    this.#collections++;
    this.#deps.collect();
  };
}

/**
 * The process's own trim: real CPU time, V8's gc() (exposed here), an unref'd interval. gc() is taken from a new
 * context made at each collection and dropped after it (a context kept from the start costs an idle proxy ~0.3 MB).
 */
export async function startIdleHeapTrim(): Promise<IdleHeapTrim> {
  const [v8, vm] = await Promise.all([import('node:v8'), import('node:vm')]);
  v8.setFlagsFromString('--expose-gc');
  return new IdleHeapTrim({
    cpuMicros: () => {
      const u = process.cpuUsage();
      return u.user + u.system;
    },
    collect: () => { (vm.runInNewContext('gc') as () => void)(); },
    setInterval: (fn, ms) => {
      const t = setInterval(fn, ms);
      t.unref();
      return t;
    },
    clearInterval: (h) => { clearInterval(h as NodeJS.Timeout); },
  }).start();
}
