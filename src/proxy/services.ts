// The live side of the service registry: one ServiceRuntime per [service NAME] with its EndpointSet (balancer,
// load counters, passive health, optional active TCP health checks), its DNS discovery and its TLS originator.
// Built once at startup from the parsed registry; start() begins discovery and health checks, close() stops them.
// A runtime is what the dialer (src/l4/upstream-dialer.ts) picks endpoints from, and it logs what happens to
// endpoints: ejections, and every change of the set of endpoints in rotation.
import type { ServiceRegistry, ServiceSpec } from '../config/service-spec.js';
import type { Logger } from '../core/log.js';
import type { ServiceStatsJson } from '../core/stats.js';
import type { OriginalDst } from '../interceptor/original-dst.js';
import { tcpConnectProbe } from '../upstream/transport/tcp-probe.js';
import type { TlsOriginator } from '../upstream/transport/tls-origination.js';
import type { DialEndpoints, DialSpec } from '../l4/upstream-dialer.js';
import { createDnsResolver, DnsDiscovery, type DnsResolverLike } from '../upstream/dns-discovery.js';
import { EndpointSet } from '../upstream/endpoint-set.js';
import type { PickContext, PickResult } from '../upstream/picker.js';
import { ServiceTable } from '../upstream/service-table.js';

export interface ServiceRuntimeDeps {
  readonly log: Logger;
  /** The proxy's connect_timeout (a service's own connect_timeout wins). */
  readonly connectTimeoutMs: number;
  readonly tls: TlsOriginator | undefined;
}

export class ServiceRuntime implements DialEndpoints {
  readonly name: string;
  readonly spec: ServiceSpec;
  readonly tls: TlsOriginator | undefined;
  readonly connectTimeoutMs: number;
  /** undefined for discovery = original-dst (the one endpoint is each connection's original destination). */
  readonly set: EndpointSet | undefined;
  discovery: DnsDiscovery | undefined;
  readonly #log: Logger;
  #inRotation = new Set<string>();
  #connectFailures = 0;
  #ejections = 0;

  constructor(spec: ServiceSpec, deps: ServiceRuntimeDeps) {
    this.name = spec.name;
    this.spec = spec;
    this.tls = deps.tls;
    this.connectTimeoutMs = spec.connectTimeoutMs ?? deps.connectTimeoutMs;
    this.#log = deps.log;
    if (spec.endpoints.kind === 'original-dst') {
      this.set = undefined;
      return;
    }
    const p = spec.passiveHealth;
    const a = spec.activeHealth;
    const tls = deps.tls;
    this.set = new EndpointSet(spec.endpoints.kind === 'static' ? spec.endpoints.endpoints : [], {
      balancer: spec.balancer,
      passiveHealth: p.ejectAfterFailures === 0 ? false : {
        consecutiveFailures: p.ejectAfterFailures,
        baseEjectionMs: p.ejectBaseTimeMs,
        maxEjectionMs: p.ejectMaxTimeMs,
        maxEjectionShare: p.maxEjectedPercent / 100,
      },
      ...(a.kind === 'tcp' ? {
        activeHealth: {
          // The port the data path connects to: with TLS origination, tls_port.
          probe: (endpoint, signal) => tcpConnectProbe(
            { address: endpoint.address, port: tls === undefined ? endpoint.port : tls.portFor(endpoint.port) }, signal),
          intervalMs: a.intervalMs,
          timeoutMs: a.timeoutMs,
          healthyThreshold: a.healthyThreshold,
          unhealthyThreshold: a.unhealthyThreshold,
          onError: (key, err) => { this.#log.debug({ service: this.name, endpoint: key, err }, 'health probe failed'); },
        },
      } : {}),
    });
    this.#inRotation = new Set(this.set.picker.endpoints.map((e) => e.key));
    this.set.subscribe((picker) => { this.#rotationChanged(new Set(picker.endpoints.map((e) => e.key))); });
  }

  /** Where a connection to this service dials: its endpoints, or (original-dst) the connection's own destination. */
  dialSpec(origDst: OriginalDst, sourceAddress: string | undefined): DialSpec {
    if (this.set === undefined) {
      return {
        address: origDst.address, port: origDst.port, attempts: 1, connectTimeoutMs: this.connectTimeoutMs, tls: this.tls,
      };
    }
    return {
      endpoints: this, attempts: this.spec.connectAttempts, connectTimeoutMs: this.connectTimeoutMs, tls: this.tls,
      sourceAddress,
    };
  }

  // === DialEndpoints ===
  pick(ctx: PickContext): PickResult {
    return (this.set as EndpointSet).pick(ctx);
  }

  acquire(key: string): () => void {
    return (this.set as EndpointSet).acquire(key);
  }

  reportConnectSuccess(key: string): void {
    this.set?.reportConnectSuccess(key);
  }

  reportConnectFailure(key: string, err: Error): void {
    this.#connectFailures++;
    const outcome = this.set?.reportConnectFailure(key);
    if (outcome?.kind === 'ejected') {
      this.#ejections++;
      this.#log.warn({ service: this.name, endpoint: key, ejectedForMs: outcome.durationMs, err },
        'endpoint ejected after consecutive connect failures');
    } else if (outcome?.kind === 'suppressed') {
      this.#log.info({ service: this.name, endpoint: key }, 'endpoint not ejected: max_ejected_percent reached');
    }
  }

  #rotationChanged(next: Set<string>): void {
    const out = [...this.#inRotation].filter((k) => !next.has(k));
    const back = [...next].filter((k) => !this.#inRotation.has(k));
    this.#inRotation = next;
    if (out.length === 0 && back.length === 0) return;
    this.#log.info({ service: this.name, out, in: back, inRotation: next.size }, 'endpoints in rotation changed');
  }

  start(resolver: DnsResolverLike | undefined): void {
    if (this.spec.endpoints.kind !== 'dns' || resolver === undefined || this.set === undefined) return;
    const set = this.set;
    this.discovery = DnsDiscovery.forService(this.spec, {
      resolver, log: this.#log, onUpdate: (u) => { set.update(u.endpoints); },
    });
    this.discovery?.start();
  }

  close(): void {
    this.discovery?.stop();
    this.set?.close();
  }

  status(): ServiceStatsJson {
    const spec = this.spec;
    const d = this.discovery?.status;
    return {
      protocol: spec.protocol,
      discovery: spec.endpoints.kind,
      balancer: this.set === undefined ? undefined : spec.balancer,
      tlsOrigination: this.tls !== undefined,
      connectFailures: this.#connectFailures,
      ejections: this.#ejections,
      endpoints: (this.set?.status() ?? []).map((e) => ({
        endpoint: e.key,
        weight: e.weight,
        activeConnections: e.activeConnections,
        healthy: e.healthy,
        ejected: e.ejected,
        inRotation: e.inRotation,
        consecutiveFailures: e.consecutiveFailures,
        totalEjections: e.totalEjections,
      })),
      ...(d === undefined ? {} : {
        dns: {
          name: d.name, type: d.type, lastSuccessAt: d.lastSuccessAt, consecutiveFailures: d.consecutiveFailures,
          lastError: d.lastError?.code,
        },
      }),
    };
  }
}

/** Every service's runtime, plus the lookup table and the shared DNS resolver. */
export class Services {
  readonly table: ServiceTable;
  readonly registry: ServiceRegistry;
  readonly #byName = new Map<string, ServiceRuntime>();
  readonly #resolver: DnsResolverLike | undefined;

  constructor(registry: ServiceRegistry, deps: {
    log: Logger; connectTimeoutMs: number; tls: ReadonlyMap<string, TlsOriginator>; resolver?: DnsResolverLike;
  }) {
    this.registry = registry;
    this.table = ServiceTable.fromRegistry(registry);
    for (const spec of registry.services) {
      this.#byName.set(spec.name, new ServiceRuntime(spec, {
        log: deps.log, connectTimeoutMs: deps.connectTimeoutMs, tls: deps.tls.get(spec.name),
      }));
    }
    const needsDns = registry.services.some((s) => s.endpoints.kind === 'dns');
    this.#resolver = deps.resolver ?? (needsDns ? createDnsResolver(registry.registry) : undefined);
  }

  /** True when the registry changes nothing: no service, passthrough, no port declarations. */
  get empty(): boolean {
    return this.registry.services.length === 0 && this.registry.registry.mode === 'passthrough'
      && this.registry.registry.portProtocols.length === 0;
  }

  runtime(name: string): ServiceRuntime | undefined {
    return this.#byName.get(name);
  }

  start(): void {
    for (const s of this.#byName.values()) s.start(this.#resolver);
  }

  close(): void {
    for (const s of this.#byName.values()) s.close();
  }

  status(): Record<string, ServiceStatsJson> {
    const out: Record<string, ServiceStatsJson> = {};
    for (const [name, s] of this.#byName) out[name] = s.status();
    return out;
  }
}
