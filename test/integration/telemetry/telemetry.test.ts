// Metrics and access log of a real proxy on loopback (test/support/proxy-rig.ts, no iptables): requests and TCP
// connections sent through it show up in GET /stats/prometheus (Istio's names, labels in Istio's order, Envoy's
// buckets, response flags) and as access log lines (one JSON object each, Istio's keys) that match the traffic:
// status, flags, upstream host, request id, trace id, bytes. Bounded: every wait has a deadline; no timing assertion.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import http from 'node:http';
import { createConnection, createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test as nodeTest, type TestContext } from 'node:test';
import { startRig, type Rig } from '../../support/proxy-rig.js';
import { HTTP_LABEL_NAMES, TCP_LABEL_NAMES } from '../../../src/telemetry/workload-labels.js';

const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
  nodeTest(name, { timeout: 30_000 }, fn);
};

const VIP = '10.255.0.10';
const TCP_VIP = '10.255.0.11';

async function listen(t: TestContext, server: Server | http.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    if (server instanceof http.Server) server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => { s.close(() => { resolve(); }); });
  return port;
}

/** An HTTP backend: /fail answers 503, everything else 200 "ok\n". */
async function backend(t: TestContext): Promise<number> {
  return listen(t, http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/fail') res.writeHead(503).end('nope\n');
      else res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    });
  }));
}

interface Reply { status: number; body: string; headers: http.IncomingHttpHeaders }

function request(port: number, opts: { path?: string; method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: opts.path ?? '/', method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body, headers: res.headers }); });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => { req.destroy(new Error('request timed out')); });
    req.end(opts.body);
  });
}

function get(port: number, path: string): Promise<Reply> {
  return request(port, { path });
}

async function waitFor<T>(what: string, fn: () => T | undefined): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The exposition's samples as [name, labels (in order), value]. */
function samples(text: string): { name: string; labels: [string, string][]; value: number }[] {
  const out: { name: string; labels: [string, string][]; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m !== null, `a sample line: ${line}`);
    const labels: [string, string][] = [];
    for (const p of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels.push([p[1] as string, p[2] as string]);
    out.push({ name: m[1] as string, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

function find(text: string, name: string, want: Record<string, string>): { labels: [string, string][]; value: number }[] {
  return samples(text).filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels.some(([lk, lv]) => lk === k && lv === v)));
}

function readLines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

function tmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'remora-telemetry-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  return dir;
}

async function rig(t: TestContext, ini: string, adminPort?: number): Promise<Rig> {
  return startRig(t, ini, { httpEngine: true, detectTimeout: 5_000, drainTimeout: 2_000, ...(adminPort === undefined ? {} : { adminPort }) });
}

test('HTTP: istio_requests_total and the histograms count the requests by code and flags, with Istio\'s labels in order', async (t) => {
  const port = await backend(t);
  const dead = await freePort();
  const adminPort = await freePort();
  const r = await rig(t, `[proxy]\nworkload_name = client\nworkload_namespace = shop\n\n`
    + `[service web]\naddresses = ${VIP}:80\nendpoints = 127.0.0.1:${port}\n\n[service gone]\naddresses = ${VIP}:81\nendpoints = 127.0.0.1:${dead}\n`, adminPort);
  r.dst(VIP, 80);
  for (let i = 0; i < 3; i++) assert.equal((await get(r.port, '/')).status, 200);
  for (let i = 0; i < 2; i++) assert.equal((await get(r.port, '/fail')).status, 503);
  r.dst(VIP, 81);
  assert.equal((await get(r.port, '/')).status, 503, 'connect failure: 503 UF');

  const text = r.proxy.prometheus();
  const ok = find(text, 'istio_requests_total', { destination_service_name: 'web', response_code: '200' });
  assert.equal(ok.length, 1, text);
  assert.equal(ok[0]?.value, 3);
  assert.deepEqual(ok[0]?.labels.map(([k]) => k), [...HTTP_LABEL_NAMES], 'Istio\'s 25 labels in Istio\'s order');
  const labels = Object.fromEntries(ok[0]?.labels ?? []);
  assert.equal(labels.reporter, 'source');
  assert.equal(labels.source_workload, 'client');
  assert.equal(labels.source_workload_namespace, 'shop');
  assert.equal(labels.source_canonical_service, 'client', 'canonical_service defaults to the workload name');
  assert.equal(labels.source_canonical_revision, 'latest');
  assert.equal(labels.request_protocol, 'http');
  assert.equal(labels.response_flags, '-');
  assert.equal(labels.connection_security_policy, 'unknown', 'Istio writes unknown at the source');
  assert.equal(labels.grpc_response_status, '');
  assert.equal(find(text, 'istio_requests_total', { destination_service_name: 'web', response_code: '503', response_flags: '-' })[0]?.value, 2,
    'an upstream 503 is the upstream\'s answer: no flag');
  assert.equal(find(text, 'istio_requests_total', { destination_service_name: 'gone', response_code: '503', response_flags: 'UF,URX' })[0]?.value, 1,
    'the default retry policy (3 attempts on connect failures) was used up: UF and URX');

  // Histograms: Envoy's buckets, cumulative, +Inf = count.
  const buckets = find(text, 'istio_request_duration_milliseconds_bucket', { destination_service_name: 'web', response_code: '200' });
  assert.deepEqual(buckets.map((b) => b.labels.at(-1)?.[1]),
    ['0.5', '1', '5', '10', '25', '50', '100', '250', '500', '1000', '2500', '5000', '10000', '30000', '60000', '300000', '600000', '1800000', '3600000', '+Inf']);
  assert.equal(buckets.at(-1)?.value, 3);
  for (let i = 1; i < buckets.length; i++) assert.ok((buckets[i]?.value ?? 0) >= (buckets[i - 1]?.value ?? 0), 'cumulative');
  assert.equal(find(text, 'istio_request_duration_milliseconds_count', { destination_service_name: 'web', response_code: '200' })[0]?.value, 3);
  assert.equal(find(text, 'istio_response_bytes_sum', { destination_service_name: 'web', response_code: '200' })[0]?.value, 9, '3 x "ok\\n"');
  assert.equal(find(text, 'istio_request_bytes_bucket', { destination_service_name: 'web', response_code: '200', le: '0.5' })[0]?.value, 3, 'no request body');

  // remora_* alongside, and the same exposition over the admin listener.
  assert.ok(find(text, 'remora_detections_total', {}).length > 0, 'detection outcomes');
  assert.equal(find(text, 'remora_http_local_replies_total', { listener: 'outbound', reason: 'upstream-connect-failure' })[0]?.value, 1);
  assert.equal(find(text, 'remora_metrics_series', {})[0]?.value, 3);
  assert.equal(find(text, 'remora_endpoint_picks_total', { service: 'web', endpoint: `127.0.0.1:${port}`, layer: 'http' })[0]?.value, 5);
  const scraped = await get(adminPort, '/stats/prometheus');
  assert.equal(scraped.status, 200);
  assert.equal(scraped.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(find(scraped.body, 'istio_requests_total', { destination_service_name: 'web', response_code: '200' })[0]?.value, 3);
  assert.equal((await get(adminPort, '/stats')).status, 200, '/stats JSON still answers');
});

test('access log: one JSON line per request with Istio\'s keys, flags, upstream host, request and trace ids', async (t) => {
  const port = await backend(t);
  const dead = await freePort();
  const dir = tmp(t);
  const file = join(dir, 'access.log');
  const r = await rig(t, `[proxy]\naccess_log = ${file}\n\n[service web]\naddresses = ${VIP}:80\nendpoints = 127.0.0.1:${port}\n\n`
    + `[service gone]\naddresses = ${VIP}:81\nendpoints = 127.0.0.1:${dead}\n`);
  r.dst(VIP, 80);
  const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const sentAfter = Date.now();
  await request(r.port, { path: '/a?x=1', headers: { 'x-request-id': 'req-1', traceparent: `00-${trace}-00f067aa0ba902b7-01`, 'user-agent': 'tester/1' } });
  await request(r.port, { path: '/upload', method: 'POST', body: 'hello world' });
  r.dst(VIP, 81);
  await get(r.port, '/');
  const lines = await waitFor('3 access log lines', () => { const l = readLines(file); return l.length >= 3 ? l : undefined; });
  assert.equal(lines.length, 3);
  const [a, b, c] = lines as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
  assert.deepEqual(Object.keys(a).slice(0, 24), [
    'start_time', 'route_name', 'method', 'path', 'protocol', 'response_code', 'response_flags', 'response_code_details',
    'connection_termination_details', 'bytes_received', 'bytes_sent', 'duration', 'upstream_service_time', 'x_forwarded_for',
    'user_agent', 'request_id', 'authority', 'upstream_host', 'upstream_cluster', 'upstream_local_address',
    'downstream_local_address', 'downstream_remote_address', 'requested_server_name', 'upstream_transport_failure_reason',
  ], 'Istio\'s JSON keys in Istio\'s order');
  assert.equal(a.method, 'GET');
  assert.equal(a.path, '/a?x=1');
  assert.equal(a.protocol, 'HTTP/1.1');
  assert.equal(a.response_code, 200);
  assert.equal(a.response_flags, '-');
  assert.equal(a.response_code_details, 'via_upstream');
  assert.equal(a.bytes_sent, 3);
  assert.equal(a.request_id, 'req-1');
  assert.equal(a.trace_id, trace);
  assert.equal(a.user_agent, 'tester/1');
  assert.equal(a.upstream_host, `127.0.0.1:${port}`);
  assert.equal(a.upstream_cluster, 'web');
  assert.equal(a.downstream_local_address, `${VIP}:80`);
  assert.equal(a.kind, 'http');
  assert.equal(a.direction, 'outbound');
  assert.ok(typeof a.duration === 'number' && a.duration >= 0 && a.duration <= Date.now() - sentAfter, `duration ${String(a.duration)} ms within the test's own`);
  assert.ok(Date.parse(String(a.start_time)) >= sentAfter - 1, 'start_time is when the request came');
  assert.ok(!Number.isNaN(Date.parse(String(a.start_time))));
  assert.equal(b.method, 'POST');
  assert.equal(b.bytes_received, 11, 'the request body');
  assert.match(String(b.request_id), /^[0-9a-f-]{36}$/, 'the id the request-id filter made');
  assert.equal(c.response_code, 503);
  assert.equal(c.response_flags, 'UF,URX', 'connect failures, retries used up');
  assert.equal(c.attempts, 3);
  assert.equal(c.response_code_details, 'upstream-connect-failure');
  assert.equal(c.upstream_host, `127.0.0.1:${dead}`);
  assert.equal(c.upstream_service_time, null);
  const text = r.proxy.prometheus();
  assert.equal(find(text, 'remora_access_log_lines_total', { result: 'written' })[0]?.value, 3);
});

test('TCP: istio_tcp_* count connections and bytes each way; a TCP access log line; an unreachable service is UF', async (t) => {
  const echo = createNetServer((s) => { s.on('data', (d: Buffer) => { s.write(Buffer.concat([d, d])); }); s.on('end', () => { s.end(); }); s.on('error', () => undefined); });
  const port = await listen(t, echo);
  const dead = await freePort();
  const dir = tmp(t);
  const file = join(dir, 'access.log');
  const r = await rig(t, `[proxy]\naccess_log = ${file}\n\n[service db]\naddresses = ${TCP_VIP}:5432\nprotocol = opaque\nendpoints = 127.0.0.1:${port}\n\n`
    + `[service down]\naddresses = ${TCP_VIP}:5433\nprotocol = opaque\nconnect_attempts = 1\nendpoints = 127.0.0.1:${dead}\n`);
  r.dst(TCP_VIP, 5432);
  for (let i = 0; i < 2; i++) {
    const c = createConnection({ host: '127.0.0.1', port: r.port });
    let err: Error | undefined;
    c.on('error', (e) => { err = e; });
    c.write('12345');
    let got = 0;
    c.on('data', (d: Buffer) => { got += d.length; if (got >= 10) c.end(); });
    await once(c, 'close');
    assert.equal(got, 10, `${String(err)} ${JSON.stringify(r.logs.filter((l) => String(l.event).startsWith('connection')))}`);
  }
  // A connection still open: opened at once, its bytes so far counted at the scrape, not closed.
  const open = createConnection({ host: '127.0.0.1', port: r.port });
  open.on('error', () => undefined);
  open.write('abc');
  await new Promise((resolve) => { open.once('data', resolve); });
  const live = r.proxy.prometheus();
  assert.equal(find(live, 'istio_tcp_connections_opened_total', { destination_service_name: 'db' })[0]?.value, 3);
  assert.equal(find(live, 'istio_tcp_connections_closed_total', { destination_service_name: 'db' })[0]?.value, 2);
  assert.equal(find(live, 'istio_tcp_received_bytes_total', { destination_service_name: 'db' })[0]?.value, 13);
  open.end();
  await new Promise((resolve) => { open.once('close', resolve); });
  r.dst(TCP_VIP, 5433);
  const c = createConnection({ host: '127.0.0.1', port: r.port });
  c.on('error', () => undefined);
  await new Promise((resolve) => { c.once('close', resolve); }); // reset by the proxy: events.once would reject
  const text = await waitFor('the TCP series', () => {
    const s = r.proxy.prometheus();
    return find(s, 'istio_tcp_connections_closed_total', { destination_service_name: 'db' })[0]?.value === 3
      && find(s, 'istio_tcp_connections_closed_total', { destination_service_name: 'down' }).length === 1 ? s : undefined;
  });
  const sent = find(text, 'istio_tcp_sent_bytes_total', { destination_service_name: 'db' });
  assert.equal(sent[0]?.value, 26, 'sent = the response direction');
  assert.deepEqual(sent[0]?.labels.map(([k]) => k), [...TCP_LABEL_NAMES], 'the 23 TCP labels');
  assert.equal(find(text, 'istio_tcp_received_bytes_total', { destination_service_name: 'db' })[0]?.value, 13);
  assert.equal(find(text, 'istio_tcp_connections_opened_total', { destination_service_name: 'db', request_protocol: 'tcp', response_flags: '-' })[0]?.value, 3);
  assert.equal(find(text, 'istio_tcp_connections_opened_total', { destination_service_name: 'down', response_flags: 'UF' })[0]?.value, 1);
  assert.equal(find(text, 'istio_requests_total', {}).length, 0, 'no HTTP series');
  assert.equal(find(text, 'remora_endpoint_picks_total', { service: 'db', endpoint: `127.0.0.1:${port}`, layer: 'tcp' })[0]?.value, 3);
  const lines = await waitFor('4 TCP lines', () => { const l = readLines(file); return l.length >= 4 ? l : undefined; });
  const ok = lines.filter((l) => l.upstream_cluster === 'db');
  assert.equal(ok.length, 3);
  assert.equal(ok[0]?.kind, 'tcp');
  assert.equal(ok[0]?.bytes_received, 5);
  assert.equal(ok[0]?.bytes_sent, 10);
  assert.equal(ok[0]?.upstream_host, `127.0.0.1:${port}`);
  assert.equal(ok[0]?.response_flags, '-');
  const failed = lines.find((l) => l.upstream_cluster === 'down');
  assert.equal(failed?.response_flags, 'UF');
  assert.equal(failed?.connection_termination_details, 'REMORA_ERR_UPSTREAM_CONNECT');
});

test('access_log_sample = 0 logs only failures; metrics = off leaves only remora_*; a reload turns the access log on', async (t) => {
  const port = await backend(t);
  const dir = tmp(t);
  const file = join(dir, 'access.log');
  const ini = (extra: string): string => `[proxy]\n${extra}\n\n[service web]\naddresses = ${VIP}:80\nendpoints = 127.0.0.1:${port}\n`;
  const r = await rig(t, ini('metrics = off'));
  r.dst(VIP, 80);
  assert.equal((await get(r.port, '/')).status, 200);
  let text = r.proxy.prometheus();
  assert.equal(find(text, 'istio_requests_total', {}).length, 0, 'metrics = off: no istio_*');
  assert.ok(find(text, 'remora_build_info', {}).length === 1);
  r.setConfig(ini(`access_log = ${file}\naccess_log_sample = 0`));
  assert.equal(r.proxy.reload('test').result, 'ok');
  for (let i = 0; i < 3; i++) await get(r.port, '/');
  await get(r.port, '/fail');
  const lines = await waitFor('the failure line', () => { const l = readLines(file); return l.length >= 1 ? l : undefined; });
  // The writer keeps the order of lines: a success written by mistake (sent before the failure) would be in the file
  // by the time the failure's line is.
  assert.deepEqual(readLines(file).map((l) => l.response_code), [503], 'successes sampled out, the failure logged');
  assert.equal(lines[0]?.path, '/fail');
  text = r.proxy.prometheus();
  assert.equal(find(text, 'istio_requests_total', { response_code: '200' })[0]?.value, 3, 'metrics on by default after the reload');
  assert.equal(find(text, 'remora_access_log_lines_total', { result: 'sampled_out' })[0]?.value, 3);
});

test('tracing hot-reloads: off (headers untouched) -> on (propagated, spans at a loopback OTLP receiver) -> a new collector -> off', async (t) => {
  const seen: http.IncomingHttpHeaders[] = [];
  const app = await listen(t, http.createServer((req, res) => { seen.push(req.headers); req.resume(); req.on('end', () => res.end('ok\n')); }));
  const received: { traceId: string; parentSpanId?: string; spanId: string; kind: number; collector: string }[] = [];
  const collector = async (name: string): Promise<number> => listen(t, http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => {
      const j = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: { traceId: string; spanId: string; parentSpanId?: string; kind: number }[] }[] }[] };
      for (const rs of j.resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) received.push({ ...s, collector: name });
      res.end('{}');
    });
  }));
  const c1 = await collector('one');
  const c2 = await collector('two');
  const svc = `[service web]\naddresses = ${VIP}:80\nendpoints = 127.0.0.1:${app}\n`;
  const on = (port: number): string => `[proxy]\ntracing = on\ntracing_sample_rate = 1\ntracing_collector = http://127.0.0.1:${port}/v1/traces\ntracing_batch_interval = 20ms\n\n${svc}`;
  const r = await rig(t, `[proxy]\n\n${svc}`);
  r.dst(VIP, 80);
  const tp = `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`;
  const send = async (): Promise<http.IncomingHttpHeaders> => {
    assert.equal((await request(r.port, { headers: { traceparent: tp } })).status, 200);
    return seen[seen.length - 1] ?? {};
  };
  assert.equal((await send()).traceparent, tp, 'tracing off: traceparent goes through untouched');

  r.setConfig(on(c1));
  assert.equal(r.proxy.reload('test').result, 'ok');
  const h1 = await send();
  const m = /^00-1{32}-([0-9a-f]{16})-01$/.exec(String(h1.traceparent));
  assert.ok(m !== null, String(h1.traceparent));
  const span = await waitFor('the span at collector one', () => received.find((s) => s.collector === 'one'));
  assert.equal(span.traceId, '1'.repeat(32));
  assert.equal(span.parentSpanId, '2'.repeat(16));
  assert.equal(span.spanId, m[1], 'the upstream\'s parent is the sidecar\'s span');
  assert.equal(span.kind, 3, 'outbound: CLIENT');

  r.setConfig(on(c2));
  assert.equal(r.proxy.reload('test').result, 'ok');
  await send();
  await waitFor('a span at collector two', () => received.find((s) => s.collector === 'two'));
  assert.match(r.proxy.prometheus(), /^remora_tracing_spans_exported_total 2$/m);

  r.setConfig(`[proxy]\n\n${svc}`);
  assert.equal(r.proxy.reload('test').result, 'ok');
  assert.equal((await send()).traceparent, tp, 'tracing off again: untouched');
});

test('tracing over h2c: the HTTP/2 request\'s trace headers are rewritten like HTTP/1.1\'s (b3 single in, b3 single out)', async (t) => {
  const http2 = await import('node:http2');
  const seen: http.IncomingHttpHeaders[] = [];
  // An h2c app (the proxy keeps HTTP/2 upstream for an HTTP/2 request).
  const h2app = http2.createServer((req, res) => { seen.push(req.headers); req.resume(); req.on('end', () => res.end('ok\n')); });
  h2app.listen(0, '127.0.0.1');
  await once(h2app, 'listening');
  t.after(() => { h2app.close(); });
  const app = (h2app.address() as AddressInfo).port;
  const sink = await listen(t, http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('{}')); }));
  const r = await rig(t, `[proxy]\ntracing = on\ntracing_sample_rate = 0\ntracing_collector = http://127.0.0.1:${sink}/v1/traces\n\n`
    + `[service web]\naddresses = ${VIP}:80\nendpoints = 127.0.0.1:${app}\n`);
  r.dst(VIP, 80);
  const session = http2.connect(`http://127.0.0.1:${r.port}`);
  t.after(() => { session.close(); });
  const status = await new Promise<number>((resolve, reject) => {
    const s = session.request({ ':method': 'GET', ':path': '/h2', b3: `${'a'.repeat(32)}-${'b'.repeat(16)}-0` });
    s.on('response', (h) => { s.resume(); s.on('end', () => resolve(Number(h[':status']))); });
    s.on('error', reject);
    s.end();
  });
  assert.equal(status, 200);
  const b3 = String(seen[0]?.b3).split('-');
  assert.equal(b3[0], 'a'.repeat(32));
  assert.match(b3[1] ?? '', /^[0-9a-f]{16}$/);
  assert.notEqual(b3[1], 'b'.repeat(16));
  assert.equal(b3[2], '0', 'the caller\'s "not sampled" goes on');
  assert.equal(b3[3], 'b'.repeat(16), 'the caller\'s span is the parent');
  assert.equal(seen[0]?.traceparent, undefined);
});
