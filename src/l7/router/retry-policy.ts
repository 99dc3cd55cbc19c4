// Retry decisions: pure functions over the contract's RetryPolicy and AttemptOutcome.
//
// Safety rule (RFC 9110 §9.2.2: a proxy MUST NOT automatically retry a non-idempotent request that may have been
// processed; istio/istio#13851 is what happens otherwise):
//   * a failure BEFORE any byte of the request reached the upstream (connect failure; reset with bytesSent=false,
//     which the engine also reports for h2 REFUSED_STREAM and for streams above a GOAWAY's last-stream-id) is safe to
//     retry for every method;
//   * anything that may have reached the upstream (a response, a reset after bytes were sent, a per-try timeout) is
//     retried only for idempotent methods (GET HEAD OPTIONS TRACE PUT DELETE), unless the route explicitly says
//     `retry_non_idempotent = true` (policy.retryNonIdempotent).
// The policy's conditions decide whether a failure of each kind is retriable at all:
//   connect-failure: connect failures.              reset: resets (before any response byte).
//   gateway-error: 502/503/504 responses, connect failures, resets, per-try timeouts (Envoy's local-origin mapping).
//   5xx: any 5xx response, connect failures, resets, per-try timeouts.
//   retriable-status: responses whose status is in policy.statuses.
//   grpc: responses whose grpc-status is in policy.grpcStatuses.
// The engine also must not retry once any byte of the response was forwarded downstream, nor when the request body
// could not be kept for replay; both are outside these functions.
import type { LocalReplyReason } from '../request-types.js';
import type { AttemptOutcome } from '../../upstream/health/attempt-outcome.js';
import { RETRY_CONDITIONS, type RetryCondition, type RetryPolicy } from '../../config/route-spec.js';


export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);




export function isIdempotent(method: string): boolean {
  return IDEMPOTENT_METHODS.has(method);
}

export type RetryVerdict =
  | { readonly retry: true; readonly condition: RetryCondition }
  | {
    readonly retry: false;
    /** success: nothing to retry; attempts-exhausted: maxAttempts reached; not-retriable: no condition of the
     *  policy covers this outcome; not-idempotent: a condition covers it but the request may have been processed. */
    readonly reason: 'success' | 'attempts-exhausted' | 'not-retriable' | 'not-idempotent';
  };

const SUCCESS: RetryVerdict = Object.freeze({ retry: false, reason: 'success' });
const EXHAUSTED: RetryVerdict = Object.freeze({ retry: false, reason: 'attempts-exhausted' });
const NOT_RETRIABLE: RetryVerdict = Object.freeze({ retry: false, reason: 'not-retriable' });
const NOT_IDEMPOTENT: RetryVerdict = Object.freeze({ retry: false, reason: 'not-idempotent' });
const RETRY_BY = Object.freeze(Object.fromEntries(
  RETRY_CONDITIONS.map((c) => [c, Object.freeze({ retry: true, condition: c })]),
)) as Readonly<Record<RetryCondition, RetryVerdict>>;

function has(policy: RetryPolicy, c: RetryCondition): boolean {
  return policy.on.includes(c);
}

/** The first condition of the policy that covers the outcome, or undefined (also for successes). */
export function matchingCondition(policy: RetryPolicy, outcome: AttemptOutcome): RetryCondition | undefined {
  switch (outcome.kind) {
    case 'connect-failure':
      return has(policy, 'connect-failure') ? 'connect-failure'
        : has(policy, 'gateway-error') ? 'gateway-error' : has(policy, '5xx') ? '5xx' : undefined;
    case 'reset':
      return has(policy, 'reset') ? 'reset'
        : has(policy, 'gateway-error') ? 'gateway-error' : has(policy, '5xx') ? '5xx' : undefined;
    case 'timeout':
      return has(policy, 'gateway-error') ? 'gateway-error' : has(policy, '5xx') ? '5xx' : undefined;
    case 'response': {
      const s = outcome.status;
      if (has(policy, 'retriable-status') && policy.statuses.includes(s)) return 'retriable-status';
      if (has(policy, 'gateway-error') && (s === 502 || s === 503 || s === 504)) return 'gateway-error';
      if (has(policy, '5xx') && s >= 500 && s <= 599) return '5xx';
      const g = outcome.grpcStatus;
      if (g !== undefined && has(policy, 'grpc') && policy.grpcStatuses.includes(g)) return 'grpc';
      return undefined;
    }
  }
}

/** True when the request cannot have reached the upstream application. */
export function failedBeforeRequestSent(outcome: AttemptOutcome): boolean {
  return outcome.kind === 'connect-failure' || (outcome.kind === 'reset' && !outcome.bytesSent);
}

/**
 * Whether to make another attempt after attempt number `attempt` (1 = the first) ended with `outcome`. The
 * retry budget and the breaker's retry limit are checked separately (CircuitBreaker.tryAcquireRetry), after this.
 */
export function shouldRetry(policy: RetryPolicy, attempt: number, outcome: AttemptOutcome, method: string): RetryVerdict {
  const condition = matchingCondition(policy, outcome);
  if (condition === undefined) return outcome.kind === 'response' && !isFailure(outcome) ? SUCCESS : NOT_RETRIABLE;
  if (attempt >= policy.maxAttempts) return EXHAUSTED;
  if (!failedBeforeRequestSent(outcome) && !isIdempotent(method) && policy.retryNonIdempotent !== true) {
    return NOT_IDEMPOTENT;
  }
  return RETRY_BY[condition];
}

function isFailure(outcome: AttemptOutcome & { kind: 'response' }): boolean {
  return outcome.status >= 500 || (outcome.grpcStatus !== undefined && outcome.grpcStatus !== 0);
}

/**
 * Delay before retry number `retry` (1 = the first retry): exponential backoff with full jitter, uniformly in
 * [0, min(backoffMaxMs, backoffBaseMs * 2^(retry-1))) — the AWS "full jitter" scheme Envoy also uses. Integer ms.
 */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number): number {
  const base = Math.max(0, policy.backoffBaseMs);
  const max = Math.max(base, policy.backoffMaxMs);
  const exp = Math.min(Math.max(0, retry - 1), 30);
  const ceiling = Math.min(max, base * 2 ** exp);
  const r = random();
  return Math.floor((r >= 0 && r < 1 ? r : 0) * ceiling);
}





/** What the engine knows about a request when it asks whether to retry (structurally http-deps.ts RetryState). */
export interface RetryRequestState {
  /** Attempts made so far (1 after the first). */
  readonly attempts: number;
  readonly method: string;
  /** The request, body included, can be sent again. */
  readonly replayable: boolean;
}

export type RetryDecision =
  | { readonly retry: true; readonly backoffMs: number }
  | { readonly retry: false; readonly reply?: LocalReplyReason };

/** The router's retry decisions: shouldRetry() plus the replay check and the backoff of the next retry. */
export interface RetryDecider {
  decide(policy: RetryPolicy, outcome: AttemptOutcome, state: RetryRequestState): RetryDecision;
}

/** The breaker's retry slot / budget is asked separately by the router (ClusterView.admitRetry). */
export function createRetryDecider(random: () => number): RetryDecider {
  const no: RetryDecision = Object.freeze({ retry: false });
  return {
    decide(policy, outcome, state) {
      if (!state.replayable) return no;
      const v = shouldRetry(policy, state.attempts, outcome, state.method);
      return v.retry ? { retry: true, backoffMs: backoffMs(policy, state.attempts, random) } : no;
    },
  };
}
