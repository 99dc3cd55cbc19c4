// A sidecar's certificate requests travel on its sync connection once that is up (the HTTP/2 session its snapshots
// come on), and on a one-off HTTPS request before (the first certificate, made before the proxy starts): the real
// `remora control` from dist/ logs each signature with the HTTP version it came on.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { ControlChannel } from '../../../src/control/control-channel.js';
import { ControlClient } from '../../../src/control/control-client.js';
import { IdentityRenewer } from '../../../src/control/identity-renewer.js';
import { SyncClient } from '../../../src/control/sync-client.js';
import { uriSans } from '../../../src/core/svid.js';
import { ControlProcess, freePorts, tempDir, waitFor } from './control-harness.js';

const SIDECAR_TOKEN = 'sidecar-token-0123456789abcdef';
const ID = 'spiffe://cluster.local/ns/shop/sa/web';

function issued(output: string): { serial: string; httpVersion: string }[] {
  return output.split('\n').filter((l) => l.includes('"event":"control.ca.issued"'))
    .map((l) => JSON.parse(l) as { serial: string; httpVersion: string });
}

/** The control plane's log lines of signed certificates once there are `n` (its output reaches us through a pipe). */
async function issuedLines(cp: ControlProcess, n: number): Promise<[string, string][]> {
  const lines = await waitFor(`${n} control.ca.issued log line(s)`, async () => {
    const l = issued(cp.output);
    return l.length >= n ? l : undefined;
  });
  return lines.map((r) => [r.serial, r.httpVersion]);
}

test('certificate renewals go on the sync connection once it is up, on HTTPS before', async (t) => {
  const tmp = tempDir('remora-cert-channel-');
  const [controlPort = 0] = await freePorts(1);
  const cp = new ControlProcess(join(tmp.dir, 'data'), ['--token', `sidecar:${SIDECAR_TOKEN}`], `127.0.0.1:${controlPort}`);
  t.after(async () => { await cp.stop(); tmp.remove(); });
  await cp.ready();
  const ca = cp.root;
  const log = pino({ level: 'silent' });
  const channel = new ControlChannel(new ControlClient({ server: cp.url, token: SIDECAR_TOKEN, ca }));
  const dir = join(tmp.dir, 'identity');
  const renewer = new IdentityRenewer({ client: channel, spiffeId: ID, dir, log, ttlSeconds: 3600 });

  // Before any sync connection: the bootstrap certificate over HTTPS/1.1.
  assert.equal(channel.onSyncConnection, false);
  const first = await renewer.renew('bootstrap');
  assert.deepEqual(await issuedLines(cp, 1), [[first.serial, '1.1']]);

  // The sync connection up and attached: the renewal goes on it (HTTP/2), and the files hold the new certificate.
  const sync = new SyncClient({ server: cp.url, token: SIDECAR_TOKEN, ca, name: 'pod-web', identity: () => ID, apply: () => ({ ok: true }), log });
  sync.start();
  t.after(() => { sync.stop(); });
  channel.attach(sync);
  await waitFor('the sync connection', async () => (channel.onSyncConnection ? true : undefined));
  const second = await renewer.renew('half of its life has passed');
  assert.notEqual(second.serial, first.serial);
  assert.deepEqual(await issuedLines(cp, 2), [[first.serial, '1.1'], [second.serial, '2.0']]);
  const cert = new X509Certificate(readFileSync(join(dir, 'cert-chain.pem')));
  assert.deepEqual(uriSans(cert), [ID]);
  assert.equal(cert.serialNumber.toLowerCase().replace(/^0+/, ''), second.serial.toLowerCase().replace(/^0+/, ''));

  // A refusal on the sync connection is a ControlRefusal with the server's code (a CSR that is not one).
  await assert.rejects(sync.call('POST', '/api/v1/certificates', { csr: 'not a CSR' }),
    (err: unknown) => (err as { status?: number; code?: string }).status === 422 && (err as { code?: string }).code === 'REMORA_ERR_CONTROL_INVALID');

  // The sync connection gone (the client stopped): the channel falls back to HTTPS.
  sync.stop();
  await waitFor('the sync connection to be down', async () => (channel.onSyncConnection ? undefined : true));
  const third = await renewer.renew('the certificate expired');
  assert.deepEqual((await issuedLines(cp, 3))[2], [third.serial, '1.1']);
});
