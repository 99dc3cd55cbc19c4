// The one table of responses the proxy generates itself (LocalReplyReason -> status, close, gRPC status, body) and the
// one function that renders them, for HTTP/1.1 and HTTP/2 alike. Every locally generated response carries
// `x-remora-error: <reason>` so that clients, other proxies and people reading logs can tell a proxy error from an
// application error (Linkerd's `l5d-proxy-error`, Envoy's response flags).
//
// Status choices (Envoy's unless noted):
//   no-route 404 (NR)                    no-healthy-upstream 503 (UH)        circuit-open 503 (UO)
//   upstream-connect-failure 503 (UF)    upstream-reset 502 (Linkerd; Envoy says 503 UC/UR: 502 "bad gateway" is
//   upstream-timeout 504 (UT)              the accurate status for an upstream that broke the exchange)
//   request-timeout 408 + close (the *client* was too slow sending the request; RFC 9110 §15.5.9)
//   bad-request / request-smuggling 400 + close (the framing of the connection can no longer be trusted)
//   header-too-large 431 + close (RFC 6585 §5)   retry-budget-exhausted 503 (Envoy URX)
//   rbac-denied 403, body exactly "RBAC: access denied" (Envoy's RBAC filter; gRPC: 7 PERMISSION_DENIED)
// A gRPC request gets a trailers-only response instead (HTTP 200, grpc-status from the table) so that gRPC clients
// see a gRPC error.
import { STATUS_CODES } from 'node:http';
import type { LocalReply, LocalReplyReason } from './request-types.js';

/** The response header that names the reason of a local reply. */
export const LOCAL_REPLY_HEADER = 'x-remora-error';

interface Row {
  readonly status: number;
  readonly close: boolean;
  /** gRPC status of the trailers-only reply to a gRPC request. */
  readonly grpc: number;
  readonly text: string;
  /** The whole body, when it must be exactly this (compatibility); else "<reason>: <text>\n". */
  readonly body?: string;
}

const UNAVAILABLE = 14;
const DEADLINE_EXCEEDED = 4;
const INTERNAL = 13;
const UNIMPLEMENTED = 12;
const PERMISSION_DENIED = 7;

// A Record over the union: the compiler refuses a reason without a row.
const ROWS: Readonly<Record<LocalReplyReason, Row>> = {
  'no-route': { status: 404, close: false, grpc: UNIMPLEMENTED, text: 'no route matches this request' },
  'no-healthy-upstream': { status: 503, close: false, grpc: UNAVAILABLE, text: 'no healthy upstream endpoint' },
  'circuit-open': { status: 503, close: false, grpc: UNAVAILABLE, text: 'upstream circuit breaker is open' },
  'upstream-connect-failure': { status: 503, close: false, grpc: UNAVAILABLE, text: 'upstream connect failure' },
  'upstream-reset': { status: 502, close: false, grpc: UNAVAILABLE, text: 'upstream reset the request before a complete response' },
  'upstream-timeout': { status: 504, close: false, grpc: DEADLINE_EXCEEDED, text: 'upstream request timeout' },
  'request-timeout': { status: 408, close: true, grpc: DEADLINE_EXCEEDED, text: 'request not received in time' },
  'bad-request': { status: 400, close: true, grpc: INTERNAL, text: 'bad request' },
  'request-smuggling': { status: 400, close: true, grpc: INTERNAL, text: 'ambiguous request framing refused' },
  'header-too-large': { status: 431, close: true, grpc: INTERNAL, text: 'request header fields too large' },
  'retry-budget-exhausted': { status: 503, close: false, grpc: UNAVAILABLE, text: 'retry budget exhausted' },
  // Envoy's RBAC filter answers exactly this body; clients and dashboards match on it.
  'rbac-denied': { status: 403, close: false, grpc: PERMISSION_DENIED, text: 'denied by an authorization policy', body: 'RBAC: access denied' },
};

function build(): Readonly<Record<LocalReplyReason, LocalReply>> {
  const out = {} as Record<LocalReplyReason, LocalReply>;
  for (const reason of Object.keys(ROWS) as LocalReplyReason[]) {
    const row = ROWS[reason];
    out[reason] = Object.freeze({ status: row.status, reason, body: row.body ?? `${reason}: ${row.text}\n`, close: row.close, grpcStatus: row.grpc });
  }
  return Object.freeze(out);
}

/** Every reason's reply (frozen objects, shared: never mutate). */
export const LOCAL_REPLIES: Readonly<Record<LocalReplyReason, LocalReply>> = build();

/** All reasons, in table order. */
export const LOCAL_REPLY_REASONS: readonly LocalReplyReason[] = Object.freeze(Object.keys(ROWS) as LocalReplyReason[]);

export function localReply(reason: LocalReplyReason): LocalReply {
  return LOCAL_REPLIES[reason];
}

/** A local reply as it goes on the wire: status, flat header list (in order) and body. */
export interface RenderedReply {
  readonly status: number;
  readonly headers: readonly string[];
  readonly body: string;
}

/**
 * Render a local reply. HTTP/1.1: content-type, content-length, x-remora-error and, when the reply closes the
 * connection (or `close` is forced, e.g. during a drain), `connection: close`. HTTP/2: the same without any
 * connection-specific header. gRPC (HTTP/2): a trailers-only 200 with grpc-status, grpc-message and x-remora-error.
 */
export function renderLocalReply(reply: LocalReply, protocol: 'http/1.1' | 'h2', grpc: boolean, close = false): RenderedReply {
  if (grpc && protocol === 'h2') {
    return {
      status: 200,
      headers: [
        'content-type', 'application/grpc',
        'grpc-status', String(reply.grpcStatus),
        'grpc-message', encodeURIComponent(reply.body.trim()),
        LOCAL_REPLY_HEADER, reply.reason,
      ],
      body: '',
    };
  }
  const headers = [
    'content-type', 'text/plain; charset=utf-8',
    'content-length', String(Buffer.byteLength(reply.body)),
    LOCAL_REPLY_HEADER, reply.reason,
  ];
  if (protocol === 'http/1.1' && (reply.close || close)) headers.push('connection', 'close');
  return { status: reply.status, headers, body: reply.body };
}

/** A complete HTTP/1.1 local reply as bytes (for answers written straight to a socket: parse errors, tunnels). */
export function rawHttp1LocalReply(reply: LocalReply, close = true): string {
  const r = renderLocalReply(reply, 'http/1.1', false, close);
  let head = `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? ''}\r\n`;
  for (let i = 0; i < r.headers.length; i += 2) head += `${r.headers[i] as string}: ${r.headers[i + 1] as string}\r\n`;
  return `${head}\r\n${r.body}`;
}
