import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIni } from '../../../src/config/ini-file.js';
import { parseServiceRegistry } from '../../../src/config/service-registry.js';
import { type ServiceRegistry } from '../../../src/config/service-spec.js';
import { normalizeHostname, ServiceTable } from '../../../src/upstream/service-table.js';

function registry(text: string): ServiceRegistry {
  const { doc, issues } = parseIni(text, 't.ini');
  assert.deepEqual(issues, []);
  const r = parseServiceRegistry(doc);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
  return r;
}

const SERVICES = `
[registry]
mode = MODE
port_protocols = 3306=opaque, 9000-9099=http2, 5432=auto

[service web]
addresses = 10.96.0.20:80, [fd00:96::20]:80
hostnames = web.example.com
protocol = http
endpoints = 10.1.0.11:8080

[service web-tls]
hostnames = web.example.com:443
protocol = tls
discovery = original-dst

[service wild]
hostnames = *.apps.example.com
discovery = original-dst

[service db]
addresses = 10.96.0.30:3306, 10.96.0.31:9000
endpoints = 10.1.0.30:3306
`;

function table(mode: 'passthrough' | 'registry-only'): ServiceTable {
  return ServiceTable.fromRegistry(registry(SERVICES.replace('MODE', mode)));
}

test('exact VIP:port match (IPv4); another port on the same VIP is not the service', () => {
  const t = table('passthrough');
  const m = t.lookup({ address: '10.96.0.20', port: 80 });
  assert.equal(m.kind, 'service');
  assert.equal(m.kind === 'service' ? m.service.name : '', 'web');
  assert.equal(m.kind === 'service' ? m.matchedBy : '', 'address');
  assert.equal(m.kind === 'service' ? m.protocol : '', 'http');
  assert.equal(t.byAddress('10.96.0.20', 81), undefined);
  assert.deepEqual(t.lookup({ address: '10.96.0.20', port: 81 }), { kind: 'passthrough', protocol: undefined });
});

test('IPv6 VIPs match whatever the spelling; IPv4-mapped IPv6 destinations match IPv4 VIPs', () => {
  const t = table('passthrough');
  assert.equal(t.byAddress('fd00:96::20', 80)?.name, 'web');
  assert.equal(t.byAddress('FD00:96:0:0:0:0:0:20', 80)?.name, 'web');
  assert.equal(t.byAddress('::ffff:10.96.0.20', 80)?.name, 'web');
  assert.equal(t.byAddress('fd00:96::21', 80), undefined);
  assert.equal(t.byAddress('not-an-ip', 80), undefined);
});

test('host names: exact before wildcard, port-specific before any-port, case and trailing dot ignored', () => {
  const t = table('passthrough');
  assert.equal(t.byHostname('web.example.com', 80)?.name, 'web');
  assert.equal(t.byHostname('WEB.Example.COM.', 443)?.name, 'web-tls');
  assert.equal(t.byHostname('web.example.com:8080', 8080)?.name, 'web');
  assert.equal(t.byHostname('a.apps.example.com', 443)?.name, 'wild');
  assert.equal(t.byHostname('apps.example.com', 443), undefined, 'the wildcard needs one more label');
  assert.equal(t.byHostname('a.b.apps.example.com', 443), undefined, 'the wildcard matches exactly one label');
  assert.equal(t.byHostname('other.example.com', 443), undefined);
  assert.equal(t.byHostname('10.96.0.20', 80), undefined);
});

test('lookup: VIP first, then SNI/Host; protocol from the service', () => {
  const t = table('passthrough');
  const bySni = t.lookup({ address: '203.0.113.9', port: 443, hostname: 'web.example.com' });
  assert.equal(bySni.kind, 'service');
  assert.equal(bySni.kind === 'service' ? `${bySni.service.name} ${bySni.matchedBy} ${bySni.protocol}` : '', 'web-tls hostname tls');
  const vipWins = t.lookup({ address: '10.96.0.30', port: 3306, hostname: 'web.example.com' });
  assert.equal(vipWins.kind === 'service' ? vipWins.service.name : '', 'db');
});

test('protocol auto falls back to [registry] port_protocols, else undefined (detector defaults)', () => {
  const t = table('passthrough');
  const db = t.lookup({ address: '10.96.0.30', port: 3306 });
  assert.equal(db.kind === 'service' ? db.protocol : 'x', 'opaque');
  const db9000 = t.lookup({ address: '10.96.0.31', port: 9000 });
  assert.equal(db9000.kind === 'service' ? db9000.protocol : 'x', 'http2');
  const wild = t.lookup({ address: '203.0.113.9', port: 443, hostname: 'x.apps.example.com' });
  assert.equal(wild.kind === 'service' ? wild.protocol : 'x', undefined);
  assert.equal(t.portProtocol(9099), 'http2');
  assert.equal(t.portProtocol(9100), undefined);
  assert.equal(t.portProtocol(5432), 'auto');
});

test('unknown destination: passthrough (with the port declaration) or refuse, per mode', () => {
  assert.deepEqual(table('passthrough').lookup({ address: '203.0.113.9', port: 3306 }), { kind: 'passthrough', protocol: 'opaque' });
  assert.deepEqual(table('passthrough').lookup({ address: '203.0.113.9', port: 443, hostname: 'nope.example' }), { kind: 'passthrough', protocol: undefined });
  const refused = table('registry-only').lookup({ address: '203.0.113.9', port: 443, hostname: 'nope.example' });
  assert.equal(refused.kind, 'refuse');
  assert.match(refused.kind === 'refuse' ? refused.reason : '', /no service for 203\.0\.113\.9:443 \(host name nope\.example\) and \[registry\] mode = registry-only/);
  const refused6 = table('registry-only').lookup({ address: 'fd00::99', port: 80 });
  assert.match(refused6.kind === 'refuse' ? refused6.reason : '', /\[fd00::99\]:80/);
  // Known services still match in registry-only mode.
  assert.equal(table('registry-only').lookup({ address: '10.96.0.20', port: 80 }).kind, 'service');
});

test('hostnameMayMatch tells the caller to learn SNI/Host before deciding', () => {
  const t = table('registry-only');
  assert.equal(t.hostnameMayMatch('10.96.0.20', 80), false, 'a VIP already matched');
  assert.equal(t.hostnameMayMatch('203.0.113.9', 443), true);
  assert.equal(t.hostnameMayMatch('203.0.113.9', 5), true, 'any-port host names exist');
  const only443 = ServiceTable.fromRegistry(registry('[service a]\nhostnames = a.example:443\ndiscovery = original-dst\n'));
  assert.equal(only443.hostnameMayMatch('203.0.113.9', 443), true);
  assert.equal(only443.hostnameMayMatch('203.0.113.9', 80), false);
  assert.equal(only443.mode, 'passthrough');
  assert.equal(only443.service('a')?.name, 'a');
});

test('normalizeHostname', () => {
  assert.equal(normalizeHostname(' API.Example.com. '), 'api.example.com');
  assert.equal(normalizeHostname('api.example.com:8443'), 'api.example.com');
  assert.equal(normalizeHostname('[::1]:80'), undefined);
  assert.equal(normalizeHostname('fd00::1'), undefined);
  assert.equal(normalizeHostname('10.0.0.1:80'), undefined);
  assert.equal(normalizeHostname(''), undefined);
  assert.equal(normalizeHostname('a.example:http'), undefined);
});
