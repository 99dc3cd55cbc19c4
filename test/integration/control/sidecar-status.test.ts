// What the web UI reads about the sidecars (issue 14, contract-14): a real `remora control` (process) and a real proxy on
// loopback (test/support/proxy-rig.ts: no iptables, the original destination injected) subscribed with the real
// SyncClient, reporting the proxy's own status (Proxy.status(), what `remora proxy --control` sends). Real traffic
// through it, then each endpoint's JSON:
//   GET /api/v1/sidecars        ready, the certificate (identity, notAfter and serial equal to the file's), the roots
//   GET /api/v1/endpoints       an endpoint ejected after connect failures, the other healthy
//   GET /api/v1/policies/stats  a request denied under its deny policy, allowed under its allow policy, an audit
//                               policy's audited and would-deny counts
//   GET /api/v1/routes/split    a 3:1 route: the requests per backend equal what each backend's server counted
// and the sidecar watch's event when the status arrives. Bounded waits only.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { runCtlCommand } from '../../../src/cli/ctl-command.js';
import { SyncClient } from '../../../src/control/sync-client.js';
import { spiffe, TestCa } from '../../support/mesh-pki.js';
import { startRig } from '../../support/proxy-rig.js';
import { ControlProcess, READ_TOKEN, WRITE_TOKEN, api, freePorts, tempDir, waitFor, watch } from './control-harness.js';
import { getStatus, syncRig } from './rig-sync.js';

const SIDECAR_TOKEN = 'sidecar-token-0123456789abcdef';
const WEB_VIP = '10.255.0.30';
const FLAKY_VIP = '10.255.0.31';

interface SidecarJson { name: string; ready: boolean | null; certificate: { identity: string; notAfter: string; serial: string } | null; rootsNotAfter: string[]; statusAt: string | null }
interface EndpointJson { service: string; address: string; labels: Record<string, string>; weight: number; healthy: number; ejected: number; ejections: number; sidecars: number; activeConnections: number }
interface PolicyJson { name: string; action: string; allowed: number; denied: number; audited: number; wouldDeny: number }
interface SplitJson { route: string; service: string; backends: { backend: string; weight: number; requests: number; share: number }[] }

/** An HTTP server on loopback that counts its requests. */
async function counted(t: { after: (fn: () => void) => void }): Promise<{ port: number; count: () => number }> {
  let n = 0;
  const app = http.createServer((req, res) => {
    n++;
    req.resume();
    req.on('end', () => { res.writeHead(200).end('ok\n'); });
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.after(() => { app.closeAllConnections(); app.close(); });
  return { port: (app.address() as AddressInfo).port, count: () => n };
}

test('the sidecar status reports: readiness and certificate, endpoint health, policy counts, the live route split', { timeout: 90_000 }, async (t) => {
  const tmp = tempDir('remora-status-');
  const [controlPort = 0, deadPort = 0] = await freePorts(2);
  const cp = new ControlProcess(`${tmp.dir}/data`, ['--token', `sidecar:${SIDECAR_TOKEN}`], `127.0.0.1:${controlPort}`);
  t.after(async () => { await cp.stop(); tmp.remove(); });
  const v1 = await counted(t);
  const v2 = await counted(t);
  try {
    await cp.ready();
    const ca = cp.root;
    // The sidecar's workload identity, from a test CA (the files the proxy reads from identity_dir).
    const mesh = await TestCa.create();
    const identityDir = join(tmp.dir, 'identity');
    const spiffeId = spiffe('shop', 'client');
    await mesh.writeIdentity(identityDir, spiffeId);
    const fileCert = new X509Certificate(readFileSync(join(identityDir, 'cert-chain.pem')));
    const fileRoot = new X509Certificate(readFileSync(join(identityDir, 'root-cert.pem')));

    const local = `[proxy]\nworkload_name = client\nworkload_namespace = shop\nidentity_dir = ${identityDir}\n`;
    const rig = await startRig(t, local, { httpEngine: true, detectTimeout: 5_000 });
    const watcher = watch(cp.url, ca, READ_TOKEN, '', '/api/v1/sidecars/watch');
    t.after(() => { watcher.close(); });
    const client = syncRig(t, rig, {
      server: cp.url, token: SIDECAR_TOKEN, ca, local, identity: () => rig.proxy.runtime.mesh?.identity.spiffeId ?? '', status: () => rig.proxy.status(),
    });
    // A sidecar that never reports status: null fields, not made-up ones.
    const quiet = new SyncClient({
      server: cp.url, token: SIDECAR_TOKEN, ca, name: 'pod-quiet', identity: () => '', apply: () => ({ ok: true }), log: pino({ level: 'silent' }),
    });
    quiet.start();
    t.after(() => { quiet.stop(); });

    // Refusals: no token 401, a read token cannot report 403, a malformed report 400 naming the field, a bad window 400.
    assert.equal((await api(cp.url, ca, 'GET', '/api/v1/endpoints')).status, 401);
    assert.equal((await api(cp.url, ca, 'POST', '/api/v1/sync/status', { token: READ_TOKEN, body: '{}' })).status, 403);
    const bad = await api(cp.url, ca, 'POST', '/api/v1/sync/status', {
      token: SIDECAR_TOKEN,
      body: JSON.stringify({ name: 'x', epoch: 'e', seq: 1, ready: true, readyReason: 'ready', certificate: null, rootsNotAfter: [], endpoints: [{ service: 'web' }], policies: [], routes: [] }),
    });
    assert.equal(bad.status, 400);
    assert.match((bad.json as { message: string }).message, /endpoints\[0\]\.address/);
    for (const path of ['/api/v1/policies/stats?window=2h', '/api/v1/routes/split?window=1h']) {
      const r = await api(cp.url, ca, 'GET', path, { token: READ_TOKEN });
      assert.equal(r.status, 400, path);
      assert.match((r.json as { message: string }).message, /window: expected one of 1m, 5m, 15m/);
    }
    const doc = (await api(cp.url, ca, 'GET', '/api/v1/openapi.json')).json as { paths: Record<string, unknown> };
    for (const p of ['/api/v1/endpoints', '/api/v1/policies/stats', '/api/v1/routes/split', '/api/v1/sync/status']) assert.ok(p in doc.paths, `${p} in the OpenAPI description`);

    const applied = await api(cp.url, ca, 'POST', '/api/v1/apply', {
      token: WRITE_TOKEN,
      body: JSON.stringify({ writes: [
        { kind: 'service', name: 'web', version: 0, spec: { addresses: `${WEB_VIP}:80`, endpoints: `127.0.0.1:${v1.port} subset=v1 zone=a, 127.0.0.1:${v2.port} subset=v2 weight=2` } },
        { kind: 'route', name: 'web-split', version: 0, spec: { service: 'web', backends: 'web/v1=75, web/v2=25' } },
        // A route *named* split (never matched here): GET /api/v1/routes/split is the live split, ctl still reads it.
        { kind: 'route', name: 'split', version: 0, spec: { service: 'web', match_path_exact: '/never', order: '9', backends: 'web/v1=50, web/v2=50' } },
        { kind: 'service', name: 'flaky', version: 0, spec: { addresses: `${FLAKY_VIP}:80`, endpoints: `127.0.0.1:${v1.port}, 127.0.0.1:${deadPort}`, eject_after_failures: '1', eject_base_time: '5m' } },
        { kind: 'authorization', name: 'deny-admin', version: 0, spec: { action: 'deny', paths: '/admin' } },
        { kind: 'authorization', name: 'allow-get', version: 0, spec: { action: 'allow', methods: 'GET' } },
        { kind: 'authorization', name: 'audit-get', version: 0, spec: { action: 'audit', methods: 'GET' } },
      ] }),
    });
    assert.equal(applied.status, 200, applied.text);
    const revision = (applied.json as { revision: number }).revision;
    await waitFor(`the sidecar to apply revision ${revision}`, () => Promise.resolve(client.appliedVersion >= revision ? true : undefined));

    // Sidecars: ready, the certificate in force is the file's, the roots' expiry; the quiet one has nulls.
    const sidecars = async (): Promise<SidecarJson[]> => ((await api(cp.url, ca, 'GET', '/api/v1/sidecars', { token: READ_TOKEN })).json as { sidecars: SidecarJson[] }).sidecars;
    const me = await waitFor('pod-client\'s status', async () => {
      const s = (await sidecars()).find((x) => x.name === 'pod-client');
      return s?.ready === true && s.certificate !== null ? s : undefined;
    });
    assert.deepEqual(me.certificate, { identity: spiffeId, notAfter: new Date(fileCert.validTo).toISOString(), serial: fileCert.serialNumber.toLowerCase() });
    assert.deepEqual(me.rootsNotAfter, [new Date(fileRoot.validTo).toISOString()]);
    assert.ok(me.statusAt !== null && Math.abs(Date.parse(me.statusAt) - Date.now()) < 60_000, `statusAt ${String(me.statusAt)}`);
    const q = (await sidecars()).find((x) => x.name === 'pod-quiet');
    assert.deepEqual(q && { ready: q.ready, certificate: q.certificate, rootsNotAfter: q.rootsNotAfter, statusAt: q.statusAt },
      { ready: null, certificate: null, rootsNotAfter: [], statusAt: null });
    // The sidecar watch sent the list with the status once it arrived.
    await watcher.next((e) => e.event === 'sidecars' && (JSON.parse(e.data) as { sidecars: SidecarJson[] }).sidecars.some((s) => s.name === 'pod-client' && s.certificate?.serial === me.certificate?.serial));

    // The route split: 200 requests through the 3:1 route; each backend's server counts what it got.
    rig.dst(WEB_VIP, 80);
    for (let i = 0; i < 200; i++) assert.equal(await getStatus(rig.port, '/'), 200);
    const [n1, n2] = [v1.count(), v2.count()];
    assert.equal(n1 + n2, 200);
    const split = await waitFor('the 200 requests in /api/v1/routes/split', async () => {
      const r = (await api(cp.url, ca, 'GET', '/api/v1/routes/split?window=1m', { token: READ_TOKEN })).json as { window: string; routes: SplitJson[] };
      const route = r.routes.find((x) => x.route === 'web-split');
      return route !== undefined && route.backends.reduce((a, b) => a + b.requests, 0) === 200 ? { ...r, route } : undefined;
    });
    assert.equal(split.window, '1m');
    assert.equal(split.route.service, 'web');
    assert.deepEqual(split.route.backends.map((b) => [b.backend, b.weight, b.requests]), [['web/v1', 75, n1], ['web/v2', 25, n2]]);
    const [s1, s2] = split.route.backends;
    assert.equal(s1?.share, Math.round((n1 / 200) * 10_000) / 10_000);
    // 3:1 measured: 75 % expected; 200 draws put the share within 0.6-0.9 but for a 1-in-10^5 fluke.
    assert.ok((s1?.share ?? 0) > 0.6 && (s1?.share ?? 0) < 0.9, `v1's share ${String(s1?.share)}`);
    assert.ok(Math.abs((s1?.share ?? 0) + (s2?.share ?? 0) - 1) < 0.001);

    // An endpoint that refuses connections is ejected (eject_after_failures = 1); the other stays healthy.
    rig.dst(FLAKY_VIP, 80);
    const dead = `127.0.0.1:${deadPort}`;
    await waitFor('the dead endpoint ejected at the sidecar', async () => {
      assert.equal(await getStatus(rig.port, '/'), 200); // retried on the live endpoint
      return rig.proxy.runtime.clusters.get('flaky')?.status().endpoints.find((e) => e.endpoint === dead)?.ejected === true ? true : undefined;
    });
    const eps = await waitFor('the ejection in /api/v1/endpoints', async () => {
      const r = (await api(cp.url, ca, 'GET', '/api/v1/endpoints?service=flaky', { token: READ_TOKEN })).json as { endpoints: EndpointJson[] };
      return r.endpoints.find((e) => e.address === dead)?.ejected === 1 ? r.endpoints : undefined;
    });
    assert.deepEqual(eps.map((e) => [e.service, e.address, e.healthy, e.ejected, e.ejections, e.sidecars]).sort(),
      [['flaky', `127.0.0.1:${v1.port}`, 1, 0, 0, 1], ['flaky', dead, 0, 1, 1, 1]].sort());
    // Exactly the contract's fields (contract-14), for the UI.
    assert.deepEqual(Object.keys(eps[0] ?? {}).sort(), ['activeConnections', 'address', 'ejected', 'ejections', 'healthy', 'labels', 'service', 'sidecars', 'weight']);
    assert.deepEqual(Object.keys(me).filter((k) => ['ready', 'certificate', 'rootsNotAfter', 'statusAt'].includes(k)).sort(), ['certificate', 'ready', 'rootsNotAfter', 'statusAt']);
    // Without ?service: every service's endpoints, with their labels and weights as configured.
    const all = ((await api(cp.url, ca, 'GET', '/api/v1/endpoints', { token: READ_TOKEN })).json as { endpoints: EndpointJson[] }).endpoints;
    const web = all.filter((e) => e.service === 'web');
    assert.deepEqual(web.map((e) => [e.address, e.labels, e.weight, e.healthy]).sort(),
      [[`127.0.0.1:${v1.port}`, { subset: 'v1', zone: 'a' }, 1, 1], [`127.0.0.1:${v2.port}`, { subset: 'v2' }, 2, 1]].sort());
    assert.ok(all.some((e) => e.service === 'flaky'));

    // Policies: inbound requests to the app (the rig's inbound listener): 2 denied by deny-admin (and audited: GET),
    // 3 allowed by allow-get (audited, and so would be denied by audit-get as a deny policy).
    rig.dst('127.0.0.1', v1.port);
    for (let i = 0; i < 2; i++) assert.equal(await getStatus(rig.inboundPort, '/admin'), 403);
    for (let i = 0; i < 3; i++) assert.equal(await getStatus(rig.inboundPort, '/'), 200);
    const policies = await waitFor('the decisions in /api/v1/policies/stats', async () => {
      const r = (await api(cp.url, ca, 'GET', '/api/v1/policies/stats?window=5m', { token: READ_TOKEN })).json as { window: string; policies: PolicyJson[] };
      return r.policies.find((p) => p.name === 'audit-get')?.audited === 5 && r.policies.find((p) => p.name === 'allow-get')?.allowed === 3 ? r : undefined;
    });
    assert.equal(policies.window, '5m');
    assert.deepEqual(policies.policies, [
      { name: 'allow-get', action: 'allow', allowed: 3, denied: 0, audited: 0, wouldDeny: 0 },
      { name: 'audit-get', action: 'audit', allowed: 0, denied: 0, audited: 5, wouldDeny: 3 },
      { name: 'deny-admin', action: 'deny', allowed: 0, denied: 2, audited: 0, wouldDeny: 0 },
    ]);

    // remora ctl sidecars: READY and CERT EXPIRES columns.
    const out: string[] = [];
    const io = { out: (x: string) => { out.push(x); }, err: (x: string) => { out.push(x); } };
    const ctl = ['--server', cp.url, '--token', READ_TOKEN, '--ca-file', cp.rootFile];
    assert.equal(await runCtlCommand([...ctl, 'sidecars'], {}, io), 0, out.join(''));
    const table = out.join('');
    assert.match(table.split('\n')[0] ?? '', /READY +CERT EXPIRES/);
    assert.match(table, new RegExp(`^pod-client .* yes +yes +${new Date(fileCert.validTo).toISOString().slice(0, 16).replace('T', ' ')} +\\d+ +\\d+`, 'm'));
    assert.match(table, /^pod-quiet .* yes +- +- +\d+ +\d+/m);
    // remora ctl endpoints, stat --policies, stat --routes: the same numbers as tables.
    out.length = 0;
    assert.equal(await runCtlCommand([...ctl, 'endpoints', 'flaky'], {}, io), 0, out.join(''));
    assert.match(out.join(''), new RegExp(`^flaky +${dead.replaceAll('.', '\\.')} +- +1 +0/1 +1/1 +1 +\\d+$`, 'm'));
    out.length = 0;
    assert.equal(await runCtlCommand([...ctl, 'stat', '--policies', '-w', '5m'], {}, io), 0, out.join(''));
    assert.match(out.join(''), /^audit-get +audit +0 +0 +5 +3$/m);
    assert.match(out.join(''), /^deny-admin +deny +0 +2 +- +-$/m);
    out.length = 0;
    assert.equal(await runCtlCommand([...ctl, 'stat', '--routes'], {}, io), 0, out.join(''));
    assert.match(out.join(''), new RegExp(`^web-split +web +web/v1 +75 +${n1} +\\d+\\.\\d%$`, 'm'));
    assert.match(out.join(''), /^split +web +web\/v1 +50 +0 +0\.0%$/m);
    // The route named split: ctl get and set-weights read it from the list (its GET path is the live split's).
    out.length = 0;
    assert.equal(await runCtlCommand([...ctl, 'get', 'route', 'split', '-o', 'json'], {}, io), 0, out.join(''));
    assert.equal((JSON.parse(out.join('')) as { spec: { backends: string } }).spec.backends, 'web/v1=50, web/v2=50');
    out.length = 0;
    const wctl = ['--server', cp.url, '--token', WRITE_TOKEN, '--ca-file', cp.rootFile];
    assert.equal(await runCtlCommand([...wctl, 'set-weights', 'split', 'web/v1=10', 'web/v2=90'], {}, io), 0, out.join(''));
    const routes = ((await api(cp.url, ca, 'GET', '/api/v1/routes', { token: READ_TOKEN })).json as { items: { name: string; spec: { backends: string } }[] }).items;
    assert.equal(routes.find((r) => r.name === 'split')?.spec.backends, 'web/v1=10, web/v2=90');
    out.length = 0;
    assert.equal(await runCtlCommand([...ctl, 'get', 'endpoints', 'flaky'], {}, io), 0, out.join(''));
    assert.match(out.join(''), /^SERVICE +ENDPOINT +LABELS/);
  } catch (err) {
    process.stderr.write(`--- control output ---\n${cp.output.slice(-3000)}\n`);
    throw err;
  }
});
