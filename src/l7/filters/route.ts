// The route filter: decides where a request goes, before the filters that depend on it (header edits, and later
// authorization) and the router that forwards it.
//   outbound: the service is the one whose VIP is the connection's original destination, else the one whose host name
//     matches the request's Host / :authority, else none: passthrough to the original destination ([registry] mode =
//     passthrough) or the local reply no-route (registry-only). A service's requests are matched against its routes
//     (src/l7/router/route-table.ts; a service without routes goes to itself); the decision's backend names the
//     cluster, or a subset of it.
//   inbound: every request goes to the local app (the inbound cluster: the connection's delivery address).
// The decision, service and cluster are set on the request context; a local reply ends the request here. A request
// forwarded by a named route counts one on its backend's counter (held by the decision: route-counters.ts).
import { PASSTHROUGH_CLUSTER } from '../../upstream/cluster-set.js';
import type { ClusterSet } from '../../upstream/cluster-set.js';
import type { ClusterView } from '../../upstream/cluster.js';
import { NO_RETRY_POLICY } from '../../config/route-spec.js';
import { replyLocally } from '../router/local-replies.js';
import type { RouteTable } from '../router/route-table.js';
import type { ForwardDecision, HttpFilter } from '../request-types.js';

/** What a request gets when there is no service: forward to the original destination, no timeout, no retry policy. */
export const PASSTHROUGH_DECISION: ForwardDecision = Object.freeze({
  kind: 'forward',
  route: PASSTHROUGH_CLUSTER,
  backend: Object.freeze({ service: PASSTHROUGH_CLUSTER, weight: 1 }),
  timeoutMs: 0,
  retry: NO_RETRY_POLICY,
  requestHeaders: Object.freeze({ add: Object.freeze([]), remove: Object.freeze([]) }),
  responseHeaders: Object.freeze({ add: Object.freeze([]), remove: Object.freeze([]) }),
});

export interface RouteFilterOptions {
  readonly direction: 'outbound' | 'inbound';
  readonly routes: RouteTable;
  readonly clusters: ClusterSet;
}

export function routeFilter(o: RouteFilterOptions): HttpFilter {
  const { routes, clusters } = o;
  const table = clusters.table;
  if (o.direction === 'inbound') {
    const inbound = clusters.inbound;
    return (next) => (req, res) => {
      req.route = PASSTHROUGH_DECISION;
      req.cluster = inbound;
      next(req, res);
    };
  }
  const registryOnly = table.mode === 'registry-only';
  const hasHostnames = table.services.some((s) => s.hostnames.length > 0);
  const passthrough = clusters.passthrough;
  return (next) => (req, res) => {
    const conn = req.downstream.conn;
    let service = conn.service !== undefined && clusters.get(conn.service) !== undefined ? conn.service : undefined;
    if (service === undefined && table.services.length > 0) {
      service = table.byAddress(conn.originalDst.address, conn.originalDst.port)?.name;
      if (service === undefined && hasHostnames) {
        const authority = req.head.authority;
        if (authority !== '') service = table.byHostname(authority, conn.originalDst.port)?.name;
      }
    }
    if (service === undefined) {
      if (registryOnly) {
        req.core.stats.increment('http.unknown_destination');
        replyLocally(req, res, 'no-route', undefined);
        return;
      }
      req.route = PASSTHROUGH_DECISION;
      req.cluster = passthrough;
      next(req, res);
      return;
    }
    req.service = service;
    const decision = routes.match(req.head, service);
    if (decision.kind === 'reply') {
      replyLocally(req, res, decision.reply.reason, undefined);
      return;
    }
    const b = decision.backend;
    const cluster: ClusterView | undefined = b.subset === undefined ? clusters.get(b.service) : clusters.get(b.service)?.subset(b.subset);
    if (cluster === undefined) {
      replyLocally(req, res, 'no-route', undefined);
      return;
    }
    decision.counter?.hit();
    req.route = decision;
    req.cluster = cluster;
    next(req, res);
  };
}
