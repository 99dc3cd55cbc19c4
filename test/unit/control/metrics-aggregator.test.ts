// The control plane's golden-metric aggregation, without sockets: deltas from cumulative reports, rates over
// windows, success rate, quantiles from buckets as histogram_quantile, counter resets, the reporter preference, caps
// and pruning.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { histogramQuantile, MetricsAggregator, type MetricsReport } from '../../../src/control/metrics-aggregator.js';
import type { GoldenEdgeSample } from '../../../src/telemetry/golden-samples.js';
import { ENVOY_DEFAULT_BUCKETS } from '../../../src/telemetry/histogram.js';

const T0 = 1_000_000_000;

function edge(over: Partial<GoldenEdgeSample> & { ok?: number; fail?: number; le10?: number; le100?: number }): GoldenEdgeSample {
  const latency = new Array<number>(20).fill(0);
  latency[3] = over.le10 ?? 0; // (5, 10]
  latency[6] = over.le100 ?? 0; // (50, 100]
  return {
    reporter: 'source', source: 'client', destination: 'web', mtls: false,
    requests: [over.ok ?? 0, 0, 0, over.fail ?? 0], latency, tcpOpened: 0, tcpClosed: 0, tcpBytes: 0, ...over,
  };
}

const report = (seq: number, edges: GoldenEdgeSample[], epoch = 'e1'): MetricsReport => ({ epoch, seq, edges });

test('histogram_quantile: linear interpolation in the bucket, first bucket from 0, +Inf answers the last bound, none → null', () => {
  const counts = new Array<number>(20).fill(0);
  assert.equal(histogramQuantile(0.5, ENVOY_DEFAULT_BUCKETS, counts), null);
  counts[3] = 10; // (5, 10]
  assert.equal(histogramQuantile(0.5, ENVOY_DEFAULT_BUCKETS, counts), 7.5);
  assert.equal(histogramQuantile(0.99, ENVOY_DEFAULT_BUCKETS, counts), 9.95);
  counts[0] = 10; // (0, 0.5]
  assert.equal(histogramQuantile(0.25, ENVOY_DEFAULT_BUCKETS, counts), 0.25);
  assert.equal(histogramQuantile(0.5, ENVOY_DEFAULT_BUCKETS, counts), 0.5);
  const inf = new Array<number>(20).fill(0);
  inf[19] = 3;
  assert.equal(histogramQuantile(0.5, ENVOY_DEFAULT_BUCKETS, inf), 3_600_000);
});

test('rates, success rate and quantiles over a window from cumulative reports', () => {
  const a = new MetricsAggregator({ startedAt: T0 - 3_600_000 });
  assert.equal(a.ingest('pod-a', report(1, [edge({ ok: 0 })]), T0), 'ok');
  assert.equal(a.ingest('pod-a', report(2, [edge({ ok: 50, fail: 10, le10: 60 })]), T0 + 5_000), 'ok');
  assert.equal(a.ingest('pod-a', report(3, [edge({ ok: 110, fail: 10, le10: 100, le100: 20 })]), T0 + 10_000), 'ok');
  const v = a.query('1m', T0 + 10_000);
  assert.equal(v.window, '1m');
  assert.equal(v.services.length, 1);
  const web = v.services[0];
  assert.ok(web !== undefined);
  assert.equal(web.name, 'web');
  assert.equal(web.requests, 120);
  assert.equal(web.rps, 2, '120 requests / 60 s');
  assert.equal(web.successRate, round4(110 / 120));
  assert.equal(web.p50, 5 + 5 * (60 / 100), 'rank 60 of 100 in (5,10]');
  assert.equal(web.p99, 50 + 50 * ((118.8 - 100) / 20));
  assert.deepEqual(v.edges.map((e) => [e.source, e.destination, e.reporter, e.requests, e.mtls]), [['client', 'web', 'source', 120, false]]);
  // 5 minutes: the same requests over a longer window.
  assert.equal(a.query('5m', T0 + 10_000).services[0]?.rps, 0.4);
  // Two minutes later the 1m window is empty; the 5m one still has them.
  assert.deepEqual(a.query('1m', T0 + 130_000).services, []);
  assert.equal(a.query('5m', T0 + 130_000).services[0]?.requests, 120);
});

function round4(v: number): number {
  return Math.round(v * 10_000) / 10_000;
}

test('a young aggregator divides by its life, not the whole window', () => {
  const a = new MetricsAggregator({ startedAt: T0 });
  a.ingest('pod-a', report(1, [edge({ ok: 100 })]), T0 + 10_000);
  assert.equal(a.query('15m', T0 + 10_000).services[0]?.rps, 10);
});

test('counter resets: a new epoch or a counter going down counts from zero; the first report of an old sidecar is a baseline', () => {
  const a = new MetricsAggregator({ startedAt: T0 - 3_600_000 });
  // A sidecar reporting for a while before the control plane (seq > 1): its history is not counted.
  a.ingest('pod-a', report(7, [edge({ ok: 1000 })]), T0);
  assert.deepEqual(a.query('1m', T0).services, []);
  a.ingest('pod-a', report(8, [edge({ ok: 1010 })]), T0 + 5_000);
  assert.equal(a.query('1m', T0 + 5_000).services[0]?.requests, 10);
  // Restarted: another epoch, counters from zero.
  a.ingest('pod-a', report(1, [edge({ ok: 4 })], 'e2'), T0 + 10_000);
  assert.equal(a.query('1m', T0 + 10_000).services[0]?.requests, 14);
  // Same epoch, a counter lower than before (series evicted and made again): counts from zero.
  a.ingest('pod-a', report(2, [edge({ ok: 3 })], 'e2'), T0 + 15_000);
  assert.equal(a.query('1m', T0 + 15_000).services[0]?.requests, 17);
  // A replayed report changes nothing.
  assert.equal(a.ingest('pod-a', report(2, [edge({ ok: 9 })], 'e2'), T0 + 16_000), 'duplicate');
  assert.equal(a.query('1m', T0 + 16_000).services[0]?.requests, 17);
  // Two sidecars sum.
  a.ingest('pod-b', report(1, [edge({ ok: 5, fail: 5 })]), T0 + 20_000);
  const web = a.query('1m', T0 + 20_000).services[0];
  assert.equal(web?.requests, 27);
  assert.equal(web?.successRate, round4(22 / 27));
});

test('per service the destination\'s reports win (no double count); per edge the source\'s; mTLS only when all of it was', () => {
  const a = new MetricsAggregator({ startedAt: T0 - 3_600_000 });
  a.ingest('client-1', report(1, [edge({ ok: 10, mtls: true }), edge({ destination: 'db', ok: 4 })]), T0);
  a.ingest('web-1', report(1, [edge({ reporter: 'destination', source: 'spiffe://td/ns/a/sa/client', ok: 12, mtls: true })]), T0);
  const v = a.query('1m', T0);
  assert.deepEqual(v.services.map((s) => [s.name, s.requests]), [['db', 4], ['web', 12]]);
  assert.deepEqual(v.edges.map((e) => [e.source, e.destination, e.reporter, e.requests, e.mtls]), [
    ['client', 'db', 'source', 4, false],
    ['client', 'web', 'source', 10, true],
    ['spiffe://td/ns/a/sa/client', 'web', 'destination', 12, true],
  ]);
  a.ingest('client-1', report(2, [edge({ ok: 10, mtls: true }), edge({ ok: 1, mtls: false }), edge({ destination: 'db', ok: 4 })]), T0 + 5_000);
  assert.equal(a.query('1m', T0 + 5_000).edges.find((e) => e.destination === 'web' && e.reporter === 'source')?.mtls, false);
});

test('TCP connections open now, from the last reports', () => {
  const a = new MetricsAggregator({ startedAt: T0 - 3_600_000 });
  a.ingest('pod-a', report(1, [edge({ destination: 'db', tcpOpened: 5, tcpClosed: 2, tcpBytes: 1000 })]), T0);
  a.ingest('pod-b', report(1, [edge({ destination: 'db', tcpOpened: 1, tcpClosed: 0, tcpBytes: 10 })]), T0);
  const db = a.query('1m', T0).services.find((s) => s.name === 'db');
  assert.equal(db?.tcpConnections, 4);
  assert.equal(db?.requests, 0);
  assert.equal(db?.successRate, null);
  assert.equal(db?.p50, null);
});

test('caps: new edges beyond maxEdges are dropped and counted; sidecars beyond maxSidecars are refused', () => {
  const a = new MetricsAggregator({ startedAt: T0, maxEdges: 2, maxSidecars: 2 });
  a.ingest('pod-a', report(1, [edge({ destination: 's1', ok: 1 }), edge({ destination: 's2', ok: 1 }), edge({ destination: 's3', ok: 1 })]), T0);
  assert.equal(a.edgeCount, 2);
  assert.equal(a.droppedEdges, 1);
  assert.equal(a.query('1m', T0).droppedEdges, 1);
  assert.equal(a.ingest('pod-b', report(1, []), T0), 'ok');
  assert.equal(a.ingest('pod-c', report(1, []), T0), 'too-many-sidecars');
});

test('pruning: slots older than the retention and sidecars gone longer are forgotten', () => {
  const a = new MetricsAggregator({ startedAt: T0, retentionMs: 60_000 });
  a.ingest('pod-a', report(1, [edge({ ok: 3 })]), T0);
  a.ingest('pod-b', report(1, [edge({ ok: 3 })]), T0 + 50_000);
  a.prune(T0 + 70_000);
  assert.equal(a.sidecarCount, 1, 'pod-a gone for more than the retention');
  assert.equal(a.edgeCount, 1);
  a.prune(T0 + 200_000);
  assert.equal(a.sidecarCount, 0);
  assert.equal(a.edgeCount, 0);
  // pod-a comes back with seq > 1: a baseline, nothing counted twice.
  a.ingest('pod-a', report(9, [edge({ ok: 50 })]), T0 + 205_000);
  assert.deepEqual(a.query('1m', T0 + 205_000).services, []);
});
