// Holds the current Runtime and replaces it. Every change of configuration comes through here and takes the same
// path: a new snapshot (definitions + the next version) -> buildRuntime(new, current) -> swap -> commit. Sources:
//   * reload(): the config file read again (SIGHUP, a change of the file: src/proxy/config-watcher.ts), validated by
//     the same validator as at start. Any problem rejects the whole snapshot: the problems are logged (each with
//     file:line) and counted, and the last good runtime keeps serving. [proxy] keys bound at start (listeners,
//     uid/gid, admin address, http_engine) cannot change on reload: a change of one is a problem too;
//   * setWeights(): the admin API's POST /routes/NAME/weights derives a snapshot from the current one with the new
//     weights (source "admin"). A later file reload replaces it with what the file says.
// The swap is one reference assignment: connections accepted after it take the new runtime, requests started after
// it use it; nothing in flight is cut.
import type { RouteAdmin, RouteAdminView } from '../admin/route-weights.js';
import type { ConfigStatsJson } from '../admin/stats-json.js';
import { formatIssue, type ConfigIssue } from '../config/config-issue.js';
import { makeSnapshot, type SnapshotDefinitions, type SnapshotSource } from '../config/config-snapshot.js';
import type { SnapshotLoad } from '../config/load-snapshot.js';
import { restartOnlyIssues } from '../config/restart-only.js';
import { backendId, parseWeights } from '../config/route-spec.js';
import { RemoraError } from '../core/errors.js';
import type { Logger, LogLevel } from '../core/log.js';
import { describeSource } from './config-dump.js';
import { buildRuntime, type Runtime, type RuntimeDeps } from './runtime.js';

export type ReloadOutcome =
  | { readonly result: 'ok'; readonly version: number; readonly hash: string }
  | { readonly result: 'unchanged'; readonly version: number }
  | { readonly result: 'rejected'; readonly issues: readonly string[] };

export type SetWeightsResult =
  | { readonly ok: true; readonly route: RouteAdminView; readonly version: number }
  | { readonly ok: false; readonly status: 400 | 404; readonly error: string };

export interface RuntimeManagerOptions {
  readonly log: Logger;
  readonly deps: RuntimeDeps;
  /** Read and validate the config again (the start's flags and environment); throws REMORA_ERR_CONFIG_READ. */
  readonly load?: (() => SnapshotLoad) | undefined;
  /** The config file, for messages and the snapshot source. */
  readonly file?: string | undefined;
  /**
   * The version of the first snapshot (default 1). A worker (`workers` > 1) starts at the primary's version, so every
   * worker, the first ones and a restarted one, reports the same version for the same snapshot.
   */
  readonly initialVersion?: number;
}

/** A snapshot built and waiting for commit() or abort() (a worker's half of the primary's two-phase apply). */
interface Prepared {
  readonly version: number;
  readonly definitions: SnapshotDefinitions;
  readonly source: SnapshotSource;
  readonly plan: ReturnType<typeof buildRuntime>;
}

export class RuntimeManager implements RouteAdmin {
  readonly #o: RuntimeManagerOptions;
  #current: Runtime;
  #version: number;
  readonly #reloads = { ok: 0, rejected: 0, unchanged: 0 };
  #lastRejected: { at: string; issues: readonly string[] } | undefined;
  #closed = false;
  #prepared: Prepared | undefined;

  /** Builds and commits the runtime of the first snapshot (version 1). Throws if it cannot be built. */
  constructor(initial: SnapshotDefinitions, source: SnapshotSource, o: RuntimeManagerOptions) {
    this.#o = o;
    const version = o.initialVersion ?? 1;
    const snapshot = makeSnapshot(initial, version, source);
    const plan = buildRuntime(snapshot, undefined, o.deps);
    plan.commit();
    this.#current = plan.runtime;
    this.#version = version;
  }

  /** The runtime in force. */
  get current(): Runtime {
    return this.#current;
  }

  /** Re-read the config file and swap in its runtime when it is valid and different. */
  reload(trigger: string): ReloadOutcome {
    const log = this.#o.log;
    if (this.#closed) return { result: 'rejected', issues: ['the proxy is stopping'] };
    if (this.#o.load === undefined) return this.#reject(trigger, ['no configuration file to reload (--config / REMORA_CONFIG)']);
    let load: SnapshotLoad;
    try {
      load = this.#o.load();
    } catch (err) {
      return this.#reject(trigger, [err instanceof Error ? err.message : String(err)]);
    }
    if (!load.ok) return this.#reject(trigger, load.issues.map(formatIssue));
    for (const warning of load.warnings) log.warn({ event: 'config.warning', trigger, warning }, warning);
    const current = this.#current.snapshot;
    const restart = restartOnlyIssues(current.proxy, load.definitions.proxy, load.document, this.#o.file ?? 'config');
    if (restart.length > 0) return this.#reject(trigger, restart.map((i: ConfigIssue) => formatIssue(i)));
    const next = makeSnapshot(load.definitions, this.#version + 1, this.#o.file === undefined ? { kind: 'defaults' } : { kind: 'file', path: this.#o.file });
    if (next.hash === current.hash) {
      this.#reloads.unchanged++;
      log.info({ event: 'config.unchanged', trigger, version: current.version, hash: current.hash }, 'config reload: unchanged');
      return { result: 'unchanged', version: current.version };
    }
    const applied = this.#apply(next.version, load.definitions, next.source, trigger);
    if (!applied.ok) return this.#reject(trigger, [applied.error]);
    this.#reloads.ok++;
    this.#lastRejected = undefined;
    return { result: 'ok', version: this.#current.snapshot.version, hash: this.#current.snapshot.hash };
  }

  #reject(trigger: string, issues: readonly string[]): ReloadOutcome {
    this.#reloads.rejected++;
    this.#lastRejected = { at: new Date().toISOString(), issues };
    const version = this.#current.snapshot.version;
    const n = `${issues.length} problem${issues.length === 1 ? '' : 's'}`;
    if (trigger === 'identity') {
      // A change of the identity files that cannot be used: the identity in force keeps serving.
      this.#o.deps.meshStats.identity.increment('rejected');
      this.#o.log.error({ event: 'identity.rejected', trigger, issues, version, code: 'REMORA_ERR_IDENTITY', identity: this.#current.mesh?.identity.spiffeId },
        `new identity files rejected (${n}); the identity in force keeps serving`);
    } else {
      this.#o.log.error({ event: 'config.rejected', trigger, issues, version, code: 'REMORA_ERR_CONFIG_INVALID' },
        `config reload rejected (${n}); version ${version} keeps serving`);
    }
    return { result: 'rejected', issues };
  }

  // === a worker's two-phase apply (src/proxy/workers/): the primary validated the snapshot; every worker builds it
  // (prepare), and the primary commits it everywhere only when every worker could, else aborts it everywhere ===

  /** Build the runtime of a snapshot the primary validated, without swapping it in (a later prepare replaces it). */
  prepare(definitions: SnapshotDefinitions, version: number, source: SnapshotSource, trigger: string): { ok: true } | { ok: false; error: string } {
    this.#prepared = undefined;
    if (this.#closed) return { ok: false, error: 'the proxy is stopping' };
    const snapshot = makeSnapshot(definitions, version, source);
    try {
      this.#prepared = { version, definitions, source, plan: buildRuntime(snapshot, this.#current, this.#o.deps) };
      return { ok: true };
    } catch (err) {
      this.#o.log.error({ err, trigger }, 'config could not be built');
      return { ok: false, error: err instanceof RemoraError ? err.message : String(err) };
    }
  }

  /** Swap in the prepared runtime. */
  commitPrepared(trigger: string): ReloadOutcome {
    const p = this.#prepared;
    this.#prepared = undefined;
    if (p === undefined) return { result: 'rejected', issues: ['nothing was prepared'] };
    this.#swap(p.version, p.definitions, p.source, p.plan, trigger);
    this.#reloads.ok++;
    this.#lastRejected = undefined;
    return { result: 'ok', version: p.version, hash: this.#current.snapshot.hash };
  }

  /** Drop the prepared runtime (another worker could not build it): nothing of it was started. */
  abortPrepared(): void {
    this.#prepared = undefined;
  }

  /** Count a reload the primary decided without the workers (rejected by the validator, or unchanged). */
  countReload(outcome: ReloadOutcome): void {
    if (outcome.result === 'unchanged') this.#reloads.unchanged++;
    if (outcome.result === 'rejected') {
      this.#reloads.rejected++;
      this.#lastRejected = { at: new Date().toISOString(), issues: outcome.issues };
    }
  }

  /** The definitions POST /routes/NAME/weights would apply (nothing changes here), or why not. */
  deriveWeights(name: string, text: string): { ok: true; definitions: SnapshotDefinitions } | { ok: false; status: 400 | 404; error: string } {
    const rt = this.#current;
    if (rt.routes.route(name) === undefined) return { ok: false, status: 404, error: `no route named "${name}"` };
    const parsed = parseWeights(text);
    if (!parsed.ok) return { ok: false, status: 400, error: `expected ${parsed.expected}` };
    const checked = rt.routes.withWeights(name, parsed.value);
    if (!checked.ok) return { ok: false, status: 400, error: checked.error };
    const weighted = checked.table.route(name);
    const snap = rt.snapshot;
    const routes = snap.routes.map((r) => (r.name === name && weighted !== undefined ? { ...r, backends: weighted.backends } : r));
    const { proxy, registry, services, trafficPolicies, authorizations, files } = snap;
    return { ok: true, definitions: { proxy, registry, services, routes, trafficPolicies, authorizations, files } };
  }

  /** Build the runtime of `definitions` and swap it in. */
  #apply(version: number, definitions: SnapshotDefinitions, source: SnapshotSource, trigger: string):
    { ok: true } | { ok: false; error: string } {
    const snapshot = makeSnapshot(definitions, version, source);
    let plan;
    try {
      plan = buildRuntime(snapshot, this.#current, this.#o.deps);
    } catch (err) {
      const e = err instanceof RemoraError ? err.message : String(err);
      this.#o.log.error({ err, trigger }, 'config could not be built');
      return { ok: false, error: e };
    }
    this.#swap(version, definitions, source, plan, trigger);
    return { ok: true };
  }

  #swap(version: number, definitions: SnapshotDefinitions, source: SnapshotSource, plan: ReturnType<typeof buildRuntime>, trigger: string): void {
    const snapshot = plan.runtime.snapshot;
    const before = this.#current.snapshot;
    const identityBefore = this.#current.mesh?.identity;
    this.#current = plan.runtime;
    this.#version = version;
    plan.commit();
    const identity = plan.runtime.mesh?.identity;
    if (identity !== undefined && identity !== identityBefore) {
      this.#o.deps.meshStats.identity.increment('rotations');
      this.#o.log.info({
        event: 'identity.rotated', trigger, spiffeId: identity.spiffeId, notAfter: new Date(identity.notAfter).toISOString(),
        previous: identityBefore?.spiffeId,
      }, 'workload identity rotated: new handshakes use the new certificate and trust bundle');
    }
    if (definitions.proxy.logLevel !== before.proxy.logLevel) this.#o.log.level = definitions.proxy.logLevel as LogLevel;
    this.#o.log.info({
      event: 'config.applied', trigger, version, hash: snapshot.hash, previous: before.version, source: describeSource(source),
      clusters: plan.changes,
    }, 'config applied');
  }

  // === admin: route weights ===

  routes(): { version: number; routes: RouteAdminView[] } {
    const t = this.#current.routes;
    return { version: this.#current.snapshot.version, routes: t.describe().map((r) => this.#view(r.name) as RouteAdminView) };
  }

  route(name: string): RouteAdminView | undefined {
    return this.#view(name);
  }

  #view(name: string): RouteAdminView | undefined {
    const spec = this.#current.routes.route(name);
    if (spec === undefined) return undefined;
    return {
      name: spec.name, service: spec.service, order: spec.order, source: spec.source,
      weights: Object.fromEntries(spec.backends.map((b) => [backendId(b), b.weight])),
    };
  }

  /** `text`: "web-v1=50, web-v2=50". On success the next request sees the new weights; on error nothing changes. */
  setWeights(name: string, text: string): SetWeightsResult {
    const rt = this.#current;
    if (rt.routes.route(name) === undefined) return { ok: false, status: 404, error: `no route named "${name}"` };
    const parsed = parseWeights(text);
    if (!parsed.ok) return { ok: false, status: 400, error: `expected ${parsed.expected}` };
    const checked = rt.routes.withWeights(name, parsed.value);
    if (!checked.ok) return { ok: false, status: 400, error: checked.error };
    const before = this.#view(name);
    const weighted = checked.table.route(name);
    const snap = rt.snapshot;
    const routes = snap.routes.map((r) => (r.name === name && weighted !== undefined ? { ...r, backends: weighted.backends } : r));
    const applied = this.#apply(this.#version + 1, { ...snap, routes }, { kind: 'admin', change: `route ${name} weights` }, 'admin');
    if (!applied.ok) return { ok: false, status: 400, error: applied.error };
    const route = this.#view(name) as RouteAdminView;
    this.#o.log.info({ event: 'route.weights', route: name, from: before?.weights, to: route.weights, version: this.#version }, 'route weights changed');
    return { ok: true, route, version: this.#version };
  }

  // === status ===

  configStats(): ConfigStatsJson {
    const s = this.#current.snapshot;
    return {
      version: s.version, hash: s.hash, source: describeSource(s.source), loadedAt: new Date(s.loadedAt).toISOString(),
      reloads: { ...this.#reloads },
      ...(this.#lastRejected === undefined ? {} : { lastRejected: this.#lastRejected }),
    };
  }

  /** Stop every cluster (shutdown). */
  close(): void {
    this.#closed = true;
    this.#current.clusters.close();
  }
}
