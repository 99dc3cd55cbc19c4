// Optional active health checking: every endpoint is probed periodically (a TCP connect in production; the probe
// is injected, so this logic is tested without sockets). `unhealthyThreshold` failures in a row mark an endpoint
// unhealthy, `healthyThreshold` successes in a row mark it healthy again. Endpoints start healthy (discovery
// already vouched for them) and get their first probe within the first jitter window, so a fleet of sidecars
// does not probe in lockstep. A probe that throws, resolves false, or outlives `timeoutMs` is a failure.
import type { Timers, TimerHandle } from '../clock.js';
import { systemTimers } from '../clock.js';
import type { RandomSource, UpstreamEndpoint } from '../picker.js';

/** Resolves true if the endpoint is healthy. Must honour `signal` (aborted on timeout or shutdown). */
export type HealthProbe = (endpoint: UpstreamEndpoint, signal: AbortSignal) => Promise<boolean>;

export interface ActiveHealthOptions {
  readonly probe: HealthProbe;
  /** Time between probes of one endpoint. Default 10 s. */
  readonly intervalMs?: number;
  /** A probe not settled after this long is a failure. Default 1 s. */
  readonly timeoutMs?: number;
  /** Each interval is varied by up to +/- this fraction of itself (0..1). Default 0.1. */
  readonly jitter?: number;
  /** Consecutive successes that bring an unhealthy endpoint back. Default 2. */
  readonly healthyThreshold?: number;
  /** Consecutive failures that mark a healthy endpoint unhealthy. Default 3. */
  readonly unhealthyThreshold?: number;
  /** Health of an endpoint before its first probe. Default true. */
  readonly initialHealthy?: boolean;
  readonly timers?: Timers;
  readonly random?: RandomSource;
  /** Called when an endpoint's health flips (not for its initial state). */
  readonly onChange?: (key: string, healthy: boolean) => void;
  /** Called when a probe throws or rejects (it counts as failed) or onChange throws; for logging. */
  readonly onError?: (key: string, err: unknown) => void;
}

export const DEFAULT_ACTIVE_HEALTH = Object.freeze({
  intervalMs: 10_000,
  timeoutMs: 1_000,
  jitter: 0.1,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  initialHealthy: true,
});

interface Target {
  endpoint: UpstreamEndpoint;
  healthy: boolean;
  successes: number;
  failures: number;
  timer: TimerHandle | null;
  inflight: Promise<boolean> | null;
  abort: AbortController | null;
  removed: boolean;
}

export class ActiveHealthChecker {
  readonly #probe: HealthProbe;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #jitter: number;
  readonly #healthyThreshold: number;
  readonly #unhealthyThreshold: number;
  readonly #initialHealthy: boolean;
  readonly #timers: Timers;
  readonly #random: RandomSource;
  readonly #onChange: ((key: string, healthy: boolean) => void) | undefined;
  readonly #onError: ((key: string, err: unknown) => void) | undefined;
  readonly #targets = new Map<string, Target>();
  #closed = false;

  constructor(options: ActiveHealthOptions) {
    const o = { ...DEFAULT_ACTIVE_HEALTH, ...options };
    this.#probe = o.probe;
    this.#intervalMs = Math.max(1, o.intervalMs);
    this.#timeoutMs = Math.max(1, o.timeoutMs);
    this.#jitter = Math.min(1, Math.max(0, o.jitter));
    this.#healthyThreshold = Math.max(1, Math.floor(o.healthyThreshold));
    this.#unhealthyThreshold = Math.max(1, Math.floor(o.unhealthyThreshold));
    this.#initialHealthy = o.initialHealthy;
    this.#timers = options.timers ?? systemTimers;
    this.#random = options.random ?? Math.random;
    this.#onChange = options.onChange;
    this.#onError = options.onError;
  }

  /** Starts probing new endpoints, stops probing removed ones; endpoints kept keep their state. */
  setEndpoints(endpoints: readonly UpstreamEndpoint[]): void {
    if (this.#closed) return;
    const keep = new Set(endpoints.map((e) => e.key));
    for (const [key, t] of this.#targets) if (!keep.has(key)) this.#stop(key, t);
    for (const e of endpoints) {
      const t = this.#targets.get(e.key);
      if (t !== undefined) {
        t.endpoint = e;
        continue;
      }
      const target: Target = {
        endpoint: e, healthy: this.#initialHealthy, successes: 0, failures: 0,
        timer: null, inflight: null, abort: null, removed: false,
      };
      this.#targets.set(e.key, target);
      this.#schedule(target, this.#intervalMs * this.#jitter * this.#random());
    }
  }

  /** Health of a known endpoint; undefined for keys not being checked. */
  isHealthy(key: string): boolean | undefined {
    return this.#targets.get(key)?.healthy;
  }

  /** Probes one endpoint now (joining a probe already in flight); resolves to its health afterwards. */
  async checkNow(key: string): Promise<boolean | undefined> {
    const t = this.#targets.get(key);
    if (t === undefined) return undefined;
    await this.#run(t);
    return t.healthy;
  }

  /** Stops every timer and aborts probes in flight. */
  close(): void {
    this.#closed = true;
    for (const [key, t] of this.#targets) this.#stop(key, t);
  }

  #stop(key: string, t: Target): void {
    t.removed = true;
    if (t.timer !== null) this.#timers.clearTimeout(t.timer);
    t.timer = null;
    t.abort?.abort();
    this.#targets.delete(key);
  }

  #schedule(t: Target, delayMs: number): void {
    if (t.removed || this.#closed) return;
    if (t.timer !== null) this.#timers.clearTimeout(t.timer);
    t.timer = this.#timers.setTimeout(() => {
      t.timer = null;
      void this.#run(t).then(() => this.#schedule(t, this.#nextDelay()));
    }, delayMs);
  }

  #nextDelay(): number {
    return this.#intervalMs * (1 + this.#jitter * (2 * this.#random() - 1));
  }

  #run(t: Target): Promise<boolean> {
    if (t.inflight !== null) return t.inflight;
    const p = this.#probeOnce(t).then((ok) => {
      t.inflight = null;
      t.abort = null;
      if (!t.removed) this.#record(t, ok);
      return ok;
    });
    t.inflight = p;
    return p;
  }

  async #probeOnce(t: Target): Promise<boolean> {
    const ac = new AbortController();
    t.abort = ac;
    const timer = this.#timers.setTimeout(() => ac.abort(new Error('health probe timed out')), this.#timeoutMs);
    // Settles false on timeout, or when the endpoint is removed / the checker closed.
    const aborted = new Promise<boolean>((resolve) => {
      ac.signal.addEventListener('abort', () => resolve(false), { once: true });
    });
    let probed: Promise<boolean>;
    try {
      probed = this.#probe(t.endpoint, ac.signal).then((ok) => ok === true, (err: unknown) => {
        this.#onError?.(t.endpoint.key, err);
        return false;
      });
    } catch (err) {
      this.#onError?.(t.endpoint.key, err);
      probed = Promise.resolve(false);
    }
    try {
      return await Promise.race([probed, aborted]);
    } finally {
      this.#timers.clearTimeout(timer);
    }
  }

  #record(t: Target, ok: boolean): void {
    if (ok) {
      t.failures = 0;
      t.successes++;
      if (!t.healthy && t.successes >= this.#healthyThreshold) this.#flip(t, true);
    } else {
      t.successes = 0;
      t.failures++;
      if (t.healthy && t.failures >= this.#unhealthyThreshold) this.#flip(t, false);
    }
  }

  #flip(t: Target, healthy: boolean): void {
    t.healthy = healthy;
    t.successes = 0;
    t.failures = 0;
    try {
      this.#onChange?.(t.endpoint.key, healthy);
    } catch (err) {
      this.#onError?.(t.endpoint.key, err);
    }
  }
}
