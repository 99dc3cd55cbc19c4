// Shared pieces of the l7-* netns tests: running l7-tools servers/clients in pods, the HTTP part of /stats, the
// admin API's /routes, curl with headers.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { waitFor, type Pod } from './harness.js';
import { outputLines, REPO_ROOT, type RunningProxy } from './remora-process.js';

export const L7_TOOLS = resolve(REPO_ROOT, 'dist/test/netns/l7-tools.js');

export interface L7Tool {
  readonly child: ChildProcess;
  lines(): string[];
  /** The first JSON line the tool printed. */
  json<T>(timeoutMs?: number): Promise<T>;
}

/** Start an l7-tools server or long-running client; resolves once it printed `readyLine` ("ready"). */
export async function startL7Tool(pod: Pod, toolArgs: readonly string[], readyLine = 'ready', opts: { uid?: number } = {}): Promise<L7Tool> {
  const child = pod.spawn([process.execPath, L7_TOOLS, ...toolArgs], opts.uid === undefined ? {} : { uid: opts.uid });
  const lines = outputLines(child);
  await waitFor(`${toolArgs[0] ?? 'tool'} in ${pod.name} to print "${readyLine}"`, async () => {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${lines.join('\n')}`);
    return lines.includes(readyLine) ? true : undefined;
  }, { timeoutMs: 15_000, intervalMs: 50 });
  return {
    child,
    lines: () => [...lines],
    json: <T>(timeoutMs = 60_000) => waitFor(`a result from ${toolArgs[0] ?? 'tool'}`, async () => {
      const line = lines.find((l) => l.startsWith('{'));
      return line === undefined ? undefined : JSON.parse(line) as T;
    }, { timeoutMs, intervalMs: 50 }),
  };
}

/** Run an l7-tools client to completion and parse its JSON result line. */
export async function runL7Tool<T>(pod: Pod, toolArgs: readonly string[], timeoutMs = 60_000): Promise<T> {
  const r = await pod.exec([process.execPath, L7_TOOLS, ...toolArgs], { timeoutMs });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line !== undefined, `${toolArgs.join(' ')} printed no result (exit ${r.code}): ${r.stderr}`);
  return JSON.parse(line) as T;
}

export interface LoadResult {
  readonly done: number;
  readonly bodies: Record<string, number>;
  readonly statuses: Record<string, number>;
  readonly remoraErrors: Record<string, number>;
  readonly errors: Record<string, number>;
  readonly error?: string;
}

/** `load` from the pod: COUNT GETs over CONCURRENCY keep-alive connections. */
export function load(pod: Pod, url: string, count: number, concurrency: number, headers: readonly string[] = []): Promise<LoadResult> {
  return runL7Tool<LoadResult>(pod, ['load', url, String(count), String(concurrency), ...headers], 90_000);
}

/** A service's cluster in /stats `services.NAME` (src/upstream/cluster.ts ClusterStatus), as the L7 tests read it. */
export interface HttpServiceStats {
  /** The connection balancer ([service] balancer) and the request balancer (http_balancer, else the same). */
  readonly balancer?: string;
  readonly httpBalancer?: string;
  readonly upstreamProtocol: string;
  readonly outlier: { readonly ejected: number; readonly ejections: Record<string, number>; readonly ejectionsRefused: number };
  readonly endpoints: readonly {
    readonly endpoint: string; readonly ejected: boolean; readonly ejectionCount: number; readonly active: number; readonly weightFactor: number;
  }[];
  /** Endpoint keys per subset label. */
  readonly subsets?: Readonly<Record<string, readonly string[]>>;
  readonly breaker?: {
    readonly active: Readonly<Record<'connection' | 'pending' | 'request' | 'retry', number>>;
    readonly overflow: Readonly<Record<'connection' | 'pending' | 'request' | 'retry', number>>;
    readonly retryBudgetOverflow: number;
  };
}

/** The HTTP layer's counters (/stats `http`) with the services' clusters (/stats `services`). */
export interface HttpStats {
  readonly outbound: Record<string, number>;
  readonly inbound: Record<string, number>;
  readonly routeTableVersion: number;
  readonly services: Record<string, HttpServiceStats>;
}

export async function httpStats(proxy: RunningProxy): Promise<HttpStats> {
  const s = await proxy.stats();
  const h = s['http'] as Omit<HttpStats, 'services'> | undefined;
  assert.ok(h !== undefined, '/stats has an http section');
  return { ...h, services: (s['services'] ?? {}) as Record<string, HttpServiceStats> };
}

export async function httpStatsWhere(proxy: RunningProxy, what: string, ok: (s: HttpStats) => boolean, timeoutMs = 15_000): Promise<HttpStats> {
  return waitFor(what, async () => {
    const s = await httpStats(proxy);
    return ok(s) ? s : undefined;
  }, { timeoutMs, intervalMs: 100 });
}

/** The admin API from inside the pod: any method, optional body. */
export async function adminCall(pod: Pod, path: string, method = 'GET', body?: string): Promise<{ status: number; body: string }> {
  const r = await pod.exec(['curl', '-sS', '--max-time', '5', '-X', method, ...(body === undefined ? [] : ['--data-binary', body]),
    '-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:15000${path}`]);
  const i = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(0, i)) };
}

export interface CurlOut {
  readonly code: number;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly stderr: string;
}

/** curl with extra arguments; returns the status, the response headers (lower-case names) and the body. */
export async function curlFull(pod: Pod, url: string, extra: readonly string[] = []): Promise<CurlOut> {
  const r = await pod.exec(['curl', '-sS', '--max-time', '10', '-D', '-', ...extra, url], { timeoutMs: 20_000 });
  // -D - writes the head(s) first, then the body; with --http2 the status line is "HTTP/2 200".
  const parts = r.stdout.split(/\r?\n\r?\n/);
  let headIdx = 0;
  while (headIdx + 1 < parts.length && /^HTTP\/[\d.]+ 1\d\d/.test(parts[headIdx] ?? '')) headIdx++;
  const head = parts[headIdx] ?? '';
  const body = parts.slice(headIdx + 1).join('\n\n');
  const lines = head.split(/\r?\n/);
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { code: r.code, status, headers, body, stderr: r.stderr };
}

/** How many times each value occurs. */
export function tally(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of [...values].sort()) out[v] = (out[v] ?? 0) + 1;
  return out;
}
