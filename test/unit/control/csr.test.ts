import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import type { ControlClient } from '../../../src/control/control-client.js';
import { checkCsr, createCsr } from '../../../src/control/csr.js';
import { IdentityRenewer, renewAt } from '../../../src/control/identity-renewer.js';
import { CertificateAuthority } from '../../../src/pki/certificate-authority.js';
import { uriSans } from '../../../src/core/svid.js';

const root = mkdtempSync(join(tmpdir(), 'remora-csr-'));
after(() => rmSync(root, { recursive: true, force: true }));
const ID = 'spiffe://cluster.local/ns/shop/sa/web';

test('a CSR made by the sidecar is checked and signed for the key it holds; the CA never sees the private key', async () => {
  const { keyPem, csrPem } = await createCsr(ID);
  const check = await checkCsr(csrPem, 'cluster.local');
  assert.equal(check.ok, true, JSON.stringify(check));
  if (!check.ok) return;
  assert.equal(check.spiffeId, ID);
  const now = Date.now();
  const rootCa = await CertificateAuthority.createRoot({ trustDomain: 'cluster.local', ttlMs: 86_400_000, now });
  const ca = await CertificateAuthority.load(rootCa.certPem, rootCa.keyPem, { cert: 'r', key: 'k' });
  const leaf = await ca.issueForKey(check.publicKey, { spiffeId: ID, ttlMs: 3_600_000, now });
  const cert = new X509Certificate(leaf.certPem);
  assert.ok(cert.checkIssued(new X509Certificate(rootCa.certPem)));
  assert.deepEqual(uriSans(cert), [ID]);
  assert.ok(cert.checkPrivateKey(createPrivateKey(keyPem)));
  assert.equal(cert.ca, false);
  assert.ok(createPublicKey(keyPem).export({ format: 'der', type: 'spki' }).equals(cert.publicKey.export({ format: 'der', type: 'spki' })));
});

test('CSRs are refused with the reason: another trust domain, not a workload ID, not a CSR, a broken signature', async () => {
  const other = await checkCsr((await createCsr('spiffe://evil.example/ns/a/sa/b')).csrPem, 'cluster.local');
  assert.deepEqual(other, { ok: false, expected: 'a SPIFFE ID of the trust domain cluster.local (not evil.example)' });
  const domainOnly = await checkCsr((await createCsr('spiffe://cluster.local')).csrPem, 'cluster.local');
  assert.equal(domainOnly.ok, false);
  assert.match((await checkCsr('hello', 'cluster.local') as { expected: string }).expected, /PKCS#10/);
  const { csrPem } = await createCsr(ID);
  const body = csrPem.split('\n').filter((l) => !l.startsWith('-----')).join('');
  const der = Buffer.from(body, 'base64');
  der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff; // inside the signature
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  const r = await checkCsr(tampered, 'cluster.local');
  assert.equal(r.ok, false);
});

test('renewal: due when files are missing, for another ID, or past half of the life; renew writes the identity layout', async () => {
  assert.equal(renewAt(1000, 3000, 0.5), 2000);
  const now = Date.now();
  const rootCa = await CertificateAuthority.createRoot({ trustDomain: 'cluster.local', ttlMs: 86_400_000, now });
  const ca = await CertificateAuthority.load(rootCa.certPem, rootCa.keyPem, { cert: 'r', key: 'k' });
  let clock = now;
  let requests = 0;
  const client = {
    call: async (_m: string, _p: string, body: unknown) => {
      requests++;
      const check = await checkCsr((body as { csr: string }).csr, 'cluster.local');
      if (!check.ok) throw new Error(check.expected);
      const leaf = await ca.issueForKey(check.publicKey, { spiffeId: check.spiffeId, ttlMs: 3_600_000, now: clock });
      return { certChain: leaf.certPem, roots: rootCa.certPem, serial: leaf.serial, notAfter: new Date(leaf.notAfter).toISOString() };
    },
  } as unknown as ControlClient;
  const dir = join(root, 'identity');
  const renewer = new IdentityRenewer({ client, spiffeId: ID, dir, log: pino({ level: 'silent' }), now: () => clock, renewFraction: 0.5 });
  assert.match(renewer.due() ?? '', /no usable identity files/);
  await renewer.check();
  assert.equal(requests, 1);
  assert.equal(renewer.due(), undefined);
  await renewer.check();
  assert.equal(requests, 1, 'nothing to do while the certificate is young');
  clock = now + 35 * 60_000; // past half of (1 h + 2 min backdating)
  assert.match(renewer.due() ?? '', /half of its life/);
  await renewer.check();
  assert.equal(requests, 2);
  const other = new IdentityRenewer({ client, spiffeId: 'spiffe://cluster.local/ns/shop/sa/api', dir, log: pino({ level: 'silent' }), now: () => clock });
  assert.match(other.due() ?? '', /not spiffe:\/\/cluster.local\/ns\/shop\/sa\/api/);
});
