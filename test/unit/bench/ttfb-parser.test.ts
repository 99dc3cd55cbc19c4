import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTtfb, ttfbArgs } from '../../../bench/loads.js';

test('parseTtfb: connections per second and the p50/p99 time to the greeting', () => {
  const m = parseTtfb('noise\n{"count":600,"p50Ms":0.41,"p99Ms":1.2,"errors":1}\n', 6);
  assert.deepEqual(m, { rps: 100, p50Ms: 0.41, p99Ms: 1.2, errors: 1, note: '600 connections, each closed at the greeting' });
});

test('parseTtfb: no result line, or no successful connection, is a failure', () => {
  assert.throws(() => parseTtfb('', 6), /no result/);
  assert.throws(() => parseTtfb('{"count":0,"errors":5}', 6), /no successful connection \(5 errors\)/);
});

test('ttfbArgs names the tool, target and durations', () => {
  assert.deepEqual(ttfbArgs('10.0.0.3', 2525, 6, 1), ['node', 'dist/test/netns/l4-tools.js', 'ttfb', '10.0.0.3', '2525', '6', '1']);
});
