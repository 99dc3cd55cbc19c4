// Shared pieces of the proxy netns tests: starting proxy-tools servers/clients in pods, curl, log parsing.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { waitFor, type Pod } from './harness.js';
import { REPO_ROOT, outputLines, remoraInit, type RunningProxy } from './remora-process.js';

export const TOOLS = resolve(REPO_ROOT, 'dist/test/netns/proxy-tools.js');

export interface Tool {
  readonly child: ChildProcess;
  lines(): string[];
  /** The first JSON line the tool printed (clients print their result as one). */
  json<T>(): Promise<T>;
}

/** Start a proxy-tools server/client in the pod; resolves once it printed `readyLine`. */
export async function startTool(pod: Pod, args: readonly string[], opts: { uid?: number; readyLine?: string } = {}): Promise<Tool> {
  const child = pod.spawn([process.execPath, TOOLS, ...args], opts.uid === undefined ? {} : { uid: opts.uid });
  const lines = outputLines(child);
  const readyLine = opts.readyLine ?? 'ready';
  await waitFor(`${args[0] ?? 'tool'} in ${pod.name} to print "${readyLine}"`, async () => {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${lines.join('\n')}`);
    return lines.includes(readyLine) ? true : undefined;
  }, { timeoutMs: 10_000, intervalMs: 50 });
  return {
    child,
    lines: () => [...lines],
    json: <T>() => waitFor(`a result from ${args[0] ?? 'tool'}`, async () => {
      const line = lines.find((l) => l.startsWith('{'));
      return line === undefined ? undefined : JSON.parse(line) as T;
    }, { timeoutMs: 30_000, intervalMs: 50 }),
  };
}

/** Run a proxy-tools client to completion and parse its JSON result line. */
export async function runTool<T>(pod: Pod, args: readonly string[], opts: { uid?: number; timeoutMs?: number } = {}): Promise<T> {
  const r = await pod.exec([process.execPath, TOOLS, ...args], { timeoutMs: opts.timeoutMs ?? 30_000, ...(opts.uid === undefined ? {} : { uid: opts.uid }) });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line !== undefined, `${args.join(' ')} printed no result (exit ${r.code}): ${r.stderr}`);
  return JSON.parse(line) as T;
}

export interface CurlResult {
  /** curl's exit code: 0 ok, 7 refused, 28 timeout, 52 empty reply, 56 reset. */
  readonly code: number;
  readonly body: string;
}

export function hostUrl(address: string, port: number, path = '/'): string {
  return address.includes(':') ? `http://[${address}]:${port}${path}` : `http://${address}:${port}${path}`;
}

export async function curl(pod: Pod, address: string, port: number, opts: { uid?: number } = {}): Promise<CurlResult> {
  const r = await pod.exec(['curl', '-sS', '--max-time', '5', hostUrl(address, port)], opts.uid === undefined ? {} : { uid: opts.uid });
  return { code: r.code, body: r.stdout };
}

/** What http-app reports about the connection it got. */
export interface AppView {
  readonly tag: string;
  readonly remote: string;
  readonly local: string;
  readonly localPort: number;
}

export async function curlApp(pod: Pod, address: string, port: number, opts: { uid?: number } = {}): Promise<AppView> {
  const r = await curl(pod, address, port, opts);
  assert.equal(r.code, 0, `curl ${hostUrl(address, port)} from ${pod.name} failed with exit ${r.code}`);
  return JSON.parse(r.body) as AppView;
}

export interface LogRecord {
  readonly level: string;
  readonly msg: string;
  readonly [k: string]: unknown;
}

export function logRecords(proxy: RunningProxy): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of proxy.logs()) {
    if (!line.startsWith('{')) continue;
    try { out.push(JSON.parse(line) as LogRecord); } catch { /* a partial line */ }
  }
  return out;
}

/** Wait (bounded) until the proxy's logs hold at least `count` records matching `match`; log lines can trail /stats. */
export async function waitForLog(proxy: RunningProxy, what: string, match: (r: LogRecord) => boolean, count = 1): Promise<LogRecord[]> {
  return waitFor(`log: ${what}`, async () => {
    const found = logRecords(proxy).filter(match);
    return found.length >= count ? found : undefined;
  }, { timeoutMs: 10_000, intervalMs: 50 });
}

export async function initOk(pod: Pod, args: readonly string[] = []): Promise<void> {
  const r = await remoraInit(pod, args);
  assert.equal(r.code, 0, `remora init ${args.join(' ')} in ${pod.name} failed: ${r.stderr}`);
}

/** Wait until the proxy's /stats satisfies `ok` (bounded). */
export async function statsWhere(proxy: RunningProxy, what: string, ok: (s: Awaited<ReturnType<RunningProxy['stats']>>) => boolean): Promise<Awaited<ReturnType<RunningProxy['stats']>>> {
  return waitFor(what, async () => {
    const s = await proxy.stats();
    return ok(s) ? s : undefined;
  }, { timeoutMs: 10_000, intervalMs: 100 });
}

/** The value of one series of a Prometheus exposition text (undefined: absent). */
export function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
