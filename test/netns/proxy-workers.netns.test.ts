// `[proxy] workers = 2` on a real kernel: a client pod (remora init + remora proxy --workers 2) and a server pod.
// Connections through the outbound listener are spread by the kernel over both workers (per-worker lines of /stats),
// /stats and /stats/prometheus answer as one proxy (sums equal to what the clients sent), a SIGHUP reload is applied
// in both workers (a bad one in neither), a killed worker is restarted (event worker.exited) while the other keeps
// serving, and SIGTERM drains both: requests in flight are answered, then every process exits with code 0.
// With the control plane (a real `remora control` in its own pod): the sidecar with 2 workers is one sidecar, SYNCED
// once both workers committed the pushed snapshot (same version in both), NACKED for a snapshot it cannot apply (both
// workers keep the last good one), and its golden-metric reports are the sums over both workers (every request the
// client sent is counted at the control plane, while the requests went through both workers); its status report is the
// merge of both workers' (collect('status')): ready, and a 50/50 route's per-backend requests in GET
// /api/v1/routes/split equal to what each backend's server answered, their sum to every request sent.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { tempDir, writeConfig } from './l4-helpers.js';
import { load, startL7Tool, type LoadResult } from './l7-helpers.js';
import { initOk, logRecords, sample, waitForLog } from './proxy-helpers.js';
import { outputLines, REMORA_BIN, startProxy, type ProxyStats, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();

interface WorkerLine {
  readonly worker: number;
  readonly pid: number;
  readonly state: string;
  readonly configVersion: number;
  readonly connections: { readonly accepted: number; readonly active: number; readonly closed: number };
  readonly listeners: Readonly<Record<string, { readonly accepted: number; readonly active: number }>>;
  readonly requests?: number;
}

interface WorkerStats extends ProxyStats {
  readonly workers: readonly WorkerLine[];
  readonly state: string;
  readonly config: { readonly version: number; readonly reloads: { readonly ok: number; readonly rejected: number } };
  readonly listeners: Readonly<Record<string, { readonly connections: { readonly accepted: number } }>>;
  readonly http?: { readonly outbound: Readonly<Record<string, number>> };
  readonly drain?: { readonly reason: string; readonly exiting: boolean };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('workers = 2', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let server: Pod;
  let proxy: RunningProxy;
  const tmp = tempDir('remora-workers-');
  const file = join(tmp.dir, 'client.ini');
  let vip = '';
  /** Connections and requests the test's clients sent through the outbound listener so far. */
  let sentConnections = 0;
  let sentRequests = 0;

  const config = (timeout: string): string => [
    '[proxy]', 'workers = 2', `connect_timeout = ${timeout}`,
    '[service web]', `addresses = ${vip}:80`, `endpoints = ${server.ip4}:8080`,
  ].join('\n');
  const stats = async (): Promise<WorkerStats> => (await proxy.stats()) as WorkerStats;
  /** COUNT requests over COUNT connections at once (each connection accepted by one worker). */
  const burst = async (count: number, path = '/'): Promise<LoadResult> => {
    const r = await load(client, `http://${vip}${path}`, count, count);
    sentConnections += count;
    sentRequests += count;
    return r;
  };

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    client = await mesh.addPod('client');
    server = await mesh.addPod('server');
    vip = `${mesh.prefix4}.200`;
    await startL7Tool(server, ['http-tag', '::', '8080', 'web']);
    writeFileSync(file, `${config('5s')}\n`);
    await initOk(client);
    proxy = await startProxy(client, ['--config', file]);
  });
  after(async () => {
    await proxy?.stop('SIGKILL');
    await mesh?.destroy();
    tmp.remove();
  });

  test('connections are spread over both workers; /stats and /stats/prometheus are the sums of the workers', opts, async () => {
    const first = await stats();
    assert.equal(first.workers.length, 2, 'one line per worker');
    assert.notEqual(first.workers[0]?.pid, first.workers[1]?.pid);
    for (const w of first.workers) assert.notEqual(w.pid, proxy.child.pid, 'the workers are other processes than the primary');
    // Bursts of simultaneous connections until both workers have accepted some (the kernel decides; bounded).
    let s = first;
    for (let round = 0; round < 20; round++) {
      const r = await burst(20);
      assert.deepEqual(r.statuses, { 200: 20 }, 'every request answered by the server');
      s = await stats();
      if (s.workers.every((w) => (w.listeners['outbound']?.accepted ?? 0) > 0)) break;
    }
    const perWorker = s.workers.map((w) => w.listeners['outbound']?.accepted ?? 0);
    assert.ok(perWorker.every((n) => n > 0), `both workers accepted connections: ${perWorker.join(', ')}`);
    // Summed: the outbound listener's total is every worker's, and is what the clients opened.
    assert.equal(perWorker.reduce((a, b) => a + b, 0), sentConnections);
    assert.equal(s.listeners['outbound']?.connections.accepted, sentConnections);
    assert.equal(s.workers.reduce((a, w) => a + (w.requests ?? 0), 0), sentRequests, 'requests per worker add up');
    const prom = (await proxy.admin('/stats/prometheus')).body;
    assert.equal(sample(prom, 'remora_connections_accepted_total{listener="outbound"}'), sentConnections);
    assert.equal(sample(prom, 'remora_ready'), 1);
    assert.equal(sample(prom, 'remora_config_version'), 1, 'a copy every worker holds is not summed');
    const ready = await proxy.admin('/ready');
    assert.deepEqual(ready, { status: 200, body: 'ready' });
    const dump = JSON.parse((await proxy.admin('/config_dump')).body) as { version: number };
    assert.equal(dump.version, 1);
  });

  test('SIGHUP: a reload is applied in both workers; a bad one in neither', opts, async () => {
    writeFileSync(file, `${config('3s')}\n`);
    proxy.child.kill('SIGHUP');
    const s = await waitFor('version 2 in both workers', async () => {
      const x = await stats();
      return x.config.version >= 2 && x.workers.length === 2 && x.workers.every((w) => w.configVersion === 2) ? x : undefined;
    }, { timeoutMs: 15_000, intervalMs: 100 });
    assert.equal(s.config.version, 2);
    assert.equal(s.config.reloads.ok >= 1, true);
    const dump = JSON.parse((await proxy.admin('/config_dump')).body) as { version: number; definitions?: { proxy?: { connectTimeout?: number } } };
    assert.equal(dump.version, 2);
    // A bad value: rejected by the primary's validator; both workers keep version 2.
    writeFileSync(file, `${config('forever')}\n`);
    proxy.child.kill('SIGHUP');
    const bad = await waitFor('the bad reload rejected', async () => {
      const x = await stats();
      return x.config.reloads.rejected >= 1 ? x : undefined;
    }, { timeoutMs: 15_000, intervalMs: 100 });
    assert.equal(bad.config.version, 2);
    assert.deepEqual(bad.workers.map((w) => w.configVersion), [2, 2]);
    const r = await burst(10);
    assert.deepEqual(r.statuses, { 200: 10 }, 'the last good config keeps serving');
    writeFileSync(file, `${config('3s')}\n`);
  });

  test('a killed worker is restarted (worker.exited) while the other keeps serving', opts, async () => {
    const before = await stats();
    const victim = before.workers[0] as WorkerLine;
    process.kill(victim.pid, 'SIGKILL');
    await waitFor('the killed worker to be gone', async () => (alive(victim.pid) ? undefined : true), { timeoutMs: 10_000, intervalMs: 20 });
    // Meanwhile the other worker accepts every connection.
    const r = await burst(10);
    assert.deepEqual(r.statuses, { 200: 10 }, 'served by the surviving worker');
    assert.deepEqual(r.errors, {});
    const exited = await waitForLog(proxy, 'worker.exited', (l) => l.event === 'worker.exited');
    assert.equal(exited[0]?.['worker'], victim.worker);
    assert.equal(exited[0]?.['signal'], 'SIGKILL');
    const after = await waitFor('the worker restarted', async () => {
      const x = await stats();
      const w = x.workers.find((y) => y.worker === victim.worker);
      return x.workers.length === 2 && w !== undefined && w.pid !== victim.pid ? x : undefined;
    }, { timeoutMs: 15_000, intervalMs: 100 });
    const restarted = after.workers.find((w) => w.worker === victim.worker) as WorkerLine;
    assert.equal(restarted.configVersion, 2, 'the restarted worker serves the config in force');
    // The burst went to the surviving worker and, when the restarted one was already listening (a worker starts in
    // well under a second), partly to it: together they accepted exactly the burst, so the new process counts only
    // what it accepted itself (its counters start over; the victim's count is not carried over).
    const outboundAccepted = (w: WorkerLine | undefined): number => w?.listeners['outbound']?.accepted ?? 0;
    const survivorDelta = outboundAccepted(after.workers.find((w) => w.worker !== victim.worker))
      - outboundAccepted(before.workers.find((w) => w.worker !== victim.worker));
    assert.equal(outboundAccepted(restarted) + survivorDelta, 10, 'a new process: its counters start over');
    assert.ok(outboundAccepted(victim) > 0, 'the victim had accepted connections before (so carrying them over would show)');
    assert.deepEqual(await proxy.admin('/ready'), { status: 200, body: 'ready' });
    assert.equal(logRecords(proxy).filter((l) => l.event === 'worker.restarted').length, 1);
  });

  test('a worker that does not answer during a reload (SIGSTOP): the other commits it, the silent one is restarted with it', opts, async () => {
    const before = await stats();
    const victim = before.workers[0] as WorkerLine;
    const version = before.config.version + 1;
    process.kill(victim.pid, 'SIGSTOP');
    try {
      writeFileSync(file, `${config('4s')}\n`);
      proxy.child.kill('SIGHUP');
      // The primary waits its answer timeout (10 s) for the stopped worker, then commits on the other and restarts it.
      const failed = await waitFor('worker.prepare-failed', async () => {
        const found = logRecords(proxy).filter((l) => l.event === 'worker.prepare-failed');
        return found.length > 0 ? found : undefined;
      }, { timeoutMs: 25_000, intervalMs: 100 });
      assert.equal(failed[0]?.['worker'], victim.worker);
      assert.equal(failed[0]?.['version'], version);
      const after = await waitFor(`version ${version} in both workers, the silent one a new process`, async () => {
        const x = await stats();
        const w = x.workers.find((y) => y.worker === victim.worker);
        return x.workers.length === 2 && w !== undefined && w.pid !== victim.pid && x.workers.every((y) => y.configVersion === version) ? x : undefined;
      }, { timeoutMs: 20_000, intervalMs: 200 });
      assert.equal(after.config.version, version);
      assert.equal(after.config.reloads.rejected, before.config.reloads.rejected, 'a worker without an answer is not a rejected config');
      assert.equal(alive(victim.pid), false, 'the stopped worker was killed');
      const r = await burst(10);
      assert.deepEqual(r.statuses, { 200: 10 });
    } finally {
      if (alive(victim.pid)) process.kill(victim.pid, 'SIGKILL');
    }
  });

  test('SIGTERM drains both workers: requests in flight are answered, then every process exits 0', opts, async () => {
    const s = await stats();
    const pids = s.workers.map((w) => w.pid);
    // Slow requests in flight on several connections (spread over the workers) when the signal comes.
    const inFlight = load(client, `http://${vip}/delay/1500`, 8, 8);
    await waitFor('the slow requests in flight', async () => {
      const x = await stats();
      return x.connections.active >= 8 ? true : undefined;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    proxy.child.kill('SIGTERM');
    const ready = await proxy.admin('/ready');
    assert.deepEqual(ready, { status: 503, body: 'draining' }, '/ready fails at once');
    const draining = await stats();
    assert.deepEqual({ reason: draining.drain?.reason, exiting: draining.drain?.exiting }, { reason: 'received SIGTERM', exiting: true });
    assert.deepEqual(draining.workers.map((w) => w.state), ['draining', 'draining'], 'both workers drain');
    const r = await inFlight;
    assert.deepEqual(r.statuses, { 200: 8 }, 'every request in flight was answered');
    const code = await waitFor('the proxy to exit', async () => (proxy.child.exitCode !== null ? proxy.child.exitCode : undefined), { timeoutMs: 60_000, intervalMs: 100 });
    assert.equal(code, 0);
    for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} exited`);
    const stopped = logRecords(proxy).filter((l) => l.event === 'proxy.stopped');
    assert.equal(stopped.length, 3, 'two workers and the primary logged proxy.stopped');
  });
});

const WRITE_TOKEN = 'workers-write-0123456789abcdef';
const READ_TOKEN = 'workers-read-0123456789abcdef';
const SIDECAR_TOKEN = 'workers-sidecar-0123456789abcdef';
const CONTROL_PORT = 15012;

interface SidecarView {
  readonly name: string;
  readonly connected: boolean;
  readonly status: string;
  readonly versionApplied: number;
  readonly lastNackError?: string;
}
interface SplitView { readonly routes: readonly { readonly route: string; readonly backends: readonly { readonly backend: string; readonly requests: number }[] }[] }
interface MetricsView { readonly services: readonly { readonly name: string; readonly requests: number }[]; readonly sidecars: number }

describe('workers = 2 with the control plane', { ...opts, timeout: 240_000 }, () => {
  let mesh: Mesh;
  let cpPod: Pod;
  let client: Pod;
  let server: Pod;
  let control: ChildProcess | undefined;
  let proxy: RunningProxy;
  const tmp = tempDir('remora-workers-cp-');
  const rootFile = join(tmp.dir, 'control', 'root-cert.pem');
  let vip = '';
  const url = (): string => `https://${cpPod.ip4}:${CONTROL_PORT}`;
  /** Every request the client sent to web so far (answered or not). */
  let webSent = 0;

  async function ctl(args: readonly string[], token = WRITE_TOKEN): Promise<string> {
    const r = await cpPod.exec([process.execPath, REMORA_BIN, 'ctl', '--server', url(), '--token', token, '--ca-file', rootFile, ...args], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, `remora ctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }
  const sidecar = async (): Promise<SidecarView | undefined> =>
    (JSON.parse(await ctl(['sidecars', '-o', 'json'])) as { sidecars: SidecarView[] }).sidecars.find((x) => x.name === 'client');
  const stats = async (): Promise<WorkerStats> => (await proxy.stats()) as WorkerStats;

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    cpPod = await mesh.addPod('control');
    client = await mesh.addPod('client');
    server = await mesh.addPod('server');
    vip = `${mesh.prefix4}.100`;
    const child = cpPod.spawn([process.execPath, REMORA_BIN, 'control', '--data-dir', join(tmp.dir, 'control'), '--listen', `${cpPod.ip4}:${CONTROL_PORT}`,
      '--token', WRITE_TOKEN, '--token', `read:${READ_TOKEN}`, '--token', `sidecar:${SIDECAR_TOKEN}`]);
    control = child;
    const lines = outputLines(child);
    await waitFor('remora control to listen', async () => {
      if (child.exitCode !== null) throw new Error(`remora control exited ${child.exitCode}: ${lines.join('\n')}`);
      return lines.some((l) => l.includes('"event":"control.listening"')) && existsSync(rootFile) ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100 });
    await startL7Tool(server, ['http-tag', '::', '8080', 'web']);
    await startL7Tool(server, ['http-tag', '::', '8081', 'web-v2']);
    const meshIni = writeConfig(tmp.dir, 'mesh.ini', ['[service web]', `addresses = ${vip}:80`, 'protocol = http', `endpoints = ${server.ip4}:8080`]);
    await ctl(['apply', '-f', meshIni]);
    const local = writeConfig(tmp.dir, 'client.ini', [
      '[proxy]', 'workers = 2', 'workload_name = client', `control = ${url()}`, `control_token = ${SIDECAR_TOKEN}`, `control_ca_file = ${rootFile}`,
    ]);
    await initOk(client);
    proxy = await startProxy(client, ['--config', local], { env: { POD_NAME: 'client' } });
  });
  after(async () => {
    await proxy?.stop('SIGKILL');
    control?.kill('SIGKILL');
    await mesh?.destroy();
    tmp.remove();
  });

  test('one sidecar: SYNCED once both workers applied the snapshot, NACKED (both keep the last good one), golden metrics summed over both', opts, async () => {
    const synced = await waitFor('the sidecar SYNCED', async () => {
      const x = await sidecar();
      return x?.connected === true && x.status === 'SYNCED' && x.versionApplied >= 1 ? x : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    const first = await stats();
    assert.equal(first.workers.length, 2);
    assert.equal(new Set(first.workers.map((w) => w.configVersion)).size, 1, 'both workers serve the same version');
    assert.equal(first.config.version, first.workers[0]?.configVersion);

    // Traffic through both workers (bounded bursts), every request counted once at the control plane.
    let sent = 0;
    let s = first;
    for (let round = 0; round < 20; round++) {
      const r = await load(client, `http://${vip}/`, 20, 20);
      webSent += 20;
      assert.deepEqual(r.statuses, { 200: 20 }, JSON.stringify(r.remoraErrors));
      sent += 20;
      s = await stats();
      if (s.workers.every((w) => (w.requests ?? 0) > 0)) break;
    }
    const perWorker = s.workers.map((w) => w.requests ?? 0);
    assert.ok(perWorker.every((n) => n > 0), `both workers served requests: ${perWorker.join(', ')}`);
    const metrics = await waitFor(`web's ${sent} requests at the control plane`, async () => {
      const m = JSON.parse(await ctl(['stat', '-w', '5m', '-o', 'json'], READ_TOKEN)) as MetricsView;
      return (m.services.find((x) => x.name === 'web')?.requests ?? 0) >= sent ? m : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.equal(metrics.services.find((x) => x.name === 'web')?.requests, sent, 'the report is the sum of both workers, each request once');
    assert.equal(metrics.sidecars, 1, 'one sidecar, not one per worker');

    // A snapshot this sidecar cannot apply (mesh mTLS to a service, and this sidecar has no identity_dir): NACKED,
    // and both workers keep the version they had.
    const bad = writeConfig(tmp.dir, 'bad.ini', ['[service web]', `addresses = ${vip}:80`, 'protocol = http', `endpoints = ${server.ip4}:8080`, 'mtls = true']);
    await ctl(['apply', '-f', bad]);
    const nacked = await waitFor('the sidecar NACKED', async () => {
      const x = await sidecar();
      return x?.status === 'NACKED' ? x : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    assert.equal(nacked.versionApplied, synced.versionApplied);
    assert.ok((nacked.lastNackError ?? '') !== '', 'the NACK says why');
    const after = await stats();
    assert.deepEqual(after.workers.map((w) => w.configVersion), first.workers.map((w) => w.configVersion), 'both workers kept the last good snapshot');
    const r = await load(client, `http://${vip}/`, 10, 10);
    webSent += 10;
    assert.deepEqual(r.statuses, { 200: 10 });
  });

  test('the status report covers both workers: ready, and the route split counts every request once', opts, async () => {
    // A 50/50 route over two subsets (one server port each): each server's answers are counted by the client.
    const split = writeConfig(tmp.dir, 'split.ini', [
      '[service web]', `addresses = ${vip}:80`, 'protocol = http', `endpoints = ${server.ip4}:8080 subset=v1, ${server.ip4}:8081 subset=v2`,
      '[route web-split]', 'service = web', 'backends = web/v1=50, web/v2=50',
    ]);
    await ctl(['apply', '-f', split]);
    const before = await stats();
    await waitFor('the sidecar SYNCED with the route', async () => {
      const x = await sidecar();
      const s = await stats();
      return x?.status === 'SYNCED' && s.workers.length === 2 && s.workers.every((w) => w.configVersion > (before.workers[0]?.configVersion ?? 0)) ? x : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    const base = (await stats()).workers.map((w) => w.requests ?? 0);

    // Bounded bursts until both workers served some of them.
    const answered: Record<string, number> = {};
    let sent = 0;
    for (let round = 0; round < 20; round++) {
      const r = await load(client, `http://${vip}/`, 20, 20);
      webSent += 20;
      assert.deepEqual(r.statuses, { 200: 20 }, JSON.stringify(r.remoraErrors));
      for (const [tag, n] of Object.entries(r.bodies)) answered[tag] = (answered[tag] ?? 0) + n;
      sent += 20;
      const now = (await stats()).workers.map((w) => w.requests ?? 0);
      if (now.every((n, i) => n > (base[i] ?? 0))) break;
    }
    const now = (await stats()).workers.map((w) => w.requests ?? 0);
    assert.ok(now.every((n, i) => n > (base[i] ?? 0)), `both workers served route requests: ${base.join(', ')} -> ${now.join(', ')}`);
    assert.equal((answered.web ?? 0) + (answered['web-v2'] ?? 0), sent, JSON.stringify(answered));

    // The control plane's live split: the status reports of the sidecar (both workers' merged), over the window.
    const view = await waitFor(`the ${sent} requests in /api/v1/routes/split`, async () => {
      const v = JSON.parse(await ctl(['stat', '--routes', '-w', '5m', '-o', 'json'], READ_TOKEN)) as SplitView;
      const route = v.routes.find((x) => x.route === 'web-split');
      return route !== undefined && route.backends.reduce((a, b) => a + b.requests, 0) >= sent ? route : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    const byBackend = Object.fromEntries(view.backends.map((b) => [b.backend, b.requests]));
    assert.deepEqual(byBackend, { 'web/v1': answered.web ?? 0, 'web/v2': answered['web-v2'] ?? 0 }, 'each request counted once, in the backend that answered it');

    // Readiness in the report: both workers ready.
    const raw = JSON.parse(await ctl(['sidecars', '-o', 'json'])) as { sidecars: { name: string; ready: boolean | null }[] };
    assert.equal(raw.sidecars.find((x) => x.name === 'client')?.ready, true);
  });

  test('a worker killed (SIGKILL) while traffic flows: merged counters never go down, no request is counted twice', opts, async () => {
    const webAtControl = async (): Promise<number> => {
      const m = JSON.parse(await ctl(['stat', '-w', '15m', '-o', 'json'], READ_TOKEN)) as MetricsView;
      return m.services.find((x) => x.name === 'web')?.requests ?? 0;
    };
    /** The merged counter, or undefined when the scrape did not answer 200 (curl's own 5 s bound on a loaded machine). */
    const scrape = async (): Promise<number | undefined> => {
      const r = await proxy.admin('/stats/prometheus');
      return r.status === 200 ? sample(r.body, 'remora_connections_accepted_total{listener="outbound"}') : undefined;
    };
    const accepted = async (): Promise<number> => waitFor('a scrape of /stats/prometheus', scrape, { timeoutMs: 20_000, intervalMs: 100 });
    // Everything sent so far is at the control plane, each request once (the tests above).
    const c0 = await waitFor(`the ${webSent} requests so far at the control plane`, async () => {
      const n = await webAtControl();
      return n >= webSent ? n : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.equal(c0, webSent);
    // Both workers count a good share first (and it is reported), so that a worker's restart would show in a plain sum.
    for (let round = 0; round < 10; round++) {
      const r = await load(client, `http://${vip}/`, 20, 20);
      webSent += 20;
      assert.deepEqual(r.statuses, { 200: 20 }, JSON.stringify(r.remoraErrors));
    }
    const cA = await waitFor(`the ${webSent} requests at the control plane`, async () => {
      const n = await webAtControl();
      return n >= webSent ? n : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.equal(cA, webSent);
    const p0 = await accepted();
    const before = await stats();
    const victim = before.workers[0] as WorkerLine;

    // Traffic in bounded rounds (10 connections of one request each) until told to stop; the exposition sampled meanwhile.
    let stop = false;
    let rounds = 0;
    let attempts = 0;
    let restartedAtRound: number | undefined;
    let answeredAfterRestart = 0;
    const traffic = (async () => {
      for (let i = 0; i < 80 && !stop; i++) {
        const afterRestart = restartedAtRound !== undefined;
        const r = await load(client, `http://${vip}/`, 10, 10);
        attempts += 10;
        webSent += 10;
        rounds++;
        if (afterRestart) answeredAfterRestart += r.statuses['200'] ?? 0;
      }
    })();
    const samples: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      for (let i = 0; i < 600 && sampling; i++) {
        const n = await scrape();
        if (n !== undefined) samples.push(n);
        await new Promise((resolve) => { setTimeout(resolve, 50); });
      }
    })();
    await waitFor('traffic flowing', async () => (rounds >= 1 ? true : undefined), { timeoutMs: 30_000, intervalMs: 20 });
    process.kill(victim.pid, 'SIGKILL');
    try {
      await waitFor('the killed worker restarted', async () => {
        const x = await stats();
        const w = x.workers.find((y) => y.worker === victim.worker);
        return x.workers.length === 2 && w !== undefined && w.pid !== victim.pid ? true : undefined;
      }, { timeoutMs: 20_000, intervalMs: 100 });
    } catch (err) {
      // Say what the primary did meanwhile (exit, restart, ready, reports a worker did not answer) in the failure.
      const events = proxy.logs().filter((l) => l.includes('"event":"worker.')).slice(-20);
      throw new Error(`${(err as Error).message}\nthe proxy's last worker events:\n${events.join('\n')}`, { cause: err });
    }
    restartedAtRound = rounds;
    await waitFor('traffic after the restart', async () => (rounds >= (restartedAtRound ?? 0) + 2 ? true : undefined), { timeoutMs: 30_000, intervalMs: 20 });
    stop = true;
    await traffic;
    const k = await load(client, `http://${vip}/`, 20, 20);
    attempts += 20;
    webSent += 20;
    assert.deepEqual(k.statuses, { 200: 20 });
    sampling = false;
    await sampler;
    samples.push(await accepted());

    // The merged exposition's counter never went down, though a worker's process (and its counters) was replaced.
    for (let i = 1; i < samples.length; i++) {
      assert.ok((samples[i] as number) >= (samples[i - 1] as number), `remora_connections_accepted_total went down at sample ${i}: ${samples.slice(Math.max(0, i - 3), i + 2).join(', ')}`);
    }
    const p1 = samples.at(-1) as number;
    assert.ok(p1 <= p0 + attempts, `accepted ${p1 - p0} <= ${attempts} connections opened`);
    assert.ok(p1 >= p0 + answeredAfterRestart + 20, `accepted ${p1 - p0} >= the ${answeredAfterRestart + 20} answered after the restart`);
    // The control plane's window: every request answered after the restart arrives, and none is counted twice (the
    // restarted worker's counters starting over must not make the whole merged total count again).
    const floor = cA + answeredAfterRestart + 20;
    const c1 = await waitFor(`at least ${floor} requests at the control plane`, async () => {
      const n = await webAtControl();
      return n >= floor ? n : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(c1 <= cA + attempts, `the control plane counted ${c1 - cA} of ${attempts} requests sent: none twice`);
    assert.ok(logRecords(proxy).some((l) => l.event === 'worker.exited' && l['signal'] === 'SIGKILL'));
  });
});

// The native accept with workers: every worker's forwarding thread accepts on the socket the cluster shares
// (EPOLLEXCLUSIVE: the kernel wakes one), so each connection is accepted once, by one worker's thread.
describe('workers = 2 with the native accept (http_engine = off)', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let server: Pod;
  let proxy: RunningProxy;
  const tmp = tempDir('remora-workers-native-');
  const file = join(tmp.dir, 'client.ini');
  let vip = '';

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    client = await mesh.addPod('client');
    server = await mesh.addPod('server');
    vip = `${mesh.prefix4}.200`;
    await startL7Tool(server, ['http-tag', '::', '8080', 'web']);
    writeFileSync(file, ['[proxy]', 'workers = 2', 'http_engine = off', '[service web]', `addresses = ${vip}:80`,
      'protocol = opaque', `endpoints = ${server.ip4}:8080`].join('\n') + '\n');
    await initOk(client);
    proxy = await startProxy(client, ['--config', file]);
  });
  after(async () => {
    await proxy?.stop('SIGKILL');
    await mesh?.destroy();
    tmp.remove();
  });

  test('both workers\' threads accept; every connection is accepted once and served; a killed worker\'s share goes to the other', opts, async () => {
    const stats = async (): Promise<WorkerStats> => (await proxy.stats()) as WorkerStats;
    const forwarder = (s: WorkerStats): { native: number; accepts: number } | undefined =>
      (s.listeners['outbound'] as unknown as { forwarder?: { native: number; accepts: number } } | undefined)?.forwarder;
    let sent = 0;
    let s = await stats();
    for (let round = 0; round < 20; round++) {
      const r = await load(client, `http://${vip}/`, 20, 20);
      sent += 20;
      assert.deepEqual(r.statuses, { 200: 20 }, 'every request answered by the server');
      s = await waitFor('the burst closed', async () => {
        const x = await stats();
        return x.listeners['outbound']?.connections.accepted === sent && x.connections.active === 0 ? x : undefined;
      }, { timeoutMs: 10_000, intervalMs: 50 });
      if (s.workers.every((w) => (w.listeners['outbound']?.accepted ?? 0) > 0)) break;
    }
    const perWorker = s.workers.map((w) => w.listeners['outbound']?.accepted ?? 0);
    assert.ok(perWorker.every((n) => n > 0), `both workers accepted connections: ${perWorker.join(', ')}`);
    assert.deepEqual(forwarder(s), { native: sent, nodeFallbacks: 0, accepts: sent }, 'each connection accepted and forwarded by a thread, once');

    const victim = s.workers[0] as WorkerLine;
    process.kill(victim.pid, 'SIGKILL');
    await waitFor('the killed worker to be gone', async () => (alive(victim.pid) ? undefined : true), { timeoutMs: 10_000, intervalMs: 20 });
    const r = await load(client, `http://${vip}/`, 10, 10);
    assert.deepEqual(r.statuses, { 200: 10 }, 'served by the surviving worker (or the restarted one)');
    assert.deepEqual(r.errors, {});
    // The restarted worker gets the shared socket from the primary (still open: the other worker holds it) and its
    // thread accepts on it too.
    await waitFor('the worker restarted', async () => {
      const x = await stats();
      const w = x.workers.find((y) => y.worker === victim.worker);
      return x.workers.length === 2 && w !== undefined && w.pid !== victim.pid ? true : undefined;
    }, { timeoutMs: 15_000, intervalMs: 100 });
    let restartedAccepted = 0;
    for (let round = 0; round < 20 && restartedAccepted === 0; round++) {
      const b = await load(client, `http://${vip}/`, 20, 20);
      assert.deepEqual(b.statuses, { 200: 20 });
      const x = await stats();
      restartedAccepted = x.workers.find((w) => w.worker === victim.worker)?.listeners['outbound']?.accepted ?? 0;
    }
    assert.ok(restartedAccepted > 0, 'the restarted worker accepted connections');
  });
});
