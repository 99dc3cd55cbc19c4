// Reloads of a real proxy on loopback (no iptables): the config text is replaced and proxy.reload() runs what SIGHUP
// runs. A good config is swapped in (version + 1) and the next connections and requests use it while an open
// keep-alive connection goes on; a config with a problem, or one changing a [proxy] key bound at start, is refused
// with file:line and the old version keeps serving; the same config again is "unchanged"; clusters whose definition
// did not change are the same objects after a reload, with their state; admin weight changes are snapshots too.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import { test as nodeTest, type TestContext } from 'node:test';
import { startRig } from '../../support/proxy-rig.js';

const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
  nodeTest(name, { timeout: 30_000 }, fn);
};

async function backend(t: TestContext, tag: string): Promise<number> {
  const server = http.createServer((_req, res) => { res.writeHead(200, { 'x-tag': tag }); res.end(`${tag}\n`); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => { server.closeAllConnections(); server.close(); });
  return (server.address() as AddressInfo).port;
}

function get(port: number, agent: http.Agent | false = false): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }); });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => { req.destroy(new Error('timeout')); });
  });
}

const VIP = '10.255.0.20';

function config(a: number, b: number, weights: string, extra: readonly string[] = []): string {
  return [
    '[service web]', `addresses = ${VIP}:80`, `endpoints = 127.0.0.1:${a}`,
    '[service web-a]', `endpoints = 127.0.0.1:${a}`,
    '[service web-b]', `endpoints = 127.0.0.1:${b}`,
    '[route split]', 'service = web', `backends = ${weights}`,
    ...extra,
  ].join('\n');
}

test('a good reload is swapped in: the next requests use it, an open keep-alive connection goes on', async (t) => {
  const a = await backend(t, 'a');
  const b = await backend(t, 'b');
  const r = await startRig(t, config(a, b, 'web-a=100, web-b=0'), { httpEngine: true });
  r.dst(VIP, 80);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => { agent.destroy(); });
  assert.equal((await get(r.port, agent)).body, 'a\n');
  const webBefore = r.proxy.runtime.clusters.get('web');
  r.setConfig(config(a, b, 'web-a=0, web-b=100'));
  const outcome = r.proxy.reload('test');
  assert.equal(outcome.result, 'ok');
  assert.equal(r.proxy.runtime.snapshot.version, 2);
  const next = await get(r.port, agent);
  assert.equal(next.body, 'b\n', 'the next request on the same connection uses the new weights');
  assert.equal(next.reused, true, 'the keep-alive connection was not cut');
  assert.equal(r.proxy.runtime.clusters.get('web'), webBefore, 'an unchanged cluster is carried over (same object)');
  const s = r.proxy.stats();
  assert.deepEqual(s.config.reloads, { ok: 1, rejected: 0, unchanged: 0 });
  assert.equal(s.config.version, 2);
  assert.equal(s.http?.routeTableVersion, 2);
  const applied = r.logs.find((l) => l['event'] === 'config.applied');
  assert.equal(applied?.['version'], 2);
  assert.equal(r.proxy.reload('test').result, 'unchanged', 'the same text again changes nothing');
  assert.deepEqual(r.proxy.stats().config.reloads, { ok: 1, rejected: 0, unchanged: 1 });
});

test('a reload with problems is refused with every problem and its line; the old version keeps serving', async (t) => {
  const a = await backend(t, 'a');
  const b = await backend(t, 'b');
  const r = await startRig(t, config(a, b, 'web-a=100, web-b=0'), { httpEngine: true });
  r.dst(VIP, 80);
  const hash = r.proxy.runtime.snapshot.hash;
  r.setConfig(config(a, b, 'web-a=0, web-b=100', ['[service bad]', `addresses = ${VIP}:81`, 'endpoints = 127.0.0.1:1', 'balancer = fastest', 'colour = blue']));
  const outcome = r.proxy.reload('test');
  assert.equal(outcome.result, 'rejected');
  if (outcome.result !== 'rejected') return;
  assert.equal(outcome.issues.length, 2, outcome.issues.join('\n'));
  assert.match(outcome.issues[0] ?? '', /^test\.ini:14: \[service bad\] balancer = "fastest": expected one of /);
  assert.match(outcome.issues[1] ?? '', /^test\.ini:15: \[service bad\] colour: expected a key of \[service NAME\]/);
  assert.equal(r.proxy.runtime.snapshot.version, 1);
  assert.equal(r.proxy.runtime.snapshot.hash, hash);
  assert.equal((await get(r.port)).body, 'a\n', 'the old weights serve');
  const s = r.proxy.stats();
  assert.deepEqual(s.config.reloads, { ok: 0, rejected: 1, unchanged: 0 });
  assert.deepEqual(s.config.lastRejected?.issues, outcome.issues);
  const logged = r.logs.find((l) => l['event'] === 'config.rejected');
  assert.equal(logged?.['code'], 'REMORA_ERR_CONFIG_INVALID');
  assert.deepEqual(logged?.['issues'], outcome.issues);
});

test('a [proxy] key bound at start cannot change on reload; log_level can', async (t) => {
  const a = await backend(t, 'a');
  const r = await startRig(t, `[service web]\naddresses = ${VIP}:80\nendpoints = 127.0.0.1:${a}\n`, { httpEngine: true });
  r.setConfig(`[proxy]\noutbound_port = 15999\n[service web]\naddresses = ${VIP}:80\nendpoints = 127.0.0.1:${a}\n`);
  const refused = r.proxy.reload('test');
  assert.equal(refused.result, 'rejected');
  assert.match(refused.result === 'rejected' ? refused.issues[0] ?? '' : '', /^test\.ini:2: \[proxy\] outbound_port = "15999": expected .*restart the proxy/);
  // The rig overrides the ports to 0 in every load: a log_level change is the reloadable [proxy] change here.
  r.setConfig(`[proxy]\nlog_level = warn\n[service web]\naddresses = ${VIP}:80\nendpoints = 127.0.0.1:${a}\n`);
  assert.equal(r.proxy.reload('test').result, 'ok');
});

test('endpoint changes keep the cluster and its state; a changed definition replaces it; admin weights are a snapshot', async (t) => {
  const a = await backend(t, 'a');
  const b = await backend(t, 'b');
  const adminPortServer = http.createServer();
  adminPortServer.listen(0, '127.0.0.1');
  await once(adminPortServer, 'listening');
  const adminPort = (adminPortServer.address() as AddressInfo).port;
  await new Promise<void>((resolve) => { adminPortServer.close(() => { resolve(); }); });
  const r = await startRig(t, config(a, b, 'web-a=100, web-b=0'), { httpEngine: true, adminPort });
  r.dst(VIP, 80);
  const webA = r.proxy.runtime.clusters.get('web-a');
  r.setConfig(config(a, b, 'web-a=100, web-b=0').replace(`[service web-a]\nendpoints = 127.0.0.1:${a}`,
    `[service web-a]\nendpoints = 127.0.0.1:${a}, 127.0.0.1:${b}`));
  assert.equal(r.proxy.reload('test').result, 'ok');
  assert.equal(r.proxy.runtime.clusters.get('web-a'), webA, 'an endpoint change keeps the cluster object');
  assert.deepEqual(r.proxy.stats().services?.['web-a']?.endpoints.map((e) => e.endpoint).sort(), [`127.0.0.1:${a}`, `127.0.0.1:${b}`].sort());
  r.setConfig(`${config(a, b, 'web-a=100, web-b=0')}\n[traffic-policy web-a]\nmax_requests = 7\n`);
  assert.equal(r.proxy.reload('test').result, 'ok');
  const replaced = r.proxy.runtime.clusters.get('web-a');
  assert.notEqual(replaced, webA, 'a changed definition builds a new cluster');
  assert.equal(webA?.closed, true, 'and retires the old one');
  const body = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: adminPort, path: '/routes/split/weights', method: 'POST' }, (res) => {
      let d = '';
      res.setEncoding('utf8').on('data', (c: string) => { d += c; });
      res.on('end', () => { resolve(d); });
    });
    req.on('error', reject);
    req.end('web-a=0, web-b=100');
  });
  assert.deepEqual(JSON.parse(body), { route: 'split', version: 4, weights: { 'web-a': 0, 'web-b': 100 } });
  assert.equal((await get(r.port)).body, 'b\n');
  assert.equal(r.proxy.stats().config.source, 'admin:route split weights');
  assert.equal(r.proxy.runtime.clusters.get('web-a'), replaced, 'a weight change keeps every cluster');
  // The file says otherwise: a reload makes it true again.
  assert.equal(r.proxy.reload('test').result, 'ok');
  assert.equal((await get(r.port)).body, 'a\n');
  assert.equal(r.proxy.stats().config.version, 5);
});
