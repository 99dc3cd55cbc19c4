// `npm run bench`: remora vs a direct connection vs HAProxy as a transparent L4 sidecar, in one run, on real
// network namespaces. Prints a Markdown table and writes docs/benchmarks.md. Needs root; installs its tools with
// apt-get when missing; removes its namespaces and scratch files however it ends.
//
// All modes' proxies run side by side for the whole bench; for each scenario the modes run back to back
// (order alternating between scenarios), with the client pod's rules switched before each load by the real
// `remora init` (`--outbound-port` of the mode's proxy; `--cleanup` for direct). On a shared machine this keeps
// background noise from landing on one mode only.
//
// After the measured runs, remora-l7 is profiled once (node --cpu-prof) during one more keep-alive load: the report's
// "where the time goes" section.
//
// The mesh group (issue 11; scenarios mesh-*, modes direct, mesh-plain, mesh-mtls, haproxy-tls: bench/mesh-modes.ts)
// loads a pod of its own, the mesh server pod, whose inbound rules (`remora init --inbound-port`, no outbound
// capture) are switched per mode like the client pod's: two hops, a sidecar in each pod. The other rows' server pod
// never has rules. After the measured runs the mesh-mtls server sidecar is profiled the same way.
//
// Usage: npm run bench [-- --duration S --warmup S --modes a,b --scenarios x,y --remora-args "..." --out FILE
//                          --rounds N --no-write --keep-tmp --no-profile]
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Mesh, netnsUnavailableReason, type Pod } from '../test/netns/harness.js';
import { REPO_ROOT, remoraInit } from '../test/netns/remora-process.js';
import { MESH_GROUP } from './mesh-group.js';
import { createMeshPki, MESH_MODE_LIST, startRemoraPair } from './mesh-modes.js';
import { MODES, remoraL7, remoraL7Config, REMORA_L7_ADMIN_PORT, startRemora } from './modes.js';
import { runWrk, wrkArgs } from './loads.js';
import { summarizeCpuProfile, type CpuProfile, type ProfileSummary } from './profile.js';
import { cpuSeconds, redirectedConnections, rssMb } from './proc.js';
import { renderDocument, renderSummary, type ReportInput } from './report.js';
import { combineRounds } from './rounds.js';
import { SCENARIOS } from './scenarios.js';
import { measureIdleConnections } from './idle-connections.js';
import { BANNER_PORT, BODY, BODY2, HTTP_PORT, startBanner, startEndpointPod, startMeshServerPod, startServerPod } from './server-pod.js';
import { ensureTools, machineInfo } from './tools.js';
import type {
  Cell, IdleConnectionsSummary, MeshServerInfo, Mode, ModeContext, ModeProcess, ModeSummary, RunContext, RunningMode, Scenario,
} from './types.js';

/** Every mode: the one-hop modes, then the mesh group's. */
const ALL_MODES: readonly Mode[] = [...MODES, ...MESH_MODE_LIST];

const HELP = `Usage: npm run bench [-- flags]   (or, as root: node dist/bench/run.js [flags])

Builds a client pod and a server pod (network namespaces), then runs every scenario in every mode:
${SCENARIOS.map((s) => `  scenario ${s.id.padEnd(24)} ${s.title}`).join('\n')}
${ALL_MODES.map((m) => `  mode     ${m.id.padEnd(24)} ${m.title}`).join('\n')}

Flags:
  --duration S        measured seconds per load (default 6, 1-60)
  --warmup S          unmeasured warm-up seconds before each load (default 1, 0-10)
  --modes a,b         run only these modes (default: all; the ratios need direct and haproxy-l4)
  --scenarios x,y     run only these scenarios (default: all); only the mesh group:
                      --scenarios mesh-keepalive,mesh-conn-per-request,mesh-latency-1k
  --rounds N          rounds of every scenario (default: the scenario's own: 3 for the throughput rows with a target,
                      the tail-latency rows and the mesh rows, 1 for tcp-bulk); a cell is the median of its rounds
  --remora-args "..." extra flags for \`remora proxy\` (split on spaces)
  --out FILE          write the report here (default docs/benchmarks.md, written only by full runs)
  --no-write          only print the tables
  --keep-tmp          keep the scratch directory (configs, proxy logs)
  --idle-conns N      after the loads, hold N idle connections through each single-process proxy and report its RSS
                      per connection (default 5000; 0 skips it)
  --no-profile        skip the CPU profiles of remora-l7 and of the mesh-mtls server sidecar ("where the time goes")
`;

/**
 * Modes whose idle-connection memory is not measured: the mesh pairs (two hops), workers (the connections live in the
 * workers, not in the process measured), HAProxy in mode http (it waits for a request, so the server-first greeting
 * the holder waits for never comes through).
 */
const IDLE_SKIP = new Set(['mesh-plain', 'mesh-mtls', 'haproxy-tls', 'remora-l7-w2', 'haproxy-http']);

const BASELINE = 'direct';
const PEER = 'haproxy-l4';
const SUBJECT = 'remora';
/** Hard upper bound for the whole run (every load is bounded too). */
const WATCHDOG_MS = 25 * 60_000;

function log(s: string): void {
  process.stderr.write(`[bench] ${s}\n`);
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function numberFlag(v: string | undefined, dflt: number, min: number, max: number, name: string): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name}: an integer ${min}-${max}`);
  return n;
}

function pickList<T extends { id: string }>(all: readonly T[], flag: string | undefined, what: string): T[] {
  if (flag === undefined) return [...all];
  const ids = flag.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const id of ids) if (!all.some((x) => x.id === id)) throw new Error(`unknown ${what} "${id}" (known: ${all.map((x) => x.id).join(', ')})`);
  return all.filter((x) => ids.includes(x.id));
}

function loadAverage(): string {
  try { return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '); } catch { return 'unknown'; }
}

async function transparencyCheck(client: Pod, ctx: RunContext, mode: Mode): Promise<string | undefined> {
  const targets: [string, number, string][] = [[ctx.server.ip4, ctx.server.httpPort, BODY], [ctx.server.ip4, ctx.server.httpPort2, BODY2]];
  // The service's VIP exists only in the one-hop proxies' configuration.
  if (mode.redirect && mode.checks !== 'mesh') targets.push([ctx.server.serviceVip, ctx.server.servicePort, BODY]);
  // The mesh modes' service: through both sidecars (the mesh server pod's rules are this mode's by now).
  if (mode.checks === 'mesh' && ctx.meshServer !== undefined) targets.push([ctx.meshServer.ip4, ctx.meshServer.httpPort, BODY]);
  for (const [host, port, body] of targets) {
    const r = await client.exec(['curl', '-sS', '--max-time', '5', `http://${host}:${port}/`]);
    if (r.code !== 0 || r.stdout !== body) return `${host}:${port} answered ${JSON.stringify(r.stdout.slice(0, 60))} ${r.stderr.trim().slice(0, 120)}`;
  }
  return undefined;
}

/** What the transparency check proved for `mode`. */
function transparencyText(mode: Mode, ctx: RunContext): string {
  const base = ':8080 and :8081 reached their own servers';
  if (mode.checks === 'mesh') return `${base}; the mesh server pod${ctx.meshServer === undefined ? '' : ` (${ctx.meshServer.ip4}:${ctx.meshServer.httpPort})`} answered through both sidecars`;
  return mode.redirect ? `${base}; the service VIP answered` : base;
}

/**
 * A pod's rules for a mode, switched by the real `remora init` and applied only when they change. The client pod:
 * none, or outbound TCP redirected to the mode's proxy (`--outbound-port`). The mesh server pod: none, or inbound TCP
 * redirected to the mode's server-side sidecar (`--inbound-port`; no outbound capture: its app opens no connections).
 */
class PodRules {
  readonly #pod: Pod;
  readonly #argsFor: (mode: Mode) => readonly string[] | undefined;
  #current = '--cleanup';

  constructor(pod: Pod, argsFor: (mode: Mode) => readonly string[] | undefined) {
    this.#pod = pod;
    this.#argsFor = argsFor;
  }

  static client(pod: Pod): PodRules {
    return new PodRules(pod, (mode) => (mode.redirect ? ['--outbound-port', String(mode.outboundPort ?? 15001)] : undefined));
  }

  static meshServer(pod: Pod): PodRules {
    return new PodRules(pod, (mode) => (mode.serverInboundPort === undefined ? undefined
      : ['--inbound-port', String(mode.serverInboundPort), '--outbound-cidrs', '']));
  }

  async use(mode: Mode): Promise<void> {
    const args = this.#argsFor(mode) ?? ['--cleanup'];
    const key = args.join(' ');
    if (key === this.#current) return;
    const r = await remoraInit(this.#pod, ['--log-level', 'warn', ...args]);
    if (r.code !== 0) throw new Error(`remora init ${key} in ${this.#pod.name} exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).slice(-400)}`);
    this.#current = key;
  }
}

/** The processes of a mode whose CPU and memory are measured. */
function processesOf(running: RunningMode): readonly ModeProcess[] {
  return running.processes ?? (running.pid === undefined ? [] : [{ role: 'proxy', pid: running.pid }]);
}

function rssByRole(running: RunningMode): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  for (const p of processesOf(running)) {
    const mb = rssMb(p.pid);
    if (mb !== undefined) out[p.role] = mb;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

const sum = (r: Readonly<Record<string, number>>): number => Object.values(r).reduce((a, b) => a + b, 0);

/** Whether `mode` runs `s`. */
function runs(mode: Mode, s: Scenario): boolean {
  return (mode.scenarios === undefined || mode.scenarios.includes(s.id)) && (s.modes === undefined || s.modes.includes(mode.id));
}

interface LiveMode {
  readonly mode: Mode;
  readonly running: RunningMode;
  readonly rssIdle?: Readonly<Record<string, number>>;
}

/** Stop the measured remora-l7, run it again under `node --cpu-prof` for one keep-alive load, and summarize. */
async function profileRemoraL7(ctx: ModeContext, measured: RunningMode, rules: PodRules,
  load: { url: string; threads: number; connections: number }): Promise<ProfileSummary> {
  await measured.stop();
  const dir = join(ctx.tmpDir, 'cpu-prof');
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777); // written by the proxy after it dropped to uid 1337
  const running = await startRemora(ctx, {
    name: 'remora-l7-profiled', config: remoraL7Config(ctx), adminPort: REMORA_L7_ADMIN_PORT, notes: [],
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
  });
  try {
    await rules.use(remoraL7);
    await runWrk(ctx.client, load, ctx.durationS, ctx.warmupS);
  } finally {
    await running.stop(); // the profile is written when the process exits
  }
  return readProfile(dir);
}

function readProfile(dir: string): ProfileSummary {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no .cpuprofile in ${dir}`);
  return summarizeCpuProfile(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile);
}

/**
 * Stop the measured mesh-mtls pair, run it again with the server sidecar under `node --cpu-prof` for one keep-alive
 * load through both hops (the rules are mesh-mtls's already), and summarize the server sidecar's profile.
 */
async function profileMeshServer(ctx: ModeContext, measured: RunningMode, load: { url: string; threads: number; connections: number }): Promise<ProfileSummary> {
  await measured.stop();
  const dir = join(ctx.tmpDir, 'cpu-prof-mesh-server');
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  const running = await startRemoraPair(ctx, true, { serverNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`], suffix: '-profiled' });
  try {
    await runWrk(ctx.client, load, ctx.durationS, ctx.warmupS);
    const bad = await running.verify?.();
    if (bad !== undefined) throw new Error(bad);
  } finally {
    await running.stop();
  }
  return readProfile(dir);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string' }, warmup: { type: 'string' }, modes: { type: 'string' }, scenarios: { type: 'string' },
      'remora-args': { type: 'string' }, out: { type: 'string' }, 'no-write': { type: 'boolean' }, 'keep-tmp': { type: 'boolean' },
      'no-profile': { type: 'boolean' }, rounds: { type: 'string' }, 'idle-conns': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) { process.stdout.write(HELP); return 0; }
  const durationS = numberFlag(values.duration, 6, 1, 60, 'duration');
  const warmupS = numberFlag(values.warmup, 1, 0, 10, 'warmup');
  const roundsFlag = values.rounds === undefined ? undefined : numberFlag(values.rounds, 1, 1, 9, 'rounds');
  const idleConns = numberFlag(values['idle-conns'], 5000, 0, 20_000, 'idle-conns');
  const scenarios = pickList(SCENARIOS, values.scenarios, 'scenario');
  // A mode none of the selected scenarios runs is not started.
  const modes = pickList(ALL_MODES, values.modes, 'mode').filter((m) => scenarios.some((s) => runs(m, s)));
  const remoraArgs = (values['remora-args'] ?? '').split(/\s+/).filter((s) => s !== '');
  const partial = values.modes !== undefined || values.scenarios !== undefined;
  const outFile = values['no-write'] === true ? undefined
    : values.out !== undefined ? resolve(values.out) : partial ? undefined : join(REPO_ROOT, 'docs/benchmarks.md');

  const reason = netnsUnavailableReason();
  if (reason !== undefined) { log(`cannot run: ${reason} (try: sudo npm run bench)`); return 2; }
  if (!existsSync(join(REPO_ROOT, 'dist/src/cli/main.js'))) { log('dist/src/cli/main.js missing: run `npx tsc -p .` first'); return 2; }
  ensureTools(log);
  const machine = machineInfo(REPO_ROOT);

  const started = Date.now();
  const loadBefore = loadAverage();
  const tmpDir = mkdtempSync('/tmp/remora-bench-');
  chmodSync(tmpDir, 0o755); // HAProxy (uid 1337) reads its config from here
  let keepTmp = values['keep-tmp'] === true;
  process.on('exit', () => { if (!keepTmp) rmSync(tmpDir, { recursive: true, force: true }); });
  const watchdog = setTimeout(() => { log(`watchdog: still running after ${WATCHDOG_MS / 60_000} min, giving up`); process.exit(3); }, WATCHDOG_MS);
  watchdog.unref();

  const cells: Cell[] = [];
  const summaries: ModeSummary[] = [];
  const loads: Record<string, string> = {};
  const live: LiveMode[] = [];
  let profile: ReportInput['profile'];
  let meshProfile: ReportInput['meshProfile'];
  const mesh = await Mesh.create({ ipv6: true });
  try {
    const client = await mesh.addPod('client');
    const serverPod = await mesh.addPod('server');
    // Two more endpoints of the multi-endpoint service (the server pod's nginx is the first).
    const endpointPods = [await mesh.addPod('endpoint2'), await mesh.addPod('endpoint3')];
    // The mesh group's server pod (its rules are the mesh modes'), with the certificates of both sidecars.
    let meshServer: MeshServerInfo | undefined;
    if (scenarios.some((s) => s.group === 'mesh')) {
      const pod = await mesh.addPod('meshserver');
      await startMeshServerPod(pod, tmpDir);
      meshServer = { pod, ip4: pod.ip4, httpPort: HTTP_PORT, pki: await createMeshPki(tmpDir, REPO_ROOT) };
      log(`mesh group: server pod ${pod.ip4}, identities ${meshServer.pki.clientId} (client), ${meshServer.pki.serverId} (server)`);
    }
    const serviceVip = `${mesh.prefix4}.200`;
    log(`mesh ${mesh.id}: client ${client.ip4}, server ${serverPod.ip4}, endpoints ${endpointPods.map((p) => p.ip4).join(' ')}, `
      + `service VIP ${serviceVip}; scratch ${tmpDir}; load average ${loadBefore}`);
    // Behind a REDIRECT, wrk closes first and its sockets (client -> server:8080, the same 4-tuples the proxy's
    // upstream connections use) sit in TIME_WAIT for 60 s: ~28k ephemeral ports run out within seconds of
    // connection-per-request load and connect() crawls. Let connect() reuse TIME_WAIT ports (this pod only).
    await client.execOk(['sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1']);
    const server = {
      ...(await startServerPod(serverPod, tmpDir)),
      bannerPort: BANNER_PORT, serviceVip, servicePort: HTTP_PORT, serviceEndpoints: [serverPod.ip4, ...endpointPods.map((p) => p.ip4)],
    };
    for (const p of endpointPods) await startEndpointPod(p, tmpDir);
    const ctx: RunContext = { client, server, durationS, warmupS, tmpDir, ...(meshServer === undefined ? {} : { meshServer }) };
    const modeCtx: ModeContext = { ...ctx, repoRoot: REPO_ROOT, remoraArgs };
    const rules = PodRules.client(client);
    const serverRules = meshServer === undefined ? undefined : PodRules.meshServer(meshServer.pod);
    const useRules = async (mode: Mode): Promise<void> => {
      await rules.use(mode);
      await serverRules?.use(mode);
    };
    for (const s of scenarios) {
      loads[s.id] = s.describe(ctx);
      await s.setup?.(ctx);
    }

    // 1. Start every mode (its rules first), take idle RSS before any traffic, check transparency.
    for (const mode of modes) {
      let running: RunningMode | undefined;
      try {
        await useRules(mode);
        running = await mode.start(modeCtx);
        await new Promise((r) => setTimeout(r, 1000));
        const rssIdle = rssByRole(running);
        const bad = await transparencyCheck(client, ctx, mode);
        if (bad !== undefined) throw new Error(`transparency check failed: ${bad}`);
        const wrong = await running.verify?.();
        if (wrong !== undefined) throw new Error(wrong);
        live.push({ mode, running, ...(rssIdle === undefined ? {} : { rssIdle }) });
        const procs = processesOf(running).map((p) => `${p.role} pid ${p.pid}, RSS ${rssIdle?.[p.role]?.toFixed(1)} MB`).join('; ');
        log(`${mode.id}: ready${procs === '' ? '' : ` (${procs})`}; ${transparencyText(mode, ctx)}`);
      } catch (err) {
        const why = errText(err);
        log(`${mode.id}: ${why}`);
        keepTmp = true;
        summaries.push({ mode: mode.id, title: mode.title, notes: running?.notes ?? [], failure: why });
        for (const s of scenarios) if (runs(mode, s)) cells.push({ scenario: s.id, mode: mode.id, failure: `mode did not start: ${why}` });
        await running?.stop();
      }
    }

    // 2. Scenario by scenario, every live mode back to back (alternating order), `rounds` times.
    let turn = 0;
    for (const s of scenarios) {
      const rounds = roundsFlag ?? s.rounds ?? 1;
      const byMode = new Map<string, Cell[]>();
      const keep = (c: Cell): void => { byMode.set(c.mode, [...(byMode.get(c.mode) ?? []), c]); };
      for (let round = 1; round <= rounds; round++) {
        const order = turn++ % 2 === 0 ? live : [...live].reverse();
        const tag = rounds > 1 ? ` (round ${round}/${rounds})` : '';
        for (const { mode, running } of order) {
          if (!runs(mode, s)) continue;
          const procs = processesOf(running);
          try {
            await useRules(mode);
            const redirBefore = mode.redirect ? await redirectedConnections(client) : undefined;
            const cpuBefore = procs.map((p) => cpuSeconds(p.pid));
            const t0 = Date.now();
            const measurement = await s.run(ctx);
            const wallS = (Date.now() - t0) / 1000;
            const cpuAfter = procs.map((p) => cpuSeconds(p.pid));
            const redirAfter = mode.redirect ? await redirectedConnections(client) : undefined;
            const cores: Record<string, number> = {};
            procs.forEach((p, k) => {
              const a = cpuBefore[k];
              const b = cpuAfter[k];
              if (a !== undefined && b !== undefined) cores[p.role] = (b - a) / wallS;
            });
            const measured = procs.length > 0 && Object.keys(cores).length === procs.length;
            keep({
              scenario: s.id, mode: mode.id, measurement,
              ...(redirBefore !== undefined && redirAfter !== undefined ? { redirected: redirAfter - redirBefore } : {}),
              ...(measured ? { proxyCores: sum(cores) } : {}),
              ...(measured && running.processes !== undefined ? { coresByRole: cores } : {}),
            });
            const cpuText = running.processes === undefined || !measured ? '' : `, CPU ${Object.entries(cores).map(([r, c]) => `${r} ${c.toFixed(2)}`).join(' / ')} cores`;
            log(`${s.id} / ${mode.id}${tag}: ${measurement.gbps !== undefined ? `${measurement.gbps.toFixed(2)} Gbit/s` : `${measurement.rps?.toFixed(0)} rps`}` +
              `${measurement.p99Ms !== undefined ? `, p50 ${measurement.p50Ms?.toFixed(3)} ms, p99 ${measurement.p99Ms.toFixed(3)} ms` : ''}, errors ${measurement.errors}${cpuText}`);
          } catch (err) {
            log(`${s.id} / ${mode.id}${tag}: failed: ${errText(err)}`);
            keep({ scenario: s.id, mode: mode.id, failure: errText(err) });
          }
        }
      }
      for (const { mode } of live) {
        const got = byMode.get(mode.id);
        if (got !== undefined) cells.push(combineRounds(got));
      }
    }

    // 3. Memory after the runs, memory per idle connection, counters.
    let bannerUp = scenarios.some((s) => s.id === 'server-first-ttfb');
    for (const { mode, running, rssIdle } of live) {
      const rssAfter = rssByRole(running);
      let idle: IdleConnectionsSummary | undefined;
      if (idleConns > 0 && mode.redirect && running.pid !== undefined && running.processes === undefined && !IDLE_SKIP.has(mode.id)) {
        try {
          if (!bannerUp) await startBanner(server.pod, REPO_ROOT);
          bannerUp = true;
          await useRules(mode);
          const r = await measureIdleConnections(client, REPO_ROOT, running.pid, server.ip4, BANNER_PORT, idleConns);
          idle = { held: r.held, errors: r.errors, kbSettled: r.kbSettled, kbMarginal: r.kbMarginal };
          log(`${mode.id}: ${r.held} idle connections held (${r.errors} errors): RSS ${r.rssBeforeMb.toFixed(1)} -> ${r.rssHeldMb.toFixed(1)} -> `
            + `${r.rssSettledMb.toFixed(1)} MB settled; ${r.kbSettled.toFixed(1)} KB each settled, ${r.kbMarginal.toFixed(1)} KB marginal`);
        } catch (err) {
          log(`${mode.id}: idle connections: failed: ${errText(err)}`);
        }
      }
      const several = running.processes !== undefined;
      let counters: Readonly<Record<string, number>> | undefined;
      try { counters = await running.counters?.(); } catch { /* report without */ }
      summaries.push({
        mode: mode.id, title: mode.title, notes: running.notes,
        ...(rssIdle === undefined ? {} : { rssIdleMb: sum(rssIdle), ...(several ? { rssIdleByRole: rssIdle } : {}) }),
        ...(rssAfter === undefined ? {} : { rssAfterMb: sum(rssAfter), ...(several ? { rssAfterByRole: rssAfter } : {}) }),
        ...(counters === undefined ? {} : { counters }),
        ...(idle === undefined ? {} : { idleConnections: idle }),
        transparency: transparencyText(mode, ctx),
      });
    }

    // 4. "Where the time goes": remora-l7 again, under node --cpu-prof, for one keep-alive load (not measured).
    const l7 = live.find((l) => l.mode.id === remoraL7.id);
    if (values['no-profile'] !== true && l7 !== undefined) {
      try {
        const load = { url: `http://${ctx.server.ip4}:${ctx.server.httpPort}/`, threads: 2, connections: 64 };
        profile = { mode: remoraL7.id, load: wrkArgs(load, durationS).join(' '), summary: await profileRemoraL7(modeCtx, l7.running, rules, load) };
        log(`profile: ${profile.summary.samples} samples, busy ${(profile.summary.busy * 100).toFixed(0)} %`);
      } catch (err) {
        log(`profile: failed: ${errText(err)}`);
      }
    }
    // The mesh-mtls server sidecar under node --cpu-prof, during one more keep-alive load through both hops.
    const meshLive = live.find((l) => l.mode.id === MESH_GROUP.subject);
    if (values['no-profile'] !== true && meshLive !== undefined && meshServer !== undefined) {
      try {
        await useRules(meshLive.mode);
        const load = { url: `http://${meshServer.ip4}:${meshServer.httpPort}/`, threads: 2, connections: 64 };
        meshProfile = { mode: `${MESH_GROUP.subject} (the server pod's sidecar)`, load: wrkArgs(load, durationS).join(' '), summary: await profileMeshServer(modeCtx, meshLive.running, load) };
        log(`mesh profile: ${meshProfile.summary.samples} samples, busy ${(meshProfile.summary.busy * 100).toFixed(0)} %`);
      } catch (err) {
        log(`mesh profile: failed: ${errText(err)}`);
      }
    }
  } finally {
    await Promise.all(live.map((l) => l.running.stop().catch(() => undefined)));
    await mesh.destroy();
  }
  summaries.sort((a, b) => modes.findIndex((m) => m.id === a.mode) - modes.findIndex((m) => m.id === b.mode));

  const input: ReportInput = {
    machine, scenarios, loads, modes: summaries, cells, durationS, warmupS, elapsedS: (Date.now() - started) / 1000,
    loadBefore, loadAfter: loadAverage(),
    fixedRateTool: '`h2load --h1 --rps` (nghttp2-client; 8 connections × 125 rps, latencies from its --log-file, '
      + 'measured phase only); wrk2 is not packaged in Debian 12',
    baseline: BASELINE, peer: PEER, subject: SUBJECT,
    ...(profile === undefined ? {} : { profile }),
    ...(meshProfile === undefined ? {} : { meshProfile }),
  };
  process.stdout.write(`\n${renderSummary(input)}`);
  if (outFile !== undefined) {
    writeFileSync(outFile, renderDocument(input));
    log(`wrote ${outFile}`);
  }
  if (keepTmp) log(`kept scratch directory ${tmpDir}`);
  log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  },
);
