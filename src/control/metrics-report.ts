// The body of POST /api/v1/sync/metrics, checked field by field (a sidecar's golden-metric report; see
// metrics-aggregator.ts and golden-samples.ts):
//   {"name","identity","epoch","seq","edges":[{"reporter","source","destination","mtls","requests":[4],
//     "latency":[<=20],"tcpOpened","tcpClosed","tcpBytes"}]}
import { ENVOY_DEFAULT_BUCKETS } from '../telemetry/histogram.js';
import type { GoldenEdgeSample } from '../telemetry/golden-samples.js';
import type { MetricsReport } from './metrics-aggregator.js';

/** Edges in one report at most. */
export const MAX_REPORT_EDGES = 10_000;

export interface ParsedMetricsReport extends MetricsReport {
  readonly name: string;
  readonly identity: string;
}

const count = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** The report, or what was expected where (the API's 400 message). */
export function parseMetricsReport(body: Record<string, unknown>): ParsedMetricsReport | { readonly expected: string } {
  const { name, identity, epoch, seq, edges } = body;
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(name)) return { expected: 'metrics: "name", the pod name' };
  if (identity !== undefined && (typeof identity !== 'string' || identity.length > 2048)) return { expected: 'metrics: "identity", a SPIFFE ID or ""' };
  if (typeof epoch !== 'string' || epoch === '' || epoch.length > 64) return { expected: 'metrics: "epoch", a non-empty string (one per sidecar process)' };
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return { expected: 'metrics: "seq", an integer >= 1' };
  if (!Array.isArray(edges) || edges.length > MAX_REPORT_EDGES) return { expected: `metrics: "edges", an array of at most ${MAX_REPORT_EDGES}` };
  const out: GoldenEdgeSample[] = [];
  for (const [i, raw] of edges.entries()) {
    const at = `metrics: edges[${i}]`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { expected: `${at}: an object` };
    const e = raw as Record<string, unknown>;
    if (e.reporter !== 'source' && e.reporter !== 'destination') return { expected: `${at}.reporter: "source" or "destination"` };
    for (const f of ['source', 'destination'] as const) {
      const v = e[f];
      if (typeof v !== 'string' || v === '' || v.length > 512) return { expected: `${at}.${f}: a non-empty string` };
    }
    if (typeof e.mtls !== 'boolean') return { expected: `${at}.mtls: a boolean` };
    const requests = e.requests;
    if (!Array.isArray(requests) || requests.length !== 4 || !requests.every(count)) return { expected: `${at}.requests: 4 counts (2xx, 3xx, 4xx, 5xx)` };
    const latency = e.latency;
    if (!Array.isArray(latency) || latency.length > ENVOY_DEFAULT_BUCKETS.length + 1 || !latency.every(count)) {
      return { expected: `${at}.latency: at most ${ENVOY_DEFAULT_BUCKETS.length + 1} bucket counts` };
    }
    for (const f of ['tcpOpened', 'tcpClosed', 'tcpBytes'] as const) if (!count(e[f])) return { expected: `${at}.${f}: a count >= 0` };
    out.push({
      reporter: e.reporter, source: e.source as string, destination: e.destination as string, mtls: e.mtls,
      requests: requests as [number, number, number, number], latency: latency as number[],
      tcpOpened: e.tcpOpened as number, tcpClosed: e.tcpClosed as number, tcpBytes: e.tcpBytes as number,
    });
  }
  return { name, identity: typeof identity === 'string' ? identity : '', epoch, seq, edges: out };
}
