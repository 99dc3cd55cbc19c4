// The admin API with `workers = 2` answers as with one process (docs/operations.md#workers). Two proxies with the
// same config, one with workers = 2 and one single process, each in its own pod: every admin endpoint is asked of both
// and the answers compared (status, and the body where it is the same by construction: /debug/explain's plan, the
// config dump's definitions, /routes). And while the workers are still starting (held by a preload gate the test
// opens, so the window is certain), the primary answers as a single process that has not finished starting: /ready
// 503 "starting", /stats 200 with state "starting", the config and zero counters, /stats/prometheus 200 with
// remora_ready 0, /config_dump 200; what needs a worker (/debug/explain, /certs, /routes) 503 with the reason, never
// 500.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { tempDir, writeConfig } from './l4-helpers.js';
import { sample } from './proxy-helpers.js';
import { startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();

/** Holds a worker process (REMORA_WORKER set) in its preload until the gate file exists (bounded: 30 s). */
const GATE_PRELOAD = `'use strict';
const { existsSync } = require('node:fs');
if (process.env.REMORA_WORKER !== undefined && process.env.WORKERS_TEST_GATE !== undefined) {
  const wait = new Int32Array(new SharedArrayBuffer(4));
  const until = Date.now() + 30000;
  while (!existsSync(process.env.WORKERS_TEST_GATE) && Date.now() < until) Atomics.wait(wait, 0, 0, 20);
}
`;

interface Answer { readonly status: number; readonly body: string }

/** One admin request inside the pod: method, path, optional body -> status and body. */
async function adminRequest(pod: Pod, path: string, method = 'GET', body?: string): Promise<Answer> {
  const args = ['curl', '-sS', '--max-time', '5', '-X', method, '-o', '-', '-w', '\n%{http_code}'];
  if (body !== undefined) args.push('--data-binary', body);
  const r = await pod.exec([...args, `http://127.0.0.1:15000${path}`]);
  const i = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(0, i)) };
}

describe('workers = 2: the admin API answers as one process', { ...opts, timeout: 120_000 }, () => {
  let mesh: Mesh;
  let one: Pod;
  let two: Pod;
  let server: Pod;
  let single: RunningProxy;
  let workers: RunningProxy;
  const tmp = tempDir('remora-workers-admin-');
  const gate = join(tmp.dir, 'gate');
  const preload = join(tmp.dir, 'gate-preload.cjs');
  let vip = '';
  let file1 = '';
  let file2 = '';

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    one = await mesh.addPod('one');
    two = await mesh.addPod('two');
    server = await mesh.addPod('server');
    vip = `${mesh.prefix4}.100`;
    const common = [
      '[service web]', `addresses = ${vip}:80`, 'protocol = http', `endpoints = ${server.ip4}:8080 subset=v1, ${server.ip4}:8081 subset=v2`,
      '[route web-split]', 'service = web', 'backends = web/v1=50, web/v2=50',
    ];
    file1 = writeConfig(tmp.dir, 'one.ini', ['[proxy]', 'workers = 1', ...common]);
    file2 = writeConfig(tmp.dir, 'two.ini', ['[proxy]', 'workers = 2', ...common]);
    writeFileSync(preload, GATE_PRELOAD);
    single = await startProxy(one, ['--config', file1]);
  });
  after(async () => {
    await workers?.stop('SIGKILL');
    await single?.stop('SIGKILL');
    await mesh?.destroy();
    tmp.remove();
  });

  test('while the workers start: 503 starting, /stats and /stats/prometheus from the primary, never a 500', opts, async () => {
    assert.equal(existsSync(gate), false);
    const started = startProxy(two, ['--config', file2], { env: { NODE_OPTIONS: `--require ${preload}`, WORKERS_TEST_GATE: gate } });
    try {
      const stats = await waitFor('the primary\'s admin listener', async () => {
        const r = await adminRequest(two, '/stats').catch(() => undefined);
        return r !== undefined && r.status !== 0 ? r : undefined;
      }, { timeoutMs: 15_000, intervalMs: 50 });
      assert.equal(stats.status, 200, stats.body);
      const s = JSON.parse(stats.body) as { state: string; workers: unknown[]; config: { version: number }; connections: { accepted: number }; readiness: { ready: boolean; reason: string } };
      assert.deepEqual({ state: s.state, workers: s.workers, version: s.config.version, accepted: s.connections.accepted, ready: s.readiness.ready, reason: s.readiness.reason },
        { state: 'starting', workers: [], version: 1, accepted: 0, ready: false, reason: 'starting' });
      assert.deepEqual(await adminRequest(two, '/ready'), { status: 503, body: 'starting' });
      const prom = await adminRequest(two, '/stats/prometheus');
      assert.equal(prom.status, 200, prom.body);
      assert.equal(sample(prom.body, 'remora_ready'), 0);
      assert.equal(sample(prom.body, 'remora_config_version'), 1);
      const dump = await adminRequest(two, '/config_dump');
      assert.equal(dump.status, 200, dump.body);
      assert.equal((JSON.parse(dump.body) as { version: number }).version, 1);
      const conns = await adminRequest(two, '/debug/connections');
      assert.deepEqual({ status: conns.status, count: (JSON.parse(conns.body) as { count: number }).count }, { status: 200, count: 0 });
      const explain = await adminRequest(two, `/debug/explain?dst=${vip}:80`);
      assert.equal(explain.status, 503, explain.body);
      assert.equal((JSON.parse(explain.body) as { error: string }).error, 'REMORA_ERR_WORKER');
      for (const path of ['/certs', '/routes', '/routes/web-split']) {
        const r = await adminRequest(two, path);
        assert.equal(r.status, 503, `${path}: ${r.body}`);
      }
      // Still starting: the gate held the workers through every check above.
      assert.equal((JSON.parse((await adminRequest(two, '/stats')).body) as { state: string }).state, 'starting');
    } finally {
      writeFileSync(gate, '');
    }
    workers = await started;
  });

  test('every endpoint: the same status as one process; the same plan, config and routes', opts, async () => {
    const paths = [
      '/ready', '/stats', '/stats/prometheus', '/config_dump', '/certs', '/routes', '/routes/web-split', '/routes/nope',
      '/debug/connections', `/debug/explain?dst=${vip}:80`, `/debug/explain?dst=${vip}:80&host=web&path=/x`, '/debug/explain?dst=nope',
      '/debug/explain', '/nope',
    ];
    for (const path of paths) {
      const [a, b] = await Promise.all([adminRequest(one, path), adminRequest(two, path)]);
      assert.equal(b.status, a.status, `${path}: workers = 2 answered ${b.status} (${b.body.slice(0, 200)}), one process ${a.status}`);
      assert.notEqual(b.status, 500, path);
    }
    // The plan is the same (one worker's runtime, the same snapshot): every stage and decision.
    for (const q of [`dst=${vip}:80`, `dst=${vip}:80&host=web&path=/x`, `dst=${server.ip4}:9999`]) {
      const [a, b] = await Promise.all([adminRequest(one, `/debug/explain?${q}`), adminRequest(two, `/debug/explain?${q}`)]);
      assert.equal(a.status, 200, a.body);
      // The same config but for the workers option, in another file: where a route is defined names that file.
      const pa = JSON.parse(a.body) as Record<string, unknown>;
      const pb = JSON.parse(b.body.replaceAll(file2, file1)) as Record<string, unknown>;
      assert.deepEqual(pb.stages, pa.stages, q);
      assert.deepEqual(pb.destination, pa.destination, q);
      assert.deepEqual(pb.route, pa.route, q);
      assert.equal(pb.configVersion, pa.configVersion);
    }
    const bad = JSON.parse((await adminRequest(two, '/debug/explain?dst=nope')).body) as { error: string; issues: unknown[] };
    assert.equal(bad.error, 'REMORA_ERR_USAGE');
    assert.ok(bad.issues.length > 0);
    const [d1, d2] = await Promise.all([adminRequest(one, '/config_dump'), adminRequest(two, '/config_dump')]);
    const strip = (t: string): unknown => {
      const { loadedAt: _l, source: _s, hash: _h, proxy, ...rest } = JSON.parse(t.replaceAll(file2, file1)) as Record<string, unknown> & { proxy: Record<string, unknown> };
      const { workers: _w, ...p } = proxy;
      return { ...rest, proxy: p };
    };
    assert.deepEqual(strip(d2.body), strip(d1.body), 'the same snapshot but for the workers option (so the hash) and the file');
    const [r1, r2] = await Promise.all([adminRequest(one, '/routes'), adminRequest(two, '/routes')]);
    assert.deepEqual(JSON.parse(r2.body.replaceAll(file2, file1)), JSON.parse(r1.body));
  });

  test('POST /routes/NAME/weights and POST /drain: the same answers', opts, async () => {
    for (const [path, body] of [['/routes/web-split/weights', 'web/v1=80,web/v2=20'], ['/routes/web-split/weights', 'web/v1=oops'], ['/routes/nope/weights', 'a=1']] as const) {
      const [a, b] = await Promise.all([adminRequest(one, path, 'POST', body), adminRequest(two, path, 'POST', body)]);
      assert.equal(b.status, a.status, `${path} ${body}: ${b.body} vs ${a.body}`);
    }
    const [w1, w2] = await Promise.all([adminRequest(one, '/routes/web-split'), adminRequest(two, '/routes/web-split')]);
    assert.deepEqual((JSON.parse(w2.body) as { weights: unknown }).weights, (JSON.parse(w1.body) as { weights: unknown }).weights);
    assert.deepEqual((JSON.parse(w2.body) as { weights: unknown }).weights, { 'web/v1': 80, 'web/v2': 20 });
    const [a, b] = await Promise.all([adminRequest(one, '/drain', 'POST'), adminRequest(two, '/drain', 'POST')]);
    assert.deepEqual([a.status, b.status], [200, 200]);
    await waitFor('both proxies draining', async () => {
      const [x, y] = await Promise.all([adminRequest(one, '/ready'), adminRequest(two, '/ready')]);
      return x.body === 'draining' && y.body === 'draining' ? true : undefined;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    assert.deepEqual(await adminRequest(two, '/ready'), { status: 503, body: 'draining' });
  });
});
