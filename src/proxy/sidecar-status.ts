// The sidecar's status report to the control plane (src/control/status-report.ts; sent every 5 s on the sync
// connection by src/control/sync-client.ts): the /ready verdict, the workload certificate and the trust bundle's
// expiries, every service endpoint as this sidecar sees it (health, ejections, load, configured labels and weight), the
// authorization counters per policy and the requests per route and backend. Read from the runtime in force and the
// proxy's counters; nothing here is on the request path.
import { endpointKey } from '../config/service-spec.js';
import type { RouteCounters } from '../l7/router/route-counters.js';
import {
  MAX_STATUS_ENDPOINTS, type EndpointStatus, type PolicyStatus, type RouteStatus, type SidecarStatus,
} from '../control/status-report.js';
import type { Runtime } from './runtime.js';

export interface SidecarStatusInputs {
  readonly runtime: Runtime;
  readonly readiness: { readonly ready: boolean; readonly reason: string };
  /** The authz counters (/stats authz): policy.<name>.allowed / .denied / .audited / .would_deny. */
  readonly authz: Readonly<Record<string, number>>;
  readonly routes: RouteCounters | undefined;
  readonly now: number;
}

function endpoints(rt: Runtime): { list: EndpointStatus[]; truncated: boolean } {
  const zones = new Map<string, string>();
  for (const s of rt.snapshot.services) {
    if (s.endpoints.kind !== 'static') continue;
    for (const e of s.endpoints.endpoints) if (e.zone !== undefined) zones.set(`${s.name}\u0000${endpointKey(e)}`, e.zone);
  }
  const list: EndpointStatus[] = [];
  const status = rt.clusters.status();
  for (const service of Object.keys(status).sort()) {
    for (const e of status[service]?.endpoints ?? []) {
      if (list.length >= MAX_STATUS_ENDPOINTS) return { list, truncated: true };
      const labels: Record<string, string> = {};
      const zone = zones.get(`${service}\u0000${e.endpoint}`);
      if (zone !== undefined) labels.zone = zone;
      if (e.subsets !== undefined && e.subsets.length > 0) labels.subset = e.subsets.join(',');
      list.push({
        service, address: e.endpoint, labels, weight: e.weight, healthy: e.healthy && !e.ejected, ejected: e.ejected,
        ejections: e.ejectionCount, activeConnections: e.active,
      });
    }
  }
  return { list, truncated: false };
}

function policies(rt: Runtime, authz: Readonly<Record<string, number>>): PolicyStatus[] {
  const n = (name: string, what: string): number => authz[`policy.${name}.${what}`] ?? 0;
  return rt.snapshot.authorizations.map((p) => ({
    name: p.name, action: p.action,
    allowed: n(p.name, 'allowed'), denied: n(p.name, 'denied'), audited: n(p.name, 'audited'), wouldDeny: n(p.name, 'would_deny'),
  }));
}

function routes(rt: Runtime, counters: RouteCounters | undefined): RouteStatus[] {
  return rt.routes.describe().map((r) => ({
    route: r.name, service: r.service,
    backends: r.backends.map((b) => ({ backend: b.id, weight: b.weight, requests: counters?.requests(r.name, b.id) ?? 0 })),
  }));
}

export function sidecarStatus(i: SidecarStatusInputs): SidecarStatus {
  const rt = i.runtime;
  const d = rt.mesh?.identity.describe(i.now);
  const leaf = d?.chain[0];
  const eps = endpoints(rt);
  return {
    ready: i.readiness.ready,
    readyReason: i.readiness.reason,
    certificate: d === undefined || leaf === undefined ? null : { identity: d.spiffeId, notAfter: leaf.notAfter, serial: leaf.serial },
    rootsNotAfter: (d?.roots ?? []).map((r) => r.notAfter).sort(),
    endpoints: eps.list,
    ...(eps.truncated ? { endpointsTruncated: true } : {}),
    policies: policies(rt, i.authz),
    routes: routes(rt, i.routes),
  };
}
