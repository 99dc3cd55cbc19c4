// The one table of responses the proxy generates itself (LocalReplyReason -> status, close, body). Every locally
// generated response carries `x-remora-error: <reason>` so that clients, other proxies and people reading logs can
// tell a proxy error from an application error (Linkerd's `l5d-proxy-error`, Envoy's response flags).
//
// Status choices (Envoy's unless noted):
//   no-route 404 (NR)                    no-healthy-upstream 503 (UH)        circuit-open 503 (UO)
//   upstream-connect-failure 503 (UF)    upstream-reset 502 (Linkerd; Envoy says 503 UC/UR: 502 "bad gateway" is
//   upstream-timeout 504 (UT)              the accurate status for an upstream that broke the exchange)
//   request-timeout 408 + close (the *client* was too slow sending the request; RFC 9110 §15.5.9)
//   bad-request / request-smuggling 400 + close (the framing of the connection can no longer be trusted)
//   header-too-large 431 + close (RFC 6585 §5)   retry-budget-exhausted 503 (Envoy URX)
import type { LocalReply, LocalReplyReason } from './request-types.js';
import type { AttemptOutcome } from '../upstream/health/attempt-outcome.js';
import type { HeaderList } from '../config/route-spec.js';

/** The response header that names the reason of a local reply. */
export const LOCAL_REPLY_HEADER = 'x-remora-error';

interface Row {
  readonly status: number;
  readonly close: boolean;
  readonly text: string;
}

// A Record over the union: the compiler refuses a reason without a row.
const ROWS: Readonly<Record<LocalReplyReason, Row>> = {
  'no-route': { status: 404, close: false, text: 'no route matches this request' },
  'no-healthy-upstream': { status: 503, close: false, text: 'no healthy upstream endpoint' },
  'circuit-open': { status: 503, close: false, text: 'upstream circuit breaker is open' },
  'upstream-connect-failure': { status: 503, close: false, text: 'upstream connect failure' },
  'upstream-reset': { status: 502, close: false, text: 'upstream reset the request before a complete response' },
  'upstream-timeout': { status: 504, close: false, text: 'upstream request timeout' },
  'request-timeout': { status: 408, close: true, text: 'request not received in time' },
  'bad-request': { status: 400, close: true, text: 'bad request' },
  'request-smuggling': { status: 400, close: true, text: 'ambiguous request framing refused' },
  'header-too-large': { status: 431, close: true, text: 'request header fields too large' },
  'retry-budget-exhausted': { status: 503, close: false, text: 'retry budget exhausted' },
};

function build(): Readonly<Record<LocalReplyReason, LocalReply>> {
  const out = {} as Record<LocalReplyReason, LocalReply>;
  for (const reason of Object.keys(ROWS) as LocalReplyReason[]) {
    const row = ROWS[reason];
    out[reason] = Object.freeze({ status: row.status, reason, body: `${reason}: ${row.text}\n`, close: row.close });
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

/**
 * The headers of a local reply, in order: content-type, content-length, x-remora-error and, for HTTP/1.1 replies
 * that close the connection, `connection: close` (never on h2, where connection-specific headers are forbidden).
 */
export function localReplyHeaders(reply: LocalReply, protocol: 'http/1.1' | 'h2'): HeaderList {
  const headers: [string, string][] = [
    ['content-type', 'text/plain; charset=utf-8'],
    ['content-length', String(Buffer.byteLength(reply.body))],
    [LOCAL_REPLY_HEADER, reply.reason],
  ];
  if (reply.close && protocol === 'http/1.1') headers.push(['connection', 'close']);
  return headers;
}

/**
 * The reply for a request whose last attempt failed without a usable response (retries exhausted or not allowed).
 * A `response` outcome is not a local reply (the upstream's response is forwarded), hence undefined.
 */
export function replyForFailedAttempt(outcome: AttemptOutcome): LocalReply | undefined {
  switch (outcome.kind) {
    case 'connect-failure': return LOCAL_REPLIES['upstream-connect-failure'];
    case 'reset': return LOCAL_REPLIES['upstream-reset'];
    case 'timeout': return LOCAL_REPLIES['upstream-timeout'];
    case 'response': return undefined;
  }
}
