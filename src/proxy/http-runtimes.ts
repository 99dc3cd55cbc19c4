// The HTTP runtimes of one Runtime: per listener, the request chain (request filters around the router) built from
// the runtime's routes and clusters, with the inbound listener's security filters (client certificate,
// authorization). Apart from runtime.ts so that an L4 proxy (http_engine = off) never loads src/l7's request path
// and node:http2: proxy.ts imports this module when the HTTP engine runs and hands buildHttpRuntimes to the runtime
// builder (http_engine is restart-only, so a reload never needs it newly).
import type { Authorizer } from '../authz/authorizer.js';
import type { DecisionRecorder } from '../authz/decision-recorder.js';
import type { ProxySettings } from '../config/config-snapshot.js';
import type { Direction } from '../l4/accept-route.js';
import { authorizationFilter } from '../l7/filters/authorization.js';
import { clientCertFilter } from '../l7/filters/client-cert.js';
import type { RequestObserver } from '../l7/filters/request-stats.js';
import { buildHttpRuntime, type HttpRuntime } from '../l7/http-runtime.js';
import type { HttpFilter } from '../l7/request-types.js';
import type { RouteTable } from '../l7/router/route-table.js';
import { IdSource } from '../l7/trace-context.js';
import type { ClusterSet } from '../upstream/cluster-set.js';

/** Span and trace ids of every runtime (a pool of CSPRNG bytes). */
const TRACE_IDS = new IdSource();

export interface HttpRuntimesInput {
  readonly version: number;
  readonly settings: ProxySettings;
  readonly routes: RouteTable;
  readonly clusters: ClusterSet;
  readonly random: () => number;
  /** The workload's SPIFFE ID (identity_dir), for x-forwarded-client-cert; undefined without identity. */
  readonly spiffeId: string | undefined;
  readonly authorizer: Authorizer;
  readonly recorder: DecisionRecorder;
  readonly extraFilters: Readonly<Record<Direction, readonly HttpFilter[]>> | undefined;
  /** The observer of a listener's requests (undefined: metrics and access log are off). */
  readonly observer: (direction: Direction) => RequestObserver | undefined;
  /** Whether the telemetry can export spans (tracing needs it as well as `tracing = on`). */
  readonly canTrace: boolean;
}

export type HttpRuntimesBuilder = (input: HttpRuntimesInput) => Record<Direction, HttpRuntime>;

export const buildHttpRuntimes: HttpRuntimesBuilder = (i) => {
  const one = (direction: Direction): HttpRuntime => buildHttpRuntime({
    version: i.version, direction, routes: i.routes, clusters: i.clusters, random: i.random,
    securityFilters: direction === 'inbound'
      ? [clientCertFilter(i.spiffeId), ...(i.authorizer.hasPolicies ? [authorizationFilter(i.authorizer, i.recorder)] : [])]
      : [],
    extraFilters: i.extraFilters?.[direction] ?? [],
    observer: i.observer(direction),
    tracing: i.settings.tracing && i.canTrace
      ? { sampleRate: i.settings.tracingSampleRate, random: i.random, ids: TRACE_IDS }
      : undefined,
  });
  return { outbound: one('outbound'), inbound: one('inbound') };
};
