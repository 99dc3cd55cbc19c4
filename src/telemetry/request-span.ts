// The sidecar's span of one HTTP request, made from the request's observation (src/l7/filters/request-stats.ts) and
// the trace context the tracing filter started (req.trace): kind SERVER on the inbound listener (the workload is
// being called), CLIENT on the outbound one (the workload calls out); named as Envoy names its spans
// ("{authority}/*"); attributes in the OpenTelemetry HTTP conventions Istio's Envoy also uses, plus the upstream and
// the peer's identity; status ERROR for a 5xx, no response, or a response flag other than none.
import type { RequestObservation } from '../l7/filters/request-stats.js';
import type { FinishedSpan } from './span-exporter.js';
import type { TraceContext } from '../l7/trace-context.js';
import { formatResponseFlags } from './response-flags.js';
import { epochMsAt } from '../core/monotonic-clock.js';

/** monotonicMs() time -> Unix epoch nanoseconds (microsecond precision), as a decimal string. */
export function epochNanos(mono: number): string {
  return `${Math.round(epochMsAt(mono) * 1000)}000`;
}

export function requestSpan(o: RequestObservation, direction: 'outbound' | 'inbound', flags: number, trace: TraceContext): FinishedSpan {
  const req = o.req;
  const d = req.downstream;
  const head = req.head;
  const authority = head.authority === '' ? `${d.conn.originalDst.address}:${d.conn.originalDst.port}` : head.authority;
  const attributes: (readonly [string, string | number])[] = [
    ['http.method', d.method],
    ['http.url', `http://${authority}${head.path}`],
    ['http.protocol', d.protocol === 'h2' ? 'HTTP/2' : 'HTTP/1.1'],
    ['upstream_cluster', direction === 'inbound' ? 'inbound' : (req.service ?? 'PassthroughCluster')],
    ['guid:x-request-id', req.requestId],
    ['peer.address', d.conn.sourceAddress],
    ['response_flags', formatResponseFlags(flags)],
    ['request_size', o.requestBytes],
    ['response_size', o.responseBytes],
    ['component', 'proxy'],
  ];
  if (o.status > 0) attributes.push(['http.status_code', o.status]);
  if (req.upstreamHost !== undefined) attributes.push(['upstream.address', req.upstreamHost]);
  if (d.conn.peerIdentity !== undefined) attributes.push(['peer.identity', d.conn.peerIdentity]);
  if (o.grpcStatus >= 0) attributes.push(['grpc.status_code', o.grpcStatus]);
  return {
    traceId: trace.traceId,
    spanId: trace.spanId,
    parentSpanId: trace.parentSpanId,
    name: `${authority}/*`,
    kind: direction === 'inbound' ? 'server' : 'client',
    startTimeUnixNano: epochNanos(o.startedAt),
    endTimeUnixNano: epochNanos(o.endedAt),
    attributes,
    error: o.status === 0 || o.status >= 500 || flags !== 0,
  };
}
