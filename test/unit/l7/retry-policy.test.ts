import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttemptOutcome } from '../../../src/upstream/health/attempt-outcome.js';
import type { RetryPolicy } from '../../../src/config/route-spec.js';
import { IDEMPOTENT_METHODS, backoffMs, createRetryDecider, isIdempotent, matchingCondition, shouldRetry } from '../../../src/l7/router/retry-policy.js';
import { retryBudgetAllows, retryBudgetLimit } from '../../../src/upstream/circuit-breaker.js';
import { DEFAULT_RETRY_BUDGET } from '../../../src/config/traffic-policy-spec.js';
import { DEFAULT_RETRY_POLICY, NO_RETRY_POLICY } from '../../../src/config/route-spec.js';
import { seededRandom } from './helpers.js';

const ALL_ON: RetryPolicy = {
  ...DEFAULT_RETRY_POLICY,
  on: ['connect-failure', 'reset', 'gateway-error', '5xx', 'retriable-status', 'grpc'],
  statuses: [429],
  grpcStatuses: [14],
};

const OUTCOMES: Record<string, { outcome: AttemptOutcome; safeForAll: boolean }> = {
  'connect-failure': { outcome: { kind: 'connect-failure' }, safeForAll: true },
  'reset before bytes': { outcome: { kind: 'reset', bytesSent: false }, safeForAll: true },
  'reset after bytes': { outcome: { kind: 'reset', bytesSent: true }, safeForAll: false },
  timeout: { outcome: { kind: 'timeout' }, safeForAll: false },
  '503 response': { outcome: { kind: 'response', status: 503, latencyMs: 5 }, safeForAll: false },
  '500 response': { outcome: { kind: 'response', status: 500, latencyMs: 5 }, safeForAll: false },
  '429 response': { outcome: { kind: 'response', status: 429, latencyMs: 5 }, safeForAll: false },
  'grpc unavailable': { outcome: { kind: 'response', status: 200, grpcStatus: 14, latencyMs: 5 }, safeForAll: false },
};

test('idempotent methods are exactly GET HEAD OPTIONS TRACE PUT DELETE', () => {
  assert.deepEqual([...IDEMPOTENT_METHODS].sort(), ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PUT', 'TRACE']);
  assert.equal(isIdempotent('POST'), false);
  assert.equal(isIdempotent('PATCH'), false);
  assert.equal(isIdempotent('get'), false); // methods are case-sensitive
});

test('every outcome x idempotency: failures before sending are always safe, the rest only for idempotent methods', () => {
  for (const [name, { outcome, safeForAll }] of Object.entries(OUTCOMES)) {
    for (const method of ['GET', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE']) {
      assert.deepEqual(shouldRetry(ALL_ON, 1, outcome, method).retry, true, `${name} ${method}`);
    }
    for (const method of ['POST', 'PATCH', 'CONNECT']) {
      const v = shouldRetry(ALL_ON, 1, outcome, method);
      assert.equal(v.retry, safeForAll, `${name} ${method}`);
      if (!safeForAll) assert.deepEqual(v, { retry: false, reason: 'not-idempotent' });
    }
  }
});

test('retry_non_idempotent lets a route retry POST after it may have been processed', () => {
  const p: RetryPolicy = { ...ALL_ON, retryNonIdempotent: true };
  for (const [name, { outcome }] of Object.entries(OUTCOMES)) {
    assert.equal(shouldRetry(p, 1, outcome, 'POST').retry, true, name);
  }
});

test('conditions select which failures retry; successes never retry', () => {
  const d = DEFAULT_RETRY_POLICY;
  assert.deepEqual(shouldRetry(d, 1, { kind: 'connect-failure' }, 'POST'), { retry: true, condition: 'connect-failure' });
  assert.deepEqual(shouldRetry(d, 1, { kind: 'reset', bytesSent: false }, 'POST'), { retry: true, condition: 'reset' });
  assert.deepEqual(shouldRetry(d, 1, { kind: 'reset', bytesSent: true }, 'GET'), { retry: true, condition: 'reset' });
  assert.deepEqual(shouldRetry(d, 1, { kind: 'timeout' }, 'GET'), { retry: false, reason: 'not-retriable' });
  assert.deepEqual(shouldRetry(d, 1, { kind: 'response', status: 503, latencyMs: 1 }, 'GET'), { retry: false, reason: 'not-retriable' });
  assert.deepEqual(shouldRetry(d, 1, { kind: 'response', status: 200, latencyMs: 1 }, 'GET'), { retry: false, reason: 'success' });
  assert.deepEqual(shouldRetry(ALL_ON, 1, { kind: 'response', status: 404, latencyMs: 1 }, 'GET'), { retry: false, reason: 'success' });

  const gw: RetryPolicy = { ...d, on: ['gateway-error'] };
  for (const s of [502, 503, 504]) assert.equal(matchingCondition(gw, { kind: 'response', status: s, latencyMs: 1 }), 'gateway-error');
  assert.equal(matchingCondition(gw, { kind: 'response', status: 500, latencyMs: 1 }), undefined);
  assert.equal(matchingCondition(gw, { kind: 'connect-failure' }), 'gateway-error');
  assert.equal(matchingCondition(gw, { kind: 'reset', bytesSent: true }), 'gateway-error');
  assert.equal(matchingCondition(gw, { kind: 'timeout' }), 'gateway-error');

  const fivexx: RetryPolicy = { ...d, on: ['5xx'] };
  assert.equal(matchingCondition(fivexx, { kind: 'response', status: 500, latencyMs: 1 }), '5xx');
  assert.equal(matchingCondition(fivexx, { kind: 'response', status: 499, latencyMs: 1 }), undefined);
  assert.equal(matchingCondition(fivexx, { kind: 'timeout' }), '5xx');

  const statuses: RetryPolicy = { ...d, on: ['retriable-status'], statuses: [429, 503] };
  assert.equal(matchingCondition(statuses, { kind: 'response', status: 429, latencyMs: 1 }), 'retriable-status');
  assert.equal(matchingCondition(statuses, { kind: 'response', status: 502, latencyMs: 1 }), undefined);
  assert.equal(matchingCondition(statuses, { kind: 'connect-failure' }), undefined);

  const grpc: RetryPolicy = { ...d, on: ['grpc'], grpcStatuses: [14, 1] };
  assert.equal(matchingCondition(grpc, { kind: 'response', status: 200, grpcStatus: 14, latencyMs: 1 }), 'grpc');
  assert.equal(matchingCondition(grpc, { kind: 'response', status: 200, grpcStatus: 13, latencyMs: 1 }), undefined);
  assert.deepEqual(shouldRetry(grpc, 1, { kind: 'response', status: 200, grpcStatus: 13, latencyMs: 1 }, 'POST'),
    { retry: false, reason: 'not-retriable' });
});

test('attempts are bounded by maxAttempts (first attempt included)', () => {
  const o: AttemptOutcome = { kind: 'connect-failure' };
  assert.equal(shouldRetry(DEFAULT_RETRY_POLICY, 1, o, 'GET').retry, true);
  assert.equal(shouldRetry(DEFAULT_RETRY_POLICY, 2, o, 'GET').retry, true);
  assert.deepEqual(shouldRetry(DEFAULT_RETRY_POLICY, 3, o, 'GET'), { retry: false, reason: 'attempts-exhausted' });
  assert.deepEqual(shouldRetry(NO_RETRY_POLICY, 1, o, 'GET'), { retry: false, reason: 'attempts-exhausted' });
});

test('backoff: full jitter within [0, min(max, base * 2^(n-1))), integers, deterministic with a seed', () => {
  const p: RetryPolicy = { ...DEFAULT_RETRY_POLICY, backoffBaseMs: 25, backoffMaxMs: 250 };
  const rnd = seededRandom(7);
  for (let retry = 1; retry <= 8; retry++) {
    const ceiling = Math.min(250, 25 * 2 ** (retry - 1));
    let maxSeen = 0;
    for (let i = 0; i < 200; i++) {
      const ms = backoffMs(p, retry, rnd);
      assert.ok(Number.isInteger(ms) && ms >= 0 && ms < ceiling, `retry ${retry}: ${ms} < ${ceiling}`);
      maxSeen = Math.max(maxSeen, ms);
    }
    assert.ok(maxSeen >= ceiling * 0.8, `retry ${retry}: the range is used (${maxSeen} of ${ceiling})`);
  }
  assert.equal(backoffMs(p, 1, () => 0), 0);
  assert.equal(backoffMs(p, 100, () => 0.999999), 249);
  assert.equal(backoffMs(p, 3, () => 1), 0, 'a broken random source cannot exceed the bound');
  const a = seededRandom(42);
  const b = seededRandom(42);
  assert.deepEqual([1, 2, 3].map((n) => backoffMs(p, n, a)), [1, 2, 3].map((n) => backoffMs(p, n, b)));
});

test('retry budget: max(minRetryConcurrency, budgetPercent of active requests), Envoy defaults 20 % / 3', () => {
  assert.deepEqual(DEFAULT_RETRY_BUDGET, { budgetPercent: 20, minRetryConcurrency: 3 });
  const b = DEFAULT_RETRY_BUDGET;
  assert.equal(retryBudgetLimit(b, 0), 3);
  assert.equal(retryBudgetLimit(b, 10), 3);
  assert.equal(retryBudgetLimit(b, 100), 20);
  assert.equal(retryBudgetLimit(b, 104), 20);
  assert.equal(retryBudgetAllows(b, 2, 0), true);
  assert.equal(retryBudgetAllows(b, 3, 0), false);
  assert.equal(retryBudgetAllows(b, 19, 100), true);
  assert.equal(retryBudgetAllows(b, 20, 100), false);
  assert.equal(retryBudgetAllows({ budgetPercent: 0, minRetryConcurrency: 0 }, 0, 1000), false);
});

test('the engine-facing decider: replay check, shouldRetry and the backoff of the next retry', () => {
  const d = createRetryDecider(() => 0.5);
  const p: RetryPolicy = { ...DEFAULT_RETRY_POLICY, backoffBaseMs: 100, backoffMaxMs: 1000 };
  assert.deepEqual(d.decide(p, { kind: 'connect-failure' }, { attempts: 1, method: 'POST', replayable: true }), { retry: true, backoffMs: 50 });
  assert.deepEqual(d.decide(p, { kind: 'connect-failure' }, { attempts: 2, method: 'POST', replayable: true }), { retry: true, backoffMs: 100 });
  assert.deepEqual(d.decide(p, { kind: 'connect-failure' }, { attempts: 3, method: 'POST', replayable: true }), { retry: false });
  assert.deepEqual(d.decide(p, { kind: 'connect-failure' }, { attempts: 1, method: 'GET', replayable: false }), { retry: false });
  assert.deepEqual(d.decide(p, { kind: 'reset', bytesSent: true }, { attempts: 1, method: 'POST', replayable: true }), { retry: false });
});
