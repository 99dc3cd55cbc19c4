// /debug/connections and /debug/explain on a real proxy on loopback (no iptables): a declared-opaque passthrough
// connection (the plain path) and a keep-alive HTTP connection in the HTTP engine are listed with their destination,
// protocol, endpoint, bytes and side states, and leave the list when closed; /debug/explain answers the planner's
// result, or 400 naming each bad parameter.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { test as nodeTest, type TestContext } from 'node:test';
import { spiffe, tempDir, TestCa } from '../../support/mesh-pki.js';
import { startRig } from '../../support/proxy-rig.js';

const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
  nodeTest(name, { timeout: 30_000 }, fn);
};

interface LiveConn {
  readonly id: number;
  readonly direction: string;
  readonly peerIdentity?: string;
  readonly originalDst: string;
  readonly phase: string;
  readonly protocol?: string;
  readonly service?: string;
  readonly endpoint?: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly downstreamState: string;
  readonly upstreamState?: string;
}

async function freePort(): Promise<number> {
  const s = http.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => { s.close(() => { resolve(); }); });
  return port;
}

function getJson(port: number, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }); });
    }).on('error', reject);
  });
}

async function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('a plain opaque connection and a keep-alive HTTP connection are listed with what they are, then leave the list', async (t) => {
  const held = new Set<Socket>();
  const greeter = createServer({ allowHalfOpen: true }, (s) => { held.add(s); s.on('error', () => undefined); s.resume(); s.write('hi!'); });
  greeter.listen(0, '127.0.0.1');
  await once(greeter, 'listening');
  t.after(() => { greeter.close(); });
  const opaquePort = (greeter.address() as AddressInfo).port;
  const web = http.createServer((_req, res) => { res.end('ok\n'); });
  web.listen(0, '127.0.0.1');
  await once(web, 'listening');
  t.after(() => { web.closeAllConnections(); web.close(); });
  const webPort = (web.address() as AddressInfo).port;
  const adminPort = await freePort();
  const r = await startRig(t, `[registry]\nport_protocols = ${opaquePort}=opaque\n`, { httpEngine: true, adminPort });
  const list = async (): Promise<LiveConn[]> => {
    const got = await getJson(adminPort, '/debug/connections');
    assert.equal(got.status, 200);
    return (got.body as { connections: LiveConn[] }).connections;
  };

  r.dst('127.0.0.1', opaquePort);
  const sock: Socket = connect({ host: '127.0.0.1', port: r.port, allowHalfOpen: true });
  t.after(() => { sock.destroy(); });
  await once(sock, 'connect');
  sock.write('12345');
  await once(sock, 'data');
  const plain = await until('the opaque connection with its bytes', async () => (await list()).find((c) => c.originalDst === `127.0.0.1:${opaquePort}` && c.bytesIn === 5));
  assert.equal(plain.phase, 'forward');
  assert.equal(plain.protocol, 'declared:opaque');
  assert.equal(plain.service, undefined);
  assert.equal(plain.endpoint, `127.0.0.1:${opaquePort}`);
  assert.equal(plain.bytesOut, 3);
  assert.equal(plain.downstreamState, 'open');
  assert.equal(plain.upstreamState, 'open');
  sock.end();
  const half = await until('the half-close', async () => (await list()).find((c) => c.id === plain.id && c.downstreamState === 'fin-received'));
  assert.equal(half.upstreamState, 'fin-sent');

  r.dst('127.0.0.1', webPort);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => { agent.destroy(); });
  await new Promise<void>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: r.port, path: '/x', agent }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject);
  });
  const h = await until('the HTTP connection', async () => (await list()).find((c) => c.originalDst === `127.0.0.1:${webPort}` && c.phase === 'http' && c.bytesOut > 0));
  assert.equal(h.protocol, 'http1');
  assert.equal(h.endpoint, undefined, 'HTTP picks an endpoint per request');
  assert.equal(h.upstreamState, undefined);
  assert.ok(h.bytesIn > 0);
  assert.equal(h.downstreamState, 'open');

  // The client's FIN was passed on; the server still holds its side, so the connection stays until the server ends.
  agent.destroy();
  for (const s of held) s.end();
  await until('both to leave the list', async () => ((await list()).some((c) => c.id === plain.id || c.id === h.id) ? undefined : true));
});

test('/debug/explain answers the planner\'s result, and 400 naming every bad parameter', async (t) => {
  const adminPort = await freePort();
  await startRig(t, '[service web]\naddresses = 10.255.0.20:80\nendpoints = 127.0.0.1:9\n', { httpEngine: true, adminPort });
  const ok = await getJson(adminPort, '/debug/explain?dst=10.255.0.20:80&path=/a');
  assert.equal(ok.status, 200);
  const body = ok.body as { service: { name: string }; endpoints: { endpoint: string }[]; route: { matched: string } };
  assert.equal(body.service.name, 'web');
  assert.equal(body.route.matched, 'default:web');
  assert.equal(body.endpoints[0]?.endpoint, '127.0.0.1:9');
  const bad = await getJson(adminPort, '/debug/explain?dst=nowhere&uid=x');
  assert.equal(bad.status, 400);
  const b = bad.body as { error: string; issues: { key: string }[] };
  assert.equal(b.error, 'REMORA_ERR_USAGE');
  assert.deepEqual(b.issues.map((i) => i.key).sort(), ['dst', 'uid']);
});

test('over mesh mTLS: the server lists the connection inside mTLS with the client\'s SPIFFE ID, the client its mTLS service', async (t) => {
  const ca = await TestCa.create();
  const clientId = spiffe('default', 'web');
  const echo = createServer((s) => { s.on('error', () => undefined); s.on('data', (d) => { s.write(`echo:${String(d)}`); }); });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  t.after(() => { echo.close(); });
  const c = tempDir('remora-debug-client-');
  const s = tempDir('remora-debug-server-');
  t.after(() => { c.remove(); s.remove(); });
  await ca.writeIdentity(c.dir, clientId);
  await ca.writeIdentity(s.dir, spiffe('default', 'api'));
  const serverAdmin = await freePort();
  const server = await startRig(t, `[proxy]\nidentity_dir = ${s.dir}\nmtls_mode = strict\n`, { adminPort: serverAdmin });
  server.dst('127.0.0.1', (echo.address() as AddressInfo).port);
  const clientAdmin = await freePort();
  const client = await startRig(t, ['[proxy]', `identity_dir = ${c.dir}`, '[service api]', 'addresses = 10.255.7.1:7000',
    `endpoints = 127.0.0.1:${server.inboundPort}`, 'protocol = opaque', 'mtls = true'].join('\n'), { adminPort: clientAdmin });
  client.dst('10.255.7.1', 7000);
  const sock = connect({ host: '127.0.0.1', port: client.port });
  t.after(() => { sock.destroy(); });
  sock.write('ping\r\n');
  await once(sock, 'data');
  const inner = await until('the server-side connection inside mTLS', async () => {
    const got = await getJson(serverAdmin, '/debug/connections');
    return (got.body as { connections: LiveConn[] }).connections.find((x) => x.peerIdentity === clientId && x.bytesIn === 6);
  });
  assert.equal(inner.direction, 'inbound');
  assert.match(inner.protocol ?? '', /^mtls\//);
  assert.equal(inner.phase, 'forward');
  const shells = (await getJson(serverAdmin, '/debug/connections')).body as { count: number };
  assert.equal(shells.count, 1, 'the mTLS shell of the connection is not listed besides the connection inside it');
  const out = ((await getJson(clientAdmin, '/debug/connections')).body as { connections: LiveConn[] }).connections;
  assert.equal(out.length, 1);
  assert.equal(out[0]?.service, 'api');
  assert.equal(out[0]?.endpoint, `127.0.0.1:${server.inboundPort}`);
  assert.equal(out[0]?.protocol, 'declared:opaque');
  assert.equal(out[0]?.peerIdentity, undefined, 'the client side has no peer identity of its own client');
});
