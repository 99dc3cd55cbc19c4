import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import { formatIssue } from '../../../src/config/config-issue.js';
import { loadSnapshotDefinitions, type SnapshotLoad } from '../../../src/config/load-snapshot.js';
import { transportFor } from '../../../src/upstream/cluster-set.js';
import { TlsOriginator } from '../../../src/upstream/transport/tls-origination.js';
import { createTestCa, opensslUnavailable } from '../../support/test-ca.js';

// The validator's checks of the sections beyond [proxy] (the snapshot loader reads the config through readFile).
function load(ini: string, file = 'p.ini'): SnapshotLoad {
  return loadSnapshotDefinitions({
    file, flags: new Map(), env: {}, readFile: (p) => (p === file ? Buffer.from(ini) : readFileSync(p)),
  });
}

function issuesOf(ini: string): string[] {
  const r = load(ini);
  return r.ok ? [] : r.issues.map(formatIssue);
}

test('route and traffic-policy sections are accepted, and their mistakes are reported with the rest, in file order', () => {
  assert.deepEqual(issuesOf([
    '[service web]', 'addresses = 10.96.0.1:80', 'endpoints = 10.1.0.1:80',
    '[route r1]', 'service = web', 'match_path_prefix = /api',
    '[traffic-policy web]',
  ].join('\n')), []);
  const issues = issuesOf([
    '[service web]', 'addresses = 10.96.0.1:80', 'endpoints = 10.1.0.1:80', 'balancer = fastest',
    '[route r1]', 'service = nope',
    '[bogus]',
  ].join('\n'));
  assert.equal(issues.length, 3, issues.join('\n'));
  assert.match(issues[0] ?? '', /^p\.ini:4: \[service web\] balancer = "fastest"/);
  assert.match(issues[1] ?? '', /^p\.ini:6: \[route r1\] service = "nope"/);
  assert.match(issues[2] ?? '', /^p\.ini:7: \[bogus\]: expected a known section/);
});

test('an unreadable TLS file is named with its key, its line and the reason', () => {
  const issues = issuesOf([
    '[service s]', 'addresses = 10.96.0.1:80', 'endpoints = 10.1.0.1:443', 'tls_origination = on', 'tls_ca_file = /nonexistent/ca.pem',
  ].join('\n'));
  assert.deepEqual(issues, ['p.ini:5: [service s] tls_ca_file = "/nonexistent/ca.pem": expected a readable file (ENOENT)']);
});

test('a file that is not PEM, or a key that does not match its certificate, is a configuration error', { skip: opensslUnavailable() }, () => {
  const ca = createTestCa();
  try {
    const one = ca.issue('one', ['one.test']);
    const two = ca.issue('two', ['two.test']);
    const issues = issuesOf([
      '[service s]', 'addresses = 10.96.0.1:80', 'endpoints = 10.1.0.1:443', 'tls_origination = on',
      `tls_ca_file = ${one.keyFile}`, `tls_cert_file = ${one.certFile}`, `tls_key_file = ${two.keyFile}`,
    ].join('\n'));
    assert.equal(issues.length, 2, issues.join('\n'));
    assert.match(issues[0] ?? '', /^p\.ini:5: \[service s\] tls_ca_file = .*expected a PEM file of CA certificates/);
    assert.match(issues[1] ?? '', /^p\.ini:6: \[service s\] tls_cert_file = .*expected a PEM certificate whose private key is tls_key_file/);
    const ok = load(['[service s]', 'addresses = 10.96.0.1:80', 'endpoints = 10.1.0.1:443', 'tls_origination = on',
      `tls_ca_file = ${ca.caFile}`, `tls_cert_file = ${one.certFile}`, `tls_key_file = ${one.keyFile}`].join('\n'), 'ok.ini');
    assert.ok(ok.ok);
    const service = ok.definitions.services.find((s) => s.name === 's');
    assert.equal(ok.definitions.files[ca.caFile], readFileSync(ca.caFile, 'utf8'), 'the PEM contents are in the snapshot');
    const transport = transportFor(service, ok.definitions.files, undefined);
    assert.ok(transport instanceof TlsOriginator);
    assert.equal(transport.caSource, 'tls_ca_file');
  } finally {
    ca.remove();
  }
});
