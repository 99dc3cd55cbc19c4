// When a worker that exited is started again (pure): at most MAX_RESTARTS restarts within RESTART_WINDOW_MS over all
// workers (beyond that the proxy stops with exit code 1: a crash loop is the container's to restart, not hidden),
// each after a delay doubling with the restarts in the window (100 ms, 200 ms, ... at most 5 s).

/** Restarts allowed within RESTART_WINDOW_MS before the proxy gives up (exit 1). */
export const MAX_RESTARTS = 5;
export const RESTART_WINDOW_MS = 60_000;
const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 5_000;

export type RestartDecision = { readonly restart: true; readonly delayMs: number } | { readonly restart: false; readonly recent: number };

/** `history`: the times of the restarts so far (any worker); the caller records `now` when it restarts. */
export function restartDecision(history: readonly number[], now: number): RestartDecision {
  const recent = history.filter((t) => now - t <= RESTART_WINDOW_MS).length;
  if (recent >= MAX_RESTARTS) return { restart: false, recent };
  return { restart: true, delayMs: Math.min(FIRST_DELAY_MS * 2 ** recent, MAX_DELAY_MS) };
}
