import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EtcdClient, parseEtcdUrl, prefixEnd } from '../../../src/control/etcd-client.js';

test('etcd range end of a prefix: the last byte + 1 (base64), carrying past 0xff bytes', () => {
  assert.equal(Buffer.from(prefixEnd('/remora/state/'), 'base64').toString(), '/remora/state0');
  assert.deepEqual([...Buffer.from(prefixEnd('a\u00ff'), 'base64')], [0x61, 0xc3, 0xc0]);
});

test('etcd URL: endpoints in order; IPv6 in brackets; anything else names the form expected', () => {
  assert.deepEqual(parseEtcdUrl('etcd://127.0.0.1:2379/'), { ok: true, endpoints: [{ host: '127.0.0.1', port: 2379 }] });
  const bad = parseEtcdUrl('etcd://a:1,b');
  assert.ok(!bad.ok && bad.expected.includes('"b" is not HOST:PORT'));
});

test('etcd client: no endpoint answering is REMORA_ERR_CONTROL_STORE naming every endpoint tried', async () => {
  // Port 1 on loopback: nothing listens there (connection refused at once).
  const c = new EtcdClient([{ host: '127.0.0.1', port: 1 }, { host: '127.0.0.2', port: 1 }]);
  await assert.rejects(c.range('/x'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'REMORA_ERR_CONTROL_STORE');
    assert.match(err.message, /etcd is unreachable at 127\.0\.0\.1:1,127\.0\.0\.2:1 \(127\.0\.0\.1:1: ECONNREFUSED; 127\.0\.0\.2:1: ECONNREFUSED\)/);
    return true;
  });
});
