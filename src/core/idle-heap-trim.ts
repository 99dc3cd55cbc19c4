// Gives memory back when the proxy is quiet. Under load V8 grows its young generation (up to 2 x 16 MB) and keeps it,
// and freed Buffers stay in the C library's malloc arenas: once the traffic stops, nothing shrinks either, so the proxy
// would stay tens of MB above its idle RSS for as long as it stays quiet. This watches the process's CPU time: after a
// period in which the process was busy (at least BUSY_SHARE of a core), quiet periods in a row (below QUIET_SHARE)
// trigger two releases, each at most once per busy -> quiet change and never while busy:
//   'idle'       after QUIET_PERIODS (10 s): the malloc arenas only (malloc_trim). V8's heap and its compiled code are
//                left alone, so traffic that comes back after a pause finds its code still optimized;
//   'long-idle'  after LONG_QUIET_PERIODS (60 s): V8's heap as well (the low-memory notification: full collections,
//                the young generation shrunk, compiled code and caches dropped).
// Why two: the low-memory notification also throws away the optimized code of the request path, and the traffic that
// follows pays for recompiling it. Measured at 1,000 rps right after a 10 s pause (docs/performance-notes.md, "Issue
// 15, eighth part"), the first seconds cost about twice the CPU per request and +1.5-2 ms of p99, where the malloc
// release alone cost nothing measurable. A proxy quiet for a minute is idle, not between bursts: it gets all back.
// One more release, settle(), runs once just after the start ('start', the full release): the start's garbage (parse
// trees, the config's intermediate objects, compilation caches) is ~4 MB of an idle proxy's RSS, which V8 alone gives
// back only ~10 s later, and no request path has been compiled yet.
//
// The release is the native addon's releaseMemory(heap) (native/src/memory_release.cc: V8's low-memory notification
// when heap is true, then malloc_trim, ~20-30 ms on an idle proxy's heap), or, with an addon built before it, V8's
// gc() (exposed at run time by v8.setFlagsFromString('--expose-gc')): the young generation only, not the malloc
// arenas; the gc() fallback runs for the full releases only.

import { nodeV8, nodeVm } from './lazy-builtins.js';
import type { Logger } from './log.js';
import { hasMemoryRelease, loadNativeAddon, type NativeAddon } from './native-addon.js';

/**
 * Why a release runs: the end of the start (settle()), 10 s of quiet after a busy period (malloc only), or a minute of
 * it (V8's heap too).
 */
export type ReleaseTrigger = 'start' | 'idle' | 'long-idle';

/** Whether a release of this trigger includes V8's heap (and with it the compiled code), not only malloc's pages. */
export function releasesHeap(trigger: ReleaseTrigger): boolean {
  return trigger !== 'idle';
}

export interface HeapTrimDeps {
  /** CPU time of the process so far, in microseconds (user + system). */
  cpuMicros(): number;
  /** Give memory back: free malloc pages, and with releasesHeap(trigger) V8's heap too. */
  collect(trigger: ReleaseTrigger): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** How often the CPU time is sampled. */
export const TRIM_PERIOD_MS = 5_000;
/** A period with at least this share of one core counts as busy. */
export const BUSY_SHARE = 0.05;
/** A period below this share of one core counts as quiet. */
export const QUIET_SHARE = 0.01;
/** Quiet periods in a row before the malloc release ('idle'). */
export const QUIET_PERIODS = 2;
/** Quiet periods in a row before the full release ('long-idle'): a minute. */
export const LONG_QUIET_PERIODS = 12;

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

  /** One release now, outside the busy/quiet cycle: for the end of the start. */
  settle(): void {
    this.#collections++;
    this.#deps.collect('start');
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
    if (this.#quiet === QUIET_PERIODS) {
      this.#collections++;
      this.#deps.collect('idle');
    } else if (this.#quiet === LONG_QUIET_PERIODS) {
      this.#busy = false;
      this.#quiet = 0;
      this.#collections++;
      this.#deps.collect('long-idle');
    }
  };
}

/** After the start is done (listeners up, first runtime built), the start's garbage is released this much later. */
export const SETTLE_DELAY_MS = 200;

/**
 * The process's own trim: real CPU time, the addon's releaseMemory() (or V8's gc() without it), an unref'd interval,
 * and settle() once SETTLE_DELAY_MS after this call (made when the proxy is ready). Each release is one info record,
 * event `memory.released`: trigger, whether V8's heap was released too (`heap`), RSS before and after (MB), the time
 * it took (ms), and whether malloc_trim returned pages (`trimmed`, absent with the gc() fallback).
 */
export function startIdleHeapTrim(log: Logger): IdleHeapTrim {
  const release = releaseFunction();
  const mb = (bytes: number): number => Math.round(bytes / 104_857.6) / 10;
  const trim = new IdleHeapTrim({
    cpuMicros: () => {
      const u = process.cpuUsage();
      return u.user + u.system;
    },
    collect: (trigger) => {
      const rssBefore = process.memoryUsage.rss();
      const t0 = process.hrtime.bigint();
      const trimmed = release(trigger);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const rssAfter = process.memoryUsage.rss();
      log.info({
        event: 'memory.released', trigger, heap: releasesHeap(trigger), rssBeforeMb: mb(rssBefore), rssAfterMb: mb(rssAfter),
        ms: Math.round(ms * 10) / 10,
        ...(trimmed === undefined ? {} : { trimmed: trimmed === 1 }),
      }, 'memory given back');
    },
    setInterval: (fn, ms) => {
      const t = setInterval(fn, ms);
      t.unref();
      return t;
    },
    clearInterval: (h) => { clearInterval(h as NodeJS.Timeout); },
  }).start();
  setTimeout(() => { trim.settle(); }, SETTLE_DELAY_MS).unref();
  return trim;
}

/** The release: releaseMemory()'s answer (1: malloc_trim returned pages), or undefined with the gc() fallback. */
function releaseFunction(): (trigger: ReleaseTrigger) => number | undefined {
  let addon: NativeAddon | undefined;
  try {
    addon = loadNativeAddon();
  } catch {
    addon = undefined; // the proxy reports a missing addon where it needs it; here gc() is the fallback
  }
  if (addon !== undefined && hasMemoryRelease(addon)) {
    const release = addon;
    return (trigger) => release.releaseMemory(releasesHeap(trigger));
  }
  // gc() is taken from a new context made at each collection and dropped after it (a context kept from the start
  // costs an idle proxy ~0.3 MB).
  nodeV8().setFlagsFromString('--expose-gc');
  return (trigger) => {
    if (releasesHeap(trigger)) (nodeVm().runInNewContext('gc') as () => void)();
    return undefined;
  };
}
