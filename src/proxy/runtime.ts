// The Runtime: everything the data path reads, built from one ConfigSnapshot. The proxy holds one current runtime;
// a connection takes the current runtime at accept and keeps it, an HTTP request takes it at its head. A reload (or
// an admin change) builds a new runtime from a new snapshot and swaps the reference: nothing the data path reads is
// ever mutated in place.
//
//   clusters    one per service, plus passthrough and inbound (src/upstream/cluster-set.ts); carried over from the
//               previous runtime when their definition did not change (health, DNS state, load, pools survive);
//   routes      the compiled route table;
//   listeners   per listener (outbound, inbound): the L4 accept router and the connection chain (connection filters
//               around the terminal stage, src/l4/connection-pipeline.ts), and, when the HTTP engine runs, the HTTP
//               runtime (request filters around the router, src/l7/http-runtime.ts, built by http-runtimes.ts: that
//               module and src/l7's request path are loaded only then);
//   mesh        the workload identity (identity_dir) with the inbound mTLS server built from it (kept from the
//               previous runtime while the files are the same), the inbound mtls mode per port, and the compiled
//               authorization policies: the inbound listener's TCP authorizer and its HTTP security filters
//               (client certificate, authorization).
//
// buildRuntime() has no effect on the previous runtime until commit() (a snapshot that fails to build changes
// nothing); commit() then applies endpoint and TLS changes to carried-over clusters, starts new clusters and drains
// retired ones.
import { compileAuthorizer, type Authorizer } from '../authz/authorizer.js';
import { DecisionRecorder } from '../authz/decision-recorder.js';
import type { ConfigSnapshot } from '../config/config-snapshot.js';
import { identityPaths } from '../config/identity-files.js';
import { mtlsModeFor } from '../config/mtls-settings.js';
import type { Logger } from '../core/log.js';
import type { MeshStats } from '../core/mesh-stats.js';
import { AcceptRouter, type Direction } from '../l4/accept-route.js';
import {
  composeConnectionFilters, type ConnectionFilter, type InboundMtls, type ListenerRuntime,
} from '../l4/connection-context.js';
import { tcpAuthorizer } from '../l4/filters/tcp-authorization.js';
import { MeshTerminator } from '../l4/mesh-termination.js';
import type { ConnectionPipeline } from '../l4/connection-pipeline.js';
import type { HttpHandoff } from '../l4/http-handoff.js';
import type { HttpRuntime } from '../l7/http-runtime.js';
import type { HttpFilter } from '../l7/request-types.js';
import type { RequestObserver } from '../l7/filters/request-stats.js';
import type { ProxySettings } from '../config/config-snapshot.js';
import type { RouteCounters } from '../l7/router/route-counters.js';
import { RouteTable } from '../l7/router/route-table.js';
import { planClusters, type ClusterSet } from '../upstream/cluster-set.js';
import type { Clock, Timers } from '../upstream/clock.js';
import type { DnsResolverLike } from '../upstream/dns-discovery.js';
import { MeshIdentity } from '../upstream/transport/mesh-identity.js';
import type { HttpRuntimesBuilder } from './http-runtimes.js';

export const DIRECTIONS: readonly Direction[] = ['outbound', 'inbound'];

export interface Runtime {
  readonly snapshot: ConfigSnapshot;
  readonly clusters: ClusterSet;
  readonly routes: RouteTable;
  readonly listeners: Readonly<Record<Direction, ListenerRuntime>>;
  /** The HTTP runtime of each listener; undefined when the HTTP engine does not run (no `deps.httpRuntimes`). */
  readonly http: Readonly<Record<Direction, HttpRuntime>> | undefined;
  /** The compiled [authorization] policies (applied to inbound traffic only). */
  readonly authorizer: Authorizer;
  /** The workload identity (identity_dir) and its inbound TLS server; undefined without identity. */
  readonly mesh: { readonly identity: MeshIdentity; readonly terminator: MeshTerminator } | undefined;
}

/** What stays the same across runtimes: the listeners' terminal stages, hand-offs and filters, and the deps. */
export interface RuntimeDeps {
  readonly log: Logger;
  readonly random: () => number;
  readonly clock?: Clock;
  readonly timers?: Timers;
  readonly resolver?: DnsResolverLike;
  readonly pipelines: Readonly<Record<Direction, ConnectionPipeline>>;
  /** Where HTTP connections of each listener go (undefined: forwarded as opaque TCP). */
  readonly http: Readonly<Record<Direction, HttpHandoff | undefined>>;
  readonly connectionFilters: Readonly<Record<Direction, readonly ConnectionFilter[]>>;
  readonly requestFilters?: Readonly<Record<Direction, readonly HttpFilter[]>>;
  /** Builds the listeners' HTTP runtimes (src/proxy/http-runtimes.ts, loaded by the proxy when its HTTP engine runs). */
  readonly httpRuntimes?: HttpRuntimesBuilder | undefined;
  /** Mesh security counters (mTLS handshakes, identity rotations, authorization decisions). */
  readonly meshStats: MeshStats;
  /** Requests per route and backend (kept across runtimes; for the status report to the control plane). */
  readonly routeCounters?: RouteCounters;
  /** Metrics and access log (src/telemetry/): each listener's request observer, and the runtime's settings at commit. */
  readonly telemetry?: RuntimeTelemetry | undefined;
}

/** What the runtime needs of the telemetry (src/telemetry/telemetry.ts, adapted in src/proxy/proxy.ts). */
export interface RuntimeTelemetry {
  /** The observer of a listener's requests under these settings (undefined: metrics and access log are off). */
  requestObserver(direction: Direction, settings: ProxySettings): RequestObserver | undefined;
  /** A runtime was committed: apply its settings and labels. */
  apply(runtime: Runtime): void;
}

/** The identity of `snapshot`: the previous runtime's when its files are the same, else a new one. */
function meshOf(snapshot: ConfigSnapshot, previous: Runtime | undefined, deps: RuntimeDeps): Runtime['mesh'] {
  const dir = snapshot.proxy.identityDir;
  if (dir === '') return undefined;
  const paths = identityPaths(dir);
  const pems = { certChain: snapshot.files[paths.certChain] ?? '', key: snapshot.files[paths.key] ?? '', roots: snapshot.files[paths.roots] ?? '' };
  const prev = previous?.mesh;
  if (prev !== undefined && prev.identity.pems.certChain === pems.certChain && prev.identity.pems.key === pems.key
    && prev.identity.pems.roots === pems.roots && previous?.snapshot.proxy.detectTimeout === snapshot.proxy.detectTimeout) {
    return prev;
  }
  const identity = new MeshIdentity(pems);
  return { identity, terminator: new MeshTerminator(identity, snapshot.proxy.detectTimeout, deps.meshStats) };
}

export interface RuntimePlan {
  readonly runtime: Runtime;
  /** Cluster changes, for the reload's log line. */
  readonly changes: { readonly added: readonly string[]; readonly kept: readonly string[]; readonly retired: readonly string[] };
  commit(): void;
  discard(): void;
}

/** Build the runtime of `snapshot`, carrying over what it can from `previous`. Throws on a bug only. */
export function buildRuntime(snapshot: ConfigSnapshot, previous: Runtime | undefined, deps: RuntimeDeps): RuntimePlan {
  // Throws only on a bug: the snapshot's identity files were checked when it was loaded.
  const mesh = meshOf(snapshot, previous, deps);
  const plan = planClusters(snapshot, previous?.clusters, {
    log: deps.log, random: deps.random,
    ...(deps.clock === undefined ? {} : { clock: deps.clock }),
    ...(deps.timers === undefined ? {} : { timers: deps.timers }),
    ...(deps.resolver === undefined ? {} : { resolver: deps.resolver }),
    identity: mesh?.identity,
    meshStats: deps.meshStats,
  }, previous?.snapshot, previous?.mesh?.identity);
  try {
    const clusters = plan.set;
    const routes = RouteTable.compile(snapshot.routes, { random: deps.random, ...(deps.routeCounters === undefined ? {} : { counters: deps.routeCounters }) });
    const router = new AcceptRouter(clusters, snapshot.proxy.inboundDelivery);
    const authorizer = compileAuthorizer(snapshot.authorizations);
    const recorder = new DecisionRecorder(deps.meshStats, deps.log);
    const { mtlsMode, mtlsPortModes } = snapshot.proxy;
    const inboundMtls: InboundMtls | undefined = mesh === undefined ? undefined : {
      terminator: mesh.terminator,
      stats: deps.meshStats,
      modeFor: mtlsPortModes.length === 0 ? () => mtlsMode : (port) => mtlsModeFor(port, mtlsMode, mtlsPortModes),
    };
    const telemetry = deps.telemetry;
    const http = deps.httpRuntimes?.({
      version: snapshot.version, settings: snapshot.proxy, routes, clusters, random: deps.random,
      spiffeId: mesh?.identity.spiffeId, authorizer, recorder, extraFilters: deps.requestFilters,
      observer: (direction) => telemetry?.requestObserver(direction, snapshot.proxy), canTrace: telemetry !== undefined,
    });
    const listeners = {} as Record<Direction, ListenerRuntime>;
    for (const direction of DIRECTIONS) {
      const inbound = direction === 'inbound';
      listeners[direction] = {
        version: snapshot.version,
        router,
        detectTimeoutMs: snapshot.proxy.detectTimeout,
        idleTimeoutMs: snapshot.proxy.idleTimeout,
        http: deps.http[direction],
        chain: composeConnectionFilters(deps.connectionFilters[direction], deps.pipelines[direction].run),
        mtls: inbound ? inboundMtls : undefined,
        authorize: inbound && authorizer.hasPolicies ? tcpAuthorizer(authorizer, recorder) : undefined,
      };
    }
    const runtime: Runtime = { snapshot, clusters, routes, listeners, http, authorizer, mesh };
    return {
      runtime,
      changes: {
        added: plan.added.map((c) => c.name), kept: plan.kept.map((c) => c.name), retired: plan.retired.map((c) => c.name),
      },
      commit: () => {
        plan.commit();
        deps.telemetry?.apply(runtime);
      },
      discard: () => { plan.discard(); },
    };
  } catch (err) {
    plan.discard();
    throw err;
  }
}
