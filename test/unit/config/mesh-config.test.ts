// The mesh security keys as the one validator reads them: identity_dir (the three files, each problem naming its
// file), mtls_mode / mtls_port_modes, [service NAME] mtls / identities, and what needs an identity.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { formatIssue } from '../../../src/config/config-issue.js';
import { checkIdentityFiles, identityPaths } from '../../../src/config/identity-files.js';
import { loadSnapshotDefinitions, type SnapshotLoad } from '../../../src/config/load-snapshot.js';
import { mtlsModeFor, mtlsPortModes } from '../../../src/config/mtls-settings.js';
import { HOUR, spiffe, tempDir, TestCa, writeLeaf } from '../../support/mesh-pki.js';

function load(ini: string, flags: Record<string, string> = {}): SnapshotLoad {
  return loadSnapshotDefinitions({
    file: 'm.ini', flags: new Map(Object.entries(flags).map(([k, v]) => [k, { value: v }])), env: {},
    readFile: (p) => (p === 'm.ini' ? Buffer.from(ini) : readFileSync(p)),
  });
}

function issuesOf(ini: string, flags: Record<string, string> = {}): string[] {
  const r = load(ini, flags);
  return r.ok ? [] : r.issues.map(formatIssue);
}

let ca: TestCa;
let other: TestCa;
let good: { dir: string; remove: () => void };
const ID = spiffe('default', 'web');

before(async () => {
  ca = await TestCa.create();
  other = await TestCa.create();
  good = tempDir('remora-id-good-');
  await ca.writeIdentity(good.dir, ID);
});
after(() => { good.remove(); });

test('a good identity_dir loads: its three files are in the snapshot by path', () => {
  const r = load(['[proxy]', `identity_dir = ${good.dir}`, 'mtls_mode = strict'].join('\n'));
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
  const paths = identityPaths(good.dir);
  assert.equal(r.definitions.proxy.identityDir, good.dir);
  assert.equal(r.definitions.proxy.mtlsMode, 'strict');
  for (const p of Object.values(paths)) assert.equal(r.definitions.files[p], readFileSync(p, 'utf8'));
  const checked = checkIdentityFiles(good.dir, readFileSync, Date.now());
  assert.ok(checked.ok);
  assert.equal(checked.spiffeId, ID);
});

test('each identity problem names its file and what was expected', async (t) => {
  const d = tempDir('remora-id-bad-');
  t.after(d.remove);
  const paths = identityPaths(d.dir);
  const leaf = await ca.issue(ID);
  const stranger = await ca.issue(ID);
  const check = (): string[] => {
    const r = checkIdentityFiles(d.dir, readFileSync, Date.now());
    return r.ok ? [] : r.issues.map(formatIssue);
  };
  // Missing files: all three named, with the reason.
  const missing = check();
  assert.equal(missing.length, 3);
  assert.match(missing[0] ?? '', new RegExp(`^${paths.certChain}: identity cert-chain\\.pem: expected a readable file \\(ENOENT\\)`));
  // A key that does not match.
  writeLeaf(d.dir, { ...leaf, keyPem: stranger.keyPem }, [ca.rootPem]);
  assert.deepEqual(check().map((i) => i.replace(d.dir, 'D')), ['D/key.pem: identity key.pem: expected the private key of cert-chain.pem (this key does not match its certificate)']);
  // An expired certificate.
  writeLeaf(d.dir, await ca.issue(ID, { now: Date.now() - 10 * HOUR, ttlMs: HOUR }), [ca.rootPem]);
  assert.match(check()[0] ?? '', /cert-chain\.pem: expected a certificate valid now \(it is expired at /);
  // A certificate of a root the bundle does not hold.
  writeLeaf(d.dir, await other.issue(ID), [ca.rootPem]);
  assert.match(check()[0] ?? '', /cert-chain\.pem: expected a certificate issued by a root of root-cert\.pem/);
  // Not an X.509-SVID: the root certificate itself (a CA, no workload SPIFFE ID) as the leaf.
  writeFileSync(paths.certChain, ca.rootPem);
  assert.match(check().join('\n'), /cert-chain\.pem: expected an X\.509-SVID first: a URI SAN that is a SPIFFE ID/);
  // Not PEM at all.
  writeFileSync(paths.roots, 'hello\n');
  assert.match(check().join('\n'), /root-cert\.pem: identity root-cert\.pem: expected PEM certificates \(-----BEGIN CERTIFICATE-----\); the file has none/);
});

test('at start the identity problems are configuration errors, listed with the rest', async (t) => {
  const d = tempDir('remora-id-start-');
  t.after(d.remove);
  await ca.writeIdentity(d.dir, ID);
  rmSync(identityPaths(d.dir).key);
  const issues = issuesOf(['[proxy]', `identity_dir = ${d.dir}`, 'mtls_mode = sometimes'].join('\n'));
  assert.equal(issues.length, 2, issues.join('\n'));
  // Problems without a line (the identity files) come first, then the file's in line order.
  assert.match(issues[0] ?? '', /key\.pem: identity key\.pem: expected a readable file \(ENOENT\)/);
  assert.match(issues[1] ?? '', /^m\.ini:3: \[proxy\] mtls_mode = "sometimes": expected one of permissive, strict, disable/);
  // The flag works the same way.
  const viaFlag = issuesOf('', { 'identity-dir': d.dir });
  assert.equal(viaFlag.length, 1);
});

test('strict mTLS and mtls = true need an identity; identities need mtls; tls_* keys do not go with mtls', () => {
  const issues = issuesOf([
    '[proxy]', 'mtls_mode = strict', 'mtls_port_modes = 8080=strict',
    '[service a]', 'addresses = 10.96.0.1:80', 'endpoints = 10.1.0.1:80', 'mtls = true',
    '[service b]', 'addresses = 10.96.0.2:80', 'endpoints = 10.1.0.2:80', `identities = ${ID}`,
  ].join('\n'));
  assert.equal(issues.length, 4, issues.join('\n'));
  assert.match(issues[0] ?? '', /^m\.ini:2: \[proxy\] mtls_mode = "strict": expected identity_dir set to the directory of cert-chain\.pem/);
  assert.match(issues[1] ?? '', /^m\.ini:3: \[proxy\] mtls_port_modes: expected identity_dir set/);
  assert.match(issues[2] ?? '', /^m\.ini:7: \[service a\] mtls = "true": expected \[proxy\] identity_dir set/);
  assert.match(issues[3] ?? '', /^m\.ini:11: \[service b\] identities: expected identities only with mtls = true/);
  const tlsToo = issuesOf([
    '[proxy]', `identity_dir = ${good.dir}`,
    '[service a]', 'addresses = 10.96.0.1:80', 'endpoints = 10.1.0.1:80', 'mtls = true', 'tls_origination = on',
    'identities = spiffe://cluster.local/ns/*/x',
  ].join('\n'));
  assert.equal(tlsToo.length, 2, tlsToo.join('\n'));
  assert.match(tlsToo[0] ?? '', /^m\.ini:7: \[service a\] tls_origination: expected no tls_origination with mtls = true/);
  assert.match(tlsToo[1] ?? '', /^m\.ini:8: \[service a\] identities = .*expected SPIFFE ID patterns separated by commas \("spiffe:\/\/cluster\.local\/ns\/\*\/x": expected a SPIFFE ID, with "\*" only at its start or end/);
  const ok = load([
    '[proxy]', `identity_dir = ${good.dir}`,
    '[service a]', 'addresses = 10.96.0.1:80', 'endpoints = 10.1.0.1:80', 'mtls = true', `identities = ${ID}, spiffe://cluster.local/ns/prod/*`,
    '[service b]', 'addresses = 10.96.0.2:80', 'endpoints = 10.1.0.2:80', 'mtls = true',
  ].join('\n'));
  assert.ok(ok.ok, ok.ok ? '' : ok.issues.map(formatIssue).join('\n'));
  assert.deepEqual(ok.definitions.services.map((s) => s.mtls), [{ identities: [ID, 'spiffe://cluster.local/ns/prod/*'] }, { identities: ['*'] }]);
});

test('mtls_port_modes: ranges, overlaps refused, per-port lookup', () => {
  const r = mtlsPortModes('9000-9100=disable, 8080=strict');
  assert.ok(r.ok);
  assert.deepEqual(r.value, [{ first: 8080, last: 8080, mode: 'strict' }, { first: 9000, last: 9100, mode: 'disable' }]);
  assert.equal(mtlsModeFor(8080, 'permissive', r.value), 'strict');
  assert.equal(mtlsModeFor(9050, 'permissive', r.value), 'disable');
  assert.equal(mtlsModeFor(80, 'permissive', r.value), 'permissive');
  const overlap = mtlsPortModes('8080=strict, 8000-9000=disable');
  assert.equal(overlap.ok, false);
  const badMode = mtlsPortModes('8080=on');
  assert.ok(!badMode.ok && /modes: permissive, strict, disable/.test(badMode.expected));
});

test('authorization sections are part of the snapshot; a widening deny is a warning, not an error', () => {
  const r = load([
    '[authorization no-admin]', 'action = deny', 'paths = /admin/*',
    '[authorization web]', 'action = allow', `from_identities = ${ID}`,
  ].join('\n'));
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
  assert.deepEqual(r.definitions.authorizations.map((a) => [a.name, a.action]), [['no-admin', 'deny'], ['web', 'allow']]);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0] ?? '', /m\.ini:3/);
  const bad = issuesOf(['[authorization x]', 'action = maybe', 'colour = red'].join('\n'));
  assert.equal(bad.length, 2, bad.join('\n'));
});
