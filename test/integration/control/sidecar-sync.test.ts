// A real `remora proxy --control` subscribed to a real `remora control`: snapshots pushed and applied through the
// proxy's reload (seen in its /config_dump), ACKs and a NACK visible in /api/v1/sidecars and `remora ctl sidecars`,
// the last good config kept on a NACK and while the control plane is down, and a resync when it returns.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ControlProcess, READ_TOKEN, REMORA, WRITE_TOKEN, adminGet, api, freePorts, runRemora, tempDir, waitFor } from './control-harness.js';

const SIDECAR_TOKEN = 'sidecar-token-0123456789abcdef';

interface SidecarJson { name: string; identity: string; connected: boolean; status: string; versionSent: number; versionApplied: number; lastNackError?: string }
interface DumpJson { version: number; services: { name: string }[]; routes: { name: string; backends: { weight: number }[] }[] }

test('a sidecar subscribes, applies pushed snapshots, NACKs one it cannot apply, and resyncs after the control plane returns', async () => {
  const tmp = tempDir('remora-sync-');
  const [controlPort = 0, outbound = 0, inbound = 0, admin = 0] = await freePorts(4);
  const dataDir = join(tmp.dir, 'data');
  const controlArgs = ['--token', `sidecar:${SIDECAR_TOKEN}`];
  let cp = new ControlProcess(dataDir, controlArgs, `127.0.0.1:${controlPort}`);
  const uid = process.geteuid?.() ?? 0;
  const gid = process.getegid?.() ?? 0;
  const proxyIni = join(tmp.dir, 'proxy.ini');
  writeFileSync(proxyIni, `[proxy]\noutbound_port = ${outbound}\ninbound_port = ${inbound}\nlisten_address = 127.0.0.1\n`
    + `admin_address = 127.0.0.1:${admin}\nuid = ${uid}\ngid = ${gid}\nlog_level = debug\n`
    // No iptables on loopback: no redirect probes (/ready then follows the listeners and the config), no drain grace.
    + 'readiness_probe_interval = off\ndrain_grace = 0\n');
  let proxyOut = '';
  let proxy: ChildProcess | undefined;
  let proxyExit: Promise<unknown> = Promise.resolve();
  try {
    await cp.ready();
    const ca = cp.root;
    // The sidecar starts after the control plane has written the mesh root it verifies it with.
    const child = spawn(process.execPath, [REMORA, 'proxy', '--config', proxyIni, '--control', `https://127.0.0.1:${controlPort}`, '--token', SIDECAR_TOKEN,
      '--control-ca-file', join(dataDir, 'root-cert.pem')], { env: { ...process.env, POD_NAME: 'pod-a' }, stdio: ['ignore', 'pipe', 'pipe'] });
    proxy = child;
    child.stdout.on('data', (d: Buffer) => { proxyOut += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { proxyOut += d.toString(); });
    proxyExit = new Promise((r) => { child.on('close', r); });
    const sidecars = async (): Promise<SidecarJson[]> => ((await api(cp.url, ca, 'GET', '/api/v1/sidecars', { token: READ_TOKEN })).json as { sidecars: SidecarJson[] }).sidecars;
    const dump = async (): Promise<DumpJson> => (await adminGet(admin, '/config_dump')).json as DumpJson;
    const applied = (revision: number) => waitFor(`pod-a to apply revision ${revision}`, async () => {
      const s = (await sidecars()).find((x) => x.name === 'pod-a');
      return s !== undefined && s.versionApplied === revision && s.status === 'SYNCED' ? s : undefined;
    });

    const apply = await api(cp.url, ca, 'POST', '/api/v1/apply', {
      token: WRITE_TOKEN,
      body: JSON.stringify({ writes: [
        { kind: 'service', name: 'web', version: 0, spec: { addresses: '10.96.0.10:80', endpoints: '10.1.0.1:8080 subset=v1, 10.1.0.2:8080 subset=v2' } },
        { kind: 'route', name: 'web', version: 0, spec: { service: 'web', backends: 'web/v1=100, web/v2=0' } },
      ] }),
    });
    assert.equal(apply.status, 200, apply.text);
    const rev1 = (apply.json as { revision: number }).revision;
    const synced = await applied(rev1);
    assert.equal(synced.connected, true);
    // The spawned sidecar reports its status on the sync connection (src/cli/proxy-control.ts): ready, no identity.
    const reported = await waitFor('pod-a\'s first status report', async () => {
      const r = (await api(cp.url, ca, 'GET', '/api/v1/sidecars', { token: READ_TOKEN })).json as { sidecars: (SidecarJson & { ready: boolean | null; certificate: unknown; statusAt: string | null })[] };
      const s = r.sidecars.find((x) => x.name === 'pod-a');
      return s?.statusAt !== null && s?.statusAt !== undefined ? s : undefined;
    });
    assert.deepEqual([reported.ready, reported.certificate], [true, null]);
    const eps = (await api(cp.url, ca, 'GET', '/api/v1/endpoints?service=web', { token: READ_TOKEN })).json as { endpoints: { address: string; labels: Record<string, string>; sidecars: number }[] };
    assert.deepEqual(eps.endpoints.map((e) => [e.address, e.labels, e.sidecars]), [['10.1.0.1:8080', { subset: 'v1' }, 1], ['10.1.0.2:8080', { subset: 'v2' }, 1]]);
    assert.deepEqual((await dump()).services.map((s) => s.name), ['web']);
    // The spawned sidecar reports its golden metrics on the same connection (every 5 s): the control plane counts it.
    await waitFor('pod-a\'s first metrics report', async () => {
      const m = (await api(cp.url, ca, 'GET', '/api/v1/metrics', { token: READ_TOKEN })).json as { sidecars: number };
      return m.sidecars >= 1 ? m : undefined;
    });

    // A canary shift reaches the sidecar's route table.
    const route = (await api(cp.url, ca, 'GET', '/api/v1/routes/web', { token: READ_TOKEN })).json as { version: number };
    const shift = await api(cp.url, ca, 'POST', '/api/v1/routes/web/weights', { token: WRITE_TOKEN, body: JSON.stringify({ weights: { 'web/v1': 90, 'web/v2': 10 }, version: route.version }) });
    assert.equal(shift.status, 200, shift.text);
    await applied((shift.json as { revision: number }).revision);
    assert.deepEqual((await dump()).routes.find((r) => r.name === 'web')?.backends.map((b) => b.weight), [90, 10]);
    const goodVersion = (await dump()).version;

    // The control plane has an identity to check mtls against; this sidecar has none: it NACKs and keeps serving.
    const web = (await api(cp.url, ca, 'GET', '/api/v1/services/web', { token: READ_TOKEN })).json as { version: number; spec: Record<string, string> };
    const mtls = await api(cp.url, ca, 'PUT', '/api/v1/services/web', { token: WRITE_TOKEN, body: JSON.stringify({ spec: { ...web.spec, mtls: 'true' }, version: web.version }) });
    assert.equal(mtls.status, 200, mtls.text);
    const rev3 = (mtls.json as { revision: number }).revision;
    const nacked = await waitFor('a NACK', async () => (await sidecars()).find((x) => x.name === 'pod-a' && x.status === 'NACKED'));
    assert.equal(nacked.versionSent, rev3);
    assert.ok(nacked.versionApplied < rev3);
    assert.match(nacked.lastNackError ?? '', /identity_dir/);
    assert.equal((await dump()).version, goodVersion, 'the last good config keeps serving');
    const table = await runRemora(['ctl', '--server', cp.url, '--token', READ_TOKEN, '--ca-file', join(dataDir, 'root-cert.pem'), 'sidecars']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`pod-a +- +NACKED +yes +yes +- +${rev3} +${nacked.versionApplied} +v${rev3}: .*identity_dir`));

    // Control plane down: traffic config unaffected; back: the sidecar reconnects and applies what changed.
    await cp.stop();
    assert.equal((await adminGet(admin, '/ready')).status, 200);
    assert.equal((await dump()).version, goodVersion);
    cp = new ControlProcess(dataDir, controlArgs, `127.0.0.1:${controlPort}`);
    await cp.ready();
    const fixed = await api(cp.url, ca, 'PUT', '/api/v1/services/web', { token: WRITE_TOKEN, body: JSON.stringify({ spec: { ...web.spec, connect_timeout: '2s' }, version: rev3 }) });
    assert.equal(fixed.status, 200, fixed.text);
    await applied((fixed.json as { revision: number }).revision);
    assert.ok((await dump()).version > goodVersion);
    assert.match(proxyOut, /"event":"control.sync.lost"/);
  } catch (err) {
    process.stderr.write(`--- proxy output ---\n${proxyOut.slice(-4000)}\n--- control output ---\n${cp.output.slice(-3000)}\n`);
    throw err;
  } finally {
    if (proxy !== undefined && proxy.exitCode === null && proxy.signalCode === null) {
      proxy.kill('SIGTERM');
      await Promise.race([proxyExit, new Promise((r) => { setTimeout(r, 10_000).unref(); })]);
      if (proxy.exitCode === null && proxy.signalCode === null) proxy.kill('SIGKILL');
    }
    await cp.stop();
    tmp.remove();
  }
});

test('a sidecar with --spiffe-id gets its workload certificate by CSR before it starts, and applies mTLS config with it', async () => {
  const tmp = tempDir('remora-csr-');
  const [controlPort = 0, outbound = 0, inbound = 0, admin = 0] = await freePorts(4);
  const dataDir = join(tmp.dir, 'data');
  const identityDir = join(tmp.dir, 'identity');
  const id = 'spiffe://cluster.local/ns/shop/sa/web';
  const cp = new ControlProcess(dataDir, ['--token', `sidecar:${SIDECAR_TOKEN}`], `127.0.0.1:${controlPort}`);
  let proxy: ChildProcess | undefined;
  let proxyExit: Promise<unknown> = Promise.resolve();
  let proxyOut = '';
  try {
    await cp.ready();
    const ca = cp.root;
    // The API refuses a CSR of another trust domain (422) and a read token (403).
    const { createCsr } = await import('../../../src/control/csr.js');
    const foreign = await api(cp.url, ca, 'POST', '/api/v1/certificates', { token: SIDECAR_TOKEN, body: JSON.stringify({ csr: (await createCsr('spiffe://other.td/ns/a/sa/b')).csrPem }) });
    assert.equal(foreign.status, 422);
    assert.match((foreign.json as { message: string }).message, /trust domain cluster\.local/);
    const readOnly = await api(cp.url, ca, 'POST', '/api/v1/certificates', { token: READ_TOKEN, body: JSON.stringify({ csr: (await createCsr(id)).csrPem }) });
    assert.equal(readOnly.status, 403);

    const proxyIni = join(tmp.dir, 'proxy.ini');
    writeFileSync(proxyIni, `[proxy]\noutbound_port = ${outbound}\ninbound_port = ${inbound}\nlisten_address = 127.0.0.1\n`
      + `admin_address = 127.0.0.1:${admin}\nuid = ${process.geteuid?.() ?? 0}\ngid = ${process.getegid?.() ?? 0}\nidentity_dir = ${identityDir}\n`);
    const child = spawn(process.execPath, [REMORA, 'proxy', '--config', proxyIni, '--control', cp.url, '--token', SIDECAR_TOKEN,
      '--control-ca-file', cp.rootFile, '--spiffe-id', id], { env: { ...process.env, POD_NAME: 'pod-mtls' }, stdio: ['ignore', 'pipe', 'pipe'] });
    proxy = child;
    child.stdout.on('data', (d: Buffer) => { proxyOut += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { proxyOut += d.toString(); });
    proxyExit = new Promise((r) => { child.on('close', r); });

    const certs = await waitFor('the proxy serving /certs', async () => {
      const r = await adminGet(admin, '/certs');
      return r.status === 200 ? r.json as { spiffeId?: string; identity?: { spiffeId?: string } } : undefined;
    });
    assert.match(JSON.stringify(certs), new RegExp(id.replaceAll('/', '\\/')));
    const chain = new X509Certificate(readFileSync(join(identityDir, 'cert-chain.pem')));
    assert.ok(chain.checkIssued(new X509Certificate(ca)));
    assert.ok(chain.checkPrivateKey(createPrivateKey(readFileSync(join(identityDir, 'key.pem')))));
    assert.equal((statSync(join(identityDir, 'key.pem')).mode & 0o777), 0o600);

    const put = await api(cp.url, ca, 'PUT', '/api/v1/services/api', {
      token: WRITE_TOKEN, body: JSON.stringify({ spec: { addresses: '10.96.0.20:8080', endpoints: '10.1.0.5:8080', mtls: 'true', identities: 'spiffe://cluster.local/ns/shop/sa/api' }, version: 0 }),
    });
    assert.equal(put.status, 200, put.text);
    const rev = (put.json as { revision: number }).revision;
    const synced = await waitFor('pod-mtls to apply the mTLS service', async () => {
      const list = ((await api(cp.url, ca, 'GET', '/api/v1/sidecars', { token: READ_TOKEN })).json as { sidecars: SidecarJson[] }).sidecars;
      return list.find((s) => s.name === 'pod-mtls' && s.versionApplied === rev && s.status === 'SYNCED');
    });
    assert.equal(synced.identity, id);
    assert.match(cp.output, /"event":"control.ca.issued","spiffeId":"spiffe:\/\/cluster.local\/ns\/shop\/sa\/web"/);
  } catch (err) {
    process.stderr.write(`--- proxy output ---\n${proxyOut.slice(-4000)}\n--- control output ---\n${cp.output.slice(-3000)}\n`);
    throw err;
  } finally {
    if (proxy !== undefined && proxy.exitCode === null && proxy.signalCode === null) {
      proxy.kill('SIGTERM');
      await Promise.race([proxyExit, new Promise((r) => { setTimeout(r, 10_000).unref(); })]);
      if (proxy.exitCode === null && proxy.signalCode === null) proxy.kill('SIGKILL');
    }
    await cp.stop();
    tmp.remove();
  }
});
