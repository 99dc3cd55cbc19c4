// Envoy's response flags (envoy source/common/stream_info/utility.h) for what remora can tell about a request or a
// connection: one pure mapping from outcomes (local-reply reason, why a started response was reset, the client going
// away, attempts against the retry policy's limit; for TCP, the connection's error code) to a bit set, and the bit set
// to Envoy's text ("-" for none, else the codes comma-joined in Envoy's order). Metrics label `response_flags` and the
// access log's `response_flags` use the same text.
import type { RemoraErrorCode } from '../core/errors.js';
import type { RequestResetCause } from '../l7/request-context.js';
import type { LocalReplyReason } from '../l7/request-types.js';

/** The flags remora produces, in Envoy's print order; a flag's bit is 1 << its index. */
export const RESPONSE_FLAG_CODES = ['UH', 'UT', 'LR', 'UR', 'UF', 'UC', 'UO', 'URX', 'NR', 'RL', 'DC', 'SI', 'DPE'] as const;
export type ResponseFlagCode = (typeof RESPONSE_FLAG_CODES)[number];

/** Envoy's long names, for the docs and the tests. */
export const RESPONSE_FLAG_NAMES: Readonly<Record<ResponseFlagCode, string>> = {
  UH: 'NoHealthyUpstream',
  UT: 'UpstreamRequestTimeout',
  LR: 'LocalReset',
  UR: 'UpstreamRemoteReset',
  UF: 'UpstreamConnectionFailure',
  UC: 'UpstreamConnectionTermination',
  UO: 'UpstreamOverflow',
  URX: 'UpstreamRetryLimitExceeded',
  NR: 'NoRouteFound',
  RL: 'RateLimited',
  DC: 'DownstreamConnectionTermination',
  SI: 'StreamIdleTimeout',
  DPE: 'DownstreamProtocolError',
};

export const FLAG: Readonly<Record<ResponseFlagCode, number>> = Object.freeze(
  Object.fromEntries(RESPONSE_FLAG_CODES.map((c, i) => [c, 1 << i])) as Record<ResponseFlagCode, number>,
);

/** Every flag set fits in this many bits (the metrics key packs them). */
export const RESPONSE_FLAG_BITS = RESPONSE_FLAG_CODES.length;

/** Local reply reason -> flag (0: none; an authorization denial has none in Envoy either). */
const LOCAL_REPLY_FLAGS: Readonly<Record<LocalReplyReason, number>> = {
  'no-route': FLAG.NR,
  'no-healthy-upstream': FLAG.UH,
  'circuit-open': FLAG.UO,
  'upstream-connect-failure': FLAG.UF,
  'upstream-reset': FLAG.UC,
  'upstream-timeout': FLAG.UT,
  'request-timeout': FLAG.SI,
  'bad-request': FLAG.DPE,
  'request-smuggling': FLAG.DPE,
  'header-too-large': FLAG.DPE,
  'retry-budget-exhausted': FLAG.URX,
  'rbac-denied': 0,
};

const RESET_FLAGS: Readonly<Record<RequestResetCause, number>> = {
  'upstream-reset': FLAG.UC,
  'upstream-timeout': FLAG.UT,
  'upstream-refused': FLAG.UR,
};

/** Local replies that report an upstream failure (with retries used up, URX joins them). */
const UPSTREAM_FAILURES: ReadonlySet<LocalReplyReason> = new Set(['upstream-connect-failure', 'upstream-reset', 'upstream-timeout', 'no-healthy-upstream']);

export interface HttpFlagInputs {
  readonly localReply: LocalReplyReason | undefined;
  readonly resetCause: RequestResetCause | undefined;
  readonly downstreamAborted: boolean;
  /** Policy attempts made. */
  readonly attempts: number;
  /** The route's retry policy limit (1 = no retries). */
  readonly maxAttempts: number;
  /** The status sent downstream (0: none). */
  readonly status: number;
}

/**
 * The flags of one HTTP request. URX: more than one attempt, the policy's limit reached, and the request still failed
 * (an upstream failure answered locally, or a 5xx from the upstream).
 */
export function httpResponseFlags(o: HttpFlagInputs): number {
  return httpFlags(o.localReply, o.resetCause, o.downstreamAborted, o.attempts, o.maxAttempts, o.status);
}

/** httpResponseFlags with positional arguments (the hot path: no object per request). */
export function httpFlags(
  localReply: LocalReplyReason | undefined, resetCause: RequestResetCause | undefined, downstreamAborted: boolean,
  attempts: number, maxAttempts: number, status: number,
): number {
  let f = 0;
  if (localReply !== undefined) f |= LOCAL_REPLY_FLAGS[localReply];
  if (resetCause !== undefined) f |= RESET_FLAGS[resetCause];
  if (downstreamAborted) f |= FLAG.DC;
  if (attempts > 1 && attempts >= maxAttempts
    && ((localReply !== undefined && UPSTREAM_FAILURES.has(localReply)) || (localReply === undefined && status >= 500))) {
    f |= FLAG.URX;
  }
  return f;
}

const CONNECTION_FLAGS: Readonly<Partial<Record<RemoraErrorCode, number>>> = {
  REMORA_ERR_UPSTREAM_CONNECT: FLAG.UF,
  REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT: FLAG.UF,
  REMORA_ERR_UPSTREAM_TLS: FLAG.UF,
  REMORA_ERR_PEER_IDENTITY: FLAG.UF,
  REMORA_ERR_NO_HEALTHY_ENDPOINT: FLAG.UH,
  REMORA_ERR_UNKNOWN_DESTINATION: FLAG.NR,
  REMORA_ERR_MTLS_REQUIRED: FLAG.NR,
  REMORA_ERR_UPSTREAM_RESET: FLAG.UC,
  REMORA_ERR_DOWNSTREAM_RESET: FLAG.DC,
  REMORA_ERR_DRAIN_TIMEOUT: FLAG.LR,
};

/** The flags of one TCP connection, from its error code (undefined: it ended normally). */
export function connectionResponseFlags(code: RemoraErrorCode | undefined): number {
  return code === undefined ? 0 : (CONNECTION_FLAGS[code] ?? 0);
}

const TEXT_CACHE = new Map<number, string>();

/** Envoy's text of a flag set: "-" for none, else "UF,URX" (Envoy's order). */
export function formatResponseFlags(flags: number): string {
  if (flags === 0) return '-';
  let t = TEXT_CACHE.get(flags);
  if (t === undefined) {
    const codes: string[] = [];
    for (let i = 0; i < RESPONSE_FLAG_CODES.length; i++) if ((flags & (1 << i)) !== 0) codes.push(RESPONSE_FLAG_CODES[i] as string);
    t = codes.join(',');
    TEXT_CACHE.set(flags, t);
  }
  return t;
}
