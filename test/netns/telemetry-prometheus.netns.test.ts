// Metrics and access logs on a real kernel, read by a real Prometheus: a client pod and a server pod, each with
// `remora init` and `remora proxy` (identities from a test CA, mesh mTLS between the sidecars, metrics_address
// 0.0.0.0:15090 excluded from inbound capture as Istio does, an access log file each), and a third pod running
// Debian's prometheus that scrapes both sidecars every second. The requests the test sends (7 answered 200, 3 answered
// 503 by the app) come back from PromQL (HTTP API /api/v1/query) by response code, as the client sidecar reported
// them (reporter="source") and as the server sidecar did (reporter="destination", the client's SPIFFE ID as
// source_principal, mutual_tls); `promtool check metrics` finds nothing but its lint about Istio's own
// `_milliseconds` unit; the access log lines of both sidecars match the traffic.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spiffe, TestCa } from '../support/mesh-pki.js';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { tempDir, writeConfig } from './l4-helpers.js';
import { startL7Tool, tally } from './l7-helpers.js';
import { initOk } from './proxy-helpers.js';
import { startProxy, type RunningProxy } from './remora-process.js';

function missingTool(): string | undefined {
  for (const tool of ['prometheus', 'promtool']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed (apt-get install prometheus)`;
  }
  return undefined;
}

const base = netnsTestOptions();
const missing = missingTool();
const opts = missing !== undefined && base.skip === undefined ? { ...base, skip: missing } : { ...base, timeout: Math.max(base.timeout, 180_000) };

const CLIENT_ID = spiffe('shop', 'client');
const SERVER_ID = spiffe('shop', 'server');

interface PromVector {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

describe('metrics scraped by a real Prometheus, access logs', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let server: Pod;
  let prom: Pod;
  let clientProxy: RunningProxy;
  let serverProxy: RunningProxy;
  const tmp = tempDir('remora-telemetry-');
  const clientLog = join(tmp.dir, 'client-access.log');
  const serverLog = join(tmp.dir, 'server-access.log');
  const vip = (n: number): string => `${mesh.prefix4}.${200 + n}`;

  /** Run a PromQL instant query inside the Prometheus pod. */
  async function query(q: string): Promise<PromVector[]> {
    const r = await prom.exec(['curl', '-sS', '--max-time', '5', '-G', 'http://127.0.0.1:9090/api/v1/query', '--data-urlencode', `query=${q}`]);
    if (r.code !== 0) throw new Error(`query failed: ${r.stderr}`);
    const body = JSON.parse(r.stdout) as { status: string; data: { result: PromVector[] } };
    if (body.status !== 'success') throw new Error(`query ${q}: ${r.stdout}`);
    return body.data.result;
  }

  /** A vector as label value -> number. */
  const byLabel = (v: readonly PromVector[], label: string): Record<string, number> =>
    Object.fromEntries(v.map((s) => [s.metric[label] ?? '', Number(s.value[1])]));

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    client = await mesh.addPod('client');
    server = await mesh.addPod('server');
    prom = await mesh.addPod('prom');
    await startL7Tool(server, ['http-tag', '::', '8080', 'web']);
    await startL7Tool(server, ['http-tag', '::', '8081', 'broken', 'fail']);

    const ca = await TestCa.create();
    const clientId = join(tmp.dir, 'client-id');
    const serverId = join(tmp.dir, 'server-id');
    for (const d of [clientId, serverId]) mkdirSync(d);
    await ca.writeIdentity(clientId, CLIENT_ID);
    await ca.writeIdentity(serverId, SERVER_ID);
    const metrics = ['metrics_address = 0.0.0.0:15090'];
    const clientConfig = writeConfig(tmp.dir, 'client.ini', [
      '[proxy]', ...metrics, `access_log = ${clientLog}`, `identity_dir = ${clientId}`, 'canonical_revision = v1',
      '[service web]', `addresses = ${vip(0)}:80`, `endpoints = ${server.ip4}:8080`, 'mtls = true', `identities = ${SERVER_ID}`,
      '[service broken]', `addresses = ${vip(1)}:80`, `endpoints = ${server.ip4}:8081`, 'mtls = true', `identities = ${SERVER_ID}`,
    ]);
    const serverConfig = writeConfig(tmp.dir, 'server.ini', [
      '[proxy]', ...metrics, `access_log = ${serverLog}`, `identity_dir = ${serverId}`, 'mtls_mode = strict',
    ]);
    // The metrics port is not captured (Istio excludes 15090 from inbound redirection the same way).
    await initOk(client, ['--exclude-inbound-ports', '15090']);
    await initOk(server, ['--exclude-inbound-ports', '15090']);
    clientProxy = await startProxy(client, ['--config', clientConfig]);
    serverProxy = await startProxy(server, ['--config', serverConfig]);

    const promConfig = join(tmp.dir, 'prometheus.yml');
    writeFileSync(promConfig, [
      'global:', '  scrape_interval: 1s', '  scrape_timeout: 1s', 'scrape_configs:', '  - job_name: remora',
      '    metrics_path: /stats/prometheus', '    static_configs:', `      - targets: ['${client.ip4}:15090', '${server.ip4}:15090']`, '',
    ].join('\n'));
    chmodSync(promConfig, 0o644);
    const data = join(tmp.dir, 'prom-data');
    mkdirSync(data);
    const p = prom.spawn(['prometheus', `--config.file=${promConfig}`, `--storage.tsdb.path=${data}`, '--web.listen-address=127.0.0.1:9090',
      '--log.level=warn']);
    p.stdout?.resume();
    p.stderr?.resume();
    await waitFor('prometheus ready', async () => {
      const r = await prom.exec(['curl', '-sS', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:9090/-/ready']);
      return r.stdout === '200' ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250 });
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  test('Prometheus scrapes both sidecars; PromQL returns the requests sent, by response code, from each reporter', opts, async () => {
    await waitFor('both targets up', async () => {
      const up = await query('up{job="remora"}');
      return up.length === 2 && up.every((s) => s.value[1] === '1') ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    const codes: string[] = [];
    for (const [n, count] of [[0, 7], [1, 3]] as const) {
      const r = await client.exec(['curl', '-sS', '--max-time', '20', '-w', '%{http_code}\\n',
        ...Array.from({ length: count }, (_, i) => ['-o', '/dev/null', `http://${vip(n)}/item/${i}`]).flat()], { timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      codes.push(...r.stdout.trim().split('\n'));
    }
    assert.deepEqual(tally(codes), { 200: 7, 503: 3 });

    const source = await waitFor('the client sidecar\'s counts in Prometheus', async () => {
      const v = byLabel(await query('sum by (response_code) (istio_requests_total{reporter="source"})'), 'response_code');
      return v['200'] === 7 && v['503'] === 3 ? v : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.deepEqual(source, { 200: 7, 503: 3 });
    const dest = await waitFor('the server sidecar\'s counts in Prometheus', async () => {
      const v = byLabel(await query('sum by (response_code) (istio_requests_total{reporter="destination"})'), 'response_code');
      return v['200'] === 7 && v['503'] === 3 ? v : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.deepEqual(dest, { 200: 7, 503: 3 });

    // Who talked to whom, as Kiali reads it.
    const edges = await query('sum by (source_principal, source_workload_namespace, destination_workload, connection_security_policy, destination_principal) (istio_requests_total{reporter="destination"})');
    assert.equal(edges.length, 1);
    assert.deepEqual(edges[0]?.metric, {
      source_principal: CLIENT_ID, source_workload_namespace: 'shop', destination_workload: 'server', connection_security_policy: 'mutual_tls',
      destination_principal: SERVER_ID,
    });
    const src = await query('sum by (source_workload, source_canonical_revision, destination_service_name, destination_principal) (istio_requests_total{reporter="source", response_code="200"})');
    assert.deepEqual(src[0]?.metric, { source_workload: 'client', source_canonical_revision: 'v1', destination_service_name: 'web', destination_principal: SERVER_ID });
    // The histograms: every request in the +Inf bucket and in _count.
    const count = await query('sum(istio_request_duration_milliseconds_count{reporter="destination"})');
    assert.equal(Number(count[0]?.value[1]), 10);
    const inf = await query('sum(istio_request_duration_milliseconds_bucket{reporter="source", le="+Inf"})');
    assert.equal(Number(inf[0]?.value[1]), 10);
    // remora's own: mesh mTLS handshakes on both sides.
    const hs = byLabel(await query('sum by (direction) (remora_mtls_handshakes_total{result="ok"})'), 'direction');
    assert.ok((hs.outbound ?? 0) >= 1 && (hs.inbound ?? 0) >= 1, JSON.stringify(hs));
  });

  test('promtool check metrics: only its lint about Istio\'s _milliseconds unit (the names stay Istio\'s)', opts, async () => {
    for (const pod of [client, server]) {
      const r = await pod.sh('curl -sS --max-time 5 http://127.0.0.1:15090/stats/prometheus | promtool check metrics');
      const problems = `${r.stdout}${r.stderr}`.split('\n').map((l) => l.trim()).filter((l) => l !== '');
      assert.ok(problems.length > 0, 'the expected lint is there');
      for (const p of problems) assert.match(p, /^istio_request_duration_milliseconds use base unit "seconds" instead of "milliseconds"$/, `${pod.name}: ${p}`);
      assert.ok(r.code === 0 || r.code === 3, `promtool exit ${r.code} (3 = lint findings only)`);
    }
    // Nothing else listens there: the admin API is not reachable through the metrics port.
    const other = await prom.exec(['curl', '-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://${client.ip4}:15090/config_dump`]);
    assert.equal(other.stdout, '404');
  });

  test('access logs: one JSON line per request on each sidecar, matching the traffic', opts, async () => {
    const read = (file: string): Record<string, unknown>[] => (existsSync(file) ? readFileSync(file, 'utf8') : '')
      .split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    const lines = await waitFor('10 lines in each access log', () => {
      const c = read(clientLog).filter((l) => l.kind === 'http');
      const s = read(serverLog).filter((l) => l.kind === 'http');
      return Promise.resolve(c.length >= 10 && s.length >= 10 ? { c, s } : undefined);
    }, { timeoutMs: 15_000, intervalMs: 200 });
    assert.equal(lines.c.length, 10);
    assert.equal(lines.s.length, 10);
    assert.deepEqual(tally(lines.c.map((l) => String(l.response_code))), { 200: 7, 503: 3 });
    assert.deepEqual(tally(lines.s.map((l) => String(l.response_code))), { 200: 7, 503: 3 });
    for (const l of lines.c) {
      assert.equal(l.direction, 'outbound');
      assert.equal(l.response_flags, '-');
      assert.match(String(l.path), /^\/item\/\d$/);
      assert.equal(l.upstream_host, `${server.ip4}:${l.upstream_cluster === 'web' ? 8080 : 8081}`);
    }
    // The same request on both sides: the request id the client sidecar made travels with it.
    const ids = new Set(lines.c.map((l) => l.request_id));
    for (const l of lines.s) {
      assert.equal(l.direction, 'inbound');
      assert.equal(l.downstream_peer_uri_san, CLIENT_ID);
      assert.ok(ids.has(l.request_id), `request id ${String(l.request_id)} logged by both sidecars`);
    }
    assert.equal((await clientProxy.stats()).errors.REMORA_ERR_INTERNAL, undefined);
    assert.equal((await serverProxy.stats()).errors.REMORA_ERR_INTERNAL, undefined);
  });
});
