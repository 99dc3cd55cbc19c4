// What the HTTP/1.1 and HTTP/2 engines share for their drain: waiting until their last downstream connection is gone,
// bounded by a grace period, and the shutdown that does it.

/** Waiters resolved when a set of connections becomes empty. */
export class EmptyWaiters {
  readonly #size: () => number;
  #waiters: (() => void)[] = [];

  constructor(size: () => number) {
    this.#size = size;
  }

  /** Resolves when no connection is left (at once when none is). */
  wait(): Promise<void> {
    if (this.#size() === 0) return Promise.resolve();
    return new Promise((resolve) => { this.#waiters.push(resolve); });
  }

  /** A connection closed: resolve the waiters if it was the last one. */
  closed(): void {
    if (this.#size() > 0 || this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/** Resolves when `empty` does, or after `graceMs`, whichever comes first (the timer never outlives it). */
export async function emptyWithin(empty: Promise<void>, graceMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([empty, new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs); })]);
  clearTimeout(timer);
}

/** The part of an engine its shutdown drives. */
export interface DrainableEngine {
  /** Close what is idle now, the rest as it becomes idle (HTTP/2: GOAWAY to every connection). */
  closeIdle(): void;
  whenEmpty(): Promise<void>;
  destroyAll(): void;
}

/** Shut an engine down: close what is idle, wait up to `graceMs` for the rest, then destroy what is left. */
export async function shutdownEngine(engine: DrainableEngine, graceMs: number): Promise<void> {
  engine.closeIdle();
  await emptyWithin(engine.whenEmpty(), graceMs);
  engine.destroyAll();
}
