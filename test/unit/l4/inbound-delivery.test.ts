import assert from 'node:assert/strict';
import { test } from 'node:test';
import { INBOUND_SOURCE_V4, INBOUND_SOURCE_V6, routeConnection } from '../../../src/l4/inbound-delivery.js';

const v4 = { family: 4, address: '10.1.2.3', port: 8080 } as const;
const v6 = { family: 6, address: 'fd00::3', port: 8443 } as const;

test('outbound goes to the original destination, with no source address of its own', () => {
  assert.deepEqual(routeConnection('outbound', v4, { inboundDelivery: 'original-dst' }), { host: '10.1.2.3', port: 8080 });
  assert.deepEqual(routeConnection('outbound', v6, { inboundDelivery: 'loopback' }), { host: 'fd00::3', port: 8443 });
});

test('inbound original-dst delivers to the address the client dialed, from 127.0.0.6 / ::6', () => {
  assert.deepEqual(routeConnection('inbound', v4, { inboundDelivery: 'original-dst' }),
    { host: '10.1.2.3', port: 8080, localAddress: '127.0.0.6' });
  assert.deepEqual(routeConnection('inbound', v6, { inboundDelivery: 'original-dst' }),
    { host: 'fd00::3', port: 8443, localAddress: '::6' });
  assert.equal(INBOUND_SOURCE_V4, '127.0.0.6');
  assert.equal(INBOUND_SOURCE_V6, '::6');
});

test('inbound loopback delivers to 127.0.0.1 / ::1 at the original port, from the same sources', () => {
  assert.deepEqual(routeConnection('inbound', v4, { inboundDelivery: 'loopback' }),
    { host: '127.0.0.1', port: 8080, localAddress: '127.0.0.6' });
  assert.deepEqual(routeConnection('inbound', v6, { inboundDelivery: 'loopback' }),
    { host: '::1', port: 8443, localAddress: '::6' });
});
