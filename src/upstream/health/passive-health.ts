// Passive health (outlier detection on connect failures), a pure state machine over an injected clock.
// - `consecutiveFailures` connect failures in a row eject an endpoint for base * 2^(level-1), capped at max, where
//   level counts recent ejections (one level is forgiven per `levelDecayMs` spent un-ejected).
// - An ejection never takes the ejected share of the members above `maxEjectionShare`: at most
//   floor(share x members), at least 1, and (share < 100%) never every member — so with the default 50% one
//   endpoint of any set always stays in, and a set of two or more can always eject one. A suppressed ejection is
//   retried on the next failure.
// - When its time is up an endpoint returns on probation: its first connect result decides — success clears
//   the record, failure ejects it again at once (next level) without waiting for a new run of failures.
// Callers report only local-origin connect failures (refused, unreachable, connect timeout), not resets of
// established connections, and a success for every connect that completes.
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';

export interface PassiveHealthOptions {
  /** Consecutive connect failures that eject an endpoint; 0 disables ejection. Default 5. */
  readonly consecutiveFailures?: number;
  /** First ejection time. Default 30 s. */
  readonly baseEjectionMs?: number;
  /** Cap on the ejection time. Default 300 s. */
  readonly maxEjectionMs?: number;
  /** Largest share (0..1) of members ejected at once; see maxEjected(). Default 0.5. */
  readonly maxEjectionShare?: number;
  /** Re-eject on the first failure after a return (probation). Default true. */
  readonly probation?: boolean;
  /** Un-ejected time that forgives one ejection level. Default = baseEjectionMs. */
  readonly levelDecayMs?: number;
}

export const DEFAULT_PASSIVE_HEALTH = Object.freeze({
  consecutiveFailures: 5,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionShare: 0.5,
  probation: true,
});

export type FailureOutcome =
  /** Counted; not (yet) enough failures to eject. */
  | { readonly kind: 'counted'; readonly failures: number }
  /** The endpoint is now ejected until `until` (clock ms). */
  | { readonly kind: 'ejected'; readonly until: number; readonly durationMs: number; readonly level: number }
  /** It would be ejected but the max ejection share is reached; it stays in. */
  | { readonly kind: 'suppressed'; readonly failures: number }
  /** It was already ejected (a connect that started before the ejection failed). */
  | { readonly kind: 'already-ejected' };

export interface PassiveHealthStatus {
  readonly consecutiveFailures: number;
  readonly ejected: boolean;
  /** Clock ms the current ejection ends (undefined when not ejected). */
  readonly ejectedUntil: number | undefined;
  /** Current ejection level (the next ejection lasts base * 2^level, capped). */
  readonly level: number;
  readonly totalEjections: number;
  readonly onProbation: boolean;
}

interface State {
  failures: number;
  ejected: boolean;
  until: number;
  level: number;
  /** When the last ejection ended (for level decay), or -Infinity. */
  returnedAt: number;
  probation: boolean;
  total: number;
}

export class PassiveHealth {
  readonly #threshold: number;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #share: number;
  readonly #probation: boolean;
  readonly #decayMs: number;
  readonly #clock: Clock;
  readonly #states = new Map<string, State>();

  constructor(options: PassiveHealthOptions = {}, clock: Clock = systemClock) {
    const o = { ...DEFAULT_PASSIVE_HEALTH, ...options };
    this.#threshold = Math.max(0, Math.floor(o.consecutiveFailures));
    this.#baseMs = Math.max(1, o.baseEjectionMs);
    this.#maxMs = Math.max(this.#baseMs, o.maxEjectionMs);
    this.#share = Math.min(1, Math.max(0, o.maxEjectionShare));
    this.#probation = o.probation;
    this.#decayMs = Math.max(1, options.levelDecayMs ?? this.#baseMs);
    this.#clock = clock;
  }

  get enabled(): boolean {
    return this.#threshold > 0;
  }

  /**
   * How many of `memberCount` endpoints may be ejected at once: floor(share x members), but at least one (Envoy's
   * rule, so small sets can eject at all) and, unless share is 100%, never all of them (at least one stays in).
   */
  maxEjected(memberCount: number): number {
    if (this.#share <= 0 || memberCount <= 0) return 0;
    if (this.#share >= 1) return memberCount;
    return Math.min(memberCount - 1, Math.max(1, Math.floor(this.#share * memberCount + 1e-9)));
  }

  /** Records a connect failure of `key`, one of `memberCount` members. */
  recordFailure(key: string, memberCount: number): FailureOutcome {
    const now = this.#clock.now();
    this.#sweepOne(key, now);
    const s = this.#state(key);
    if (s.ejected) return { kind: 'already-ejected' };
    s.failures++;
    const due = this.#threshold > 0 && (s.failures >= this.#threshold || (this.#probation && s.probation));
    if (!due) return { kind: 'counted', failures: s.failures };
    if (this.ejectedCount() + 1 > this.maxEjected(memberCount)) return { kind: 'suppressed', failures: s.failures };
    // Forgive one level per decay period spent un-ejected since the last return.
    if (s.returnedAt > -Infinity) s.level = Math.max(0, s.level - Math.floor((now - s.returnedAt) / this.#decayMs));
    s.level++;
    const durationMs = Math.min(this.#maxMs, this.#baseMs * 2 ** (s.level - 1));
    s.ejected = true;
    s.until = now + durationMs;
    s.failures = 0;
    s.probation = false;
    s.total++;
    return { kind: 'ejected', until: s.until, durationMs, level: s.level };
  }

  /** Records a completed connect: clears the failure run and ends probation. */
  recordSuccess(key: string): void {
    this.#sweepOne(key, this.#clock.now());
    const s = this.#states.get(key);
    // A connect that started before an ejection may still succeed: that does not end the ejection.
    if (s === undefined || s.ejected) return;
    s.failures = 0;
    s.probation = false;
  }

  isEjected(key: string): boolean {
    const s = this.#states.get(key);
    return s !== undefined && s.ejected && this.#clock.now() < s.until;
  }

  /** Number of endpoints currently ejected. */
  ejectedCount(): number {
    const now = this.#clock.now();
    let n = 0;
    for (const s of this.#states.values()) if (s.ejected && now < s.until) n++;
    return n;
  }

  /** Ends every ejection whose time is up; returns the keys that came back (now on probation). */
  sweep(): string[] {
    const now = this.#clock.now();
    const back: string[] = [];
    for (const key of this.#states.keys()) if (this.#sweepOne(key, now)) back.push(key);
    return back;
  }

  /** Clock ms of the earliest pending return, or Infinity. */
  nextReturnAt(): number {
    let next = Infinity;
    for (const s of this.#states.values()) if (s.ejected && s.until < next) next = s.until;
    return next;
  }

  /** Ends an ejection early (used to keep the ejected share within bounds when members go away). */
  release(key: string): void {
    const s = this.#states.get(key);
    if (s === undefined || !s.ejected) return;
    s.ejected = false;
    s.until = 0;
    s.returnedAt = this.#clock.now();
    s.probation = this.#probation;
  }

  /** Keys currently ejected, soonest return first. */
  ejectedKeys(): string[] {
    const now = this.#clock.now();
    return [...this.#states.entries()]
      .filter(([, s]) => s.ejected && now < s.until)
      .sort((a, b) => a[1].until - b[1].until || (a[0] < b[0] ? -1 : 1))
      .map(([k]) => k);
  }

  /** Drops the state of keys that are no longer members. */
  retain(keys: ReadonlySet<string>): void {
    for (const key of [...this.#states.keys()]) if (!keys.has(key)) this.#states.delete(key);
  }

  status(key: string): PassiveHealthStatus {
    const s = this.#states.get(key);
    const ejected = s !== undefined && s.ejected && this.#clock.now() < s.until;
    return {
      consecutiveFailures: s?.failures ?? 0,
      ejected,
      ejectedUntil: ejected ? s?.until : undefined,
      level: s?.level ?? 0,
      totalEjections: s?.total ?? 0,
      onProbation: s?.probation ?? false,
    };
  }

  #state(key: string): State {
    let s = this.#states.get(key);
    if (s === undefined) {
      s = { failures: 0, ejected: false, until: 0, level: 0, returnedAt: -Infinity, probation: false, total: 0 };
      this.#states.set(key, s);
    }
    return s;
  }

  #sweepOne(key: string, now: number): boolean {
    const s = this.#states.get(key);
    if (s === undefined || !s.ejected || now < s.until) return false;
    s.ejected = false;
    s.returnedAt = s.until;
    s.until = 0;
    s.probation = this.#probation;
    return true;
  }
}
