// The span exporter against a real OTLP/HTTP JSON receiver on loopback: batches by size and by interval, the body's
// shape (resourceSpans / scopeSpans / spans, hex ids, kind, nanosecond strings, attributes), a bounded queue whose
// drops are counted, and a collector that is down, failing or silent: nothing throws, the batches are counted as
// export_failed.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createLogger } from '../../../src/core/log.js';
import { SpanExporter, type FinishedSpan } from '../../../src/telemetry/span-exporter.js';

interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; startTimeUnixNano: string; endTimeUnixNano: string;
  attributes: { key: string; value: { stringValue?: string; intValue?: string } }[]; status: { code?: number } }
interface OtlpBody { resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[] }[] }

const log = createLogger({ level: 'silent', name: 'test' });

function span(i: number, over: Partial<FinishedSpan> = {}): FinishedSpan {
  return {
    traceId: 'a'.repeat(32), spanId: i.toString(16).padStart(16, '0'), parentSpanId: 'b'.repeat(16), name: `svc:80/*`, kind: 'server',
    startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000001000000', attributes: [['http.method', 'GET'], ['http.status_code', 200]],
    error: false, ...over,
  };
}

async function receiver(t: { after: (fn: () => Promise<void>) => void }, answer: (req: IncomingMessage, res: ServerResponse) => void = (_q, r) => { r.end('{}'); }):
  Promise<{ url: string; bodies: OtlpBody[]; paths: string[]; server: Server }> {
  const bodies: OtlpBody[] = [];
  const paths: string[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8').on('data', (d: string) => { text += d; }).on('end', () => {
      paths.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      bodies.push(JSON.parse(text) as OtlpBody);
      answer(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, bodies, paths, server };
}

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const base = { resource: [['service.name', 'web.default']] as [string, string][], timeoutMs: 2_000, log };

test('a batch is sent when batchSize spans wait; the OTLP JSON body has every field', async (t) => {
  const rx = await receiver(t);
  const e = new SpanExporter({ ...base, url: rx.url, batchSize: 3, intervalMs: 3_600_000, maxQueue: 100 });
  t.after(() => e.close());
  e.add(span(1));
  e.add(span(2, { kind: 'client', parentSpanId: undefined, error: true }));
  assert.equal(rx.bodies.length, 0);
  e.add(span(3));
  await until('one export', () => e.exported === 3);
  assert.equal(rx.bodies.length, 1);
  assert.deepEqual(rx.paths, ['POST /v1/traces application/json']);
  const rs = rx.bodies[0]?.resourceSpans[0];
  assert.deepEqual(rs?.resource.attributes, [{ key: 'service.name', value: { stringValue: 'web.default' } }]);
  assert.equal(rs?.scopeSpans[0]?.scope.name, 'remora');
  const spans = rs?.scopeSpans[0]?.spans ?? [];
  assert.deepEqual(spans.map((s) => s.spanId), ['0000000000000001', '0000000000000002', '0000000000000003']);
  const [s1, s2] = spans;
  assert.equal(s1?.traceId, 'a'.repeat(32));
  assert.equal(s1?.parentSpanId, 'b'.repeat(16));
  assert.equal(s1?.kind, 2, 'SERVER');
  assert.equal(s2?.kind, 3, 'CLIENT');
  assert.equal(s2?.parentSpanId, undefined, 'a root span has no parentSpanId');
  assert.equal(s1?.startTimeUnixNano, '1700000000000000000');
  assert.equal(s1?.endTimeUnixNano, '1700000000001000000');
  assert.deepEqual(s1?.attributes, [{ key: 'http.method', value: { stringValue: 'GET' } }, { key: 'http.status_code', value: { intValue: '200' } }]);
  assert.deepEqual(s1?.status, {});
  assert.deepEqual(s2?.status, { code: 2 });
});

test('fewer spans than a batch are sent after the interval; close sends what waits', async (t) => {
  const rx = await receiver(t);
  const e = new SpanExporter({ ...base, url: rx.url, batchSize: 100, intervalMs: 20, maxQueue: 100 });
  e.add(span(1));
  await until('the interval export', () => e.exported === 1);
  const e2 = new SpanExporter({ ...base, url: rx.url, batchSize: 100, intervalMs: 3_600_000, maxQueue: 100 });
  e2.add(span(7));
  e2.add(span(8));
  await e2.close();
  assert.equal(e2.exported, 2);
  e2.add(span(9));
  assert.equal(e2.dropped.queue_full, 1, 'a closed exporter takes nothing');
  await e.close();
});

test('the queue is bounded: spans beyond maxQueue are dropped and counted; the rest are exported', async (t) => {
  let release: (() => void) | undefined;
  const held = new Promise<void>((r) => { release = r; });
  const rx = await receiver(t, (_q, res) => { void held.then(() => res.end('{}')); });
  const e = new SpanExporter({ ...base, url: rx.url, batchSize: 5, intervalMs: 3_600_000, maxQueue: 10 });
  t.after(() => e.close());
  for (let i = 0; i < 5; i++) e.add(span(i)); // the first batch: in flight, held by the receiver
  await until('the first batch to arrive', () => rx.bodies.length === 1);
  for (let i = 5; i < 25; i++) e.add(span(i)); // 10 wait, 10 are dropped
  assert.equal(e.queued, 10);
  assert.equal(e.dropped.queue_full, 10);
  release?.();
  await until('everything queued to be exported', () => e.exported === 15);
  assert.equal(rx.bodies.length, 3);
  assert.equal(e.dropped.export_failed, 0);
});

test('a collector that is down, failing or silent: add() never throws, the batches are counted as export_failed', async (t) => {
  // Down: a port nothing listens on (a server bound, then closed).
  const gone = createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  const port = (gone.address() as AddressInfo).port;
  await new Promise<void>((r) => gone.close(() => r()));
  const down = new SpanExporter({ ...base, url: `http://127.0.0.1:${port}/v1/traces`, batchSize: 2, intervalMs: 3_600_000, maxQueue: 10 });
  for (let i = 0; i < 4; i++) down.add(span(i));
  await until('both batches to fail', () => down.dropped.export_failed === 4);
  assert.equal(down.exported, 0);
  await down.close();

  const failing = await receiver(t, (_q, res) => { res.statusCode = 503; res.end('no'); });
  const e503 = new SpanExporter({ ...base, url: failing.url, batchSize: 1, intervalMs: 3_600_000, maxQueue: 10 });
  e503.add(span(1));
  await until('the 503 to count', () => e503.dropped.export_failed === 1);
  assert.equal(e503.exported, 0);
  await e503.close();

  const silent = await receiver(t, () => undefined); // reads the body, never answers
  const eSilent = new SpanExporter({ ...base, url: silent.url, batchSize: 1, intervalMs: 3_600_000, maxQueue: 10, timeoutMs: 100 });
  eSilent.add(span(1));
  await until('the timeout to count', () => eSilent.dropped.export_failed === 1);
  assert.equal(silent.bodies.length, 1, 'the request did reach the collector');
  await eSilent.close();
});
