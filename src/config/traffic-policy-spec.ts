// The traffic-policy model: what a [traffic-policy SERVICE] section defines (the balancer used for its requests,
// circuit-breaker limits and retry budget, outlier detection) and the defaults of a service without one.
// Definitions only: src/config/traffic-policy-config.ts parses them, src/upstream builds a cluster's breaker and
// health machine from them.
import type { BalancerKind } from './service-spec.js';

/** Envoy's retry_budget: active retries must stay below max(minRetryConcurrency, budgetPercent% of active requests). */
export interface RetryBudget {
  /** Share of active requests (including pending ones) that may be retries, 0-100. */
  readonly budgetPercent: number;
  /** Retries always allowed concurrently, whatever the load. */
  readonly minRetryConcurrency: number;
}

/** Envoy's defaults: 20 % and 3. */
export const DEFAULT_RETRY_BUDGET: RetryBudget = Object.freeze({ budgetPercent: 20, minRetryConcurrency: 3 });

export interface CircuitBreakerLimits {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  /** Hard cap on concurrent retries (Infinity = only the budget applies). */
  readonly maxRetries: number;
  /** undefined = no budget (only maxRetries applies). */
  readonly retryBudget: RetryBudget | undefined;
}

export const DEFAULT_CIRCUIT_BREAKER_LIMITS: CircuitBreakerLimits = Object.freeze({
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: Number.POSITIVE_INFINITY,
  retryBudget: DEFAULT_RETRY_BUDGET,
});



export interface SuccessRateConfig {
  readonly minHosts: number;
  readonly requestVolume: number;
  /** Envoy's stdev_factor / 1000 (1.9 = Envoy's default 1900). */
  readonly stdevFactor: number;
}

export interface OutlierConfig {
  /** Consecutive 5xx (incl. local-origin failures) that eject; 0 = off. */
  readonly consecutive5xx: number;
  /** Consecutive gateway errors (502/503/504, connect failure, reset, timeout) that eject; 0 = off. */
  readonly consecutiveGatewayErrors: number;
  readonly intervalMs: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  /** Up to this random extra per ejection (spreads simultaneous returns); 0 = none. */
  readonly ejectionJitterMs: number;
  readonly maxEjectedPercent: number;
  /** undefined = success-rate ejection off. */
  readonly successRate: SuccessRateConfig | undefined;
  /** Ramp after return; 0 = full weight at once. */
  readonly slowStartMs: number;
  readonly slowStartMinWeightPercent: number;
  /** Re-eject at the first failure after a return. */
  readonly probation: boolean;
}

/**
 * Defaults: gateway errors 5 in a row eject (they say "this endpoint cannot serve", whatever the request); 5xx
 * ejection is off because an application's 500s are usually about the request, and ejecting healthy hosts for a
 * bad request shape is the common complaint; success rate is off (with tight clusters its stdev threshold ejects
 * hosts at 99 % against a 99.8 % mean). Interval 10 s, base ejection 30 s up to 300 s (Envoy's); at most 50 % ejected
 * (Envoy's 10 % means "one host" for most sidecar-sized services; 50 % matches the L4 passive health default);
 * probation on; slow start 30 s from 10 %. A [traffic-policy] that does not set the ejection times or the cap takes
 * them from its [service]'s eject_base_time, eject_max_time and max_ejected_percent (whose defaults are these).
 */
export const DEFAULT_OUTLIER_CONFIG: OutlierConfig = Object.freeze({
  consecutive5xx: 0,
  consecutiveGatewayErrors: 5,
  intervalMs: 10_000,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  ejectionJitterMs: 0,
  maxEjectedPercent: 50,
  successRate: undefined,
  slowStartMs: 30_000,
  slowStartMinWeightPercent: 10,
  probation: true,
});

/** Envoy's success-rate defaults, for `outlier_success_rate = true`. */
export const DEFAULT_SUCCESS_RATE: SuccessRateConfig = Object.freeze({ minHosts: 5, requestVolume: 100, stdevFactor: 1.9 });

/**
 * The request balancer of a policy that does not write http_balancer (the cluster then balances requests with the
 * service's `balancer`, see TrafficPolicySpec.balancerExplicit). One family with the connection balancers:
 * BALANCER_KINDS (src/config/service-spec.ts).
 */
export const DEFAULT_REQUEST_BALANCER: BalancerKind = 'p2c';

export const DEFAULT_EWMA_DECAY_MS = 10_000;
export const DEFAULT_EWMA_RTT_MS = 30;
export const DEFAULT_EWMA_FAILURE_PENALTY_MS = 1_000;

/** Points of the shared hash ring per unit of gcd-reduced endpoint weight (src/upstream/balancer/ring-hash.ts). */
export const DEFAULT_RING_POINTS_PER_WEIGHT = 1024;

/** Upstream HTTP protocol of a service: 'downstream' = the protocol each request arrived with. */
export const UPSTREAM_PROTOCOLS = ['downstream', 'http1', 'http2'] as const;
export type UpstreamProtocolSetting = (typeof UPSTREAM_PROTOCOLS)[number];

export interface TrafficPolicySpec {
  readonly service: string;
  /** "file:line" of the section; undefined for defaults. */
  readonly source: string | undefined;
  /** `http_balancer`, or DEFAULT_REQUEST_BALANCER when the section does not write it (see balancerExplicit). */
  readonly balancer: BalancerKind;
  /**
   * `http_balancer` was written in the section. When it was not, requests are balanced with the service's own
   * `balancer` (the same algorithm as its connections; src/upstream/cluster.ts requestBalancerOf).
   */
  readonly balancerExplicit: boolean;
  /** The protocol requests are sent upstream with (gRPC always uses http2; Upgrade/CONNECT always http1). */
  readonly upstreamProtocol: UpstreamProtocolSetting;
  readonly ewma: { readonly decayMs: number; readonly defaultRttMs: number; readonly failurePenaltyMs: number };
  /** ring-hash points per unit of (gcd-reduced) endpoint weight. */
  readonly ringPointsPerWeight: number;
  readonly breaker: CircuitBreakerLimits;
  readonly outlier: OutlierConfig;
}
