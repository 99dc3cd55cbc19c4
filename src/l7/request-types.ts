// The contract between the L7 engines (http1-*.ts, http2-*.ts, upstream pools: "the engine") and the L7 policies
// (router, retry, circuit breaker, outlier detection, per-request balancers, local replies: "the policies").
// The engine owns sockets and streams; the policies are pure and synchronous, with injected clock/random.
import type { HashOn, HeaderList, HeaderMutations, RetryPolicy, WeightedBackend } from '../config/route-spec.js';

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
      readonly hashOn?: HashOn;
    }
  | { readonly kind: 'reply'; readonly reply: LocalReply };

