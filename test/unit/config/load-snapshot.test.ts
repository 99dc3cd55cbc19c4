import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ConfigIssue } from '../../../src/config/config-issue.js';
import { makeSnapshot } from '../../../src/config/config-snapshot.js';
import { loadSnapshotDefinitions, type SnapshotInput, type SnapshotLoad } from '../../../src/config/load-snapshot.js';
import type { RawFlag } from '../../../src/config/option-set.js';
import { DEFAULT_REGISTRY_OPTIONS } from '../../../src/config/service-spec.js';
import { DEFAULT_OUTLIER_CONFIG } from '../../../src/config/traffic-policy-spec.js';
import { isRemoraError } from '../../../src/core/errors.js';
import { createTestCa, opensslUnavailable } from '../../support/test-ca.js';

/** Repository root (this file runs from dist/test/unit/config/). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const EXAMPLE = resolve(ROOT, 'test/fixtures/config/services-example.ini');

const dir = mkdtempSync(join(tmpdir(), 'remora-snapshot-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function flags(entries: Record<string, string> = {}): ReadonlyMap<string, RawFlag> {
  return new Map(Object.entries(entries).map(([k, value]) => [k, { value }]));
}

function load(input: Partial<SnapshotInput> & { file: string | undefined }): SnapshotLoad {
  return loadSnapshotDefinitions({ flags: flags(), env: {}, ...input });
}

function ok(r: SnapshotLoad): Extract<SnapshotLoad, { ok: true }> {
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues, null, 2));
  return r;
}

function issues(r: SnapshotLoad): readonly ConfigIssue[] {
  assert.equal(r.ok, false, 'expected issues');
  return r.ok ? [] : r.issues;
}

/** A config file in the temp dir. */
function write(name: string, lines: readonly string[]): string {
  const file = join(dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

test('the documented example: definitions with the PEM contents, one policy per service, proxy values file < env < flag',
  { skip: opensslUnavailable() }, () => {
    const ca = createTestCa('example CA', dir);
    const client = ca.issue('client', ['client.test']);
    // The example names /etc/remora/*.pem: serve them from the test CA, everything else from the disk, counting reads.
    const pems: Record<string, string> = {
      '/etc/remora/partner-ca.pem': ca.caFile, '/etc/remora/client.pem': client.certFile, '/etc/remora/client-key.pem': client.keyFile,
    };
    const reads = new Map<string, number>();
    const readFile = (path: string): Buffer => {
      reads.set(path, (reads.get(path) ?? 0) + 1);
      return readFileSync(pems[path] ?? path);
    };
    const r = ok(load({
      file: EXAMPLE,
      readFile,
      env: { REMORA_CONNECT_TIMEOUT: '3s', REMORA_LOG_LEVEL: 'debug', REMORA_OUTBOUND_PORT: '16000' },
      flags: flags({ 'connect-timeout': '2s', 'outbound-port': '16001', config: EXAMPLE }),
    }));
    const d = r.definitions;
    assert.equal(r.document?.file, EXAMPLE);
    assert.deepEqual([...reads.values()], [1, 1, 1, 1], 'the config and each PEM file read once');
    assert.deepEqual([...reads.keys()].sort(), [EXAMPLE, ...Object.keys(pems)].sort());

    // [proxy]: the file says outbound 15001, connect_timeout 10s, log_level info; env and flags override it.
    assert.equal(d.proxy.outboundPort, 16001, 'flag over env over file');
    assert.equal(d.proxy.connectTimeout, 2000, 'flag over env over file');
    assert.equal(d.proxy.logLevel, 'debug', 'env over file');
    assert.equal(d.proxy.inboundPort, 15006, 'file');
    assert.deepEqual(d.proxy.adminAddress, { host: '127.0.0.1', port: 15000 }, 'default');

    assert.equal(d.registry.mode, 'passthrough');
    assert.deepEqual(d.registry.resolver, { host: '10.96.0.10', port: 53 });
    assert.deepEqual(d.services.map((s) => s.name), ['web', 'orders-db', 'inventory', 'payments-api', 'partner', 'github']);
    assert.deepEqual(d.routes, []);
    assert.deepEqual(d.trafficPolicies.map((p) => [p.service, p.source]), d.services.map((s) => [s.name, undefined]));
    for (const [i, p] of d.trafficPolicies.entries()) {
      const s = d.services[i];
      assert.deepEqual(
        [p.outlier.baseEjectionMs, p.outlier.maxEjectionMs, p.outlier.maxEjectedPercent],
        [s?.passiveHealth.ejectBaseTimeMs, s?.passiveHealth.ejectMaxTimeMs, s?.passiveHealth.maxEjectedPercent],
        `${p.service}: passive health from its service`,
      );
    }
    assert.deepEqual(d.files, {
      '/etc/remora/partner-ca.pem': readFileSync(ca.caFile, 'utf8'),
      '/etc/remora/client.pem': readFileSync(client.certFile, 'utf8'),
      '/etc/remora/client-key.pem': readFileSync(client.keyFile, 'utf8'),
    });
  });

test('routes, traffic policies and TLS files made in a temp dir; files keyed by the path as written', { skip: opensslUnavailable() }, () => {
  const ca = createTestCa('files CA', dir);
  const client = ca.issue('files-client', ['client.test']);
  const caAsWritten = ca.caFile.replace(/\/([^/]+)$/, '//$1'); // same file, spelled differently
  const file = write('full.ini', [
    '[proxy]',
    'inbound_port = 15106',
    '[service web]',
    'addresses = 10.96.0.1:80',
    'protocol = http',
    'balancer = ring-hash',
    'eject_base_time = 10s',
    'eject_max_time = 2m',
    'max_ejected_percent = 30',
    'endpoints = 10.1.0.1:8080 subset=v1, 10.1.0.2:8080 subset=v2 weight=3',
    '[service partner]',
    'addresses = 10.96.0.2:443',
    'endpoints = 10.1.0.3:8443',
    'tls_origination = on',
    'tls_sni = partner.test',
    `tls_ca_file = ${caAsWritten}`,
    `tls_cert_file = ${client.certFile}`,
    `tls_key_file = ${client.keyFile}`,
    '[service web-canary]',
    'endpoints = 10.1.0.9:8080',
    '[route canary]',
    'service = web',
    'match_path_prefix = /api',
    'backends = web/v1=90, web/v2=5, web-canary=5',
    '[traffic-policy web]',
    'ring_points_per_weight = 64',
    'outlier_max_ejected_percent = 20',
  ]);
  const d = ok(load({ file, env: { REMORA_INBOUND_PORT: '15206' } })).definitions;
  assert.equal(d.proxy.inboundPort, 15206, 'env over file');
  assert.equal(d.proxy.outboundPort, 15001, 'default');
  assert.deepEqual(d.services.map((s) => s.name), ['web', 'partner', 'web-canary']);
  assert.deepEqual(d.routes.map((r) => [r.name, r.source, r.backends.map((b) => `${b.service}/${b.subset ?? ''}=${b.weight}`)]),
    [['canary', `${file}:21`, ['web/v1=90', 'web/v2=5', 'web-canary/=5']]]);
  // One policy per service, in service order: web's section (inheriting its balancer and passive health), defaults.
  assert.deepEqual(d.trafficPolicies.map((p) => [p.service, p.source]), [['web', `${file}:25`], ['partner', undefined], ['web-canary', undefined]]);
  const web = d.trafficPolicies[0];
  assert.equal(web?.ringPointsPerWeight, 64, 'ring_points_per_weight accepted: the service balancer is ring-hash');
  assert.equal(web?.balancerExplicit, false);
  assert.deepEqual([web?.outlier.baseEjectionMs, web?.outlier.maxEjectionMs, web?.outlier.maxEjectedPercent], [10_000, 120_000, 20]);
  assert.deepEqual(d.trafficPolicies[1]?.outlier, DEFAULT_OUTLIER_CONFIG, 'defaults for a service with default passive health');
  assert.deepEqual(Object.keys(d.files).sort(), [caAsWritten, client.certFile, client.keyFile].sort());
  assert.equal(d.files[caAsWritten], readFileSync(ca.caFile, 'utf8'));
  assert.equal(d.files[client.keyFile], readFileSync(client.keyFile, 'utf8'));
  assert.equal(d.services[1]?.tls?.caFile, caAsWritten);
});

test('every problem of the file, flags and env together: lineless first, then in line order, each with file:line', () => {
  const notPem = write('not-a-ca.pem', ['just text']);
  const file = write('bad.ini', [
    'stray = 1',                              // 1: a key outside any section
    '[proxy]',                                // 2
    'outbound_port = 99999',                  // 3: [proxy]
    'colour = blue',                          // 4: unknown [proxy] key
    '[service web]',                          // 5
    'addresses = 10.96.0.1:80',               // 6
    'endpoints = 10.1.0.1:80',                // 7
    'balancer = fastest',                     // 8: [service]
    '[service partner]',                      // 9
    'addresses = 10.96.0.2:443',              // 10
    'endpoints = 10.1.0.2:443',               // 11
    'tls_origination = on',                   // 12
    `tls_ca_file = ${notPem}`,                // 13: a bad PEM, reported although the registry has problems
    '[service lost]',                         // 14
    'addresses = 10.96.0.3:443',              // 15
    'endpoints = 10.1.0.3:443',               // 16
    'tls_origination = on',                   // 17
    `tls_cert_file = ${join(dir, 'missing.pem')}`, // 18: unreadable, with the reason
    `tls_key_file = ${join(dir, 'missing-key.pem')}`, // 19
    '[route r1]',                             // 20
    'service = nope',                         // 21: [route]
    '[traffic-policy web]',                   // 22
    'max_requests = 0',                       // 23: [traffic-policy]
    '[bogus]',                                // 24: unknown section
  ]);
  const pre: ConfigIssue = { source: 'command line', key: '--frobnicate', expected: 'a known flag' };
  const got = issues(load({
    file,
    preIssues: [pre],
    flags: flags({ 'inbound-port': 'many' }),
    env: { REMORA_LOG_LEVEL: 'loud' },
  }));
  assert.deepEqual(got.map((i) => `${i.source} ${i.key}`), [
    'command line --frobnicate',
    'command line --inbound-port',
    'environment REMORA_LOG_LEVEL',
    `${file}:1 stray`,
    `${file}:3 [proxy] outbound_port`,
    `${file}:4 [proxy] colour`,
    `${file}:8 [service web] balancer`,
    `${file}:13 [service partner] tls_ca_file`,
    `${file}:18 [service lost] tls_cert_file`,
    `${file}:19 [service lost] tls_key_file`,
    `${file}:21 [route r1] service`,
    `${file}:23 [traffic-policy web] max_requests`,
    `${file}:24 [bogus]`,
  ]);
  const expected = (key: string): string => got.find((i) => i.key === key)?.expected ?? '';
  assert.equal(expected('stray'), 'the key inside a section such as [proxy]');
  assert.match(expected('[proxy] outbound_port'), /a TCP port/);
  assert.match(expected('[proxy] colour'), /a known key of \[proxy\]/);
  assert.match(expected('[service partner] tls_ca_file'), /^a PEM file of CA certificates \(no PEM certificate in the file\)$/);
  assert.equal(expected('[service lost] tls_cert_file'), 'a readable file (ENOENT)');
  assert.match(expected('[bogus]'), /a known section/);
  assert.equal(got.find((i) => i.key === '[service partner] tls_ca_file')?.value, notPem);
});

test('checks across sections: subsets nothing is labelled with, services nothing reaches (with or without registry problems)', () => {
  const lines = [
    '[service web]',                          // 1
    'addresses = 10.96.0.1:80',               // 2
    'endpoints = 10.1.0.1:80 subset=v1',      // 3
    '[service island]',                       // 4: no addresses, hostnames or route
    'endpoints = 10.1.0.2:80',                // 5
    '[route r1]',                             // 6
    'service = web',                          // 7
    'backends = web/v1=50, web/v3=50',        // 8
  ];
  const valid = issues(load({ file: write('cross.ini', lines) }));
  const broken = issues(load({ file: write('cross-broken.ini', [...lines, '[service web2]', 'addresses = 10.96.0.9:80', 'endpoints = nowhere']) }));
  for (const got of [valid, broken]) {
    const here = got.filter((i) => !i.key.startsWith('[service web2]'));
    assert.deepEqual(here.map((i) => `${i.source.replace(/^.*:/, '')} ${i.key}`), ['4 [service island]', '8 [route r1] backends']);
    assert.match(here[0]?.expected ?? '', /addresses \(VIP:port\) and\/or hostnames/);
    assert.match(here[1]?.expected ?? '', /"web subset=v3": an endpoint of \[service web\] labelled subset=v3, .*\(its subsets: v1\)$/);
  }
  assert.ok(broken.some((i) => i.key === '[service web2] endpoints'), 'the registry problem is there too');
});

test('a policy is not blamed for its service mistakes: inherited balancer read from a section the registry rejects', () => {
  const file = write('inherit-broken.ini', [
    '[service web]', 'addresses = 10.96.0.1:80', 'balancer = ring-hash', 'endpoints = 10.1.0.1:80', 'health_interval = 5s',
    '[traffic-policy web]', 'ring_points_per_weight = 8',
  ]);
  const got = issues(load({ file }));
  assert.deepEqual(got.map((i) => i.key), ['[service web] health_interval']);
});

test('no config file: defaults, environment and flags only', () => {
  for (const file of [undefined, '']) {
    const r = ok(load({ file, env: { REMORA_LOG_LEVEL: 'warn' }, flags: flags({ 'admin-address': '127.0.0.1:16000' }) }));
    assert.equal(r.document, undefined);
    assert.deepEqual(r.definitions.proxy.adminAddress, { host: '127.0.0.1', port: 16000 });
    assert.equal(r.definitions.proxy.logLevel, 'warn');
    assert.deepEqual(r.definitions.registry, DEFAULT_REGISTRY_OPTIONS);
    assert.deepEqual([r.definitions.services, r.definitions.routes, r.definitions.trafficPolicies, r.definitions.files], [[], [], [], {}]);
  }
  const bad = issues(load({ file: undefined, env: { REMORA_OUTBOUND_PORT: '0' } }));
  assert.deepEqual(bad.map((i) => `${i.source} ${i.key} ${i.value ?? ''}`), ['environment REMORA_OUTBOUND_PORT 0']);
});

test('an unreadable config file throws REMORA_ERR_CONFIG_READ with the reason', () => {
  const missing = join(dir, 'nope.ini');
  const sub = join(dir, 'a-directory');
  mkdirSync(sub, { recursive: true });
  for (const [file, code] of [[missing, 'ENOENT'], [sub, 'EISDIR']] as const) {
    assert.throws(() => load({ file, preIssues: [{ source: 'command line', key: '--x', expected: 'y' }] }), (err: unknown) => {
      assert.ok(isRemoraError(err));
      assert.equal(err.code, 'REMORA_ERR_CONFIG_READ');
      assert.equal(err.message, `cannot read configuration file ${file}: ${code}`);
      return true;
    });
  }
});

test('the definitions make a deep-frozen snapshot; equal inputs give equal hashes, a changed weight another', () => {
  const lines = (weight: number): string[] => [
    '[proxy]', 'connect_timeout = 2s',
    '[service web]', 'addresses = 10.96.0.1:80', `endpoints = 10.1.0.1:80 weight=${weight}, 10.1.0.2:80`,
    '[traffic-policy web]', 'max_retries = 3',
  ];
  const file = write('hash.ini', lines(2));
  const a = makeSnapshot(ok(load({ file })).definitions, 1, { kind: 'file', path: file });
  const b = makeSnapshot(ok(load({ file })).definitions, 2, { kind: 'file', path: file }, 0);
  assert.match(a.hash, /^[0-9a-f]{64}$/);
  assert.equal(a.hash, b.hash, 'equal inputs, equal hashes (version, time and source are not hashed)');
  for (const v of [a, a.proxy, a.proxy.adminAddress, a.services, a.services[0], a.services[0]?.endpoints, a.trafficPolicies[0],
    a.trafficPolicies[0]?.breaker, a.trafficPolicies[0]?.outlier, a.files, a.registry]) {
    assert.ok(Object.isFrozen(v), JSON.stringify(v));
  }
  assert.throws(() => { (a.proxy as { connectTimeout: number }).connectTimeout = 1; }, TypeError);
  assert.equal(a.trafficPolicies[0]?.breaker.maxRetries, 3);

  writeFileSync(file, `${lines(3).join('\n')}\n`);
  const c = makeSnapshot(ok(load({ file })).definitions, 3, { kind: 'file', path: file });
  assert.notEqual(c.hash, a.hash, 'a changed weight changes the hash');
  const env = makeSnapshot(ok(load({ file, env: { REMORA_CONNECT_TIMEOUT: '3s' } })).definitions, 4, { kind: 'file', path: file });
  assert.notEqual(env.hash, c.hash, 'so does a changed [proxy] value');
});
