// The HTTP part of a listener's runtime: the request chain (request filters composed around the router) built from
// one snapshot's route table and clusters. The engines read the current one at every request head
// (EngineCore.runtime), so a reload affects the next requests and never one in flight.
//
// The chain, in order: request-id -> [tracing] -> stats (and the request's observation) -> [security: client certificate, authorization] -> route -> header edits
// -> [extra] -> router (src/l7/router/exchange.ts). The security filters are the inbound listener's (built by
// src/proxy/runtime.ts from the snapshot's identity and authorization policies); `extraFilters` run last before the
// router (metrics and tracing plug in there).
import type { ClusterSet } from '../upstream/cluster-set.js';
import { headerEditsFilter } from './filters/header-edits.js';
import { requestIdFilter } from './filters/request-id.js';
import { observingRequestStatsFilter, requestStatsFilter, type RequestObserver } from './filters/request-stats.js';
import { routeFilter } from './filters/route.js';
import { tracingFilter, type TracingFilterOptions } from './filters/tracing.js';
import { routerHandler } from './router/exchange.js';
import { replyLocally } from './router/local-replies.js';
import { createRetryDecider, type RetryDecider } from './router/retry-policy.js';
import type { RouteTable } from './router/route-table.js';
import type { RequestContext } from './request-context.js';
import { composeHttpFilters, type DownstreamResponder, type HttpFilter, type HttpHandler } from './request-types.js';

export interface HttpRuntime {
  /** The snapshot version this runtime was built from. */
  readonly version: number;
  /** The request chain: filters, then the router. */
  readonly handle: HttpHandler;
  /** Retry decisions of the router. */
  readonly retry: RetryDecider;
}

export interface HttpRuntimeOptions {
  readonly version: number;
  readonly direction: 'outbound' | 'inbound';
  readonly routes: RouteTable;
  readonly clusters: ClusterSet;
  readonly random: () => number;
  /**
   * Filters that decide or mark a request before it is routed (inbound: client certificate, authorization), after
   * request-id and stats so that a refused request has an id and is counted.
   */
  readonly securityFilters?: readonly HttpFilter[];
  readonly extraFilters?: readonly HttpFilter[];
  /**
   * Hears each request's observation when it ends (metrics, access log: src/telemetry/), produced by the stats filter;
   * undefined: the stats filter only counts.
   */
  readonly observer?: RequestObserver | undefined;
  /** tracing = on: the tracing filter's settings (the observer ends the spans); undefined: trace headers untouched. */
  readonly tracing?: TracingFilterOptions | undefined;
}

export function buildHttpRuntime(o: HttpRuntimeOptions): HttpRuntime {
  const filters: HttpFilter[] = [
    requestIdFilter,
    ...(o.tracing === undefined ? [] : [tracingFilter(o.tracing)]),
    o.observer === undefined ? requestStatsFilter : observingRequestStatsFilter(o.observer),
    ...(o.securityFilters ?? []),
    routeFilter({ direction: o.direction, routes: o.routes, clusters: o.clusters }),
    headerEditsFilter,
    ...(o.extraFilters ?? []),
  ];
  return { version: o.version, handle: composeHttpFilters(filters, routerHandler), retry: createRetryDecider(o.random) };
}

/**
 * Run a request through the chain of its runtime (the engines call this at every request head). A stage that throws
 * (a filter, a policy, a bug) fails that request only: counted as errors.REMORA_ERR_INTERNAL, logged at error, and
 * answered with 502 upstream-reset — the connection and its other requests go on (the router guards itself the same
 * way).
 */
export function runRequestChain(req: RequestContext, res: DownstreamResponder): void {
  try {
    req.runtime.handle(req, res);
  } catch (err) {
    req.core.stats.increment('errors.REMORA_ERR_INTERNAL');
    req.downstream.log.error({ event: 'http.internal-error', err, code: 'REMORA_ERR_INTERNAL', requestId: req.requestId }, 'request handling failed');
    // The stats filter may not have wrapped `res` (the throw can come from before it): count the reply here.
    if (!req.done) req.core.stats.increment('http.local_replies.upstream-reset');
    replyLocally(req, res, 'upstream-reset', err);
  }
}
