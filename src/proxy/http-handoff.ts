// The proxy's HTTP layer: connections detected (or declared) as HTTP/1.x or h2c are handed to the L7 engine
// (src/l7/http-engine.ts) instead of being forwarded as opaque TCP. This file builds the engine's dependencies from
// what the proxy already has: the service registry and its live endpoints (src/proxy/services.ts: static or DNS,
// filtered by active health and L4 ejection), the [route NAME] table and the [traffic-policy SERVICE] policies.
//
//   outbound engine: per request, the service is the one whose VIP is the connection's original destination (found
//     once at accept), else the one whose hostname matches the request's Host / :authority, else none:
//     passthrough to the original destination ([registry] mode = passthrough) or a local 404 no-route
//     (registry-only). A service's requests are routed by its routes (RouteTable.match; a service without routes
//     goes to itself), balanced over its endpoints by its ServicePolicies (request balancer, breaker, outlier
//     detection), retried by the route's retry policy, and sent with the service's upstream protocol and TLS.
//   inbound engine: passthrough only, to the local app (inbound_delivery), from 127.0.0.6 / ::6.
//
// The route table is one reference: the admin API (POST /routes/NAME/weights) swaps it for a new table built with
// RouteTable.withWeights; every request reads the current reference, so a change applies to the next request.
import { Socket, isIPv4 } from 'node:net';
import { RemoraError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { HttpServiceStatsJson, HttpStatsJson } from '../core/stats.js';
import type { RouteAdmin } from '../admin/route-weights.js';
import { tlsFailureCode, type TlsOriginator } from '../upstream/transport/tls-origination.js';
import {
  createHttpEngine,
  PASSTHROUGH_DECISION,
  type EndpointPickContext,
  type HttpEngine,
  type HttpEngineOptions,
  type L7Deps,
  type L7Endpoint,
  type L7Stats,
  type UpstreamCluster,
} from '../l7/engine/http-engine.js';
import type { RequestHead, RouteDecision } from '../l7/request-types.js';
import type { AttemptOutcome } from '../upstream/health/attempt-outcome.js';
import type { WeightedBackend } from '../config/route-spec.js';
import { localReply } from '../l7/local-reply.js';
import type { UpstreamConnector, UpstreamTarget } from '../l7/pool/pool-types.js';
import type { RequestBalancerKind } from '../config/traffic-policy-spec.js';
import { createRetryDecider } from '../l7/router/retry-policy.js';
import { RouteTable } from '../l7/router/route-table.js';
import { backendId, parseWeights, type HashOn, type RouteSpec } from '../config/route-spec.js';
import { ServicePolicies } from '../l7/service-policies.js';
import { defaultTrafficPolicy } from '../config/traffic-policy-config.js';
import { type TrafficPolicySpec } from '../config/traffic-policy-spec.js';
import { DEFAULT_POOL_OPTIONS } from '../l7/pool/upstream-pools.js';
import type { ServiceSpec } from '../config/service-spec.js';
import type { BalancerKind } from '../config/service-spec.js';
import { endpointKey } from '../config/service-spec.js';
import type { UpstreamEndpoint } from '../upstream/picker.js';
import type { HttpHandoff, HttpHandoffContext } from '../l4/staged-connection.js';
import { INBOUND_SOURCE_V4, INBOUND_SOURCE_V6, type Direction, type InboundDelivery } from '../l4/inbound-delivery.js';
import type { ServiceRuntime, Services } from './services.js';

export interface HttpLayerOptions {
  readonly services: Services;
  readonly routes: readonly RouteSpec[];
  readonly policies: ReadonlyMap<string, TrafficPolicySpec>;
  readonly log: Logger;
  readonly inboundDelivery: InboundDelivery;
  /** The proxy's connect_timeout (a service's own connect_timeout wins). */
  readonly connectTimeoutMs: number;
  /** The proxy's idle_timeout: idle downstream HTTP connections and tunnels (0 = the engine's defaults). */
  readonly idleTimeoutMs: number;
  readonly engine?: Partial<HttpEngineOptions>;
  readonly random?: () => number;
  readonly clock?: { now(): number };
}

/** What the admin API sees of a route (src/admin/route-weights.ts RouteAdmin). */
export interface RouteView {
  readonly name: string;
  readonly service: string;
  readonly order: number;
  readonly source: string | undefined;
  readonly weights: Readonly<Record<string, number>>;
}

export type SetWeightsResult =
  | { readonly ok: true; readonly route: RouteView; readonly version: number }
  | { readonly ok: false; readonly status: 400 | 404; readonly error: string };

/**
 * The request balancer a service gets when its [traffic-policy] does not name one: the L4 `balancer`'s HTTP
 * counterpart, so that `balancer = round-robin` means round robin for its requests too.
 */
export function requestBalancerFor(l4: BalancerKind): { kind: RequestBalancerKind; hashOn: HashOn | undefined } {
  switch (l4) {
    case 'round-robin': return { kind: 'round-robin', hashOn: undefined };
    case 'ring-hash':
    case 'maglev': return { kind: 'ring-hash', hashOn: { kind: 'source' } };
    default: return { kind: 'least-request', hashOn: undefined };
  }
}

const REFUSED: RouteDecision = Object.freeze({ kind: 'reply', reply: localReply('no-route') });

/** One service as the engine's UpstreamCluster: its endpoints, request balancer, breaker and outlier detection. */
class ServiceCluster implements UpstreamCluster {
  readonly name: string;
  readonly protocol: UpstreamCluster['protocol'];
  readonly policies: ServicePolicies;
  readonly #log: Logger;
  readonly #count: (name: string) => void;
  /** discovery = original-dst: every request goes to its own original destination. */
  readonly #originalDst: boolean;
  readonly #defaultHashOn: HashOn | undefined;
  readonly #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** Set for a subset's cluster ("web subset=v2"): only endpoints labelled subset=NAME, the service's breaker and outliers. */
  readonly subset: string | undefined;

  constructor(runtime: ServiceRuntime, spec: TrafficPolicySpec, deps: {
    log: Logger; count: (name: string) => void; clock: { now(): number }; random: () => number;
  }, subsetOf?: { readonly name: string; readonly service: ServiceCluster }) {
    this.name = runtime.name;
    this.#log = deps.log;
    this.#count = deps.count;
    this.protocol = spec.upstreamProtocol === 'downstream' ? 'downstream' : spec.upstreamProtocol;
    let policy = spec;
    let hashOn: HashOn | undefined;
    if (!spec.balancerExplicit) {
      const derived = requestBalancerFor(runtime.spec.balancer);
      policy = { ...spec, balancer: derived.kind };
      hashOn = derived.hashOn;
    }
    this.#defaultHashOn = hashOn;
    this.subset = subsetOf?.name;
    this.policies = new ServicePolicies(policy, { clock: deps.clock, random: deps.random }, subsetOf?.service.policies);
    const set = runtime.set;
    this.#originalDst = set === undefined;
    if (set !== undefined) {
      const name = subsetOf?.name;
      const members = (endpoints: readonly UpstreamEndpoint[]): readonly UpstreamEndpoint[] =>
        (name === undefined ? endpoints : endpoints.filter((e) => e.subsets?.includes(name) === true));
      this.policies.setEndpoints(members(set.picker.endpoints));
      this.#unsubscribe = set.subscribe((picker) => { this.policies.setEndpoints(members(picker.endpoints)); });
    }
  }

  pick(ctx: EndpointPickContext): L7Endpoint | undefined {
    if (this.#originalDst) return ctx.head.originalDst;
    return this.policies.pick({
      head: ctx.head, tried: ctx.tried, preferOtherHosts: ctx.preferOtherHosts, hashOn: ctx.hashOn ?? this.#defaultHashOn,
    });
  }

  admit(kind: 'request' | 'retry' | 'connection' | 'pending'): (() => void) | undefined {
    return this.policies.admit(kind);
  }

  admitRetry(): (() => void) | 'circuit-open' | 'retry-budget-exhausted' {
    return this.policies.admitRetry();
  }

  report(endpoint: L7Endpoint, outcome: AttemptOutcome): void {
    if (this.#originalDst) return;
    const ev = this.policies.report(endpoint, outcome);
    if (ev?.kind === 'ejected') {
      this.#count('http.outlier.ejections');
      this.#log.warn({ service: this.name, endpoint: ev.endpoint, reason: ev.reason, ejections: ev.ejectionCount,
        ejectedForMs: Math.max(0, ev.untilMs - Date.now()) }, 'endpoint ejected by outlier detection');
    }
  }

  abandon(endpoint: L7Endpoint): void {
    if (!this.#originalDst) this.policies.abandon(endpoint);
  }

  /** Outlier detection's interval work (returns, success rate); one unref'd timer per service. */
  start(): void {
    // A subset's outlier detection is its service's: the service's timer ticks it.
    if (this.#originalDst || this.subset !== undefined || this.#timer !== undefined) return;
    const o = this.policies.spec.outlier;
    // Returns are time-based (isEjected is exact without tick); the tick only logs them and runs success rate.
    const every = Math.max(100, Math.min(o.intervalMs, o.baseEjectionMs));
    this.#timer = setInterval(() => {
      for (const ev of this.policies.tick()) {
        if (ev.kind === 'returned') {
          this.#log.info({ service: this.name, endpoint: ev.endpoint }, 'endpoint back from outlier ejection');
        } else {
          this.#count('http.outlier.ejections');
          this.#log.warn({ service: this.name, endpoint: ev.endpoint, reason: ev.reason }, 'endpoint ejected by outlier detection');
        }
      }
    }, every);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
  }

  status(): HttpServiceStatsJson {
    const b = this.policies.breaker.stats();
    const o = this.policies.outlier.stats();
    return {
      upstreamProtocol: this.protocol,
      balancer: this.#originalDst ? undefined : this.policies.balancer.kind,
      breaker: { active: b.active, overflow: b.overflow, retryBudgetOverflow: b.retryBudgetOverflow },
      outlier: { ejected: o.ejected, ejections: o.ejections, ejectionsRefused: o.ejectionsRefused },
      endpoints: this.#originalDst ? [] : this.#endpointStates().map((e) => ({
        endpoint: e.key,
        activeRequests: this.policies.load.active(e.key),
        ejected: e.ejected,
        ejectionCount: e.ejectionCount,
        weightFactor: Math.round(e.weightFactor * 1000) / 1000,
      })),
    };
  }

  /** Outlier state of this cluster's endpoints (a subset's only, though its detector is the service's). */
  #endpointStates(): ReturnType<ServicePolicies['outlier']['endpointStates']> {
    const all = this.policies.outlier.endpointStates();
    if (this.subset === undefined) return all;
    const mine = new Set(this.policies.endpoints.map((e) => e.key));
    return all.filter((e) => mine.has(e.key));
  }
}

class Counters implements L7Stats {
  readonly map = new Map<string, number>();

  increment(name: string, by = 1): void {
    this.map.set(name, (this.map.get(name) ?? 0) + by);
  }

  json(): Record<string, number> {
    return Object.fromEntries([...this.map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}

interface ConnectOptions {
  readonly tls: TlsOriginator | undefined;
  readonly timeoutMs: number;
  readonly localAddress: string | undefined;
  /** Connect outcomes for L4 passive health (endpoint key, error or undefined). */
  readonly onResult: ((key: string, err: Error | undefined) => void) | undefined;
}

/**
 * Open a TCP (or TLS) connection for the pools. A failure before TCP is up is a connect failure (reported to the
 * service's passive health); a failed TLS handshake is REMORA_ERR_UPSTREAM_TLS (not an endpoint's fault alone).
 */
function openUpstream(target: UpstreamTarget, signal: AbortSignal, o: ConnectOptions): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const key = endpointKey(target);
    const socket: Socket = o.tls === undefined
      ? new Socket({ allowHalfOpen: true })
      : o.tls.connect(target.address, o.tls.portFor(target.port), o.localAddress);
    // Permanent: an error after the pool detached must never be unhandled.
    socket.on('error', () => undefined);
    let tcpUp = false;
    let settled = false;
    const finish = (err: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      if (err === undefined) {
        socket.setNoDelay(true);
        resolve(socket);
        return;
      }
      socket.destroy();
      reject(err);
    };
    const onAbort = (): void => {
      finish(signal.reason instanceof Error ? signal.reason : new Error('connect aborted'));
    };
    const onError = (err: Error): void => {
      if (!tcpUp) {
        o.onResult?.(key, err);
        finish(err);
        return;
      }
      finish(new RemoraError('REMORA_ERR_UPSTREAM_TLS', `the TLS handshake with the upstream failed (${tlsFailureCode(err)})`, { cause: err }));
    };
    const timer = setTimeout(() => {
      const err = new RemoraError('REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT', 'connecting to the upstream timed out');
      if (!tcpUp) o.onResult?.(key, err);
      finish(err);
    }, o.timeoutMs);
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', onError);
    socket.once('connect', () => {
      tcpUp = true;
      o.onResult?.(key, undefined);
      if (o.tls === undefined) finish(undefined);
    });
    if (o.tls !== undefined) {
      socket.once('secureConnect', () => { finish(undefined); });
      return;
    }
    if (o.localAddress === undefined) socket.connect({ host: target.address, port: target.port });
    else socket.connect({ host: target.address, port: target.port, localAddress: o.localAddress });
  });
}

function inboundSource(address: string): string {
  return isIPv4(address) ? INBOUND_SOURCE_V4 : INBOUND_SOURCE_V6;
}

export class HttpLayer implements RouteAdmin {
  readonly outbound: HttpHandoff;
  readonly inbound: HttpHandoff;
  readonly #o: HttpLayerOptions;
  readonly #services: Services;
  /** By backend id: "web" for a service, "web/v2" for its subset v2 (only subsets some route names). */
  readonly #clusters = new Map<string, ServiceCluster>();
  readonly #counters: Record<Direction, Counters> = { outbound: new Counters(), inbound: new Counters() };
  readonly #engines: Record<Direction, HttpEngine>;
  /** Per connection (keyed by the originalDst object the engine hands back in RequestHead): its VIP service. */
  readonly #vipOf = new WeakMap<object, ServiceSpec | null>();
  readonly #hasHostnames: boolean;
  readonly #registryOnly: boolean;
  #table: RouteTable;
  #shutdown: Promise<void> | undefined;

  constructor(o: HttpLayerOptions) {
    this.#o = o;
    this.#services = o.services;
    const random = o.random ?? Math.random;
    const clock = o.clock ?? { now: () => Date.now() };
    this.#table = RouteTable.compile(o.routes, { random });
    const registry = o.services.registry;
    this.#hasHostnames = registry.services.some((s) => s.hostnames.length > 0);
    this.#registryOnly = registry.registry.mode === 'registry-only';
    const outCounters = this.#counters.outbound;
    const clusterDeps = { log: o.log, count: (name: string) => { outCounters.increment(name); }, clock, random };
    const subsetsOf = new Map<string, Set<string>>();
    for (const r of o.routes) {
      for (const b of r.backends) {
        if (b.subset !== undefined) subsetsOf.set(b.service, (subsetsOf.get(b.service) ?? new Set()).add(b.subset));
      }
    }
    for (const spec of registry.services) {
      const runtime = o.services.runtime(spec.name);
      if (runtime === undefined) continue;
      const policy = o.policies.get(spec.name) ?? defaultTrafficPolicy(spec.name);
      const service = new ServiceCluster(runtime, policy, clusterDeps);
      this.#clusters.set(spec.name, service);
      for (const name of subsetsOf.get(spec.name) ?? []) {
        this.#clusters.set(backendId({ service: spec.name, subset: name }), new ServiceCluster(runtime, policy, clusterDeps, { name, service }));
      }
    }
    // The pools' own connect timer must not cut a service's longer connect_timeout short (the connector enforces each).
    const longest = Math.max(o.connectTimeoutMs, ...registry.services.map((s) => s.connectTimeoutMs ?? 0));
    const pools = {
      http1: { ...DEFAULT_POOL_OPTIONS.http1, connectTimeoutMs: longest + 1_000 },
      http2: { ...DEFAULT_POOL_OPTIONS.http2, connectTimeoutMs: longest + 1_000 },
    };
    const engineOptions: Partial<HttpEngineOptions> = {
      ...(o.idleTimeoutMs > 0 ? { downstreamIdleTimeoutMs: o.idleTimeoutMs, tunnelIdleTimeoutMs: o.idleTimeoutMs } : {}),
      pools,
      ...o.engine,
    };
    const retry = createRetryDecider(random);
    const hasServices = registry.services.length > 0 || this.#registryOnly;
    const outboundDeps: L7Deps = {
      log: o.log,
      // No services: every request is passthrough, and the engine's fast path skips routing altogether.
      ...(hasServices ? { route: this.#route, cluster: this.#cluster } : {}),
      retry,
      localReply,
      connect: this.#outboundConnector,
      stats: outCounters,
    };
    const inboundDeps: L7Deps = {
      log: o.log,
      retry,
      localReply,
      connect: this.#inboundConnector,
      stats: this.#counters.inbound,
    };
    this.#engines = {
      outbound: createHttpEngine(outboundDeps, engineOptions),
      inbound: createHttpEngine(inboundDeps, engineOptions),
    };
    this.outbound = { handleConnection: (socket, initialBytes, ctx) => { this.#handle('outbound', socket, initialBytes, ctx); } };
    this.inbound = { handleConnection: (socket, initialBytes, ctx) => { this.#handle('inbound', socket, initialBytes, ctx); } };
  }

  /** Start the outlier-detection timers. */
  start(): void {
    for (const c of this.#clusters.values()) c.start();
  }

  /** The current route table (tests, admin). */
  get table(): RouteTable {
    return this.#table;
  }

  #handle(direction: Direction, socket: Socket, initialBytes: Buffer, ctx: HttpHandoffContext): void {
    const counters = this.#counters[direction];
    if (this.#shutdown !== undefined) {
      // Draining: the listeners are closed, but a connection detected just now may still arrive.
      counters.increment('http.connections_refused_draining');
      socket.destroy();
      return;
    }
    const engine = this.#engines[direction];
    const dst = ctx.originalDst;
    if (direction === 'inbound') {
      // The engine's passthrough upstream is the local app (inbound_delivery); the connector binds 127.0.0.6 / ::6.
      const v4 = isIPv4(dst.address);
      const address = this.#o.inboundDelivery === 'loopback' ? (v4 ? '127.0.0.1' : '::1') : dst.address;
      engine.handleConnection(socket, initialBytes, {
        protocol: ctx.protocol, originalDst: { address, port: dst.port }, sourceAddress: ctx.sourceAddress,
      });
      return;
    }
    const originalDst = { address: dst.address, port: dst.port };
    const vip = ctx.service === undefined ? undefined : this.#services.table.service(ctx.service);
    this.#vipOf.set(originalDst, vip ?? null);
    engine.handleConnection(socket, initialBytes, { protocol: ctx.protocol, originalDst, sourceAddress: ctx.sourceAddress });
  }

  /** The service of a request: the connection's VIP, else its Host / :authority, else none. */
  #serviceOf(head: RequestHead): ServiceSpec | undefined {
    let vip = this.#vipOf.get(head.originalDst);
    if (vip === undefined) vip = this.#services.table.byAddress(head.originalDst.address, head.originalDst.port) ?? null;
    if (vip !== null) return vip;
    if (!this.#hasHostnames || head.authority === '') return undefined;
    return this.#services.table.byHostname(head.authority, head.originalDst.port);
  }

  readonly #route = (head: RequestHead): RouteDecision => {
    const service = this.#serviceOf(head);
    if (service === undefined) {
      if (this.#registryOnly) {
        this.#counters.outbound.increment('http.unknown_destination');
        return REFUSED;
      }
      return PASSTHROUGH_DECISION;
    }
    return this.#table.match(head, service.name);
  };

  readonly #cluster = (backend: WeightedBackend): UpstreamCluster | undefined =>
    this.#clusters.get(backend.subset === undefined ? backend.service : backendId(backend));

  readonly #outboundConnector: UpstreamConnector = (target, signal) => {
    const runtime = this.#services.runtime(target.cluster);
    return openUpstream(target, signal, {
      tls: runtime?.tls,
      timeoutMs: runtime?.connectTimeoutMs ?? this.#o.connectTimeoutMs,
      localAddress: undefined,
      onResult: runtime === undefined ? undefined : (key, err) => {
        if (err === undefined) runtime.reportConnectSuccess(key);
        else runtime.reportConnectFailure(key, err);
      },
    });
  };

  readonly #inboundConnector: UpstreamConnector = (target, signal) => openUpstream(target, signal, {
    tls: undefined, timeoutMs: this.#o.connectTimeoutMs, localAddress: inboundSource(target.address), onResult: undefined,
  });

  // === admin API ===
  routes(): { version: number; routes: RouteView[] } {
    return { version: this.#table.version, routes: this.#table.describe().map((r) => this.#view(r.name) as RouteView) };
  }

  route(name: string): RouteView | undefined {
    return this.#view(name);
  }

  #view(name: string): RouteView | undefined {
    const spec = this.#table.route(name);
    if (spec === undefined) return undefined;
    return {
      name: spec.name, service: spec.service, order: spec.order, source: spec.source,
      weights: Object.fromEntries(spec.backends.map((b) => [backendId(b), b.weight])),
    };
  }

  /** `text`: "web-v1=50, web-v2=50". On success the next request sees the new weights; on error nothing changes. */
  setWeights(name: string, text: string): SetWeightsResult {
    if (this.#table.route(name) === undefined) return { ok: false, status: 404, error: `no route named "${name}"` };
    const parsed = parseWeights(text);
    if (!parsed.ok) return { ok: false, status: 400, error: `expected ${parsed.expected}` };
    const r = this.#table.withWeights(name, parsed.value);
    if (!r.ok) return { ok: false, status: 400, error: r.error };
    const before = this.#view(name);
    this.#table = r.table;
    const route = this.#view(name) as RouteView;
    this.#o.log.info({ route: name, from: before?.weights, to: route.weights, version: r.table.version }, 'route weights changed');
    return { ok: true, route, version: r.table.version };
  }

  // === lifecycle ===
  /** Drain: HTTP/1.1 connections close after their response (Connection: close), HTTP/2 sessions get GOAWAY. */
  shutdown(graceMs: number): Promise<void> {
    this.#shutdown ??= Promise.all([
      this.#engines.outbound.shutdown(graceMs),
      this.#engines.inbound.shutdown(graceMs),
    ]).then(() => undefined);
    return this.#shutdown;
  }

  close(): void {
    for (const c of this.#clusters.values()) c.close();
  }

  get activeConnections(): number {
    return this.#engines.outbound.activeConnections + this.#engines.inbound.activeConnections;
  }

  stats(): HttpStatsJson {
    const services: Record<string, HttpServiceStatsJson> = {};
    for (const [name, c] of this.#clusters) services[name] = c.status();
    return {
      outbound: this.#counters.outbound.json(),
      inbound: this.#counters.inbound.json(),
      pools: { outbound: this.#engines.outbound.poolSnapshot(), inbound: this.#engines.inbound.poolSnapshot() },
      routeTableVersion: this.#table.version,
      services,
    };
  }
}
