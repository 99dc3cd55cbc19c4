// `remora proxy --control URL --token TOKEN --control-ca-file FILE` (or REMORA_CONTROL_URL, REMORA_CONTROL_TOKEN,
// REMORA_CONTROL_CA_FILE, or [proxy] control, control_token, control_ca_file): the sidecar subscribes to the control plane (src/control/sync-client.ts). Each pushed
// snapshot goes through the proxy's own reload — the same validator and the same swap as a changed file — and is
// ACKed, or NACKed with the validator's problems while the config in force keeps serving. Until the first snapshot,
// and whenever the control plane is away, the sidecar serves what it has (its local file at start).
import { readFileSync } from 'node:fs';
import { loadSnapshotDefinitions, type SnapshotInput, type SnapshotLoad } from '../config/load-snapshot.js';
import { findSection, parseIni } from '../config/ini-file.js';
import { resolveOptions } from '../config/option-set.js';
import { proxyOptionSpecs } from '../config/proxy-options.js';
import { createLogger, type Logger } from '../core/log.js';
import { ControlClient } from '../control/control-client.js';
import { ControlChannel } from '../control/control-channel.js';
import { IdentityRenewer } from '../control/identity-renewer.js';
import { sidecarDocument } from '../control/sidecar-config.js';
import { SyncClient, type ApplyResult, type PushedSnapshot } from '../control/sync-client.js';
import type { Proxy } from '../proxy/proxy.js';
import type { ReloadOutcome } from '../proxy/runtime-manager.js';
import { localCollector, type Collector } from '../proxy/workers/report-sources.js';

export { proxyControlOptions, type ProxyControlOptions } from './proxy-control-options.js';
import type { ProxyControlOptions } from './proxy-control-options.js';

/** The last snapshot applied and the one being tried; reloads (SIGHUP, file change) use the last applied. */
export class ControlledConfig {
  readonly #input: SnapshotInput;
  #current: PushedSnapshot | undefined;
  #candidate: PushedSnapshot | undefined;

  constructor(input: SnapshotInput) {
    this.#input = input;
  }

  /** The proxy's reload: the local file alone until a snapshot is applied, then the snapshot over the local [proxy]. */
  load(): SnapshotLoad {
    const snap = this.#candidate ?? this.#current;
    if (snap === undefined) return loadSnapshotDefinitions(this.#input);
    const read = this.#input.readFile ?? readFileSync;
    const local = this.#input.file === undefined ? undefined : read(this.#input.file).toString('utf8');
    const name = `control:v${snap.version}.ini`;
    const text = sidecarDocument(snap.ini, local, this.#input.file ?? '');
    return loadSnapshotDefinitions({ ...this.#input, file: name, readFile: (p) => (p === name ? Buffer.from(text, 'utf8') : read(p)) });
  }

  /**
   * Try a pushed snapshot through `reload` (the proxy's swap); keep it only when accepted. With workers the reload
   * answers later (every worker applies it, or none): the snapshot is read (load()) before reload() returns.
   */
  apply(snapshot: PushedSnapshot, reload: () => ReloadOutcome): ApplyResult;
  apply(snapshot: PushedSnapshot, reload: () => ReloadOutcome | Promise<ReloadOutcome>): ApplyResult | Promise<ApplyResult>;
  apply(snapshot: PushedSnapshot, reload: () => ReloadOutcome | Promise<ReloadOutcome>): ApplyResult | Promise<ApplyResult> {
    this.#candidate = snapshot;
    const settle = (outcome: ReloadOutcome): ApplyResult => {
      if (outcome.result === 'rejected') return { ok: false, error: outcome.issues.join('\n') };
      this.#current = snapshot;
      return { ok: true };
    };
    try {
      const outcome = reload();
      return outcome instanceof Promise ? outcome.then(settle) : settle(outcome);
    } finally {
      this.#candidate = undefined;
    }
  }
}

/** What the control plane's sync needs of the proxy: one process, or the primary of `workers` > 1. */
export interface SyncedProxy {
  /** The SPIFFE ID in force ('' without an identity). */
  identity(): string;
  reload(trigger: string): ReloadOutcome | Promise<ReloadOutcome>;
  /** The reports (golden metrics, ...) of the whole proxy: src/proxy/workers/report-sources.ts. */
  readonly collector: Collector;
  readonly stopped: Promise<void>;
}

/** A single-process proxy as the sync sees it. */
export function syncedProxy(proxy: Proxy): SyncedProxy {
  return {
    identity: () => proxy.runtime.mesh?.identity.spiffeId ?? '',
    reload: (trigger) => proxy.reload(trigger),
    collector: localCollector(proxy),
    stopped: proxy.stopped,
  };
}

export function startControlSync(proxy: SyncedProxy, options: ProxyControlOptions, config: ControlledConfig, log: Logger): SyncClient {
  const client = new SyncClient({
    server: options.url, token: options.token, ca: options.ca, name: options.name,
    identity: () => proxy.identity(),
    apply: (snapshot) => config.apply(snapshot, () => proxy.reload('control')),
    // Every report goes through the collector: with workers it is every worker's, merged.
    metrics: () => proxy.collector.collect('golden'),
    status: () => proxy.collector.collect('status'),
    log,
  });
  client.start();
  void proxy.stopped.then(() => { client.stop(); });
  return client;
}

/**
 * With --spiffe-id: make sure identity_dir holds a certificate from the control plane before the proxy checks it
 * (a few tries, with backoff), and return the renewer to start once the proxy runs. Its requests go on `channel`:
 * one-off HTTPS requests until the sync connection is attached and up, then on that connection. Problems are logged; the proxy's
 * own checks then report missing or unusable files as usual.
 */
export async function bootstrapIdentity(input: SnapshotInput, options: ProxyControlOptions, channel: ControlChannel): Promise<IdentityRenewer | undefined> {
  if (options.spiffeId === undefined) return undefined;
  let text: string | undefined;
  try {
    text = input.file === undefined ? undefined : (input.readFile ?? readFileSync)(input.file).toString('utf8');
  } catch {
    return undefined; // the proxy's load reports it
  }
  const doc = text === undefined ? undefined : parseIni(text, input.file ?? '').doc;
  const resolved = resolveOptions(proxyOptionSpecs, { flags: input.flags, env: input.env, section: doc === undefined ? undefined : findSection(doc, 'proxy'), file: input.file });
  const log = createLogger({ level: resolved.values.logLevel, name: 'remora-proxy' });
  const dir = resolved.values.identityDir;
  if (dir === '') {
    log.error({ event: 'identity.no-dir', spiffeId: options.spiffeId }, '--spiffe-id needs identity_dir (where the certificate from the control plane is written)');
    return undefined;
  }
  const renewer = new IdentityRenewer({
    client: channel,
    spiffeId: options.spiffeId, dir, log, owner: { uid: resolved.values.uid, gid: resolved.values.gid },
  });
  let delay = 500;
  for (let attempt = 1; attempt <= 5; attempt++) {
    const why = renewer.due();
    if (why === undefined) break;
    try {
      await renewer.renew(why);
      break;
    } catch (err) {
      log.warn({ event: 'identity.bootstrap-failed', attempt, err: err instanceof Error ? err.message : String(err) }, 'no certificate from the control plane yet');
      if (attempt < 5) await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
  return renewer;
}

/** The channel a sidecar's certificate requests take: HTTPS to the control plane until a sync connection is attached. */
export function controlChannel(options: ProxyControlOptions): ControlChannel {
  return new ControlChannel(new ControlClient({ server: options.url, token: options.token, ca: options.ca }));
}
