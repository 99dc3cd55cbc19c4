// The [proxy] keys of metrics and access logs: values, defaults, and clear issues with file:line.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIssue } from '../../../src/config/config-issue.js';
import { loadSnapshotDefinitions } from '../../../src/config/load-snapshot.js';
import { fraction, labelValue } from '../../../src/config/value-parsers.js';

function load(ini: string): ReturnType<typeof loadSnapshotDefinitions> {
  return loadSnapshotDefinitions({ file: 'remora.ini', flags: new Map(), env: {}, readFile: () => Buffer.from(ini) });
}

test('defaults: metrics on, no metrics listener, 1000 label sets, eviction after 10m, access log off, every line sampled', () => {
  const r = load('[proxy]\n');
  assert.ok(r.ok);
  const p = r.definitions.proxy;
  assert.equal(p.metrics, true);
  assert.equal(p.metricsAddress, undefined);
  assert.equal(p.metricsMaxSeries, 1000);
  assert.equal(p.metricsEvictAfter, 600_000);
  assert.deepEqual(p.accessLog, { kind: 'off' });
  assert.equal(p.accessLogSample, 1);
  assert.equal(p.workloadName, '');
});

test('values: a metrics listener, a file, stdout, a sample share, workload labels', () => {
  const r = load('[proxy]\nmetrics_address = 0.0.0.0:15090\naccess_log = /var/log/remora/access.log\naccess_log_sample = 0.25\n'
    + 'workload_name = cart\nworkload_namespace = shop\ncanonical_service = cart\ncanonical_revision = v2\nmetrics_evict_after = 0\n');
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
  const p = r.definitions.proxy;
  assert.deepEqual(p.metricsAddress, { host: '0.0.0.0', port: 15090 });
  assert.deepEqual(p.accessLog, { kind: 'file', path: '/var/log/remora/access.log' });
  assert.equal(p.accessLogSample, 0.25);
  assert.equal(p.metricsEvictAfter, 0);
  assert.equal(p.canonicalRevision, 'v2');
  const s = load('[proxy]\naccess_log = stdout\n');
  assert.ok(s.ok);
  assert.deepEqual(s.definitions.proxy.accessLog, { kind: 'stdout' });
});

test('bad values are issues at their line, saying what is expected', () => {
  const r = load('[proxy]\naccess_log = logs/access.log\naccess_log_sample = 2\nmetrics_max_series = 0\nworkload_name = a"b\nmetrics_address = nowhere\n');
  assert.ok(!r.ok);
  const text = r.issues.map(formatIssue);
  assert.equal(text.length, 5);
  assert.match(text[0] ?? '', /remora\.ini:2.*access_log.*off, stdout, stderr or the absolute path/);
  assert.match(text[1] ?? '', /remora\.ini:3.*access_log_sample.*from 0 to 1/);
  assert.match(text[2] ?? '', /remora\.ini:4.*metrics_max_series/);
  assert.match(text[3] ?? '', /remora\.ini:5.*workload_name.*label value/);
  assert.match(text[4] ?? '', /remora\.ini:6.*metrics_address.*host:port/);
});

test('fraction and label value parsers', () => {
  for (const [t, v] of [['0', 0], ['1', 1], ['0.1', 0.1], ['.5', 0.5], ['1.0', 1]] as const) assert.deepEqual(fraction(t), { ok: true, value: v });
  for (const t of ['', '-0.1', '1.5', 'abc', '1e-3']) assert.equal(fraction(t).ok, false, t);
  assert.deepEqual(labelValue(' web-1.v2 '), { ok: true, value: 'web-1.v2' });
  assert.equal(labelValue('a\\b').ok, false);
  assert.equal(labelValue('x'.repeat(254)).ok, false);
});

test('tracing keys: defaults (off, 1% of undecided requests, 512 spans or 5 s a batch, 2048 queued), values, and issues at their line', () => {
  const d = load('[proxy]\n');
  assert.ok(d.ok);
  const p = d.definitions.proxy;
  assert.equal(p.tracing, false);
  assert.equal(p.tracingSampleRate, 0.01);
  assert.equal(p.tracingCollector, '');
  assert.equal(p.tracingBatchSize, 512);
  assert.equal(p.tracingBatchInterval, 5_000);
  assert.equal(p.tracingMaxQueue, 2048);
  const on = load('[proxy]\ntracing = on\ntracing_sample_rate = 1\ntracing_collector = http://10.0.0.5:4318/v1/traces\ntracing_batch_size = 10\ntracing_batch_interval = 200ms\ntracing_max_queue = 100\n');
  assert.ok(on.ok, on.ok ? '' : on.issues.map(formatIssue).join('\n'));
  assert.equal(on.definitions.proxy.tracing, true);
  assert.equal(on.definitions.proxy.tracingCollector, 'http://10.0.0.5:4318/v1/traces');
  assert.equal(on.definitions.proxy.tracingBatchInterval, 200);
  const bare = load('[proxy]\ntracing = on\ntracing_collector = http://otel:4318\n');
  assert.ok(bare.ok);
  assert.equal(bare.definitions.proxy.tracingCollector, 'http://otel:4318/v1/traces', 'a bare endpoint gets OTLP\'s traces path');
  const bad = load('[proxy]\ntracing_sample_rate = 10\ntracing_collector = https://collector:4318/v1/traces\n');
  assert.ok(!bad.ok);
  const text = bad.issues.map(formatIssue).join('\n');
  assert.match(text, /remora\.ini:2: \[proxy\] tracing_sample_rate = "10": expected a number from 0 to 1/);
  assert.match(text, /remora\.ini:3: \[proxy\] tracing_collector = "https:\/\/collector:4318\/v1\/traces": expected an http:\/\/ URL/);
  const noCollector = load('[proxy]\nlog_level = info\ntracing = on\n');
  assert.ok(!noCollector.ok);
  assert.match(noCollector.issues.map(formatIssue).join('\n'), /remora\.ini:3: \[proxy\] tracing_collector = "": expected the OTLP\/HTTP JSON endpoint spans go to/);
});
