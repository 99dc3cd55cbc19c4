// Concurrency circuit breaking per upstream service (Envoy's cluster circuit_breakers thresholds): limits on open
// connections, requests waiting for a connection (pending), requests in flight and retries in flight, plus the
// retry budget. A caller asks before it starts something and gets a release function, or 'open' when the limit is
// reached: the request is then answered at once with the circuit-open local reply (503) instead of queueing.
//
// Defaults are Envoy's 1024 for connections, pending and active requests: high enough that a healthy sidecar never
// hits them (a Node sidecar with 1024 requests in flight to one service is already in trouble), low enough to stop
// a stuck upstream from absorbing unbounded memory. Retries are bounded by the retry budget (20 % of active
// requests, at least 3 at a time) rather than Envoy's fixed max_retries = 3, which throttles retries exactly when
// traffic is high; max_retries can still be set as a hard cap.
import {
  DEFAULT_CIRCUIT_BREAKER_LIMITS, type CircuitBreakerLimits, type RetryBudget,
} from '../config/traffic-policy-spec.js';

/** How many retries may be active at once with `activeRequests` requests in flight. */
export function retryBudgetLimit(budget: RetryBudget, activeRequests: number): number {
  return Math.max(budget.minRetryConcurrency, Math.floor((budget.budgetPercent * Math.max(0, activeRequests)) / 100));
}

/** Whether one more retry may start now. */
export function retryBudgetAllows(budget: RetryBudget, activeRetries: number, activeRequests: number): boolean {
  return activeRetries < retryBudgetLimit(budget, activeRequests);
}

export const BREAKER_RESOURCES = ['connection', 'pending', 'request', 'retry'] as const;
export type BreakerResource = (typeof BREAKER_RESOURCES)[number];



/** Gives the resource back; calling it again does nothing. */
export type Release = () => void;

export interface CircuitBreakerStats {
  /** In use now, per resource. */
  readonly active: Readonly<Record<BreakerResource, number>>;
  /** Acquisitions granted since creation. */
  readonly granted: Readonly<Record<BreakerResource, number>>;
  /** Acquisitions refused by a limit (Envoy's upstream_cx_overflow, upstream_rq_pending_overflow, ...). */
  readonly overflow: Readonly<Record<BreakerResource, number>>;
  /** Retries refused by the retry budget (counted in overflow.retry too). */
  readonly retryBudgetOverflow: number;
  /** Resources whose limit is reached right now (Envoy's cx_open, rq_pending_open, rq_open, rq_retry_open gauges). */
  readonly open: Readonly<Record<BreakerResource, boolean>>;
}

const zero = (): Record<BreakerResource, number> => ({ connection: 0, pending: 0, request: 0, retry: 0 });

export class CircuitBreaker {
  #limits: CircuitBreakerLimits;
  readonly #active = zero();
  readonly #granted = zero();
  readonly #overflow = zero();
  #budgetOverflow = 0;

  constructor(limits: CircuitBreakerLimits = DEFAULT_CIRCUIT_BREAKER_LIMITS) {
    this.#limits = limits;
  }

  get limits(): CircuitBreakerLimits {
    return this.#limits;
  }

  /** New limits apply to the next acquisitions; what is held stays held (and is released normally). */
  setLimits(limits: CircuitBreakerLimits): void {
    this.#limits = limits;
  }

  /** Acquire one unit of a resource, or 'open' when its limit (or, for retries, the budget) is reached. */
  tryAcquire(kind: BreakerResource): Release | 'open' {
    if (kind === 'retry') {
      const r = this.tryAcquireRetry();
      return r === 'budget-exhausted' ? 'open' : r;
    }
    if (this.#active[kind] >= this.#limit(kind)) {
      this.#overflow[kind]++;
      return 'open';
    }
    return this.#grant(kind);
  }

  /** Like tryAcquire('retry'), telling a budget refusal ('budget-exhausted') from the max_retries cap ('open'). */
  tryAcquireRetry(): Release | 'open' | 'budget-exhausted' {
    if (this.#active.retry >= this.#limits.maxRetries) {
      this.#overflow.retry++;
      return 'open';
    }
    const budget = this.#limits.retryBudget;
    if (budget !== undefined && !retryBudgetAllows(budget, this.#active.retry, this.#active.request + this.#active.pending)) {
      this.#overflow.retry++;
      this.#budgetOverflow++;
      return 'budget-exhausted';
    }
    return this.#grant('retry');
  }

  active(kind: BreakerResource): number {
    return this.#active[kind];
  }

  isOpen(kind: BreakerResource): boolean {
    if (kind === 'retry') {
      const budget = this.#limits.retryBudget;
      return this.#active.retry >= this.#limits.maxRetries
        || (budget !== undefined && !retryBudgetAllows(budget, this.#active.retry, this.#active.request + this.#active.pending));
    }
    return this.#active[kind] >= this.#limit(kind);
  }

  stats(): CircuitBreakerStats {
    const open = {} as Record<BreakerResource, boolean>;
    for (const k of BREAKER_RESOURCES) open[k] = this.isOpen(k);
    return {
      active: { ...this.#active },
      granted: { ...this.#granted },
      overflow: { ...this.#overflow },
      retryBudgetOverflow: this.#budgetOverflow,
      open,
    };
  }

  #limit(kind: Exclude<BreakerResource, 'retry'>): number {
    switch (kind) {
      case 'connection': return this.#limits.maxConnections;
      case 'pending': return this.#limits.maxPendingRequests;
      case 'request': return this.#limits.maxRequests;
    }
  }

  #grant(kind: BreakerResource): Release {
    this.#active[kind]++;
    this.#granted[kind]++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#active[kind]--;
    };
  }
}
