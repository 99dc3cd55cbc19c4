// The proxy's HTTP layer on loopback (no iptables): a real startProxy() with http_engine on, whose original-destination
// reader is injected. Requests to a service VIP are balanced per request over its endpoints, routes split by weight,
// the admin API changes weights for the next requests (bad input -> 400, old table kept), registry-only answers
// 404 no-route, destinations without a service pass through, route header mutations apply, and SIGTERM-style
// shutdown keeps serving an outbound keep-alive connection until the drain deadline. Bounded: every wait has a
// deadline.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { createConnection, createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { test as nodeTest, type TestContext } from 'node:test';
import { formatIssue } from '../../../src/config/config-issue.js';
import { loadSnapshotDefinitions } from '../../../src/config/load-snapshot.js';
import type { Proxy } from '../../../src/proxy/proxy.js';
import { startRig } from '../../support/proxy-rig.js';

const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
  nodeTest(name, { timeout: 30_000 }, fn);
};

async function listen(t: TestContext, server: Server | http.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    if (server instanceof http.Server) server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

/** An HTTP backend answering "<tag>\n" with the request headers it saw in x-seen. */
async function backend(t: TestContext, tag: string, status = 200): Promise<number> {
  const server = http.createServer((req, res) => {
    res.writeHead(status, { 'x-tag': tag, 'x-seen-canary': String(req.headers['x-canary-seen'] ?? ''), 'x-debug': 'yes' });
    res.end(`${tag}\n`);
  });
  return listen(t, server);
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => { s.close(() => { resolve(); }); });
  return port;
}

interface Rig {
  readonly proxy: Proxy;
  readonly port: number;
  readonly adminPort: number;
  dst(address: string, port: number): void;
}

async function rig(t: TestContext, ini: string): Promise<Rig> {
  const adminPort = await freePort();
  const r = await startRig(t, ini, { httpEngine: true, adminPort, detectTimeout: 5_000, drainTimeout: 2_000 });
  return { proxy: r.proxy, adminPort, port: r.port, dst: r.dst };
}

interface Reply { status: number; body: string; headers: http.IncomingHttpHeaders }

function request(port: number, opts: { path?: string; method?: string; headers?: Record<string, string>; body?: string; agent?: http.Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path: opts.path ?? '/', method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: opts.agent ?? false,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body, headers: res.headers }); });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => { req.destroy(new Error('request timed out')); });
    req.end(opts.body);
  });
}

function count(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of [...values].sort()) out[v] = (out[v] ?? 0) + 1;
  return out;
}

const VIP = '10.255.0.10';

/** The validator's problems with a config text (formatted as the proxy reports them), [] when it is valid. */
function issuesOf(ini: string, file: string): string[] {
  const r = loadSnapshotDefinitions({ file, flags: new Map(), env: {}, readFile: () => Buffer.from(ini) });
  return r.ok ? [] : r.issues.map(formatIssue);
}

test('a service VIP: requests are balanced over its endpoints (round robin from the L4 balancer), not per connection', async (t) => {
  const ports = [await backend(t, 'a'), await backend(t, 'b'), await backend(t, 'c')];
  const r = await rig(t, `[service web]\naddresses = ${VIP}:80\nbalancer = round-robin\nendpoints = ${ports.map((p) => `127.0.0.1:${p}`).join(', ')}\n`);
  r.dst(VIP, 80);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => { agent.destroy(); });
  const tags: string[] = [];
  for (let i = 0; i < 9; i++) tags.push((await request(r.port, { agent })).body.trim());
  assert.deepEqual(count(tags), { a: 3, b: 3, c: 3 }, 'one keep-alive connection, three endpoints');
  const s = r.proxy.stats();
  assert.equal(s.http?.outbound['http.requests'], 9);
  assert.equal(s.services?.['web']?.httpBalancer, 'round-robin', 'the request balancer is the service\'s balancer');
  assert.equal(s.sniff['http1'], 1);
});

test('weighted routes, header mutations, and weight changes over the admin API take effect at the next request', async (t) => {
  const v1 = await backend(t, 'v1');
  const v2 = await backend(t, 'v2');
  const r = await rig(t, [
    '[service web]', `addresses = ${VIP}:80`, 'protocol = http', `endpoints = 127.0.0.1:${v1}`,
    '[service web-v1]', `endpoints = 127.0.0.1:${v1}`,
    '[service web-v2]', `endpoints = 127.0.0.1:${v2}`,
    '[route forced]', 'service = web', 'match_header = x-canary=1', 'backends = web-v2',
    'request_headers_add = x-canary-seen: yes', 'response_headers_remove = x-debug',
    '[route split]', 'service = web', 'backends = web-v1=100, web-v2=0',
  ].join('\n'));
  r.dst(VIP, 80);
  for (let i = 0; i < 5; i++) assert.equal((await request(r.port)).body, 'v1\n');
  const forced = await request(r.port, { headers: { 'x-canary': '1' } });
  assert.equal(forced.body, 'v2\n');
  assert.equal(forced.headers['x-seen-canary'], 'yes', 'the request header was added');
  assert.equal(forced.headers['x-debug'], undefined, 'the response header was removed');

  const list = await request(r.adminPort, { path: '/routes' });
  assert.equal(list.status, 200);
  assert.deepEqual(JSON.parse(list.body), {
    version: 1,
    routes: [
      { name: 'forced', service: 'web', order: 0, source: 'test.ini:9', weights: { 'web-v2': 1 } },
      { name: 'split', service: 'web', order: 0, source: 'test.ini:15', weights: { 'web-v1': 100, 'web-v2': 0 } },
    ],
  });
  for (const [body, status, reason] of [
    ['web-v1=50', 400, /give a weight for every backend/],
    ['web-v1=0,web-v2=0', 400, /at least one backend with a weight above 0/],
    ['web-v1=x', 400, /BACKEND=WEIGHT/],
    ['web-v1=50,web-v3=50', 400, /has no backend web-v3/],
  ] as const) {
    const bad = await request(r.adminPort, { path: '/routes/split/weights', method: 'POST', body });
    assert.equal(bad.status, status, body);
    assert.match(bad.body, reason);
    assert.match(bad.body, /^bad weights: [^\n]*\n$/, 'one line');
  }
  assert.equal((await request(r.adminPort, { path: '/routes/nope/weights', method: 'POST', body: 'a=1' })).status, 404);
  assert.equal((await request(r.adminPort, { path: '/routes/split/weights' })).status, 405);
  assert.equal((await request(r.port)).body, 'v1\n', 'the old table still serves');

  const ok = await request(r.adminPort, { path: '/routes/split/weights', method: 'POST', body: 'web-v1=0, web-v2=100' });
  assert.equal(ok.status, 200);
  assert.deepEqual(JSON.parse(ok.body), { route: 'split', version: 2, weights: { 'web-v1': 0, 'web-v2': 100 } });
  for (let i = 0; i < 5; i++) assert.equal((await request(r.port)).body, 'v2\n');
  assert.equal(r.proxy.stats().http?.routeTableVersion, 2);
});

test('subsets: a route sends each backend "web subset=NAME" only to the endpoints labelled so; weights change at runtime', async (t) => {
  const [a1, a2, b1] = [await backend(t, 'v1-a'), await backend(t, 'v1-b'), await backend(t, 'v2-a')];
  const r = await rig(t, [
    '[service web]', `addresses = ${VIP}:80`, 'protocol = http', 'balancer = round-robin',
    `endpoints = 127.0.0.1:${a1} subset=v1, 127.0.0.1:${a2} subset=v1 subset=stable, 127.0.0.1:${b1} subset=v2`,
    '[route forced]', 'service = web', 'match_header = x-canary=1', 'backends = web/v2',
    '[route stable]', 'service = web', 'match_path_prefix = /stable', 'backends = web subset=stable',
    '[route split]', 'service = web', 'backends = web subset=v1 weight=100, web subset=v2 weight=0',
  ].join('\n'));
  r.dst(VIP, 80);
  const bodies = async (n: number, opts: Parameters<typeof request>[1] = {}): Promise<Record<string, number>> => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push((await request(r.port, opts)).body.trim());
    return count(out);
  };
  assert.deepEqual(await bodies(6), { 'v1-a': 3, 'v1-b': 3 }, 'subset v1: round robin over its two endpoints only');
  assert.deepEqual(await bodies(3, { headers: { 'x-canary': '1' } }), { 'v2-a': 3 });
  assert.deepEqual(await bodies(3, { path: '/stable/x' }), { 'v1-b': 3 }, 'an endpoint may be in several subsets');
  const ok = await request(r.adminPort, { path: '/routes/split/weights', method: 'POST', body: 'web/v1=0, web/v2=100' });
  assert.equal(ok.status, 200, ok.body);
  assert.deepEqual(JSON.parse(ok.body), { route: 'split', version: 2, weights: { 'web/v1': 0, 'web/v2': 100 } });
  assert.deepEqual(await bodies(4), { 'v2-a': 4 });
  const web = r.proxy.stats().services?.['web'];
  assert.deepEqual(Object.keys(web?.subsets ?? {}).sort(), ['stable', 'v1', 'v2']);
  assert.equal(web?.endpoints.length, 3);
  assert.deepEqual(web?.subsets?.['v1'], [`127.0.0.1:${a1}`, `127.0.0.1:${a2}`].sort());
});

test('subsets: a subset no endpoint carries, or of a DNS service, is refused at startup with file:line', async () => {
  const lines = issuesOf([
    '[service web]', 'addresses = 10.0.0.1:80', 'endpoints = 10.1.0.1:80 subset=v1, 10.1.0.2:80 subset=v3', // 1-3
    '[service dns]', 'addresses = 10.0.0.2:80', 'discovery = dns', 'dns_name = web.internal', 'dns_port = 80', // 4-8
    '[route r1]', 'service = web', 'backends = web subset=v1 weight=9, web subset=v2 weight=1', // 9-11
    '[route r2]', 'service = dns', 'backends = dns/v1', // 12-14
  ].join('\n'), 'subsets.ini');
  {
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0] ?? '', /^subsets\.ini:11: \[route r1\] backends = .*: expected "web subset=v2": an endpoint of \[service web\] labelled subset=v2, .*\(its subsets: v1, v3\)$/);
    assert.match(lines[1] ?? '', /^subsets\.ini:14: \[route r2\] backends = "dns\/v1": expected "dns subset=v1": subsets need static endpoints labelled subset=NAME \(\[service dns\] uses discovery = dns\)$/);
  }
});

test('registry-only: a Host that matches no service gets 404 no-route; a service Host is routed; no service passes through', async (t) => {
  const app = await backend(t, 'app');
  const only = await rig(t, `[registry]\nmode = registry-only\n[service api]\nhostnames = api.test\nprotocol = http\nendpoints = 127.0.0.1:${app}\n`);
  only.dst('127.0.0.1', 9);
  const refused = await request(only.port, { headers: { host: 'other.test' } });
  assert.equal(refused.status, 404);
  assert.equal(refused.headers['x-remora-error'], 'no-route');
  assert.equal((await request(only.port, { headers: { host: 'api.test' } })).body, 'app\n');
  assert.equal(only.proxy.stats().http?.outbound['http.unknown_destination'], 1);

  const open = await rig(t, '[proxy]\nlog_level = info\n');
  open.dst('127.0.0.1', app);
  const r = await request(open.port);
  assert.equal(r.body, 'app\n');
  assert.equal(open.proxy.stats().http?.outbound['http.requests'], 1);
});

test('a service without addresses or hostnames must be a route backend', async () => {
  const lonely = issuesOf('[service lonely]\nendpoints = 127.0.0.1:1\n', 'x.ini');
  assert.equal(lonely.length, 1, lonely.join('\n'));
  assert.match(lonely[0] ?? '', /x\.ini:1: \[service lonely\]: expected addresses \(VIP:port\) and\/or hostnames .* or a \[route NAME\] whose backends name it/);
  const ok = loadSnapshotDefinitions({
    file: 'y.ini', flags: new Map(), env: {},
    readFile: () => Buffer.from('[service web]\naddresses = 10.0.0.1:80\nendpoints = 127.0.0.1:2\n[service lonely]\nendpoints = 127.0.0.1:1\n'
      + '[route r]\nservice = web\nbackends = web=1, lonely=1\n'),
  });
  assert.equal(ok.ok ? ok.definitions.services.length : -1, 2);
});

test('a route timeout answers 504 with x-remora-error; a dead endpoint is retried on another one', async (t) => {
  const hanging = http.createServer(() => undefined);
  const slow = await listen(t, hanging);
  const good = await backend(t, 'good');
  const deadServer = createNetServer();
  const dead = await listen(t, deadServer);
  deadServer.close();
  const r = await rig(t, [
    '[service slow]', `addresses = ${VIP}:81`, 'protocol = http', `endpoints = 127.0.0.1:${slow}`,
    '[route slow-r]', 'service = slow', 'timeout = 200ms',
    '[service mixed]', `addresses = ${VIP}:82`, 'protocol = http', 'balancer = round-robin', `endpoints = 127.0.0.1:${dead}, 127.0.0.1:${good}`,
  ].join('\n'));
  r.dst(VIP, 81);
  const t504 = await request(r.port);
  assert.equal(t504.status, 504);
  assert.equal(t504.headers['x-remora-error'], 'upstream-timeout');
  assert.equal(t504.body, 'upstream-timeout: upstream request timeout\n');
  r.dst(VIP, 82);
  for (let i = 0; i < 4; i++) assert.equal((await request(r.port)).body, 'good\n');
  const s = r.proxy.stats();
  assert.ok((s.http?.outbound['http.retries'] ?? 0) >= 1);
  assert.equal(s.http?.outbound['http.local_replies.upstream-timeout'], 1);
});

test('shutdown: an outbound keep-alive connection is served as usual during the drain, then reset at the deadline', async (t) => {
  // Issue 12: the app may still need outbound while it shuts down, so the outbound side is not asked to close.
  const app = await backend(t, 'app');
  const r = await rig(t, `[service web]\naddresses = ${VIP}:80\nprotocol = http\nendpoints = 127.0.0.1:${app}\n`);
  r.dst(VIP, 80);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => { agent.destroy(); });
  assert.equal((await request(r.port, { agent })).body, 'app\n');
  const sockets = Object.values(agent.freeSockets).flat();
  assert.equal(sockets.length, 1);
  const closed = once(sockets[0] as NonNullable<(typeof sockets)[0]>, 'close');
  const stopping = r.proxy.shutdown();
  const during = await request(r.port, { agent });
  assert.equal(during.body, 'app\n');
  assert.notEqual(during.headers.connection, 'close', 'outbound answers do not ask the app to close');
  await stopping;
  await closed;
  assert.equal(r.proxy.stats().errors['REMORA_ERR_DRAIN_TIMEOUT'], 1, 'the idle keep-alive connection was reset at the deadline');
});

test('an h2c service with protocol auto: the server\'s SETTINGS preface is not "server-first"; h2 goes to the engine', async (t) => {
  const http2 = await import('node:http2');
  const app = http2.createServer();
  app.on('stream', (s) => { s.respond({ ':status': 200, 'x-tag': 'h2app' }); s.end('h2app\n'); });
  const port = await listen(t, app as unknown as Server);
  const r = await rig(t, `[service web-h2]\naddresses = ${VIP}:80\nendpoints = 127.0.0.1:${port}\n`);
  r.dst(VIP, 80);
  // Connect and stay silent until the pre-dialed upstream is connected (an h2c server sends its SETTINGS at once).
  const predialed = once(app, 'session');
  const sock = createConnection({ host: '127.0.0.1', port: r.port });
  await once(sock, 'connect');
  await predialed;
  const session = http2.connect(`http://127.0.0.1:${r.port}`, { createConnection: () => sock });
  t.after(() => { session.destroy(); });
  const body = await new Promise<string>((resolve, reject) => {
    const st = session.request({ ':path': '/' });
    let b = '';
    st.setEncoding('utf8').on('data', (d: string) => { b += d; });
    st.on('end', () => { resolve(b); });
    st.on('error', reject);
  });
  assert.equal(body, 'h2app\n');
  assert.equal(r.proxy.stats().sniff['http2'], 1);
  assert.equal(r.proxy.stats().http?.outbound['http.requests'], 1);
});

test('startup validation: every section kind is checked and every problem reported at once, in file order, with file:line', async () => {
  const lines = issuesOf([
    '[service web]', 'addresses = 10.0.0.1:80', 'endpoints = 10.1.0.1:80', // 1-3
    '[service lonely]', 'endpoints = 10.1.0.2:80', // 4-5
    '[route r1]', 'service = web', 'backends = web/v2', // 6-8
    '[traffic-policy web]', 'upstream_protocol = http3', 'http_balancr = ring-hash', // 9-11
    '[routes r2]', 'service = web', // 12-13
  ].join('\n'), 'bad.ini');
  {
    assert.equal(lines.length, 5, lines.join('\n'));
    assert.match(lines[0] ?? '', /^bad\.ini:4: \[service lonely\]: expected addresses .* or a \[route NAME\] whose backends name it$/);
    assert.match(lines[1] ?? '', /^bad\.ini:8: \[route r1\] backends = "web\/v2": expected "web subset=v2": an endpoint of \[service web\] labelled subset=v2, .*\(none is labelled\)$/);
    assert.match(lines[2] ?? '', /^bad\.ini:10: \[traffic-policy web\] upstream_protocol = "http3": expected one of downstream, http1, http2$/);
    assert.match(lines[3] ?? '', /^bad\.ini:11: \[traffic-policy web\] http_balancr: expected a key of \[traffic-policy SERVICE\]/);
    assert.match(lines[4] ?? '', /^bad\.ini:12: \[routes r2\]: expected a known section/);
  }
  const bad2 = issuesOf('[service web]\naddresses = 10.0.0.1:80\nendpoints = 10.1.0.1:80\n[route r1]\nservice = web\ncolour = blue\n', 'bad2.ini');
  assert.equal(bad2.length, 1, bad2.join('\n'));
  assert.match(bad2[0] ?? '', /bad2\.ini:6: \[route r1\] colour: expected a key of \[route NAME\]/);
});
