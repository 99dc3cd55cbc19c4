// Mesh mTLS between two real proxies on loopback (no iptables): a client sidecar (outbound listener, a service with
// mtls = true whose endpoint is the server sidecar's inbound listener, as the server pod's rules would redirect it)
// and a server sidecar (inbound listener delivering to an app on 127.0.0.1). Certificates come from remora's CA code.
// Checked here: HTTP and opaque TCP across the mesh hop with the client's identity reaching the app
// (x-forwarded-client-cert), pooled connections reused, strict refusals (plaintext, foreign root, expired, no client
// certificate), the accepted server identities, authorization over HTTP and TCP, and identity rotation by reload.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { test as nodeTest, type TestContext } from 'node:test';
import tls from 'node:tls';
import { startRig, type Rig } from '../../support/proxy-rig.js';
import { HOUR, spiffe, tempDir, TestCa } from '../../support/mesh-pki.js';

const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
  nodeTest(name, { timeout: 30_000 }, fn);
};

const VIP = '10.255.7.1';
const CLIENT_ID = spiffe('default', 'web');
const SERVER_ID = spiffe('default', 'api');

/** An HTTP app that answers with the headers it received. */
async function headerApp(t: TestContext): Promise<number> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ headers: req.headers, path: req.url }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => { server.closeAllConnections(); server.close(); });
  return (server.address() as AddressInfo).port;
}

/** A TCP app that answers "echo:<bytes>". */
async function echoApp(t: TestContext): Promise<number> {
  const server = net.createServer((s) => {
    s.on('data', (d) => { s.write(`echo:${String(d)}`); });
    s.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => { server.close(); });
  return (server.address() as AddressInfo).port;
}

interface Reply { status: number; body: string; headers: http.IncomingHttpHeaders; reused: boolean }

function get(port: number, path = '/', agent: http.Agent | false = false, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body, headers: res.headers, reused: req.reusedSocket }); });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => { req.destroy(new Error('timeout')); });
  });
}

/** Send `text` over TCP; resolves with what came back before the close (or "" on a reset / refusal). */
function tcpExchange(port: number, text: string): Promise<{ data: string; error: string | undefined }> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let data = '';
    let error: string | undefined;
    s.on('data', (d) => {
      data += String(d);
      if (data.includes(text)) s.end();
    });
    s.on('error', (e: NodeJS.ErrnoException) => { error = e.code ?? e.message; });
    s.on('close', () => { resolve({ data, error }); });
    s.setTimeout(10_000, () => { s.destroy(new Error('timeout')); });
    s.write(text);
  });
}

interface Mesh {
  readonly client: Rig;
  readonly server: Rig;
  readonly clientDir: string;
  readonly serverDir: string;
}

/** Two sidecars with identities of `ca`; the server delivers to 127.0.0.1:appPort. */
async function mesh(t: TestContext, ca: TestCa, appPort: number, o: { serverExtra?: readonly string[]; clientService?: readonly string[]; http?: boolean } = {}): Promise<Mesh> {
  const c = tempDir('remora-mesh-client-');
  const s = tempDir('remora-mesh-server-');
  t.after(() => { c.remove(); s.remove(); });
  await ca.writeIdentity(c.dir, CLIENT_ID);
  await ca.writeIdentity(s.dir, SERVER_ID);
  const httpEngine = o.http ?? true;
  const server = await startRig(t, ['[proxy]', `identity_dir = ${s.dir}`, ...(o.serverExtra ?? ['mtls_mode = strict'])].join('\n'), { httpEngine });
  server.dst('127.0.0.1', appPort);
  const client = await startRig(t, [
    '[proxy]', `identity_dir = ${c.dir}`,
    '[service api]', `addresses = ${VIP}:80`, `endpoints = 127.0.0.1:${server.inboundPort}`, 'mtls = true',
    ...(o.clientService ?? [`identities = ${SERVER_ID}`]),
  ].join('\n'), { httpEngine });
  client.dst(VIP, 80);
  return { client, server, clientDir: c.dir, serverDir: s.dir };
}

/** Connect to the server sidecar's inbound listener directly with TLS, as a foreign client would. */
function tlsProbe(port: number, o: tls.ConnectionOptions): Promise<{ secure: boolean; data: string; error: string | undefined }> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['remora'], rejectUnauthorized: false, ...o });
    let secure = false;
    let data = '';
    let error: string | undefined;
    s.on('secureConnect', () => { secure = true; s.write('GET / HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n'); });
    s.on('data', (d) => { data += String(d); });
    s.on('error', (e: NodeJS.ErrnoException) => { error = e.code ?? e.message; });
    s.on('close', () => { resolve({ secure, data, error }); });
    s.setTimeout(10_000, () => { s.destroy(new Error('timeout')); });
  });
}

function waitFor(cond: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (cond()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 20);
    };
    tick();
  });
}

test('HTTP over the mesh hop: the app sees the client identity in x-forwarded-client-cert; pooled mTLS connections are reused', async (t) => {
  const ca = await TestCa.create();
  const app = await headerApp(t);
  const m = await mesh(t, ca, app);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => { agent.destroy(); });
  for (let i = 0; i < 5; i++) {
    // A forged header from the app is replaced by the server sidecar.
    const r = await get(m.client.port, `/x/${i}`, agent, { 'x-forwarded-client-cert': 'URI=spiffe://evil/ns/x/sa/y' });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    const xfcc = seen.headers['x-forwarded-client-cert'] ?? '';
    assert.match(xfcc, new RegExp(`^By=${SERVER_ID};Hash=[0-9a-f]{64};URI=${CLIENT_ID}$`));
  }
  const cs = m.client.proxy.stats();
  const ss = m.server.proxy.stats();
  assert.equal(cs.mtls.outbound['handshakes'], 1, 'five requests, one pooled mTLS connection');
  assert.equal(ss.mtls.inbound['handshakes'], 1);
  assert.equal(ss.sniff['mtls'], 1);
  assert.equal(cs.services?.['api']?.mtls, true);
  // A plaintext request to the server sidecar (a pod without sidecar) is refused in strict mode.
  m.server.dst('127.0.0.1', app);
  await assert.rejects(get(m.server.inboundPort), /ECONNRESET|socket hang up/);
  await waitFor(() => (m.server.proxy.stats().mtls.inbound['refused.plaintext'] ?? 0) === 1, `refused.plaintext ${JSON.stringify(m.server.proxy.stats().mtls)} ${JSON.stringify(m.server.proxy.stats().errors)}`);
  assert.equal(m.server.proxy.stats().errors['REMORA_ERR_MTLS_REQUIRED'], 1);
});

test('opaque TCP over the mesh hop', async (t) => {
  const ca = await TestCa.create();
  const app = await echoApp(t);
  const m = await mesh(t, ca, app, { http: false });
  const r = await tcpExchange(m.client.port, 'ping\r\n');
  assert.equal(r.data, 'echo:ping\r\n');
  await waitFor(() => m.server.logs.some((l) => l['event'] === 'connection.closed' && l['peerIdentity'] === CLIENT_ID), 'the server log line with the peer identity');
  const closed = m.server.logs.find((l) => l['event'] === 'connection.closed' && l['peerIdentity'] === CLIENT_ID);
  assert.match(String(closed?.['protocol']), /^mtls\//);
});

test('strict refuses a foreign root, an expired certificate and no certificate, each with its reason', async (t) => {
  const ca = await TestCa.create();
  const other = await TestCa.create();
  const app = await headerApp(t);
  const m = await mesh(t, ca, app);
  const port = m.server.inboundPort;
  const foreign = await other.issue(CLIENT_ID);
  const expired = await ca.issue(CLIENT_ID, { now: Date.now() - 48 * HOUR, ttlMs: HOUR });
  const good = await ca.issue(CLIENT_ID);
  const cases: [string, tls.ConnectionOptions, string][] = [
    ['foreign root', { cert: foreign.certPem, key: foreign.keyPem }, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['expired', { cert: expired.certPem, key: expired.keyPem }, 'CERT_HAS_EXPIRED'],
    ['no certificate', {}, 'no-peer-certificate'],
  ];
  for (const [name, opts, reason] of cases) {
    const r = await tlsProbe(port, opts);
    assert.equal(r.data, '', `${name}: nothing reaches the app`);
    await waitFor(() => (m.server.proxy.stats().mtls.inbound[`failures.${reason}`] ?? 0) >= 1, `${name}: failures.${reason}`);
  }
  assert.equal(m.server.proxy.stats().errors['REMORA_ERR_MTLS_HANDSHAKE'], 3);
  // A foreign TLS client (no mesh ALPN) is refused too; the good certificate gets through.
  const foreignTls = await tlsProbe(port, { ALPNProtocols: ['h2'], cert: good.certPem, key: good.keyPem });
  assert.equal(foreignTls.data, '');
  await waitFor(() => (m.server.proxy.stats().mtls.inbound['refused.foreign-tls'] ?? 0) === 1, 'refused.foreign-tls');
  const ok = await tlsProbe(port, { cert: good.certPem, key: good.keyPem, ca: ca.rootPem });
  assert.match(ok.data, /^HTTP\/1\.1 200/);
});

test('permissive accepts plaintext and mTLS; a server identity the service does not accept fails the request', async (t) => {
  const ca = await TestCa.create();
  const app = await headerApp(t);
  const m = await mesh(t, ca, app, { serverExtra: ['mtls_mode = permissive'], clientService: [`identities = ${spiffe('prod', 'api')}`] });
  const plain = await get(m.server.inboundPort, '/', false, { 'x-forwarded-client-cert': `URI=${CLIENT_ID}` });
  assert.equal(plain.status, 200);
  assert.equal((JSON.parse(plain.body) as { headers: Record<string, string> }).headers['x-forwarded-client-cert'], undefined,
    'a plaintext request cannot claim an identity: its x-forwarded-client-cert is removed');
  assert.equal(m.server.proxy.stats().mtls.inbound['plaintext'], 1);
  const wrong = await get(m.client.port);
  assert.equal(wrong.status, 503, 'the client sidecar refuses a server it does not accept');
  assert.equal(wrong.headers['x-remora-error'], 'upstream-connect-failure');
  assert.ok((m.client.proxy.stats().mtls.outbound['failures.ERR_REMORA_PEER_IDENTITY'] ?? 0) >= 1);
});

test('authorization: deny and allow over HTTP (403 RBAC: access denied) and TCP (closed)', async (t) => {
  const ca = await TestCa.create();
  const app = await headerApp(t);
  const m = await mesh(t, ca, app, {
    serverExtra: [
      'mtls_mode = permissive',
      '[authorization deny-admin]', 'action = deny', 'paths = /admin/*',
      '[authorization web-only]', 'action = allow', `from_identities = ${CLIENT_ID}`,
    ],
  });
  assert.equal((await get(m.client.port, '/api')).status, 200, 'the mesh client is allowed');
  const admin = await get(m.client.port, '/admin/x');
  assert.equal(admin.status, 403);
  assert.equal(admin.body, 'RBAC: access denied');
  assert.equal(admin.headers['x-remora-error'], 'rbac-denied');
  const plain = await get(m.server.inboundPort, '/api');
  assert.equal(plain.status, 403, 'plaintext has no identity: no allow policy matches');
  const authz = m.server.proxy.stats().authz;
  assert.equal(authz['http.denied'], 2);
  assert.equal(authz['policy.deny-admin.denied'], 1);
  assert.equal(authz['policy.web-only.allowed'], 1);
  const denied = m.server.logs.filter((l) => l['event'] === 'authz.denied');
  assert.deepEqual(denied.map((l) => [l['policy'], l['reason']]), [['deny-admin', 'denied'], [undefined, 'no-allow-matched']]);
});

test('authorization of opaque TCP: a connection no allow policy matches is closed', async (t) => {
  const ca = await TestCa.create();
  const app = await echoApp(t);
  const m = await mesh(t, ca, app, {
    http: false,
    serverExtra: ['mtls_mode = permissive', '[authorization only-web]', 'action = allow', `from_identities = ${CLIENT_ID}`],
  });
  assert.equal((await tcpExchange(m.client.port, 'hi\r\n')).data, 'echo:hi\r\n', 'the mesh client is allowed');
  const plain = await tcpExchange(m.server.inboundPort, 'hi\r\n');
  assert.equal(plain.data, '', 'plaintext: closed');
  await waitFor(() => (m.server.proxy.stats().authz['tcp.denied'] ?? 0) === 1, 'tcp.denied');
  assert.equal(m.server.proxy.stats().errors['REMORA_ERR_AUTHZ_DENIED'], 1);
});

test('rotation: new certificates from a new root (bundle overlap) swap in by reload; an open keep-alive connection goes on', async (t) => {
  const ca = await TestCa.create();
  const next = await TestCa.create();
  const app = await headerApp(t);
  const m = await mesh(t, ca, app);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => { agent.destroy(); });
  assert.equal((await get(m.client.port, '/', agent)).status, 200);
  const both = [ca.rootPem, next.rootPem];
  // 1. both sides trust both roots; 2. the server gets a leaf of the new root; 3. the client too.
  await ca.writeIdentity(m.serverDir, SERVER_ID, { bundle: both });
  await ca.writeIdentity(m.clientDir, CLIENT_ID, { bundle: both });
  assert.equal(m.server.proxy.reload('identity').result, 'ok');
  assert.equal(m.client.proxy.reload('identity').result, 'ok');
  await next.writeIdentity(m.serverDir, SERVER_ID, { bundle: both });
  assert.equal(m.server.proxy.reload('identity').result, 'ok');
  const kept = await get(m.client.port, '/', agent);
  assert.equal(kept.status, 200);
  assert.equal(kept.reused, true, 'the downstream keep-alive connection survived the rotations');
  // A fresh connection to the server uses the new server certificate, which the client trusts through the bundle.
  assert.equal((await get(m.client.port)).status, 200);
  assert.equal(m.server.proxy.stats().identity['rotations'], 2);
  // A broken identity is refused; the last good one keeps serving.
  const bad = await next.issue(SERVER_ID);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(`${m.serverDir}/key.pem`, (await next.issue(SERVER_ID)).keyPem);
  writeFileSync(`${m.serverDir}/cert-chain.pem`, bad.certPem);
  assert.equal(m.server.proxy.reload('identity').result, 'rejected');
  assert.equal(m.server.proxy.stats().identity['rejected'], 1);
  const rejected = m.server.logs.find((l) => l['event'] === 'identity.rejected');
  assert.match(JSON.stringify(rejected?.['issues']), /key\.pem.*does not match/);
  assert.equal((await get(m.client.port)).status, 200, 'the last good identity keeps serving');
});
