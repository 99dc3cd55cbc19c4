// The access log's lines: one JSON object per HTTP request and per TCP connection, with Istio's JSON keys (istio
// pilot/pkg/model/telemetry_logging.go, Envoy's command operators) in Istio's order, then remora's additions. An
// unknown value is null (Envoy prints "-" in text format). Pure functions of one observation.
import { formatHostPort } from '../core/addr.js';
import type { ConnectionContext, ConnectionOutcome } from '../l4/connection-context.js';
import type { RequestObservation } from '../l7/filters/request-stats.js';
import { headerValue } from '../l7/http/headers.js';
import { formatResponseFlags } from './response-flags.js';
import { epochMsAt } from '../core/monotonic-clock.js';

const HEX32 = /^[0-9a-f]{32}$/;
const HEX_ID = /^(?:[0-9a-f]{16}|[0-9a-f]{32})$/;

/**
 * The trace id a request carries: W3C traceparent (version-traceid-parentid-flags; all-zero or malformed ignored),
 * else B3 single (`b3: traceid-spanid-...`), else B3 multi (`x-b3-traceid`). Read from the headers as forwarded, so a
 * tracing filter that starts or continues a trace is seen.
 */
export function traceIdOf(headers: readonly string[]): string | undefined {
  const tp = headerValue(headers, 'traceparent');
  if (tp !== undefined) {
    const parts = tp.trim().split('-');
    const id = parts[1];
    if (parts.length >= 4 && parts[0] !== 'ff' && id !== undefined && HEX32.test(id) && !/^0+$/.test(id)) return id;
  }
  const b3 = headerValue(headers, 'b3');
  if (b3 !== undefined) {
    const id = b3.trim().split('-')[0]?.toLowerCase();
    if (id !== undefined && HEX_ID.test(id)) return id;
  }
  const multi = headerValue(headers, 'x-b3-traceid')?.trim().toLowerCase();
  return multi !== undefined && HEX_ID.test(multi) ? multi : undefined;
}

function iso(epochMs: number): string {
  return new Date(epochMs).toISOString();
}

function details(o: RequestObservation): string | null {
  if (o.localReplyReason !== undefined) return o.localReplyReason;
  const cause = o.req.resetCause;
  if (cause === 'upstream-refused') return 'upstream_refused_stream';
  if (cause !== undefined) return `${cause.replace(/-/g, '_')}_after_response_started`;
  if (o.downstreamAborted) return o.status === 0 ? 'downstream_remote_disconnect' : 'downstream_remote_disconnect_after_response_started';
  return o.status === 0 ? null : 'via_upstream';
}

/** The JSON line of one HTTP request (with its trailing line feed). */
export function httpAccessLogLine(o: RequestObservation, direction: 'outbound' | 'inbound', flags: number): string {
  const req = o.req;
  const d = req.downstream;
  const headers = d.headers;
  const entry = {
    start_time: iso(epochMsAt(o.startedAt)),
    route_name: req.route?.route ?? null,
    method: d.method,
    path: d.target,
    protocol: d.protocol === 'h2' ? 'HTTP/2' : 'HTTP/1.1',
    response_code: o.status,
    response_flags: formatResponseFlags(flags),
    response_code_details: details(o),
    connection_termination_details: null,
    bytes_received: o.requestBytes,
    bytes_sent: o.responseBytes,
    duration: Math.round(o.endedAt - o.startedAt),
    upstream_service_time: o.firstByteAt === 0 || o.localReplyReason !== undefined ? null : Math.round(o.firstByteAt - o.startedAt),
    x_forwarded_for: headerValue(headers, 'x-forwarded-for') ?? null,
    user_agent: headerValue(headers, 'user-agent') ?? null,
    request_id: req.requestId === '' ? null : req.requestId,
    authority: d.authority === '' ? null : d.authority,
    upstream_host: req.upstreamHost ?? null,
    upstream_cluster: req.cluster?.name ?? null,
    upstream_local_address: null,
    downstream_local_address: formatHostPort(d.conn.originalDst.address, d.conn.originalDst.port),
    downstream_remote_address: d.conn.sourceAddress === '' ? null : d.conn.sourceAddress,
    requested_server_name: null,
    upstream_transport_failure_reason: null,
    // remora's additions
    kind: 'http',
    direction,
    trace_id: req.trace?.traceId ?? traceIdOf(headers) ?? null,
    downstream_peer_uri_san: d.conn.peerIdentity ?? null,
    grpc_status: o.grpcStatus < 0 ? null : o.grpcStatus,
    attempts: req.attempts,
    connection_id: d.conn.connectionId ?? null,
  };
  return `${JSON.stringify(entry)}\n`;
}

/** The JSON line of one TCP connection (forwarded as opaque TCP, or ended before a protocol was known). */
export function tcpAccessLogLine(conn: ConnectionContext, r: ConnectionOutcome, flags: number, endedAt: number): string {
  const termination = r.code ?? (r.idleTimeout ? 'idle_timeout' : null);
  const entry = {
    start_time: iso(conn.startedAt),
    route_name: null,
    method: null,
    path: null,
    protocol: null,
    response_code: 0,
    response_flags: formatResponseFlags(flags),
    response_code_details: null,
    connection_termination_details: termination,
    bytes_received: r.bytesIn,
    bytes_sent: r.bytesOut,
    duration: Math.max(0, endedAt - conn.startedAt),
    upstream_service_time: null,
    x_forwarded_for: null,
    user_agent: null,
    request_id: null,
    authority: null,
    upstream_host: r.endpoint ?? null,
    upstream_cluster: r.service ?? null,
    upstream_local_address: null,
    downstream_local_address: formatHostPort(conn.originalDst.address, conn.originalDst.port),
    downstream_remote_address: conn.peerAddress === undefined ? null : formatHostPort(conn.peerAddress, conn.peerPort ?? 0),
    requested_server_name: null,
    upstream_transport_failure_reason: r.tlsCode ?? null,
    kind: 'tcp',
    direction: conn.direction,
    trace_id: null,
    downstream_peer_uri_san: r.peerIdentity ?? null,
    detected_protocol: r.protocol ?? null,
    attempts: r.attempts,
    connection_id: conn.id,
  };
  return `${JSON.stringify(entry)}\n`;
}
