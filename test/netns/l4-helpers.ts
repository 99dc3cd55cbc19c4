// Shared pieces of the l4-* netns tests: config files, curl / redis-cli through a VIP, counting which pod answered,
// the /stats fields of services and detection.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { waitFor, type Pod } from './harness.js';
import { curl } from './proxy-helpers.js';
import { REPO_ROOT, type RunningProxy } from './remora-process.js';

export const L4_TOOLS = resolve(REPO_ROOT, 'dist/test/netns/l4-tools.js');

/** A world-readable temp directory (pods' servers may drop privileges); remove() deletes it. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeConfig(dir: string, name: string, lines: readonly string[]): string {
  const file = join(dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  chmodSync(file, 0o644);
  return file;
}

/** The tag of the http-app that answered `curl http://address:port/` from `pod`. */
export async function curlTag(pod: Pod, address: string, port: number): Promise<string> {
  const r = await curl(pod, address, port);
  assert.equal(r.code, 0, `curl ${address}:${port} from ${pod.name} exited ${r.code}`);
  return (JSON.parse(r.body) as { tag: string }).tag;
}

/** How many times each value occurs. */
export function countBy(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of [...values].sort()) out[v] = (out[v] ?? 0) + 1;
  return out;
}

export interface EndpointRow {
  readonly endpoint: string;
  readonly healthy: boolean;
  readonly ejected: boolean;
  readonly inRotation: boolean;
  /** Connections and request attempts in flight. */
  readonly active: number;
  readonly ejectionCount: number;
}

export interface L4Stats {
  readonly errors: Readonly<Record<string, number>>;
  readonly errorCauses: Readonly<Record<string, number>>;
  readonly sniff: Readonly<Record<string, number>>;
  readonly connections: { readonly accepted: number; readonly active: number; readonly closed: number };
  readonly services?: Readonly<Record<string, { readonly endpoints: readonly EndpointRow[]; readonly ejections: number; readonly connectFailures: number }>>;
}

export async function l4Stats(proxy: RunningProxy): Promise<L4Stats> {
  return (await proxy.stats()) as unknown as L4Stats;
}

export async function l4StatsWhere(proxy: RunningProxy, what: string, ok: (s: L4Stats) => boolean, timeoutMs = 15_000): Promise<L4Stats> {
  return waitFor(what, async () => {
    const s = await l4Stats(proxy);
    return ok(s) ? s : undefined;
  }, { timeoutMs, intervalMs: 100 });
}

export function endpointRow(s: L4Stats, service: string, endpoint: string): EndpointRow | undefined {
  return s.services?.[service]?.endpoints.find((e) => e.endpoint === endpoint);
}

/** Start an l4-tools server in the pod; resolves once it printed "ready". Killed with the mesh. */
export async function startL4Tool(pod: Pod, args: readonly string[]): Promise<ChildProcess> {
  const child = pod.spawn([process.execPath, L4_TOOLS, ...args]);
  const lines: string[] = [];
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { lines.push(...d.split('\n')); });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { lines.push(`[stderr] ${d}`); });
  await waitFor(`${args[0] ?? 'tool'} in ${pod.name}`, async () => {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${lines.join('\n')}`);
    return lines.includes('ready') ? true : undefined;
  }, { timeoutMs: 10_000, intervalMs: 50 });
  return child;
}
