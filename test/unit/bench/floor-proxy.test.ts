import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headerValue, serviceOf, withoutLine } from '../../../bench/floor-proxy.js';

const HEAD = 'GET / HTTP/1.1\r\nHost: a\r\nCONNECTION: close\r\nContent-Length:  12 \r\n\r\n';

test('floor-proxy headerValue: a field by its lower-case name, any case in the head, trimmed', () => {
  assert.equal(headerValue(HEAD, 'content-length:'), '12');
  assert.equal(headerValue(HEAD, 'connection:'), 'close');
  assert.equal(headerValue(HEAD, 'transfer-encoding:'), undefined);
  // The request line is not a field.
  assert.equal(headerValue(HEAD, 'get / http/1.1'), undefined);
});

test('floor-proxy withoutLine: drops the field line and keeps the rest byte for byte', () => {
  assert.equal(withoutLine(HEAD, 'connection:'), 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length:  12 \r\n\r\n');
  assert.equal(withoutLine(HEAD, 'upgrade:'), HEAD);
  assert.equal(withoutLine('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n', 'connection:'), 'HTTP/1.1 200 OK\r\n\r\n');
});

test('floor-proxy serviceOf: the bench config\'s VIP and endpoints, or undefined without a service', () => {
  const ini = '[proxy]\nhttp_engine = off\n\n[service bench-l4]\naddresses = 10.1.2.200:8080\nprotocol = opaque\n'
    + 'balancer = round-robin\nendpoints = 10.1.2.3:8080, 10.1.2.4:8080,10.1.2.5:8081\n';
  assert.deepEqual(serviceOf(ini), {
    vip: '10.1.2.200:8080',
    endpoints: [{ host: '10.1.2.3', port: 8080 }, { host: '10.1.2.4', port: 8080 }, { host: '10.1.2.5', port: 8081 }],
  });
  assert.equal(serviceOf('[proxy]\nhttp_engine = off\n'), undefined);
});
