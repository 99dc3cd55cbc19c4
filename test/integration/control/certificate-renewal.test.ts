// The control plane renews its serving certificate at half life without a restart (in-process, with a clock).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { test } from 'node:test';
import { pino } from 'pino';
import { startControlServer } from '../../../src/control/control-server.js';
import { TokenSet } from '../../../src/control/token-auth.js';
import { READ_TOKEN, api, tempDir, watch } from './control-harness.js';

const DAY = 86_400_000;

function served(port: number, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['h2'] }, () => {
      const cert = s.getPeerX509Certificate();
      s.end();
      if (cert === undefined) reject(new Error('no certificate')); else resolve(cert);
    });
    s.on('error', reject);
  });
}

test('the serving certificate is re-issued once half its life has passed; new handshakes get it, HTTP/2 and HTTP/1.1 still work', async () => {
  const tmp = tempDir('remora-control-renew-');
  let clock = Date.now() - 60 * DAY;
  const server = await startControlServer({
    dataDir: join(tmp.dir, 'data'), listen: { host: '127.0.0.1', port: 0 }, tokens: new TokenSet([{ scope: 'read', token: READ_TOKEN }]),
    trustDomain: 'cluster.local', extraSans: [], version: 'test', log: pino({ level: 'silent' }), now: () => clock,
  });
  try {
    const ca = readFileSync(join(tmp.dir, 'data', 'root-cert.pem'), 'utf8');
    const first = await served(server.address.port, ca);
    assert.equal(await server.renewCertificates(), false, 'young: nothing to do');
    clock = Date.now() - 10 * DAY; // 50 days later: past half of 90 days
    assert.equal(await server.renewCertificates(), true);
    const second = await served(server.address.port, ca);
    assert.notEqual(second.serialNumber, first.serialNumber);
    assert.ok(Date.parse(second.validTo) > Date.parse(first.validTo));
    assert.ok(second.checkIssued(new X509Certificate(ca)));
    const url = `https://127.0.0.1:${server.address.port}`;
    assert.equal((await api(url, ca, 'GET', '/api/v1/state', { token: READ_TOKEN })).status, 200);
    const w = watch(url, ca, READ_TOKEN);
    try {
      assert.equal(await w.status, 200);
    } finally {
      w.close();
    }
  } finally {
    await server.close();
    tmp.remove();
  }
});
