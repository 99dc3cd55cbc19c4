// The contract between the L7 engines (http1-*.ts, http2-*.ts, upstream pools: "the engine") and the L7 policies
// (router, retry, circuit breaker, outlier detection, per-request balancers, local replies: "the policies").
// The engine owns sockets and streams; the policies are pure and synchronous, with injected clock/random.

/** Header list as received: names keep their case and order; duplicates stay separate entries. */
export type HeaderList = readonly (readonly [name: string, value: string])[];

export interface RequestHead {
  readonly method: string;
  /** The request-target as sent (origin-form "/a?b=1", or absolute-form for proxies). */
  readonly target: string;
  /** Path without the query ("/a"). */
  readonly path: string;
  /** Raw query string without "?" ("b=1&c=2"), "" when absent. */
  readonly query: string;
  /** Host header (HTTP/1.1) or :authority (HTTP/2), lower-cased, port kept. */
  readonly authority: string;
  readonly headers: HeaderList;
  readonly protocol: 'http/1.1' | 'h2';
  /** Client address as seen by the proxy (for source-address hashing). */
  readonly sourceAddress: string;
  /** The original destination the app dialed (from SO_ORIGINAL_DST). */
  readonly originalDst: { readonly address: string; readonly port: number };
}

/** Why the proxy answered itself; sent as `x-remora-error: <reason>` with a one-line body. */
export type LocalReplyReason =
  | 'no-route'
  | 'no-healthy-upstream'
  | 'circuit-open'
  | 'upstream-connect-failure'
  | 'upstream-reset'
  | 'upstream-timeout'
  | 'request-timeout'
  | 'bad-request'
  | 'request-smuggling'
  | 'header-too-large'
  | 'retry-budget-exhausted';

export interface LocalReply {
  readonly status: number;
  readonly reason: LocalReplyReason;
  /** One line, ends with "\n". */
  readonly body: string;
  /** Close the downstream connection after the reply (HTTP/1.1). */
  readonly close: boolean;
}

export interface RetryPolicy {
  /** Total attempts including the first (1 = no retry). */
  readonly maxAttempts: number;
  /** Conditions: 'connect-failure', 'reset' (before any response byte), 'gateway-error' (502/503/504), '5xx',
   *  'retriable-status' (with statuses), 'grpc' (with grpcStatuses). */
  readonly on: readonly ('connect-failure' | 'reset' | 'gateway-error' | '5xx' | 'retriable-status' | 'grpc')[];
  readonly statuses: readonly number[];
  /** gRPC status names/numbers: cancelled, deadline-exceeded, internal, resource-exhausted, unavailable. */
  readonly grpcStatuses: readonly number[];
  readonly perTryTimeoutMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Prefer endpoints not tried yet in this request. */
  readonly preferOtherHosts: boolean;
  /** Also retry requests with non-idempotent methods (POST, PATCH, ...) after they may have reached the upstream
   *  (a response, a reset after bytes were sent, a timeout). Absent = false. Failures before any request byte was
   *  sent are retried for every method regardless. (Added by the policies; optional, so existing literals hold.) */
  readonly retryNonIdempotent?: boolean;
}

export interface WeightedBackend {
  /** Service name (a [service NAME] section) and optional subset (endpoint label "subset=v2"). */
  readonly service: string;
  readonly subset?: string;
  readonly weight: number;
}

export interface HeaderMutations {
  readonly add: HeaderList;
  readonly remove: readonly string[];
}

export type RouteDecision =
  | {
      readonly kind: 'forward';
      readonly route: string;
      readonly backend: WeightedBackend;
      readonly timeoutMs: number;
      readonly retry: RetryPolicy;
      readonly requestHeaders: HeaderMutations;
      readonly responseHeaders: HeaderMutations;
      /** How to hash for consistent-hash balancing, when the service uses it. */
      readonly hashOn?: { readonly kind: 'header' | 'cookie' | 'source'; readonly name?: string };
    }
  | { readonly kind: 'reply'; readonly reply: LocalReply };

/** Result of an attempt, as the engine reports it to retry / outlier / balancer policies. */
export type AttemptOutcome =
  | { readonly kind: 'response'; readonly status: number; readonly grpcStatus?: number; readonly latencyMs: number }
  | { readonly kind: 'connect-failure' }
  /** bytesSent=false means the request provably never reached the upstream application: no byte was written, or
   *  an h2 stream was refused (REFUSED_STREAM) or lay above a GOAWAY's last-stream-id. Such failures are retried
   *  for every method; bytesSent=true only for idempotent ones. */
  | { readonly kind: 'reset'; readonly bytesSent: boolean }
  | { readonly kind: 'timeout' };
