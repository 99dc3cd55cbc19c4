// The control plane's view of the sidecars' status reports, without sockets: the report's field-by-field parser, the
// sequence rules shared with the golden metrics, deltas of the per-policy and per-route counters over windows (resets,
// restarts, baselines, replays), endpoints summed over fresh sidecars, routes as configured vs as reported, the
// readiness/certificate change flag, caps and pruning.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { counterDelta, counterDeltas, sequenceStep } from '../../../src/control/report-sequence.js';
import { StatusAggregator } from '../../../src/control/status-aggregator.js';
import {
  MAX_ROUTE_BACKENDS, MAX_STATUS_ENDPOINTS, parseStatusReport, type EndpointStatus, type StatusReport,
} from '../../../src/control/status-report.js';

const T0 = 1_000_000_000;
const CERT = { identity: 'spiffe://cluster.local/ns/shop/sa/web', notAfter: '2026-12-04T21:00:00.000Z', serial: '0a1b' };

function ep(over: Partial<EndpointStatus> = {}): EndpointStatus {
  return { service: 'web', address: '10.0.0.1:80', labels: {}, weight: 1, healthy: true, ejected: false, ejections: 0, activeConnections: 0, ...over };
}

function report(seq: number, over: Partial<StatusReport> & { allowed?: number; denied?: number; audited?: number; wouldDeny?: number; v1?: number; v2?: number } = {}): StatusReport {
  const { allowed = 0, denied = 0, audited = 0, wouldDeny = 0, v1 = 0, v2 = 0, ...rest } = over;
  return {
    name: 'pod-a', identity: '', epoch: 'e1', seq, ready: true, readyReason: 'ready', certificate: CERT, rootsNotAfter: [],
    endpoints: [ep()],
    policies: [{ name: 'deny-admin', action: 'deny', allowed: 0, denied, audited: 0, wouldDeny: 0 }, { name: 'audit-all', action: 'audit', allowed, denied: 0, audited, wouldDeny }],
    routes: [{ route: 'web', service: 'web', backends: [{ backend: 'web-v1', weight: 75, requests: v1 }, { backend: 'web-v2', weight: 25, requests: v2 }] }],
    ...rest,
  };
}

const valid = (): Record<string, unknown> => JSON.parse(JSON.stringify(report(1, { denied: 2, v1: 3 }))) as Record<string, unknown>;

test('parseStatusReport: a valid report round-trips; roots sorted; times normalised to ISO', () => {
  const body = { ...valid(), rootsNotAfter: ['2030-01-01T00:00:00Z', '2028-01-01T00:00:00.000Z'], certificate: { ...CERT, notAfter: '2026-12-04T21:00:00Z' } };
  const r = parseStatusReport(body);
  assert.ok(!('expected' in r), JSON.stringify(r));
  assert.deepEqual(r.rootsNotAfter, ['2028-01-01T00:00:00.000Z', '2030-01-01T00:00:00.000Z']);
  assert.equal(r.certificate?.notAfter, '2026-12-04T21:00:00.000Z');
  assert.equal(r.routes[0]?.backends[0]?.requests, 3);
  assert.equal(r.policies[0]?.denied, 2);
  assert.ok(!('expected' in parseStatusReport({ ...valid(), certificate: null })));
});

test('parseStatusReport: each bad field is named with what was expected', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ name: '../x' }, /"name"/],
    [{ epoch: '' }, /"epoch"/],
    [{ seq: 0 }, /"seq"/],
    [{ ready: 'yes' }, /"ready", a boolean/],
    [{ readyReason: 7 }, /"readyReason"/],
    [{ certificate: 'x' }, /"certificate", an object or null/],
    [{ certificate: { ...CERT, notAfter: 'tomorrow' } }, /certificate\.notAfter/],
    [{ certificate: { ...CERT, serial: 'zz' } }, /certificate\.serial: hex/],
    [{ rootsNotAfter: ['soon'] }, /"rootsNotAfter"/],
    [{ endpoints: [{ ...ep(), weight: -1 }] }, /endpoints\[0\]\.weight/],
    [{ endpoints: [{ ...ep(), healthy: 1 }] }, /endpoints\[0\]\.healthy: a boolean/],
    [{ endpoints: [{ ...ep(), labels: { zone: 3 } }] }, /endpoints\[0\]\.labels\.zone/],
    [{ endpoints: [ep(), { ...ep(), ejections: 1.5 }] }, /endpoints\[1\]\.ejections/],
    [{ endpoints: new Array(MAX_STATUS_ENDPOINTS + 1).fill(ep()) }, /"endpoints", an array of at most 10000/],
    [{ policies: [{ name: 'p', action: 'log', allowed: 0, denied: 0, audited: 0, wouldDeny: 0 }] }, /policies\[0\]\.action/],
    [{ policies: [{ name: 'p', action: 'audit', allowed: 0, denied: 0, audited: 0 }] }, /policies\[0\]\.wouldDeny: a count/],
    [{ routes: [{ route: 'r', service: 's', backends: [{ backend: 'b', weight: 1, requests: -3 }] }] }, /routes\[0\]\.backends\[0\]\.requests/],
    [{ routes: [{ route: 'r', service: 's', backends: new Array(MAX_ROUTE_BACKENDS + 1).fill({ backend: 'b', weight: 1, requests: 0 }) }] }, /routes\[0\]\.backends: an array of at most 64/],
    [{ routes: {} }, /"routes", an array/],
  ];
  for (const [over, re] of cases) {
    const r = parseStatusReport({ ...valid(), ...over });
    assert.ok('expected' in r, `accepted ${JSON.stringify(over).slice(0, 80)}`);
    assert.match(r.expected, re);
  }
});

test('sequence rules: first, baseline, restart, next, duplicate; counter deltas from zero after a reset', () => {
  assert.equal(sequenceStep(undefined, { epoch: 'a', seq: 1 }), 'first');
  assert.equal(sequenceStep(undefined, { epoch: 'a', seq: 7 }), 'baseline');
  assert.equal(sequenceStep({ epoch: 'a', seq: 7 }, { epoch: 'b', seq: 1 }), 'restart');
  assert.equal(sequenceStep({ epoch: 'a', seq: 7 }, { epoch: 'a', seq: 8 }), 'next');
  assert.equal(sequenceStep({ epoch: 'a', seq: 7 }, { epoch: 'a', seq: 7 }), 'duplicate');
  assert.equal(counterDelta(undefined, 5), 5);
  assert.equal(counterDelta(3, 5), 2);
  assert.equal(counterDelta(9, 5), 5);
  assert.deepEqual(counterDeltas([1, 2], [3, 2]), [2, 0]);
  assert.deepEqual(counterDeltas([1, 9], [3, 2]), [3, 2]); // one went down: the series was reset
});

test('policy and route counts over windows: deltas of cumulative reports, summed over sidecars, with shares', () => {
  const a = new StatusAggregator();
  assert.deepEqual(a.ingest('pod-a', report(1, { denied: 2, v1: 3, v2: 1 }), T0), { result: 'ok', changed: true });
  assert.deepEqual(a.ingest('pod-a', report(2, { denied: 5, allowed: 4, audited: 6, wouldDeny: 4, v1: 9, v2: 3 }), T0 + 5_000), { result: 'ok', changed: false });
  a.ingest('pod-b', report(1, { denied: 1, v1: 3, v2: 1 }), T0 + 5_000);
  const now = T0 + 6_000;
  assert.deepEqual(a.policies('1m', now, []), [
    { name: 'audit-all', action: 'audit', allowed: 4, denied: 0, audited: 6, wouldDeny: 4 },
    { name: 'deny-admin', action: 'deny', allowed: 0, denied: 6, audited: 0, wouldDeny: 0 },
  ]);
  const [web] = a.routes('1m', now, []);
  assert.deepEqual(web, { route: 'web', service: 'web', backends: [
    { backend: 'web-v1', weight: 75, requests: 12, share: 0.75 }, { backend: 'web-v2', weight: 25, requests: 4, share: 0.25 },
  ] });
  // Later cumulative reports do not count twice; a window that ended before the traffic holds none of it.
  a.ingest('pod-a', report(3, { denied: 5, allowed: 4, audited: 6, wouldDeny: 4, v1: 9, v2: 3 }), T0 + 10_000);
  assert.equal(a.routes('1m', T0 + 11_000, [])[0]?.backends[0]?.requests, 12);
  assert.equal(a.routes('1m', T0 + 5_000 + 61_000, [])[0]?.backends[0]?.requests, 0);
  assert.equal(a.routes('5m', T0 + 5_000 + 61_000, [])[0]?.backends[0]?.requests, 12);
  assert.equal(a.routes('5m', T0 + 5_000 + 61_000, [])[0]?.backends[0]?.share, 0.75);
});

test('resets: a restarted sidecar counts from zero, a counter that went down counts from zero, a replay is ignored, a late first report is a baseline', () => {
  const a = new StatusAggregator();
  a.ingest('pod-a', report(1, { v1: 10 }), T0);
  assert.deepEqual(a.ingest('pod-a', report(1, { v1: 50 }), T0 + 1_000), { result: 'duplicate' });
  a.ingest('pod-a', report(2, { v1: 4, epoch: 'e2' }), T0 + 2_000); // a new process: its 4 are new
  a.ingest('pod-a', report(3, { v1: 2, epoch: 'e2' }), T0 + 3_000); // went down: 2 new
  a.ingest('pod-b', report(40, { v1: 1_000 }), T0 + 3_000); // the control plane never saw pod-b: a baseline
  a.ingest('pod-b', report(41, { v1: 1_001 }), T0 + 4_000);
  assert.equal(a.routes('1m', T0 + 5_000, [])[0]?.backends[0]?.requests, 10 + 4 + 2 + 1);
});

test('routes: the configured ones with their weights now (zeros without traffic), then others the sidecars report', () => {
  const a = new StatusAggregator();
  a.ingest('pod-a', report(1, { v1: 3, routes: [
    { route: 'web', service: 'web', backends: [{ backend: 'web-v1', weight: 75, requests: 3 }, { backend: 'web-v2', weight: 25, requests: 0 }] },
    { route: 'local-only', service: 'db', backends: [{ backend: 'db', weight: 1, requests: 7 }] },
  ] }), T0);
  const configured = [
    { route: 'web', service: 'web', backends: [{ backend: 'web-v1', weight: 50 }, { backend: 'web-v2', weight: 50 }] },
    { route: 'idle', service: 'cart', backends: [{ backend: 'cart', weight: 1 }] },
  ];
  assert.deepEqual(a.routes('1m', T0 + 1_000, configured), [
    { route: 'idle', service: 'cart', backends: [{ backend: 'cart', weight: 1, requests: 0, share: 0 }] },
    { route: 'local-only', service: 'db', backends: [{ backend: 'db', weight: 1, requests: 7, share: 1 }] },
    { route: 'web', service: 'web', backends: [{ backend: 'web-v1', weight: 50, requests: 3, share: 1 }, { backend: 'web-v2', weight: 50, requests: 0, share: 0 }] },
  ]);
  // Configured policies are listed (with their action) even when no sidecar counted for them.
  assert.deepEqual(a.policies('1m', T0 + 1_000, [{ name: 'allow-web', action: 'allow' }]).map((p) => [p.name, p.action, p.allowed]),
    [['allow-web', 'allow', 0], ['audit-all', 'audit', 0], ['deny-admin', 'deny', 0]]);
});

test('endpoints: counted over the sidecars heard of recently; labels and weight from the latest report; ?service filter', () => {
  const a = new StatusAggregator({ freshMs: 30_000 });
  const dead = '10.0.0.2:80';
  a.ingest('pod-a', report(1, { endpoints: [ep({ activeConnections: 2 }), ep({ address: dead, healthy: false, ejected: true, ejections: 3, labels: { subset: 'v1' } })] }), T0);
  a.ingest('pod-b', report(1, { endpoints: [ep({ activeConnections: 5 }), ep({ address: dead, ejections: 1, weight: 3, labels: { subset: 'v2' } }), ep({ service: 'db', address: '10.0.1.1:5432' })] }), T0 + 1_000);
  a.ingest('pod-old', report(1, { endpoints: [ep({ ejected: true, healthy: false })] }), T0 - 60_000);
  assert.deepEqual(a.endpoints(T0 + 2_000, 'web'), [
    { service: 'web', address: '10.0.0.1:80', labels: {}, weight: 1, healthy: 2, ejected: 0, ejections: 0, sidecars: 2, activeConnections: 7 },
    { service: 'web', address: dead, labels: { subset: 'v2' }, weight: 3, healthy: 1, ejected: 1, ejections: 4, sidecars: 2, activeConnections: 0 },
  ]);
  assert.deepEqual(a.endpoints(T0 + 2_000).map((e) => e.service), ['db', 'web', 'web']);
  assert.deepEqual(a.endpoints(T0 + 2_000, 'nope'), []);
  assert.deepEqual(a.endpoints(T0 + 40_000), []); // nobody fresh
});

test('sidecar view and the change flag: readiness or certificate changes are flagged, counters alone are not', () => {
  const a = new StatusAggregator();
  assert.equal(a.sidecar('pod-a'), undefined);
  assert.deepEqual(a.ingest('pod-a', report(1, { ready: false }), T0), { result: 'ok', changed: true });
  assert.deepEqual(a.sidecar('pod-a'), { ready: false, certificate: CERT, rootsNotAfter: [], statusAt: new Date(T0).toISOString() });
  assert.deepEqual(a.ingest('pod-a', report(2, { ready: false, v1: 9 }), T0 + 1), { result: 'ok', changed: false });
  assert.deepEqual(a.ingest('pod-a', report(3, { ready: true }), T0 + 2), { result: 'ok', changed: true });
  assert.deepEqual(a.ingest('pod-a', report(4, { certificate: { ...CERT, serial: '0a1c' } }), T0 + 3), { result: 'ok', changed: true });
  assert.deepEqual(a.ingest('pod-a', report(5, { certificate: null }), T0 + 4), { result: 'ok', changed: true });
  assert.deepEqual(a.ingest('pod-a', report(6, { certificate: null }), T0 + 5), { result: 'ok', changed: false });
});

test('bounds: at most maxSidecars (room made by pruning the silent), at most maxSeries series; old slots pruned', () => {
  const a = new StatusAggregator({ maxSidecars: 2, maxSeries: 3, retentionMs: 60_000 });
  a.ingest('pod-a', report(1, { v1: 1, v2: 1, denied: 1, allowed: 1 }), T0);
  a.ingest('pod-b', report(1), T0);
  assert.deepEqual(a.ingest('pod-c', report(1), T0 + 1_000), { result: 'too-many-sidecars' });
  assert.deepEqual(a.ingest('pod-c', report(1), T0 + 66_000), { result: 'ok', changed: true }); // a and b pruned
  assert.equal(a.sidecarCount, 1);
  // 2 policy series + 2 route series were offered to caps of 3 each: none dropped; slots older than 60 s are gone
  // (the route is still listed: pod-c reports it).
  assert.equal(a.droppedSeries, 0);
  assert.equal(a.routes('15m', T0 + 66_000, [])[0]?.backends[0]?.requests, 0);
  const b = new StatusAggregator({ maxSeries: 1 });
  b.ingest('pod-a', report(1, { denied: 1, allowed: 1 }), T0);
  assert.equal(b.droppedSeries, 1); // the second policy series did not fit
  assert.deepEqual(b.policies('1m', T0, []).map((p) => [p.name, p.allowed + p.denied]), [['audit-all', 0], ['deny-admin', 1]]);
});
