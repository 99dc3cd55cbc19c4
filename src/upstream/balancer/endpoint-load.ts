// The live load of one endpoint, shared by every balancer of its cluster: what is in flight on it right now (an L4
// connection or an L7 request attempt counts one each) and a peak-EWMA estimate of its latency (the latency of
// request attempts; failed attempts and failed connects, L4 or L7, count as the failure penalty). Pickers read it on
// every pick; the cluster updates it as connections and attempts start and end. Only numbers change: a picker's snapshot of endpoints never does.
//
// Peak EWMA (Finagle / linkerd2-proxy): reading decays the estimate toward 0 with time, so an idle endpoint that was
// slow gets probed again; an observation above the estimate replaces it (peak); below it, it is blended in with
// weight 1 - e^(-elapsed/decay). An endpoint never observed starts at defaultRttMs. A failed attempt is observed as
// max(its latency, failurePenaltyMs), so an endpoint that fails fast does not attract traffic.
import type { Clock } from '../clock.js';

export interface EwmaSettings {
  /** Time constant of the decay (ms). */
  readonly decayMs: number;
  /** Estimate of an endpoint never observed (ms). */
  readonly defaultRttMs: number;
  /** Observation recorded for a failed attempt, at least (ms); 0 = failures observe their own latency only. */
  readonly failurePenaltyMs: number;
}

export const DEFAULT_EWMA: EwmaSettings = Object.freeze({ decayMs: 10_000, defaultRttMs: 30, failurePenaltyMs: 1_000 });

export class EndpointLoad {
  /** Connections and request attempts in flight on the endpoint. */
  active = 0;
  #rtt: number;
  #stamp: number;
  #observed = false;
  readonly #clock: Clock;
  readonly #ewma: EwmaSettings;

  constructor(clock: Clock, ewma: EwmaSettings = DEFAULT_EWMA) {
    this.#clock = clock;
    this.#ewma = ewma;
    this.#rtt = ewma.defaultRttMs;
    this.#stamp = clock.now();
  }

  /** The latency estimate decayed to now (ms). */
  rtt(): number {
    const elapsed = Math.max(0, this.#clock.now() - this.#stamp);
    return this.#rtt * Math.exp(-elapsed / Math.max(1, this.#ewma.decayMs));
  }

  /** Peak-EWMA cost: rtt x (active + 1). */
  cost(): number {
    return this.rtt() * (this.active + 1);
  }

  /** Record one latency observation (ms); `failed` applies the failure penalty. */
  observe(latencyMs: number, failed: boolean): void {
    const rtt = failed ? Math.max(latencyMs, this.#ewma.failurePenaltyMs) : latencyMs;
    if (!(rtt >= 0)) return;
    const now = this.#clock.now();
    const elapsed = Math.max(0, now - this.#stamp);
    if (rtt > this.#rtt || !this.#observed) {
      this.#rtt = rtt;
      this.#observed = true;
    } else {
      const w = Math.exp(-elapsed / Math.max(1, this.#ewma.decayMs));
      this.#rtt = this.#rtt * w + rtt * (1 - w);
    }
    this.#stamp = now;
  }
}
