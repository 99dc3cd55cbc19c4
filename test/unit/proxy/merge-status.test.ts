// `workers = N`: the status report of the control plane (POST /api/v1/sync/status) folded from the workers' reports
// (src/proxy/workers/merge-status.ts, the 'status' report source).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_STATUS_ENDPOINTS, type EndpointStatus, type SidecarStatus } from '../../../src/control/status-report.js';
import { mergeStatus } from '../../../src/proxy/workers/merge-status.js';
import type { WorkerPart } from '../../../src/proxy/workers/merge.js';
import { mergeReport } from '../../../src/proxy/workers/report-sources.js';

const cert = { identity: 'spiffe://mesh.local/ns/default/sa/client', notAfter: '2027-01-01T00:00:00.000Z', serial: 'ab01' };

function ep(service: string, address: string, o: Partial<EndpointStatus> = {}): EndpointStatus {
  return { service, address, labels: { zone: 'a' }, weight: 1, healthy: true, ejected: false, ejections: 0, activeConnections: 0, ...o };
}

function status(o: Partial<SidecarStatus> = {}): SidecarStatus {
  return {
    ready: true, readyReason: 'ready', certificate: cert, rootsNotAfter: ['2030-01-01T00:00:00.000Z'],
    endpoints: [], policies: [], routes: [], ...o,
  };
}

const part = (worker: number, value: SidecarStatus): WorkerPart<SidecarStatus> => ({ worker, pid: 1000 + worker, value });

test('status: policy and per-route per-backend counters are summed; the certificate and roots are the first worker\'s', () => {
  const a = status({
    policies: [
      { name: 'deny-admin', action: 'deny', allowed: 0, denied: 3, audited: 0, wouldDeny: 0 },
      { name: 'audit-get', action: 'audit', allowed: 0, denied: 0, audited: 5, wouldDeny: 4 },
    ],
    routes: [{ route: 'web-split', service: 'web', backends: [{ backend: 'web/v1', weight: 75, requests: 30 }, { backend: 'web/v2', weight: 25, requests: 9 }] }],
  });
  const b = status({
    policies: [
      { name: 'deny-admin', action: 'deny', allowed: 0, denied: 2, audited: 0, wouldDeny: 0 },
      { name: 'audit-get', action: 'audit', allowed: 0, denied: 0, audited: 7, wouldDeny: 1 },
    ],
    routes: [{ route: 'web-split', service: 'web', backends: [{ backend: 'web/v1', weight: 75, requests: 45 }, { backend: 'web/v2', weight: 25, requests: 16 }] }],
  });
  const m = mergeStatus([part(1, a), part(2, b)]);
  assert.deepEqual(m.policies, [
    { name: 'deny-admin', action: 'deny', allowed: 0, denied: 5, audited: 0, wouldDeny: 0 },
    { name: 'audit-get', action: 'audit', allowed: 0, denied: 0, audited: 12, wouldDeny: 5 },
  ]);
  assert.deepEqual(m.routes, [{ route: 'web-split', service: 'web', backends: [{ backend: 'web/v1', weight: 75, requests: 75 }, { backend: 'web/v2', weight: 25, requests: 25 }] }]);
  assert.deepEqual(m.certificate, cert);
  assert.deepEqual(m.rootsNotAfter, ['2030-01-01T00:00:00.000Z']);
  assert.equal(m.ready, true);
  assert.equal(m.readyReason, 'ready');
  assert.equal(m.endpointsTruncated, undefined);
  // The report source is this merge.
  assert.deepEqual(mergeReport('status', [part(1, a), part(2, b)]), m);
});

test('status: a route or policy one worker does not have yet (a worker restarted mid-reload) is kept with its counts', () => {
  const a = status({ routes: [{ route: 'r1', service: 'web', backends: [{ backend: 'web/v1', weight: 100, requests: 4 }] }] });
  const b = status({ routes: [
    { route: 'r1', service: 'web', backends: [{ backend: 'web/v1', weight: 100, requests: 1 }, { backend: 'web/v2', weight: 0, requests: 2 }] },
    { route: 'r2', service: 'api', backends: [{ backend: 'api', weight: 100, requests: 6 }] },
  ] });
  assert.deepEqual(mergeStatus([part(1, a), part(2, b)]).routes, [
    { route: 'r1', service: 'web', backends: [{ backend: 'web/v1', weight: 100, requests: 5 }, { backend: 'web/v2', weight: 0, requests: 2 }] },
    { route: 'r2', service: 'api', backends: [{ backend: 'api', weight: 100, requests: 6 }] },
  ]);
});

test('status: ready only when every worker is; the reason names the first worker that is not', () => {
  const down = status({ ready: false, readyReason: 'not ready: outbound redirect probe failed' });
  const m = mergeStatus([part(1, status()), part(2, down)]);
  assert.equal(m.ready, false);
  assert.equal(m.readyReason, 'not ready: worker 2: outbound redirect probe failed');
  assert.equal(mergeStatus([part(1, status({ ready: false, readyReason: 'draining' })), part(2, status())]).ready, false);
  assert.equal(mergeStatus([part(1, status()), part(2, status())]).ready, true);
});

test('status: an endpoint\'s active connections and ejections are summed; ejected (and so not healthy) if any worker ejected it', () => {
  const a = status({ endpoints: [
    ep('web', '10.0.0.1:80', { activeConnections: 3, ejections: 1, ejected: true, healthy: false }),
    ep('web', '10.0.0.2:80', { activeConnections: 2 }),
    ep('db', '10.0.0.9:5432', { activeConnections: 1 }),
  ] });
  const b = status({ endpoints: [
    ep('web', '10.0.0.1:80', { activeConnections: 4, ejections: 2 }),
    ep('web', '10.0.0.2:80', { activeConnections: 5, healthy: false }),
    ep('web', '10.0.0.3:80', { activeConnections: 1 }),
  ] });
  const m = mergeStatus([part(1, a), part(2, b)]);
  assert.deepEqual(m.endpoints.map((e) => [e.service, e.address, e.activeConnections, e.ejections, e.ejected, e.healthy]), [
    ['web', '10.0.0.1:80', 7, 3, true, false],
    ['web', '10.0.0.2:80', 7, 0, false, false],
    ['db', '10.0.0.9:5432', 1, 0, false, true],
    ['web', '10.0.0.3:80', 1, 0, false, true],
  ]);
  // Labels and weight (configuration) are carried as they are.
  assert.deepEqual(m.endpoints[0]?.labels, { zone: 'a' });
  assert.equal(m.endpoints[0]?.weight, 1);
  // Ejected in the second worker only: still ejected in the merge.
  const late = mergeStatus([part(1, status({ endpoints: [ep('web', 'x:1')] })), part(2, status({ endpoints: [ep('web', 'x:1', { ejected: true, healthy: false, ejections: 1 })] }))]);
  assert.deepEqual(late.endpoints.map((e) => [e.ejected, e.healthy, e.ejections]), [[true, false, 1]]);
  // The inputs are not changed.
  assert.equal(a.endpoints[0]?.activeConnections, 3);
});

test('status: endpoints are bounded (truncated when any worker\'s list was, or the union is over the bound)', () => {
  const t = mergeStatus([part(1, status({ endpoints: [ep('web', 'a:1')], endpointsTruncated: true })), part(2, status())]);
  assert.equal(t.endpointsTruncated, true);
  const many = (from: number): EndpointStatus[] => Array.from({ length: MAX_STATUS_ENDPOINTS }, (_, i) => ep('web', `10.${from}.${i >> 8}.${i & 255}:80`));
  const u = mergeStatus([part(1, status({ endpoints: many(1) })), part(2, status({ endpoints: many(2) }))]);
  assert.equal(u.endpoints.length, MAX_STATUS_ENDPOINTS);
  assert.equal(u.endpointsTruncated, true);
});

test('status: no worker answered is an error, not an empty report', () => {
  assert.throws(() => mergeStatus([]), /no worker answered/);
});
