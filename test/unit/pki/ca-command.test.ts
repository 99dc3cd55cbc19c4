// `remora ca` end to end in a temporary directory: the real command function, checked with node:crypto and openssl.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runCaCommand } from '../../../src/cli/ca-command.js';
import { RemoraError } from '../../../src/core/errors.js';
import { inspectSvid, issuerIn, splitPemCertificates, validityOf } from '../../../src/core/svid.js';

const base = mkdtempSync(join(tmpdir(), 'remora-ca-test-'));
after(() => rmSync(base, { recursive: true, force: true }));
let counter = 0;
const fresh = (name: string): string => join(base, `${name}-${++counter}`);

// Certificates hold whole seconds; one fixed "now" per test run (the real clock, so openssl verify agrees).
const NOW = Math.floor(Date.now() / 1000) * 1000;
const HOUR = 3_600_000;

interface Run {
  readonly code: number | undefined;
  readonly out: string;
  readonly error: RemoraError | undefined;
}

async function ca(argv: readonly string[], now = NOW): Promise<Run> {
  let out = '';
  try {
    const code = await runCaCommand(argv, { out: (t) => { out += t; }, now: () => now });
    return { code, out, error: undefined };
  } catch (err) {
    if (!(err instanceof RemoraError)) throw err;
    return { code: undefined, out, error: err };
  }
}

async function ok(argv: readonly string[], now = NOW): Promise<string> {
  const r = await ca(argv, now);
  assert.equal(r.error, undefined, `remora ca ${argv.join(' ')} failed: ${r.error?.code}: ${r.error?.message}`);
  assert.equal(r.code, 0);
  assert.doesNotMatch(r.out, /PRIVATE KEY/, 'keys are never printed');
  return r.out;
}

async function fails(argv: readonly string[], code: 'REMORA_ERR_USAGE' | 'REMORA_ERR_CA', now = NOW): Promise<RemoraError> {
  const r = await ca(argv, now);
  assert.ok(r.error !== undefined, `remora ca ${argv.join(' ')} should fail with ${code}; printed:\n${r.out}`);
  assert.equal(r.error.code, code, r.error.message);
  return r.error;
}

function openssl(args: readonly string[]): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function verifies(bundle: string, certChain: string): boolean {
  return openssl(['verify', '-CAfile', bundle, certChain]).status === 0;
}

function text(file: string): string {
  const r = openssl(['x509', '-in', file, '-noout', '-text']);
  assert.equal(r.status, 0, r.out);
  return r.out;
}

const mode = (file: string): number => statSync(file).mode & 0o777;
const certOf = (file: string): X509Certificate => new X509Certificate(readFileSync(file));
const pemCount = (file: string): number => splitPemCertificates(readFileSync(file, 'utf8')).length;
const noTempFiles = (dir: string): void => assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp-')), []);

async function newCa(extra: readonly string[] = [], now = NOW): Promise<string> {
  const dir = fresh('ca');
  await ok(['init', '--dir', dir, ...extra], now);
  return dir;
}

describe('remora ca init', () => {
  test('writes a self-signed P-256 root, its key 0600 and ca.json in a new 0700 directory', async () => {
    const dir = fresh('ca');
    const out = await ok(['init', '--dir', dir]);
    assert.equal(mode(dir), 0o700);
    assert.equal(mode(join(dir, 'root-key.pem')), 0o600);
    assert.match(readFileSync(join(dir, 'root-key.pem'), 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'ca.json'), 'utf8')), { trustDomain: 'cluster.local', created: new Date(NOW).toISOString() });
    const root = certOf(join(dir, 'root-cert.pem'));
    assert.equal(root.ca, true);
    assert.ok(root.checkIssued(root) && root.verify(root.publicKey), 'self-signed');
    assert.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(root.subjectAltName, 'URI:spiffe://cluster.local');
    assert.match(root.subject, /^O=remora\nCN=remora root [0-9a-f]{8}$/);
    assert.equal(root.serialNumber.replace(/^00/, '').length, 32, '128-bit serial');
    // Ten years (Istio's default), from now - 2 minutes.
    const { notBefore, notAfter } = validityOf(root);
    assert.equal(notBefore, NOW - 2 * 60_000);
    assert.equal(notAfter, NOW + 87_600 * HOUR);
    const t = text(join(dir, 'root-cert.pem'));
    assert.match(t, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    assert.match(t, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    assert.match(t, /Subject Key Identifier/);
    assert.ok(verifies(join(dir, 'root-cert.pem'), join(dir, 'root-cert.pem')));
    assert.match(out, /created CA for trust domain cluster\.local/);
    assert.match(out, /expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, in 3650 days/);
    noTempFiles(dir);
  });

  test('--trust-domain and --ttl', async () => {
    const dir = await newCa(['--trust-domain', 'prod.example', '--ttl', '48h']);
    const root = certOf(join(dir, 'root-cert.pem'));
    assert.equal(root.subjectAltName, 'URI:spiffe://prod.example');
    assert.equal(validityOf(root).notAfter, NOW + 48 * HOUR);
  });

  test('refuses a directory that already holds a CA, changing nothing', async () => {
    const dir = await newCa();
    const before = ['root-cert.pem', 'root-key.pem', 'ca.json'].map((f) => readFileSync(join(dir, f), 'utf8'));
    const err = await fails(['init', '--dir', dir], 'REMORA_ERR_CA');
    assert.match(err.message, /already holds a CA/);
    assert.deepEqual(['root-cert.pem', 'root-key.pem', 'ca.json'].map((f) => readFileSync(join(dir, f), 'utf8')), before);
    noTempFiles(dir);
    // A lone key is enough to refuse (an interrupted init, or someone else's files).
    const partial = fresh('partial');
    await ok(['init', '--dir', partial]);
    rmSync(join(partial, 'root-cert.pem'));
    rmSync(join(partial, 'ca.json'));
    await fails(['init', '--dir', partial], 'REMORA_ERR_CA');
    assert.equal(existsSync(join(partial, 'root-cert.pem')), false);
  });

  test('bad values are usage errors', async () => {
    const dir = fresh('ca');
    assert.match((await fails(['init', '--dir', dir, '--trust-domain', 'Bad_Domain!'], 'REMORA_ERR_USAGE')).message, /--trust-domain/);
    assert.match((await fails(['init', '--dir', dir, '--ttl', '87600'], 'REMORA_ERR_USAGE')).message, /--ttl .*a duration with a unit/);
    assert.match((await fails(['init'], 'REMORA_ERR_USAGE')).message, /--dir/);
    assert.match((await fails(['init', '--dir', dir, '--nope', 'x'], 'REMORA_ERR_USAGE')).message, /--nope/);
    assert.equal(existsSync(dir), false);
  });
});

describe('remora ca issue', () => {
  test('writes an X.509-SVID, its key and the trust bundle in Istio\'s layout', async () => {
    const dir = await newCa();
    const out = fresh('web');
    const printed = await ok(['issue', '--dir', dir, '--spiffe-id', 'spiffe://cluster.local/ns/default/sa/web', '--out', out]);
    const chain = join(out, 'cert-chain.pem');
    assert.equal(mode(out), 0o755);
    assert.equal(mode(join(out, 'key.pem')), 0o600);
    assert.equal(mode(chain), 0o644);
    assert.equal(readFileSync(join(out, 'root-cert.pem'), 'utf8'), readFileSync(join(dir, 'root-cert.pem'), 'utf8'));
    assert.equal(pemCount(chain), 1);
    noTempFiles(out);

    const leaf = certOf(chain);
    const svid = inspectSvid(leaf);
    assert.ok(svid.ok, svid.ok ? '' : svid.expected);
    assert.equal(svid.value.spiffeId, 'spiffe://cluster.local/ns/default/sa/web');
    assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/web', 'exactly one SAN, a URI');
    assert.ok(leaf.subject === undefined || leaf.subject === '', 'empty subject');
    assert.equal(leaf.ca, false);
    assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(leaf.serialNumber.replace(/^00/, '').length, 32, '128-bit serial');
    const root = certOf(join(dir, 'root-cert.pem'));
    assert.equal(issuerIn(leaf, [root]), root);
    // NotBefore = now - 2 minutes (clock skew), NotAfter = now + 24h.
    assert.deepEqual(validityOf(leaf), { notBefore: NOW - 2 * 60_000, notAfter: NOW + 24 * HOUR });

    // key.pem: PKCS#8, the leaf's key.
    const keyPem = readFileSync(join(out, 'key.pem'), 'utf8');
    assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----/);
    assert.ok(createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' })
      .equals(leaf.publicKey.export({ type: 'spki', format: 'der' })));

    const t = text(chain);
    assert.match(t, /Subject: *\n/);
    assert.match(t, /Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/web\n/);
    assert.match(t, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(t, /X509v3 Key Usage: critical\s+Digital Signature\n/);
    assert.match(t, /Extended Key Usage: *\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    const aki = /Authority Key Identifier: *\s+(?:keyid:)?([0-9A-F:]+)/.exec(t)?.[1];
    const ski = /Subject Key Identifier: *\s+([0-9A-F:]+)/.exec(text(join(dir, 'root-cert.pem')))?.[1];
    assert.ok(aki !== undefined && aki === ski, `AKI ${aki} = root SKI ${ski}`);
    assert.match(t, /ecdsa-with-SHA256/);
    assert.ok(verifies(join(out, 'root-cert.pem'), chain), openssl(['verify', '-CAfile', join(out, 'root-cert.pem'), chain]).out);
    assert.ok(openssl(['verify', '-purpose', 'sslclient', '-CAfile', join(out, 'root-cert.pem'), chain]).status === 0);
    assert.ok(openssl(['verify', '-purpose', 'sslserver', '-CAfile', join(out, 'root-cert.pem'), chain]).status === 0);

    const expires = new Date(NOW + 24 * HOUR).toISOString().replace('.000Z', 'Z');
    assert.ok(printed.includes(`issued spiffe://cluster.local/ns/default/sa/web -> ${chain} (expires ${expires}, in 24h)`), printed);
    assert.doesNotMatch(printed, /clamped/);
  });

  test('re-issuing into the same directory replaces certificate and key', async () => {
    const dir = await newCa();
    const out = fresh('web');
    const args = ['issue', '--dir', dir, '--spiffe-id', 'spiffe://cluster.local/ns/default/sa/web', '--out', out];
    await ok(args);
    const first = { cert: certOf(join(out, 'cert-chain.pem')), key: readFileSync(join(out, 'key.pem'), 'utf8') };
    await ok([...args, '--ttl', '1h']);
    const second = certOf(join(out, 'cert-chain.pem'));
    assert.notEqual(second.serialNumber, first.cert.serialNumber);
    assert.notEqual(readFileSync(join(out, 'key.pem'), 'utf8'), first.key, 'a fresh key per issue');
    assert.equal(validityOf(second).notAfter, NOW + HOUR);
    assert.equal(mode(join(out, 'key.pem')), 0o600);
    noTempFiles(out);
  });

  test('NotAfter is clamped to the root\'s expiry, and the output says so', async () => {
    const dir = await newCa(['--ttl', '2h']);
    const out = fresh('web');
    const printed = await ok(['issue', '--dir', dir, '--spiffe-id', 'spiffe://cluster.local/ns/a/sa/b', '--out', out, '--ttl', '24h']);
    const rootNotAfter = validityOf(certOf(join(dir, 'root-cert.pem'))).notAfter;
    assert.equal(rootNotAfter, NOW + 2 * HOUR);
    assert.equal(validityOf(certOf(join(out, 'cert-chain.pem'))).notAfter, rootNotAfter);
    assert.match(printed, /\(expires \S+, in 2h\)/);
    assert.match(printed, /clamped to \S+ \(the root's NotAfter\)/);
    assert.ok(verifies(join(out, 'root-cert.pem'), join(out, 'cert-chain.pem')));
  });

  test('bad SPIFFE IDs, a foreign trust domain, a TTL over 90 days and bad flags are usage errors; nothing is written', async () => {
    const dir = await newCa();
    const out = fresh('never');
    const issue = (id: string, ...extra: string[]): string[] => ['issue', '--dir', dir, '--spiffe-id', id, '--out', out, ...extra];
    for (const id of [
      'spiffe://cluster.local', // no path: not a workload ID
      'http://cluster.local/ns/a/sa/b',
      'spiffe://cluster.local/ns/a/sa/b/',
      'spiffe://cluster.local/ns//sa/b',
      'spiffe://cluster.local/ns/../sa/b',
      'spiffe://user@cluster.local/ns/a/sa/b',
      'spiffe://cluster.local:8443/ns/a/sa/b',
    ]) {
      const err = await fails(issue(id), 'REMORA_ERR_USAGE');
      assert.match(err.message, /--spiffe-id/, id);
    }
    const foreign = await fails(issue('spiffe://other.domain/ns/a/sa/b'), 'REMORA_ERR_USAGE');
    assert.match(foreign.message, /--spiffe-id/);
    assert.match(foreign.message, /trust domain cluster\.local/);
    assert.match((await fails(issue('spiffe://cluster.local/ns/a/sa/b', '--ttl', '2161h'), 'REMORA_ERR_USAGE')).message, /--ttl .*2160h \(90 days\)/);
    await ok(['issue', '--dir', dir, '--spiffe-id', 'spiffe://cluster.local/ns/a/sa/b', '--out', fresh('max'), '--ttl', '2160h']);
    await fails(issue('spiffe://cluster.local/ns/a/sa/b', '--ttl', '24'), 'REMORA_ERR_USAGE');
    await fails(issue('spiffe://cluster.local/ns/a/sa/b', '--ttl', '0h'), 'REMORA_ERR_USAGE');
    await fails(issue('spiffe://cluster.local/ns/a/sa/b', '--color'), 'REMORA_ERR_USAGE');
    await fails(issue('spiffe://cluster.local/ns/a/sa/b', 'stray'), 'REMORA_ERR_USAGE');
    assert.match((await fails(['issue', '--dir', dir, '--spiffe-id', 'spiffe://cluster.local/ns/a/sa/b'], 'REMORA_ERR_USAGE')).message, /--out/);
    assert.equal(existsSync(out), false);
  });

  test('refuses to sign with an expired root, and without a CA', async () => {
    const dir = await newCa(['--ttl', '1h'], NOW - 3 * HOUR);
    const out = fresh('late');
    const err = await fails(['issue', '--dir', dir, '--spiffe-id', 'spiffe://cluster.local/ns/a/sa/b', '--out', out], 'REMORA_ERR_CA');
    assert.match(err.message, /expired/);
    assert.match(err.message, /rotate-root/);
    assert.equal(existsSync(out), false);
    const none = await fails(['issue', '--dir', fresh('empty'), '--spiffe-id', 'spiffe://cluster.local/ns/a/sa/b', '--out', out], 'REMORA_ERR_CA');
    assert.match(none.message, /no CA in/);
  });

  test('a root key that does not belong to the root certificate is refused (an interrupted rotate-root), and rotate-root repairs it', async () => {
    const dir = await newCa();
    const other = await newCa();
    copyFileSync(join(other, 'root-key.pem'), join(dir, 'root-key.pem'));
    const args = ['issue', '--dir', dir, '--spiffe-id', 'spiffe://cluster.local/ns/a/sa/b', '--out', fresh('web')];
    assert.match((await fails(args, 'REMORA_ERR_CA')).message, /does not belong to/);
    await ok(['rotate-root', '--dir', dir]);
    await ok(args);
  });
});

describe('root rotation', () => {
  test('rotate-root, bundle, re-issue, retire-root: both roots trusted during the overlap, then only the new one', async () => {
    const dir = await newCa();
    const oldRoot = certOf(join(dir, 'root-cert.pem'));
    const oldSerial = oldRoot.serialNumber.toLowerCase().replace(/^0+/, '');
    const before = fresh('before');
    await ok(['issue', '--dir', dir, '--spiffe-id', 'spiffe://cluster.local/ns/a/sa/old', '--out', before]);

    const rotated = await ok(['rotate-root', '--dir', dir]);
    assert.match(rotated, new RegExp(`root ${oldSerial} \\(previous, expires \\S+, in 3650 days\\)`));
    assert.match(rotated, /its key was deleted/);
    const newRoot = certOf(join(dir, 'root-cert.pem'));
    assert.notEqual(newRoot.serialNumber, oldRoot.serialNumber);
    assert.notEqual(newRoot.subject, oldRoot.subject);
    assert.equal(mode(join(dir, 'root-key.pem')), 0o600);
    const key = createPrivateKey(readFileSync(join(dir, 'root-key.pem')));
    assert.ok(createPublicKey(key).export({ type: 'spki', format: 'der' }).equals(newRoot.publicKey.export({ type: 'spki', format: 'der' })),
      'root-key.pem is the new root\'s key (the old key is gone)');
    assert.equal(readFileSync(join(dir, 'roots', `${oldSerial}.pem`), 'utf8'), oldRoot.toString());
    assert.deepEqual(readdirSync(dir).sort(), ['ca.json', 'root-cert.pem', 'root-key.pem', 'roots']);
    noTempFiles(join(dir, 'roots'));

    // The bundle: new root first, then the old one.
    const bundle = join(fresh('bundle'), 'trust.pem');
    const bundled = await ok(['bundle', '--dir', dir, '--out', bundle]);
    assert.match(bundled, /2 roots/);
    const roots = splitPemCertificates(readFileSync(bundle, 'utf8')).map((p) => new X509Certificate(p));
    assert.deepEqual(roots.map((r) => r.serialNumber), [newRoot.serialNumber, oldRoot.serialNumber]);
    assert.equal(mode(bundle), 0o644);
    // A leaf of the old root still verifies against the new bundle.
    assert.ok(verifies(bundle, join(before, 'cert-chain.pem')));

    // New leaves come from the new root, with the two-root bundle.
    const afterDir = fresh('after');
    const issued = await ok(['issue', '--dir', dir, '--spiffe-id', 'spiffe://cluster.local/ns/a/sa/new', '--out', afterDir]);
    assert.match(issued, /trust bundle \S+: 2 roots/);
    assert.equal(pemCount(join(afterDir, 'root-cert.pem')), 2);
    const newLeaf = certOf(join(afterDir, 'cert-chain.pem'));
    assert.equal(issuerIn(newLeaf, roots), roots[0]);
    assert.ok(verifies(join(dir, 'root-cert.pem'), join(afterDir, 'cert-chain.pem')), 'signed by the new root');
    assert.ok(!verifies(join(dir, 'roots', `${oldSerial}.pem`), join(afterDir, 'cert-chain.pem')), 'not by the old one');
    assert.ok(verifies(join(afterDir, 'root-cert.pem'), join(before, 'cert-chain.pem')), 'old leaf, new bundle');

    const shown = await ok(['show', '--dir', dir]);
    assert.match(shown, new RegExp(`active root ${newRoot.serialNumber.toLowerCase().replace(/^0+/, '')}`));
    assert.match(shown, new RegExp(`previous root ${oldSerial}`));

    // The active root cannot be retired; unknown serials are refused; the selector is exactly one of two flags.
    const activeSerial = newRoot.serialNumber;
    assert.match((await fails(['retire-root', '--dir', dir, '--serial', activeSerial], 'REMORA_ERR_CA')).message, /active root/);
    assert.match((await fails(['retire-root', '--dir', dir, '--serial', 'abcdef'], 'REMORA_ERR_CA')).message, new RegExp(`previous roots: ${oldSerial}`));
    await fails(['retire-root', '--dir', dir], 'REMORA_ERR_USAGE');
    await fails(['retire-root', '--dir', dir, '--serial', oldSerial, '--all-previous'], 'REMORA_ERR_USAGE');
    await fails(['retire-root', '--dir', dir, '--serial', 'xyz'], 'REMORA_ERR_USAGE');
    assert.equal(pemCount(bundle), 2);

    // Retire the old root, named as openssl prints serials (upper case, colons).
    const colonSerial = oldRoot.serialNumber.match(/../g)?.join(':') ?? '';
    const retired = await ok(['retire-root', '--dir', dir, '--serial', colonSerial]);
    assert.match(retired, new RegExp(`retired root ${oldSerial}`));
    assert.match(retired, /trust bundle: 1 root\b/);
    assert.equal(existsSync(join(dir, 'roots', `${oldSerial}.pem`)), false);
    await ok(['bundle', '--dir', dir, '--out', bundle]);
    assert.equal(pemCount(bundle), 1);
    assert.ok(!verifies(bundle, join(before, 'cert-chain.pem')), 'the old root\'s leaf no longer verifies');
    assert.ok(verifies(bundle, join(afterDir, 'cert-chain.pem')));
    await ok(['issue', '--dir', dir, '--spiffe-id', 'spiffe://cluster.local/ns/a/sa/new', '--out', afterDir]);
    assert.equal(pemCount(join(afterDir, 'root-cert.pem')), 1);
  });

  test('--all-previous retires every previous root; with none it says so', async () => {
    const dir = await newCa();
    await ok(['rotate-root', '--dir', dir]);
    await ok(['rotate-root', '--dir', dir, '--ttl', '1000h']);
    assert.equal(validityOf(certOf(join(dir, 'root-cert.pem'))).notAfter, NOW + 1000 * HOUR);
    const out = fresh('web');
    await ok(['issue', '--dir', dir, '--spiffe-id', 'spiffe://cluster.local/ns/a/sa/b', '--out', out]);
    assert.equal(pemCount(join(out, 'root-cert.pem')), 3);
    const retired = await ok(['retire-root', '--dir', dir, '--all-previous']);
    assert.equal(retired.match(/^retired root /gm)?.length, 2);
    assert.deepEqual(readdirSync(join(dir, 'roots')), []);
    assert.match(await ok(['retire-root', '--dir', dir, '--all-previous']), /no previous root to retire/);
  });

  test('rotating an expired root works and the new root signs again', async () => {
    const dir = await newCa(['--ttl', '1h'], NOW - 3 * HOUR);
    await ok(['rotate-root', '--dir', dir]);
    const out = fresh('web');
    const printed = await ok(['issue', '--dir', dir, '--spiffe-id', 'spiffe://cluster.local/ns/a/sa/b', '--out', out]);
    assert.match(printed, /note: previous root \S+ expired at/);
    assert.ok(verifies(join(out, 'root-cert.pem'), join(out, 'cert-chain.pem')));
  });
});

describe('remora ca show, help and dispatch', () => {
  test('show --dir prints the trust domain and each root with fingerprint and expiry', async () => {
    const dir = await newCa();
    const root = certOf(join(dir, 'root-cert.pem'));
    const shown = await ok(['show', '--dir', dir]);
    assert.match(shown, /trust domain cluster\.local/);
    assert.ok(shown.includes(`sha256      ${root.fingerprint256}`), shown);
    assert.match(shown, /subject +O=remora, CN=remora root [0-9a-f]{8}/);
    assert.match(shown, /not after +\S+Z \(3650 days left\)/);
  });

  test('show --cert prints the SPIFFE ID, serial, validity and the signing root', async () => {
    const dir = await newCa();
    const out = fresh('web');
    await ok(['issue', '--dir', dir, '--spiffe-id', 'spiffe://cluster.local/ns/default/sa/web', '--out', out, '--ttl', '30m']);
    const chain = join(out, 'cert-chain.pem');
    const leaf = certOf(chain);
    const shown = await ok(['show', '--cert', chain]);
    assert.ok(shown.startsWith(`${chain}: spiffe://cluster.local/ns/default/sa/web\n`), shown);
    assert.ok(shown.includes(`serial      ${leaf.serialNumber.toLowerCase()}`));
    assert.match(shown, /not after +\S+Z \(in 30m\)/);
    assert.match(shown, /signed by +root [0-9a-f]+ of \S+root-cert\.pem/);
    assert.match(await ok(['show', '--cert', chain, '--dir', dir]), /signed by +active root/);
    // Not an SVID (a root) is refused; a missing file too.
    assert.match((await fails(['show', '--cert', join(dir, 'root-cert.pem')], 'REMORA_ERR_CA')).message, /not an X\.509-SVID/);
    await fails(['show', '--cert', join(out, 'nope.pem')], 'REMORA_ERR_CA');
    await fails(['show'], 'REMORA_ERR_USAGE');
  });

  test('a file that cannot be written is a REMORA_ERR_CA failure naming it, not an internal error', async () => {
    const dir = await newCa();
    const blocker = join(fresh('blocked'), 'file');
    await ok(['bundle', '--dir', dir, '--out', blocker]);
    const err = await fails(['issue', '--dir', dir, '--spiffe-id', 'spiffe://cluster.local/ns/a/sa/b', '--out', join(blocker, 'sub')], 'REMORA_ERR_CA');
    assert.match(err.message, /ca issue: .*(EEXIST|ENOTDIR)/);
  });

  test('help texts; unknown or missing subcommands are usage errors', async () => {
    const help = await ca(['--help']);
    assert.equal(help.code, 0);
    for (const c of ['init', 'issue', 'rotate-root', 'retire-root', 'bundle', 'show']) assert.match(help.out, new RegExp(`^  ${c} `, 'm'));
    const issueHelp = await ca(['issue', '--help']);
    assert.equal(issueHelp.code, 0);
    assert.match(issueHelp.out, /^Usage: remora ca issue --dir DIR --spiffe-id/);
    assert.match(issueHelp.out, /--ttl DURATION +.*\(default: 24h\)/);
    assert.match((await fails(['sign'], 'REMORA_ERR_USAGE')).message, /unknown command "ca sign"/);
    await fails([], 'REMORA_ERR_USAGE');
  });

  test('a corrupted previous root or a wrong ca.json is reported, not ignored', async () => {
    const dir = await newCa();
    await ok(['rotate-root', '--dir', dir]);
    const [name] = readdirSync(join(dir, 'roots'));
    writeFileSync(join(dir, 'roots', name ?? 'x.pem'), 'garbage');
    assert.match((await fails(['show', '--dir', dir], 'REMORA_ERR_CA')).message, /holds 0 certificates/);
    const other = await newCa();
    writeFileSync(join(other, 'ca.json'), JSON.stringify({ trustDomain: 'elsewhere', created: '' }));
    assert.match((await fails(['show', '--dir', other], 'REMORA_ERR_CA')).message, /not a root of trust domain elsewhere/);
  });
});
