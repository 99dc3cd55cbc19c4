// The Istio metrics store: label sets in Istio's order, the cap with its overflow counter, idle eviction, and a label
// context change.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderExposition } from '../../../src/telemetry/exposition.js';
import { httpSeriesKey, INBOUND, IstioMetrics, OUTBOUND, type LabelContext } from '../../../src/telemetry/istio-metrics.js';
import { FLAG } from '../../../src/telemetry/response-flags.js';
import { HTTP_LABEL_NAMES, localWorkload, serviceLabels, TCP_LABEL_NAMES } from '../../../src/telemetry/workload-labels.js';

const ID = 'spiffe://cluster.local/ns/shop/sa/cart';
const context = (name = ''): LabelContext => ({
  local: localWorkload({ workloadName: name, workloadNamespace: '', canonicalService: '', canonicalRevision: '' }, ID),
  services: new Map([['web', serviceLabels('web', ['web.shop.svc.cluster.local', '*.web'], ['spiffe://cluster.local/ns/front/sa/web'])]]),
});

function lines(m: IstioMetrics, name: string): string[] {
  return renderExposition([m.source]).split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

function labelsOf(line: string): [string, string][] {
  return [...(/\{(.*)\}/.exec(line)?.[1] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]);
}

test('outbound HTTP: reporter source, the local workload from the SPIFFE ID, the service\'s identity, 25 labels in order', () => {
  const m = new IstioMetrics(context(), { maxSeries: 100, evictAfterMs: 0 });
  m.recordRequest(OUTBOUND, 'web', '', false, 200, -1, 0, 12, 5, 100);
  m.recordRequest(OUTBOUND, 'web', '', false, 200, -1, 0, 3, 0, 50);
  const [line] = lines(m, 'istio_requests_total');
  assert.ok(line !== undefined);
  assert.ok(line.endsWith(' 2'));
  const l = labelsOf(line);
  assert.deepEqual(l.map(([k]) => k), [...HTTP_LABEL_NAMES]);
  assert.deepEqual(Object.fromEntries(l), {
    reporter: 'source', source_workload: 'cart', source_workload_namespace: 'shop', source_principal: ID, source_app: 'cart',
    source_version: 'latest', source_canonical_service: 'cart', source_canonical_revision: 'latest', source_cluster: 'unknown',
    destination_workload: 'unknown', destination_workload_namespace: 'front', destination_principal: 'spiffe://cluster.local/ns/front/sa/web',
    destination_app: 'unknown', destination_version: 'unknown', destination_service: 'web.shop.svc.cluster.local', destination_service_name: 'web',
    destination_service_namespace: 'front', destination_canonical_service: 'unknown', destination_canonical_revision: 'unknown',
    destination_cluster: 'unknown', request_protocol: 'http', response_flags: '-', connection_security_policy: 'unknown',
    response_code: '200', grpc_response_status: '',
  });
  assert.equal(lines(m, 'istio_request_duration_milliseconds_sum')[0]?.split(' ').at(-1), '15');
  assert.equal(lines(m, 'istio_request_bytes_bucket').length, 20);
});

test('inbound: reporter destination, the client\'s SPIFFE ID as source principal and namespace, mutual_tls; plaintext is none', () => {
  const m = new IstioMetrics(context(), { maxSeries: 100, evictAfterMs: 0 });
  m.recordRequest(INBOUND, '', 'spiffe://cluster.local/ns/front/sa/web', true, 200, 7, FLAG.DC, 1, 1, 1);
  m.recordRequest(INBOUND, '', '', false, 404, -1, 0, 1, 1, 1);
  const [a, b] = lines(m, 'istio_requests_total').map((x) => Object.fromEntries(labelsOf(x)));
  assert.equal(a?.reporter, 'destination');
  assert.equal(a?.source_principal, 'spiffe://cluster.local/ns/front/sa/web');
  assert.equal(a?.source_workload_namespace, 'front');
  assert.equal(a?.destination_principal, ID);
  assert.equal(a?.destination_workload, 'cart');
  assert.equal(a?.connection_security_policy, 'mutual_tls');
  assert.equal(a?.request_protocol, 'grpc');
  assert.equal(a?.grpc_response_status, '7');
  assert.equal(a?.response_flags, 'DC');
  assert.equal(b?.connection_security_policy, 'none');
  assert.equal(b?.source_principal, 'unknown');
  assert.equal(b?.destination_principal, 'unknown', 'no mTLS: the local identity was not presented');
});

test('passthrough traffic is labelled PassthroughCluster (never the Host a client chose)', () => {
  const m = new IstioMetrics(context(), { maxSeries: 100, evictAfterMs: 0 });
  m.recordRequest(OUTBOUND, '', '', false, 200, -1, 0, 1, 1, 1);
  const l = Object.fromEntries(labelsOf(lines(m, 'istio_requests_total')[0] ?? ''));
  assert.equal(l.destination_service, 'PassthroughCluster');
  assert.equal(l.destination_service_name, 'PassthroughCluster');
});

test('TCP: the 23 labels, counters added up per label set', () => {
  const m = new IstioMetrics(context(), { maxSeries: 100, evictAfterMs: 0 });
  m.recordTcp(OUTBOUND, 'web', '', 0, 1, 1, 100, 10);
  m.recordTcp(OUTBOUND, 'web', '', 0, 1, 1, 50, 5);
  const sent = lines(m, 'istio_tcp_sent_bytes_total');
  assert.equal(sent.length, 1);
  assert.ok(sent[0]?.endsWith(' 150'));
  assert.deepEqual(labelsOf(sent[0] ?? '').map(([k]) => k), [...TCP_LABEL_NAMES]);
  assert.ok(lines(m, 'istio_tcp_connections_opened_total')[0]?.endsWith(' 2'));
  assert.equal(lines(m, 'istio_requests_total').length, 0, 'no HTTP family without HTTP series');
});

test('the cap: observations needing a label set beyond it are dropped and counted; known label sets keep counting', () => {
  const m = new IstioMetrics(context(), { maxSeries: 2, evictAfterMs: 0 });
  m.recordRequest(OUTBOUND, 'web', '', false, 200, -1, 0, 1, 1, 1);
  m.recordRequest(OUTBOUND, 'web', '', false, 500, -1, 0, 1, 1, 1);
  m.recordRequest(OUTBOUND, 'web', '', false, 503, -1, 0, 1, 1, 1);
  m.recordTcp(OUTBOUND, 'web', '', 0, 1, 1, 1, 1);
  m.recordRequest(OUTBOUND, 'web', '', false, 200, -1, 0, 1, 1, 1);
  assert.equal(m.series, 2);
  assert.equal(m.overflow, 2);
  assert.equal(lines(m, 'istio_requests_total').length, 2);
  assert.ok(lines(m, 'istio_requests_total')[0]?.endsWith(' 2'));
});

test('eviction: a label set idle for two sweep periods goes; an updated one stays; the cap frees up', () => {
  const m = new IstioMetrics(context(), { maxSeries: 2, evictAfterMs: 1000 });
  m.recordRequest(OUTBOUND, 'web', '', false, 200, -1, 0, 1, 1, 1);
  m.recordRequest(OUTBOUND, 'web', '', false, 500, -1, 0, 1, 1, 1);
  assert.equal(m.sweep(), 0);
  m.recordRequest(OUTBOUND, 'web', '', false, 200, -1, 0, 1, 1, 1);
  assert.equal(m.sweep(), 0);
  m.recordRequest(OUTBOUND, 'web', '', false, 200, -1, 0, 1, 1, 1);
  assert.equal(m.sweep(), 1, 'the 500 set was idle for the last two periods');
  assert.equal(m.series, 1);
  assert.equal(m.evicted, 1);
  m.recordRequest(OUTBOUND, 'web', '', false, 503, -1, 0, 1, 1, 1);
  assert.equal(m.overflow, 0, 'room again');
  assert.deepEqual(lines(m, 'istio_requests_total').map((l) => Object.fromEntries(labelsOf(l)).response_code), ['200', '503']);
});

test('a new label context with other values starts the series over; the same values keep them', () => {
  const m = new IstioMetrics(context(), { maxSeries: 10, evictAfterMs: 0 });
  m.recordRequest(OUTBOUND, 'web', '', false, 200, -1, 0, 1, 1, 1);
  assert.equal(m.setContext(context()), false);
  assert.equal(m.series, 1);
  assert.equal(m.setContext(context('renamed')), true);
  assert.equal(m.series, 0);
  m.recordRequest(OUTBOUND, 'web', '', false, 200, -1, 0, 1, 1, 1);
  assert.equal(Object.fromEntries(labelsOf(lines(m, 'istio_requests_total')[0] ?? '')).source_workload, 'renamed');
});

test('series keys are small integers, distinct per (protocol, status, gRPC status, flags)', () => {
  const keys = new Set<number>();
  for (const grpc of [false, true]) {
    for (const status of [0, 200, 503, 999]) {
      for (const g of [-1, 0, 16]) for (const f of [0, 1, 4095, 8191]) keys.add(httpSeriesKey(grpc, status, g, f));
    }
  }
  assert.equal(keys.size, 2 * 4 * 3 * 4);
  for (const k of keys) assert.ok(Number.isInteger(k) && k < 2 ** 30, 'a Smi');
});
