// Passive health per endpoint from the outcomes of real requests (Envoy's outlier detection, plus Linkerd-style
// probation and Envoy-style slow start on return). Pure and synchronous with an injected clock: the engine calls
// record() after every attempt and tick() from a timer (every intervalMs is enough; more often is harmless), and asks
// isEjected() / weightFactor() when it builds the candidates for a pick.
//
// Detectors:
//   * consecutive gateway errors (502, 503, 504, and the local-origin failures: connect failure, reset, timeout —
//     Envoy maps those to 503 when it does not split local and external errors): ejected at the Nth in a row;
//   * consecutive 5xx (any 5xx and the local-origin failures): ejected at the Nth in a row;
//   * success rate (opt-in): every interval, among endpoints with at least requestVolume requests in the interval —
//     when there are at least minHosts of them — endpoints whose success rate is below mean - stdevFactor * stdev
//     are ejected.
// A gRPC response counts by its grpc-status (UNAVAILABLE like 503, DEADLINE_EXCEEDED like 504, INTERNAL, UNKNOWN and
// DATA_LOSS like 500). Outcomes that arrive for an endpoint while it is ejected (requests that were in flight) are
// ignored.
//
// Ejection: lasts baseEjectionMs * (number of times ejected), capped at maxEjectionMs; the multiplier drops by one
// for every interval the endpoint spends in service without being ejected. At most maxEjectedPercent of the
// endpoints are ejected at once (at least one when the percentage is above 0), and never the last endpoint in
// service: ejecting it would turn some failures into certain failures (no-healthy-upstream).
// Return: an endpoint back from ejection is on probation — if the first outcome recorded for it is a failure that
// a detector counts, it is ejected again at once (with the grown multiplier) instead of needing N more failures.
// Slow start ("gradual return"): for slowStartMs after its return, weightFactor() ramps linearly from
// slowStartMinWeightPercent to 100 %, so balancers send a returning endpoint a growing share instead of a full
// share of traffic at once (Envoy's slow_start_config with aggression 1).
import type { OutlierConfig, SuccessRateConfig } from '../../config/traffic-policy-spec.js';
import type { AttemptOutcome } from './attempt-outcome.js';





export type EjectionReason = 'consecutive-5xx' | 'consecutive-gateway-error' | 'success-rate' | 'probation-failure';

export type OutlierEvent =
  | { readonly kind: 'ejected'; readonly endpoint: string; readonly reason: EjectionReason; readonly untilMs: number; readonly ejectionCount: number }
  | { readonly kind: 'returned'; readonly endpoint: string };

export interface OutlierStats {
  readonly endpoints: number;
  readonly ejected: number;
  readonly ejections: Readonly<Record<EjectionReason, number>>;
  /** Ejections a detector asked for but the max-ejected share (or the last-endpoint rule) refused. */
  readonly ejectionsRefused: number;
}

export interface EndpointOutlierState {
  readonly key: string;
  readonly ejected: boolean;
  readonly ejectedUntilMs: number | undefined;
  readonly ejectionCount: number;
  readonly consecutive5xx: number;
  readonly consecutiveGatewayErrors: number;
  readonly weightFactor: number;
}

interface State {
  consecutive5xx: number;
  consecutiveGateway: number;
  windowTotal: number;
  windowSuccess: number;
  ejectionCount: number;
  /** -Infinity when never ejected. */
  ejectedUntil: number;
  /** A 'returned' event is still due. */
  ejectedFlag: boolean;
  probation: boolean;
}

type Verdict = 'success' | '5xx' | 'gateway';

function classify(outcome: AttemptOutcome): Verdict {
  if (outcome.kind !== 'response') return 'gateway';
  const g = outcome.grpcStatus;
  if (g !== undefined && g !== 0 && outcome.status < 500) {
    if (g === 14 || g === 4) return 'gateway';
    if (g === 13 || g === 2 || g === 15) return '5xx';
    return 'success';
  }
  const s = outcome.status;
  if (s === 502 || s === 503 || s === 504) return 'gateway';
  return s >= 500 && s <= 599 ? '5xx' : 'success';
}

export class OutlierDetector {
  readonly #config: OutlierConfig;
  readonly #clock: { now(): number };
  readonly #random: () => number;
  readonly #states = new Map<string, State>();
  readonly #ejections: Record<EjectionReason, number> = {
    'consecutive-5xx': 0, 'consecutive-gateway-error': 0, 'success-rate': 0, 'probation-failure': 0,
  };
  #refused = 0;
  #intervalStart: number;

  constructor(config: OutlierConfig, clock: { now(): number }, random: () => number = Math.random) {
    this.#config = config;
    this.#clock = clock;
    this.#random = random;
    this.#intervalStart = clock.now();
  }

  get config(): OutlierConfig {
    return this.#config;
  }

  /** The endpoints of the service (others are forgotten; new ones start clean). */
  setEndpoints(keys: Iterable<string>): void {
    const want = new Set(keys);
    for (const k of this.#states.keys()) if (!want.has(k)) this.#states.delete(k);
    for (const k of want) this.#state(k);
  }

  /** Record the outcome of an attempt on `endpoint`; returns the ejection it caused, if any. */
  record(endpoint: string, outcome: AttemptOutcome): OutlierEvent | undefined {
    const now = this.#clock.now();
    const s = this.#state(endpoint);
    if (s.ejectedUntil > now) return undefined;
    const verdict = classify(outcome);
    s.windowTotal++;
    const c = this.#config;
    const counted = verdict === 'gateway' ? c.consecutiveGatewayErrors > 0 || c.consecutive5xx > 0
      : verdict === '5xx' ? c.consecutive5xx > 0 : false;
    if (verdict === 'success') {
      s.windowSuccess++;
      s.consecutive5xx = 0;
      s.consecutiveGateway = 0;
    } else if (verdict === '5xx') {
      s.consecutive5xx++;
      s.consecutiveGateway = 0;
    } else {
      s.consecutive5xx++;
      s.consecutiveGateway++;
    }
    if (s.probation) {
      s.probation = false;
      if (counted) return this.#eject(endpoint, s, 'probation-failure', now);
    }
    if (verdict === 'gateway' && c.consecutiveGatewayErrors > 0 && s.consecutiveGateway >= c.consecutiveGatewayErrors) {
      return this.#eject(endpoint, s, 'consecutive-gateway-error', now);
    }
    if (verdict !== 'success' && c.consecutive5xx > 0 && s.consecutive5xx >= c.consecutive5xx) {
      return this.#eject(endpoint, s, 'consecutive-5xx', now);
    }
    return undefined;
  }

  /**
   * Returns, interval work (success-rate ejection, multiplier decay, new window) when an interval has elapsed.
   * Ejection state itself is time-based: isEjected() is exact without tick().
   */
  tick(): OutlierEvent[] {
    const now = this.#clock.now();
    const events: OutlierEvent[] = [];
    for (const [key, s] of this.#states) {
      if (s.ejectedFlag && s.ejectedUntil <= now) {
        s.ejectedFlag = false;
        events.push({ kind: 'returned', endpoint: key });
      }
    }
    if (now - this.#intervalStart < this.#config.intervalMs) return events;
    const sr = this.#config.successRate;
    if (sr !== undefined) events.push(...this.#successRate(sr, now));
    for (const s of this.#states.values()) {
      if (s.ejectionCount > 0 && s.ejectedUntil <= this.#intervalStart) s.ejectionCount--;
      s.windowTotal = 0;
      s.windowSuccess = 0;
    }
    this.#intervalStart = now;
    return events;
  }

  isEjected(endpoint: string): boolean {
    const s = this.#states.get(endpoint);
    return s !== undefined && s.ejectedUntil > this.#clock.now();
  }

  /** 0 while ejected; during slow start after a return, between the minimum share and 1; otherwise 1. */
  weightFactor(endpoint: string): number {
    const s = this.#states.get(endpoint);
    if (s === undefined) return 1;
    return this.#factor(s, this.#clock.now());
  }

  /** Keys of the endpoints ejected now. */
  ejected(): string[] {
    const now = this.#clock.now();
    return [...this.#states].filter(([, s]) => s.ejectedUntil > now).map(([k]) => k);
  }

  stats(): OutlierStats {
    return { endpoints: this.#states.size, ejected: this.ejected().length, ejections: { ...this.#ejections }, ejectionsRefused: this.#refused };
  }

  endpointStates(): EndpointOutlierState[] {
    const now = this.#clock.now();
    return [...this.#states].map(([key, s]) => ({
      key,
      ejected: s.ejectedUntil > now,
      ejectedUntilMs: s.ejectedUntil > now ? s.ejectedUntil : undefined,
      ejectionCount: s.ejectionCount,
      consecutive5xx: s.consecutive5xx,
      consecutiveGatewayErrors: s.consecutiveGateway,
      weightFactor: this.#factor(s, now),
    }));
  }

  #factor(s: State, now: number): number {
    if (s.ejectedUntil > now) return 0;
    const ramp = this.#config.slowStartMs;
    const since = now - s.ejectedUntil;
    if (ramp <= 0 || since >= ramp) return 1;
    const min = Math.min(100, Math.max(0, this.#config.slowStartMinWeightPercent)) / 100;
    return min + (1 - min) * (since / ramp);
  }

  #state(key: string): State {
    let s = this.#states.get(key);
    if (s === undefined) {
      s = {
        consecutive5xx: 0, consecutiveGateway: 0, windowTotal: 0, windowSuccess: 0, ejectionCount: 0,
        ejectedUntil: Number.NEGATIVE_INFINITY, ejectedFlag: false, probation: false,
      };
      this.#states.set(key, s);
    }
    return s;
  }

  #mayEject(now: number): boolean {
    const n = this.#states.size;
    let ejected = 0;
    for (const s of this.#states.values()) if (s.ejectedUntil > now) ejected++;
    const pct = this.#config.maxEjectedPercent;
    const max = pct <= 0 ? 0 : Math.max(1, Math.floor((n * pct) / 100));
    return ejected < max && n - ejected > 1;
  }

  #eject(key: string, s: State, reason: EjectionReason, now: number): OutlierEvent | undefined {
    if (!this.#mayEject(now)) {
      this.#refused++;
      return undefined;
    }
    const c = this.#config;
    s.ejectionCount++;
    const jitter = c.ejectionJitterMs > 0 ? Math.floor(this.#random() * c.ejectionJitterMs) : 0;
    const duration = Math.min(c.baseEjectionMs * s.ejectionCount, Math.max(c.baseEjectionMs, c.maxEjectionMs)) + jitter;
    s.ejectedUntil = now + duration;
    s.ejectedFlag = true;
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    s.probation = c.probation;
    this.#ejections[reason]++;
    return { kind: 'ejected', endpoint: key, reason, untilMs: s.ejectedUntil, ejectionCount: s.ejectionCount };
  }

  #successRate(sr: SuccessRateConfig, now: number): OutlierEvent[] {
    const hosts = [...this.#states].filter(([, s]) => s.ejectedUntil <= now && s.windowTotal >= sr.requestVolume && s.windowTotal > 0);
    if (hosts.length < sr.minHosts || hosts.length === 0) return [];
    const rates = hosts.map(([k, s]) => ({ k, s, rate: (100 * s.windowSuccess) / s.windowTotal }));
    const mean = rates.reduce((a, r) => a + r.rate, 0) / rates.length;
    const variance = rates.reduce((a, r) => a + (r.rate - mean) ** 2, 0) / rates.length;
    const threshold = mean - sr.stdevFactor * Math.sqrt(variance);
    const events: OutlierEvent[] = [];
    for (const r of rates.filter((x) => x.rate < threshold).sort((a, b) => a.rate - b.rate)) {
      const e = this.#eject(r.k, r.s, 'success-rate', now);
      if (e !== undefined) events.push(e);
    }
    return events;
  }
}
