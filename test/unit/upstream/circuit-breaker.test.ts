import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CircuitBreaker, type Release } from '../../../src/upstream/circuit-breaker.js';
import { DEFAULT_CIRCUIT_BREAKER_LIMITS } from '../../../src/config/traffic-policy-spec.js';

const limits = { maxConnections: 2, maxPendingRequests: 1, maxRequests: 3, maxRetries: Number.POSITIVE_INFINITY, retryBudget: undefined };

test('defaults are Envoy-like: 1024 connections/pending/requests, retries bounded by the 20 %/3 budget', () => {
  assert.equal(DEFAULT_CIRCUIT_BREAKER_LIMITS.maxConnections, 1024);
  assert.equal(DEFAULT_CIRCUIT_BREAKER_LIMITS.maxPendingRequests, 1024);
  assert.equal(DEFAULT_CIRCUIT_BREAKER_LIMITS.maxRequests, 1024);
  assert.deepEqual(DEFAULT_CIRCUIT_BREAKER_LIMITS.retryBudget, { budgetPercent: 20, minRetryConcurrency: 3 });
});

test('acquire up to the limit, then open; release reopens; counters follow', () => {
  const cb = new CircuitBreaker(limits);
  const held: Release[] = [];
  for (let i = 0; i < 3; i++) {
    const r = cb.tryAcquire('request');
    assert.notEqual(r, 'open');
    if (r !== 'open') held.push(r);
  }
  assert.equal(cb.tryAcquire('request'), 'open');
  assert.equal(cb.isOpen('request'), true);
  assert.equal(cb.active('request'), 3);
  held.pop()?.();
  assert.equal(cb.isOpen('request'), false);
  assert.notEqual(cb.tryAcquire('request'), 'open');
  const s = cb.stats();
  assert.equal(s.active.request, 3);
  assert.equal(s.granted.request, 4);
  assert.equal(s.overflow.request, 1);
  assert.equal(s.open.request, true);
  assert.equal(s.open.connection, false);
});

test('release is idempotent and resources are independent', () => {
  const cb = new CircuitBreaker(limits);
  const a = cb.tryAcquire('pending');
  assert.notEqual(a, 'open');
  assert.equal(cb.tryAcquire('pending'), 'open');
  assert.notEqual(cb.tryAcquire('connection'), 'open');
  if (a !== 'open') {
    a();
    a();
  }
  assert.equal(cb.active('pending'), 0);
  assert.notEqual(cb.tryAcquire('pending'), 'open');
  assert.equal(cb.active('pending'), 1);
});

test('retries: the budget counts requests and pending; max_retries is a hard cap', () => {
  const cb = new CircuitBreaker({ ...limits, maxRequests: 1000, maxPendingRequests: 1000, retryBudget: { budgetPercent: 20, minRetryConcurrency: 3 } });
  const retries: Release[] = [];
  for (let i = 0; i < 3; i++) {
    const r = cb.tryAcquireRetry();
    assert.equal(typeof r, 'function');
    if (typeof r === 'function') retries.push(r);
  }
  assert.equal(cb.tryAcquireRetry(), 'budget-exhausted');
  assert.equal(cb.tryAcquire('retry'), 'open');
  assert.equal(cb.stats().retryBudgetOverflow, 2);
  // 20 requests + 5 pending in flight -> 20 % of 25 = 5 retries.
  for (let i = 0; i < 20; i++) cb.tryAcquire('request');
  for (let i = 0; i < 5; i++) cb.tryAcquire('pending');
  assert.equal(typeof cb.tryAcquireRetry(), 'function');
  assert.equal(typeof cb.tryAcquireRetry(), 'function');
  assert.equal(cb.tryAcquireRetry(), 'budget-exhausted');
  retries[0]?.();
  assert.equal(typeof cb.tryAcquireRetry(), 'function');

  const capped = new CircuitBreaker({ ...limits, maxRetries: 1, retryBudget: undefined });
  assert.equal(typeof capped.tryAcquireRetry(), 'function');
  assert.equal(capped.tryAcquireRetry(), 'open');
  assert.equal(capped.stats().overflow.retry, 1);
  assert.equal(capped.stats().retryBudgetOverflow, 0);
});

test('new limits apply to the next acquisitions; held resources stay held', () => {
  const cb = new CircuitBreaker(limits);
  const a = cb.tryAcquire('connection');
  const b = cb.tryAcquire('connection');
  assert.equal(cb.tryAcquire('connection'), 'open');
  cb.setLimits({ ...limits, maxConnections: 1 });
  if (typeof a === 'function') a();
  assert.equal(cb.tryAcquire('connection'), 'open', '1 held, limit 1');
  if (typeof b === 'function') b();
  assert.equal(typeof cb.tryAcquire('connection'), 'function');
  assert.equal(cb.limits.maxConnections, 1);
});
