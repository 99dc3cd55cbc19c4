import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIni } from '../../../src/config/ini-file.js';
import { isRemoraError } from '../../../src/core/errors.js';
import { loadServiceConfig } from '../../../src/proxy/proxy-config.js';
import { createTestCa, opensslUnavailable } from '../../support/test-ca.js';

function issuesOf(ini: string, readFile?: (p: string) => Buffer): string[] {
  const { doc } = parseIni(ini, 'p.ini');
  try {
    loadServiceConfig(doc, readFile);
  } catch (err) {
    assert.ok(isRemoraError(err) && err.code === 'REMORA_ERR_CONFIG_INVALID');
    return err.message.split('\n').slice(1).map((l) => l.trim());
  }
  return [];
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
    const { doc } = parseIni(['[service s]', 'addresses = 10.96.0.1:80', 'endpoints = 10.1.0.1:443', 'tls_origination = on',
      `tls_ca_file = ${ca.caFile}`, `tls_cert_file = ${one.certFile}`, `tls_key_file = ${one.keyFile}`].join('\n'), 'ok.ini');
    const cfg = loadServiceConfig(doc);
    assert.equal(cfg.tls.get('s')?.caSource, 'tls_ca_file');
  } finally {
    ca.remove();
  }
});
