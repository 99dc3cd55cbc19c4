// L4 balancing through remora on a real kernel: three server pods behind VIPs of the client pod's [service NAME]
// sections, reached with curl (HTTP, detected and forwarded as opaque TCP: http_engine = off) and
// redis-cli (port 6379: opaque by default). Round robin spreads evenly, ring-hash keeps one source on one endpoint,
// weights are respected; a killed endpoint is ejected on connect failures while its traffic is retried on the
// others, and comes back once it recovers; active TCP health checks take an endpoint out and back without traffic;
// a registry-only proxy refuses destinations no service describes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { countBy, curlTag, endpointRow, l4Stats, l4StatsWhere, tempDir, writeConfig } from './l4-helpers.js';
import { curl, initOk, startTool, type Tool } from './proxy-helpers.js';
import { startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();

describe('L4 balancing through remora', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let client2: Pod;
  let servers: Pod[] = [];
  let proxy: RunningProxy;
  let proxy2: RunningProxy;
  const tmp = tempDir('remora-l4-balancing-');
  const apps = new Map<string, Tool>();
  let vip: (n: number) => string = () => '';

  const startApp = async (pod: Pod, port: number): Promise<void> => {
    apps.set(`${pod.name}:${port}`, await startTool(pod, ['http-app', '::', String(port), pod.name]));
  };
  const stopApp = async (pod: Pod, port: number): Promise<void> => {
    const tool = apps.get(`${pod.name}:${port}`);
    assert.ok(tool !== undefined);
    const exited = new Promise((r) => tool.child.once('exit', r));
    tool.child.kill('SIGTERM');
    await exited;
  };

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    client = await mesh.addPod('client');
    client2 = await mesh.addPod('client2');
    servers = [await mesh.addPod('s1'), await mesh.addPod('s2'), await mesh.addPod('s3')];
    vip = (n) => `${mesh.prefix4}.${200 + n}`;
    for (const s of servers) {
      for (const port of [8080, 8090, 8091]) await startApp(s, port);
      s.spawn(['redis-server', '--port', '6379', '--bind', s.ip4, '--protected-mode', 'no', '--save', '', '--appendonly', 'no']);
    }
    for (const s of servers) {
      await waitFor(`redis-server in ${s.name}`, async () => ((await s.exec(['redis-cli', '-h', s.ip4, 'ping'])).stdout.trim() === 'PONG' ? true : undefined),
        { timeoutMs: 15_000, intervalMs: 100 });
      await s.execOk(['redis-cli', '-h', s.ip4, 'set', 'name', s.name]);
    }
    const eps = (port: number, attrs: readonly string[] = []): string =>
      `endpoints = ${servers.map((s, i) => `${s.ip4}:${port}${attrs[i] === undefined ? '' : ` ${attrs[i]}`}`).join(', ')}`;
    const config = writeConfig(tmp.dir, 'client.ini', [
      // L4 behaviour under test: HTTP is detected and forwarded as opaque TCP per connection, not by the HTTP engine.
      '[proxy]', 'http_engine = off',
      '[service web-rr]', `addresses = ${vip(0)}:80`, 'balancer = round-robin', eps(8080),
      '[service web-hash]', `addresses = ${vip(1)}:80`, 'balancer = ring-hash', eps(8080),
      '[service web-weighted]', `addresses = ${vip(2)}:80`, 'balancer = round-robin', eps(8080, ['weight=3', 'weight=1', 'weight=1']),
      '[service redis]', `addresses = ${vip(3)}:6379`, 'balancer = round-robin', eps(6379),
      '[service web-eject]', `addresses = ${vip(4)}:80`, 'balancer = round-robin', eps(8090),
      'eject_after_failures = 1', 'eject_base_time = 1s', 'eject_max_time = 2s', 'connect_attempts = 3', 'connect_timeout = 2s',
      '[service web-hc]', `addresses = ${vip(5)}:80`, 'balancer = round-robin', eps(8091), 'eject_after_failures = 0',
      'health_check = tcp', 'health_interval = 300ms', 'health_timeout = 200ms', 'healthy_threshold = 2', 'unhealthy_threshold = 2',
    ]);
    const config2 = writeConfig(tmp.dir, 'client2.ini', [
      '[proxy]', 'http_engine = off',
      '[registry]', 'mode = registry-only',
      '[service web]', `addresses = ${vip(0)}:80`, 'balancer = round-robin', eps(8080),
    ]);
    await initOk(client);
    await initOk(client2);
    proxy = await startProxy(client, ['--config', config]);
    proxy2 = await startProxy(client2, ['--config', config2]);
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  test('round robin: curl through one VIP spreads evenly over the three pods', opts, async () => {
    const tags: string[] = [];
    for (let i = 0; i < 9; i++) tags.push(await curlTag(client, vip(0), 80));
    assert.deepEqual(countBy(tags), { s1: 3, s2: 3, s3: 3 });
    const s = await l4StatsWhere(proxy, 'connections closed and load released',
      (x) => x.connections.active === 0 && (x.services?.['web-rr']?.endpoints ?? []).every((e) => e.active === 0));
    assert.ok((s.sniff['http1'] ?? 0) >= 9, `curl was detected as HTTP/1: ${JSON.stringify(s.sniff)}`);
    assert.deepEqual(s.errors, {});
  });

  test('ring-hash: every connection from the same source lands on the same endpoint', opts, async () => {
    const tags: string[] = [];
    for (let i = 0; i < 8; i++) tags.push(await curlTag(client, vip(1), 80));
    assert.equal(new Set(tags).size, 1, `one endpoint for one source: ${tags.join(' ')}`);
  });

  test('weights 3:1:1 under round robin: exactly 6:2:2 over two cycles', opts, async () => {
    const tags: string[] = [];
    for (let i = 0; i < 10; i++) tags.push(await curlTag(client, vip(2), 80));
    assert.deepEqual(countBy(tags), { s1: 6, s2: 2, s3: 2 });
  });

  test('redis-cli through the VIP (port 6379, opaque without detection) is balanced too', opts, async () => {
    const before = await l4Stats(proxy);
    const names: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await client.exec(['redis-cli', '-h', vip(3), '-p', '6379', 'get', 'name']);
      assert.equal(r.code, 0, r.stderr);
      names.push(r.stdout.trim());
    }
    assert.deepEqual(countBy(names), { s1: 2, s2: 2, s3: 2 });
    const s = await l4StatsWhere(proxy, 'the redis connections', (x) => x.connections.active === 0);
    assert.equal((s.sniff['declared:opaque'] ?? 0) - (before.sniff['declared:opaque'] ?? 0), 6, 'no detection on 6379');
  });

  test('a killed endpoint is ejected, its connections go to the others, and it comes back after it recovers', opts, async () => {
    const s2 = servers[1] as Pod;
    await stopApp(s2, 8090);
    const tags: string[] = [];
    for (let i = 0; i < 9; i++) tags.push(await curlTag(client, vip(4), 80));
    assert.ok(!tags.includes('s2'), `no answer from the stopped app: ${tags.join(' ')}`);
    assert.deepEqual(new Set(tags), new Set(['s1', 's3']));
    const s = await l4Stats(proxy);
    assert.ok((endpointRow(s, 'web-eject', `${s2.ip4}:8090`)?.ejectionCount ?? 0) >= 1, 'ejected at least once');
    assert.ok((s.services?.['web-eject']?.connectFailures ?? 0) >= 1);
    assert.equal(s.errors['REMORA_ERR_UPSTREAM_CONNECT'], undefined, 'every failed attempt was retried elsewhere');
    await waitForLog(proxy, 'the ejection is logged', `${s2.ip4}:8090`);

    await startApp(s2, 8090);
    await waitFor('s2 answering through the VIP again', async () => ((await curlTag(client, vip(4), 80)) === 's2' ? true : undefined),
      { timeoutMs: 20_000, intervalMs: 200 });
    const back = await l4Stats(proxy);
    assert.equal(endpointRow(back, 'web-eject', `${s2.ip4}:8090`)?.inRotation, true);
  });

  test('active TCP health checks take a dead endpoint out without traffic, and back in once it listens again', opts, async () => {
    const s3 = servers[2] as Pod;
    const key = `${s3.ip4}:8091`;
    await stopApp(s3, 8091);
    await l4StatsWhere(proxy, 's3 marked unhealthy by the probes', (x) => endpointRow(x, 'web-hc', key)?.healthy === false);
    const tags: string[] = [];
    for (let i = 0; i < 6; i++) tags.push(await curlTag(client, vip(5), 80));
    assert.deepEqual(countBy(tags), { s1: 3, s2: 3 });
    await startApp(s3, 8091);
    await l4StatsWhere(proxy, 's3 healthy again', (x) => endpointRow(x, 'web-hc', key)?.healthy === true && endpointRow(x, 'web-hc', key)?.inRotation === true);
    const again: string[] = [];
    for (let i = 0; i < 3; i++) again.push(await curlTag(client, vip(5), 80));
    assert.deepEqual(countBy(again), { s1: 1, s2: 1, s3: 1 });
  });

  test('registry-only: a destination no service describes is refused; the VIP works', opts, async () => {
    assert.equal((await curlTag(client2, vip(0), 80)).startsWith('s'), true);
    const direct = await curl(client2, (servers[0] as Pod).ip4, 8080);
    assert.notEqual(direct.code, 0, 'unknown destination refused');
    const s = await l4StatsWhere(proxy2, 'the refusal counted', (x) => (x.errors['REMORA_ERR_UNKNOWN_DESTINATION'] ?? 0) >= 1);
    assert.equal(s.errors['REMORA_ERR_UNKNOWN_DESTINATION'], 1);
  });
});

async function waitForLog(proxy: RunningProxy, what: string, endpoint: string): Promise<void> {
  await waitFor(what, async () => (proxy.logs().some((l) => l.includes('endpoint ejected') && l.includes(endpoint)) ? true : undefined),
    { timeoutMs: 10_000, intervalMs: 50 });
}
