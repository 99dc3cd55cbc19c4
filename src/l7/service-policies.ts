// The per-service bundle of HTTP policies an integrator wires into the engine: circuit breaker (with the retry
// budget), outlier detector, load tracker and request balancer, built from a TrafficPolicySpec. Its pick / admit /
// report methods have the shapes the engine's UpstreamCluster asks for (src/l7/http-deps.ts), so a cluster can
// delegate to them; it stays pure (no sockets, no timers: call tick() from a timer every outlier interval).
import { endpointKey } from '../config/service-spec.js';
import { CircuitBreaker } from '../upstream/circuit-breaker.js';
import type { RequestHead } from './request-types.js';
import type { AttemptOutcome } from '../upstream/health/attempt-outcome.js';
import { OutlierDetector, type OutlierEvent } from '../upstream/health/outlier-detector.js';
import {
  EndpointLoadTracker, createRequestBalancer, requestHashKey, type RequestBalancer, type RequestCandidate,
} from './request-balancer.js';
import type { HashOn } from '../config/route-spec.js';
import type { TrafficPolicySpec } from '../config/traffic-policy-spec.js';

/** An endpoint as the service's membership provides it (UpstreamEndpoint of src/upstream/picker.ts fits). */
export interface PolicyEndpoint {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly weight: number;
}

export interface PolicyPickContext {
  readonly head: RequestHead;
  /** Keys of the endpoints this request already tried. */
  readonly tried: ReadonlySet<string>;
  readonly preferOtherHosts: boolean;
  readonly hashOn: HashOn | undefined;
}

interface Candidate extends RequestCandidate {
  readonly endpoint: PolicyEndpoint;
}

export class ServicePolicies {
  readonly spec: TrafficPolicySpec;
  readonly breaker: CircuitBreaker;
  readonly outlier: OutlierDetector;
  readonly load: EndpointLoadTracker;
  readonly balancer: RequestBalancer;
  /** A subset's policies share the service's breaker, outlier detector and load tracker (set when `of` is given). */
  readonly #shared: boolean;
  #endpoints: readonly PolicyEndpoint[] = [];
  /** Candidates with configured weights, rebuilt on membership change (ring-hash keeps one ring while unchanged). */
  #plain: readonly Candidate[] = [];

  /**
   * `of`: the policies of the whole service, when these are a subset's ("web subset=v2"). The subset gets its own
   * request balancer over its own endpoints, and shares the service's circuit breaker (limits are per service, as
   * in Envoy), outlier detection (an endpoint ejected for one route is ejected for all) and load counts.
   */
  constructor(spec: TrafficPolicySpec, deps: { readonly clock: { now(): number }; readonly random: () => number }, of?: ServicePolicies) {
    this.spec = spec;
    this.#shared = of !== undefined;
    this.breaker = of?.breaker ?? new CircuitBreaker(spec.breaker);
    this.outlier = of?.outlier ?? new OutlierDetector(spec.outlier, deps.clock, deps.random);
    this.load = of?.load ?? new EndpointLoadTracker(deps.clock, spec.ewma);
    this.balancer = createRequestBalancer(spec.balancer, {
      load: this.load, random: deps.random, ringPointsPerWeight: spec.ringPointsPerWeight,
    });
  }

  /**
   * The service's current endpoints (from discovery / L4 health). A subset's policies get the subset's endpoints;
   * the service's own policies, which get them all, keep the shared outlier and load state.
   */
  setEndpoints(endpoints: readonly PolicyEndpoint[]): void {
    this.#endpoints = endpoints;
    this.#plain = endpoints.map((e) => ({ key: e.key, weight: e.weight, endpoint: e }));
    if (this.#shared) return;
    this.outlier.setEndpoints(endpoints.map((e) => e.key));
    this.load.retain(endpoints.map((e) => e.key));
  }

  get endpoints(): readonly PolicyEndpoint[] {
    return this.#endpoints;
  }

  /**
   * Choose the endpoint of an attempt among those not ejected (weights scaled by slow start, except for
   * ring-hash), or undefined (-> no-healthy-upstream). The attempt counts as active until report().
   */
  pick(ctx: PolicyPickContext): PolicyEndpoint | undefined {
    const candidates = this.#candidates();
    const chosen = this.balancer.pick(candidates, {
      hashKey: requestHashKey(ctx.hashOn, ctx.head),
      exclude: ctx.preferOtherHosts ? ctx.tried : undefined,
    }) as Candidate | undefined;
    if (chosen === undefined) return undefined;
    this.load.start(chosen.key);
    return chosen.endpoint;
  }

  /**
   * Breaker admission for a request, a retry, a new upstream connection or a request queued for a connection: a
   * release function, or undefined when the breaker is open.
   */
  admit(kind: 'request' | 'retry' | 'connection' | 'pending'): (() => void) | undefined {
    const r = this.breaker.tryAcquire(kind);
    return r === 'open' ? undefined : r;
  }

  /** Admission of a retry, telling the max_retries cap ('circuit-open') from the retry budget. */
  admitRetry(): (() => void) | 'circuit-open' | 'retry-budget-exhausted' {
    const r = this.breaker.tryAcquireRetry();
    return r === 'open' ? 'circuit-open' : r === 'budget-exhausted' ? 'retry-budget-exhausted' : r;
  }

  /** The outcome of an attempt started by pick(); returns the ejection it caused, if any. */
  report(endpoint: { readonly key?: string; readonly address: string; readonly port: number }, outcome: AttemptOutcome): OutlierEvent | undefined {
    const key = endpoint.key ?? this.#keyOf(endpoint);
    this.load.finish(key, outcome);
    return this.outlier.record(key, outcome);
  }

  /** An attempt started by pick() ended without an outcome (abandoned): it stops counting as active, nothing is recorded. */
  abandon(endpoint: { readonly key?: string; readonly address: string; readonly port: number }): void {
    this.load.cancel(endpoint.key ?? this.#keyOf(endpoint));
  }

  /** Call every outlier interval (returns and success-rate ejections). */
  tick(): OutlierEvent[] {
    return this.outlier.tick();
  }

  #candidates(): readonly Candidate[] {
    const ejected = this.outlier.ejected();
    if (this.spec.balancer === 'ring-hash') {
      return ejected.length === 0 ? this.#plain : this.#plain.filter((c) => !ejected.includes(c.key));
    }
    const out: Candidate[] = [];
    for (const c of this.#plain) {
      const f = this.outlier.weightFactor(c.key);
      if (f <= 0) continue;
      out.push(f === 1 ? c : { key: c.key, weight: c.weight * f, endpoint: c.endpoint });
    }
    return out;
  }

  #keyOf(e: { readonly address: string; readonly port: number }): string {
    return this.#endpoints.find((x) => x.address === e.address && x.port === e.port)?.key ?? endpointKey(e);
  }
}
