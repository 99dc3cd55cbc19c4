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
// Usage: npm run bench [-- --duration S --warmup S --modes a,b --scenarios x,y --remora-args "..." --out FILE
//                          --no-write --keep-tmp --no-profile]
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Mesh, netnsUnavailableReason, type Pod } from '../test/netns/harness.js';
import { REPO_ROOT, remoraInit } from '../test/netns/remora-process.js';
import { MODES, remoraL7, remoraL7Config, REMORA_L7_ADMIN_PORT, startRemora } from './modes.js';
import { runWrk, wrkArgs } from './loads.js';
import { summarizeCpuProfile, type CpuProfile, type ProfileSummary } from './profile.js';
import { cpuSeconds, redirectedConnections, rssMb } from './proc.js';
import { renderDocument, renderSummary, type ReportInput } from './report.js';
import { SCENARIOS } from './scenarios.js';
import { BANNER_PORT, BODY, BODY2, HTTP_PORT, startEndpointPod, startServerPod } from './server-pod.js';
import { ensureTools, machineInfo } from './tools.js';
import type { Cell, Mode, ModeContext, ModeSummary, RunContext, RunningMode } from './types.js';

const HELP = `Usage: npm run bench [-- flags]   (or, as root: node dist/bench/run.js [flags])

Builds a client pod and a server pod (network namespaces), then runs every scenario in every mode:
${SCENARIOS.map((s) => `  scenario ${s.id.padEnd(24)} ${s.title}`).join('\n')}
${MODES.map((m) => `  mode     ${m.id.padEnd(24)} ${m.title}`).join('\n')}

Flags:
  --duration S        measured seconds per load (default 6, 1-60)
  --warmup S          unmeasured warm-up seconds before each load (default 1, 0-10)
  --modes a,b         run only these modes (default: all; the ratios need direct and haproxy-l4)
  --scenarios x,y     run only these scenarios (default: all)
  --remora-args "..." extra flags for \`remora proxy\` (split on spaces)
  --out FILE          write the report here (default docs/benchmarks.md, written only by full runs)
  --no-write          only print the tables
  --keep-tmp          keep the scratch directory (configs, proxy logs)
  --no-profile        skip the CPU profile of remora-l7 ("where the time goes")
`;

const BASELINE = 'direct';
const PEER = 'haproxy-l4';
const SUBJECT = 'remora';
/** Hard upper bound for the whole run (every load is bounded too). */
const WATCHDOG_MS = 15 * 60_000;

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
  // The service's VIP exists only in the proxies' configuration.
  if (mode.redirect) targets.push([ctx.server.serviceVip, ctx.server.servicePort, BODY]);
  for (const [host, port, body] of targets) {
    const r = await client.exec(['curl', '-sS', '--max-time', '5', `http://${host}:${port}/`]);
    if (r.code !== 0 || r.stdout !== body) return `${host}:${port} answered ${JSON.stringify(r.stdout.slice(0, 60))} ${r.stderr.trim().slice(0, 120)}`;
  }
  return undefined;
}

/** The client pod's rules: none, or remora's redirecting outbound TCP to `port`. Applied only when they change. */
class ClientRules {
  readonly #pod: Pod;
  #current: number | 'none' = 'none';

  constructor(pod: Pod) {
    this.#pod = pod;
  }

  async use(mode: Mode): Promise<void> {
    const want = mode.redirect ? (mode.outboundPort ?? 15001) : 'none';
    if (want === this.#current) return;
    const args = want === 'none' ? ['--cleanup'] : ['--outbound-port', String(want)];
    const r = await remoraInit(this.#pod, ['--log-level', 'warn', ...args]);
    if (r.code !== 0) throw new Error(`remora init ${args.join(' ')} exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).slice(-400)}`);
    this.#current = want;
  }
}

interface LiveMode {
  readonly mode: Mode;
  readonly running: RunningMode;
  readonly rssIdleMb?: number;
}

/** Stop the measured remora-l7, run it again under `node --cpu-prof` for one keep-alive load, and summarize. */
async function profileRemoraL7(ctx: ModeContext, measured: RunningMode, rules: ClientRules,
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
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no .cpuprofile in ${dir}`);
  return summarizeCpuProfile(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string' }, warmup: { type: 'string' }, modes: { type: 'string' }, scenarios: { type: 'string' },
      'remora-args': { type: 'string' }, out: { type: 'string' }, 'no-write': { type: 'boolean' }, 'keep-tmp': { type: 'boolean' },
      'no-profile': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) { process.stdout.write(HELP); return 0; }
  const durationS = numberFlag(values.duration, 6, 1, 60, 'duration');
  const warmupS = numberFlag(values.warmup, 1, 0, 10, 'warmup');
  const modes = pickList(MODES, values.modes, 'mode');
  const scenarios = pickList(SCENARIOS, values.scenarios, 'scenario');
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
  const mesh = await Mesh.create({ ipv6: true });
  try {
    const client = await mesh.addPod('client');
    const serverPod = await mesh.addPod('server');
    // Two more endpoints of the multi-endpoint service (the server pod's nginx is the first).
    const endpointPods = [await mesh.addPod('endpoint2'), await mesh.addPod('endpoint3')];
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
    const ctx: RunContext = { client, server, durationS, warmupS, tmpDir };
    const modeCtx: ModeContext = { ...ctx, repoRoot: REPO_ROOT, remoraArgs };
    const rules = new ClientRules(client);
    for (const s of scenarios) {
      loads[s.id] = s.describe(ctx);
      await s.setup?.(ctx);
    }

    // 1. Start every mode (its rules first), take idle RSS before any traffic, check transparency.
    for (const mode of modes) {
      let running: RunningMode | undefined;
      try {
        await rules.use(mode);
        running = await mode.start(modeCtx);
        await new Promise((r) => setTimeout(r, 1000));
        const rssIdleMb = running.pid === undefined ? undefined : rssMb(running.pid);
        const bad = await transparencyCheck(client, ctx, mode);
        if (bad !== undefined) throw new Error(`transparency check failed: ${bad}`);
        live.push({ mode, running, ...(rssIdleMb === undefined ? {} : { rssIdleMb }) });
        log(`${mode.id}: ready${running.pid === undefined ? '' : ` (pid ${running.pid}, RSS ${rssIdleMb?.toFixed(1)} MB)`}; :8080 and :8081 reach their own servers${mode.redirect ? ', the VIP answers' : ''}`);
      } catch (err) {
        const why = errText(err);
        log(`${mode.id}: ${why}`);
        keepTmp = true;
        summaries.push({ mode: mode.id, title: mode.title, notes: running?.notes ?? [], failure: why });
        for (const s of scenarios) cells.push({ scenario: s.id, mode: mode.id, failure: `mode did not start: ${why}` });
        await running?.stop();
      }
    }

    // 2. Scenario by scenario, every live mode back to back (alternating order).
    for (const [i, s] of scenarios.entries()) {
      const order = i % 2 === 0 ? live : [...live].reverse();
      for (const { mode, running } of order) {
        if (mode.scenarios !== undefined && !mode.scenarios.includes(s.id)) continue;
        if (s.modes !== undefined && !s.modes.includes(mode.id)) continue;
        const pid = running.pid;
        try {
          await rules.use(mode);
          const redirBefore = mode.redirect ? await redirectedConnections(client) : undefined;
          const cpuBefore = pid === undefined ? undefined : cpuSeconds(pid);
          const t0 = Date.now();
          const measurement = await s.run(ctx);
          const wallS = (Date.now() - t0) / 1000;
          const cpuAfter = pid === undefined ? undefined : cpuSeconds(pid);
          const redirAfter = mode.redirect ? await redirectedConnections(client) : undefined;
          cells.push({
            scenario: s.id, mode: mode.id, measurement,
            ...(redirBefore !== undefined && redirAfter !== undefined ? { redirected: redirAfter - redirBefore } : {}),
            ...(cpuBefore !== undefined && cpuAfter !== undefined ? { proxyCores: (cpuAfter - cpuBefore) / wallS } : {}),
          });
          log(`${s.id} / ${mode.id}: ${measurement.gbps !== undefined ? `${measurement.gbps.toFixed(2)} Gbit/s` : `${measurement.rps?.toFixed(0)} rps`}` +
            `${measurement.p99Ms !== undefined ? `, p50 ${measurement.p50Ms?.toFixed(3)} ms, p99 ${measurement.p99Ms.toFixed(3)} ms` : ''}, errors ${measurement.errors}`);
        } catch (err) {
          log(`${s.id} / ${mode.id}: failed: ${errText(err)}`);
          cells.push({ scenario: s.id, mode: mode.id, failure: errText(err) });
        }
      }
    }

    // 3. Memory after the runs, counters, stop.
    for (const { mode, running, rssIdleMb } of live) {
      const rssAfterMb = running.pid === undefined ? undefined : rssMb(running.pid);
      let counters: Readonly<Record<string, number>> | undefined;
      try { counters = await running.counters?.(); } catch { /* report without */ }
      summaries.push({
        mode: mode.id, title: mode.title, notes: running.notes,
        ...(rssIdleMb === undefined ? {} : { rssIdleMb }),
        ...(rssAfterMb === undefined ? {} : { rssAfterMb }),
        ...(counters === undefined ? {} : { counters }),
        transparency: mode.redirect ? ':8080 and :8081 reached their own servers; the service VIP answered' : ':8080 and :8081 reached their own servers',
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
