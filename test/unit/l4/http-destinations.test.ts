import assert from 'node:assert/strict';
import { test } from 'node:test';
import { destinationKey, HttpDestinationMemory } from '../../../src/l4/detect/http-destinations.js';

function memory(capacity = 3, ttlMs = 1_000, refreshMs = 0): { m: HttpDestinationMemory; clock: { t: number; now(): number } } {
  const clock = { t: 0, now() { return this.t; } };
  return { m: new HttpDestinationMemory({ capacity, ttlMs, clock, refreshMs }), clock };
}

test('a destination is HTTP once recorded, until forgotten or its ttl passes', () => {
  const { m, clock } = memory();
  const k = destinationKey('10.0.0.1', 80);
  assert.equal(k, '10.0.0.1|80');
  assert.equal(m.isHttp(k), false, 'unknown: pre-dial');
  m.recordHttp(k);
  assert.equal(m.isHttp(k), true);
  assert.equal(m.forget(k), true);
  assert.equal(m.isHttp(k), false);
  assert.equal(m.forget(k), false);
  m.recordHttp(k);
  clock.t = 1_000;
  assert.equal(m.isHttp(k), true, 'at the ttl: still vouched for');
  clock.t = 1_001;
  assert.equal(m.isHttp(k), false, 'past the ttl: pre-dial again');
  assert.equal(m.size, 0);
});

test('capacity: the least recently recorded destination is dropped first', () => {
  const { m } = memory(2);
  const [a, b, c] = ['a|1', 'b|1', 'c|1'];
  m.recordHttp(a);
  m.recordHttp(b);
  m.recordHttp(a); // a is now the most recent
  m.recordHttp(c);
  assert.equal(m.size, 2);
  assert.equal(m.isHttp(b), false);
  assert.equal(m.isHttp(a), true);
  assert.equal(m.isHttp(c), true);
});

test('which HTTP the last connection spoke: http1 by default, h2c when recorded so; the newest record wins', () => {
  const { m } = memory();
  const k = destinationKey('10.0.0.1', 80);
  assert.equal(m.lastHttp(k), undefined);
  m.recordHttp(k);
  assert.equal(m.lastHttp(k), 'http1');
  m.recordHttp(k, 'http2');
  assert.equal(m.lastHttp(k), 'http2');
  assert.equal(m.isHttp(k), true);
  m.recordHttp(k, 'http1');
  assert.equal(m.lastHttp(k), 'http1');
});

test('a destination recorded again within refreshMs keeps its entry (no churn); after it, it is refreshed', () => {
  const { m, clock } = memory(2, 10_000, 1_000);
  m.recordHttp('a|1');
  clock.t = 10;
  m.recordHttp('b|1');
  clock.t = 500;
  m.recordHttp('a|1'); // within refreshMs: a keeps its place (the oldest) and its time
  m.recordHttp('c|1');
  assert.equal(m.isHttp('a|1'), false, 'a was still the least recently recorded');
  clock.t = 2_000;
  m.recordHttp('b|1'); // refreshed: now the newest
  m.recordHttp('d|1');
  assert.equal(m.isHttp('c|1'), false, 'c, recorded before b was refreshed, went first');
  assert.equal(m.isHttp('b|1'), true);
  clock.t = 11_999;
  assert.equal(m.isHttp('b|1'), true, 'b vouched for from its refresh at 2,000');
  clock.t = 12_001;
  assert.equal(m.isHttp('b|1'), false);
});
