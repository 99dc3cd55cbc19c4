// [traffic-policy SERVICE] sections -> per-service HTTP policies: the per-request balancer, circuit-breaker limits
// and retry budget, outlier detection. Kept out of [service NAME] (which describes where a service is and how to
// reach it at L4, src/config/service-registry.ts) so that each parser owns its keys. A service without a section
// gets defaultTrafficPolicy(). Pure: IniDocument in, specs or ConfigIssues out. Keys in docs/l7-policies.md.
//
// What a policy inherits from its service (when the parsed services are passed in): the request balancer is
// http_balancer when written, else the service's `balancer` (one family of balancers, BALANCER_KINDS); the passive
// health keys outlier_base_ejection_time, outlier_max_ejection_time and outlier_max_ejected_percent default to the
// service's eject_base_time, eject_max_time and max_ejected_percent (one health machine per service).
import { formatDurationMs } from '../core/duration.js';
import type { ConfigIssue } from './config-issue.js';
import { configError } from './config-issue.js';
import type { IniDocument, IniSection } from './ini-file.js';
import { SectionReader } from './section-reader.js';
import { BALANCER_KINDS, type BalancerKind, type PassiveHealthSpec } from './service-spec.js';
import * as v from './value-parsers.js';
import {
  DEFAULT_CIRCUIT_BREAKER_LIMITS, DEFAULT_EWMA_DECAY_MS, DEFAULT_EWMA_FAILURE_PENALTY_MS, DEFAULT_EWMA_RTT_MS,
  DEFAULT_OUTLIER_CONFIG, DEFAULT_REQUEST_BALANCER, DEFAULT_RETRY_BUDGET, DEFAULT_RING_POINTS_PER_WEIGHT,
  DEFAULT_SUCCESS_RATE, UPSTREAM_PROTOCOLS,
  type CircuitBreakerLimits, type OutlierConfig, type TrafficPolicySpec,
} from './traffic-policy-spec.js';
import { ROUTE_NAME_RE } from './route-spec.js';

/** The passive-health settings of a [service NAME] that its traffic policy inherits. */
export type InheritedPassiveHealth = Pick<PassiveHealthSpec, 'ejectBaseTimeMs' | 'ejectMaxTimeMs' | 'maxEjectedPercent'>;

/** What a policy needs to know of its service (a ServiceSpec is one). */
export interface PolicyService {
  readonly name: string;
  /** The service's `balancer` (connections; requests too unless the policy writes http_balancer). */
  readonly balancer: BalancerKind;
  readonly passiveHealth: InheritedPassiveHealth;
}

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

/**
 * The policy of a service without a [traffic-policy SERVICE] section. With the service's passive health, the outlier
 * ejection times and cap are the service's eject_base_time, eject_max_time and max_ejected_percent.
 */
export function defaultTrafficPolicy(service: string, passiveHealth?: InheritedPassiveHealth): TrafficPolicySpec {
  return {
    service,
    source: undefined,
    balancer: DEFAULT_REQUEST_BALANCER,
    balancerExplicit: false,
    upstreamProtocol: 'downstream',
    ewma: { decayMs: DEFAULT_EWMA_DECAY_MS, defaultRttMs: DEFAULT_EWMA_RTT_MS, failurePenaltyMs: DEFAULT_EWMA_FAILURE_PENALTY_MS },
    ringPointsPerWeight: DEFAULT_RING_POINTS_PER_WEIGHT,
    breaker: DEFAULT_CIRCUIT_BREAKER_LIMITS,
    outlier: passiveHealth === undefined
      ? DEFAULT_OUTLIER_CONFIG
      : {
        ...DEFAULT_OUTLIER_CONFIG,
        baseEjectionMs: passiveHealth.ejectBaseTimeMs,
        maxEjectionMs: passiveHealth.ejectMaxTimeMs,
        maxEjectedPercent: passiveHealth.maxEjectedPercent,
      },
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

/** Why the keys of `kind` (ewma_*, ring_points_per_weight) do not apply, or undefined when they do. */
function balancerMismatch(kind: BalancerKind, key: string, service: string, requests: BalancerKind, connections: BalancerKind | undefined): string | undefined {
  if (requests === kind || connections === kind) return undefined;
  const uses = connections === undefined || connections === requests
    ? `this policy balances requests with ${requests}`
    : `this policy balances requests with ${requests}, the service's connections with ${connections}`;
  return `http_balancer = ${kind} (or [service ${service}] balancer = ${kind}) for ${key} (${uses})`;
}

function readPolicy(r: SectionReader, service: string, of: PolicyService | undefined): TrafficPolicySpec {
  r.reportUnknownKeys('[traffic-policy SERVICE]');
  const d = defaultTrafficPolicy(service, of?.passiveHealth);
  const written = r.optional('http_balancer', v.oneOf(BALANCER_KINDS));
  const balancer = written ?? d.balancer;
  const balancerExplicit = r.has('http_balancer');
  const upstreamProtocol = r.get('upstream_protocol', v.oneOf(UPSTREAM_PROTOCOLS), d.upstreamProtocol);
  // The request balancer: http_balancer when written, else the service's own. With an invalid http_balancer (already
  // reported) it is unknown, and so is whether the balancer-specific keys belong.
  if (!balancerExplicit || written !== undefined) {
    const requests = written ?? of?.balancer ?? d.balancer;
    for (const k of EWMA_KEYS) {
      const why = r.has(k) ? balancerMismatch('peak-ewma', k, service, requests, of?.balancer) : undefined;
      if (why !== undefined) r.issue(k, why);
    }
    const why = r.has('ring_points_per_weight')
      ? balancerMismatch('ring-hash', 'ring_points_per_weight', service, requests, of?.balancer)
      : undefined;
    if (why !== undefined) r.issue('ring_points_per_weight', why);
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

  const o = d.outlier;
  const successRateOn = r.get('outlier_success_rate', v.boolean, false);
  if (!successRateOn) {
    for (const k of SUCCESS_RATE_KEYS) if (r.has(k)) r.issue(k, `outlier_success_rate = true for ${k} (success-rate ejection is off)`);
  }
  const base = r.get('outlier_base_ejection_time', v.duration(100, 86_400_000), o.baseEjectionMs);
  const max = r.get('outlier_max_ejection_time', v.duration(100, 86_400_000), Math.max(o.maxEjectionMs, base));
  if (base > max) {
    // Only reachable with outlier_max_ejection_time written (the default max is at least the base).
    const inherited = of !== undefined && !r.has('outlier_base_ejection_time')
      ? ` (outlier_base_ejection_time is ${formatDurationMs(base)} from [service ${service}] eject_base_time)`
      : '';
    r.issue(r.has('outlier_max_ejection_time') ? 'outlier_max_ejection_time' : 'outlier_base_ejection_time',
      `outlier_base_ejection_time <= outlier_max_ejection_time${inherited}`);
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
  /**
   * The services (their `balancer` and passive health), for what a policy inherits: the request balancer when
   * http_balancer is not written (and so whether ewma_* / ring_points_per_weight apply), and the defaults of
   * outlier_base_ejection_time, outlier_max_ejection_time and outlier_max_ejected_percent. A policy whose service
   * is not listed gets the built-in defaults (DEFAULT_REQUEST_BALANCER, DEFAULT_OUTLIER_CONFIG).
   */
  readonly services?: Iterable<PolicyService>;
}

/** Parse every [traffic-policy SERVICE] section (other sections are ignored). */
export function parseTrafficPolicies(doc: IniDocument, opts: TrafficPolicyOptions = {}): TrafficPolicyResult {
  const issues: ConfigIssue[] = [];
  const known = opts.knownServices === undefined ? undefined : new Set(opts.knownServices);
  const policies = new Map<string, TrafficPolicySpec>();
  const services = new Map<string, PolicyService>();
  for (const svc of opts.services ?? []) if (!services.has(svc.name)) services.set(svc.name, svc);
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
    policies.set(service, readPolicy(new SectionReader(doc.file, section, TRAFFIC_POLICY_KEYS, issues), service, services.get(service)));
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
