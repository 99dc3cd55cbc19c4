// The outbound probe's helper: a small Node.js process running as readiness_probe_uid (default 65534), a uid the
// rules do not exclude, so its connections take the path an application's connections take (nat OUTPUT ->
// REMORA_OUTPUT -> REMORA_REDIRECT -> the outbound listener). The proxy itself cannot: its own uid is excluded, and
// after binding it has no privilege left to make a socket owned by another uid. So the helper is started while the
// proxy is still root, before it switches to its uid (a proxy started as uid 1337 has no helper: the outbound probe is
// then unavailable, see src/proxy/redirect-prober.ts).
//
// The helper does one thing: on a line {"id","host","port","nonce","timeoutMs"} on stdin it connects to host:port,
// sends "REMORA-PROBE <nonce>\n", and answers on stdout {"id","reply","error"} with the first line it read back. It
// holds no secret and no privilege, has an empty environment and "/" as its directory, and exits when its stdin
// closes (the proxy stops or dies). About 6 MB of private memory (the Node binary's pages are shared with the proxy).
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../core/log.js';

/** What a probe connection came back with. */
export interface DialOutcome {
  /** The first line read back (without the newline), "" when none. */
  readonly reply: string;
  /** A system error code (ECONNREFUSED, ENETUNREACH, ...), "ETIMEDOUT" when nothing came back in time, "closed". */
  readonly error?: string | undefined;
}

/** The helper's program (run with `node -e`: no file to read, so no path the helper uid must be able to read). */
const HELPER_SOURCE = String.raw`'use strict';
const net = require('node:net');
let buf = '';
const probe = (q) => {
  let reply = '';
  let done = false;
  const s = net.connect({ host: String(q.host), port: Number(q.port) });
  const finish = (error) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    s.destroy();
    process.stdout.write(JSON.stringify({ id: q.id, reply: reply.split('\n')[0], error }) + '\n');
  };
  const timer = setTimeout(() => finish('ETIMEDOUT'), Math.min(Number(q.timeoutMs) || 3000, 60000));
  s.setEncoding('latin1');
  s.on('connect', () => s.write('REMORA-PROBE ' + String(q.nonce) + '\n'));
  s.on('data', (d) => { reply += d; if (reply.includes('\n') || reply.length > 256) finish(undefined); });
  s.on('end', () => finish(reply.includes('\n') ? undefined : 'closed'));
  s.on('error', (e) => finish(e.code || e.message));
};
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    try { probe(JSON.parse(line)); } catch { /* not a request */ }
  }
});
process.stdin.on('end', () => process.exit(0));
`;

export class ProbeHelper {
  readonly uid: number;
  readonly #child: ChildProcess;
  readonly #waiting = new Map<number, (o: DialOutcome) => void>();
  #seq = 0;
  #exited: string | undefined;

  private constructor(uid: number, child: ChildProcess, log: Logger) {
    this.uid = uid;
    this.#child = child;
    let buf = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.#onLine(line);
      }
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 2000) stderr += d; });
    child.on('error', (err) => { this.#onExit(`could not run: ${err.message}`, log); });
    child.on('exit', (code, signal) => {
      this.#onExit(`exited (${signal ?? `code ${code ?? '?'}`})${stderr === '' ? '' : `: ${stderr.trim().slice(0, 300)}`}`, log);
    });
    child.stdin?.on('error', () => undefined);
    // The helper never keeps the proxy alive: its pipes and the child itself are unreferenced.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as { unref?: () => void } | null)?.unref?.();
  }

  /** Start the helper as uid:gid. Needs root (call it before the proxy switches to its own uid). */
  static start(uid: number, gid: number, log: Logger): ProbeHelper {
    const child = spawn(process.execPath, ['--max-old-space-size=16', '-e', HELPER_SOURCE], {
      uid, gid, cwd: '/', env: {}, stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new ProbeHelper(uid, child, log);
  }

  /** Why the helper is gone, or undefined while it runs. */
  get exited(): string | undefined {
    return this.#exited;
  }

  /** Connect to host:port as the helper's uid and send the nonce; resolves with what came back. */
  dial(host: string, port: number, nonce: string, timeoutMs: number): Promise<DialOutcome> {
    if (this.#exited !== undefined) return Promise.resolve({ reply: '', error: 'helper-exited' });
    const id = ++this.#seq;
    return new Promise((resolve) => {
      // The helper answers within timeoutMs; this guard covers a helper that hangs.
      const guard = setTimeout(() => { this.#settle(id, { reply: '', error: 'ETIMEDOUT' }); }, timeoutMs + 2_000);
      guard.unref();
      this.#waiting.set(id, (o) => { clearTimeout(guard); resolve(o); });
      this.#child.stdin?.write(`${JSON.stringify({ id, host, port, nonce, timeoutMs })}\n`);
    });
  }

  /** Close the helper's stdin: it exits. (The proxy, no longer root, could not signal it.) */
  close(): void {
    this.#child.stdin?.end();
  }

  #onLine(line: string): void {
    let msg: { id?: unknown; reply?: unknown; error?: unknown };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    if (typeof msg.id !== 'number') return;
    this.#settle(msg.id, {
      reply: typeof msg.reply === 'string' ? msg.reply : '',
      error: typeof msg.error === 'string' ? msg.error : undefined,
    });
  }

  #settle(id: number, o: DialOutcome): void {
    const w = this.#waiting.get(id);
    if (w === undefined) return;
    this.#waiting.delete(id);
    w(o);
  }

  #onExit(why: string, log: Logger): void {
    if (this.#exited !== undefined) return;
    this.#exited = why;
    for (const id of [...this.#waiting.keys()]) this.#settle(id, { reply: '', error: 'helper-exited' });
    log.debug({ uid: this.uid, why }, 'readiness probe helper gone');
  }
}
