// Hot reload on a real kernel: a client pod (remora init + proxy) whose config file is a Kubernetes-ConfigMap-style
// symlink (client.ini -> ..data/client.ini, ..data -> ..vN), and server pods. While one long-lived TCP connection,
// one HTTP/1.1 keep-alive connection and one h2c session carry steady traffic, the config is changed 50 times in
// ways unrelated to them (by the file watcher seeing the ..data swap, and by SIGHUP): every change is applied
// (config version + 1 each time) and not one request fails, none of the three connections is replaced. Then: a
// reload that changes route weights takes effect on the next requests; a reload with a mistake is rejected while
// traffic flows (zero failed requests, /config_dump still shows the version in force); an endpoint removed by a
// reload has its pooled connection drained while requests go on to the others; and one hash key (the client's
// address) lands on the same endpoint over TCP and over HTTP.
import assert from 'node:assert/strict';
import { mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { tempDir } from './l4-helpers.js';
import { adminCall, load, startL7Tool, type L7Tool } from './l7-helpers.js';
import { initOk } from './proxy-helpers.js';
import { startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();

interface SteadyResult {
  readonly sent: number;
  readonly ok: number;
  readonly failures: Record<string, number>;
  readonly bodies: Record<string, number>;
  readonly connections: number;
}

interface ConfigStats {
  readonly version: number;
  readonly hash: string;
  readonly reloads: { readonly ok: number; readonly rejected: number; readonly unchanged: number };
  readonly lastRejected?: { readonly issues: readonly string[] };
}

describe('hot reload through remora', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let servers: Pod[] = [];
  let proxy: RunningProxy;
  const tmp = tempDir('remora-reload-');
  let generation = 0;
  let vip: (n: number) => string = () => '';
  /** Extra source addresses of the client pod (hash keys). */
  const sources: string[] = [];

  /** The config of generation `g`: `spare` (a service nothing uses) changes every time; `extra` adds lines. */
  function config(extra: readonly string[] = [], web: readonly Pod[] = servers.slice(0, 2)): string[] {
    const [s1, s2, s3] = servers as [Pod, Pod, Pod];
    return [
      '[registry]', 'port_protocols = 81=opaque',
      '[service web]', `addresses = ${vip(0)}:80`, 'balancer = round-robin', `endpoints = ${web.map((p) => `${p.ip4}:8080`).join(', ')}`,
      '[service web-h2]', `addresses = ${vip(1)}:80`, `endpoints = ${s1.ip4}:8082, ${s2.ip4}:8082`,
      '[service echo]', `addresses = ${vip(2)}:7000`, 'protocol = opaque', `endpoints = ${s1.ip4}:7000, ${s2.ip4}:7000`,
      '[service canary]', `addresses = ${vip(3)}:80`, `endpoints = ${s1.ip4}:8080`,
      '[service canary-v1]', `endpoints = ${s1.ip4}:8080`,
      '[service canary-v2]', `endpoints = ${s3.ip4}:8080`,
      ...(extra.some((l) => l === '[route split]') ? [] : ['[route split]', 'service = canary', 'backends = canary-v1=100, canary-v2=0']),
      '[service sticky]', `addresses = ${vip(4)}:80, ${vip(4)}:81`, 'balancer = ring-hash',
      `endpoints = ${s1.ip4}:8080, ${s2.ip4}:8080, ${s3.ip4}:8080`,
      // The unrelated change: a service nothing uses, with a new endpoint port and timeout each generation.
      '[service spare]', `addresses = ${vip(9)}:80`, `endpoints = ${s3.ip4}:${20_000 + generation}`, `connect_timeout = ${1 + (generation % 7)}s`,
      ...extra,
    ];
  }

  /** Write generation `g` the way a ConfigMap update does: a new ..vN dir, then ..data swapped atomically. */
  function publish(lines: readonly string[]): void {
    generation++;
    const dir = `..v${generation}`;
    mkdirSync(join(tmp.dir, dir));
    writeFileSync(join(tmp.dir, dir, 'client.ini'), `${lines.join('\n')}\n`);
    const old = generation > 1 ? readlinkSync(join(tmp.dir, '..data')) : undefined;
    symlinkSync(dir, join(tmp.dir, '..data_tmp'));
    renameSync(join(tmp.dir, '..data_tmp'), join(tmp.dir, '..data'));
    if (old !== undefined) rmSync(join(tmp.dir, old), { recursive: true, force: true });
  }

  async function configStats(): Promise<ConfigStats> {
    return (await proxy.stats())['config'] as ConfigStats;
  }

  async function waitVersion(version: number, what: string): Promise<ConfigStats> {
    return waitFor(what, async () => {
      const c = await configStats();
      return c.version >= version ? c : undefined;
    }, { timeoutMs: 15_000, intervalMs: 50 });
  }

  async function stop(tool: L7Tool): Promise<SteadyResult> {
    tool.child.kill('SIGTERM');
    return tool.json<SteadyResult>(15_000);
  }

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    client = await mesh.addPod('client');
    servers = [await mesh.addPod('s1'), await mesh.addPod('s2'), await mesh.addPod('s3')];
    vip = (n) => `${mesh.prefix4}.${200 + n}`;
    for (const s of servers) {
      await startL7Tool(s, ['http-tag', '::', '8080', s.name]);
      await startL7Tool(s, ['h2c-tag', '::', '8082', `h2-${s.name}`]);
      await startL7Tool(s, ['echo', '::', '7000', `tcp-${s.name}`]);
    }
    for (let i = 0; i < 8; i++) {
      const a = `${mesh.prefix4}.${150 + i}`;
      await client.execOk(['ip', 'addr', 'add', `${a}/24`, 'dev', 'eth0']);
      sources.push(a);
    }
    publish(config());
    symlinkSync('..data/client.ini', join(tmp.dir, 'client.ini'));
    await initOk(client);
    proxy = await startProxy(client, ['--config', join(tmp.dir, 'client.ini')]);
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  test('50 unrelated reloads (file watcher and SIGHUP) under steady TCP, HTTP/1.1 keep-alive and h2c traffic: zero failures, no connection replaced', opts, async () => {
    const start = await configStats();
    assert.equal(start.version, 1);
    const tcp = await startL7Tool(client, ['steady', 'tcp', `${vip(2)}:7000`, '10']);
    const h1 = await startL7Tool(client, ['steady', 'h1', `http://${vip(0)}/`, '10']);
    const h2 = await startL7Tool(client, ['steady', 'h2', `http://${vip(1)}`, '10']);
    for (let i = 1; i <= 50; i++) {
      publish(config());
      // Every fifth change is also signalled (SIGHUP); the others are found by the watcher alone.
      if (i % 5 === 0) proxy.child.kill('SIGHUP');
      await waitVersion(1 + i, `config version ${1 + i}`);
    }
    const end = await configStats();
    assert.equal(end.version, 51, 'each change was applied exactly once');
    assert.equal(end.reloads.rejected, 0);
    const results = { tcp: await stop(tcp), h1: await stop(h1), h2: await stop(h2) };
    for (const [name, r] of Object.entries(results)) {
      assert.deepEqual(r.failures, {}, `${name}: no failure`);
      assert.equal(r.connections, 1, `${name}: the one connection carried everything`);
      assert.ok(r.ok >= 50 && r.ok === r.sent, `${name}: every request answered (${r.ok}/${r.sent})`);
    }
    assert.deepEqual(Object.keys(results.h1.bodies).sort(), ['s1', 's2'], 'requests on the kept connection still go to both endpoints');
  });

  test('a reload that changes route weights applies to the next requests', opts, async () => {
    const v = (await configStats()).version;
    publish(config(['[route split]', 'service = canary', 'backends = canary-v1=100, canary-v2=0']));
    await waitVersion(v + 1, 'the split route');
    assert.deepEqual((await load(client, `http://${vip(3)}/`, 20, 4)).bodies, { s1: 20 });
    publish(config(['[route split]', 'service = canary', 'backends = canary-v1=0, canary-v2=100']));
    await waitVersion(v + 2, 'the new weights');
    assert.deepEqual((await load(client, `http://${vip(3)}/`, 20, 4)).bodies, { s3: 20 });
  });

  test('a reload with a mistake is rejected while traffic flows: zero failed requests, the version in force stays', opts, async () => {
    const before = await configStats();
    const h1 = await startL7Tool(client, ['steady', 'h1', `http://${vip(0)}/`, '10']);
    publish(config(['[service broken]', `addresses = ${vip(5)}:80`, 'endpoints = not-an-address', 'balancer = fastest']));
    const rejected = await waitFor('the rejection', async () => {
      const c = await configStats();
      return c.reloads.rejected > before.reloads.rejected ? c : undefined;
    }, { timeoutMs: 15_000 });
    assert.equal(rejected.version, before.version, 'the last good config keeps serving');
    assert.equal(rejected.hash, before.hash);
    assert.ok((rejected.lastRejected?.issues ?? []).some((i) => /client\.ini:\d+: \[service broken\] balancer/.test(i)),
      JSON.stringify(rejected.lastRejected));
    const dump = JSON.parse((await adminCall(client, '/config_dump')).body) as { version: number; hash: string; services: { name: string }[] };
    assert.equal(dump.version, before.version);
    assert.equal(dump.hash, before.hash);
    assert.equal(dump.services.some((s) => s.name === 'broken'), false);
    const r = await stop(h1);
    assert.deepEqual(r.failures, {});
    assert.equal(r.connections, 1);
    assert.ok(r.ok > 0 && r.ok === r.sent);
    publish(config());
    await waitVersion(before.version + 1, 'a good config after the bad one');
  });

  test('an endpoint removed by a reload drains: its pooled connection closes, requests go on to the others', opts, async () => {
    const [s1, s2] = servers as [Pod, Pod];
    const h1 = await startL7Tool(client, ['steady', 'h1', `http://${vip(0)}/`, '10']);
    const upstreamTo = async (pod: Pod): Promise<number> => {
      const r = await client.exec(['ss', '-Htn', 'state', 'established', 'dst', `${pod.ip4}:8080`]);
      return r.stdout.split('\n').filter((l) => l.trim() !== '').length;
    };
    await waitFor('pooled connections to both endpoints', async () => ((await upstreamTo(s2)) > 0 && (await upstreamTo(s1)) > 0 ? true : undefined));
    const v = (await configStats()).version;
    publish(config([], [s1]));
    await waitVersion(v + 1, 'the config without s2');
    await waitFor('the connection to the removed endpoint closed', async () => ((await upstreamTo(s2)) === 0 ? true : undefined),
      { timeoutMs: 15_000, intervalMs: 100 });
    const requests = async (): Promise<number> => ((await proxy.stats())['http'] as { outbound: Record<string, number> }).outbound['http.requests'] ?? 0;
    const after = await requests();
    await waitFor('requests after the drain', async () => ((await requests()) >= after + 20 ? true : undefined), { timeoutMs: 15_000 });
    const r = await stop(h1);
    assert.deepEqual(r.failures, {});
    assert.equal(r.connections, 1, 'the client connection was not cut');
    assert.ok((r.bodies['s1'] ?? 0) > 0);
    const s = await proxy.stats();
    const web = (s['services'] as Record<string, { endpoints: { endpoint: string }[] }>)['web'];
    assert.deepEqual(web?.endpoints.map((e) => e.endpoint), [`${s1.ip4}:8080`]);
    publish(config());
    await waitVersion(v + 2, 'web with both endpoints again');
  });

  test('one hash key lands on one endpoint over TCP (L4) and over HTTP (L7)', opts, async () => {
    const owners: Record<string, string> = {};
    for (const src of sources) {
      const tcp = new Set<string>();
      const http = new Set<string>();
      for (let i = 0; i < 5; i++) {
        // :81 is declared opaque: the connection is balanced at L4 (ring-hash on the client's address).
        const a = await client.exec(['curl', '-sS', '--max-time', '5', '--interface', src, `http://${vip(4)}:81/`]);
        assert.equal(a.code, 0, a.stderr);
        tcp.add(a.stdout.trim());
        // :80 is HTTP: each request is balanced at L7 by the same ring and the same key.
        const b = await client.exec(['curl', '-sS', '--max-time', '5', '--interface', src, `http://${vip(4)}/`]);
        assert.equal(b.code, 0, b.stderr);
        http.add(b.stdout.trim());
      }
      assert.equal(tcp.size, 1, `${src} always reaches one endpoint over TCP: ${[...tcp].join(', ')}`);
      assert.deepEqual([...http], [...tcp], `${src}: the same endpoint over HTTP as over TCP`);
      owners[src] = [...tcp][0] as string;
    }
    assert.ok(new Set(Object.values(owners)).size >= 2, `the keys are spread over the endpoints: ${JSON.stringify(owners)}`);
  });
});
