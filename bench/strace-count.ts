// System calls of a proxy process during a load: `strace -f -c` attached for the load's duration (strace slows the
// proxy; the counts per request or connection are what matter, not the rates).
import { spawn } from 'node:child_process';

/** Parse `strace -c` summary lines: syscall -> calls. */
export function parseStraceCounts(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    // % time     seconds  usecs/call     calls    errors syscall
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$/.exec(line);
    if (m !== null && m[2] !== 'total') out.set(m[2] ?? '?', Number(m[1]));
  }
  return out;
}

/** strace -f -c on `pid` while `load` runs (every system call, or only `traceSet`: "read,write,..."); returns the counts. */
export async function straceCounts(pid: number, load: () => Promise<void>, traceSet?: string): Promise<Map<string, number>> {
  const filter = traceSet === undefined ? [] : ['-e', `trace=${traceSet}`];
  const st = spawn('strace', ['-f', '-c', ...filter, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  st.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
  await new Promise((r) => setTimeout(r, 500));
  try {
    await load();
  } finally {
    const exited = new Promise<void>((r) => st.once('exit', () => r()));
    st.kill('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  }
  return parseStraceCounts(err);
}

/** "accept4 1.00, connect 1.00, ..." per unit, largest first, counts below 0.01 per unit left out. */
export function formatPer(counts: ReadonlyMap<string, number>, units: number): string {
  return [...counts].filter(([, c]) => c / units >= 0.01).sort((a, b) => b[1] - a[1])
    .map(([k, c]) => `${k} ${(c / units).toFixed(2)}`).join(', ');
}
