// `remora proxy --control URL --token TOKEN --control-ca-file FILE` (or REMORA_CONTROL_URL, REMORA_CONTROL_TOKEN,
// REMORA_CONTROL_CA_FILE, or [proxy] control, control_token, control_ca_file): the sidecar subscribes to the control plane (src/control/sync-client.ts). Each pushed
// snapshot goes through the proxy's own reload — the same validator and the same swap as a changed file — and is
// ACKed, or NACKed with the validator's problems while the config in force keeps serving. Until the first snapshot,
// and whenever the control plane is away, the sidecar serves what it has (its local file at start).
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { ConfigIssue } from '../config/config-issue.js';
import { loadSnapshotDefinitions, type SnapshotInput, type SnapshotLoad } from '../config/load-snapshot.js';
import { findSection, parseIni, type IniSection } from '../config/ini-file.js';
import { resolveOptions } from '../config/option-set.js';
import { proxyOptionSpecs } from '../config/proxy-options.js';
import { createLogger, type Logger } from '../core/log.js';
import { ControlClient } from '../control/control-client.js';
import { ControlChannel } from '../control/control-channel.js';
import { IdentityRenewer } from '../control/identity-renewer.js';
import { sidecarDocument } from '../control/sidecar-config.js';
import { SyncClient, type ApplyResult, type PushedSnapshot } from '../control/sync-client.js';
import type { Proxy } from '../proxy/proxy.js';

export interface ProxyControlOptions {
  readonly url: string;
  readonly token: string;
  readonly ca: string;
  readonly name: string;
  /** The SPIFFE ID to request a certificate for (spiffe_id): then identity_dir is managed through the control plane. */
  readonly spiffeId?: string;
}

type ControlOption = 'control' | 'controlToken' | 'controlCaFile' | 'spiffeId';

/**
 * The control options of the [proxy] section, the environment and the flags (flags win, as for every option):
 * undefined without `control`, else the options or the problems that need more than one key. A value that does not
 * parse (a bad URL) is the validator's to report, with every other problem: then `{ok: false, issues: []}`.
 */
export function proxyControlOptions(input: SnapshotInput):
  undefined | { ok: true; options: ProxyControlOptions } | { ok: false; issues: ConfigIssue[] } {
  let section: IniSection | undefined;
  if (input.file !== undefined) {
    try {
      section = findSection(parseIni((input.readFile ?? readFileSync)(input.file).toString('utf8'), input.file).doc, 'proxy');
    } catch {
      section = undefined; // an unreadable file: the proxy's load reports it
    }
  }
  const resolved = resolveOptions(proxyOptionSpecs, { flags: input.flags, env: input.env, section, file: input.file });
  const { control, controlToken, controlCaFile, spiffeId } = resolved.values;
  const where = (name: ControlOption): { source: string; key: string } => {
    const spec = proxyOptionSpecs[name];
    switch (resolved.sources[name]) {
      case 'flag': return { source: 'command line', key: `--${spec.flag}` };
      case 'environment': return { source: 'environment', key: spec.env };
      case 'file': return { source: `${input.file ?? 'config'}:${section?.entries.get(spec.key)?.line ?? section?.line ?? 0}`, key: `[proxy] ${spec.key}` };
      default: { // not set: name it the way `control` was given, at its place
        const at = resolved.sources.control === 'default' || name === 'control' ? undefined : where('control');
        if (at === undefined || at.source === 'command line') return { source: 'command line', key: `--${spec.flag}` };
        return at.source === 'environment' ? { source: 'environment', key: spec.env } : { source: at.source, key: `[proxy] ${spec.key}` };
      }
    }
  };
  const controlIssues = resolved.issues.filter((i) => (['control', 'controlToken', 'controlCaFile', 'spiffeId'] as const)
    .some((n) => i.key === `--${proxyOptionSpecs[n].flag}` || i.key === proxyOptionSpecs[n].env || i.key === `[proxy] ${proxyOptionSpecs[n].key}`));
  if (controlIssues.length > 0) return { ok: false, issues: [] };
  if (control === '') {
    const stray = (['controlToken', 'controlCaFile', 'spiffeId'] as const).find((n) => resolved.sources[n] === 'flag');
    if (stray !== undefined) {
      return { ok: false, issues: [{ source: 'command line', key: '--control', expected: 'the control plane URL (https://HOST:15012): --token, --control-ca-file and --spiffe-id go with --control (or [proxy] control)' }] };
    }
    return undefined;
  }
  const issues: ConfigIssue[] = [];
  if (controlToken === '') issues.push({ ...where('controlToken'), expected: 'the bearer token for the control plane (scope sidecar): --token, REMORA_CONTROL_TOKEN or [proxy] control_token' });
  let ca = '';
  if (controlCaFile === '') {
    issues.push({ ...where('controlCaFile'), expected: "the mesh root (PEM) that verifies the control plane's certificate: --control-ca-file, REMORA_CONTROL_CA_FILE or [proxy] control_ca_file" });
  } else {
    try {
      ca = readFileSync(controlCaFile, 'utf8');
    } catch (err) {
      issues.push({ ...where('controlCaFile'), value: controlCaFile, expected: `a readable PEM file (${(err as { code?: string }).code ?? 'EIO'})` });
    }
  }
  if (issues.length > 0) return { ok: false, issues };
  const name = input.env.POD_NAME !== undefined && input.env.POD_NAME !== '' ? input.env.POD_NAME : hostname();
  return { ok: true, options: { url: control, token: controlToken, ca, name, ...(spiffeId !== '' ? { spiffeId } : {}) } };
}

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

  /** Try a pushed snapshot through `reload` (the proxy's swap); keep it only when accepted. */
  apply(snapshot: PushedSnapshot, reload: () => ReturnType<Proxy['reload']>): ApplyResult {
    this.#candidate = snapshot;
    try {
      const outcome = reload();
      if (outcome.result === 'rejected') return { ok: false, error: outcome.issues.join('\n') };
      this.#current = snapshot;
      return { ok: true };
    } finally {
      this.#candidate = undefined;
    }
  }
}

export function startControlSync(proxy: Proxy, options: ProxyControlOptions, config: ControlledConfig, log: Logger): SyncClient {
  const client = new SyncClient({
    server: options.url, token: options.token, ca: options.ca, name: options.name,
    identity: () => proxy.runtime.mesh?.identity.spiffeId ?? '',
    apply: (snapshot) => config.apply(snapshot, () => proxy.reload('control')),
    metrics: () => proxy.golden(),
    status: () => proxy.status(),
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
