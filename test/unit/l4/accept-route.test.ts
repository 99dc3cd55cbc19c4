import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIni } from '../../../src/config/ini-file.js';
import { serviceRegistryOrThrow } from '../../../src/config/service-registry.js';
import { silentLogger } from '../../../src/core/log.js';
import { ServiceRouter } from '../../../src/l4/accept-route.js';
import { Services } from '../../../src/proxy/services.js';

function router(ini: string): { r: ServiceRouter; close: () => void } {
  const { doc } = parseIni(ini, 't.ini');
  const services = new Services(serviceRegistryOrThrow(doc), { log: silentLogger(), connectTimeoutMs: 1000, tls: new Map() });
  return { r: new ServiceRouter(services, { inboundDelivery: 'original-dst' }), close: () => services.close() };
}

const dst = (address: string, port: number) => ({ family: address.includes(':') ? 6 : 4, address, port }) as const;

test('no registry: passthrough; default opaque ports are declared, others detected', () => {
  const { r, close } = router('');
  assert.deepEqual(r.accept('outbound', dst('10.0.0.1', 80)), {
    declared: 'detect', destination: { kind: 'direct', target: { host: '10.0.0.1', port: 80 } }, needName: false,
  });
  assert.equal(r.accept('outbound', dst('10.0.0.1', 3306)).declared, 'opaque');
  assert.deepEqual(r.accept('inbound', dst('10.0.0.9', 8080)).destination,
    { kind: 'direct', target: { host: '10.0.0.9', port: 8080, localAddress: '127.0.0.6' } });
  close();
});

test('VIP match: the service and its protocol (auto -> port declaration -> defaults)', () => {
  const { r, close } = router([
    '[registry]', 'port_protocols = 6379=auto, 8080=http',
    '[service a]', 'addresses = 10.96.0.1:80, 10.96.0.1:6379, 10.96.0.1:8080, 10.96.0.1:5432', 'endpoints = 10.1.0.1:80',
    '[service t]', 'addresses = 10.96.0.2:443', 'protocol = tls', 'endpoints = 10.1.0.2:443',
  ].join('\n'));
  const a = r.accept('outbound', dst('::ffff:10.96.0.1', 80));
  assert.equal(a.destination.kind === 'service' ? a.destination.service.name : '', 'a');
  assert.equal(a.declared, 'detect');
  assert.equal(r.accept('outbound', dst('10.96.0.1', 6379)).declared, 'detect', '6379=auto removes it from the defaults');
  assert.equal(r.accept('outbound', dst('10.96.0.1', 8080)).declared, 'http');
  assert.equal(r.accept('outbound', dst('10.96.0.1', 5432)).declared, 'opaque');
  assert.equal(r.accept('outbound', dst('10.96.0.2', 443)).declared, 'tls');
  close();
});

test('names: a destination without VIP on a port where hostnames apply needs the name; byName picks the service', () => {
  const { r, close } = router([
    '[service alpha]', 'hostnames = alpha.test:443, *.wild.test', 'protocol = tls', 'endpoints = 10.1.0.1:443',
  ].join('\n'));
  const x = r.accept('outbound', dst('10.9.9.9', 443));
  assert.equal(x.needName, true);
  assert.equal(x.destination.kind, 'direct', 'passthrough until a name matches');
  const byName = r.byName(dst('10.9.9.9', 443), 'ALPHA.test.');
  assert.equal(byName?.kind === 'service' ? byName.service.name : '', 'alpha');
  assert.equal(r.byName(dst('10.9.9.9', 443), 'beta.test'), undefined);
  assert.equal(r.accept('outbound', dst('10.9.9.9', 3306)).needName, false, 'an opaque port carries no name');
  assert.equal(r.accept('outbound', dst('10.9.9.9', 80)).needName, true, '*.wild.test applies on any port');
  close();
});

test('registry-only: unknown destinations are refused (still waiting for a name where one could match)', () => {
  const { r, close } = router(['[registry]', 'mode = registry-only', '[service h]', 'hostnames = h.test:443', 'protocol = tls', 'discovery = original-dst'].join('\n'));
  const plain = r.accept('outbound', dst('10.9.9.9', 80));
  assert.equal(plain.destination.kind, 'refuse');
  assert.equal(plain.needName, false);
  assert.match(plain.destination.kind === 'refuse' ? plain.destination.reason : '', /10\.9\.9\.9:80.*registry-only/);
  const named = r.accept('outbound', dst('10.9.9.9', 443));
  assert.equal(named.destination.kind, 'refuse');
  assert.equal(named.needName, true);
  close();
});
