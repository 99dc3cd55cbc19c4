// A cluster: everything remora knows about one upstream service, used alike by L4 (a connection per pick) and L7 (a
// request attempt per pick). Built from definitions (src/config: a [service NAME], its [traffic-policy], the proxy's
// connect timeout), it holds the live state that a reload carries over when the definition does not change:
//
//   membership   static endpoints (replaced on reload), DNS discovery (src/upstream/dns-discovery.ts), or none for
//                an original-destination cluster (passthrough, inbound delivery, discovery = original-dst), whose one
//                endpoint is each connection's own original destination;
//   health       one machine (src/upstream/health/outlier-detector.ts) hearing every connect result and every
//                request outcome, plus optional active TCP checks; ejections, probation and slow start;
//   load         per endpoint, what is in flight (connections + request attempts) and a peak-EWMA latency
//                (src/upstream/balancer/endpoint-load.ts);
//   balancing    one family of balancers (src/upstream/balancer/): whenever membership, health or a slow-start step
//                changes, immutable pickers are published — one for connections (`balancer`), one for requests
//                (`http_balancer`, the same picker when it is the same kind, so one hash key lands on one endpoint
//                over TCP and over HTTP) and one per endpoint subset; pick() is synchronous;
//   breaker      the circuit breaker of the service's HTTP requests, retries and pooled connections;
//   connect      the transport (plain TCP, TLS origination or mesh mTLS): connect() is the one way to open a socket to an
//                endpoint (src/upstream/transport/connect.ts).
//
// ClusterView is what the L7 router sees of a cluster or of one of its subsets.
import type { Socket } from 'node:net';
import { isIPv4 } from 'node:net';
import type { ServiceSpec } from '../config/service-spec.js';
import { endpointKey, type BalancerKind, type EndpointSpec } from '../config/service-spec.js';
import type { TrafficPolicySpec, UpstreamProtocolSetting } from '../config/traffic-policy-spec.js';
import type { Logger } from '../core/log.js';
import { pickerBuilderFor, type BalancerOptions } from './balancer-factory.js';
import { EndpointLoad } from './balancer/endpoint-load.js';
import { CircuitBreaker, type BreakerResource } from './circuit-breaker.js';
import type { Clock, TimerHandle, Timers } from './clock.js';
import { systemClock, systemTimers } from './clock.js';
import { DnsDiscovery, type DnsResolverLike } from './dns-discovery.js';
import { ActiveHealthChecker } from './health/active-health.js';
import type { AttemptOutcome } from './health/attempt-outcome.js';
import { OutlierDetector, type HealthConfig, type HealthEvent } from './health/outlier-detector.js';
import {
  noneResult, toUpstreamEndpoint, UnavailablePicker,
  type Picker, type PickContext, type PickerBuilder, type PickerEndpoint, type PickResult, type RandomSource, type UpstreamEndpoint,
} from './picker.js';
import { openConnection, probeConnection, type ConnectHandler, type ConnectObserver, type ConnectTarget } from './transport/connect.js';
import type { UpstreamTransport } from './transport/upstream-transport.js';

/** Source addresses of inbound delivery; `remora init` returns traffic from them untouched (and adds ::6 to lo). */
export const INBOUND_SOURCE_V4 = '127.0.0.6';
export const INBOUND_SOURCE_V6 = '::6';

/** What a cluster is built from. Plain data: two equal definitions build equivalent clusters. */
export interface ClusterSpec {
  readonly name: string;
  /** The [service NAME] (undefined: the passthrough or inbound original-destination cluster). */
  readonly service: ServiceSpec | undefined;
  readonly policy: TrafficPolicySpec;
  /** The service's connect_timeout, else the proxy's. */
  readonly connectTimeoutMs: number;
  /** Bind 127.0.0.6 / ::6 as the source (inbound delivery to the local app). */
  readonly inboundSource: boolean;
}

/** The parameters of a plain TCP connect to one endpoint (Cluster.plainConnect). */
export interface PlainConnect {
  readonly address: string;
  readonly port: number;
  /** The connect timeout; 0 = none. */
  readonly timeoutMs: number;
  /** Bind this source address first (inbound delivery). */
  readonly localAddress: string | undefined;
  /** A member endpoint: report the connect's result with onConnectResult(healthKey, ok). */
  readonly healthKey: string | undefined;
}

export interface ClusterDeps {
  readonly log: Logger;
  readonly clock?: Clock;
  readonly timers?: Timers;
  readonly random?: RandomSource;
  /** Needed by DNS discovery. */
  readonly resolver?: DnsResolverLike | undefined;
  readonly balancerOptions?: BalancerOptions;
}

export type Release = () => void;

/** What a pool of upstream connections hears from its cluster. */
export interface ClusterListener {
  /** Endpoints left the cluster: their pooled connections drain (no new requests; close when idle). */
  onEndpointsRemoved?(keys: readonly string[]): void;
  /** The cluster was retired (removed or replaced by a reload): everything of it drains. */
  onClusterClosed?(): void;
}

/** An endpoint as a pick hands it out for a request attempt. */
export interface PickedEndpoint {
  readonly key: string;
  readonly address: string;
  readonly port: number;
}

/** How the router asks for an endpoint for one request attempt. */
export interface RequestPick {
  /** The ring-hash / maglev key of the request (route hash_on), else the client's address is used. */
  readonly hashKey?: string | undefined;
  readonly sourceAddress?: string | undefined;
  /** Endpoints to avoid while others remain (the ones this request tried). */
  readonly exclude?: ReadonlySet<string> | undefined;
  /** The request's original destination (the endpoint of an original-destination cluster). */
  readonly originalDst: { readonly address: string; readonly port: number };
}

/** What the L7 router and pools use of a cluster (the whole cluster, or one of its subsets). */
export interface ClusterView {
  /** Unique per cluster object: pools are keyed by it, so a replaced cluster never shares pools with its successor. */
  readonly id: string;
  /** The service name ("web"), or "web/v2" for a subset. */
  readonly name: string;
  /** [traffic-policy] upstream_protocol. */
  readonly protocol: UpstreamProtocolSetting;
  /** A request attempt's endpoint (counted as in flight until report() or abandon()), or undefined: none usable. */
  pickForRequest(ctx: RequestPick): PickedEndpoint | undefined;
  /** The outcome of an attempt started by pickForRequest (connect failures are already counted by connect()). */
  report(endpoint: PickedEndpoint, outcome: AttemptOutcome): void;
  /** An attempt ended without an outcome (client gone, route timeout, pool overflow). */
  abandon(endpoint: PickedEndpoint): void;
  /** Breaker admission; undefined when the limit is reached. */
  admit(kind: 'request' | 'connection' | 'pending'): Release | undefined;
  /** Breaker admission of a retry, telling the max_retries cap ('circuit-open') from the retry budget. */
  admitRetry(): Release | 'circuit-open' | 'retry-budget-exhausted';
  /** Open a connection to an endpoint of this cluster (the one connect path). */
  connect(endpoint: ConnectTarget & { readonly key?: string }, handler: ConnectHandler): Socket;
  subscribe(listener: ClusterListener): () => void;
}

const NO_RELEASE: Release = () => undefined;

/** Slow start republishes pickers this many times over the ramp (at most every 250 ms). */
const SLOW_START_STEPS = 10;
/** Weights are scaled by this while some endpoint ramps up, so that fractions survive as integers. */
export const SLOW_START_SCALE = 100;
const HASHING: ReadonlySet<BalancerKind> = new Set(['ring-hash', 'maglev']);

class Member {
  readonly load: EndpointLoad;
  endpoint: UpstreamEndpoint;
  healthy = true;

  constructor(endpoint: UpstreamEndpoint, load: EndpointLoad) {
    this.endpoint = endpoint;
    this.load = load;
  }
}

let nextClusterId = 0;

/** The health configuration of a service: connect failures from [service], the rest from its traffic policy. */
export function healthConfig(spec: ClusterSpec): HealthConfig {
  return { ...spec.policy.outlier, consecutiveConnectFailures: spec.service?.passiveHealth.ejectAfterFailures ?? 0 };
}

/** The request balancer of a cluster: [traffic-policy] http_balancer, else the service's `balancer`. */
export function requestBalancerOf(spec: ClusterSpec): BalancerKind {
  return spec.policy.balancerExplicit ? spec.policy.balancer : (spec.service?.balancer ?? spec.policy.balancer);
}

export class Cluster implements ClusterView, ConnectObserver {
  readonly id: string;
  readonly name: string;
  readonly spec: ClusterSpec;
  readonly protocol: UpstreamProtocolSetting;
  /** Whether the cluster forwards to each connection's own original destination (no membership). */
  readonly originalDst: boolean;
  readonly connectionBalancer: BalancerKind;
  readonly requestBalancer: BalancerKind;
  readonly breaker: CircuitBreaker | undefined;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #random: RandomSource;
  readonly #resolver: DnsResolverLike | undefined;
  readonly #health: OutlierDetector | undefined;
  readonly #active: ActiveHealthChecker | undefined;
  readonly #connBuilder: PickerBuilder;
  readonly #reqBuilder: PickerBuilder;
  readonly #listeners = new Set<ClusterListener>();
  readonly #subsets = new Map<string, SubsetView>();
  #tls: UpstreamTransport | undefined;
  #connectTimeoutMs: number;
  #members = new Map<string, Member>();
  #sorted: Member[] = [];
  #connPicker: Picker = new UnavailablePicker('no-endpoints');
  #reqPicker: Picker = this.#connPicker;
  #subsetPickers = new Map<string, Picker>();
  #inRotation: ReadonlySet<string> = new Set();
  #nextChangeAt = Infinity;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #tick: TimerHandle | undefined;
  #tickEveryMs = 0;
  #dns: DnsDiscovery | undefined;
  #connectFailures = 0;
  #started = false;
  #closed = false;

  constructor(spec: ClusterSpec, deps: ClusterDeps, tls?: UpstreamTransport) {
    this.id = `${spec.name}#${++nextClusterId}`;
    this.name = spec.name;
    this.spec = spec;
    this.#log = deps.log;
    this.#clock = deps.clock ?? systemClock;
    this.#timers = deps.timers ?? systemTimers;
    this.#random = deps.random ?? Math.random;
    this.#resolver = deps.resolver;
    this.#tls = tls;
    this.#connectTimeoutMs = spec.connectTimeoutMs;
    const service = spec.service;
    this.protocol = spec.policy.upstreamProtocol;
    this.originalDst = service === undefined || service.endpoints.kind === 'original-dst';
    this.connectionBalancer = service?.balancer ?? 'p2c';
    this.requestBalancer = requestBalancerOf(spec);
    this.#connBuilder = pickerBuilderFor(this.connectionBalancer, this.#balancerOptions(deps.balancerOptions));
    this.#reqBuilder = this.requestBalancer === this.connectionBalancer
      ? this.#connBuilder : pickerBuilderFor(this.requestBalancer, this.#balancerOptions(deps.balancerOptions));
    this.breaker = service === undefined ? undefined : new CircuitBreaker(spec.policy.breaker);
    if (this.originalDst) return;
    this.#health = new OutlierDetector(healthConfig(spec), this.#clock, this.#random);
    const a = service?.activeHealth;
    if (a !== undefined && a.kind === 'tcp') {
      this.#active = new ActiveHealthChecker({
        // The port the data path connects to: with TLS origination, tls_port.
        probe: (endpoint, signal) => probeConnection({ address: endpoint.address, port: this.#dataPort(endpoint.port) }, signal),
        intervalMs: a.intervalMs,
        timeoutMs: a.timeoutMs,
        healthyThreshold: a.healthyThreshold,
        unhealthyThreshold: a.unhealthyThreshold,
        timers: this.#timers,
        random: this.#random,
        onChange: (key, healthy) => { this.#setHealth(key, healthy); },
        onError: (key, err) => { this.#log.debug({ service: this.name, endpoint: key, err }, 'health probe failed'); },
      });
    }
    if (service?.endpoints.kind === 'static') this.#applyMembership(service.endpoints.endpoints);
    this.#publish();
  }

  #balancerOptions(o: BalancerOptions | undefined): BalancerOptions {
    const points = this.spec.policy.ringPointsPerWeight;
    return { ...o, ringHash: { ...o?.ringHash, vnodesPerWeight: points } };
  }

  // === lifecycle ===

  /** Start DNS discovery, active checks and the health tick. Idempotent. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    const service = this.spec.service;
    if (service?.endpoints.kind === 'dns' && this.#resolver !== undefined) {
      this.#dns = DnsDiscovery.forService(service, {
        resolver: this.#resolver, log: this.#log, timers: this.#timers, onUpdate: (u) => { this.#update(u.endpoints); },
      });
      this.#dns?.start();
    }
    if (this.#health !== undefined) {
      const o = this.#health.config;
      this.#tickEveryMs = Math.max(100, Math.min(o.intervalMs, o.baseEjectionMs));
      this.#scheduleTick();
    }
  }

  /** Stop everything; pools drain. The last pickers keep answering (for work in flight). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dns?.stop();
    this.#active?.close();
    if (this.#tick !== undefined) this.#timers.clearTimeout(this.#tick);
    this.#tick = undefined;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    const listeners = [...this.#listeners];
    this.#listeners.clear();
    for (const l of listeners) l.onClusterClosed?.();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * A reload kept this cluster (same definition) but its static endpoints, its TLS material or its connect timeout
   * changed: apply them. Endpoints that stay keep their load and health; removed ones drain; the TLS material and the
   * timeout apply to the next connections. Also used to seed a rebuilt DNS cluster with its predecessor's endpoints.
   */
  reconfigure(endpoints: readonly EndpointSpec[] | undefined, tls: UpstreamTransport | undefined, connectTimeoutMs?: number): void {
    if (this.#closed) return;
    this.#tls = tls;
    if (connectTimeoutMs !== undefined) this.#connectTimeoutMs = connectTimeoutMs;
    if (endpoints !== undefined) this.#update(endpoints);
  }

  /** The connect timeout in force (the service's connect_timeout, else the proxy's). */
  get connectTimeoutMs(): number {
    return this.#connectTimeoutMs;
  }

  subscribe(listener: ClusterListener): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  // === picking ===

  /**
   * An endpoint for a connection (L4) or, with `subset`/`request`, for a request. Original-destination clusters
   * answer with ctx.originalDst.
   */
  pick(ctx: PickContext, subset?: string, request = false): PickResult {
    if (this.originalDst) {
      const d = ctx.originalDst;
      if (d === undefined) return noneResult('no-endpoints');
      return { kind: 'endpoint', endpoint: toUpstreamEndpoint({ address: d.address, port: d.port, weight: 1 }) };
    }
    if (this.#clock.now() >= this.#nextChangeAt) this.#refresh();
    if (subset !== undefined) return (this.#subsetPickers.get(subset) ?? NO_SUBSET).pick(ctx);
    return (request ? this.#reqPicker : this.#connPicker).pick(ctx);
  }

  /**
   * What pick() would return now, for `remora explain`: nothing moves (no round-robin step, no load counted, no
   * picker republished). `deterministic` is false when the balancer draws at random (random, p2c / least-request,
   * peak-ewma, least-connections ties, ring-hash / maglev without a key): the result is then one sample of what a
   * pick could return.
   */
  peek(ctx: PickContext, subset?: string, request = false): { readonly result: PickResult; readonly deterministic: boolean } {
    if (this.originalDst) return { result: this.pick(ctx, subset, request), deterministic: true };
    const picker: Picker = subset !== undefined ? (this.#subsetPickers.get(subset) ?? NO_SUBSET) : request ? this.#reqPicker : this.#connPicker;
    const kind = subset !== undefined || request ? this.requestBalancer : this.connectionBalancer;
    const result = picker.peek?.(ctx) ?? picker.pick(ctx);
    // A hashing balancer without a key (no hash_on value, no client address) picks at random.
    const keyed = ctx.hashKey !== undefined || (ctx.sourceAddress !== undefined && ctx.sourceAddress !== '');
    return { result, deterministic: kind === 'round-robin' || (HASHING.has(kind) && keyed) || result.kind === 'none' };
  }

  /** One endpoint's row of status() (health, ejection, load), or undefined when it is not a member. */
  endpointStatus(key: string): ClusterEndpointStatus | undefined {
    if (!this.#members.has(key)) return undefined;
    return this.status().endpoints.find((e) => e.endpoint === key);
  }

  /** Count a connection (or attempt) to `key` as in flight; call the returned function once when it ends. */
  acquire(key: string): Release {
    const m = this.#members.get(key);
    if (m === undefined) return NO_RELEASE;
    m.load.active++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      m.load.active--;
    };
  }

  pickForRequest(ctx: RequestPick): PickedEndpoint | undefined {
    return this.pickRequestIn(undefined, ctx);
  }

  /** @internal pickForRequest of the cluster or of a subset view. */
  pickRequestIn(subset: string | undefined, ctx: RequestPick): PickedEndpoint | undefined {
    let r = this.pick(ctx, subset, true);
    // Every endpoint was tried by this request: any usable one again (exclusions are a preference, not a ban).
    if (r.kind === 'none' && r.reason === 'all-excluded') r = this.pick({ ...ctx, exclude: undefined }, subset, true);
    if (r.kind !== 'endpoint') return undefined;
    const m = this.#members.get(r.endpoint.key);
    if (m !== undefined) m.load.active++;
    return r.endpoint;
  }

  report(endpoint: PickedEndpoint, outcome: AttemptOutcome): void {
    const m = this.#members.get(endpoint.key);
    if (m === undefined) return;
    if (m.load.active > 0) m.load.active--;
    if (outcome.kind === 'response') {
      const failed = outcome.status === 502 || outcome.status === 503 || outcome.status === 504;
      m.load.observe(outcome.latencyMs, failed);
    } else if (outcome.kind !== 'connect-failure') {
      m.load.observe(0, true);
    }
    const ev = this.#health?.recordOutcome(endpoint.key, outcome);
    if (ev !== undefined) this.#onHealthEvent(ev);
  }

  abandon(endpoint: PickedEndpoint): void {
    const m = this.#members.get(endpoint.key);
    if (m !== undefined && m.load.active > 0) m.load.active--;
  }

  // === breaker ===

  admit(kind: 'request' | 'connection' | 'pending'): Release | undefined {
    const b = this.breaker;
    if (b === undefined) return NO_RELEASE;
    const r = b.tryAcquire(kind as BreakerResource);
    return r === 'open' ? undefined : r;
  }

  admitRetry(): Release | 'circuit-open' | 'retry-budget-exhausted' {
    const b = this.breaker;
    if (b === undefined) return NO_RELEASE;
    const r = b.tryAcquireRetry();
    return r === 'open' ? 'circuit-open' : r === 'budget-exhausted' ? 'retry-budget-exhausted' : r;
  }

  // === connect ===

  /** The port TLS is opened to (tls_port), else the endpoint's. */
  #dataPort(port: number): number {
    return this.#tls === undefined ? port : this.#tls.portFor(port);
  }

  /**
   * Open a connection to `endpoint` (see src/upstream/transport/connect.ts). Connect results of member endpoints
   * feed the cluster's health; with a handler, it hears exactly one of ready / failed.
   */
  connect(endpoint: ConnectTarget & { readonly key?: string }, handler?: ConnectHandler): Socket {
    const key = endpoint.key ?? endpointKey(endpoint);
    const member = !this.originalDst && this.#members.has(key);
    return openConnection({ address: endpoint.address, port: this.#dataPort(endpoint.port) }, {
      timeoutMs: this.#connectTimeoutMs,
      localAddress: this.spec.inboundSource ? (isIPv4(endpoint.address) ? INBOUND_SOURCE_V4 : INBOUND_SOURCE_V6) : undefined,
      tls: this.#tls,
      handler,
      observer: member ? this : undefined,
      endpointKey: member ? key : undefined,
    });
  }

  /**
   * What connect() would do for `endpoint` over plain TCP, for a connect made outside Node (the native accept,
   * src/l4/native-connection.ts): the address and port, the connect timeout, the source address, and the key under
   * which its result feeds the cluster's health (onConnectResult), for a member endpoint. Undefined when the
   * cluster has a transport beyond TCP (TLS origination, mesh mTLS): only connect() can open those.
   */
  plainConnect(endpoint: ConnectTarget & { readonly key?: string }): PlainConnect | undefined {
    if (this.#tls !== undefined) return undefined;
    const key = endpoint.key ?? endpointKey(endpoint);
    const member = !this.originalDst && this.#members.has(key);
    return {
      address: endpoint.address,
      port: endpoint.port,
      timeoutMs: this.#connectTimeoutMs,
      localAddress: this.spec.inboundSource ? (isIPv4(endpoint.address) ? INBOUND_SOURCE_V4 : INBOUND_SOURCE_V6) : undefined,
      healthKey: member ? key : undefined,
    };
  }

  /** @internal ConnectObserver: a connect to a member finished. */
  onConnectResult(key: string, ok: boolean): void {
    if (!ok) {
      this.#connectFailures++;
      // A refused or timed-out connect is a failed observation for peak-EWMA (the failure penalty), L4 or L7 alike.
      this.#members.get(key)?.load.observe(0, true);
    }
    const ev = this.#health?.recordConnect(key, ok);
    if (ev !== undefined) this.#onHealthEvent(ev);
  }

  /** The transport beyond TCP: TLS origination or mesh mTLS. */
  get tls(): UpstreamTransport | undefined {
    return this.#tls;
  }

  // === views ===

  /** The view of subset `name` (endpoints labelled subset=NAME), shared breaker, health and load. */
  subset(name: string): ClusterView {
    let v = this.#subsets.get(name);
    if (v === undefined) {
      v = new SubsetView(this, name);
      this.#subsets.set(name, v);
    }
    return v;
  }

  /** The endpoints in the current connection picker (for logs and tests). */
  get inRotation(): ReadonlySet<string> {
    return this.#inRotation;
  }

  members(): readonly UpstreamEndpoint[] {
    return this.#sorted.map((m) => m.endpoint);
  }

  // === status ===

  status(): ClusterStatus {
    const service = this.spec.service;
    const o = this.#health?.stats();
    const b = this.breaker?.stats();
    const d = this.#dns?.status;
    const subsets: Record<string, string[]> = {};
    for (const m of this.#sorted) for (const s of m.endpoint.subsets ?? []) (subsets[s] ??= []).push(m.endpoint.key);
    return {
      kind: this.originalDst ? 'original-dst' : (service?.endpoints.kind ?? 'original-dst'),
      protocol: service?.protocol ?? 'auto',
      balancer: this.originalDst ? undefined : this.connectionBalancer,
      httpBalancer: this.originalDst ? undefined : this.requestBalancer,
      upstreamProtocol: this.protocol,
      tlsOrigination: this.#tls?.kind === 'tls',
      mtls: this.#tls?.kind === 'mtls',
      connectFailures: this.#connectFailures,
      ejections: o === undefined ? 0 : Object.values(o.ejections).reduce((a, n) => a + n, 0),
      ...(b === undefined ? {} : { breaker: { active: b.active, overflow: b.overflow, retryBudgetOverflow: b.retryBudgetOverflow } }),
      ...(o === undefined ? {} : { outlier: { ejected: o.ejected, ejections: o.ejections, ejectionsRefused: o.ejectionsRefused } }),
      endpoints: this.#sorted.map((m) => {
        const h = this.#health?.state(m.endpoint.key);
        return {
          endpoint: m.endpoint.key,
          weight: m.endpoint.weight,
          ...(m.endpoint.subsets === undefined ? {} : { subsets: m.endpoint.subsets }),
          active: m.load.active,
          healthy: m.healthy,
          ejected: h?.ejected ?? false,
          inRotation: this.#inRotation.has(m.endpoint.key),
          ejectionCount: h?.totalEjections ?? 0,
          consecutiveConnectFailures: h?.consecutiveConnectFailures ?? 0,
          weightFactor: Math.round((h?.weightFactor ?? 1) * 1000) / 1000,
        };
      }),
      ...(Object.keys(subsets).length === 0 ? {} : { subsets }),
      ...(d === undefined ? {} : {
        dns: { name: d.name, type: d.type, lastSuccessAt: d.lastSuccessAt, consecutiveFailures: d.consecutiveFailures, lastError: d.lastError?.code },
      }),
    };
  }

  // === internals ===

  #update(endpoints: readonly EndpointSpec[]): void {
    if (this.#closed) return;
    const removed = this.#applyMembership(endpoints);
    if (removed === undefined) return;
    this.#publish();
    if (removed.length > 0) for (const l of [...this.#listeners]) l.onEndpointsRemoved?.(removed);
  }

  /** Returns the keys removed, or undefined when nothing changed. */
  #applyMembership(specs: readonly EndpointSpec[]): string[] | undefined {
    const next = new Map<string, Member>();
    let changed = false;
    for (const spec of specs) {
      const key = endpointKey(spec);
      if (next.has(key)) continue;
      const old = this.#members.get(key);
      const endpoint = toUpstreamEndpoint(spec);
      if (old === undefined) {
        next.set(key, new Member(endpoint, new EndpointLoad(this.#clock, this.spec.policy.ewma)));
        changed = true;
        continue;
      }
      const e = old.endpoint;
      if (e.weight !== endpoint.weight || e.zone !== endpoint.zone || !sameList(e.subsets, endpoint.subsets)) {
        old.endpoint = endpoint;
        changed = true;
      }
      next.set(key, old);
    }
    const removed = [...this.#members.keys()].filter((k) => !next.has(k));
    if (removed.length > 0) changed = true;
    if (!changed) return undefined;
    this.#members = next;
    this.#sorted = [...next.values()].sort((a, b) => (a.endpoint.key < b.endpoint.key ? -1 : 1));
    for (const ev of this.#health?.setEndpoints(next.keys()) ?? []) this.#logEvent(ev);
    if (this.#active !== undefined) {
      this.#active.setEndpoints(this.#sorted.map((m) => m.endpoint));
      for (const m of this.#sorted) m.healthy = this.#active.isHealthy(m.endpoint.key) ?? true;
    }
    return removed;
  }

  #setHealth(key: string, healthy: boolean): void {
    const m = this.#members.get(key);
    if (this.#closed || m === undefined || m.healthy === healthy) return;
    m.healthy = healthy;
    this.#log.info({ event: 'endpoint.health', service: this.name, endpoint: key, healthy },
      healthy ? 'endpoint healthy again (active check)' : 'endpoint unhealthy (active check)');
    this.#publish();
  }

  #onHealthEvent(ev: HealthEvent): void {
    this.#logEvent(ev);
    if (ev.kind !== 'refused') this.#publish();
  }

  #logEvent(ev: HealthEvent): void {
    if (ev.kind === 'ejected') {
      this.#log.warn({
        event: 'endpoint.ejected', service: this.name, endpoint: ev.endpoint, reason: ev.reason, ejectedForMs: ev.durationMs,
        ejectionCount: ev.ejectionCount,
      }, 'endpoint ejected');
    } else if (ev.kind === 'refused') {
      this.#log.info({ event: 'endpoint.ejection-refused', service: this.name, endpoint: ev.endpoint, reason: ev.reason },
        'endpoint not ejected: max_ejected_percent reached');
    } else {
      this.#log.info({ event: 'endpoint.returned', service: this.name, endpoint: ev.endpoint }, 'endpoint back from ejection');
    }
  }

  /** The health tick (interval work, returns): one timer, re-armed after each run. */
  #scheduleTick(): void {
    if (this.#closed) return;
    this.#tick = this.#timers.setTimeout(() => {
      this.#tick = undefined;
      this.#onTick();
      this.#scheduleTick();
    }, this.#tickEveryMs);
  }

  #onTick(): void {
    const events = this.#health?.tick() ?? [];
    for (const ev of events) this.#logEvent(ev);
    if (events.length > 0 || this.#clock.now() >= this.#nextChangeAt) this.#publish();
  }

  #refresh(): void {
    for (const ev of this.#health?.tick() ?? []) this.#logEvent(ev);
    this.#publish();
  }

  /** Build and publish the pickers from membership, active health, ejections and slow start. */
  #publish(): void {
    const health = this.#health;
    const usable: Member[] = [];
    const factors: number[] = [];
    let ramping = false;
    for (const m of this.#sorted) {
      if (!m.healthy) continue;
      const f = health === undefined ? 1 : health.weightFactor(m.endpoint.key);
      if (f <= 0) continue;
      if (f < 1) ramping = true;
      usable.push(m);
      factors.push(f);
    }
    const entries = (hashing: boolean): PickerEndpoint[] => usable.map((m, i) => ({
      endpoint: m.endpoint,
      load: m.load,
      // Consistent hashing keeps configured weights: moving weights would move keys between endpoints.
      weight: !ramping || hashing ? m.endpoint.weight : Math.max(1, Math.round(m.endpoint.weight * SLOW_START_SCALE * (factors[i] as number))),
    }));
    const none = this.#sorted.length === 0 ? 'no-endpoints' : 'no-healthy-endpoint';
    const build = (builder: PickerBuilder, kind: BalancerKind, list: PickerEndpoint[] | undefined): Picker => {
      const l = list ?? entries(HASHING.has(kind));
      return l.length === 0 ? new UnavailablePicker(none) : builder(l, { random: this.#random });
    };
    this.#connPicker = build(this.#connBuilder, this.connectionBalancer, undefined);
    this.#reqPicker = this.#reqBuilder === this.#connBuilder ? this.#connPicker : build(this.#reqBuilder, this.requestBalancer, undefined);
    const subsets = new Map<string, Picker>();
    const all = entries(HASHING.has(this.requestBalancer));
    const names = new Set<string>();
    for (const m of this.#sorted) for (const s of m.endpoint.subsets ?? []) names.add(s);
    for (const s of names) {
      const list = all.filter((p) => p.endpoint.subsets?.includes(s) === true);
      const members = this.#sorted.some((m) => m.endpoint.subsets?.includes(s) === true);
      subsets.set(s, list.length === 0
        ? new UnavailablePicker(members ? 'no-healthy-endpoint' : 'no-endpoints') : this.#reqBuilder(list, { random: this.#random }));
    }
    this.#subsetPickers = subsets;
    const next = new Set(this.#connPicker.endpoints.map((e) => e.key));
    this.#logRotation(next);
    this.#inRotation = next;
    this.#arm();
  }

  #logRotation(next: ReadonlySet<string>): void {
    const prev = this.#inRotation;
    const out = [...prev].filter((k) => !next.has(k));
    const back = [...next].filter((k) => !prev.has(k));
    if (out.length === 0 && back.length === 0) return;
    this.#log.info({ event: 'endpoints.rotation', service: this.name, out, in: back, inRotation: next.size }, 'endpoints in rotation changed');
  }

  /** One timer at the next change a picker must reflect (an ejection ending, a slow-start step). */
  #arm(): void {
    const health = this.#health;
    const step = Math.max(250, Math.floor((health?.config.slowStartMs ?? 0) / SLOW_START_STEPS));
    const at = health === undefined ? Infinity : health.nextChangeAt(step);
    this.#nextChangeAt = at;
    if (at === this.#timerAt || this.#closed) return;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === Infinity) return;
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      if (!this.#closed) this.#refresh();
    }, at - this.#clock.now());
  }
}

const NO_SUBSET = new UnavailablePicker('no-endpoints');

function sameList(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === b) return true;
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((s, i) => s === y[i]);
}

/** A subset of a cluster as the router sees it: its own picker, everything else the cluster's. */
class SubsetView implements ClusterView {
  readonly id: string;
  readonly name: string;
  readonly #cluster: Cluster;
  readonly #subset: string;

  constructor(cluster: Cluster, subset: string) {
    this.#cluster = cluster;
    this.#subset = subset;
    this.id = cluster.id;
    this.name = `${cluster.name}/${subset}`;
  }

  get protocol(): UpstreamProtocolSetting { return this.#cluster.protocol; }
  pickForRequest(ctx: RequestPick): PickedEndpoint | undefined { return this.#cluster.pickRequestIn(this.#subset, ctx); }
  report(endpoint: PickedEndpoint, outcome: AttemptOutcome): void { this.#cluster.report(endpoint, outcome); }
  abandon(endpoint: PickedEndpoint): void { this.#cluster.abandon(endpoint); }
  admit(kind: 'request' | 'connection' | 'pending'): Release | undefined { return this.#cluster.admit(kind); }
  admitRetry(): Release | 'circuit-open' | 'retry-budget-exhausted' { return this.#cluster.admitRetry(); }
  connect(endpoint: ConnectTarget & { readonly key?: string }, handler: ConnectHandler): Socket { return this.#cluster.connect(endpoint, handler); }
  subscribe(listener: ClusterListener): () => void { return this.#cluster.subscribe(listener); }
}

/** One endpoint of a cluster in /stats. */
export interface ClusterEndpointStatus {
  readonly endpoint: string;
  readonly weight: number;
  readonly subsets?: readonly string[];
  /** Connections and request attempts in flight. */
  readonly active: number;
  /** Active health (true when active checks are off). */
  readonly healthy: boolean;
  readonly ejected: boolean;
  /** In the current picker: a member, healthy and not ejected. */
  readonly inRotation: boolean;
  /** Ejections since the endpoint joined. */
  readonly ejectionCount: number;
  readonly consecutiveConnectFailures: number;
  /** Below 1 while the endpoint ramps up after an ejection (slow start). */
  readonly weightFactor: number;
}

/** A cluster in /stats (`services.NAME`). */
export interface ClusterStatus {
  readonly kind: 'static' | 'dns' | 'original-dst';
  readonly protocol: string;
  readonly balancer: BalancerKind | undefined;
  readonly httpBalancer: BalancerKind | undefined;
  readonly upstreamProtocol: string;
  readonly tlsOrigination: boolean;
  /** Mesh mTLS to the endpoints ([service NAME] mtls = true). */
  readonly mtls: boolean;
  /** Connect attempts that failed before TCP was up. */
  readonly connectFailures: number;
  readonly ejections: number;
  readonly breaker?: {
    readonly active: Readonly<Record<string, number>>;
    readonly overflow: Readonly<Record<string, number>>;
    readonly retryBudgetOverflow: number;
  };
  readonly outlier?: {
    readonly ejected: number;
    readonly ejections: Readonly<Record<string, number>>;
    readonly ejectionsRefused: number;
  };
  readonly endpoints: readonly ClusterEndpointStatus[];
  /** Endpoint keys per subset label. */
  readonly subsets?: Readonly<Record<string, readonly string[]>>;
  readonly dns?: {
    readonly name: string;
    readonly type: string;
    readonly lastSuccessAt: number | undefined;
    readonly consecutiveFailures: number;
    readonly lastError: string | undefined;
  };
}
