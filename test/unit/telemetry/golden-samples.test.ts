// The golden-metric edges a sidecar reports: read from the metrics store (not the exposition), folded per
// (reporter, source, destination, mTLS), requests by response class, duration buckets summed over the series.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { goldenSamples, responseClass } from '../../../src/telemetry/golden-samples.js';
import { INBOUND, IstioMetrics, OUTBOUND, type LabelContext } from '../../../src/telemetry/istio-metrics.js';
import { localWorkload, serviceLabels } from '../../../src/telemetry/workload-labels.js';

const ID = 'spiffe://cluster.local/ns/shop/sa/cart';
const context: LabelContext = {
  local: localWorkload({ workloadName: '', workloadNamespace: '', canonicalService: '', canonicalRevision: '' }, ID),
  services: new Map([
    ['web', serviceLabels('web', ['web.shop'], ['spiffe://cluster.local/ns/front/sa/web'])],
    ['plain', serviceLabels('plain', ['plain.shop'], undefined)],
  ]),
};

test('response classes: 1xx/2xx, 3xx, 4xx, 5xx and no response', () => {
  assert.deepEqual([101, 200, 204, 302, 404, 499, 500, 503, 0].map(responseClass), [0, 0, 0, 1, 2, 2, 3, 3, 3]);
});

test('edges per reporter, source and destination, with classes, buckets, TCP and mTLS', () => {
  const m = new IstioMetrics(context, { maxSeries: 100, evictAfterMs: 0 });
  m.recordRequest(OUTBOUND, 'web', '', false, 200, -1, 0, 3, 0, 0);
  m.recordRequest(OUTBOUND, 'web', '', false, 200, -1, 0, 30, 0, 0);
  m.recordRequest(OUTBOUND, 'web', '', false, 503, -1, 0, 3, 0, 0);
  m.recordRequest(OUTBOUND, 'web', '', false, 404, -1, 0, 0.2, 0, 0);
  m.recordRequest(OUTBOUND, 'plain', '', false, 200, -1, 0, 1, 0, 0);
  m.recordRequest(INBOUND, '', 'spiffe://cluster.local/ns/front/sa/gw', false, 200, -1, 0, 2, 0, 0);
  m.recordTcp(OUTBOUND, 'plain', '', 0, 2, 1, 100, 50);
  const edges = goldenSamples(m);
  const web = edges.find((e) => e.destination === 'web');
  assert.ok(web !== undefined);
  assert.equal(web.reporter, 'source');
  assert.equal(web.source, 'cart');
  assert.equal(web.mtls, true);
  assert.deepEqual(web.requests, [2, 0, 1, 1]);
  assert.equal(web.latency.length, 20);
  assert.equal(web.latency[0], 1, '0.2 ms in le=0.5');
  assert.equal(web.latency[2], 2, 'two 3 ms in le=5');
  assert.equal(web.latency[5], 1, '30 ms in le=50');
  const plain = edges.find((e) => e.destination === 'plain');
  assert.ok(plain !== undefined);
  assert.equal(plain.mtls, false);
  assert.deepEqual([plain.tcpOpened, plain.tcpClosed, plain.tcpBytes], [2, 1, 150]);
  const inbound = edges.find((e) => e.reporter === 'destination');
  assert.ok(inbound !== undefined);
  assert.equal(inbound.source, 'spiffe://cluster.local/ns/front/sa/gw', 'no workload name known inbound: the principal');
  assert.equal(inbound.destination, 'cart');
  assert.equal(inbound.mtls, true);
  assert.deepEqual(inbound.requests, [1, 0, 0, 0]);
});
