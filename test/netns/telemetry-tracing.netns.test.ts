// Tracing on a real kernel: a client pod and a server pod, each with `remora init` and `remora proxy` (identities
// from a test CA, mesh mTLS between the sidecars, tracing = on with every undecided request sampled), an app on the
// server that answers with the headers it received, and a third pod running an OTLP/HTTP JSON receiver (a real HTTP
// server printing each span it is sent). W3C traceparent (tracestate kept), B3 multi-header (a 64-bit trace id) and
// the single b3 header arrive at the app carrying the server sidecar's span as parent; that span's parent is the
// client sidecar's span, whose parent is the caller's; the spans of both sidecars share the trace id and carry the
// request's fields. A request that brings no trace context starts one; a caller's "not sampled" is followed (its
// headers go on, no span is exported). With the collector gone, requests still succeed and the sidecars count the
// dropped spans.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spiffe, TestCa } from '../support/mesh-pki.js';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { tempDir, writeConfig } from './l4-helpers.js';
import { startL7Tool, type L7Tool } from './l7-helpers.js';
import { initOk } from './proxy-helpers.js';
import { startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();
const CLIENT_ID = spiffe('shop', 'client');
const SERVER_ID = spiffe('shop', 'server');
const SERVER_KIND = 2;
const CLIENT_KIND = 3;

interface ReceivedSpan {
  readonly service: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | null;
  readonly name: string;
  readonly kind: number;
  readonly start: string;
  readonly end: string;
  readonly status: number;
  readonly attrs: Record<string, string>;
}

describe('tracing: W3C and B3 propagated through two sidecars, spans exported over OTLP/HTTP JSON', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let server: Pod;
  let collectorPod: Pod;
  let receiver: L7Tool;
  let clientProxy: RunningProxy;
  let serverProxy: RunningProxy;
  const tmp = tempDir('remora-tracing-');
  const vip = (): string => `${mesh.prefix4}.200`;

  /** GET through the client sidecar with these headers; the app's view of the headers. */
  async function call(headers: readonly string[]): Promise<Record<string, string>> {
    const r = await client.exec(['curl', '-sS', '--max-time', '10', '-f', ...headers.flatMap((h) => ['-H', h]), `http://${vip()}/orders/7`], { timeoutMs: 15_000 });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, string>;
  }

  const spans = (): ReceivedSpan[] => receiver.lines().filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ReceivedSpan);

  /** The two spans (client sidecar's, server sidecar's) of a trace, once both arrived. */
  async function spansOf(traceId: string): Promise<{ c: ReceivedSpan; s: ReceivedSpan }> {
    return waitFor(`the spans of trace ${traceId}`, async () => {
      const mine = spans().filter((s) => s.traceId === traceId);
      const c = mine.find((s) => s.kind === CLIENT_KIND);
      const s = mine.find((x) => x.kind === SERVER_KIND);
      if (mine.length > 2) throw new Error(`more than 2 spans for ${traceId}: ${JSON.stringify(mine)}`);
      return c !== undefined && s !== undefined ? { c, s } : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100 });
  }

  /** A remora_* sample from a sidecar's exposition. */
  async function sample(proxy: RunningProxy, line: string): Promise<number | undefined> {
    const body = (await proxy.admin('/stats/prometheus')).body;
    const found = body.split('\n').find((l) => l.startsWith(`${line} `));
    return found === undefined ? undefined : Number(found.slice(line.length + 1));
  }

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    client = await mesh.addPod('client');
    server = await mesh.addPod('server');
    collectorPod = await mesh.addPod('collector');
    await startL7Tool(server, ['header-echo', '::', '8080']);
    receiver = await startL7Tool(collectorPod, ['otlp-receiver', '::', '4318']);

    const ca = await TestCa.create();
    const clientId = join(tmp.dir, 'client-id');
    const serverId = join(tmp.dir, 'server-id');
    for (const d of [clientId, serverId]) mkdirSync(d);
    await ca.writeIdentity(clientId, CLIENT_ID);
    await ca.writeIdentity(serverId, SERVER_ID);
    const tracing = ['tracing = on', 'tracing_sample_rate = 1', `tracing_collector = http://${collectorPod.ip4}:4318/v1/traces`,
      'tracing_batch_size = 4', 'tracing_batch_interval = 100ms'];
    const clientConfig = writeConfig(tmp.dir, 'client.ini', [
      '[proxy]', ...tracing, `identity_dir = ${clientId}`,
      '[service web]', `addresses = ${vip()}:80`, `endpoints = ${server.ip4}:8080`, 'mtls = true', `identities = ${SERVER_ID}`,
    ]);
    const serverConfig = writeConfig(tmp.dir, 'server.ini', ['[proxy]', ...tracing, `identity_dir = ${serverId}`, 'mtls_mode = strict']);
    await initOk(client);
    await initOk(server);
    clientProxy = await startProxy(client, ['--config', clientConfig]);
    serverProxy = await startProxy(server, ['--config', serverConfig]);
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  /** The chain every propagated request must show: caller -> client sidecar span -> server sidecar span -> app. */
  function assertChain(c: ReceivedSpan, s: ReceivedSpan, traceId: string, callerSpan: string | null, appParent: string): void {
    assert.equal(c.traceId, traceId);
    assert.equal(s.traceId, traceId, 'both sidecars\' spans share the trace id');
    assert.equal(c.parentSpanId, callerSpan, 'the client sidecar\'s span: the caller\'s span as parent');
    assert.equal(s.parentSpanId, c.spanId, 'the server sidecar\'s span: the client sidecar\'s as parent');
    assert.equal(appParent, s.spanId, 'the app sees the server sidecar\'s span as its parent');
    assert.notEqual(c.spanId, s.spanId);
    assert.match(c.spanId, /^[0-9a-f]{16}$/);
    assert.equal(c.service, 'client.shop');
    assert.equal(s.service, 'server.shop');
    for (const x of [c, s]) {
      assert.equal(x.attrs['http.method'], 'GET');
      assert.equal(x.attrs['http.status_code'], '200');
      assert.equal(x.status, 0);
      assert.match(x.start, /^\d{19}$/);
      assert.ok(BigInt(x.end) >= BigInt(x.start), `${x.start} .. ${x.end}`);
    }
    assert.equal(c.attrs['upstream_cluster'], 'web');
    assert.equal(c.attrs['upstream.address'], `${server.ip4}:8080`);
    assert.equal(c.attrs['http.url'], `http://${vip()}/orders/7`);
    assert.equal(s.attrs['upstream_cluster'], 'inbound');
    assert.equal(s.attrs['peer.identity'], CLIENT_ID, 'the server sidecar knows its caller from mesh mTLS');
    assert.equal(c.attrs['guid:x-request-id'], s.attrs['guid:x-request-id']);
  }

  test('W3C: traceparent arrives with the server sidecar\'s span as parent, tracestate untouched; spans at the receiver', opts, async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const caller = '00f067aa0ba902b7';
    const seen = await call([`traceparent: 00-${traceId}-${caller}-01`, 'tracestate: congo=t61rcWkgMzE,rojo=00f067aa0ba902b7']);
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(seen.traceparent ?? '');
    assert.ok(m !== null, `traceparent at the app: ${seen.traceparent}`);
    assert.equal(m[1], traceId);
    assert.equal(seen.tracestate, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
    assert.equal(seen['x-b3-traceid'], undefined, 'a W3C request does not grow B3 headers');
    assert.match(seen['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
    const { c, s } = await spansOf(traceId);
    assertChain(c, s, traceId, caller, m[2] ?? '');
    assert.equal(c.attrs['guid:x-request-id'], seen['x-request-id']);
  });

  test('B3 multi-header (64-bit trace id): X-B3-* arrive with the server sidecar\'s span id and the client sidecar\'s as parent', opts, async () => {
    const short = 'a3ce929d0e0e4736';
    const caller = '1234567890abcdef';
    const seen = await call([`X-B3-TraceId: ${short}`, `X-B3-SpanId: ${caller}`, 'X-B3-Sampled: 1']);
    const traceId = `0000000000000000${short}`;
    assert.equal(seen['x-b3-traceid'], traceId, 'left-padded to 128 bits');
    assert.equal(seen['x-b3-sampled'], '1');
    assert.equal(seen.traceparent, undefined, 'a B3 request does not grow traceparent');
    const { c, s } = await spansOf(traceId);
    assertChain(c, s, traceId, caller, seen['x-b3-spanid'] ?? '');
    assert.equal(seen['x-b3-parentspanid'], c.spanId);
  });

  test('B3 single header: b3 arrives as {trace}-{server span}-1-{client span}', opts, async () => {
    const traceId = 'c'.repeat(31) + '1';
    const caller = 'd'.repeat(15) + '2';
    const seen = await call([`b3: ${traceId}-${caller}-1`]);
    const parts = (seen.b3 ?? '').split('-');
    assert.equal(parts.length, 4, `b3 at the app: ${seen.b3}`);
    assert.equal(parts[0], traceId);
    assert.equal(parts[2], '1');
    const { c, s } = await spansOf(traceId);
    assertChain(c, s, traceId, caller, parts[1] ?? '');
    assert.equal(parts[3], c.spanId);
  });

  test('no trace context: the client sidecar starts a trace (traceparent and X-B3-* both) and its span is the root', opts, async () => {
    const seen = await call([]);
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(seen.traceparent ?? '');
    assert.ok(m !== null, `traceparent at the app: ${seen.traceparent}`);
    const traceId = m[1] ?? '';
    assert.equal(seen['x-b3-traceid'], traceId);
    assert.equal(seen['x-b3-spanid'], m[2]);
    const { c, s } = await spansOf(traceId);
    assertChain(c, s, traceId, null, m[2] ?? '');
  });

  test('a caller\'s "not sampled" is followed: headers go on (flag 00, new parent), no span of that trace is exported', opts, async () => {
    const unsampled = 'e'.repeat(32);
    const seen = await call([`traceparent: 00-${unsampled}-${'f'.repeat(16)}-00`]);
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/.exec(seen.traceparent ?? '');
    assert.ok(m !== null, `traceparent at the app: ${seen.traceparent}`);
    assert.equal(m[1], unsampled);
    assert.notEqual(m[2], 'f'.repeat(16), 'the sidecar still takes its place as parent');
    // A sampled request after it: once its spans are in, anything of the unsampled one would be too (one exporter
    // per sidecar sends its spans in order).
    const marker = '9'.repeat(32);
    await call([`traceparent: 00-${marker}-${'1'.repeat(16)}-01`]);
    await spansOf(marker);
    assert.deepEqual(spans().filter((x) => x.traceId === unsampled), []);
    assert.deepEqual(receiver.lines().filter((l) => l.includes('"bad"')), [], 'every export was OTLP JSON on POST /v1/traces');
  });

  test('the collector gone: requests still succeed; the sidecars count the spans they drop', opts, async () => {
    const exported = await sample(clientProxy, 'remora_tracing_spans_exported_total');
    assert.ok((exported ?? 0) >= 5, `exported before: ${exported}`);
    receiver.child.kill('SIGKILL');
    await waitFor('the receiver to exit', async () => (receiver.child.exitCode !== null || receiver.child.signalCode !== null ? true : undefined));
    const before = (await sample(clientProxy, 'remora_tracing_spans_dropped_total{reason="export_failed"}')) ?? 0;
    for (let i = 0; i < 8; i++) {
      const seen = await call([]);
      assert.match(seen.traceparent ?? '', /^00-/);
    }
    for (const [name, proxy] of [['client', clientProxy], ['server', serverProxy]] as const) {
      await waitFor(`${name} sidecar: 8 spans dropped (export_failed)`, async () => {
        const v = await sample(proxy, 'remora_tracing_spans_dropped_total{reason="export_failed"}');
        return v !== undefined && v - (name === 'client' ? before : 0) >= 8 ? v : undefined;
      }, { timeoutMs: 30_000, intervalMs: 200 });
      assert.equal(await sample(proxy, 'remora_tracing_spans_dropped_total{reason="queue_full"}'), 0);
    }
    // The sidecars logged the failure with its code.
    assert.ok(clientProxy.logs().some((l) => l.includes('"event":"tracing.export-failed"') && l.includes('REMORA_ERR_TRACE_EXPORT')));
  });
});
