// Running remora itself inside a test pod: `remora init` and a `remora proxy` process with its admin API.
import type { ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor, type ExecResult, type Pod } from './harness.js';

/** Repository root (this file runs from dist/test/netns/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const REMORA_BIN = resolve(REPO_ROOT, 'bin/remora');

export function remoraInit(pod: Pod, args: readonly string[] = [], env: Record<string, string> = {}): Promise<ExecResult> {
  return pod.exec([process.execPath, REMORA_BIN, 'init', ...args], { env, timeoutMs: 60_000 });
}

/** The child's complete stdout lines and its stderr chunks (`[stderr] ...`), appended as they arrive. */
export function outputLines(child: ChildProcess): string[] {
  const lines: string[] = [];
  let buf = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { lines.push(`[stderr] ${d}`); });
  return lines;
}

export interface RunningProxy {
  readonly child: ChildProcess;
  /** Everything the proxy logged so far (NDJSON lines). */
  logs(): string[];
  /** GET a path on the admin listener (inside the pod). */
  admin(path: string): Promise<{ status: number; body: string }>;
  stats(): Promise<ProxyStats>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface ProxyStats {
  readonly connections: { readonly accepted: number; readonly active: number; readonly closed: number };
  readonly bytes: { readonly downstreamToUpstream: number; readonly upstreamToDownstream: number };
  readonly errors: Readonly<Record<string, number>>;
  readonly [k: string]: unknown;
}

/**
 * Start `remora proxy` in the pod as root; it binds, then drops to uid/gid 1337 (or --uid/--gid). Resolves when
 * /ready answers 200. The redirect probes behind /ready are off (REMORA_READINESS_PROBE_INTERVAL=off: many tests run a
 * proxy in a pod without rules, or with rules for other ports); a test that wants them passes
 * `--readiness-probe-interval` (a flag beats the environment), or `probes: 'default'` to run them with the default
 * interval (nothing set).
 */
export async function startProxy(
  pod: Pod, args: readonly string[] = [],
  opts: { adminPort?: number; env?: Readonly<Record<string, string>>; probes?: 'off' | 'default' } = {},
): Promise<RunningProxy> {
  const adminPort = opts.adminPort ?? 15000;
  const probesOff: Record<string, string> = opts.probes === 'default' ? {} : { REMORA_READINESS_PROBE_INTERVAL: 'off' };
  const child = pod.spawn([process.execPath, REMORA_BIN, 'proxy', '--log-level', 'debug', ...args],
    { env: { ...probesOff, ...opts.env } });
  const lines = outputLines(child);
  const admin = async (path: string): Promise<{ status: number; body: string }> => {
    const r = await pod.exec(['curl', '-sS', '--max-time', '5', '-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:${adminPort}${path}`]);
    const i = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(0, i)) };
  };
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  await waitFor('remora proxy /ready', async () => {
    if (child.exitCode !== null) throw new Error(`proxy exited ${child.exitCode}: ${lines.join('\n')}`);
    const r = await admin('/ready');
    return r.status === 200 ? true : undefined;
  }, { timeoutMs: 15_000, intervalMs: 100 });
  return {
    child,
    logs: () => [...lines],
    admin,
    stats: async () => JSON.parse((await admin('/stats')).body) as ProxyStats,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
