// The sidecars' golden metrics at the control plane: a real `remora control` (process) and a real proxy on loopback
// (test/support/proxy-rig.ts: no iptables, the original destination injected) subscribed with the real SyncClient.
// The service is applied through the API and pushed to the sidecar; requests through it (some 503) show up in
// GET /api/v1/metrics as that service's counts and success rate, and as a client -> web edge. Bounded waits only.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { runCtlCommand } from '../../../src/cli/ctl-command.js';
import { startRig } from '../../support/proxy-rig.js';
import { ControlProcess, READ_TOKEN, WRITE_TOKEN, api, freePorts, tempDir, waitFor } from './control-harness.js';
import { getStatus, syncRig } from './rig-sync.js';

const SIDECAR_TOKEN = 'sidecar-token-0123456789abcdef';
const VIP = '10.255.0.20';

interface Stat { name?: string; source?: string; destination?: string; requests: number; rps: number; successRate: number | null; p50: number | null; p95: number | null; p99: number | null; mtls?: boolean; tcpConnections?: number }
interface MetricsJson { window: string; services: Stat[]; edges: Stat[]; sidecars: number }

test('requests through a subscribed sidecar show up in GET /api/v1/metrics: counts, success rate, quantiles, the edge', { timeout: 60_000 }, async (t) => {
  const tmp = tempDir('remora-metrics-');
  const [controlPort = 0] = await freePorts(1);
  const cp = new ControlProcess(`${tmp.dir}/data`, ['--token', `sidecar:${SIDECAR_TOKEN}`], `127.0.0.1:${controlPort}`);
  t.after(async () => { await cp.stop(); tmp.remove(); });
  const app = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => { res.writeHead(req.url === '/fail' ? 503 : 200).end('x\n'); });
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.after(() => { app.closeAllConnections(); app.close(); });
  const appPort = (app.address() as AddressInfo).port;
  try {
    await cp.ready();
    const ca = cp.root;
    const local = '[proxy]\nworkload_name = client\nworkload_namespace = shop\n';
    const rig = await startRig(t, local, { httpEngine: true, detectTimeout: 5_000 });
    const client = syncRig(t, rig, { server: cp.url, token: SIDECAR_TOKEN, ca, local, identity: () => '', metrics: () => rig.proxy.golden() });

    // Bad calls first: no token 401, a read token cannot report 403, a malformed report 400, an unknown window 400.
    assert.equal((await api(cp.url, ca, 'GET', '/api/v1/metrics')).status, 401);
    assert.equal((await api(cp.url, ca, 'POST', '/api/v1/sync/metrics', { token: READ_TOKEN, body: '{}' })).status, 403);
    const bad = await api(cp.url, ca, 'POST', '/api/v1/sync/metrics', { token: SIDECAR_TOKEN, body: JSON.stringify({ name: 'x', epoch: 'e', seq: 1, edges: [{ reporter: 'sideways' }] }) });
    assert.equal(bad.status, 400);
    assert.match((bad.json as { message: string }).message, /edges\[0\]\.reporter/);
    assert.equal((await api(cp.url, ca, 'GET', '/api/v1/metrics?window=2h', { token: READ_TOKEN })).status, 400);
    const doc = (await api(cp.url, ca, 'GET', '/api/v1/openapi.json')).json as { paths: Record<string, unknown> };
    for (const p of ['/api/v1/metrics', '/api/v1/sync/metrics']) assert.ok(p in doc.paths, `${p} in the OpenAPI description`);

    const applied = await api(cp.url, ca, 'POST', '/api/v1/apply', {
      token: WRITE_TOKEN,
      body: JSON.stringify({ writes: [{ kind: 'service', name: 'web', version: 0, spec: { addresses: `${VIP}:80`, endpoints: `127.0.0.1:${appPort}` } }] }),
    });
    assert.equal(applied.status, 200, applied.text);
    const revision = (applied.json as { revision: number }).revision;
    await waitFor(`the sidecar to apply revision ${revision}`, () => Promise.resolve(client.appliedVersion >= revision ? true : undefined));

    rig.dst(VIP, 80);
    for (let i = 0; i < 6; i++) assert.equal(await getStatus(rig.port, '/'), 200);
    for (let i = 0; i < 3; i++) assert.equal(await getStatus(rig.port, '/fail'), 503);

    const metrics = await waitFor('web\'s 9 requests in /api/v1/metrics', async () => {
      const r = await api(cp.url, ca, 'GET', '/api/v1/metrics?window=1m', { token: READ_TOKEN });
      const m = r.json as MetricsJson;
      return r.status === 200 && m.services.find((s) => s.name === 'web')?.requests === 9 ? m : undefined;
    });
    assert.equal(metrics.window, '1m');
    assert.equal(metrics.sidecars, 1);
    const web = metrics.services.find((s) => s.name === 'web');
    assert.ok(web !== undefined);
    assert.equal(web.successRate, 0.6667);
    assert.ok(web.rps > 0);
    for (const q of [web.p50, web.p95, web.p99]) assert.ok(typeof q === 'number' && q > 0, `a quantile of 9 requests: ${String(q)}`);
    assert.ok((web.p50 ?? 0) <= (web.p95 ?? 0) && (web.p95 ?? 0) <= (web.p99 ?? 0));
    assert.equal(web.tcpConnections, 0);
    const edge = metrics.edges.find((e) => e.destination === 'web');
    assert.deepEqual(edge && { source: edge.source, requests: edge.requests, successRate: edge.successRate, mtls: edge.mtls },
      { source: 'client', requests: 9, successRate: 0.6667, mtls: false });
    // remora ctl stat: the same numbers as a table, and as JSON.
    const out: string[] = [];
    const io = { out: (x: string) => { out.push(x); }, err: (x: string) => { out.push(x); } };
    const ctl = ['--server', cp.url, '--token', READ_TOKEN, '--ca-file', cp.rootFile, 'stat'];
    assert.equal(await runCtlCommand(ctl, {}, io), 0, out.join(''));
    assert.match(out.join(''), /^web +66\.67% +\d+\.\d+rps +\S+ms +\S+ms +\S+ms +0$/m);
    out.length = 0;
    assert.equal(await runCtlCommand([...ctl, '-w', '5m', '-o', 'json'], {}, io), 0, out.join(''));
    const statJson = JSON.parse(out.join('')) as MetricsJson;
    assert.equal(statJson.window, '5m');
    assert.equal(statJson.services.find((s) => s.name === 'web')?.requests, 9);
    out.length = 0;
    assert.equal(await runCtlCommand([...ctl, '-w', '2h'], {}, io), 2);
    // The wider windows hold the same requests; later reports (cumulative) do not count them twice.
    const before = client.reportsAccepted;
    await waitFor('two more reports', () => Promise.resolve(client.reportsAccepted >= before + 2 ? true : undefined));
    const wide = (await api(cp.url, ca, 'GET', '/api/v1/metrics?window=15m', { token: READ_TOKEN })).json as MetricsJson;
    assert.equal(wide.services.find((s) => s.name === 'web')?.requests, 9);
  } catch (err) {
    process.stderr.write(`--- control output ---\n${cp.output.slice(-3000)}\n`);
    throw err;
  }
});
