// Inbound through remora on a real kernel: a caller pod (no rules) connects to a server pod that runs `remora init`
// + `remora proxy`. Default delivery (original-dst) reaches the app at the pod address it was dialed on, from
// 127.0.0.6 / ::6, and keeps an app bound to 127.0.0.1 unreachable from outside (as without the mesh); loopback
// delivery reaches such an app.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, type Pod } from './harness.js';
import { curl, curlApp, startTool, statsWhere, waitForLog } from './proxy-helpers.js';
import { remoraInit, startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();
const lockDir = mkdtempSync(join(tmpdir(), 'remora-proxy-inbound-'));
after(() => rmSync(lockDir, { recursive: true, force: true }));

async function init(pod: Pod): Promise<void> {
  const r = await remoraInit(pod, [], { REMORA_LOCK_DIR: lockDir });
  assert.equal(r.code, 0, r.stderr);
}

describe('inbound through remora', opts, () => {
  let mesh: Mesh;
  let caller: Pod;
  let server: Pod;
  let lbServer: Pod;
  let proxy: RunningProxy;
  let lbProxy: RunningProxy;

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create();
    caller = await mesh.addPod('caller');
    server = await mesh.addPod('server');
    lbServer = await mesh.addPod('lbserver');
    // Apps bound to the pod addresses only, and one bound to loopback only.
    await startTool(server, ['http-app', server.ip4, '8080', 'pod-v4']);
    await startTool(server, ['http-app', server.ip6, '8080', 'pod-v6']);
    await startTool(server, ['http-app', '127.0.0.1', '9090', 'localhost-only']);
    await startTool(lbServer, ['http-app', '127.0.0.1', '9090', 'lb-localhost-v4']);
    await startTool(lbServer, ['http-app', '::1', '9090', 'lb-localhost-v6']);
    await init(server);
    await init(lbServer);
    proxy = await startProxy(server);
    lbProxy = await startProxy(lbServer, ['--inbound-delivery', 'loopback']);
  });
  after(async () => { await mesh?.destroy(); });

  test('IPv4: the app gets the connection on the pod address it was dialed on, from 127.0.0.6', opts, async () => {
    const before = await proxy.stats();
    const view = await curlApp(caller, server.ip4, 8080);
    assert.deepEqual(view, { tag: 'pod-v4', remote: '127.0.0.6', local: server.ip4, localPort: 8080 });
    const s = await statsWhere(proxy, 'the inbound connection', (x) => x.connections.accepted === before.connections.accepted + 1
      && x.connections.active === 0);
    assert.deepEqual(s.errors, before.errors);
    await waitForLog(proxy, `inbound connection accepted, origDst ${server.ip4}:8080`,
      (r) => r['event'] === 'connection.accepted' && r['listener'] === 'inbound' && r['origDst'] === `${server.ip4}:8080`);
    // Where the proxy delivered it (the app's own view above shows the 127.0.0.6 source).
    const [closed] = await waitForLog(proxy, 'the inbound connection closed',
      (r) => r['event'] === 'connection.closed' && r['listener'] === 'inbound' && r['origDst'] === `${server.ip4}:8080`);
    assert.equal(closed?.['endpoint'], `${server.ip4}:8080`);
  });

  test('IPv6: the app gets the connection on the pod address, from ::6', opts, async () => {
    const view = await curlApp(caller, server.ip6, 8080);
    assert.deepEqual(view, { tag: 'pod-v6', remote: '::6', local: server.ip6, localPort: 8080 });
  });

  test('original-dst: an app bound to 127.0.0.1 only is not reachable from outside the pod', opts, async () => {
    const inbound = (x: Awaited<ReturnType<RunningProxy['stats']>>): Record<string, number> =>
      (x['http'] as { inbound: Record<string, number> } | undefined)?.inbound ?? {};
    const before = inbound(await proxy.stats());
    const r = await curl(caller, server.ip4, 9090);
    assert.doesNotMatch(r.body, /localhost-only/, 'the localhost-only app must not be exposed');
    // HTTP is proxied per request (http_engine = on): remora answers 503 itself, as the upstream connect failed.
    assert.equal(r.body, 'upstream-connect-failure: upstream connect failure\n');
    const s = await statsWhere(proxy, 'the failed delivery to be counted',
      (x) => (inbound(x)['http.local_replies.upstream-connect-failure'] ?? 0) === (before['http.local_replies.upstream-connect-failure'] ?? 0) + 1);
    assert.ok((inbound(s)['errors.ECONNREFUSED'] ?? 0) >= 1, 'caused by ECONNREFUSED');
    // Inside the pod the app is of course still reachable.
    assert.equal((await curlApp(server, '127.0.0.1', 9090)).tag, 'localhost-only');
  });

  test('loopback delivery: an app bound to 127.0.0.1 / ::1 is reached, from 127.0.0.6 / ::6', opts, async () => {
    assert.deepEqual(await curlApp(caller, lbServer.ip4, 9090),
      { tag: 'lb-localhost-v4', remote: '127.0.0.6', local: '127.0.0.1', localPort: 9090 });
    assert.deepEqual(await curlApp(caller, lbServer.ip6, 9090),
      { tag: 'lb-localhost-v6', remote: '::6', local: '::1', localPort: 9090 });
    await statsWhere(lbProxy, 'both inbound connections', (x) => x.connections.accepted === 2 && x.connections.active === 0);
  });
});
