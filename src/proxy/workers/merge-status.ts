// The status report (src/proxy/sidecar-status.ts, POST /api/v1/sync/status) of `workers` = N: the workers' reports
// folded into the one report of the sidecar (docs/operations.md#workers). Pure.
//
//   ready            true only when every worker is ready; the reason is the first not-ready worker's, naming it
//                    (mergeReadiness). The primary then folds in its own lifecycle and the count of live workers.
//   certificate,     the same files in every process (the identity is loaded by each from the same paths): the first
//   rootsNotAfter    worker's.
//   endpoints        merged per (service, address), in first-seen order: activeConnections and ejections (cumulative)
//                    summed; ejected when ANY worker has it ejected (outlier detection is per worker: a worker that
//                    ejected it sends it no traffic, so the sidecar as a whole is not sending it all of its share);
//                    healthy only when EVERY worker has it in rotation (healthy and not ejected); labels and weight
//                    are configuration, the same in every worker: the first worker's. Truncated when any worker's
//                    list was, or when the union is over MAX_STATUS_ENDPOINTS.
//   policies         per policy name: allowed, denied, audited, wouldDeny summed.
//   routes           per route, per backend: requests summed; the weight in force is configuration: the first's.
import {
  MAX_STATUS_ENDPOINTS, addPolicyCounts, type EndpointStatus, type PolicyStatus, type RouteBackendStatus, type RouteStatus, type SidecarStatus,
} from '../../control/status-report.js';
import { mergeReadiness, type WorkerPart } from './merge.js';

function mergeEndpoints(parts: readonly WorkerPart<SidecarStatus>[]): { list: EndpointStatus[]; truncated: boolean } {
  const byKey = new Map<string, EndpointStatus>();
  for (const p of parts) {
    for (const e of p.value.endpoints) {
      const key = `${e.service}\u0000${e.address}`;
      const seen = byKey.get(key);
      if (seen === undefined) {
        byKey.set(key, { ...e, labels: { ...e.labels } });
        continue;
      }
      const ejected = seen.ejected || e.ejected;
      byKey.set(key, {
        ...seen,
        ejected,
        healthy: seen.healthy && e.healthy && !ejected,
        ejections: seen.ejections + e.ejections,
        activeConnections: seen.activeConnections + e.activeConnections,
      });
    }
  }
  const all = [...byKey.values()];
  const truncated = all.length > MAX_STATUS_ENDPOINTS || parts.some((p) => p.value.endpointsTruncated === true);
  return { list: all.slice(0, MAX_STATUS_ENDPOINTS), truncated };
}

function mergePolicies(parts: readonly WorkerPart<SidecarStatus>[]): PolicyStatus[] {
  const byName = new Map<string, PolicyStatus>();
  for (const p of parts) {
    for (const x of p.value.policies) {
      const seen = byName.get(x.name);
      byName.set(x.name, seen === undefined ? { ...x } : addPolicyCounts(seen, x));
    }
  }
  return [...byName.values()];
}

function mergeRoutes(parts: readonly WorkerPart<SidecarStatus>[]): RouteStatus[] {
  const byRoute = new Map<string, { route: string; service: string; backends: Map<string, RouteBackendStatus> }>();
  for (const p of parts) {
    for (const r of p.value.routes) {
      let seen = byRoute.get(r.route);
      if (seen === undefined) {
        seen = { route: r.route, service: r.service, backends: new Map() };
        byRoute.set(r.route, seen);
      }
      for (const b of r.backends) {
        const prev = seen.backends.get(b.backend);
        seen.backends.set(b.backend, prev === undefined ? { ...b } : { ...prev, requests: prev.requests + b.requests });
      }
    }
  }
  return [...byRoute.values()].map((r) => ({ route: r.route, service: r.service, backends: [...r.backends.values()] }));
}

/** N workers' status reports as the sidecar's one (the rules at the top of this file). */
export function mergeStatus(parts: readonly WorkerPart<SidecarStatus>[]): SidecarStatus {
  const first = parts[0];
  if (first === undefined) throw new Error('no worker answered');
  const readiness = mergeReadiness(parts.map((p) => ({ worker: p.worker, pid: p.pid, value: { ready: p.value.ready, reason: p.value.readyReason } })), parts.length);
  const endpoints = mergeEndpoints(parts);
  return {
    ready: readiness.ready,
    readyReason: readiness.reason,
    certificate: first.value.certificate,
    rootsNotAfter: first.value.rootsNotAfter,
    endpoints: endpoints.list,
    ...(endpoints.truncated ? { endpointsTruncated: true } : {}),
    policies: mergePolicies(parts),
    routes: mergeRoutes(parts),
  };
}
