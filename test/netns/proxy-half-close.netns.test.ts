// Half-close and reset through remora on a real kernel (client pod with init + proxy, servers in a server pod):
// a client that shuts its write side after sending still receives the whole reply; a server that closes first is
// seen as closed by the client, which can still send on its half; a server reset reaches the client as a reset.
// Run with both forwarders (tcp_forwarder = native, the default, and node), and with the native one and the HTTP engine
// off, where its thread also accepts the connections (the native accept); /stats says which one carried the bytes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, type Pod } from './harness.js';
import { runTool, startTool, statsWhere } from './proxy-helpers.js';

/** The sum of every series of a metric in an exposition. */
function total(text: string, metric: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${metric}{`) || line.startsWith(`${metric} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
import { remoraInit, startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();
const lockDir = mkdtempSync(join(tmpdir(), 'remora-proxy-half-close-'));
after(() => rmSync(lockDir, { recursive: true, force: true }));

interface ClientResult {
  readonly reply: string;
  readonly end: boolean;
  readonly error?: string;
}

/** The outbound listener's forwarder counters in /stats. */
function forwarderStats(s: Readonly<Record<string, unknown>>): { native: number; nodeFallbacks: number; accepts: number } | undefined {
  const listeners = s['listeners'] as Record<string, { forwarder?: { native: number; nodeFallbacks: number; accepts: number } }> | undefined;
  return listeners?.['outbound']?.forwarder;
}

const VARIANTS = [
  { forwarder: 'native', engine: 'on' }, { forwarder: 'node', engine: 'on' }, { forwarder: 'native', engine: 'off' },
] as const;

for (const { forwarder, engine } of VARIANTS) describe(`half-close and reset through remora (tcp_forwarder = ${forwarder}, http_engine = ${engine})`, opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let server: Pod;
  let proxy: RunningProxy;

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create();
    client = await mesh.addPod('client');
    server = await mesh.addPod('server');
    await startTool(server, ['reply-after-end', '::', '9000']);
    await startTool(server, ['reset-on-data', '::', '9002']);
    const r = await remoraInit(client, [], { REMORA_LOCK_DIR: lockDir });
    assert.equal(r.code, 0, r.stderr);
    proxy = await startProxy(client, ['--tcp-forwarder', forwarder, '--http-engine', engine]);
  });
  after(async () => { await mesh?.destroy(); });

  test('a client that ends after sending still receives the whole reply (IPv4 and IPv6)', opts, async () => {
    const big = 'x'.repeat(64 * 1024);
    for (const [address, text] of [[server.ip4, 'hello-half-close'], [server.ip6, 'hello-v6'], [server.ip4, big]] as const) {
      const r = await runTool<ClientResult>(client, ['send-then-end', address, '9000', text]);
      assert.equal(r.error, undefined);
      assert.equal(r.end, true, 'the client saw the server\'s FIN after the reply');
      assert.equal(r.reply, `got ${text.length} bytes: ${text}`);
    }
    const s = await statsWhere(proxy, 'three closed connections', (x) => x.connections.accepted === 3 && x.connections.active === 0);
    assert.deepEqual(s.errors, {});
    assert.ok(s.bytes.downstreamToUpstream >= 64 * 1024 && s.bytes.upstreamToDownstream >= 64 * 1024);
    // Exactly one forwarder carried the three connections; with the native one and no HTTP engine, its thread also
    // accepted them.
    const accepts = forwarder === 'native' && engine === 'off' ? 3 : 0;
    assert.deepEqual(forwarderStats(s), forwarder === 'native' ? { native: 3, nodeFallbacks: 0, accepts } : { native: 0, nodeFallbacks: 0, accepts: 0 });
    // The TCP metrics saw the three connections open and close, and their bytes each way.
    const prom = (await proxy.admin('/stats/prometheus')).body;
    assert.equal(total(prom, 'istio_tcp_connections_opened_total'), 3);
    assert.equal(total(prom, 'istio_tcp_connections_closed_total'), 3);
    assert.equal(total(prom, 'istio_tcp_sent_bytes_total'), s.bytes.upstreamToDownstream, 'sent: to the client (Istio\'s sense)');
    assert.equal(total(prom, 'istio_tcp_received_bytes_total'), s.bytes.downstreamToUpstream);
  });

  test('a server that closes first is seen as closed; the client can still send until it ends', opts, async () => {
    for (const [address, port] of [[server.ip4, '9001'], [server.ip6, '9003']] as const) {
      const srv = await startTool(server, ['close-first', '::', port]);
      const r = await runTool<ClientResult>(client, ['read-until-end-then-send', address, port, 'late-data']);
      assert.deepEqual(r, { reply: 'bye', end: true });
      assert.deepEqual(await srv.json(), { serverReceivedAfterItsFin: 'late-data' });
    }
    const s = await statsWhere(proxy, 'no open connection', (x) => x.connections.active === 0 && x.connections.closed === x.connections.accepted);
    assert.deepEqual(s.errors, {});
  });

  test('a server reset reaches the client as a reset and is counted as REMORA_ERR_UPSTREAM_RESET', opts, async () => {
    const r = await runTool<ClientResult>(client, ['send-then-end', server.ip4, '9002', 'boom']);
    assert.equal(r.error, 'ECONNRESET');
    assert.equal(r.end, false);
    const s = await statsWhere(proxy, 'the reset to be counted', (x) => x.errors['REMORA_ERR_UPSTREAM_RESET'] === 1 && x.connections.active === 0);
    assert.equal((s['errorCauses'] as Record<string, number>)['ECONNRESET'], 1);
  });
});
