// `workers = N` (N > 1): the primary process of a node:cluster (docs/operations.md#workers). It serves no traffic:
//   - forks N workers (src/proxy/workers/worker.ts) with SCHED_NONE: the primary binds each capture listener once and
//     hands the socket to every worker, which all accept on it; the kernel gives each connection to one of them;
//   - owns the configuration: the file (and the control plane's snapshots, through `reload`), its validation, its
//     version. A reload is validated here, then applied in two phases: every worker builds it (prepare), and it is
//     committed everywhere only when every worker could, else dropped everywhere (the last good config keeps serving
//     in every worker);
//   - owns the identity files' watch (a change is a reload, so every worker gets the new identity), the signals
//     (SIGHUP reload; SIGTERM/SIGINT drain every worker with the same grace and timeout, then exit), the admin and
//     metrics listeners (answers as ONE proxy: every report is collected from every worker and merged,
//     src/proxy/workers/report-sources.ts), and the redirect prober with its helper (the workers answer the probe
//     connections they accept by asking the primary);
//   - restarts a worker that exits (`event: worker.exited`), at most MAX_RESTARTS in RESTART_WINDOW_MS: beyond that
//     the proxy stops with exit code 1 (the container restarts; a crash loop is not hidden).
// Started as root it binds, forks, starts the probe helper, then switches to uid/gid 1337 like a single process (a
// worker forked later starts as 1337 and needs no privilege: the listening sockets are the primary's).
import { installProcessSignals } from '../process-signals.js';
import cluster, { type Worker } from 'node:cluster';
import type { ProxyState } from '../../admin/admin-server.js';
import { AdminServer } from '../../admin/admin-server.js';
import { MetricsServer, type PrometheusExposition } from '../../admin/prometheus-endpoint.js';
import type { RouteAdmin, RouteAdminView } from '../../admin/route-weights.js';
import type { ConfigStatsJson, DrainJson } from '../../admin/stats-json.js';
import { formatIssue } from '../../config/config-issue.js';
import { hashDefinitions, makeSnapshot, type SnapshotDefinitions, type SnapshotSource } from '../../config/config-snapshot.js';
import { identityPaths } from '../../config/identity-files.js';
import type { SnapshotLoad } from '../../config/load-snapshot.js';
import { restartOnlyIssues } from '../../config/restart-only.js';
import { formatHostPort } from '../../core/addr.js';
import { RemoraError } from '../../core/errors.js';
import { MeshStats } from '../../core/mesh-stats.js';
import { Stats } from '../../core/stats.js';
import type { Logger, LogLevel } from '../../core/log.js';
import { EXPOSITION_CONTENT_TYPE, renderExposition } from '../../telemetry/exposition.js';
import { remoraSource } from '../../telemetry/remora-metrics.js';
import { configDump, describeSource } from '../config-dump.js';
import { watchConfigFile, type ConfigWatcher } from '../config-watcher.js';
import { ProbeHelper } from '../probe-helper.js';
import { checkIdentity, dropPrivileges, remoraVersion, startProbeHelper } from '../proxy.js';
import { evaluateReadiness, readinessJson, type ProbeName, type ProbeStatus, type Readiness } from '../readiness.js';
import { RedirectProber } from '../redirect-prober.js';
import type { ReloadOutcome } from '../runtime-manager.js';
import { IpcPeer, type IpcChannel } from './ipc-peer.js';
import { mergeReadiness, type WorkerPart } from './merge.js';
import { prepareDecision, type PrepareAnswer } from './prepare-decision.js';
import { MAX_RESTARTS, RESTART_WINDOW_MS, restartDecision } from './restart-policy.js';
import { EXPOSITION_CARRY, GOLDEN_CARRY, RestartCarry, STATUS_CARRY } from './restart-carry.js';
import { mergeReport, type Collector, type ReportName, type ReportValue, type StatsWithWorkers } from './report-sources.js';
import type { PrepareRequest, ProbeCheckRequest, ProbesNote, WorkerInit } from './worker.js';

/** How long a worker may take to start (bind, build its runtime). */
const START_TIMEOUT_MS = 30_000;
/** How long a worker may take to answer a collect, a prepare or a commit. */
const ANSWER_TIMEOUT_MS = 10_000;
/** Quiet period after a change of an identity file before the reload (as a single process). */
const IDENTITY_SETTLE_MS = 50;
const IDENTITY_RETRY_MS = 1_000;

export interface PrimaryContext {
  readonly log: Logger;
  readonly definitions: SnapshotDefinitions;
  /** How many workers (already resolved: > 1). */
  readonly workers: number;
  readonly configFile?: string | undefined;
  /** Read and validate the config again (the file, or the control plane's snapshot over it). */
  readonly reload?: (() => SnapshotLoad) | undefined;
  readonly watchConfig?: boolean;
  readonly handleSignals?: boolean;
}

/** The primary, as src/cli uses it (the control plane's sync, the identity renewer). */
export interface PrimaryProxy {
  readonly collector: Collector;
  /** The SPIFFE ID in force ('' without an identity). */
  identity(): string;
  /** Validate and apply the config again (every worker, or none). */
  reload(trigger?: string): Promise<ReloadOutcome>;
  shutdown(reason?: string): Promise<void>;
  readonly stopped: Promise<void>;
}

interface Slot {
  readonly id: number;
  worker: Worker | undefined;
  peer: IpcPeer | undefined;
  ready: boolean;
}

/** The config the primary holds (the workers hold the same, built). */
interface Held {
  readonly definitions: SnapshotDefinitions;
  readonly version: number;
  readonly hash: string;
  readonly source: SnapshotSource;
  readonly loadedAt: number;
}

export async function startPrimary(ctx: PrimaryContext): Promise<PrimaryProxy> {
  const { log } = ctx;
  const options = ctx.definitions.proxy;
  checkIdentity(options);
  let state: ProxyState = 'starting';
  const source: SnapshotSource = ctx.configFile === undefined || ctx.configFile === '' ? { kind: 'defaults' } : { kind: 'file', path: ctx.configFile };
  let held: Held = { definitions: ctx.definitions, version: 1, hash: hashDefinitions(ctx.definitions), source, loadedAt: Date.now() };
  const reloads = { ok: 0, rejected: 0, unchanged: 0 };
  let lastRejected: { at: string; issues: readonly string[] } | undefined;
  let identity = '';

  // SCHED_NONE: the workers accept on the shared socket themselves (no round-robin through the primary).
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ serialization: 'advanced' });

  const slots: Slot[] = Array.from({ length: ctx.workers }, (_, i) => ({ id: i + 1, worker: undefined, peer: undefined, ready: false }));
  const live = (): Slot[] => slots.filter((s) => s.ready && s.peer !== undefined);

  // The redirect prober runs here (created once the first worker reports how the inbound listener is bound).
  let prober: RedirectProber | undefined;
  let probeHelper: ProbeHelper | { readonly unavailable: string } = { unavailable: 'not started' };
  const probesNote = (): ProbesNote => ({ intervalMs: prober?.intervalMs ?? 0, status: [...(prober?.status() ?? new Map<ProbeName, ProbeStatus>())] });

  // === collect: one report of the whole proxy ===
  // The reports with cumulative counters stay monotonic across a worker's restart (src/proxy/workers/restart-carry.ts).
  const carries = {
    golden: new RestartCarry(GOLDEN_CARRY),
    status: new RestartCarry(STATUS_CARRY),
    prometheus: new RestartCarry(EXPOSITION_CARRY),
  };
  const runningPid = (worker: number): number | undefined => slots[worker - 1]?.worker?.process.pid;
  const collect = async <K extends ReportName>(name: K): Promise<ReportValue<K>> => {
    const answers = await Promise.all(live().map(async (s): Promise<WorkerPart<ReportValue<K>> | undefined> => {
      const pid = s.worker?.process.pid ?? 0;
      try {
        const value = await (s.peer as IpcPeer).request('collect', name, ANSWER_TIMEOUT_MS) as ReportValue<K>;
        return { worker: s.id, pid, value };
      } catch (err) {
        log.warn({ event: 'worker.no-answer', worker: s.id, report: name, err: err instanceof Error ? err.message : String(err), code: 'REMORA_ERR_WORKER' },
          'a worker did not answer a report');
        return undefined;
      }
    }));
    const parts = answers.filter((a): a is WorkerPart<ReportValue<K>> => a !== undefined);
    if (parts.length === 0) throw new RemoraError('REMORA_ERR_WORKER', `no worker answered the ${name} report`);
    const merged = mergeReport(name, parts);
    const carry = carries[name as keyof typeof carries] as RestartCarry<ReportValue<K>> | undefined;
    return carry === undefined ? merged : carry.apply(merged, parts, runningPid);
  };
  // The status report's readiness is the proxy's /ready: the primary's lifecycle and every configured worker too.
  const collectWithReadiness = async <K extends ReportName>(name: K): Promise<ReportValue<K>> => {
    const value = await collect(name);
    if (name !== 'status') return value;
    const r = await readiness();
    const status = value as ReportValue<'status'>;
    return { ...status, ready: status.ready && r.ready, readyReason: r.ready ? status.readyReason : r.reason } as ReportValue<K>;
  };
  const collector: Collector = { collect: collectWithReadiness };

  // === readiness: the primary's lifecycle and probes, and every worker ready ===
  let drain: { startedAt: number; reason: string; exiting: boolean } | undefined;
  const readiness = async (): Promise<Readiness> => {
    const own = evaluateReadiness({ lifecycle: state, probing: (prober?.intervalMs ?? 0) > 0, probes: prober?.status() ?? new Map() });
    if (!own.ready) return own;
    const parts = await Promise.all(live().map(async (s) => {
      try {
        return { worker: s.id, pid: 0, value: await (s.peer as IpcPeer).request('collect', 'readiness', ANSWER_TIMEOUT_MS) as Readiness };
      } catch {
        return { worker: s.id, pid: 0, value: { ready: false, reason: 'not ready: the worker did not answer' } };
      }
    }));
    return mergeReadiness(parts, ctx.workers);
  };
  const configStats = (): ConfigStatsJson => ({
    version: held.version, hash: held.hash, source: describeSource(held.source), loadedAt: new Date(held.loadedAt).toISOString(),
    reloads: { ...reloads }, ...(lastRejected === undefined ? {} : { lastRejected }),
  });
  const drainJson = (graceOver: boolean): DrainJson | undefined => (drain === undefined ? undefined : {
    startedAt: new Date(drain.startedAt).toISOString(), reason: drain.reason, exiting: drain.exiting, graceOver,
  });
  // Before any worker is ready (starting, or every worker restarting) the primary answers with what it has, as a
  // single process that has not finished starting would: its state, config and readiness, counters at zero.
  const startedAt = Date.now();
  const ownStats = (r: Readiness): StatsWithWorkers => ({
    ...new Stats().snapshot(state), uptimeMs: Date.now() - startedAt, ...new MeshStats().json(), config: configStats(),
    readiness: readinessJson(r, startedAt, prober?.intervalMs ?? 0, prober?.status() ?? new Map<ProbeName, ProbeStatus>()),
    ...(drainJson(false) === undefined ? {} : { drain: drainJson(false) }),
    workers: [],
  });
  /** The remora_* families of ownStats (no worker to read istio_* or the telemetry's counters from). */
  const ownExposition = (r: Readiness): string => renderExposition([remoraSource(remoraVersion(), () => ownStats(r), () => ({
    series: 0, maxSeries: held.definitions.proxy.metricsMaxSeries, seriesOverflow: 0, seriesEvicted: 0, accessLog: undefined, picks: [],
  }))]);
  /** collect(name), or undefined when no worker is ready or none answered. */
  const collectLive = async <K extends ReportName>(name: K): Promise<ReportValue<K> | undefined> => {
    if (live().length === 0) return undefined;
    try {
      return await collect(name);
    } catch (err) {
      if (err instanceof RemoraError && err.code === 'REMORA_ERR_WORKER') return undefined;
      throw err;
    }
  };
  const stats = async (): Promise<StatsWithWorkers> => {
    const merged = await collectLive('stats');
    const r = await readiness();
    if (merged === undefined) return ownStats(r);
    const graceOver = merged.drain?.graceOver ?? false;
    const d = drainJson(graceOver);
    return {
      ...merged, state, config: configStats(),
      ...(merged.readiness === undefined ? {} : { readiness: { ...merged.readiness, ready: r.ready, reason: r.reason } }),
      ...(d === undefined ? {} : { drain: d }),
    };
  };

  // === the two-phase apply of a validated snapshot ===
  let chain: Promise<unknown> = Promise.resolve();
  /** Serialize config changes: one at a time, in order. */
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const next = chain.then(f, f);
    chain = next.catch(() => undefined);
    return next;
  };
  const reject = (trigger: string, issues: readonly string[]): ReloadOutcome => {
    reloads.rejected++;
    lastRejected = { at: new Date().toISOString(), issues };
    const outcome: ReloadOutcome = { result: 'rejected', issues };
    for (const s of live()) s.peer?.note('count-reload', outcome);
    const n = `${issues.length} problem${issues.length === 1 ? '' : 's'}`;
    if (trigger === 'identity') {
      log.error({ event: 'identity.rejected', trigger, issues, version: held.version, code: 'REMORA_ERR_IDENTITY' }, `new identity files rejected (${n}); the identity in force keeps serving`);
    } else {
      log.error({ event: 'config.rejected', trigger, issues, version: held.version, code: 'REMORA_ERR_CONFIG_INVALID' }, `config reload rejected (${n}); version ${held.version} keeps serving`);
    }
    return outcome;
  };
  /**
   * Every live worker builds it; all commit, or all drop it. A worker that refuses it (its build failed) drops it
   * everywhere. A worker that does not answer at all (no reply within ANSWER_TIMEOUT_MS, or its channel closed) says
   * nothing about the config: when the others built it, they commit it and that worker is restarted, which starts
   * with the config in force (the new one), as after a failed commit. Only when no worker answered is it dropped.
   */
  const applyEverywhere = async (definitions: SnapshotDefinitions, src: SnapshotSource, trigger: string): Promise<{ ok: true; version: number } | { ok: false; errors: string[] }> => {
    const version = held.version + 1;
    const targets = live();
    const body: PrepareRequest = { definitions, version, source: src, trigger };
    const prepared = await Promise.all(targets.map(async (s): Promise<PrepareAnswer<Slot>> => {
      try {
        const r = await (s.peer as IpcPeer).request('prepare', body, ANSWER_TIMEOUT_MS) as { ok: boolean; error?: string };
        return r.ok ? { slot: s, kind: 'built' } : { slot: s, kind: 'refused', error: `worker ${s.id}: ${r.error ?? 'refused'}` };
      } catch (err) {
        return { slot: s, kind: 'silent', error: `worker ${s.id}: ${err instanceof Error ? err.message : String(err)}` };
      }
    }));
    const decision = prepareDecision(prepared);
    if (!decision.commit) {
      for (const s of targets) s.peer?.note('abort');
      return { ok: false, errors: decision.errors };
    }
    held = { definitions, version, hash: hashDefinitions(definitions), source: src, loadedAt: Date.now() };
    // A worker whose runtime is unknown now is restarted: it starts with the config in force, the new one.
    const restart = (s: Slot, event: string, err: string, message: string): void => {
      log.error({ event, worker: s.id, version, err, code: 'REMORA_ERR_WORKER' }, message);
      s.worker?.process.kill('SIGKILL');
    };
    for (const a of decision.silent) {
      restart(a.slot, 'worker.prepare-failed', a.error, 'a worker did not answer while the others built the new config; restarting it with the new config');
    }
    const committed = await Promise.all(decision.built.map(async (s) => {
      try {
        return await (s.peer as IpcPeer).request('commit', trigger, ANSWER_TIMEOUT_MS) as { identity: string };
      } catch (err) {
        restart(s, 'worker.commit-failed', err instanceof Error ? err.message : String(err), 'a worker did not commit; restarting it');
        return undefined;
      }
    }));
    identity = committed.find((c) => c !== undefined)?.identity ?? identity;
    if (definitions.proxy.logLevel !== log.level) log.level = definitions.proxy.logLevel as LogLevel;
    return { ok: true, version };
  };

  // The config is read now, at the call (a control-plane snapshot is the candidate only during this call:
  // src/cli/proxy-control.ts ControlledConfig.apply); what it is checked against and the apply wait their turn.
  const reload = (trigger = 'api'): Promise<ReloadOutcome> => {
    let read: SnapshotLoad | Error | undefined;
    if (ctx.reload !== undefined) {
      try {
        read = ctx.reload();
      } catch (err) {
        read = err instanceof Error ? err : new Error(String(err));
      }
    }
    return serial(() => reloadWith(trigger, read));
  };
  const reloadWith = async (trigger: string, read: SnapshotLoad | Error | undefined): Promise<ReloadOutcome> => {
    if (state === 'stopped') return { result: 'rejected', issues: ['the proxy is stopping'] } as ReloadOutcome;
    if (read === undefined) return reject(trigger, ['no configuration file to reload (--config / REMORA_CONFIG)']);
    if (read instanceof Error) return reject(trigger, [read.message]);
    const load = read;
    if (!load.ok) return reject(trigger, load.issues.map(formatIssue));
    for (const warning of load.warnings) log.warn({ event: 'config.warning', trigger, warning }, warning);
    const restart = restartOnlyIssues(held.definitions.proxy, load.definitions.proxy, load.document, ctx.configFile ?? 'config');
    if (restart.length > 0) return reject(trigger, restart.map((i) => formatIssue(i)));
    const hash = hashDefinitions(load.definitions);
    if (hash === held.hash) {
      reloads.unchanged++;
      const outcome: ReloadOutcome = { result: 'unchanged', version: held.version };
      for (const s of live()) s.peer?.note('count-reload', outcome);
      log.info({ event: 'config.unchanged', trigger, version: held.version, hash }, 'config reload: unchanged');
      return outcome;
    }
    const previous = held.version;
    const applied = await applyEverywhere(load.definitions, source, trigger);
    if (!applied.ok) return reject(trigger, applied.errors);
    reloads.ok++;
    lastRejected = undefined;
    log.info({ event: 'config.applied', trigger, version: applied.version, hash, previous, source: describeSource(source), workers: live().length },
      'config applied in every worker');
    return { result: 'ok', version: applied.version, hash } as ReloadOutcome;
  };

  // === /routes: read from a worker; a weight change is derived by one worker, applied by all ===
  const anyPeer = (): IpcPeer => {
    const s = live()[0];
    if (s?.peer === undefined) throw new RemoraError('REMORA_ERR_WORKER', 'no worker is running');
    return s.peer;
  };
  const routes: RouteAdmin | undefined = !options.httpEngine ? undefined : {
    routes: () => collect('routes'),
    route: async (name) => (await collect('routes')).routes.find((r) => r.name === name),
    setWeights: (name, text) => serial(async () => {
      const derived = await anyPeer().request('derive-weights', { name, text }, ANSWER_TIMEOUT_MS) as
        { ok: true; definitions: SnapshotDefinitions } | { ok: false; status: 400 | 404; error: string };
      if (!derived.ok) return derived;
      const before = (await collect('routes')).routes.find((r) => r.name === name);
      const applied = await applyEverywhere(derived.definitions, { kind: 'admin', change: `route ${name} weights` }, 'admin');
      if (!applied.ok) return { ok: false as const, status: 400 as const, error: applied.errors.join('; ') };
      const route = (await collect('routes')).routes.find((r) => r.name === name) as RouteAdminView;
      log.info({ event: 'route.weights', route: name, from: before?.weights, to: route.weights, version: applied.version }, 'route weights changed');
      return { ok: true as const, route, version: applied.version };
    }),
  };

  // === the listeners the primary serves ===
  const exposition: PrometheusExposition = {
    contentType: EXPOSITION_CONTENT_TYPE,
    write: async (out) => {
      const text = await collectLive('prometheus') ?? carries.prometheus.apply(ownExposition(await readiness()), [], runningPid);
      await out(text);
      return text.length;
    },
  };
  const metricsServer = options.metricsAddress === undefined ? undefined
    : new MetricsServer({ host: options.metricsAddress.host, port: options.metricsAddress.port, exposition, log });
  let shutdown: (reason?: string) => Promise<void> = () => Promise.resolve();
  let beginDrain: (reason: string) => void = () => undefined;
  const admin = new AdminServer({
    host: options.adminAddress.host, port: options.adminAddress.port, log,
    state: () => state, stats, routes,
    // The primary holds the snapshot every worker serves (the same definitions, version and source).
    configDump: () => configDump(makeSnapshot(held.definitions, held.version, held.source, held.loadedAt)),
    certs: () => collect('certs'),
    readiness,
    drain: () => { beginDrain('POST /drain'); },
    quit: () => { void shutdown('POST /quitquitquit'); },
    connections: async () => await collectLive('connections') ?? { at: new Date().toISOString(), count: 0, connections: [] },
    // Pure planning over a runtime and its live state (health, pickers): one worker's (each worker's clusters are its own).
    explain: async (search) => {
      const unavailable = (why: string): { status: number; body: unknown } => ({ status: 503, body: { error: 'REMORA_ERR_WORKER', message: `${why}; try again` } });
      const s = live()[0];
      if (s?.peer === undefined) return unavailable(`${state === 'starting' ? 'starting' : 'no worker is running'}: no worker can explain yet`);
      try {
        return await s.peer.request('explain', search.toString(), ANSWER_TIMEOUT_MS) as { status: number; body: unknown };
      } catch (err) {
        return unavailable(`worker ${s.id} did not answer (${err instanceof Error ? err.message : String(err)})`);
      }
    },
    prometheus: exposition,
  });

  // === workers ===
  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => { resolveStopped = resolve; });
  let giveUp: ((err: Error) => void) | undefined;

  const fork = (slot: Slot): Promise<{ inboundIpv6: boolean }> => new Promise((resolve, reject) => {
    const worker = cluster.fork({ REMORA_WORKER: String(slot.id) });
    const peer = new IpcPeer(worker as unknown as IpcChannel, `worker ${slot.id}`);
    // node:cluster re-emits the worker process's 'error' on the Worker, and an 'error' without a listener is thrown:
    // the primary would crash because one worker misbehaved. The IPC peer's sends report their errors to a callback
    // (src/proxy/workers/ipc-peer.ts), so what is left here is rare (a kill() that failed): logged; the worker's
    // 'exit' below still does the restart.
    worker.on('error', (err: Error) => {
      log.warn({ event: 'worker.error', worker: slot.id, pid: worker.process.pid, err: err.message, code: 'REMORA_ERR_WORKER' }, `worker ${slot.id}: ${err.message}`);
    });
    slot.worker = worker;
    slot.peer = peer;
    slot.ready = false;
    const timer = setTimeout(() => { reject(new RemoraError('REMORA_ERR_WORKER', `worker ${slot.id} did not start within ${START_TIMEOUT_MS} ms`)); }, START_TIMEOUT_MS);
    peer.handle('probe-check', (body) => {
      const q = body as ProbeCheckRequest;
      return prober?.check(q.nonce, q.listener, q.address, q.port) ?? false;
    });
    peer.onNote('ready', (body) => {
      clearTimeout(timer);
      const b = body as { inboundIpv6: boolean; identity: string };
      identity = b.identity;
      slot.ready = true;
      log.info({ event: 'worker.ready', worker: slot.id, pid: worker.process.pid }, 'worker ready');
      resolve({ inboundIpv6: b.inboundIpv6 });
    });
    peer.onNote('failed', (body) => {
      clearTimeout(timer);
      reject(new RemoraError('REMORA_ERR_WORKER', `worker ${slot.id} could not start: ${(body as { error: string }).error}`));
    });
    // Sent once the worker listens on its channel (a message before that would be lost).
    peer.onNote('hello', () => {
      const init: WorkerInit = {
        worker: slot.id, definitions: held.definitions, version: held.version, source: held.source, configFile: ctx.configFile, probes: probesNote(),
      };
      peer.note('init', init);
    });
    worker.once('exit', (code, signal) => {
      clearTimeout(timer);
      peer.close(`worker ${slot.id} exited`);
      const wasReady = slot.ready;
      slot.ready = false;
      slot.worker = undefined;
      slot.peer = undefined;
      reject(new RemoraError('REMORA_ERR_WORKER', `worker ${slot.id} exited (code ${String(code)}, signal ${String(signal)}) before it was ready`));
      if (state === 'stopped' || drain?.exiting === true) return;
      log.error({ event: 'worker.exited', worker: slot.id, pid: worker.process.pid, exitCode: code, signal, wasReady, code: 'REMORA_ERR_WORKER' },
        `worker ${slot.id} exited; restarting it`);
      if (state === 'starting') return;
      restart(slot);
    });
  });

  const restartTimes: number[] = [];
  const restart = (slot: Slot): void => {
    const now = Date.now();
    while (restartTimes.length > 0 && now - (restartTimes[0] as number) > RESTART_WINDOW_MS) restartTimes.shift();
    const decision = restartDecision(restartTimes, now);
    if (!decision.restart) {
      log.error({ event: 'worker.restart-limit', worker: slot.id, restarts: decision.recent, windowMs: RESTART_WINDOW_MS, code: 'REMORA_ERR_WORKER' },
        `more than ${MAX_RESTARTS} worker restarts within ${RESTART_WINDOW_MS / 1000} s: stopping the proxy (exit code 1)`);
      giveUp?.(new RemoraError('REMORA_ERR_WORKER', 'worker restart limit reached'));
      return;
    }
    restartTimes.push(now);
    const delay = decision.delayMs;
    setTimeout(() => {
      if (state === 'stopped' || drain?.exiting === true) return;
      fork(slot).then(() => {
        log.info({ event: 'worker.restarted', worker: slot.id, pid: slot.worker?.process.pid, version: held.version }, 'worker restarted with the config in force');
        slot.peer?.note('probes', probesNote());
        if (drain !== undefined) slot.peer?.note('drain', drain.reason);
      }, (err: unknown) => {
        log.error({ event: 'worker.restart-failed', worker: slot.id, err: err instanceof Error ? err.message : String(err), code: 'REMORA_ERR_WORKER' }, 'a worker could not be restarted');
      });
    }, delay).unref();
  };

  let inboundIpv6 = false;
  try {
    await admin.listen();
    await metricsServer?.listen();
    const started = await Promise.all(slots.map((s) => fork(s)));
    inboundIpv6 = started.some((s) => s.inboundIpv6);
    probeHelper = startProbeHelper(options, log);
    dropPrivileges(options, log);
  } catch (err) {
    state = 'stopped';
    for (const s of slots) s.worker?.process.kill('SIGKILL');
    if (probeHelper instanceof ProbeHelper) probeHelper.close();
    await admin.close();
    await metricsServer?.close();
    throw err;
  }

  prober = new RedirectProber({
    log,
    settings: () => ({ intervalMs: held.definitions.proxy.readinessProbeInterval, target: held.definitions.proxy.readinessProbeTarget }),
    inboundPort: options.inboundPort,
    outboundPort: options.outboundPort,
    helper: probeHelper,
    inboundIpv6,
    onRound: () => {
      const note = probesNote();
      for (const s of live()) s.peer?.note('probes', note);
    },
  });

  // === config and identity watchers, as a single process ===
  const watchers: ConfigWatcher[] = [];
  if (ctx.configFile !== undefined && ctx.configFile !== '' && ctx.reload !== undefined && (ctx.watchConfig ?? true)) {
    watchers.push(watchConfigFile(ctx.configFile, () => { void reload('file-change'); }));
  }
  let identityTimer: NodeJS.Timeout | undefined;
  const identityChanged = (retry: boolean): void => {
    if (identityTimer !== undefined) clearTimeout(identityTimer);
    identityTimer = setTimeout(() => {
      identityTimer = undefined;
      void reload('identity').then((r) => { if (r.result === 'rejected' && !retry) identityChanged(true); });
    }, retry ? IDENTITY_RETRY_MS : IDENTITY_SETTLE_MS);
    identityTimer.unref();
  };
  if (options.identityDir !== '' && ctx.reload !== undefined && (ctx.watchConfig ?? true)) {
    for (const path of Object.values(identityPaths(options.identityDir))) watchers.push(watchConfigFile(path, () => { identityChanged(false); }));
  }

  // === drain and exit: every worker drains as a single process does; the primary exits when they all have ===
  beginDrain = (reason: string): void => {
    if (drain !== undefined) return;
    drain = { startedAt: Date.now(), reason, exiting: false };
    state = 'draining';
    prober?.stop();
    for (const s of live()) s.peer?.note('drain', reason);
    log.info({ event: 'proxy.draining', reason, workers: live().length }, 'draining every worker');
  };
  let shuttingDown: Promise<void> | undefined;
  let exitCode = 0;
  shutdown = (reason = 'shutdown requested'): Promise<void> => {
    if (shuttingDown !== undefined) {
      // A second signal: every worker ends its drain at once.
      for (const s of slots) s.peer?.note('cut', reason);
      return shuttingDown;
    }
    shuttingDown = (async () => {
      beginDrain(reason);
      if (drain !== undefined) drain.exiting = true;
      for (const w of watchers) w.close();
      if (identityTimer !== undefined) clearTimeout(identityTimer);
      const drainTimeout = held.definitions.proxy.drainTimeout;
      log.info({ event: 'proxy.exiting', reason, drainTimeoutMs: drainTimeout, workers: live().length }, 'every worker drains and exits; then the primary');
      const exits = slots.map((s) => (s.worker === undefined ? Promise.resolve()
        : new Promise<void>((resolve) => { s.worker?.once('exit', () => { resolve(); }); })));
      for (const s of slots) void s.peer?.request('shutdown', reason, drainTimeout + 5_000).catch(() => undefined);
      // Bounded: a worker that does not exit within its drain timeout (plus its reset guard) is killed.
      let guard: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(exits), new Promise<void>((resolve) => { guard = setTimeout(resolve, drainTimeout + 5_000); })]);
      clearTimeout(guard);
      for (const s of slots) {
        if (s.worker !== undefined && s.worker.process.exitCode === null) {
          log.error({ event: 'worker.killed', worker: s.id, code: 'REMORA_ERR_WORKER' }, 'a worker did not exit after its drain: killed');
          s.worker.process.kill('SIGKILL');
        }
      }
      state = 'stopped';
      if (probeHelper instanceof ProbeHelper) probeHelper.close();
      await admin.close();
      await metricsServer?.close();
      removeSignalHandlers();
      log.info({ event: 'proxy.stopped', workers: ctx.workers }, 'stopped');
      process.exitCode = exitCode;
      resolveStopped();
    })();
    return shuttingDown;
  };
  giveUp = (err: Error): void => {
    exitCode = 1;
    void shutdown(err.message);
  };

  const onSignal = (signal: NodeJS.Signals): void => { void shutdown(`received ${signal}`); };
  const onHangup = (): void => { void reload('SIGHUP'); };
  const removeSignalHandlers = (ctx.handleSignals ?? true) ? installProcessSignals(onSignal, onHangup) : (): void => undefined;

  state = 'ready';
  prober.start();
  log.info({
    event: 'proxy.ready', workers: ctx.workers, pids: slots.map((s) => s.worker?.process.pid),
    admin: formatHostPort(options.adminAddress.host, options.adminAddress.port), configFile: ctx.configFile,
    configVersion: held.version, configHash: held.hash, watchingConfig: watchers.length > 0,
  }, `remora proxy ready with ${ctx.workers} workers`);

  return {
    collector,
    identity: () => identity,
    reload,
    shutdown: (reason) => shutdown(reason),
    stopped,
  };
}
