// The control plane driving real pods (issue 13, the demo's scenario as a test): a real `remora control` in its own
// pod, listening only on that pod's address on the bridge; a client pod and a server pod, each with `remora init`
// rules and a `remora proxy` subscribed over the network through its INI file ([proxy] control, control_token,
// control_ca_file); two versions of a server (http-app v1 on :8081, v2 on :8082 in the server pod). The mesh state is
// applied with `remora ctl apply -f`, then checked:
// - both sidecars are connected and SYNCED at the applied revision (`remora ctl sidecars -o json`), and their
//   connections to the control plane come from the pods' own addresses (ss in the control pod);
// - `remora ctl set-weights` moves the split: 100/0 -> every request to v1; 0/100 -> every request to v2 (counted
//   from the app's answers, 20 requests each);
// - the control plane killed (SIGKILL): the sidecars log control.sync.lost, stay ready, and the traffic keeps the last
//   applied split (20 of 20 to v2);
// - restarted on the same data directory: both sidecars reconnect and report SYNCED at the revision they kept; a new
//   set-weights (back to v1) reaches them and moves the traffic again.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { countBy, curlTag, tempDir, writeConfig } from './l4-helpers.js';
import { initOk, startTool, waitForLog } from './proxy-helpers.js';
import { outputLines, REMORA_BIN, startProxy, type RunningProxy } from './remora-process.js';

const base = netnsTestOptions();
const opts = { ...base, timeout: 240_000 };

const WRITE_TOKEN = 'demo-write-0123456789abcdef';
const READ_TOKEN = 'demo-read-0123456789abcdef';
const SIDECAR_TOKEN = 'demo-sidecar-0123456789abcdef';
const CONTROL_PORT = 15012;
const REQUESTS = 20;

interface SidecarView {
  readonly name: string;
  readonly connected: boolean;
  readonly status: string;
  readonly versionSent: number;
  readonly versionApplied: number;
  readonly lastNackError?: string;
}
interface SidecarsView { readonly revision: number; readonly sidecars: readonly SidecarView[] }

describe('control plane: remora ctl drives two subscribed sidecars across pods', opts, () => {
  let mesh: Mesh;
  let cpPod: Pod;
  let client: Pod;
  let server: Pod;
  let control: { child: ChildProcess; lines: string[] } | undefined;
  let clientCar: RunningProxy;
  let serverCar: RunningProxy;
  let vip = '';
  const tmp = tempDir('remora-control-demo-');
  const dataDir = join(tmp.dir, 'control');
  const rootFile = join(dataDir, 'root-cert.pem');

  const url = (): string => `https://${cpPod.ip4}:${CONTROL_PORT}`;

  /** Start `remora control` in its pod; resolves once it listens (bounded), rejects with its output if it exits. */
  async function startControl(): Promise<{ child: ChildProcess; lines: string[] }> {
    const child = cpPod.spawn([process.execPath, REMORA_BIN, 'control', '--data-dir', dataDir, '--listen', `${cpPod.ip4}:${CONTROL_PORT}`,
      '--token', WRITE_TOKEN, '--token', `read:${READ_TOKEN}`, '--token', `sidecar:${SIDECAR_TOKEN}`]);
    const lines = outputLines(child);
    await waitFor('remora control to listen', async () => {
      if (child.exitCode !== null) throw new Error(`remora control exited ${child.exitCode}: ${lines.join('\n')}`);
      return lines.some((l) => l.includes('"event":"control.listening"')) && existsSync(rootFile) ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100 });
    return { child, lines };
  }

  /** `remora ctl ARGS` from the control pod; returns stdout, fails with stderr on a non-zero exit. */
  async function ctl(args: readonly string[]): Promise<string> {
    const r = await cpPod.exec([process.execPath, REMORA_BIN, 'ctl', '--server', url(), '--token', WRITE_TOKEN, '--ca-file', rootFile, ...args], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, `remora ctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  async function sidecars(): Promise<SidecarsView> {
    return JSON.parse(await ctl(['sidecars', '-o', 'json'])) as SidecarsView;
  }

  /** Both sidecars connected and SYNCED at `revision` (bounded wait; the last answer in the error). */
  async function synced(revision: number, timeoutMs = 20_000): Promise<SidecarsView> {
    let last: SidecarsView | undefined;
    try {
      return await waitFor(`client and server SYNCED at revision ${revision}`, async () => {
        last = await sidecars();
        const ok = ['client', 'server'].every((n) => last?.sidecars.some((s) => s.name === n && s.connected && s.status === 'SYNCED' && s.versionApplied === revision) === true);
        return ok ? last : undefined;
      }, { timeoutMs, intervalMs: 250 });
    } catch (err) {
      throw new Error(`${String(err)}; last /api/v1/sidecars: ${JSON.stringify(last)}`);
    }
  }

  /** The revision a `set-weights` printed ("route/web weights ... (revision N; ...)"). */
  async function setWeights(pairs: readonly string[]): Promise<number> {
    const out = await ctl(['set-weights', 'web', ...pairs]);
    const m = /\(revision (\d+);/.exec(out);
    assert.ok(m !== null, `set-weights printed no revision: ${out}`);
    return Number(m[1]);
  }

  /** Which version answered each of REQUESTS requests from the client pod to web's address. */
  async function split(): Promise<Record<string, number>> {
    const tags: string[] = [];
    for (let i = 0; i < REQUESTS; i++) tags.push(await curlTag(client, vip, 80));
    return countBy(tags);
  }

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    cpPod = await mesh.addPod('control');
    client = await mesh.addPod('client');
    server = await mesh.addPod('server');
    vip = `${mesh.prefix4}.100`; // on the pods' subnet, assigned to nobody: only the sidecars know it
    control = await startControl();

    const meshIni = writeConfig(tmp.dir, 'mesh.ini', [
      '[service web]', `addresses = ${vip}:80`, 'protocol = http',
      `endpoints = ${server.ip4}:8081 subset=v1, ${server.ip4}:8082 subset=v2`,
      '', '[route web]', 'service = web', 'backends = web/v1=100, web/v2=0',
    ]);
    assert.match(await ctl(['apply', '-f', meshIni]), /service\/web created[\s\S]*route\/web created[\s\S]*revision 1/);

    await startTool(server, ['http-app', '::', '8081', 'v1']);
    await startTool(server, ['http-app', '::', '8082', 'v2']);
    const subscribe = (pod: Pod): string => writeConfig(tmp.dir, `${pod.name}.ini`, [
      '[proxy]', `control = ${url()}`, `control_token = ${SIDECAR_TOKEN}`, `control_ca_file = ${rootFile}`,
    ]);
    for (const pod of [client, server]) await initOk(pod);
    clientCar = await startProxy(client, ['--config', subscribe(client)], { env: { POD_NAME: 'client' } });
    serverCar = await startProxy(server, ['--config', subscribe(server)], { env: { POD_NAME: 'server' } });
  });

  after(async () => {
    if (opts.skip !== undefined) return;
    await mesh?.destroy();
    tmp.remove();
  });

  test('both sidecars subscribe over the network and apply the revision ctl applied', async () => {
    const view = await synced(1);
    assert.equal(view.revision, 1);
    for (const s of view.sidecars) assert.equal(s.versionSent, 1, JSON.stringify(s));
    // Their streams come from the pods' own addresses, across the bridge, to the control pod's address.
    const ss = await cpPod.execOk(['ss', '-Htn', 'state', 'established', `( sport = :${CONTROL_PORT} )`]);
    const peers = new Set(ss.split('\n').filter((l) => l.trim() !== '').map((l) => (l.trim().split(/\s+/).at(-1) ?? '').replace(/:\d+$/, '')));
    assert.ok(peers.has(client.ip4) && peers.has(server.ip4), `connections to :${CONTROL_PORT}: ${ss}`);
    const table = await ctl(['sidecars']);
    assert.match(table, /^client +- +SYNCED +yes +(?:yes|no|-) +(?:-|\d{4}-\d\d-\d\d \d\d:\d\d) +1 +1/m); // READY, CERT EXPIRES
    assert.match(table, /^server +- +SYNCED +yes +(?:yes|no|-) +(?:-|\d{4}-\d\d-\d\d \d\d:\d\d) +1 +1/m); // READY, CERT EXPIRES
  });

  test('set-weights moves the split: 100/0 -> all v1, 0/100 -> all v2', async () => {
    assert.deepEqual(await split(), { v1: REQUESTS });
    const rev = await setWeights(['web/v1=0', 'web/v2=100']);
    assert.equal(rev, 2);
    await synced(rev);
    assert.deepEqual(await split(), { v2: REQUESTS });
  });

  test('control plane killed: traffic keeps the last applied split; restarted: the sidecars resync and follow a new shift', async () => {
    assert.ok(control !== undefined);
    const killed = new Promise((r) => { control?.child.once('exit', r); });
    control.child.kill('SIGKILL');
    await killed;
    await waitForLog(clientCar, 'client control.sync.lost', (r) => r.event === 'control.sync.lost');
    await waitForLog(serverCar, 'server control.sync.lost', (r) => r.event === 'control.sync.lost');
    assert.equal((await clientCar.admin('/ready')).status, 200);
    assert.equal((await serverCar.admin('/ready')).status, 200);
    assert.deepEqual(await split(), { v2: REQUESTS }, 'the last applied split keeps serving without the control plane');

    // A SIGKILLed control plane leaves its data directory's lock behind until it goes stale (10 s): restart until
    // the lock is given up (bounded), as a supervisor would.
    control = await waitFor('remora control to restart on the same data directory', async () => {
      try {
        return await startControl();
      } catch (err) {
        if (/REMORA_ERR_CONTROL_STORE/.test(String(err))) return undefined;
        throw err;
      }
    }, { timeoutMs: 40_000, intervalMs: 1000 });
    // The sidecars reconnect (backoff up to 30 s) and report the revision they kept: SYNCED at 2, as stored.
    await synced(2, 60_000);
    const rev = await setWeights(['web/v1=100', 'web/v2=0']);
    assert.equal(rev, 3);
    await synced(rev);
    assert.deepEqual(await split(), { v1: REQUESTS });
  });
});
