// Runs the real `remora control` (dist/, through bin/remora) in a temp directory and the real `remora ctl`, and talks
// to the API over HTTPS verified against the mesh root the control plane wrote (DIR/root-cert.pem).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:http2';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REMORA = new URL('../../../../bin/remora', import.meta.url).pathname;
export const WRITE_TOKEN = 'write-token-0123456789abcdef';
export const READ_TOKEN = 'read-token-0123456789abcdef';

export interface Exited { readonly code: number | null; readonly stdout: string; readonly stderr: string }

/** Run a remora command to its end (bounded: killed after 30 s). */
export function runRemora(args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Exited> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [REMORA, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, 30_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

export class ControlProcess {
  readonly dataDir: string;
  readonly child: ChildProcess;
  #output = '';
  #exit: Promise<number | null>;
  port = 0;

  /** `store`: run with `--store STORE` (e.g. etcd://...) instead of `--data-dir dataDir`. */
  constructor(dataDir: string, extraArgs: readonly string[] = [], listen = '127.0.0.1:0', store?: string) {
    this.dataDir = dataDir;
    this.child = spawn(process.execPath, [REMORA, 'control', ...(store === undefined ? ['--data-dir', dataDir] : ['--store', store]), '--listen', listen,
      '--token', WRITE_TOKEN, '--token', `read:${READ_TOKEN}`, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => { this.#output += d.toString(); });
    this.child.stderr?.on('data', (d: Buffer) => { this.#output += d.toString(); });
    this.#exit = new Promise((resolve) => { this.child.on('close', (code) => { resolve(code); }); });
  }

  get output(): string { return this.#output; }
  get exited(): Promise<number | null> { return this.#exit; }

  /** Wait (bounded) for the listening line; throws with the output when the process exits or it does not come. */
  async ready(timeoutMs = 20_000): Promise<this> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.#exit.then(() => { exited = true; });
    while (Date.now() < deadline && !exited) {
      const m = /"event":"control.listening","address":"127\.0\.0\.1:(\d+)"/.exec(this.#output);
      if (m !== null) {
        this.port = Number(m[1]);
        return this;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`remora control did not start listening:\n${this.#output}`);
  }

  get url(): string { return `https://127.0.0.1:${this.port}`; }
  get rootFile(): string { return join(this.dataDir, 'root-cert.pem'); }
  get root(): string { return readFileSync(this.rootFile, 'utf8'); }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => { this.child.kill('SIGKILL'); }, 10_000);
    await this.#exit;
    clearTimeout(timer);
  }
}

export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => { rmSync(dir, { recursive: true, force: true }); } };
}

export interface Reply { readonly status: number; readonly headers: Record<string, string | string[] | undefined>; readonly text: string; readonly json: unknown }

/** One HTTPS request (HTTP/1.1) verified against `ca`. */
export function api(url: string, ca: string, method: string, path: string, opts: { token?: string; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), {
      method, ca, timeout: 15_000, agent: false,
      headers: { ...(opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }), ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }) },
    }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => {
        let json: unknown;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('timeout', () => { req.destroy(new Error('timeout')); });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** An SSE watch over HTTP/2: collects events; `next(pred)` waits (bounded) for one matching. */
export function watch(url: string, ca: string, token: string, query = '', path = '/api/v1/watch'): { events: { event: string; data: string; id?: string }[]; status: Promise<number>; next: (pred: (e: { event: string; data: string }) => boolean, timeoutMs?: number) => Promise<{ event: string; data: string }>; close: () => void } {
  const session = connect(url, { ca });
  session.on('error', () => undefined);
  const stream = session.request({ ':path': `${path}${query}`, authorization: `Bearer ${token}` });
  const events: { event: string; data: string; id?: string }[] = [];
  let buffer = '';
  const status = new Promise<number>((resolve) => { stream.on('response', (h) => { resolve(Number(h[':status'])); }); });
  stream.on('data', (d: Buffer) => {
    buffer += d.toString();
    let i: number;
    while ((i = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      const e: { event: string; data: string; id?: string } = { event: 'message', data: '' };
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) e.event = line.slice(7);
        else if (line.startsWith('data: ')) e.data += line.slice(6);
        else if (line.startsWith('id: ')) e.id = line.slice(4);
      }
      if (block.startsWith(':')) continue;
      events.push(e);
    }
  });
  stream.on('error', () => undefined);
  const next = async (pred: (e: { event: string; data: string }) => boolean, timeoutMs = 10_000): Promise<{ event: string; data: string }> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = events.find(pred);
      if (found !== undefined) return found;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no matching event; got ${JSON.stringify(events)}`);
  };
  return { events, status, next, close: () => { stream.close(); session.close(); } };
}

/** Free loopback TCP ports (bound then released: another process could take one meanwhile, unlikely on loopback). */
export async function freePorts(n: number): Promise<number[]> {
  const { createServer } = await import('node:net');
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<import('node:net').Server>((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { resolve(s); });
  })));
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => { s.close(r); })));
  return ports;
}

/** Poll `probe` until it returns a value (bounded); throws with the last value seen. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last error: ${String(last)})`);
}

/** GET on a proxy's admin listener (plain HTTP, loopback). */
export async function adminGet(port: number, path: string): Promise<{ status: number; json: unknown }> {
  const { request: httpRequest } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, timeout: 5_000, agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => {
        let json: unknown;
        try { json = JSON.parse(text); } catch { json = text; }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('timeout', () => { req.destroy(new Error('timeout')); });
    req.on('error', reject);
    req.end();
  });
}
