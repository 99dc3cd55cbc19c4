import { MeshStats } from '../../../src/core/mesh-stats.js';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { AdminServer, isLoopbackPeer, type ProxyState } from '../../../src/admin/admin-server.js';
import { RemoraError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/log.js';
import { Stats } from '../../../src/core/stats.js';

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; allow: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, allow: res.headers.allow }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('GET /ready follows the state; /stats is JSON; unknown paths 404; other methods 405', { timeout: 20_000 }, async (t) => {
  let state: ProxyState = 'starting';
  const stats = new Stats();
  stats.listener('outbound').accepted = 3;
  stats.countError('REMORA_ERR_NOT_REDIRECTED');
  const config = { version: 3, hash: 'abc', source: 'file:/etc/remora.ini', loadedAt: '2026-12-03T00:00:00.000Z', reloads: { ok: 2, rejected: 1, unchanged: 0 } };
  const admin = new AdminServer({
    host: '127.0.0.1', port: 0, log: silentLogger(), state: () => state, stats: () => ({ ...stats.snapshot(state), config, ...new MeshStats().json() }),
    configDump: () => ({ version: 3, hash: 'abc' }),
  });
  const { port } = await admin.listen();
  t.after(() => admin.close());

  assert.deepEqual(await get(port, '/ready'), { status: 503, body: 'starting', allow: undefined });
  state = 'ready';
  assert.deepEqual(await get(port, '/ready'), { status: 200, body: 'ready', allow: undefined });
  state = 'draining';
  assert.deepEqual(await get(port, '/ready?verbose=1'), { status: 503, body: 'draining', allow: undefined });

  const s = await get(port, '/stats');
  assert.equal(s.status, 200);
  const json = JSON.parse(s.body) as { connections: { accepted: number }; errors: Record<string, number>; state: string };
  assert.equal(json.connections.accepted, 3);
  assert.equal(json.errors['REMORA_ERR_NOT_REDIRECTED'], 1);
  assert.equal(json.state, 'draining');
  assert.deepEqual((JSON.parse(s.body) as { config: unknown }).config, config);

  const dump = await get(port, '/config_dump');
  assert.equal(dump.status, 200);
  assert.deepEqual(JSON.parse(dump.body), { version: 3, hash: 'abc' });
  assert.equal((await get(port, '/config_dump', 'POST')).status, 405);

  assert.equal((await get(port, '/nope')).status, 404);
  assert.equal((await get(port, '/')).status, 404);
  const post = await get(port, '/ready', 'POST');
  assert.equal(post.status, 405);
  assert.equal(post.allow, 'GET, HEAD');
  assert.equal((await get(port, '/stats', 'DELETE')).status, 405);
});

test('a body no worker can give yet (REMORA_ERR_WORKER) is 503 with the reason and Retry-After, not 500', { timeout: 20_000 }, async (t) => {
  const noWorker = (): never => { throw new RemoraError('REMORA_ERR_WORKER', 'no worker answered the certs report'); };
  const admin = new AdminServer({
    host: '127.0.0.1', port: 0, log: silentLogger(), state: () => 'starting', stats: () => { throw new Error('boom'); },
    configDump: () => ({}), certs: noWorker, connections: () => Promise.reject(new RemoraError('REMORA_ERR_WORKER', 'no worker is running')),
  });
  const { port } = await admin.listen();
  t.after(() => admin.close());
  const certs = await new Promise<{ status: number; body: string; retry: string | undefined }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/certs' }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, retry: res.headers['retry-after'] }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.deepEqual(certs, { status: 503, body: 'unavailable: no worker answered the certs report\n', retry: '1' });
  assert.deepEqual(await get(port, '/debug/connections'), { status: 503, body: 'unavailable: no worker is running\n', allow: undefined });
  assert.equal((await get(port, '/stats')).status, 500, 'any other failure is still a 500');
});

test('a handler that throws fails that request with 500; the admin server keeps answering', { timeout: 20_000 }, async (t) => {
  const admin = new AdminServer({
    host: '127.0.0.1', port: 0, log: silentLogger(), state: () => 'ready', stats: () => { throw new Error('boom'); },
    configDump: () => ({}), certs: () => ({ identity: null }),
  });
  const { port } = await admin.listen();
  t.after(() => admin.close());
  const failed = await get(port, '/stats');
  assert.equal(failed.status, 500);
  assert.equal((await get(port, '/ready')).status, 200);
  const certs = await get(port, '/certs');
  assert.equal(certs.status, 200);
  assert.deepEqual(JSON.parse(certs.body), { identity: null });
});

test('/ready answers the readiness reason; POST /drain and /quitquitquit act after answering; other methods 405', { timeout: 20_000 }, async (t) => {
  let readiness = { ready: false, reason: 'not ready: loopback-ipv4 redirect probe failed: ECONNREFUSED' };
  const calls: string[] = [];
  const admin = new AdminServer({
    host: '127.0.0.1', port: 0, log: silentLogger(), state: () => 'ready',
    stats: () => ({ ...new Stats().snapshot('ready'), config: { version: 1, hash: 'h', source: 's', loadedAt: '', reloads: { ok: 0, rejected: 0, unchanged: 0 } }, ...new MeshStats().json() }),
    configDump: () => ({}),
    readiness: () => readiness,
    drain: () => { calls.push('drain'); },
    quit: () => { calls.push('quit'); },
  });
  const { port } = await admin.listen();
  t.after(() => admin.close());
  assert.deepEqual(await get(port, '/ready'), { status: 503, body: readiness.reason, allow: undefined });
  readiness = { ready: true, reason: 'ready' };
  assert.deepEqual(await get(port, '/ready'), { status: 200, body: 'ready', allow: undefined });

  assert.deepEqual(await get(port, '/drain'), { status: 405, body: 'method not allowed\n', allow: 'POST' });
  assert.deepEqual(await get(port, '/quitquitquit'), { status: 405, body: 'method not allowed\n', allow: 'POST' });
  assert.deepEqual(calls, []);
  assert.deepEqual(await get(port, '/drain', 'POST'), { status: 200, body: 'draining\n', allow: undefined });
  // The action runs once the answer is out (setImmediate after 'finish'): wait for it, bounded.
  for (let i = 0; i < 100 && calls.length < 1; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, ['drain']);
  assert.deepEqual(await get(port, '/quitquitquit', 'POST'), { status: 200, body: 'OK: draining, then exiting\n', allow: undefined });
  for (let i = 0; i < 100 && calls.length < 2; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, ['drain', 'quit']);
});

test('admin changes are accepted only from loopback peers (IPv4 127/8, ::1, IPv4-mapped)', () => {
  for (const a of ['127.0.0.1', '127.0.0.6', '127.255.0.1', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::FFFF:127.0.0.1']) {
    assert.equal(isLoopbackPeer(a), true, a);
  }
  for (const a of [undefined, '', '10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', '::2', 'fe80::1', '1.127.0.0', '::127.0.0.1']) {
    assert.equal(isLoopbackPeer(a), false, String(a));
  }
});
