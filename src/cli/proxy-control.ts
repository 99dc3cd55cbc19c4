// `remora proxy --control URL --token TOKEN --control-ca-file FILE` (or REMORA_CONTROL_URL, REMORA_CONTROL_TOKEN,
// REMORA_CONTROL_CA_FILE): the sidecar subscribes to the control plane (src/control/sync-client.ts). Each pushed
// snapshot goes through the proxy's own reload — the same validator and the same swap as a changed file — and is
// ACKed, or NACKed with the validator's problems while the config in force keeps serving. Until the first snapshot,
// and whenever the control plane is away, the sidecar serves what it has (its local file at start).
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { ConfigIssue } from '../config/config-issue.js';
import { loadSnapshotDefinitions, type SnapshotInput, type SnapshotLoad } from '../config/load-snapshot.js';
import type { RawFlag } from '../config/option-set.js';
import { findSection, parseIni } from '../config/ini-file.js';
import { resolveOptions } from '../config/option-set.js';
import { proxyOptionSpecs } from '../config/proxy-options.js';
import { createLogger, type Logger } from '../core/log.js';
import { parseSpiffeId } from '../core/spiffe.js';
import { ControlClient } from '../control/control-client.js';
import { IdentityRenewer } from '../control/identity-renewer.js';
import { sidecarDocument } from '../control/sidecar-config.js';
import { SyncClient, type ApplyResult, type PushedSnapshot } from '../control/sync-client.js';
import type { Proxy } from '../proxy/proxy.js';

export const CONTROL_FLAGS = ['control', 'token', 'control-ca-file', 'spiffe-id'] as const;

export interface ProxyControlOptions {
  readonly url: string;
  readonly token: string;
  readonly ca: string;
  readonly name: string;
  /** The SPIFFE ID to request a certificate for (--spiffe-id): then identity_dir is managed through the control plane. */
  readonly spiffeId?: string;
}

/** The control options of the flags and environment: undefined without --control, else the options or the problems. */
export function proxyControlOptions(flags: ReadonlyMap<string, RawFlag>, env: NodeJS.ProcessEnv):
  undefined | { ok: true; options: ProxyControlOptions } | { ok: false; issues: ConfigIssue[] } {
  const pick = (flag: string, envName: string): { value: string; source: string } | undefined => {
    const f = flags.get(flag)?.value;
    if (f !== undefined) return { value: f, source: 'command line' };
    const e = env[envName];
    return e === undefined || e === '' ? undefined : { value: e, source: 'environment' };
  };
  const url = pick('control', 'REMORA_CONTROL_URL');
  const token = pick('token', 'REMORA_CONTROL_TOKEN');
  const caFile = pick('control-ca-file', 'REMORA_CONTROL_CA_FILE');
  const spiffeId = pick('spiffe-id', 'REMORA_SPIFFE_ID');
  if (url === undefined) {
    if (flags.has('token') || flags.has('control-ca-file') || flags.has('spiffe-id')) {
      return { ok: false, issues: [{ source: 'command line', key: '--control', expected: 'the control plane URL (https://HOST:15012): --token, --control-ca-file and --spiffe-id go with --control' }] };
    }
    return undefined;
  }
  const issues: ConfigIssue[] = [];
  const id = spiffeId === undefined ? undefined : parseSpiffeId(spiffeId.value, true);
  if (id !== undefined && !id.ok) issues.push({ source: spiffeId?.source ?? 'command line', key: '--spiffe-id', value: spiffeId?.value ?? '', expected: id.expected });
  if (!/^https:\/\/[^/\s]+\/?$/.test(url.value)) issues.push({ source: url.source, key: '--control', value: url.value, expected: 'https://HOST:PORT (all control traffic is TLS)' });
  if (token === undefined) issues.push({ source: 'command line', key: '--token', expected: 'the bearer token for the control plane (scope sidecar or write)' });
  let ca = '';
  if (caFile === undefined) {
    issues.push({ source: 'command line', key: '--control-ca-file', expected: "the mesh root (PEM) that verifies the control plane's certificate" });
  } else {
    try {
      ca = readFileSync(caFile.value, 'utf8');
    } catch (err) {
      issues.push({ source: caFile.source, key: '--control-ca-file', value: caFile.value, expected: `a readable PEM file (${(err as { code?: string }).code ?? 'EIO'})` });
    }
  }
  if (issues.length > 0 || token === undefined) return { ok: false, issues };
  const name = env.POD_NAME !== undefined && env.POD_NAME !== '' ? env.POD_NAME : hostname();
  return { ok: true, options: { url: url.value.replace(/\/$/, ''), token: token.value, ca, name, ...(id?.ok === true ? { spiffeId: id.value.id } : {}) } };
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
    log,
  });
  client.start();
  void proxy.stopped.then(() => { client.stop(); });
  return client;
}

/**
 * With --spiffe-id: make sure identity_dir holds a certificate from the control plane before the proxy checks it
 * (a few tries, with backoff), and return the renewer to start once the proxy runs. Problems are logged; the proxy's
 * own checks then report missing or unusable files as usual.
 */
export async function bootstrapIdentity(input: SnapshotInput, options: ProxyControlOptions): Promise<IdentityRenewer | undefined> {
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
    client: new ControlClient({ server: options.url, token: options.token, ca: options.ca }),
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
