// Lifecycle of remora on a real kernel: many short connections leave nothing open (stats and `ss`), and SIGTERM
// drains: /ready says "draining", new outbound connections are still served (issue 12: the app may need outbound
// while it shuts down), an open connection can still finish, the process exits 0; a connection still open at the
// drain deadline is reset and counted as REMORA_ERR_DRAIN_TIMEOUT. The drain under load, POST /drain and
// /quitquitquit: proxy-drain.netns.test.ts. Also: the memory releases just after the start and after a busy period
// (src/core/idle-heap-trim.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { curl, logRecords, runTool, startTool, statsWhere, waitForLog } from './proxy-helpers.js';
import { REMORA_BIN, remoraInit, startProxy, type ProxyStats, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();
const lockDir = mkdtempSync(join(tmpdir(), 'remora-proxy-lifecycle-'));
after(() => rmSync(lockDir, { recursive: true, force: true }));

async function init(pod: Pod): Promise<void> {
  const r = await remoraInit(pod, [], { REMORA_LOCK_DIR: lockDir });
  assert.equal(r.code, 0, r.stderr);
}

/** The proxy's TCP sockets as `ss` shows them: "STATE local" for each line owned by its pid. */
async function proxySockets(pod: Pod, proxy: RunningProxy): Promise<string[]> {
  const pid = proxy.child.pid;
  assert.ok(pid !== undefined);
  const out = await pod.execOk(['ss', '-tanpH']);
  return out.split('\n').filter((l) => l.includes(`pid=${pid},`)).map((l) => {
    const [state = '', , , local = ''] = l.trim().split(/\s+/);
    return `${state} ${local}`;
  });
}

async function exited(proxy: RunningProxy): Promise<number | null> {
  await waitFor('the proxy to exit', async () => (proxy.child.exitCode !== null || proxy.child.signalCode !== null ? true : undefined),
    { timeoutMs: 30_000, intervalMs: 100 });
  return proxy.stop(); // already exited: returns its exit code without signalling again
}

/** The counters the proxy logged when it stopped (the line can arrive after the exit event). */
async function finalStats(proxy: RunningProxy): Promise<ProxyStats | undefined> {
  const [stopped] = await waitForLog(proxy, 'the "stopped" line', (r) => r['event'] === 'proxy.stopped');
  return stopped?.['stats'] as ProxyStats | undefined;
}

describe('proxy lifecycle', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let server: Pod;
  let meshed: Pod;

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create();
    client = await mesh.addPod('client');
    server = await mesh.addPod('server'); // no rules: the far end of the drain tests
    meshed = await mesh.addPod('meshed'); // rules + inbound proxy in the first test
    await startTool(server, ['http-app', '::', '8080', 'server']);
    await startTool(server, ['reply-after-end', '::', '9000']);
    await startTool(meshed, ['http-app', '::', '8080', 'meshed']);
    await init(client);
    await init(meshed);
  });
  after(async () => { await mesh?.destroy(); });

  test('1,000 short connections (outbound and inbound proxies) leave no socket open', opts, async () => {
    // Connection accounting at L4: with the HTTP engine the outbound proxy would pool its upstream connections to the
    // inbound proxy (test/netns/l7-*.netns.test.ts cover that path), so accepted would no longer be 1,000 there.
    const out = await startProxy(client, ['--http-engine', 'off']);
    const inb = await startProxy(meshed, ['--http-engine', 'off']);
    const r = await runTool<{ ok: number; failed: number; errors: Record<string, number> }>(client,
      ['many', meshed.ip4, '8080', '1000', '20'], { timeoutMs: 120_000 });
    assert.deepEqual(r, { ok: 1000, failed: 0, errors: {} });
    for (const [name, proxy] of [['outbound', out], ['inbound', inb]] as const) {
      const s = await statsWhere(proxy, `${name} proxy: 1,000 closed, none active`,
        (x) => x.connections.accepted === 1000 && x.connections.closed === 1000 && x.connections.active === 0);
      assert.deepEqual(s.errors, {}, `${name}: no errors`);
    }
    for (const [pod, proxy] of [[client, out], [meshed, inb]] as const) {
      const sockets = await waitFor(`only listeners left for the proxy in ${pod.name}`, async () => {
        const list = await proxySockets(pod, proxy);
        return list.every((l) => l.startsWith('LISTEN ')) ? list : undefined;
      }, { timeoutMs: 10_000, intervalMs: 200 });
      assert.deepEqual(sockets.sort(), ['LISTEN *:15001', 'LISTEN *:15006', 'LISTEN 127.0.0.1:15000'].sort());
    }
    assert.equal(await out.stop(), 0);
    assert.equal(await inb.stop(), 0);
  });

  test('just after the start the proxy gives memory back once: one memory.released record, RSS lower after it', opts, async () => {
    const proxy = await startProxy(client, []);
    const [rec] = await waitForLog(proxy, 'memory.released at the start', (r) => r['event'] === 'memory.released');
    assert.ok(rec !== undefined);
    assert.equal(rec['trigger'], 'start');
    assert.equal(rec['heap'], true, 'the release at the start includes V8\'s heap');
    assert.equal(rec['trimmed'], true, 'the addon\'s releaseMemory ran (not the gc() fallback) and malloc_trim returned pages');
    const before = rec['rssBeforeMb'];
    const afterMb = rec['rssAfterMb'];
    assert.ok(typeof before === 'number' && typeof afterMb === 'number' && afterMb < before, `RSS ${String(before)} -> ${String(afterMb)} MB`);
    assert.ok(typeof rec['ms'] === 'number' && rec['ms'] >= 0);
    // Quiet afterwards: the busy/quiet cycle does not release again without traffic.
    assert.equal(logRecords(proxy).filter((r) => r['event'] === 'memory.released').length, 1);
    assert.equal(await proxy.stop(), 0);
  });

  test('after a busy period and 10 s of quiet the proxy gives malloc\'s pages back (trigger idle), and keeps V8\'s heap', opts, async () => {
    const proxy = await startProxy(client, []);
    await waitForLog(proxy, 'memory.released at the start', (r) => r['event'] === 'memory.released');
    // Busy: 3,000 short connections through the outbound proxy (several hundred ms of its CPU, over 5 % of a core in
    // the trim's 5 s sampling periods), then nothing.
    const r = await runTool<{ ok: number; failed: number }>(client, ['many', server.ip4, '8080', '3000', '20'], { timeoutMs: 120_000 });
    assert.equal(r.ok, 3000);
    const released = await waitFor('a memory.released record after the traffic', async () => {
      const recs = logRecords(proxy).filter((x) => x['event'] === 'memory.released');
      return recs.length >= 2 ? recs : undefined;
    }, { timeoutMs: 40_000, intervalMs: 200 });
    const idle = released[1];
    assert.ok(idle !== undefined);
    assert.equal(idle['trigger'], 'idle');
    assert.equal(idle['heap'], false, 'the release after a short quiet leaves V8\'s heap (and the compiled request path) alone');
    assert.equal(typeof idle['trimmed'], 'boolean', 'the addon\'s releaseMemory ran (not the gc() fallback)');
    assert.ok(typeof idle['ms'] === 'number' && idle['ms'] >= 0);
    // The full release ('long-idle') waits for a minute of quiet: not within this test.
    assert.deepEqual(released.map((x) => x['trigger']), ['start', 'idle']);
    assert.equal(await proxy.stop(), 0);
  });

  test('started as 1337:1337 (the container USER) it runs as is; as another non-root uid it refuses to start', opts, async () => {
    const lines: string[] = [];
    const child = client.spawn([process.execPath, REMORA_BIN, 'proxy'], { uid: 1337 });
    child.stdout?.setEncoding('utf8').on('data', (d: string) => lines.push(d));
    const ready = await waitFor('the uid 1337 proxy to be ready', async () => {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${lines.join('')}`);
      const r = await client.exec(['curl', '-sS', '--max-time', '2', 'http://127.0.0.1:15000/stats']);
      return r.code === 0 ? JSON.parse(r.stdout) as { state: string; listeners: Record<string, { address: string }> } : undefined;
    }, { timeoutMs: 15_000, intervalMs: 100 });
    assert.equal(ready.state, 'ready');
    assert.equal(ready.listeners['outbound']?.address, '[::]:15001');
    assert.equal((await curl(client, server.ip4, 8080)).code, 0, 'forwarding works without any privilege');
    assert.doesNotMatch(lines.join(''), /switched to the proxy uid/);
    child.kill('SIGTERM');
    await waitFor('the uid 1337 proxy to exit', async () => (child.exitCode !== null ? true : undefined), { timeoutMs: 20_000 });
    assert.equal(child.exitCode, 0);

    const wrong = await client.exec([process.execPath, REMORA_BIN, 'proxy'], { uid: 1000, timeoutMs: 15_000 });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /REMORA_ERR_UID_MISMATCH/);
  });

  test('SIGTERM: /ready turns 503, new outbound connections are still served, an open one finishes, exit code 0', opts, async () => {
    const proxy = await startProxy(client, ['--drain-timeout', '60s']);
    const held = await startTool(client, ['hold', server.ip4, '9000'], { readyLine: 'holding' });
    await statsWhere(proxy, 'the held connection', (x) => x.connections.active === 1);
    proxy.child.kill('SIGTERM');
    await waitFor('/ready to say draining', async () => {
      const r = await proxy.admin('/ready');
      return r.status === 503 && r.body === 'draining' ? true : undefined;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    const served = await curl(client, server.ip4, 8080);
    assert.equal(served.code, 0, "a new outbound connection is served while draining");
    assert.equal(proxy.child.exitCode, null, 'still running while the connection is open');
    held.child.kill('SIGUSR1'); // the client sends the rest and its FIN; the server answers after the FIN
    assert.deepEqual(await held.json(), { reply: 'got 10 bytes: part1part2', end: true });
    assert.equal(await exited(proxy), 0);
    const stats = await finalStats(proxy);
    assert.equal(stats?.connections.active, 0);
    assert.equal(stats?.errors['REMORA_ERR_DRAIN_TIMEOUT'], undefined);
  });

  test('SIGTERM: a connection still open at the drain deadline is reset and counted; exit code 0', opts, async () => {
    const proxy = await startProxy(client, ['--drain-timeout', '1s']);
    const held = await startTool(client, ['hold', server.ip4, '9000'], { readyLine: 'holding' });
    await statsWhere(proxy, 'the held connection', (x) => x.connections.active === 1);
    proxy.child.kill('SIGTERM');
    assert.deepEqual(await held.json(), { reply: '', end: false, error: 'ECONNRESET' });
    assert.equal(await exited(proxy), 0);
    const stats = await finalStats(proxy);
    assert.equal(stats?.errors['REMORA_ERR_DRAIN_TIMEOUT'], 1);
    assert.equal(stats?.connections.active, 0);
  });
});
