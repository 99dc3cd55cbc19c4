// The one passive-health machine of a cluster (Envoy's outlier detection, plus Linkerd-style probation and
// Envoy-style slow start on return). It hears every connect result (from the cluster's connect path, L4 and L7
// alike) and every request outcome (from the L7 router), and decides which endpoints are ejected. Pure and
// synchronous over an injected clock: the cluster calls tick() every interval and publishes new pickers when
// ejections start or end.
//
// Detectors, each counting failures in a row per endpoint (any success of that kind resets the run):
//   * connect failures (refused, unreachable, connect timeout): ejected at consecutiveConnectFailures
//     ([service] eject_after_failures). A TLS handshake failure is not counted: the endpoint accepted TCP;
//   * gateway errors (502, 503, 504 responses, and resets and per-try timeouts of requests): ejected at
//     consecutiveGatewayErrors;
//   * 5xx (any 5xx response, and resets and timeouts): ejected at consecutive5xx (0 = off, the default);
//   * success rate (opt-in): every interval, among endpoints with at least requestVolume requests in the interval —
//     when there are at least minHosts of them — the ones below mean - stdevFactor x stdev are ejected.
// A gRPC response counts by its grpc-status (UNAVAILABLE like 503, DEADLINE_EXCEEDED like 504, INTERNAL, UNKNOWN and
// DATA_LOSS like 500). Results that arrive for an endpoint while it is ejected (work that was in flight) are ignored.
//
// Ejection: lasts baseEjectionMs x (times ejected), capped at maxEjectionMs, plus up to ejectionJitterMs; the
// multiplier drops by one for every interval the endpoint spends in service. At most maxEjectedPercent of the
// endpoints are ejected at once (at least one when the percentage is above 0), and never the last endpoint in
// service: ejecting it would turn some failures into certain failures. When membership shrinks below what the
// current ejections allow, the ejections closest to their end are ended early.
// Return: on probation — the first result recorded for it decides: a failure a detector counts ejects it again at
// once (with the grown multiplier), a success ends the probation.
// Slow start: for slowStartMs after its return, weightFactor() ramps linearly from slowStartMinWeightPercent to 1.
import type { OutlierConfig, SuccessRateConfig } from '../../config/traffic-policy-spec.js';
import type { Clock } from '../clock.js';
import type { AttemptOutcome } from './attempt-outcome.js';

export interface HealthConfig extends OutlierConfig {
  /** Consecutive connect failures that eject; 0 = off. */
  readonly consecutiveConnectFailures: number;
}

export type EjectionReason =
  | 'consecutive-connect-failure' | 'consecutive-5xx' | 'consecutive-gateway-error' | 'success-rate' | 'probation-failure';

export const EJECTION_REASONS: readonly EjectionReason[] = Object.freeze([
  'consecutive-connect-failure', 'consecutive-5xx', 'consecutive-gateway-error', 'success-rate', 'probation-failure',
]);

export type HealthEvent =
  | {
    readonly kind: 'ejected'; readonly endpoint: string; readonly reason: EjectionReason; readonly untilMs: number;
    readonly durationMs: number; readonly ejectionCount: number;
  }
  /** A detector asked for an ejection that the max-ejected share (or the last-endpoint rule) refused. */
  | { readonly kind: 'refused'; readonly endpoint: string; readonly reason: EjectionReason }
  | { readonly kind: 'returned'; readonly endpoint: string };

export interface OutlierStats {
  readonly endpoints: number;
  readonly ejected: number;
  readonly ejections: Readonly<Record<EjectionReason, number>>;
  /** Ejections a detector asked for but the max-ejected share (or the last-endpoint rule) refused. */
  readonly ejectionsRefused: number;
}

export interface EndpointHealthState {
  readonly key: string;
  readonly ejected: boolean;
  /** Clock ms the current ejection ends. */
  readonly ejectedUntilMs: number | undefined;
  /** The ejection multiplier (times ejected, decaying while in service). */
  readonly ejectionCount: number;
  /** Ejections since the endpoint joined. */
  readonly totalEjections: number;
  readonly consecutiveConnectFailures: number;
  readonly consecutive5xx: number;
  readonly consecutiveGatewayErrors: number;
  readonly weightFactor: number;
  readonly onProbation: boolean;
}

interface State {
  connectFailures: number;
  consecutive5xx: number;
  consecutiveGateway: number;
  windowTotal: number;
  windowSuccess: number;
  ejectionCount: number;
  total: number;
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

function zeroReasons(): Record<EjectionReason, number> {
  return {
    'consecutive-connect-failure': 0, 'consecutive-5xx': 0, 'consecutive-gateway-error': 0, 'success-rate': 0,
    'probation-failure': 0,
  };
}

export class OutlierDetector {
  readonly #config: HealthConfig;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #states = new Map<string, State>();
  readonly #ejections = zeroReasons();
  #refused = 0;
  #intervalStart: number;

  constructor(config: HealthConfig, clock: Clock, random: () => number = Math.random) {
    this.#config = config;
    this.#clock = clock;
    this.#random = random;
    this.#intervalStart = clock.now();
  }

  get config(): HealthConfig {
    return this.#config;
  }

  /**
   * The endpoints of the cluster: others are forgotten, new ones start clean. If the ejections left now exceed
   * what the new membership allows, the ones closest to their end return early (returned in the events).
   */
  setEndpoints(keys: Iterable<string>): HealthEvent[] {
    const want = new Set(keys);
    for (const k of this.#states.keys()) if (!want.has(k)) this.#states.delete(k);
    for (const k of want) this.#state(k);
    const now = this.#clock.now();
    const ejected = [...this.#states].filter(([, s]) => s.ejectedUntil > now).sort((a, b) => a[1].ejectedUntil - b[1].ejectedUntil);
    const allowed = this.#maxEjected(this.#states.size);
    const events: HealthEvent[] = [];
    for (let i = 0; i < ejected.length - allowed; i++) {
      const [key, s] = ejected[i] as [string, State];
      s.ejectedUntil = now;
      s.ejectedFlag = false;
      s.probation = this.#config.probation;
      events.push({ kind: 'returned', endpoint: key });
    }
    return events;
  }

  /** A connect to `endpoint` finished: `ok` = TCP connected (a TLS failure after that is not the endpoint's). */
  recordConnect(endpoint: string, ok: boolean): HealthEvent | undefined {
    const now = this.#clock.now();
    const s = this.#states.get(endpoint);
    if (s === undefined || s.ejectedUntil > now) return undefined;
    if (ok) {
      s.connectFailures = 0;
      s.probation = false;
      return undefined;
    }
    s.connectFailures++;
    const c = this.#config;
    if (c.consecutiveConnectFailures <= 0) return undefined;
    if (s.probation) {
      s.probation = false;
      return this.#eject(endpoint, s, 'probation-failure', now);
    }
    if (s.connectFailures >= c.consecutiveConnectFailures) return this.#eject(endpoint, s, 'consecutive-connect-failure', now);
    return undefined;
  }

  /**
   * The outcome of a request attempt on `endpoint` (connect failures are recorded by recordConnect, not here).
   * Returns the ejection (or refused ejection) it caused, if any.
   */
  recordOutcome(endpoint: string, outcome: AttemptOutcome): HealthEvent | undefined {
    if (outcome.kind === 'connect-failure') return undefined;
    const now = this.#clock.now();
    const s = this.#states.get(endpoint);
    if (s === undefined || s.ejectedUntil > now) return undefined;
    const verdict = classify(outcome);
    s.windowTotal++;
    const c = this.#config;
    const counted = verdict === 'gateway' ? c.consecutiveGatewayErrors > 0 || c.consecutive5xx > 0
      : verdict === '5xx' ? c.consecutive5xx > 0 : false;
    if (verdict === 'success') {
      s.windowSuccess++;
      s.consecutive5xx = 0;
      s.consecutiveGateway = 0;
      s.connectFailures = 0;
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
   * Returns due, and when an interval has elapsed: success-rate ejection, multiplier decay, a new window. Ejection
   * itself is time-based: isEjected() is exact without tick().
   */
  tick(): HealthEvent[] {
    const now = this.#clock.now();
    const events: HealthEvent[] = [];
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
    return s === undefined ? 1 : this.#factor(s, this.#clock.now());
  }

  /** Clock ms of the next change a picker must reflect (an ejection ending, a slow-start step), or Infinity. */
  nextChangeAt(slowStartStepMs: number): number {
    const now = this.#clock.now();
    let next = Infinity;
    const ramp = this.#config.slowStartMs;
    for (const s of this.#states.values()) {
      if (s.ejectedUntil > now) next = Math.min(next, s.ejectedUntil);
      else if (ramp > 0 && s.ejectedUntil > -Infinity && now - s.ejectedUntil < ramp) {
        next = Math.min(next, now + Math.max(1, slowStartStepMs), s.ejectedUntil + ramp);
      }
    }
    return next;
  }

  /** Keys of the endpoints ejected now. */
  ejected(): string[] {
    const now = this.#clock.now();
    return [...this.#states].filter(([, s]) => s.ejectedUntil > now).map(([k]) => k);
  }

  stats(): OutlierStats {
    return { endpoints: this.#states.size, ejected: this.ejected().length, ejections: { ...this.#ejections }, ejectionsRefused: this.#refused };
  }

  state(key: string): EndpointHealthState | undefined {
    const s = this.#states.get(key);
    if (s === undefined) return undefined;
    const now = this.#clock.now();
    return {
      key,
      ejected: s.ejectedUntil > now,
      ejectedUntilMs: s.ejectedUntil > now ? s.ejectedUntil : undefined,
      ejectionCount: s.ejectionCount,
      totalEjections: s.total,
      consecutiveConnectFailures: s.connectFailures,
      consecutive5xx: s.consecutive5xx,
      consecutiveGatewayErrors: s.consecutiveGateway,
      weightFactor: this.#factor(s, now),
      onProbation: s.probation,
    };
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
        connectFailures: 0, consecutive5xx: 0, consecutiveGateway: 0, windowTotal: 0, windowSuccess: 0, ejectionCount: 0,
        total: 0, ejectedUntil: Number.NEGATIVE_INFINITY, ejectedFlag: false, probation: false,
      };
      this.#states.set(key, s);
    }
    return s;
  }

  /** floor(members x percent), at least one when the percentage is above 0, and never every member. */
  #maxEjected(members: number): number {
    const pct = this.#config.maxEjectedPercent;
    if (pct <= 0 || members <= 1) return 0;
    return Math.min(members - 1, Math.max(1, Math.floor((members * pct) / 100)));
  }

  #eject(key: string, s: State, reason: EjectionReason, now: number): HealthEvent {
    let ejected = 0;
    for (const x of this.#states.values()) if (x.ejectedUntil > now) ejected++;
    if (ejected >= this.#maxEjected(this.#states.size)) {
      this.#refused++;
      return { kind: 'refused', endpoint: key, reason };
    }
    const c = this.#config;
    s.ejectionCount++;
    s.total++;
    const jitter = c.ejectionJitterMs > 0 ? Math.floor(this.#random() * c.ejectionJitterMs) : 0;
    const durationMs = Math.min(c.baseEjectionMs * s.ejectionCount, Math.max(c.baseEjectionMs, c.maxEjectionMs)) + jitter;
    s.ejectedUntil = now + durationMs;
    s.ejectedFlag = true;
    s.connectFailures = 0;
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    s.probation = c.probation;
    this.#ejections[reason]++;
    return { kind: 'ejected', endpoint: key, reason, untilMs: s.ejectedUntil, durationMs, ejectionCount: s.ejectionCount };
  }

  #successRate(sr: SuccessRateConfig, now: number): HealthEvent[] {
    const hosts = [...this.#states].filter(([, s]) => s.ejectedUntil <= now && s.windowTotal >= sr.requestVolume && s.windowTotal > 0);
    if (hosts.length < sr.minHosts || hosts.length === 0) return [];
    const rates = hosts.map(([k, s]) => ({ k, s, rate: (100 * s.windowSuccess) / s.windowTotal }));
    const mean = rates.reduce((a, r) => a + r.rate, 0) / rates.length;
    const variance = rates.reduce((a, r) => a + (r.rate - mean) ** 2, 0) / rates.length;
    const threshold = mean - sr.stdevFactor * Math.sqrt(variance);
    const events: HealthEvent[] = [];
    for (const r of rates.filter((x) => x.rate < threshold).sort((a, b) => a.rate - b.rate)) {
      events.push(this.#eject(r.k, r.s, 'success-rate', now));
    }
    return events;
  }
}
