// src/proxy/workers/restart-carry.ts: a worker process that is gone keeps its last reading in the merged counters
// (golden edges, the status report, the Prometheus exposition), so they never go down across a restart, and nothing
// is counted twice; what is "now" (readiness, connections in flight, gauges) is only the live workers'.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SidecarStatus } from '../../../src/control/status-report.js';
import { counterDeltas } from '../../../src/control/report-sequence.js';
import { mergeExpositions, mergeGolden, type WorkerPart } from '../../../src/proxy/workers/merge.js';
import { mergeStatus } from '../../../src/proxy/workers/merge-status.js';
import { EXPOSITION_CARRY, GOLDEN_CARRY, RestartCarry, STATUS_CARRY, cumulativeFamilies } from '../../../src/proxy/workers/restart-carry.js';
import type { GoldenEdgeSample } from '../../../src/telemetry/golden-samples.js';

const edge = (requests: number, opened = 0, closed = 0): GoldenEdgeSample => ({
  reporter: 'source', source: 'client', destination: 'web', mtls: false,
  requests: [requests, 0, 0, 0], latency: [requests, 0], tcpOpened: opened, tcpClosed: closed, tcpBytes: opened * 10,
});

/** A primary's view: which pid runs in which slot, and a collect that merges and applies the carry. */
function rig<T>(carry: RestartCarry<T>, merge: (parts: readonly WorkerPart<T>[]) => T) {
  const running = new Map<number, number>();
  return {
    running,
    collect: (parts: readonly WorkerPart<T>[]): T => carry.apply(merge(parts), parts, (w) => running.get(w)),
  };
}

test('golden: a worker killed and restarted: the merged counters never go down, its last reading is counted once', () => {
  const r = rig(new RestartCarry(GOLDEN_CARRY), (parts) => mergeGolden(parts.map((p) => p.value)));
  r.running.set(1, 101).set(2, 102);
  const totals: number[] = [];
  const read = (parts: WorkerPart<GoldenEdgeSample[]>[]): number => {
    const n = r.collect(parts).reduce((a, e) => a + e.requests[0], 0);
    totals.push(n);
    return n;
  };
  assert.equal(read([{ worker: 1, pid: 101, value: [edge(10, 2, 1)] }, { worker: 2, pid: 102, value: [edge(7)] }]), 17);
  assert.equal(read([{ worker: 1, pid: 101, value: [edge(30, 3, 1)] }, { worker: 2, pid: 102, value: [edge(9)] }]), 39);
  // Worker 1 is killed: its slot is empty, only worker 2 answers.
  r.running.delete(1);
  assert.equal(read([{ worker: 2, pid: 102, value: [edge(12)] }]), 42);
  // Restarted as pid 201: counts from zero, added to what 101 counted.
  r.running.set(1, 201);
  assert.equal(read([{ worker: 1, pid: 201, value: [edge(0)] }, { worker: 2, pid: 102, value: [edge(12)] }]), 42);
  assert.equal(read([{ worker: 1, pid: 201, value: [edge(5, 1, 0)] }, { worker: 2, pid: 102, value: [edge(13)] }]), 48);
  for (let i = 1; i < totals.length; i++) assert.ok((totals[i] as number) >= (totals[i - 1] as number), `never down: ${totals.join(' ')}`);
  // A live worker that did not answer: its open connections stay open (only a gone process's are closed).
  const silent = r.collect([{ worker: 1, pid: 201, value: [edge(5, 1, 0)] }])[0] as GoldenEdgeSample;
  assert.deepEqual({ requests: silent.requests[0], opened: silent.tcpOpened, closed: silent.tcpClosed }, { requests: 48, opened: 4, closed: 3 });
  // The dead process's connections were closed with it: opened 3 (closed 3) + 1 open now.
  const last = r.collect([{ worker: 1, pid: 201, value: [edge(5, 1, 0)] }, { worker: 2, pid: 102, value: [edge(13)] }])[0] as GoldenEdgeSample;
  assert.deepEqual({ opened: last.tcpOpened, closed: last.tcpClosed }, { opened: 4, closed: 3 });
  // What the control plane takes as deltas (report-sequence.ts) adds up to the merged total: nothing twice.
  let counted = 0;
  let prev: number[] | undefined;
  for (const t of totals) {
    counted += counterDeltas(prev, [t])[0] as number;
    prev = [t];
  }
  assert.equal(counted, totals.at(-1));
});

test('golden: without the carry the same sequence would be read as a reset and counted twice (what this prevents)', () => {
  const plain = [17, 39, 12, 12, 18];
  let counted = 0;
  let prev: number[] | undefined;
  for (const t of plain) {
    counted += counterDeltas(prev, [t])[0] as number;
    prev = [t];
  }
  assert.ok(counted > 39 + 6, `counted ${counted}`);
});

test('a newer reading of the same process supersedes the older; a worker that did not answer once stands in with its last reading, not kept', () => {
  const r = rig(new RestartCarry(GOLDEN_CARRY), (parts) => mergeGolden(parts.map((p) => p.value)));
  r.running.set(1, 101).set(2, 102);
  r.collect([{ worker: 1, pid: 101, value: [edge(10)] }, { worker: 2, pid: 102, value: [edge(10)] }]);
  // Worker 2 timed out (still running as 102): its last reading stands in (the sum does not drop), and is not kept,
  // so its next answer is not added twice.
  assert.equal(r.collect([{ worker: 1, pid: 101, value: [edge(11)] }]).reduce((a, e) => a + e.requests[0], 0), 21);
  assert.equal(r.collect([{ worker: 1, pid: 101, value: [edge(11)] }, { worker: 2, pid: 102, value: [edge(15)] }]).reduce((a, e) => a + e.requests[0], 0), 26);
  // Worker 2 answered, then died before the merge: its answer is in this merge, and only once in the next.
  r.running.delete(2);
  assert.equal(r.collect([{ worker: 1, pid: 101, value: [edge(11)] }, { worker: 2, pid: 102, value: [edge(16)] }]).reduce((a, e) => a + e.requests[0], 0), 27);
  assert.equal(r.collect([{ worker: 1, pid: 101, value: [edge(12)] }]).reduce((a, e) => a + e.requests[0], 0), 28);
});

const status = (o: { ready?: boolean; allowed?: number; requests?: number; ejections?: number; active?: number; healthy?: boolean }): SidecarStatus => ({
  ready: o.ready ?? true, readyReason: o.ready === false ? 'not ready: x' : 'ready', certificate: null, rootsNotAfter: [],
  endpoints: [{ service: 'web', address: '10.0.0.1:80', labels: {}, weight: 1, healthy: o.healthy ?? true, ejected: false, ejections: o.ejections ?? 0, activeConnections: o.active ?? 0 }],
  policies: [{ name: 'p', action: 'allow', allowed: o.allowed ?? 0, denied: 0, audited: 0, wouldDeny: 0 }],
  routes: [{ route: 'split', service: 'web', backends: [{ backend: 'web/v1', weight: 50, requests: o.requests ?? 0 }] }],
});

test('status: policy, route and ejection counts carried; readiness, health and connections in flight are the live workers\'', () => {
  const r = rig(new RestartCarry(STATUS_CARRY), (parts) => mergeStatus(parts));
  r.running.set(1, 101).set(2, 102);
  r.collect([
    { worker: 1, pid: 101, value: status({ allowed: 5, requests: 8, ejections: 1, active: 3, healthy: false }) },
    { worker: 2, pid: 102, value: status({ allowed: 2, requests: 4, active: 1 }) },
  ]);
  r.running.set(1, 201);
  const m = r.collect([
    { worker: 1, pid: 201, value: status({ allowed: 1, requests: 1, active: 0 }) },
    { worker: 2, pid: 102, value: status({ allowed: 2, requests: 4, active: 1 }) },
  ]);
  assert.equal(m.policies[0]?.allowed, 5 + 1 + 2);
  assert.equal(m.routes[0]?.backends[0]?.requests, 8 + 1 + 4);
  assert.equal(m.endpoints[0]?.ejections, 1);
  assert.equal(m.endpoints[0]?.activeConnections, 1, 'connections of the dead process are not in flight');
  assert.equal(m.endpoints[0]?.healthy, true, 'health is what the live workers say');
  assert.equal(m.ready, true);
  // A route the live workers no longer report (removed from the config) is not brought back by the carry.
  const without = r.collect([
    { worker: 1, pid: 201, value: { ...status({}), routes: [] } },
    { worker: 2, pid: 102, value: { ...status({}), routes: [] } },
  ]);
  assert.deepEqual(without.routes, []);
});

const expo = (requests: number, active: number, ready = 1): string => [
  '# HELP istio_requests_total Requests', '# TYPE istio_requests_total counter', `istio_requests_total{code="200"} ${requests}`,
  '# HELP remora_connections_active Open', '# TYPE remora_connections_active gauge', `remora_connections_active{listener="outbound"} ${active}`,
  '# HELP remora_config_reloads_total Reloads', '# TYPE remora_config_reloads_total counter', 'remora_config_reloads_total{result="ok"} 2',
  '# HELP istio_request_duration_milliseconds Duration', '# TYPE istio_request_duration_milliseconds histogram',
  `istio_request_duration_milliseconds_bucket{le="+Inf"} ${requests}`, `istio_request_duration_milliseconds_sum ${requests * 2}`,
  `istio_request_duration_milliseconds_count ${requests}`,
  '# TYPE remora_ready gauge', `remora_ready ${ready}`, '',
].join('\n');

const value = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

test('prometheus: counters and histograms carried; gauges, copies and remora_ready are the live workers\'', () => {
  assert.equal(cumulativeFamilies(expo(3, 4)).includes('remora_connections_active'), false);
  assert.equal(cumulativeFamilies(expo(3, 4)).includes('remora_config_reloads_total'), false);
  assert.equal(cumulativeFamilies(expo(3, 4)).includes('remora_ready'), false);
  const r = rig(new RestartCarry(EXPOSITION_CARRY), (parts) => mergeExpositions(parts.map((p) => p.value)));
  r.running.set(1, 101).set(2, 102);
  r.collect([{ worker: 1, pid: 101, value: expo(10, 2) }, { worker: 2, pid: 102, value: expo(6, 1) }]);
  r.running.set(1, 201);
  const m = r.collect([{ worker: 1, pid: 201, value: expo(1, 0) }, { worker: 2, pid: 102, value: expo(7, 1) }]);
  assert.equal(value(m, 'istio_requests_total{code="200"}'), 10 + 1 + 7);
  assert.equal(value(m, 'istio_request_duration_milliseconds_count'), 18);
  assert.equal(value(m, 'istio_request_duration_milliseconds_sum'), 36);
  assert.equal(value(m, 'remora_connections_active{listener="outbound"}'), 1);
  assert.equal(value(m, 'remora_config_reloads_total{result="ok"}'), 2, 'a copy every worker holds');
  assert.equal(value(m, 'remora_ready'), 1, 'the carried text does not vote on readiness');
  assert.equal(m.match(/# TYPE istio_requests_total/g)?.length, 1, 'one family block');
  // A live worker not ready still makes remora_ready 0.
  assert.equal(value(r.collect([{ worker: 1, pid: 201, value: expo(1, 0, 0) }, { worker: 2, pid: 102, value: expo(7, 1) }]), 'remora_ready'), 0);
});
