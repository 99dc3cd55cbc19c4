// Every cluster of one runtime: one per [service NAME], plus the two original-destination clusters (passthrough for
// outbound destinations that match no service, inbound for delivery to the local app), and the lookup table that
// maps an original destination or a host name to a service.
//
// planClusters(definitions, previous) builds the set for a new snapshot without touching the previous one, so a
// snapshot that fails here changes nothing. A cluster whose definition (everything but its static endpoint list and
// the contents of its PEM files) did not change is carried over — the same object, with its health, ejections, DNS
// state, load counters and pools. commit() then applies the new endpoint lists and TLS material to the carried-over
// clusters (removed endpoints drain), starts the new ones and closes the retired ones (their pools drain).
import type { PemFiles, SnapshotDefinitions } from '../config/config-snapshot.js';
import { canonicalJson } from '../config/config-snapshot.js';
import type { ServiceSpec } from '../config/service-spec.js';
import { defaultTrafficPolicy } from '../config/traffic-policy-config.js';
import type { TrafficPolicySpec } from '../config/traffic-policy-spec.js';
import type { Logger } from '../core/log.js';
import { Cluster, type ClusterSpec, type ClusterStatus } from './cluster.js';
import type { Clock, Timers } from './clock.js';
import { createDnsResolver, type DnsResolverLike } from './dns-discovery.js';
import type { RandomSource } from './picker.js';
import { ServiceTable } from './service-table.js';
import type { MeshStats } from '../core/mesh-stats.js';
import type { MeshIdentity } from './transport/mesh-identity.js';
import { MeshTlsOriginator } from './transport/mesh-tls.js';
import { TlsOriginator } from './transport/tls-origination.js';
import type { UpstreamTransport } from './transport/upstream-transport.js';

export const PASSTHROUGH_CLUSTER = 'passthrough';
export const INBOUND_CLUSTER = 'inbound';

export interface ClusterSetDeps {
  readonly log: Logger;
  readonly clock?: Clock;
  readonly timers?: Timers;
  readonly random?: RandomSource;
  /** Tests inject a resolver; by default one per [registry] resolver settings. */
  readonly resolver?: DnsResolverLike;
  /** The workload identity of the snapshot (identity_dir), for services with mtls = true. */
  readonly identity?: MeshIdentity | undefined;
  readonly meshStats?: MeshStats | undefined;
}

export class ClusterSet {
  readonly table: ServiceTable;
  readonly passthrough: Cluster;
  readonly inbound: Cluster;
  readonly #byName: ReadonlyMap<string, Cluster>;

  constructor(table: ServiceTable, byName: ReadonlyMap<string, Cluster>, passthrough: Cluster, inbound: Cluster) {
    this.table = table;
    this.#byName = byName;
    this.passthrough = passthrough;
    this.inbound = inbound;
  }

  /** The cluster of a [service NAME]. */
  get(name: string): Cluster | undefined {
    return this.#byName.get(name);
  }

  /** Service clusters in config order. */
  services(): readonly Cluster[] {
    return [...this.#byName.values()];
  }

  all(): readonly Cluster[] {
    return [...this.#byName.values(), this.passthrough, this.inbound];
  }

  status(): Record<string, ClusterStatus> {
    const out: Record<string, ClusterStatus> = {};
    for (const [name, c] of this.#byName) out[name] = c.status();
    return out;
  }

  /** Stop every cluster (proxy shutdown). */
  close(): void {
    for (const c of this.all()) c.close();
  }
}

export interface ClusterPlan {
  readonly set: ClusterSet;
  /** Clusters carried over from the previous set (same objects). */
  readonly kept: readonly Cluster[];
  readonly added: readonly Cluster[];
  readonly retired: readonly Cluster[];
  /** Apply: new endpoint lists and TLS material to kept clusters, start added ones, close retired ones. */
  commit(): void;
  /** Abandon the plan (the new snapshot is not used): close what it created; the previous set is untouched. */
  discard(): void;
}

/**
 * What decides whether a cluster can be carried over: its definition without the static endpoint list, the PEM
 * contents and the connect timeout (those three are applied to a carried-over cluster by reconfigure()).
 */
export function clusterFingerprint(spec: ClusterSpec, resolver: unknown): string {
  const s = spec.service;
  const service = s === undefined ? undefined : {
    ...s,
    source: undefined,
    endpoints: s.endpoints.kind === 'static' ? { kind: 'static' } : s.endpoints,
  };
  return canonicalJson({
    service: service === undefined ? undefined : { ...service, connectTimeoutMs: undefined },
    policy: { ...spec.policy, source: undefined }, inbound: spec.inboundSource,
    resolver: s?.endpoints.kind === 'dns' ? resolver : undefined,
  });
}

/**
 * The transport of a service beyond TCP: TLS origination (built from the PEM contents of its snapshot) or mesh mTLS
 * (with the snapshot's workload identity); undefined for plain TCP.
 */
export function transportFor(
  service: ServiceSpec | undefined, files: PemFiles, identity: MeshIdentity | undefined, stats?: MeshStats,
): UpstreamTransport | undefined {
  if (service?.mtls !== undefined) {
    // The validator refuses mtls = true without identity_dir; reaching this is a bug.
    if (identity === undefined) throw new Error(`[service ${service.name}] mtls = true without a workload identity`);
    return new MeshTlsOriginator(identity, service.mtls, stats);
  }
  const t = service?.tls;
  if (t === undefined) return undefined;
  const read = (path: string | undefined): string | undefined => (path === undefined ? undefined : files[path]);
  return new TlsOriginator(t, { ca: read(t.caFile), cert: read(t.certFile), key: read(t.keyFile) });
}

/** What the transport is built from beyond the service's definition: PEM contents, or the identity. */
function transportMaterialKey(service: ServiceSpec | undefined, files: PemFiles, identity: MeshIdentity | undefined): string {
  if (service?.mtls !== undefined) return `mtls:${identity?.key ?? ''}`;
  const t = service?.tls;
  if (t === undefined) return '';
  return canonicalJson([t.caFile, t.certFile, t.keyFile].map((p) => (p === undefined ? null : files[p] ?? null)));
}

interface Candidate {
  readonly spec: ClusterSpec;
  readonly fingerprint: string;
}

/** Build the cluster set of `defs`, carrying over what it can from `previous` (see the file comment). */
export function planClusters(
  defs: SnapshotDefinitions, previous: ClusterSet | undefined, deps: ClusterSetDeps, prevDefs?: SnapshotDefinitions,
  prevIdentity?: MeshIdentity,
): ClusterPlan {
  const policies = new Map<string, TrafficPolicySpec>(defs.trafficPolicies.map((p) => [p.service, p]));
  const connectTimeoutMs = defs.proxy.connectTimeout;
  const needsDns = defs.services.some((s) => s.endpoints.kind === 'dns');
  const resolverKey = { server: defs.registry.resolver, timeoutMs: defs.registry.resolverTimeoutMs };
  let resolver: DnsResolverLike | undefined = deps.resolver;
  const clusterDeps = { log: deps.log, clock: deps.clock, timers: deps.timers, random: deps.random };

  const candidates: Candidate[] = defs.services.map((service) => {
    const spec: ClusterSpec = {
      name: service.name,
      service,
      policy: policies.get(service.name) ?? defaultTrafficPolicy(service.name, service.passiveHealth),
      connectTimeoutMs: service.connectTimeoutMs ?? connectTimeoutMs,
      inboundSource: false,
    };
    return { spec, fingerprint: clusterFingerprint(spec, resolverKey) };
  });
  const originalDstSpec = (name: string, inbound: boolean): Candidate => {
    const spec: ClusterSpec = { name, service: undefined, policy: defaultTrafficPolicy(name), connectTimeoutMs, inboundSource: inbound };
    return { spec, fingerprint: clusterFingerprint(spec, undefined) };
  };

  const kept: Cluster[] = [];
  const added: Cluster[] = [];
  const reconfigure: (() => void)[] = [];
  const take = (c: Candidate, prev: Cluster | undefined, prevFingerprint: string | undefined): Cluster => {
    const files = defs.files;
    if (prev !== undefined && prevFingerprint === c.fingerprint && !prev.closed) {
      kept.push(prev);
      const s = c.spec.service;
      const prevService = prev.spec.service;
      // Static lists always go to the cluster, which changes nothing when its membership is the same: prev.spec holds
      // the list the cluster was built with, which a later reload may have replaced (A -> B -> A must apply A).
      const endpointsChanged = s?.endpoints.kind === 'static';
      const tlsChanged = prevDefs === undefined
        || transportMaterialKey(s, files, deps.identity) !== transportMaterialKey(prevService, prevDefs.files, prevIdentity);
      const tls = tlsChanged ? transportFor(s, files, deps.identity, deps.meshStats) : prev.tls;
      const endpoints = endpointsChanged && s?.endpoints.kind === 'static' ? s.endpoints.endpoints : undefined;
      reconfigure.push(() => { prev.reconfigure(endpoints, tls, c.spec.connectTimeoutMs); });
      return prev;
    }
    if (c.spec.service?.endpoints.kind === 'dns' && resolver === undefined && needsDns) resolver = createDnsResolver(defs.registry);
    const cluster = new Cluster(c.spec, { ...clusterDeps, resolver }, transportFor(c.spec.service, files, deps.identity, deps.meshStats));
    // A DNS cluster rebuilt for another reason (its policy changed, say) starts with what its predecessor resolved for
    // the same name, instead of no endpoint until its first answer.
    const dns = c.spec.service?.endpoints;
    const prevDns = prev?.spec.service?.endpoints;
    if (prev !== undefined && dns?.kind === 'dns' && prevDns?.kind === 'dns' && canonicalJson(dns) === canonicalJson(prevDns)) {
      cluster.reconfigure(prev.members(), cluster.tls);
    }
    added.push(cluster);
    return cluster;
  };
  const fingerprintOf = (c: Cluster | undefined): string | undefined =>
    (c === undefined ? undefined : clusterFingerprint(c.spec, prevDefs === undefined ? undefined
      : { server: prevDefs.registry.resolver, timeoutMs: prevDefs.registry.resolverTimeoutMs }));

  const byName = new Map<string, Cluster>();
  try {
    for (const c of candidates) {
      const prev = previous?.get(c.spec.name);
      byName.set(c.spec.name, take(c, prev, fingerprintOf(prev)));
    }
    const pt = originalDstSpec(PASSTHROUGH_CLUSTER, false);
    const passthrough = take(pt, previous?.passthrough, fingerprintOf(previous?.passthrough));
    const ib = originalDstSpec(INBOUND_CLUSTER, true);
    const inbound = take(ib, previous?.inbound, fingerprintOf(previous?.inbound));
    const set = new ClusterSet(ServiceTable.fromRegistry({ services: defs.services, registry: defs.registry }), byName, passthrough, inbound);
    const live = new Set(set.all());
    const retired = previous === undefined ? [] : previous.all().filter((c) => !live.has(c));
    let done = false;
    return {
      set, kept, added, retired,
      commit() {
        if (done) return;
        done = true;
        for (const r of reconfigure) r();
        for (const c of added) c.start();
        for (const c of retired) c.close();
      },
      discard() {
        if (done) return;
        done = true;
        for (const c of added) c.close();
      },
    };
  } catch (err) {
    for (const c of added) c.close();
    throw err;
  }
}
