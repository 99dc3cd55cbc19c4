// Sampling a proxy process (RSS, CPU time) and the client pod's nat counters. PIDs are global (pods share the
// host's PID namespace), so /proc/<pid> is read directly.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import type { Pod } from '../test/netns/harness.js';

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try { clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { clkTck = 100; }
  }
  return clkTck;
}

/** VmRSS in MB (1 MB = 1024 kB as the kernel reports it), or undefined if the process is gone. */
export function rssMb(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]) / 1024;
  } catch {
    return undefined;
  }
}

/** The process and its live descendants (children of every thread), depth-first; bounded. */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number): void => {
    if (out.length >= 256 || out.includes(p)) return;
    out.push(p);
    let tasks: string[] = [];
    try { tasks = readdirSync(`/proc/${p}/task`); } catch { return; }
    for (const t of tasks) {
      let text = '';
      try { text = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8'); } catch { continue; }
      for (const c of text.trim().split(/\s+/)) if (c !== '') visit(Number(c));
    }
  };
  visit(pid);
  return out;
}

/** VmRSS of the process and its live descendants (with `workers = N`: the primary and its workers), in MB. */
export function treeRssMb(pid: number): number | undefined {
  let sum: number | undefined;
  for (const p of processTree(pid)) {
    const r = rssMb(p);
    if (r !== undefined) sum = (sum ?? 0) + r;
  }
  return sum;
}

/**
 * utime + stime in seconds of the process (all threads) and of its live descendants: with `workers = N` the work is
 * done in the primary's children (a single process has none while its probe helper is off, as in the bench).
 */
export function cpuSeconds(pid: number): number | undefined {
  let sum: number | undefined;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[0] is field 3 (state); utime is field 14, stime field 15.
      sum = (sum ?? 0) + (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}

export function commOf(pid: number): string | undefined {
  try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return undefined; }
}

/** Sum of the packet counters of every REDIRECT rule in the pod's nat tables (= connections redirected). */
export function parseRedirectCounters(iptablesSave: string): number {
  let sum = 0;
  for (const line of iptablesSave.split('\n')) {
    const m = /^\[(\d+):\d+\] -A \S+ .*-j REDIRECT\b/.exec(line);
    if (m !== null) sum += Number(m[1]);
  }
  return sum;
}

export async function redirectedConnections(pod: Pod): Promise<number> {
  let sum = 0;
  for (const cmd of ['iptables-save', 'ip6tables-save']) {
    const r = await pod.exec([cmd, '-c', '-t', 'nat']);
    if (r.code === 0) sum += parseRedirectCounters(r.stdout);
  }
  return sum;
}

/** Whether something in the pod listens on TCP `port`. */
export async function listening(pod: Pod, port: number): Promise<boolean> {
  const r = await pod.exec(['ss', '-Hltn', `sport = :${port}`]);
  return r.code === 0 && r.stdout.trim() !== '';
}

/** The 1, 5 and 15 minute load averages as text ("0.52 1.10 1.30"), or "?". */
export function loadAverage(): string {
  try { return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '); } catch { return '?'; }
}

/** utime and stime of a process and its live descendants in seconds (all threads); zeros if it is gone. */
export function cpuSplit(pid: number): { user: number; sys: number } {
  const sum = { user: 0, sys: 0 };
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      sum.user += Number(f[11]) / ticksPerSecond();
      sum.sys += Number(f[12]) / ticksPerSecond();
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

/** GET a proxy's admin path from inside its pod; the HTTP status (0 when curl failed). */
export async function adminStatus(pod: Pod, port: number, path: string): Promise<number> {
  const r = await pod.exec(['curl', '-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}${path}`]);
  return Number(r.stdout) || 0;
}

/** A loopback TCP port free at the time of the call (listened on and released). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => { srv.listen(0, '127.0.0.1', r); });
  const port = (srv.address() as AddressInfo).port;
  await new Promise((r) => { srv.close(r); });
  return port;
}

/** Run a load tool on this host and resolve with its stdout once it exits (its stderr is discarded). */
export function runTool(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((res, rej) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    c.stderr.resume();
    c.once('error', rej);
    c.once('exit', () => { res(out); });
  });
}
