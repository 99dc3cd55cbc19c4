// [traffic-policy SERVICE] sections -> per-service HTTP policies: the per-request balancer, circuit-breaker limits
// and retry budget, outlier detection. Kept out of [service NAME] (which describes where a service is and how to
// reach it at L4, src/config/service-registry.ts) so that each parser owns its keys. A service without a section
// gets defaultTrafficPolicy(). Pure: IniDocument in, specs or ConfigIssues out. Keys in docs/l7-policies.md.
import type { ConfigIssue } from './config-issue.js';
import { configError } from './config-issue.js';
import type { IniDocument, IniSection } from './ini-file.js';
import { SectionReader } from './section-reader.js';
import * as v from './value-parsers.js';
import {
  DEFAULT_CIRCUIT_BREAKER_LIMITS, DEFAULT_EWMA_DECAY_MS, DEFAULT_EWMA_FAILURE_PENALTY_MS, DEFAULT_EWMA_RTT_MS,
  DEFAULT_OUTLIER_CONFIG, DEFAULT_REQUEST_BALANCER, DEFAULT_RETRY_BUDGET, DEFAULT_RING_POINTS_PER_WEIGHT,
  DEFAULT_SUCCESS_RATE, REQUEST_BALANCER_KINDS, UPSTREAM_PROTOCOLS,
  type CircuitBreakerLimits, type OutlierConfig, type TrafficPolicySpec,
} from './traffic-policy-spec.js';
import { ROUTE_NAME_RE } from './route-spec.js';



export const TRAFFIC_POLICY_KEYS = [
  'upstream_protocol', 'http_balancer', 'ewma_decay', 'ewma_default_rtt', 'ewma_failure_penalty', 'ring_points_per_weight',
  'max_connections', 'max_pending_requests', 'max_requests', 'max_retries',
  'retry_budget', 'retry_budget_percent', 'retry_budget_min_concurrency',
  'outlier_consecutive_5xx', 'outlier_consecutive_gateway_errors', 'outlier_interval', 'outlier_base_ejection_time',
  'outlier_max_ejection_time', 'outlier_ejection_jitter', 'outlier_max_ejected_percent',
  'outlier_success_rate', 'outlier_success_rate_min_hosts', 'outlier_success_rate_request_volume',
  'outlier_success_rate_stdev_factor', 'outlier_slow_start', 'outlier_slow_start_min_weight_percent', 'outlier_probation',
] as const;

const EWMA_KEYS = ['ewma_decay', 'ewma_default_rtt', 'ewma_failure_penalty'] as const;
const SUCCESS_RATE_KEYS = ['outlier_success_rate_min_hosts', 'outlier_success_rate_request_volume', 'outlier_success_rate_stdev_factor'] as const;
const BUDGET_KEYS = ['retry_budget_percent', 'retry_budget_min_concurrency'] as const;
const BIG = 1_000_000_000;

export function defaultTrafficPolicy(service: string): TrafficPolicySpec {
  return {
    service,
    source: undefined,
    balancer: DEFAULT_REQUEST_BALANCER,
    balancerExplicit: false,
    upstreamProtocol: 'downstream',
    ewma: { decayMs: DEFAULT_EWMA_DECAY_MS, defaultRttMs: DEFAULT_EWMA_RTT_MS, failurePenaltyMs: DEFAULT_EWMA_FAILURE_PENALTY_MS },
    ringPointsPerWeight: DEFAULT_RING_POINTS_PER_WEIGHT,
    breaker: DEFAULT_CIRCUIT_BREAKER_LIMITS,
    outlier: DEFAULT_OUTLIER_CONFIG,
  };
}

export type TrafficPolicyResult =
  | { readonly ok: true; readonly policies: ReadonlyMap<string, TrafficPolicySpec> }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/** A decimal number in [min, max]. */
export function decimal(min: number, max: number): v.ValueParser<number> {
  return (text) => {
    const t = text.trim();
    const n = Number(t);
    return /^\d+(\.\d+)?$/.test(t) && n >= min && n <= max
      ? { ok: true, value: n }
      : { ok: false, expected: `a number ${min}-${max}` };
  };
}

function readPolicy(r: SectionReader, service: string): TrafficPolicySpec {
  r.reportUnknownKeys('[traffic-policy SERVICE]');
  const d = defaultTrafficPolicy(service);
  const balancer = r.get('http_balancer', v.oneOf(REQUEST_BALANCER_KINDS), d.balancer);
  const balancerExplicit = r.has('http_balancer');
  const upstreamProtocol = r.get('upstream_protocol', v.oneOf(UPSTREAM_PROTOCOLS), d.upstreamProtocol);
  if (balancer !== 'peak-ewma') {
    for (const k of EWMA_KEYS) if (r.has(k)) r.issue(k, `http_balancer = peak-ewma for ${k} (this policy uses ${balancer})`);
  }
  if (balancer !== 'ring-hash' && r.has('ring_points_per_weight')) {
    r.issue('ring_points_per_weight', `http_balancer = ring-hash for ring_points_per_weight (this policy uses ${balancer})`);
  }
  const ewma = {
    decayMs: r.get('ewma_decay', v.duration(100, 600_000), d.ewma.decayMs),
    defaultRttMs: r.get('ewma_default_rtt', v.duration(1, 60_000), d.ewma.defaultRttMs),
    failurePenaltyMs: r.get('ewma_failure_penalty', v.duration(0, 600_000), d.ewma.failurePenaltyMs),
  };
  const ringPointsPerWeight = r.get('ring_points_per_weight', v.integer(1, 4096), d.ringPointsPerWeight);

  const budgetOn = r.get('retry_budget', v.boolean, true);
  if (!budgetOn) for (const k of BUDGET_KEYS) if (r.has(k)) r.issue(k, `retry_budget = on for ${k} (this policy turns the budget off)`);
  const breaker: CircuitBreakerLimits = {
    maxConnections: r.get('max_connections', v.integer(1, BIG), d.breaker.maxConnections),
    maxPendingRequests: r.get('max_pending_requests', v.integer(0, BIG), d.breaker.maxPendingRequests),
    maxRequests: r.get('max_requests', v.integer(1, BIG), d.breaker.maxRequests),
    maxRetries: r.get('max_retries', v.integer(0, BIG), d.breaker.maxRetries),
    retryBudget: budgetOn
      ? {
        budgetPercent: r.get('retry_budget_percent', decimal(0, 100), DEFAULT_RETRY_BUDGET.budgetPercent),
        minRetryConcurrency: r.get('retry_budget_min_concurrency', v.integer(0, BIG), DEFAULT_RETRY_BUDGET.minRetryConcurrency),
      }
      : undefined,
  };

  const o = DEFAULT_OUTLIER_CONFIG;
  const successRateOn = r.get('outlier_success_rate', v.boolean, false);
  if (!successRateOn) {
    for (const k of SUCCESS_RATE_KEYS) if (r.has(k)) r.issue(k, `outlier_success_rate = true for ${k} (success-rate ejection is off)`);
  }
  const base = r.get('outlier_base_ejection_time', v.duration(100, 86_400_000), o.baseEjectionMs);
  const max = r.get('outlier_max_ejection_time', v.duration(100, 86_400_000), Math.max(o.maxEjectionMs, base));
  if (base > max) {
    r.issue(r.has('outlier_max_ejection_time') ? 'outlier_max_ejection_time' : 'outlier_base_ejection_time',
      'outlier_base_ejection_time <= outlier_max_ejection_time');
  }
  const outlier: OutlierConfig = {
    consecutive5xx: r.get('outlier_consecutive_5xx', v.integer(0, 1000), o.consecutive5xx),
    consecutiveGatewayErrors: r.get('outlier_consecutive_gateway_errors', v.integer(0, 1000), o.consecutiveGatewayErrors),
    intervalMs: r.get('outlier_interval', v.duration(100, 3_600_000), o.intervalMs),
    baseEjectionMs: base,
    maxEjectionMs: max,
    ejectionJitterMs: r.get('outlier_ejection_jitter', v.duration(0, 3_600_000), o.ejectionJitterMs),
    maxEjectedPercent: r.get('outlier_max_ejected_percent', v.integer(0, 100), o.maxEjectedPercent),
    successRate: successRateOn
      ? {
        minHosts: r.get('outlier_success_rate_min_hosts', v.integer(1, 10_000), DEFAULT_SUCCESS_RATE.minHosts),
        requestVolume: r.get('outlier_success_rate_request_volume', v.integer(1, BIG), DEFAULT_SUCCESS_RATE.requestVolume),
        stdevFactor: r.get('outlier_success_rate_stdev_factor', decimal(0, 100), DEFAULT_SUCCESS_RATE.stdevFactor),
      }
      : undefined,
    slowStartMs: r.get('outlier_slow_start', v.duration(0, 3_600_000), o.slowStartMs),
    slowStartMinWeightPercent: r.get('outlier_slow_start_min_weight_percent', v.integer(1, 100), o.slowStartMinWeightPercent),
    probation: r.get('outlier_probation', v.boolean, o.probation),
  };
  return { service, source: r.where(), balancer, balancerExplicit, upstreamProtocol, ewma, ringPointsPerWeight, breaker, outlier };
}

export interface TrafficPolicyOptions {
  /** Names of the [service NAME] sections; when given, each policy must name one of them. */
  readonly knownServices?: Iterable<string>;
}

/** Parse every [traffic-policy SERVICE] section (other sections are ignored). */
export function parseTrafficPolicies(doc: IniDocument, opts: TrafficPolicyOptions = {}): TrafficPolicyResult {
  const issues: ConfigIssue[] = [];
  const known = opts.knownServices === undefined ? undefined : new Set(opts.knownServices);
  const policies = new Map<string, TrafficPolicySpec>();
  for (const section of doc.sections) {
    const [kind = '', ...rest] = section.name.split(' ');
    if (kind !== 'traffic-policy' || policies.has(rest.join(' '))) continue;
    const service = rest.join(' ');
    if (!ROUTE_NAME_RE.test(service)) {
      issues.push(sectionIssue(doc, section, '[traffic-policy SERVICE] naming a service (1-63 letters, digits, ".", "_" or "-")'));
      continue;
    }
    if (known !== undefined && !known.has(service)) {
      issues.push(sectionIssue(doc, section, `[traffic-policy SERVICE] naming a [service NAME] section (${[...known].join(', ') || 'none defined'})`));
      continue;
    }
    policies.set(service, readPolicy(new SectionReader(doc.file, section, TRAFFIC_POLICY_KEYS, issues), service));
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, policies };
}

export function trafficPoliciesOrThrow(doc: IniDocument, opts: TrafficPolicyOptions = {}): ReadonlyMap<string, TrafficPolicySpec> {
  const r = parseTrafficPolicies(doc, opts);
  if (!r.ok) throw configError(r.issues);
  return r.policies;
}

function sectionIssue(doc: IniDocument, section: IniSection, expected: string): ConfigIssue {
  return { source: `${doc.file}:${section.line}`, key: `[${section.name}]`, expected };
}
