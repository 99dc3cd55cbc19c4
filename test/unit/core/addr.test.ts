import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalIp, normalizePortRanges, parseCidr, parseHostPort, unmapIpv4 } from '../../../src/core/addr.js';

test('canonical IPv6 text follows RFC 5952', () => {
  assert.equal(canonicalIp('2001:0db8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(canonicalIp('::6'), '::6');
  assert.equal(canonicalIp('fd52:e1:7::2'), 'fd52:e1:7::2');
  assert.equal(canonicalIp('1:0:0:1:0:0:0:1'), '1:0:0:1::1');
  assert.equal(canonicalIp('::ffff:10.0.0.1'), '::ffff:a00:1');
  assert.equal(canonicalIp('010.1.2.3'), undefined);
});

test('CIDR parsing', () => {
  assert.deepEqual(parseCidr('::1'), { family: 6, prefix: 128, text: '::1/128' });
  assert.deepEqual(parseCidr('0.0.0.0/0'), { family: 4, prefix: 0, text: '0.0.0.0/0' });
  assert.ok('error' in parseCidr('fd00::1/8'));
});

test('port ranges merge', () => {
  assert.deepEqual(normalizePortRanges([{ from: 5, to: 9 }, { from: 1, to: 4 }, { from: 20, to: 20 }]), [{ from: 1, to: 9 }, { from: 20, to: 20 }]);
});

test('host:port and v4-mapped addresses', () => {
  assert.deepEqual(parseHostPort('localhost:80'), { host: 'localhost', port: 80 });
  assert.equal(unmapIpv4('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(unmapIpv4('fd00::1'), 'fd00::1');
});
