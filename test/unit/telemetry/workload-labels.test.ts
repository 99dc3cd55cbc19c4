// The local workload's labels: [proxy] keys first, then the identity's SPIFFE ID, then "unknown".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localWorkload, serviceLabels } from '../../../src/telemetry/workload-labels.js';

const none = { workloadName: '', workloadNamespace: '', canonicalService: '', canonicalRevision: '' };

test('defaults from an Istio-shaped SPIFFE ID: namespace and service account; canonical service = workload; revision latest', () => {
  const w = localWorkload(none, 'spiffe://cluster.local/ns/shop/sa/cart');
  assert.deepEqual(w, {
    name: 'cart', namespace: 'shop', principal: 'spiffe://cluster.local/ns/shop/sa/cart', app: 'cart', version: 'latest',
    canonicalService: 'cart', canonicalRevision: 'latest', cluster: 'unknown',
  });
});

test('no identity: unknown; [proxy] keys win over the identity', () => {
  assert.equal(localWorkload(none, undefined).name, 'unknown');
  assert.equal(localWorkload(none, undefined).principal, 'unknown');
  const w = localWorkload({ workloadName: 'cart-v2', workloadNamespace: 'prod', canonicalService: 'cart', canonicalRevision: 'v2' }, 'spiffe://td/ns/shop/sa/cart');
  assert.equal(w.name, 'cart-v2');
  assert.equal(w.namespace, 'prod');
  assert.equal(w.canonicalService, 'cart');
  assert.equal(w.app, 'cart');
  assert.equal(w.version, 'v2');
  assert.equal(localWorkload(none, 'spiffe://td/custom/path').name, 'unknown', 'not Istio-shaped');
});

test('a service: its first exact host name; the server identity only when exactly one exact identity is accepted', () => {
  assert.deepEqual(serviceLabels('web', ['*.web', 'web.shop'], undefined), { host: 'web.shop', mtls: false, principal: 'unknown', namespace: 'unknown' });
  assert.equal(serviceLabels('web', [], ['spiffe://td/ns/a/sa/b']).principal, 'spiffe://td/ns/a/sa/b');
  assert.equal(serviceLabels('web', [], ['spiffe://td/ns/a/sa/b']).namespace, 'a');
  assert.equal(serviceLabels('web', [], ['spiffe://td/ns/a/*']).principal, 'unknown');
  assert.equal(serviceLabels('web', [], ['*']).mtls, true);
  assert.equal(serviceLabels('web', [], []).host, 'web');
});
