import assert from 'node:assert/strict';
import { test } from 'node:test';
import { destinationKey, HttpDestinationMemory } from '../../../src/l4/detect/http-destinations.js';

function memory(capacity = 3, ttlMs = 1_000): { m: HttpDestinationMemory; clock: { t: number; now(): number } } {
  const clock = { t: 0, now() { return this.t; } };
  return { m: new HttpDestinationMemory({ capacity, ttlMs, clock }), clock };
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
