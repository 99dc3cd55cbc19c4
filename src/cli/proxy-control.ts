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
import type { Logger } from '../core/log.js';
import { sidecarDocument } from '../control/sidecar-config.js';
import { SyncClient, type ApplyResult, type PushedSnapshot } from '../control/sync-client.js';
import type { Proxy } from '../proxy/proxy.js';

export const CONTROL_FLAGS = ['control', 'token', 'control-ca-file'] as const;

export interface ProxyControlOptions {
  readonly url: string;
  readonly token: string;
  readonly ca: string;
  readonly name: string;
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
  if (url === undefined) {
    if (flags.has('token') || flags.has('control-ca-file')) {
      return { ok: false, issues: [{ source: 'command line', key: '--control', expected: 'the control plane URL (https://HOST:15012): --token and --control-ca-file go with --control' }] };
    }
    return undefined;
  }
  const issues: ConfigIssue[] = [];
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
  return { ok: true, options: { url: url.value.replace(/\/$/, ''), token: token.value, ca, name } };
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
