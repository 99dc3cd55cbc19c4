// The process's monotonic clock in milliseconds (fractional: nanosecond source), for durations and deadlines, and its
// mapping to wall-clock time for timestamps in logs and spans. Built on process.hrtime() rather than
// performance.now(): node:perf_hooks (and the global `performance`, which loads the same modules) costs an idle proxy
// ~0.35 MB of RSS (docs/performance-notes.md, "Issue 15, fourth part"), and performance.now() in Node 20 is
// process.hrtime() underneath.

/** Milliseconds on the process's monotonic scale (only differences are meaningful). */
export function monotonicMs(): number {
  const t = process.hrtime();
  return t[0] * 1e3 + t[1] / 1e6;
}

/** Unix epoch milliseconds at monotonic 0, read once (within a millisecond: Date.now()'s resolution). */
const EPOCH_AT_ZERO_MS = Date.now() - monotonicMs();

/** A monotonicMs() reading -> Unix epoch milliseconds (fractional). */
export function epochMsAt(mono: number): number {
  return EPOCH_AT_ZERO_MS + mono;
}
