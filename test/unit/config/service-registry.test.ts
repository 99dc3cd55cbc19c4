import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ConfigIssue } from '../../../src/config/config-issue.js';
import { findSection, parseIni } from '../../../src/config/ini-file.js';
import { initOptionSpecs } from '../../../src/config/init-options.js';
import { resolveOptions } from '../../../src/config/option-set.js';
import { proxyOptionSpecs } from '../../../src/config/proxy-options.js';
import { parseServiceRegistry, staticEndpoints, serviceRegistryOrThrow, type ServiceRegistryParseOptions } from '../../../src/config/service-registry.js';
import { DEFAULT_BALANCER, type ServiceSpec } from '../../../src/config/service-spec.js';
import { isRemoraError } from '../../../src/core/errors.js';

/** Repository root (this file runs from dist/test/unit/config/). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const EXAMPLE = resolve(ROOT, 'test/fixtures/config/services-example.ini');

function parse(text: string, opts: ServiceRegistryParseOptions = {}): ReturnType<typeof parseServiceRegistry> {
  const { doc, issues } = parseIni(text, 't.ini');
  assert.deepEqual(issues, [], 'the INI itself is well formed');
  return parseServiceRegistry(doc, opts);
}

function issuesOf(text: string, opts: ServiceRegistryParseOptions = {}): readonly ConfigIssue[] {
  const r = parse(text, opts);
  assert.equal(r.ok, false, 'expected issues');
  return r.ok ? [] : r.issues;
}

function servicesOf(text: string): readonly ServiceSpec[] {
  const r = parse(text);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues, null, 2));
  return r.services;
}

function one(services: readonly ServiceSpec[], name: string): ServiceSpec {
  const s = services.find((x) => x.name === name);
  assert.ok(s, `service ${name}`);
  return s;
}

test('the documented example parses with zero issues, [init] and [proxy] included', () => {
  const { doc, issues } = parseIni(readFileSync(EXAMPLE, 'utf8'), EXAMPLE);
  assert.deepEqual(issues, []);
  const r = parseServiceRegistry(doc);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues, null, 2));
  for (const [specs, name] of [[initOptionSpecs, 'init'], [proxyOptionSpecs, 'proxy']] as const) {
    const resolved = resolveOptions(specs, { flags: new Map(), env: {}, section: findSection(doc, name), file: EXAMPLE });
    assert.deepEqual(resolved.issues, [], `[${name}]`);
  }
  assert.deepEqual(r.registry, {
    mode: 'passthrough', resolver: { host: '10.96.0.10', port: 53 }, resolverTimeoutMs: 2000,
    portProtocols: [
      { first: 3306, last: 3306, protocol: 'opaque' }, { first: 5432, last: 5432, protocol: 'opaque' },
      { first: 8080, last: 8080, protocol: 'http' }, { first: 9000, last: 9099, protocol: 'http2' },
    ],
  });
  assert.deepEqual(r.services.map((s) => s.name), ['web', 'orders-db', 'inventory', 'payments-api', 'partner', 'github']);

  const web = one(r.services, 'web');
  assert.match(web.source, /services-example\.ini:\d+$/);
  assert.deepEqual(web.addresses, [{ address: '10.96.0.20', port: 80 }, { address: 'fd00:96::20', port: 80 }]);
  assert.deepEqual(web.hostnames, [{ pattern: 'web.default.svc.cluster.local', port: undefined }]);
  assert.deepEqual(web.endpoints, {
    kind: 'static',
    endpoints: [
      { address: '10.1.0.11', port: 8080, weight: 5, zone: 'zone-a' },
      { address: '10.1.0.12', port: 8080, weight: 5, zone: 'zone-b' },
      { address: 'fd00:1::13', port: 8080, weight: 1, zone: 'zone-b' },
    ],
  });
  assert.equal(web.connectTimeoutMs, 1000);
  assert.deepEqual(web.passiveHealth, { ejectAfterFailures: 5, ejectBaseTimeMs: 30_000, ejectMaxTimeMs: 300_000, maxEjectedPercent: 50 });
  assert.deepEqual(web.activeHealth, { kind: 'tcp', intervalMs: 5000, timeoutMs: 1000, healthyThreshold: 2, unhealthyThreshold: 3 });
  assert.equal(web.tls, undefined);

  assert.deepEqual(one(r.services, 'orders-db').endpoints, {
    kind: 'dns',
    dns: { name: 'orders-db.internal', type: 'A+AAAA', port: 5432, targetType: 'A', refreshMinMs: 5000, refreshMaxMs: 120_000 },
  });
  const inventory = one(r.services, 'inventory');
  assert.deepEqual(inventory.endpoints, {
    kind: 'dns',
    dns: { name: '_grpc._tcp.inventory.internal', type: 'SRV', port: undefined, targetType: 'A', refreshMinMs: 5000, refreshMaxMs: 60_000 },
  });
  assert.deepEqual(inventory.hostnames, [{ pattern: 'inventory.internal', port: 9090 }]);

  const payments = one(r.services, 'payments-api');
  assert.deepEqual(payments.endpoints, { kind: 'original-dst' });
  assert.deepEqual(payments.tls, {
    port: 443, serverName: 'api.example.com', serverNameSource: 'tls_sni', caFile: undefined, certFile: undefined,
    keyFile: undefined, minVersion: 'TLSv1.2', alpn: ['http/1.1'], verify: true,
  });
  const partner = one(r.services, 'partner');
  assert.equal(partner.tls?.caFile, '/etc/remora/partner-ca.pem');
  assert.equal(partner.tls?.certFile, '/etc/remora/client.pem');
  assert.equal(partner.tls?.keyFile, '/etc/remora/client-key.pem');
  assert.deepEqual(partner.tls?.alpn, ['h2', 'http/1.1']);
  assert.equal(partner.tls?.minVersion, 'TLSv1.3');
  assert.equal(one(r.services, 'github').protocol, 'tls');
});

test('a file with only valid [init] and [proxy] sections passes: no services, default registry', () => {
  const r = parse('[init]\noutbound_port = 15001\n[proxy]\nlog_level = debug\nwhatever_proxy_key = 1\n');
  assert.ok(r.ok);
  assert.deepEqual(r.services, []);
  assert.deepEqual(r.registry, { mode: 'passthrough', resolver: undefined, resolverTimeoutMs: 2000, portProtocols: [] });
});

test('defaults: p2c, auto, 3 attempts, passive ejection on, no active checks, proxy connect timeout', () => {
  const [s] = servicesOf('[service a]\naddresses = 10.0.0.1:80\nendpoints = 10.1.0.1:80\n');
  assert.ok(s);
  assert.equal(s.balancer, DEFAULT_BALANCER);
  assert.equal(s.balancer, 'p2c');
  assert.equal(s.protocol, 'auto');
  assert.equal(s.connectAttempts, 3);
  assert.equal(s.connectTimeoutMs, undefined);
  assert.deepEqual(s.passiveHealth, { ejectAfterFailures: 5, ejectBaseTimeMs: 30_000, ejectMaxTimeMs: 300_000, maxEjectedPercent: 50 });
  assert.deepEqual(s.activeHealth, { kind: 'none' });
  assert.deepEqual(s.endpoints, { kind: 'static', endpoints: [{ address: '10.1.0.1', port: 80, weight: 1 }] });
  assert.equal(s.tls, undefined);
});

test('addresses are canonical: IPv6 compressed, IPv4-mapped IPv6 reduced to IPv4', () => {
  const [s] = servicesOf('[service a]\naddresses = [FD00:0:0::0:10]:443, [::ffff:10.0.0.9]:80\nendpoints = [fd00::1:0:0:1]:80\n');
  assert.deepEqual(s?.addresses, [{ address: 'fd00::10', port: 443 }, { address: '10.0.0.9', port: 80 }]);
  assert.deepEqual(s?.endpoints, { kind: 'static', endpoints: [{ address: 'fd00::1:0:0:1', port: 80, weight: 1 }] });
});

test('TLS origination: SNI defaults to the first exact hostname, then the dns_name; verification on', () => {
  const services = servicesOf([
    '[service a]', 'hostnames = *.x.example, api.example.com:80', 'discovery = original-dst', 'tls_origination = on',
    '[service b]', 'addresses = 10.0.0.2:80', 'discovery = dns', 'dns_name = b.internal.', 'dns_port = 443', 'tls_origination = yes',
    '[service c]', 'addresses = 10.0.0.3:80', 'endpoints = 10.1.0.3:443', 'tls_origination = true', 'tls_insecure_skip_verify = true',
  ].join('\n'));
  assert.equal(one(services, 'a').tls?.serverName, 'api.example.com');
  assert.equal(one(services, 'a').tls?.serverNameSource, 'hostname');
  assert.equal(one(services, 'a').tls?.verify, true);
  assert.equal(one(services, 'b').tls?.serverName, 'b.internal');
  assert.equal(one(services, 'b').tls?.serverNameSource, 'dns_name');
  assert.equal(one(services, 'c').tls?.serverName, undefined);
  assert.equal(one(services, 'c').tls?.serverNameSource, 'none');
  assert.equal(one(services, 'c').tls?.verify, false);
});

interface BadCase {
  readonly name: string;
  readonly text: string;
  readonly line: number;
  readonly key: string;
  readonly expected: RegExp;
}

const SVC = '[service a]\naddresses = 10.0.0.1:80\n';

const BAD: readonly BadCase[] = [
  { name: 'unknown key', text: `${SVC}endpoints = 10.1.0.1:80\nweigth = 3\n`, line: 4, key: '[service a] weigth', expected: /a key of \[service NAME\] \(addresses, hostnames/ },
  { name: 'unknown section kind', text: '[proxy]\n[servce a]\naddresses = 10.0.0.1:80\n', line: 2, key: '[servce a]', expected: /a known section \(\[proxy\], \[init\], \[registry\], \[service NAME\]\)/ },
  { name: 'service without a name', text: '[service]\naddresses = 10.0.0.1:80\n', line: 1, key: '[service]', expected: /\[service NAME\]/ },
  { name: 'service name with a space', text: '[service a b]\naddresses = 10.0.0.1:80\n', line: 1, key: '[service a b]', expected: /NAME of 1-63/ },
  { name: 'registry with a name', text: '[registry main]\nmode = passthrough\n', line: 1, key: '[registry main]', expected: /takes no name/ },
  { name: 'unknown registry key', text: '[registry]\nmode = passthrough\nresolvers = 10.0.0.1\n', line: 3, key: '[registry] resolvers', expected: /a key of \[registry\] \(mode, resolver/ },
  { name: 'bad registry mode', text: '[registry]\nmode = allow-any\n', line: 2, key: '[registry] mode', expected: /one of passthrough, registry-only/ },
  { name: 'resolver is a name', text: '[registry]\nresolver = dns.local:53\n', line: 2, key: '[registry] resolver', expected: /IP or IP:port/ },
  { name: 'bad port protocol', text: '[registry]\nport_protocols = 3306=mysql\n', line: 2, key: '[registry] port_protocols', expected: /PORT=PROTOCOL.*"3306=mysql" is not/ },
  { name: 'overlapping port protocols', text: '[registry]\nport_protocols = 8000-8100=http, 8080=http2\n', line: 2, key: '[registry] port_protocols', expected: /overlaps/ },
  { name: 'address is a name', text: '[service a]\naddresses = web.local:80\nendpoints = 10.1.0.1:80\n', line: 2, key: '[service a] addresses', expected: /names go in hostnames/ },
  { name: 'IPv6 address without brackets', text: '[service a]\naddresses = fd00::1:80\nendpoints = 10.1.0.1:80\n', line: 2, key: '[service a] addresses', expected: /\[fd00::1\]:80/ },
  { name: 'address without port', text: '[service a]\naddresses = 10.0.0.1\nendpoints = 10.1.0.1:80\n', line: 2, key: '[service a] addresses', expected: /IP:port/ },
  { name: 'unspecified address', text: '[service a]\naddresses = 0.0.0.0:80\nendpoints = 10.1.0.1:80\n', line: 2, key: '[service a] addresses', expected: /unspecified/ },
  { name: 'hostname is an IP', text: '[service a]\nhostnames = 10.0.0.1:80\nendpoints = 10.1.0.1:80\n', line: 2, key: '[service a] hostnames', expected: /IP addresses go in addresses/ },
  { name: 'bad hostname', text: '[service a]\nhostnames = api_x.example.com\nendpoints = 10.1.0.1:80\n', line: 2, key: '[service a] hostnames', expected: /host names like/ },
  { name: 'hostnames with protocol opaque', text: '[service a]\nhostnames = db.example.com\nprotocol = opaque\nendpoints = 10.1.0.1:80\n', line: 2, key: '[service a] hostnames', expected: /no hostnames with protocol = opaque/ },
  { name: 'duplicate VIP across services', text: `${SVC}endpoints = 10.1.0.1:80\n[service b]\nendpoints = 10.1.0.2:80\naddresses = 10.0.0.2:80, 10.0.0.1:80\n`, line: 6, key: '[service b] addresses', expected: /10\.0\.0\.1:80 belongs to service a at t\.ini:2/ },
  { name: 'duplicate v6 VIP across services (different spelling)', text: '[service a]\naddresses = [fd00::1]:80\nendpoints = 10.1.0.1:80\n[service b]\naddresses = [fd00:0::0:1]:80\nendpoints = 10.1.0.2:80\n', line: 5, key: '[service b] addresses', expected: /\[fd00::1\]:80 belongs to service a/ },
  { name: 'duplicate hostname across services', text: '[service a]\nhostnames = x.example:443\nendpoints = 10.1.0.1:80\n[service b]\nhostnames = X.example.:443\nendpoints = 10.1.0.2:80\n', line: 5, key: '[service b] hostnames', expected: /x\.example:443 belongs to service a at t\.ini:2/ },
  { name: 'no endpoint source', text: SVC, line: 1, key: '[service a]', expected: /endpoints \(a static list\), discovery = dns with dns_name, or discovery = original-dst/ },
  { name: 'static endpoints AND discovery = dns', text: `${SVC}discovery = dns\ndns_name = a.internal\ndns_port = 80\nendpoints = 10.1.0.1:80\n`, line: 6, key: '[service a] endpoints', expected: /no static endpoints with discovery = dns/ },
  { name: 'static endpoints AND discovery = original-dst', text: `${SVC}endpoints = 10.1.0.1:80\ndiscovery = original-dst\n`, line: 3, key: '[service a] endpoints', expected: /no static endpoints with discovery = original-dst/ },
  { name: 'dns keys without discovery = dns', text: `${SVC}endpoints = 10.1.0.1:80\ndns_name = a.internal\n`, line: 4, key: '[service a] dns_name', expected: /discovery = dns for dns_name \(this service uses discovery = static\)/ },
  { name: 'discovery = dns without dns_name', text: `${SVC}discovery = dns\ndns_port = 80\n`, line: 3, key: '[service a] discovery', expected: /dns_name in this section/ },
  { name: 'discovery = dns (A) without dns_port', text: `${SVC}discovery = dns\ndns_name = a.internal\n`, line: 3, key: '[service a] discovery', expected: /dns_port in this section/ },
  { name: 'dns_port with SRV', text: `${SVC}discovery = dns\ndns_name = _x._tcp.a.internal\ndns_type = SRV\ndns_port = 80\n`, line: 6, key: '[service a] dns_port', expected: /ports come from the SRV records/ },
  { name: 'dns_target_type without SRV', text: `${SVC}discovery = dns\ndns_name = a.internal\ndns_port = 80\ndns_target_type = AAAA\n`, line: 6, key: '[service a] dns_target_type', expected: /only with dns_type = SRV/ },
  { name: 'bad dns_type', text: `${SVC}discovery = dns\ndns_name = a.internal\ndns_port = 80\ndns_type = CNAME\n`, line: 6, key: '[service a] dns_type', expected: /one of A, AAAA, A\+AAAA, SRV/ },
  { name: 'dns_name is an IP', text: `${SVC}discovery = dns\ndns_name = 10.1.0.1\ndns_port = 80\n`, line: 4, key: '[service a] dns_name', expected: /not an address/ },
  { name: 'refresh min above max', text: `${SVC}discovery = dns\ndns_name = a.internal\ndns_port = 80\ndns_refresh_min = 10m\ndns_refresh_max = 1m\n`, line: 7, key: '[service a] dns_refresh_max', expected: /dns_refresh_min <= dns_refresh_max/ },
  { name: 'refresh below the bound', text: `${SVC}discovery = dns\ndns_name = a.internal\ndns_port = 80\ndns_refresh_min = 10ms\n`, line: 6, key: '[service a] dns_refresh_min', expected: /between 100ms and 86400000ms/ },
  { name: 'bad discovery kind', text: `${SVC}discovery = consul\nendpoints = 10.1.0.1:80\n`, line: 3, key: '[service a] discovery', expected: /one of static, dns, original-dst/ },
  { name: 'endpoint is a name', text: `${SVC}endpoints = backend.local:80\n`, line: 3, key: '[service a] endpoints', expected: /for names use discovery = dns/ },
  { name: 'endpoint weight out of range', text: `${SVC}endpoints = 10.1.0.1:80 weight=1001, 10.1.0.2:80\n`, line: 3, key: '[service a] endpoints', expected: /weight=1\.\.1000 \("weight=1001"/ },
  { name: 'endpoint weight zero', text: `${SVC}endpoints = 10.1.0.1:80 weight=0\n`, line: 3, key: '[service a] endpoints', expected: /weight=1\.\.1000/ },
  { name: 'unknown endpoint attribute', text: `${SVC}endpoints = 10.1.0.1:80 prio=1\n`, line: 3, key: '[service a] endpoints', expected: /weight=N and zone=NAME \(each at most once\) and subset=NAME/ },
  { name: 'bad zone', text: `${SVC}endpoints = 10.1.0.1:80 zone=a/b\n`, line: 3, key: '[service a] endpoints', expected: /zone=LABEL/ },
  { name: 'bad subset', text: `${SVC}endpoints = 10.1.0.1:80 subset=v/2\n`, line: 3, key: '[service a] endpoints', expected: /subset=NAME of letters/ },
  { name: 'repeated subset', text: `${SVC}endpoints = 10.1.0.1:80 subset=v2 subset=v2\n`, line: 3, key: '[service a] endpoints', expected: /each subset once per endpoint/ },
  { name: 'duplicate endpoint', text: `${SVC}endpoints = 10.1.0.1:80, 10.1.0.1:80 weight=2\n`, line: 3, key: '[service a] endpoints', expected: /"10\.1\.0\.1:80" is repeated/ },
  { name: 'empty endpoints', text: `${SVC}endpoints =\n`, line: 3, key: '[service a] endpoints', expected: /one or more endpoints/ },
  { name: 'bad balancer', text: `${SVC}endpoints = 10.1.0.1:80\nbalancer = fastest\n`, line: 4, key: '[service a] balancer', expected: /one of round-robin, least-request, least-connections, random, p2c, peak-ewma, ring-hash, maglev/ },
  { name: 'bad protocol', text: `${SVC}endpoints = 10.1.0.1:80\nprotocol = grpc\n`, line: 4, key: '[service a] protocol', expected: /one of auto, opaque, http, http2, tls/ },
  { name: 'connect_attempts out of range', text: `${SVC}endpoints = 10.1.0.1:80\nconnect_attempts = 0\n`, line: 4, key: '[service a] connect_attempts', expected: /an integer 1-10/ },
  { name: 'bad connect_timeout', text: `${SVC}endpoints = 10.1.0.1:80\nconnect_timeout = soon\n`, line: 4, key: '[service a] connect_timeout', expected: /a duration/ },
  { name: 'eject base above max', text: `${SVC}endpoints = 10.1.0.1:80\neject_base_time = 10m\neject_max_time = 1m\n`, line: 5, key: '[service a] eject_max_time', expected: /eject_base_time <= eject_max_time/ },
  { name: 'max_ejected_percent out of range', text: `${SVC}endpoints = 10.1.0.1:80\nmax_ejected_percent = 150\n`, line: 4, key: '[service a] max_ejected_percent', expected: /an integer 0-100/ },
  { name: 'health keys without health_check', text: `${SVC}endpoints = 10.1.0.1:80\nhealth_interval = 5s\n`, line: 4, key: '[service a] health_interval', expected: /health_check = tcp for health_interval/ },
  { name: 'bad health_check', text: `${SVC}endpoints = 10.1.0.1:80\nhealth_check = http\n`, line: 4, key: '[service a] health_check', expected: /one of none, tcp/ },
  { name: 'health timeout above interval', text: `${SVC}endpoints = 10.1.0.1:80\nhealth_check = tcp\nhealth_interval = 1s\nhealth_timeout = 2s\n`, line: 6, key: '[service a] health_timeout', expected: /health_timeout <= health_interval/ },
  { name: 'balancer with original-dst', text: `${SVC}discovery = original-dst\nbalancer = random\n`, line: 4, key: '[service a] balancer', expected: /no balancer with discovery = original-dst/ },
  { name: 'tls keys without tls_origination', text: `${SVC}endpoints = 10.1.0.1:80\ntls_sni = a.example\n`, line: 4, key: '[service a] tls_sni', expected: /tls_origination = on in this section/ },
  { name: 'tls keys with tls_origination = off', text: `${SVC}endpoints = 10.1.0.1:80\ntls_origination = off\ntls_port = 443\n`, line: 5, key: '[service a] tls_port', expected: /no tls_\* keys while tls_origination = off/ },
  { name: 'bad tls_origination (the other tls keys are not blamed)', text: `${SVC}endpoints = 10.1.0.1:80\ntls_origination = maybe\ntls_sni = a.example\n`, line: 4, key: '[service a] tls_origination', expected: /true or false/ },
  { name: 'client cert without key', text: `${SVC}endpoints = 10.1.0.1:80\ntls_origination = on\ntls_cert_file = /c.pem\n`, line: 5, key: '[service a] tls_cert_file', expected: /tls_key_file as well/ },
  { name: 'client key without cert', text: `${SVC}endpoints = 10.1.0.1:80\ntls_origination = on\ntls_key_file = /k.pem\n`, line: 5, key: '[service a] tls_key_file', expected: /tls_cert_file as well/ },
  { name: 'skip verify with a CA file', text: `${SVC}endpoints = 10.1.0.1:80\ntls_origination = on\ntls_ca_file = /ca.pem\ntls_insecure_skip_verify = true\n`, line: 5, key: '[service a] tls_ca_file', expected: /no tls_ca_file when tls_insecure_skip_verify = true/ },
  { name: 'tls_sni is an IP', text: `${SVC}endpoints = 10.1.0.1:80\ntls_origination = on\ntls_sni = 10.1.0.1\n`, line: 5, key: '[service a] tls_sni', expected: /SNI cannot be an IP address/ },
  { name: 'bad tls_min_version', text: `${SVC}endpoints = 10.1.0.1:80\ntls_origination = on\ntls_min_version = TLSv1.1\n`, line: 5, key: '[service a] tls_min_version', expected: /one of TLSv1\.2, TLSv1\.3/ },
  { name: 'repeated ALPN id', text: `${SVC}endpoints = 10.1.0.1:80\ntls_origination = on\ntls_alpn = h2, h2\n`, line: 5, key: '[service a] tls_alpn', expected: /"h2" is repeated/ },
  { name: 'tls origination on protocol = tls', text: `${SVC}endpoints = 10.1.0.1:80\nprotocol = tls\ntls_origination = on\n`, line: 5, key: '[service a] tls_origination', expected: /nest TLS in TLS/ },
];

for (const c of BAD) {
  test(`bad input is reported at its line: ${c.name}`, () => {
    const issues = issuesOf(c.text);
    assert.equal(issues.length, 1, JSON.stringify(issues, null, 2));
    const [i] = issues;
    assert.equal(i?.source, `t.ini:${c.line}`);
    assert.equal(i?.key, c.key);
    assert.match(i?.expected ?? '', c.expected);
  });
}

test('a bad value carries the value as written', () => {
  const [i] = issuesOf(`${SVC}endpoints = 10.1.0.1:80\nbalancer = fastest\n`);
  assert.equal(i?.value, 'fastest');
});

test('every problem of a file is reported together, in file order', () => {
  const issues = issuesOf([
    '[registry]', 'mode = open', // 2
    '[service a]', 'addresses = 10.0.0.1:80', 'endpoints = 10.1.0.1:80 weight=9999', 'tls_alpn = h2', // 5, 6
    '[service b]', 'addresses = 10.0.0.1:80', 'discovery = dns', 'dns_name = b.internal', 'dns_port = 99999', // 8 (dup), 11
    '[mystery]', // 12
  ].join('\n'));
  assert.deepEqual(issues.map((i) => `${i.source} ${i.key}`), [
    't.ini:2 [registry] mode',
    't.ini:5 [service a] endpoints',
    't.ini:6 [service a] tls_alpn',
    't.ini:8 [service b] addresses',
    't.ini:11 [service b] dns_port',
    't.ini:12 [mystery]',
  ]);
});

test('duplicate VIPs are found even when both services have other errors', () => {
  const issues = issuesOf('[service a]\naddresses = 10.0.0.1:80\nendpoints = 10.1.0.1:80 weight=0\n[service b]\naddresses = 10.0.0.1:80\ndiscovery = dns\n');
  assert.deepEqual(issues.map((i) => `${i.source} ${i.key}`), [
    't.ini:3 [service a] endpoints', 't.ini:5 [service b] addresses', 't.ini:6 [service b] discovery', 't.ini:6 [service b] discovery',
  ]);
  assert.match(issues[2]?.expected ?? '', /dns_name/);
  assert.match(issues[3]?.expected ?? '', /dns_port/);
});

test('a repeated section is reported once (by the INI reader), not parsed twice', () => {
  const { doc, issues } = parseIni('[service a]\naddresses = 10.0.0.1:80\nendpoints = 10.1.0.1:80\n[service a]\naddresses = 10.0.0.1:80\nendpoints = 10.1.0.1:80\n', 't.ini');
  assert.equal(issues.length, 1);
  const r = parseServiceRegistry(doc);
  assert.ok(r.ok);
  assert.equal(r.services.length, 1);
});

test('otherSections lets another parser own more sections', () => {
  assert.equal(parse('[admin]\nport = 1\n').ok, false);
  assert.equal(parse('[admin]\nport = 1\n', { otherSections: ['proxy', 'init', 'admin'] }).ok, true);
});

test('checkFile (optional I/O) reports unreadable TLS files at their lines', () => {
  const text = `${SVC}endpoints = 10.1.0.1:80\ntls_origination = on\ntls_ca_file = /nope/ca.pem\ntls_cert_file = /ok/c.pem\ntls_key_file = /nope/k.pem\n`;
  assert.equal(parse(text).ok, true);
  const issues = issuesOf(text, { checkFile: (p) => p.startsWith('/ok/') });
  assert.deepEqual(issues.map((i) => `${i.source} ${i.key} ${i.expected}`), [
    't.ini:5 [service a] tls_ca_file a readable file',
    't.ini:7 [service a] tls_key_file a readable file',
  ]);
});

test('serviceRegistryOrThrow throws REMORA_ERR_CONFIG_INVALID listing every issue', () => {
  const { doc } = parseIni('[service a]\naddresses = nope\n', 'x.ini');
  assert.throws(() => serviceRegistryOrThrow(doc), (err: unknown) => {
    assert.ok(isRemoraError(err));
    assert.equal(err.code, 'REMORA_ERR_CONFIG_INVALID');
    assert.match(err.message, /x\.ini:2: \[service a\] addresses = "nope": expected/);
    assert.match(err.message, /x\.ini:1: \[service a\]: expected endpoints/);
    return true;
  });
});

test('the invalid fixture: every problem of every section reported together, each at its line', () => {
  const file = resolve(ROOT, 'test/fixtures/config/services-invalid.ini');
  const { doc, issues: iniIssues } = parseIni(readFileSync(file, 'utf8'), 'services-invalid.ini');
  assert.deepEqual(iniIssues, []);
  const r = parseServiceRegistry(doc);
  assert.equal(r.ok, false);
  assert.deepEqual(r.ok ? [] : r.issues.map((i) => `${i.source.replace('services-invalid.ini:', '')} ${i.key}`), [
    '8 [registry] mode', '9 [registry] resolver', '10 [registry] port_protocols',
    '13 [service web] addresses', '15 [service web] balancer', '16 [service web] endpoints',
    '20 [service web] health_interval', '21 [service web] tls_sni',
    '27 [service api] tls_cert_file', '29 [service api] tls_ca_file', '31 [service api] eject_max_time', '32 [service api] colour',
    '35 [service api2] addresses', '39 [service api2] dns_port', '41 [service api2] dns_refresh_max',
    '43 [service]', '46 [services extra]',
  ]);
});

test('docs/configuration-services.md shows the example file verbatim', () => {
  const doc = readFileSync(resolve(ROOT, 'docs/configuration-services.md'), 'utf8');
  const m = /<!-- example:start -->\n```ini\n([\s\S]*?)```\n<!-- example:end -->/.exec(doc);
  assert.ok(m, 'the doc has an example block between <!-- example:start --> and <!-- example:end -->');
  assert.equal(m[1], readFileSync(EXAMPLE, 'utf8'));
});

test('endpoint subsets: subset=NAME is repeatable, stored sorted; endpoints without one have none', () => {
  const r = staticEndpoints('10.1.0.1:80 subset=v2 subset=canary weight=3, 10.1.0.2:80');
  assert.ok(r.ok);
  assert.deepEqual(r.value, [
    { address: '10.1.0.1', port: 80, weight: 3, subsets: ['canary', 'v2'] },
    { address: '10.1.0.2', port: 80, weight: 1 },
  ]);
});
