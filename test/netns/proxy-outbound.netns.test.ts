// Outbound through remora on a real kernel: `remora init` rules + `remora proxy` in a client pod, an HTTP app in a
// server pod. Proves the path (stats and the debug log's origDst), IPv4 on the dual-stack listener and IPv6, the
// exemptions (proxy uid, app->app over lo, excluded port and CIDR), the not-redirected guard, and that stopping the
// proxy breaks the path until `remora init --cleanup` removes the rules.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, type Pod } from './harness.js';
import { curl, curlApp, logRecords, startTool, statsWhere, waitForLog } from './proxy-helpers.js';
import { remoraInit, startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();
const lockDir = mkdtempSync(join(tmpdir(), 'remora-proxy-outbound-'));
const env = { REMORA_LOCK_DIR: lockDir };
after(() => rmSync(lockDir, { recursive: true, force: true }));

async function init(pod: Pod, args: readonly string[] = []): Promise<void> {
  const r = await remoraInit(pod, args, env);
  assert.equal(r.code, 0, `remora init ${args.join(' ')}: ${r.stderr}`);
}

describe('outbound through remora', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let server: Pod;
  let other: Pod;
  let excl: Pod;
  let proxy: RunningProxy;

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create();
    client = await mesh.addPod('client');
    server = await mesh.addPod('server');
    other = await mesh.addPod('other');
    excl = await mesh.addPod('excl');
    await startTool(server, ['http-app', '::', '8080', 'server-8080']);
    await startTool(server, ['http-app', '::', '8081', 'server-8081']);
    await startTool(other, ['http-app', '::', '8080', 'other-8080']);
    await startTool(client, ['http-app', '::', '7070', 'client-local']);
    await init(client);
    proxy = await startProxy(client);
  });
  after(async () => { await mesh?.destroy(); });

  test('IPv4 request goes through the dual-stack listener with the right original destination', opts, async () => {
    const [ready] = await waitForLog(proxy, 'remora proxy ready', (r) => r['event'] === 'proxy.ready');
    assert.deepEqual(ready?.['listeners'], ['outbound=[::]:15001', 'inbound=[::]:15006'], 'listeners are dual-stack');
    const before = await proxy.stats();
    const view = await curlApp(client, server.ip4, 8080);
    assert.equal(view.tag, 'server-8080');
    assert.equal(view.remote, `::ffff:${client.ip4}`, 'the server sees the client pod as the source');
    const after = await statsWhere(proxy, 'the outbound connection to be counted and closed',
      (s) => s.connections.accepted === before.connections.accepted + 1 && s.connections.active === 0);
    assert.ok(after.bytes.upstreamToDownstream > before.bytes.upstreamToDownstream);
    // The debug line names the original destination; the IPv4 peer arrived on the "::" listener (as ::ffff:a.b.c.d).
    await waitForLog(proxy, `connection accepted, origDst ${server.ip4}:8080 from ${client.ip4}`, (r) => r['event'] === 'connection.accepted'
      && r['listener'] === 'outbound' && r['origDst'] === `${server.ip4}:8080` && new RegExp(`^${client.ip4.replaceAll('.', '\\.')}:[1-9]\\d*$`).test(String(r['peer'])));
  });

  test('IPv6 request goes through remora with the right original destination', opts, async () => {
    const before = await proxy.stats();
    const view = await curlApp(client, server.ip6, 8080);
    assert.equal(view.tag, 'server-8080');
    assert.equal(view.remote, client.ip6);
    await statsWhere(proxy, 'the IPv6 connection to be counted',
      (s) => s.connections.accepted === before.connections.accepted + 1 && s.connections.active === 0);
    // The peer is the client pod's IPv6 address and its source port (read with the original destination).
    await waitForLog(proxy, `connection accepted, origDst [${server.ip6}]:8080 from [${client.ip6}]`,
      (r) => r['event'] === 'connection.accepted' && r['origDst'] === `[${server.ip6}]:8080`
        && /^\[[0-9a-f:]+\]:[1-9]\d*$/.test(String(r['peer'])) && String(r['peer']).startsWith(`[${client.ip6}]:`));
  });

  test('the proxy uid (1337) goes direct: no redirect, no loop', opts, async () => {
    const before = await proxy.stats();
    for (const address of [server.ip4, server.ip6]) {
      assert.equal((await curlApp(client, address, 8080, { uid: 1337 })).tag, 'server-8080');
    }
    const after = await proxy.stats();
    assert.equal(after.connections.accepted, before.connections.accepted, 'remora saw none of the uid 1337 connections');
  });

  test('app -> app inside the pod (lo, own pod address) is untouched', opts, async () => {
    const before = await proxy.stats();
    for (const address of ['127.0.0.1', '::1', client.ip4, client.ip6]) {
      assert.equal((await curlApp(client, address, 7070)).tag, 'client-local', `app -> ${address}:7070`);
    }
    assert.equal((await proxy.stats()).connections.accepted, before.connections.accepted);
  });

  test('a direct connection to a capture port is reset as REMORA_ERR_NOT_REDIRECTED, never forwarded', opts, async () => {
    const before = await proxy.stats();
    const notRedirected = before.errors['REMORA_ERR_NOT_REDIRECTED'] ?? 0;
    const attempts: [Pod, string, number, number | undefined][] = [
      [client, '127.0.0.1', 15001, undefined], // app -> lo: not redirected
      [client, '::1', 15006, 1337], // the proxy uid: not redirected
      [server, client.ip4, 15001, undefined], // from outside: captured inbound, its original destination is 15001 (loop guard)
    ];
    for (const [pod, address, port, uid] of attempts) {
      const r = await curl(pod, address, port, uid === undefined ? {} : { uid });
      assert.notEqual(r.code, 0, `${pod.name} -> ${address}:${port} must fail`);
    }
    const after = await statsWhere(proxy, 'three NOT_REDIRECTED', (s) => (s.errors['REMORA_ERR_NOT_REDIRECTED'] ?? 0) === notRedirected + 3);
    assert.equal(after.connections.active, 0);
    await waitForLog(proxy, 'three NOT_REDIRECTED warnings', (r) => r['code'] === 'REMORA_ERR_NOT_REDIRECTED', notRedirected + 3);
    const forwarded = logRecords(proxy).filter((r) => r['event'] === 'connection.accepted' && /:1500[16]$/.test(String(r['origDst'])));
    assert.deepEqual(forwarded, [], 'nothing was forwarded to a capture port');
  });

  test('an excluded outbound port and an excluded CIDR bypass the proxy', opts, async () => {
    await init(excl, ['--exclude-outbound-ports', '8081', '--exclude-outbound-cidrs', `${other.ip4}/32,${other.ip6}/128`]);
    const exclProxy = await startProxy(excl);
    const before = await exclProxy.stats();
    assert.equal((await curlApp(excl, server.ip4, 8081)).tag, 'server-8081');
    assert.equal((await curlApp(excl, server.ip6, 8081)).tag, 'server-8081');
    assert.equal((await curlApp(excl, other.ip4, 8080)).tag, 'other-8080');
    assert.equal((await curlApp(excl, other.ip6, 8080)).tag, 'other-8080');
    assert.equal((await exclProxy.stats()).connections.accepted, before.connections.accepted, 'none went through remora');
    // Control: a destination that is not excluded still goes through it.
    assert.equal((await curlApp(excl, server.ip4, 8080)).tag, 'server-8080');
    await statsWhere(exclProxy, 'the control connection', (s) => s.connections.accepted === before.connections.accepted + 1);
    assert.equal(await exclProxy.stop(), 0);
  });

  test('with remora stopped the request fails; after `remora init --cleanup` it goes direct', opts, async () => {
    assert.equal(await proxy.stop(), 0, 'SIGTERM -> exit code 0');
    const failed = await curl(client, server.ip4, 8080);
    assert.notEqual(failed.code, 0, 'redirected to a capture port nobody listens on');
    assert.notEqual((await curl(client, server.ip6, 8080)).code, 0);
    await init(client, ['--cleanup']);
    assert.equal((await curlApp(client, server.ip4, 8080)).tag, 'server-8080');
    assert.equal((await curlApp(client, server.ip6, 8080)).tag, 'server-8080');
  });
});
