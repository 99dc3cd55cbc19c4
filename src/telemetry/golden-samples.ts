// The golden metrics a sidecar reports to the control plane (POST /api/v1/sync/metrics, docs/control-plane.md):
// its istio_* series folded into edges, one per (reporter, source workload, destination service, mTLS), with
// cumulative counters since the sidecar's start: requests by response class, the request-duration bucket counts
// (Envoy's buckets, non-cumulative), TCP connections opened/closed and bytes. Read from the metrics store
// (IstioMetrics.goldenSeries), not from the exposition text.
import type { IstioMetrics } from './istio-metrics.js';
import { UNKNOWN } from './workload-labels.js';

export type Reporter = 'source' | 'destination';

export interface GoldenEdgeSample {
  readonly reporter: Reporter;
  /** The client workload (source_workload; else its principal; else "unknown"). */
  readonly source: string;
  /** The destination service (destination_service_name). */
  readonly destination: string;
  readonly mtls: boolean;
  /** Requests by response class: [2xx, 3xx, 4xx, 5xx]; 1xx counts as 2xx, no response (0) as 5xx. */
  readonly requests: [number, number, number, number];
  /** Request-duration bucket counts (ms, ENVOY_DEFAULT_BUCKETS then +Inf), non-cumulative. */
  readonly latency: number[];
  readonly tcpOpened: number;
  readonly tcpClosed: number;
  /** TCP bytes both ways. */
  readonly tcpBytes: number;
}

/** The index in GoldenEdgeSample.requests of a response code. */
export function responseClass(status: number): 0 | 1 | 2 | 3 {
  if (status >= 500 || status < 100) return 3;
  if (status >= 400) return 2;
  if (status >= 300) return 1;
  return 0;
}

// Indexes in PEER_LABEL_NAMES.
const REPORTER = 0;
const SOURCE_WORKLOAD = 1;
const SOURCE_PRINCIPAL = 3;
const DESTINATION_SERVICE_NAME = 15;

interface MutableEdge {
  reporter: Reporter;
  source: string;
  destination: string;
  mtls: boolean;
  requests: [number, number, number, number];
  latency: number[];
  tcpOpened: number;
  tcpClosed: number;
  tcpBytes: number;
}

/** The sidecar's edges now (cumulative counters). */
export function goldenSamples(metrics: IstioMetrics): GoldenEdgeSample[] {
  const edges = new Map<string, MutableEdge>();
  for (const g of metrics.goldenSeries()) {
    const reporter: Reporter = g.peer[REPORTER] === 'destination' ? 'destination' : 'source';
    const workload = g.peer[SOURCE_WORKLOAD] ?? UNKNOWN;
    const principal = g.peer[SOURCE_PRINCIPAL] ?? UNKNOWN;
    const source = workload !== UNKNOWN ? workload : principal;
    const destination = g.peer[DESTINATION_SERVICE_NAME] ?? UNKNOWN;
    // At the source, a service with mesh mTLS has the local principal as source_principal; at the destination, the policy says.
    const mtls = reporter === 'destination' ? g.security === 'mutual_tls' : principal !== UNKNOWN;
    const key = `${reporter}\u0000${source}\u0000${destination}\u0000${mtls ? 1 : 0}`;
    let e = edges.get(key);
    if (e === undefined) {
      e = { reporter, source, destination, mtls, requests: [0, 0, 0, 0], latency: [], tcpOpened: 0, tcpClosed: 0, tcpBytes: 0 };
      edges.set(key, e);
    }
    for (const s of g.http) {
      e.requests[responseClass(s.status)] += s.requests;
      const c = s.durationCounts;
      for (let i = 0; i < c.length; i++) e.latency[i] = (e.latency[i] ?? 0) + (c[i] as number);
    }
    for (const t of g.tcp) {
      e.tcpOpened += t.opened;
      e.tcpClosed += t.closed;
      e.tcpBytes += t.sent + t.received;
    }
  }
  return [...edges.values()];
}
