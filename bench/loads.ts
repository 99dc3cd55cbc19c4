// Load generators (wrk, h2load, iperf3) run inside the client pod, and the pure parsers of their output.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Pod } from '../test/netns/harness.js';
import { REPO_ROOT } from '../test/netns/remora-process.js';
import type { Measurement } from './types.js';

/** "600.00us" / "1.20ms" / "2.00s" -> milliseconds. */
export function parseWrkDuration(text: string): number | undefined {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (m === null) return undefined;
  const n = Number(m[1]);
  const unit = m[2];
  if (unit === 'us') return n / 1000;
  if (unit === 'ms') return n;
  if (unit === 's') return n * 1000;
  return n * 60_000;
}

/** Parse `wrk --latency` output. Throws when it has no Requests/sec line. */
export function parseWrk(out: string): Measurement {
  const rpsM = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (rpsM === null) throw new Error(`wrk output without Requests/sec:\n${out.slice(0, 2000)}`);
  const pct = (p: string): number | undefined => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)\\s*$`, 'm').exec(out);
    return m === null ? undefined : parseWrkDuration(m[1] ?? '');
  };
  let errors = 0;
  const notes: string[] = [];
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (sock !== null) {
    const [c, r, w, t] = [sock[1], sock[2], sock[3], sock[4]].map(Number) as [number, number, number, number];
    errors += c + r + w + t;
    notes.push(`socket errors: connect ${c}, read ${r}, write ${w}, timeout ${t}`);
  }
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx !== null) {
    errors += Number(non2xx[1]);
    notes.push(`non-2xx: ${non2xx[1]}`);
  }
  const p50 = pct('50');
  const p99 = pct('99');
  return {
    rps: Number(rpsM[1]),
    ...(p50 === undefined ? {} : { p50Ms: p50 }),
    ...(p99 === undefined ? {} : { p99Ms: p99 }),
    errors,
    ...(notes.length === 0 ? {} : { note: notes.join('; ') }),
  };
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

/**
 * Where the load generators' log files go: a subdirectory of the run's scratch directory. Not the scratch directory
 * itself, which holds the proxies' configuration files: a proxy watches its configuration's directory, and h2load
 * writing its log there woke each proxy ~160 times a second during a load.
 */
async function loadLogDir(tmpDir: string): Promise<string> {
  const dir = join(tmpDir, 'loads');
  await mkdir(dir, { recursive: true, mode: 0o755 });
  return dir;
}

/** Parse h2load's summary and its --log-file (lines "start_us\tstatus\tduration_us"; measured phase only). */
export function parseH2load(out: string, logFile: string): Measurement {
  const fin = /finished in [\d.]+s, ([\d.]+) req\/s/.exec(out);
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  if (fin === null || req === null) throw new Error(`h2load output without a summary:\n${out.slice(0, 2000)}`);
  const durationsMs: number[] = [];
  let non2xx = 0;
  let unfinished = 0;
  const byStatus = new Map<number, number>();
  for (const line of logFile.split('\n')) {
    const f = line.split('\t');
    if (f.length < 3) continue;
    const status = Number(f[1]);
    const us = Number(f[2]);
    if (!Number.isFinite(us)) continue;
    // Status 0 without a failed/errored count in the summary: a request still in flight when the timed run ended
    // (h2load logs it as it closes the connections). Neither an error nor a latency sample.
    if (status === 0) { unfinished++; continue; }
    if (status < 200 || status > 299) {
      non2xx++;
      byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    }
    durationsMs.push(us / 1000);
  }
  durationsMs.sort((a, b) => a - b);
  const failed = Number(req[5]) + Number(req[6]) + Number(req[7]);
  const p50 = percentile(durationsMs, 50);
  const p99 = percentile(durationsMs, 99);
  const notes = [`${durationsMs.length} requests logged`];
  if (failed > 0) notes.push(`failed/errored/timeout: ${req[5]}/${req[6]}/${req[7]}`);
  if (unfinished > 0) notes.push(`${unfinished} still in flight when the run ended (status 0, not counted)`);
  if (non2xx > 0) notes.push(`non-2xx: ${non2xx} (${[...byStatus].sort(([a], [b]) => a - b).map(([st, n]) => `status ${st}: ${n}`).join(', ')})`);
  return {
    rps: Number(fin[1]),
    ...(p50 === undefined ? {} : { p50Ms: p50 }),
    ...(p99 === undefined ? {} : { p99Ms: p99 }),
    errors: failed + non2xx,
    note: notes.join('; '),
  };
}

interface Iperf3Json {
  readonly error?: string;
  readonly end?: { readonly sum_received?: { readonly bits_per_second?: number }; readonly sum_sent?: { readonly retransmits?: number } };
}

/** Parse `iperf3 -J` output: receiver-side throughput. */
export function parseIperf3(out: string): Measurement {
  const j = JSON.parse(out) as Iperf3Json;
  if (j.error !== undefined) throw new Error(`iperf3: ${j.error}`);
  const bps = j.end?.sum_received?.bits_per_second;
  if (bps === undefined) throw new Error('iperf3 JSON without end.sum_received.bits_per_second');
  const retr = j.end?.sum_sent?.retransmits;
  return { gbps: bps / 1e9, errors: 0, ...(retr === undefined ? {} : { note: `retransmits: ${retr}` }) };
}

function must(r: { code: number; stdout: string; stderr: string }, what: string): string {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).slice(-1500)}`);
  return r.stdout;
}

export interface WrkLoad {
  readonly url: string;
  readonly threads: number;
  readonly connections: number;
  readonly headers?: readonly string[];
}

export function wrkArgs(load: WrkLoad, seconds: number): string[] {
  const args = ['wrk', `-t${load.threads}`, `-c${load.connections}`, `-d${seconds}s`, '--latency', '--timeout', '5s'];
  for (const h of load.headers ?? []) args.push('-H', h);
  args.push(load.url);
  return args;
}

/** Warm up for warmupS (unmeasured), then measure for durationS. */
export async function runWrk(client: Pod, load: WrkLoad, durationS: number, warmupS: number): Promise<Measurement> {
  if (warmupS > 0) must(await client.exec(wrkArgs(load, warmupS), { timeoutMs: (warmupS + 15) * 1000 }), 'wrk (warm-up)');
  const out = must(await client.exec(wrkArgs(load, durationS), { timeoutMs: (durationS + 15) * 1000 }), 'wrk');
  return parseWrk(out);
}

export interface FixedRateLoad {
  readonly url: string;
  readonly connections: number;
  /** Total requests per second across all connections (split evenly; must divide by connections). */
  readonly totalRps: number;
}

export function h2loadArgs(load: FixedRateLoad, durationS: number, warmupS: number, logFile: string): string[] {
  const perClient = Math.round(load.totalRps / load.connections);
  return ['h2load', '--h1', `-c${load.connections}`, `-t1`, `--rps=${perClient}`, `-D${durationS}`,
    `--warm-up-time=${warmupS}`, `--log-file=${logFile}`, load.url];
}

/** Fixed-rate HTTP/1.1 load with h2load (its --log-file holds only the measured phase). */
export async function runH2loadFixedRate(client: Pod, load: FixedRateLoad, durationS: number, warmupS: number, tmpDir: string): Promise<Measurement> {
  const logFile = join(await loadLogDir(tmpDir), `h2load-${Date.now()}.log`);
  try {
    const out = must(await client.exec(h2loadArgs(load, durationS, warmupS, logFile), { timeoutMs: (durationS + warmupS + 20) * 1000 }), 'h2load');
    return parseH2load(out, await readFile(logFile, 'utf8'));
  } finally {
    await rm(logFile, { force: true });
  }
}

export interface H2Load {
  readonly url: string;
  /** Connections (-c) and concurrent streams per connection (-m). */
  readonly connections: number;
  readonly streams: number;
  readonly threads: number;
}

/** Max-rate HTTP/2 (h2c prior knowledge for http:// URLs) with h2load. */
export function h2loadMaxArgs(load: H2Load, durationS: number, warmupS: number, logFile: string): string[] {
  return ['h2load', `-c${load.connections}`, `-m${load.streams}`, `-t${load.threads}`, `-D${durationS}`,
    `--warm-up-time=${warmupS}`, `--log-file=${logFile}`, load.url];
}

/** Max-rate h2c load (latencies from its --log-file: measured phase only). */
export async function runH2loadMax(client: Pod, load: H2Load, durationS: number, warmupS: number, tmpDir: string): Promise<Measurement> {
  const logFile = join(await loadLogDir(tmpDir), `h2load-max-${Date.now()}.log`);
  try {
    const out = must(await client.exec(h2loadMaxArgs(load, durationS, warmupS, logFile), { timeoutMs: (durationS + warmupS + 20) * 1000 }), 'h2load');
    return parseH2load(out, await readFile(logFile, 'utf8'));
  } finally {
    await rm(logFile, { force: true });
  }
}

export interface BulkLoad {
  readonly host: string;
  readonly port: number;
  readonly streams: number;
}

export function iperf3Args(load: BulkLoad, durationS: number, warmupS: number): string[] {
  return ['iperf3', '-c', load.host, '-p', String(load.port), '-P', String(load.streams), '-t', String(durationS),
    '-O', String(warmupS), '-J'];
}

/** iperf3 client; the first warmupS seconds are omitted (-O) from the result. */
export async function runIperf3(client: Pod, load: BulkLoad, durationS: number, warmupS: number): Promise<Measurement> {
  const r = await client.exec(iperf3Args(load, durationS, warmupS), { timeoutMs: (durationS + warmupS + 20) * 1000 });
  if (r.code !== 0 && r.stdout.trim().startsWith('{')) return parseIperf3(r.stdout); // reports its own error field
  return parseIperf3(must(r, 'iperf3'));
}

/** The time-to-first-byte client (test/netns/l4-tools.ts ttfb), as run in the client pod. */
export function ttfbArgs(host: string, port: number, durationS: number, warmupS: number): string[] {
  return ['node', 'dist/test/netns/l4-tools.js', 'ttfb', host, String(port), String(durationS), String(warmupS)];
}

interface TtfbResult {
  readonly count: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly errors: number;
}

/** Parse the ttfb tool's JSON line: connections per second, and the p50/p99 time to the server's first byte. */
export function parseTtfb(out: string, durationS: number): Measurement {
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (line === undefined) throw new Error(`ttfb printed no result:\n${out.slice(0, 2000)}`);
  const r = JSON.parse(line) as TtfbResult;
  if (r.count === 0) throw new Error(`ttfb: no successful connection (${r.errors} errors)`);
  return {
    rps: r.count / durationS,
    ...(r.p50Ms === undefined ? {} : { p50Ms: r.p50Ms }),
    ...(r.p99Ms === undefined ? {} : { p99Ms: r.p99Ms }),
    errors: r.errors,
    note: `${r.count} connections, each closed at the greeting`,
  };
}

/** Sequential connections to a server-first server, each timed from connect() to the greeting. */
export async function runTtfb(client: Pod, host: string, port: number, durationS: number, warmupS: number): Promise<Measurement> {
  const [, ...rest] = ttfbArgs(host, port, durationS, warmupS);
  const r = await client.exec([process.execPath, join(REPO_ROOT, rest[0] ?? ''), ...rest.slice(1)], { timeoutMs: (durationS + warmupS + 20) * 1000 });
  return parseTtfb(must(r, 'ttfb'), durationS);
}
