// Per-connection memory of a proxy: hold N idle connections through it and read its RSS before, while held, and
// after they are closed. The connections go to the bench's server-first banner server (bench/server-pod.ts), so each
// one has passed detection (the greeting arrived) and is in the forwarding phase: what an idle, established
// connection costs, downstream and upstream socket together. With `http`, they go to an HTTP server instead and each
// sends one GET and keeps the connection once the response began: an idle HTTP/1.1 keep-alive connection (through
// an HTTP engine, the downstream connection and whatever its upstream pool keeps).
//
// Two parts: the holder (run inside the client pod: `node dist/bench/idle-connections.js hold HOST PORT N [http]`;
// connects N sockets, at most 256 connecting at a time, prints one JSON line {"held":N,"errors":E} once every
// greeting (or response) has arrived, then keeps them until it is killed), and measureIdleConnections(), which the
// quick tools call.
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Pod } from '../test/netns/harness.js';
import { rssMb } from './proc.js';

export interface IdleConnectionsResult {
  readonly held: number;
  readonly errors: number;
  readonly rssBeforeMb: number;
  /** RSS with the first half held. */
  readonly rssHalfMb: number;
  readonly rssHeldMb: number;
  readonly rssAfterMb: number;
  /** (held - before) / held, in KB: includes one-time growth (V8's young generation grows up to 2 x 16 MB). */
  readonly kbPerConnection: number;
  /** (held - half) / second half, in KB: what one more idle connection costs once the heap has grown. */
  readonly kbMarginal: number;
  /** The lowest RSS in the SETTLE_MS after rssHeld, connections still held (remora's idle heap trim runs in it). */
  readonly rssSettledMb: number;
  /** (settled - before) / held, in KB: what a held connection costs once the garbage of its setup is collected. */
  readonly kbSettled: number;
}

/** How long the held connections stay after rssHeld, for rssSettledMb (the idle heap trim needs ~10-15 s quiet). */
export const SETTLE_MS = 20_000;

const CONNECTING_AT_ONCE = 256;

function hold(host: string, port: number, n: number, http: boolean): void {
  const sockets: Socket[] = [];
  let started = 0;
  let greeted = 0;
  let errors = 0;
  let connecting = 0;
  const deadline = setTimeout(() => { report(); }, 60_000);
  let reported = false;
  function report(): void {
    if (reported) return;
    reported = true;
    clearTimeout(deadline);
    process.stdout.write(`${JSON.stringify({ held: greeted, errors })}\n`);
  }
  function settle(): void {
    connecting--;
    if (greeted + errors >= n) report();
    else more();
  }
  function more(): void {
    while (started < n && connecting < CONNECTING_AT_ONCE) {
      started++;
      connecting++;
      const s = connect({ host, port });
      if (http) s.write(`GET / HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
      let done = false;
      s.once('data', () => { if (!done) { done = true; greeted++; s.pause(); settle(); } });
      s.on('error', () => { if (!done) { done = true; errors++; settle(); } });
      s.on('close', () => { if (!done) { done = true; errors++; settle(); } });
      sockets.push(s);
    }
  }
  more();
  process.on('SIGTERM', () => { for (const s of sockets) s.destroy(); process.exit(0); });
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Holder {
  readonly held: number;
  readonly errors: number;
  stop(): Promise<void>;
}

async function startHolder(client: Pod, repoRoot: string, host: string, port: number, n: number, http: boolean): Promise<Holder> {
  const child: ChildProcess = client.spawn([process.execPath, join(repoRoot, 'dist/bench/idle-connections.js'), 'hold', host, String(port), String(n),
    ...(http ? ['http'] : [])]);
  child.stderr?.resume();
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => { reject(new Error('idle-connections: no result within 90 s')); }, 90_000);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const i = out.indexOf('\n');
      if (i >= 0) { clearTimeout(t); resolve(out.slice(0, i)); }
    });
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`idle-connections holder exited ${code}`)); });
  });
  const r = JSON.parse(line) as { held: number; errors: number };
  return {
    ...r,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) { resolve(); return; }
      const t = setTimeout(() => { child.kill('SIGKILL'); }, 10_000);
      child.once('exit', () => { clearTimeout(t); resolve(); });
      child.kill('SIGTERM');
    }),
  };
}

/**
 * Hold `n` idle connections from `client` to host:port (through the proxy whose rules are in force), in two halves,
 * and measure the proxy process `pid`'s RSS: before, with the first half held, with all held (each 1 s after the last
 * greeting), the lowest in the SETTLE_MS that follow (still held), and 2 s after the holders exit. `http`: each
 * connection sends one GET first and is held once the response began (host:port is an HTTP server).
 */
export async function measureIdleConnections(client: Pod, repoRoot: string, pid: number, host: string, port: number, n: number,
  http = false): Promise<IdleConnectionsResult> {
  const rssBeforeMb = rssMb(pid) ?? 0;
  const half = Math.floor(n / 2);
  const a = await startHolder(client, repoRoot, host, port, half, http);
  await pause(1000);
  const rssHalfMb = rssMb(pid) ?? 0;
  const b = await startHolder(client, repoRoot, host, port, n - half, http);
  await pause(1000);
  const rssHeldMb = rssMb(pid) ?? 0;
  let rssSettledMb = rssHeldMb;
  for (let waited = 0; waited < SETTLE_MS; waited += 1000) {
    await pause(1000);
    rssSettledMb = Math.min(rssSettledMb, rssMb(pid) ?? rssSettledMb);
  }
  await Promise.all([a.stop(), b.stop()]);
  await pause(2000);
  const rssAfterMb = rssMb(pid) ?? 0;
  const held = a.held + b.held;
  return {
    held, errors: a.errors + b.errors, rssBeforeMb, rssHalfMb, rssHeldMb, rssAfterMb,
    kbPerConnection: held > 0 ? ((rssHeldMb - rssBeforeMb) * 1024) / held : 0,
    kbMarginal: b.held > 0 ? ((rssHeldMb - rssHalfMb) * 1024) / b.held : 0,
    rssSettledMb,
    kbSettled: held > 0 ? ((rssSettledMb - rssBeforeMb) * 1024) / held : 0,
  };
}

if (process.argv[2] === 'hold') {
  hold(process.argv[3] ?? '127.0.0.1', Number(process.argv[4]), Number(process.argv[5] ?? 5000), process.argv[6] === 'http');
}
