// gRPC, WebSocket and the drain through remora on a real kernel, across two meshed pods: the client pod's outbound
// proxy and the server pod's inbound proxy both run the HTTP engine. A @grpc/grpc-js client and server (unary,
// server and client streaming, status and metadata in trailers, an error status), a ws echo (text and a 100 KiB binary
// message), and SIGTERM of the server pod's (inbound) proxy: an HTTP/1.1 request in flight completes with
// Connection: close and an h2c stream in flight completes after GOAWAY; the proxy exits 0 without resetting anything.
// (Issue 12: the drain asks clients to close on the inbound side only; the outbound side keeps serving the app, see
// proxy-drain.netns.test.ts. The probes run as uid 1337 in the client pod, so they reach the server pod directly.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { tempDir, writeConfig } from './l4-helpers.js';
import { httpStats, runL7Tool, startL7Tool, type L7Tool } from './l7-helpers.js';
import { initOk, waitForLog } from './proxy-helpers.js';
import { startProxy, type ProxyStats, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();

interface GrpcResult {
  readonly unary: Record<string, number>;
  readonly failed: { code: number; details?: string; trailers: Record<string, unknown> };
  readonly stream: { messages: number; inOrder: boolean; code: number; trailer: unknown };
  readonly upload: { code: number; text?: string; index?: number };
  readonly error?: string;
}

describe('gRPC, WebSocket and drain through two remora proxies', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let server: Pod;
  let outbound: RunningProxy;
  let inbound: RunningProxy;
  const tmp = tempDir('remora-l7-protocols-');
  let vip: (n: number) => string = () => '';
  let h1App: L7Tool;
  let h2App: L7Tool;

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    client = await mesh.addPod('client');
    server = await mesh.addPod('server');
    vip = (n) => `${mesh.prefix4}.${200 + n}`;
    await startL7Tool(server, ['grpc-server', '::', '50051', 'server']);
    await startL7Tool(server, ['ws-echo', '::', '8090']);
    h1App = await startL7Tool(server, ['http-tag', '::', '8080', 'server']);
    h2App = await startL7Tool(server, ['h2c-tag', '::', '8082', 'server-h2']);
    const config = writeConfig(tmp.dir, 'client.ini', [
      '[service grpc]', `addresses = ${vip(0)}:50051`, `endpoints = ${server.ip4}:50051`,
      '[service ws]', `addresses = ${vip(1)}:80`, `endpoints = ${server.ip4}:8090`,
      '[service slow]', `addresses = ${vip(2)}:80`, `endpoints = ${server.ip4}:8080`,
      '[service slow-h2]', `addresses = ${vip(3)}:80`, `endpoints = ${server.ip4}:8082`,
    ]);
    await initOk(client);
    await initOk(server);
    outbound = await startProxy(client, ['--config', config]);
    inbound = await startProxy(server);
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  test('gRPC (grpc-js) across pods: unary, server and client streaming, trailers, an error status', opts, async () => {
    const r = await runL7Tool<GrpcResult>(client, ['grpc-client', `${vip(0)}:50051`, '20', '50']);
    assert.equal(r.error, undefined);
    assert.deepEqual(r.unary, { ok: 20 });
    assert.equal(r.failed.code, 5, 'NOT_FOUND');
    assert.equal(r.failed.details, 'no such thing');
    assert.equal(r.failed.trailers['x-detail'], 'why', 'error metadata in trailers');
    assert.deepEqual(r.stream, { messages: 50, inOrder: true, code: 0, trailer: '50' });
    assert.deepEqual(r.upload, { code: 0, text: 'abcde', index: 5 });
    const out = await httpStats(outbound);
    const inb = await httpStats(inbound);
    assert.ok((out.outbound['http2.connections'] ?? 0) >= 1);
    assert.ok((out.outbound['http.requests'] ?? 0) >= 23, JSON.stringify(out.outbound));
    assert.ok((inb.inbound['http.requests'] ?? 0) >= 23, `the server pod's inbound engine carried the calls: ${JSON.stringify(inb.inbound)}`);
    const sniff = (await inbound.stats())['sniff'] as Record<string, number>;
    assert.ok((sniff['http2'] ?? 0) >= 1, JSON.stringify(sniff));
  });

  test('WebSocket echo through both proxies (Upgrade tunnel): 20 text messages in order and a 100 KiB binary one', opts, async () => {
    const r = await runL7Tool<{ got: number; inOrder: boolean; binaryOk: boolean; closeCode: number; error?: string }>(
      client, ['ws-client', `ws://${vip(1)}/chat`, '20']);
    assert.deepEqual(r, { got: 20, inOrder: true, binaryOk: true, closeCode: 1000 });
    assert.ok(((await httpStats(outbound)).outbound['http.tunnels'] ?? 0) >= 1);
    assert.ok(((await httpStats(inbound)).inbound['http.tunnels'] ?? 0) >= 1);
  });

  test('SIGTERM: a request in flight completes with Connection: close, an h2c stream completes after GOAWAY; exit 0', opts, async () => {
    const before = (await httpStats(inbound)).inbound['http.requests'] ?? 0;
    // The apps hold both responses until the drain has begun (SIGUSR2 releases them): no race with the clock.
    const h1 = await startL7Tool(client, ['drain-probe', `http://${server.ip4}:8080/hold`, 'h1'], 'sent', { uid: 1337 });
    const h2 = await startL7Tool(client, ['drain-probe', `http://${server.ip4}:8082/hold`, 'h2'], 'sent', { uid: 1337 });
    await waitFor('both requests in flight', async () => {
      const s = await httpStats(inbound);
      return (s.inbound['http.requests'] ?? 0) >= before + 2 ? true : undefined;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    inbound.child.kill('SIGTERM');
    await waitForLog(inbound, 'the drain began', (r) => r['event'] === 'proxy.draining');
    h1App.child.kill('SIGUSR2');
    h2App.child.kill('SIGUSR2');
    assert.deepEqual(await h1.json(), { status: 200, body: 'server\n', connection: 'close', closed: true });
    assert.deepEqual(await h2.json(), { status: 200, body: 'server-h2\n', goaway: true, closed: true });
    const code = await new Promise<number | null>((resolve) => {
      if (inbound.child.exitCode !== null) resolve(inbound.child.exitCode);
      else inbound.child.once('exit', (c) => { resolve(c); });
    });
    assert.equal(code, 0);
    const [stopped] = await waitForLog(inbound, 'the "stopped" line', (r) => r['event'] === 'proxy.stopped');
    const stats = stopped?.['stats'] as ProxyStats | undefined;
    assert.equal(stats?.errors['REMORA_ERR_DRAIN_TIMEOUT'], undefined, 'nothing was cut at the deadline');
    assert.equal(stats?.connections.active, 0);
  });
});
