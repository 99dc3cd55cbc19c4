// Access log lines (one JSON object, Istio's keys in order, remora's after them) and the writer (asynchronous,
// bounded, whole lines, a file that cannot be opened named in the error).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ConnectionContext, ConnectionOutcome } from '../../../src/l4/connection-context.js';
import type { RequestObservation } from '../../../src/l7/filters/request-stats.js';
import { RemoraError } from '../../../src/core/errors.js';
import { httpAccessLogLine, tcpAccessLogLine, traceIdOf } from '../../../src/telemetry/access-log-format.js';
import { AccessLogWriter } from '../../../src/telemetry/access-log-writer.js';
import { FLAG } from '../../../src/telemetry/response-flags.js';
import { requestSpan } from '../../../src/telemetry/request-span.js';

const ISTIO_KEYS = [
  'start_time', 'route_name', 'method', 'path', 'protocol', 'response_code', 'response_flags', 'response_code_details',
  'connection_termination_details', 'bytes_received', 'bytes_sent', 'duration', 'upstream_service_time', 'x_forwarded_for',
  'user_agent', 'request_id', 'authority', 'upstream_host', 'upstream_cluster', 'upstream_local_address',
  'downstream_local_address', 'downstream_remote_address', 'requested_server_name', 'upstream_transport_failure_reason',
];

function observation(over: Partial<RequestObservation> = {}, headers: string[] = []): RequestObservation {
  const req = {
    requestId: 'rid-1', route: { route: 'r1', retry: { maxAttempts: 1 } }, cluster: { name: 'web' }, upstreamHost: '10.0.0.7:8080',
    attempts: 1, resetCause: undefined,
    downstream: {
      method: 'GET', target: '/x?y=1', protocol: 'h2', authority: 'web.shop', headers, grpc: false,
      conn: { originalDst: { address: '10.1.0.1', port: 80 }, sourceAddress: '10.2.0.2', peerIdentity: 'spiffe://td/ns/a/sa/b', connectionId: 7 },
    },
  };
  return {
    req: req as unknown as RequestObservation['req'], startedAt: 1000, firstByteAt: 1004.4, endedAt: 1012.6, status: 200, grpcStatus: -1,
    requestBytes: 0, responseBytes: 42, localReplyReason: undefined, downstreamAborted: false, tunneled: false, wasReset: false, ...over,
  };
}

test('an HTTP line: Istio\'s keys in Istio\'s order, then remora\'s; values from the observation', () => {
  const line = httpAccessLogLine(observation({}, ['user-agent', 'curl/8', 'x-forwarded-for', '1.2.3.4', 'traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']), 'outbound', 0);
  assert.ok(line.endsWith('}\n') && !line.slice(0, -1).includes('\n'), 'one line');
  const e = JSON.parse(line) as Record<string, unknown>;
  assert.deepEqual(Object.keys(e).slice(0, ISTIO_KEYS.length), ISTIO_KEYS);
  assert.deepEqual(Object.keys(e).slice(ISTIO_KEYS.length), ['kind', 'direction', 'trace_id', 'downstream_peer_uri_san', 'grpc_status', 'attempts', 'connection_id']);
  assert.equal(e.method, 'GET');
  assert.equal(e.path, '/x?y=1');
  assert.equal(e.protocol, 'HTTP/2');
  assert.equal(e.response_code, 200);
  assert.equal(e.response_flags, '-');
  assert.equal(e.response_code_details, 'via_upstream');
  assert.equal(e.duration, 13);
  assert.equal(e.upstream_service_time, 4);
  assert.equal(e.user_agent, 'curl/8');
  assert.equal(e.x_forwarded_for, '1.2.3.4');
  assert.equal(e.upstream_host, '10.0.0.7:8080');
  assert.equal(e.upstream_cluster, 'web');
  assert.equal(e.route_name, 'r1');
  assert.equal(e.downstream_local_address, '10.1.0.1:80');
  assert.equal(e.downstream_remote_address, '10.2.0.2');
  assert.equal(e.trace_id, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(e.downstream_peer_uri_san, 'spiffe://td/ns/a/sa/b');
  assert.equal(e.grpc_status, null);
  assert.equal(e.connection_id, 7);
  assert.equal(e.requested_server_name, null, 'unknown values are null');
});

test('a local reply, a reset, a client that left: flags and details', () => {
  const lr = JSON.parse(httpAccessLogLine(observation({ status: 503, localReplyReason: 'no-healthy-upstream' }), 'outbound', FLAG.UH)) as Record<string, unknown>;
  assert.equal(lr.response_flags, 'UH');
  assert.equal(lr.response_code_details, 'no-healthy-upstream');
  assert.equal(lr.upstream_service_time, null);
  const dc = JSON.parse(httpAccessLogLine(observation({ status: 0, firstByteAt: 0, downstreamAborted: true }), 'inbound', FLAG.DC)) as Record<string, unknown>;
  assert.equal(dc.response_code, 0);
  assert.equal(dc.response_flags, 'DC');
  assert.equal(dc.response_code_details, 'downstream_remote_disconnect');
  assert.equal(dc.direction, 'inbound');
});

test('trace ids: W3C traceparent, else B3 single, else B3 multi; invalid ones ignored', () => {
  assert.equal(traceIdOf(['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']), '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(traceIdOf(['traceparent', '00-00000000000000000000000000000000-00f067aa0ba902b7-01']), undefined, 'all-zero');
  assert.equal(traceIdOf(['traceparent', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']), undefined, 'version ff');
  assert.equal(traceIdOf(['b3', '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1']), '80f198ee56343ba864fe8b2a57d3eff7');
  assert.equal(traceIdOf(['X-B3-TraceId', '463ac35c9f6413ad']), '463ac35c9f6413ad');
  assert.equal(traceIdOf(['x-b3-traceid', 'not-hex']), undefined);
  assert.equal(traceIdOf([]), undefined);
});

test('a TCP line: bytes, the endpoint, the error code as termination details, the TLS reason', () => {
  const conn = { id: 3, direction: 'outbound', originalDst: { address: '10.0.0.1', port: 5432 }, peerAddress: '10.0.0.9', peerPort: 40000, startedAt: Date.now() - 50 } as unknown as ConnectionContext;
  const r: ConnectionOutcome = {
    code: 'REMORA_ERR_UPSTREAM_TLS', error: undefined, bytesIn: 5, bytesOut: 0, idleTimeout: false, protocol: 'declared:opaque', service: 'db',
    endpoint: '10.0.0.2:5432', attempts: 2, tlsCode: 'CERT_HAS_EXPIRED', http: false, peerIdentity: undefined,
  };
  const e = JSON.parse(tcpAccessLogLine(conn, r, FLAG.UF, conn.startedAt + 50)) as Record<string, unknown>;
  assert.deepEqual(Object.keys(e).slice(0, ISTIO_KEYS.length), ISTIO_KEYS);
  assert.equal(e.kind, 'tcp');
  assert.equal(e.response_flags, 'UF');
  assert.equal(e.connection_termination_details, 'REMORA_ERR_UPSTREAM_TLS');
  assert.equal(e.upstream_transport_failure_reason, 'CERT_HAS_EXPIRED');
  assert.equal(e.bytes_received, 5);
  assert.equal(e.upstream_host, '10.0.0.2:5432');
  assert.equal(e.downstream_remote_address, '10.0.0.9:40000');
  assert.equal(e.duration, 50);
  assert.equal(e.detected_protocol, 'declared:opaque');
});

test('the writer: a file gets every line, in order, whole; a full buffer drops and counts; close flushes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-al-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const file = join(dir, 'a.log');
  const w = new AccessLogWriter({ kind: 'file', path: file }, { maxBufferChars: 200_000 });
  let expected = '';
  for (let i = 0; i < 5000; i++) {
    const batch = `${JSON.stringify({ i, pad: 'x'.repeat(100) })}\n${JSON.stringify({ i, second: true })}\n`;
    if (w.write(batch, 2)) expected += batch;
  }
  assert.ok(w.refusedLines > 0, 'the bounded buffer refused lines while the first writes were in flight');
  await w.close();
  assert.equal(readFileSync(file, 'utf8'), expected);
  assert.equal(w.write('{}\n', 1), false, 'closed');
});

test('a file that cannot be opened: a configuration error naming the file', () => {
  assert.throws(() => new AccessLogWriter({ kind: 'file', path: '/nonexistent-dir/remora/access.log' }), (err: unknown) => {
    assert.ok(err instanceof RemoraError);
    assert.equal(err.code, 'REMORA_ERR_CONFIG_INVALID');
    assert.match(err.message, /\/nonexistent-dir\/remora\/access\.log.*ENOENT/);
    return true;
  });
});

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('the writer batches: lines below flushChars wait for the interval (or close); reaching flushChars writes at once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-al-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const read = (f: string): string => { try { return readFileSync(f, 'utf8'); } catch { return ''; } };
  // A huge interval: only the size threshold (or close) can write.
  const big = join(dir, 'size.log');
  const w1 = new AccessLogWriter({ kind: 'file', path: big }, { flushChars: 100, flushIntervalMs: 3_600_000 });
  w1.write('{"a":1}\n', 1);
  await new Promise((r) => setImmediate(r));
  // Held: still counted as waiting in the writer's buffer (a write would have taken it out), and not in the file.
  assert.equal(w1.buffered, '{"a":1}\n'.length, 'one short line is held (below flushChars, interval far away)');
  assert.equal(read(big), '');
  const long = `{"pad":"${'x'.repeat(120)}"}\n`;
  w1.write(long, 1);
  await until('the size threshold to write', () => read(big) === `{"a":1}\n${long}`);
  w1.write('{"b":2}\n', 1);
  await w1.close();
  assert.equal(read(big), `{"a":1}\n${long}{"b":2}\n`, 'close writes what waits');
  // A short interval and a huge size threshold: the interval writes.
  const iv = join(dir, 'interval.log');
  const w2 = new AccessLogWriter({ kind: 'file', path: iv }, { flushChars: 1 << 30, flushIntervalMs: 20 });
  t.after(() => w2.close());
  w2.write('{"c":3}\n', 1);
  await until('the interval to write', () => read(iv) === '{"c":3}\n');
});

test('tracing on: the access log\'s trace_id and the span come from the same trace context (req.trace)', () => {
  const o = observation({}, ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']);
  const trace = { traceId: 'abcdefabcdefabcdefabcdefabcdef12', spanId: '1111111111111111', parentSpanId: '2222222222222222', sampled: true };
  (o.req as unknown as { trace: unknown }).trace = trace;
  (o.req as unknown as { head: unknown }).head = { authority: 'web.shop', path: '/x' };
  const e = JSON.parse(httpAccessLogLine(o, 'inbound', 0)) as Record<string, unknown>;
  assert.equal(e.trace_id, trace.traceId, 'req.trace wins over the headers');
  const s = requestSpan(o, 'inbound', 0, trace);
  assert.equal(s.traceId, trace.traceId);
  assert.equal(s.spanId, '1111111111111111');
  assert.equal(s.parentSpanId, '2222222222222222');
  assert.equal(s.kind, 'server');
  assert.equal(s.name, 'web.shop/*');
  assert.equal(s.error, false);
  const a = Object.fromEntries(s.attributes);
  assert.equal(a['http.method'], 'GET');
  assert.equal(a['http.url'], 'http://web.shop/x');
  assert.equal(a['http.status_code'], 200);
  assert.equal(a['upstream.address'], '10.0.0.7:8080');
  assert.equal(a['upstream_cluster'], 'inbound');
  assert.equal(a['peer.identity'], 'spiffe://td/ns/a/sa/b');
  assert.equal(a['guid:x-request-id'], 'rid-1');
  assert.equal(a['response_size'], 42);
  // 12.6 ms between head and end (each end is rounded to the microsecond on its own: +-1 us)
  const d = BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano);
  assert.ok(d >= 12_599_000n && d <= 12_601_000n, String(d));
  assert.match(s.startTimeUnixNano, /^\d{19}$/);
  const failed = requestSpan({ ...o, status: 0 }, 'outbound', FLAG.UF, trace);
  assert.equal(failed.kind, 'client');
  assert.equal(failed.error, true);
  assert.equal(Object.fromEntries(failed.attributes)['http.status_code'], undefined, 'no response: no status code');
  assert.equal(Object.fromEntries(failed.attributes)['response_flags'], 'UF');
});
