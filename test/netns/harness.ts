// Test pods as Linux network namespaces, joined by veth pairs to a bridge in a per-run "hub" namespace.
// Every run picks unique namespace names and its own private /24 (and /64), so runs never collide; everything is
// removed on destroy() and, as a last resort, on process exit. Nothing here touches the host's own namespace
// except creating and deleting the namespaces themselves.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  /** Run as this uid (and gid, default = uid) through setpriv. */
  readonly uid?: number;
  readonly gid?: number;
  readonly timeoutMs?: number;
  readonly input?: string;
  readonly env?: Readonly<Record<string, string>>;
}

const NS_PREFIX = 'rmr';
const liveMeshes = new Set<Mesh>();

/** Why netns tests cannot run here, or undefined when they can. */
export function netnsUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and iptables)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    execFileSync('iptables', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'needs iproute2 and iptables';
  }
  return undefined;
}

/** Options for node:test: skip with a reason where netns tests cannot run, but never in CI (there it must fail). */
export function netnsTestOptions(): { skip?: string; timeout: number } {
  const reason = netnsUnavailableReason();
  if (reason !== undefined && process.env['CI'] === undefined) return { skip: reason, timeout: 120_000 };
  return { timeout: 120_000 };
}

function run(cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string; env?: Readonly<Record<string, string>> } = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => { stderr += `\n[harness] killed after ${opts.timeoutMs}ms`; child.kill('SIGKILL'); }, opts.timeoutMs ?? 30_000);
    child.on('error', (err) => { stderr += String(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal !== null ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

function ipSync(args: readonly string[]): void {
  try { execFileSync('ip', args, { stdio: 'ignore' }); } catch { /* already gone */ }
}

function killNamespacePids(ns: string): void {
  try {
    const out = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
    for (const pid of out.split(/\s+/).filter((p) => p !== '')) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
    }
  } catch { /* namespace gone */ }
}

/** Remove namespaces left by runs whose process no longer exists. */
export function sweepStaleNamespaces(): void {
  let list = '';
  try { list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }); } catch { return; }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${NS_PREFIX}(\\d+)-`).exec(name);
    if (m === null) continue;
    const pid = Number(m[1]);
    let alive = true;
    try { process.kill(pid, 0); } catch { alive = false; }
    if (!alive) { killNamespacePids(name); ipSync(['netns', 'del', name]); }
  }
}

export class Pod {
  readonly mesh: Mesh;
  readonly name: string;
  /** The namespace name (for `ip netns exec`). */
  readonly ns: string;
  readonly ip4: string;
  readonly ip6: string;
  readonly #children = new Set<ChildProcess>();

  constructor(mesh: Mesh, name: string, ns: string, ip4: string, ip6: string) {
    this.mesh = mesh;
    this.name = name;
    this.ns = ns;
    this.ip4 = ip4;
    this.ip6 = ip6;
  }

  #argv(cmd: readonly string[], opts: ExecOptions): string[] {
    const base = ['netns', 'exec', this.ns];
    if (opts.uid === undefined) return [...base, ...cmd];
    return [...base, 'setpriv', `--reuid=${opts.uid}`, `--regid=${opts.gid ?? opts.uid}`, '--clear-groups', '--', ...cmd];
  }

  /** Run a command inside the pod and collect its output (never throws; bounded by timeoutMs, default 30 s). */
  exec(cmd: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return run('ip', this.#argv(cmd, opts), opts);
  }

  sh(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.exec(['sh', '-c', script], opts);
  }

  /** Like exec, but rejects with stderr when the exit code is not 0. */
  async execOk(cmd: readonly string[], opts: ExecOptions = {}): Promise<string> {
    const r = await this.exec(cmd, opts);
    if (r.code !== 0) throw new Error(`[${this.name}] ${cmd.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  }

  /** Start a long-running process in the pod; it is killed when the mesh is destroyed. */
  spawn(cmd: readonly string[], opts: ExecOptions = {}): ChildProcess {
    const child = spawn('ip', this.#argv(cmd, opts), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    this.#children.add(child);
    child.on('exit', () => this.#children.delete(child));
    return child;
  }

  /** Kill what spawn() started (SIGTERM, then SIGKILL after graceMs). */
  async killAll(graceMs = 2000): Promise<void> {
    const waits = [...this.#children].map((c) => new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) { resolve(); return; }
      const t = setTimeout(() => { c.kill('SIGKILL'); }, graceMs);
      c.once('exit', () => { clearTimeout(t); resolve(); });
      c.kill('SIGTERM');
    }));
    await Promise.all(waits);
  }
}

export interface MeshOptions {
  /** Give every pod an IPv6 address too (default true). */
  readonly ipv6?: boolean;
}

export class Mesh {
  readonly id: string;
  readonly hub: string;
  /** e.g. "10.213.7" (pods are .2, .3, ...; the /24 is private to this run). */
  readonly prefix4: string;
  /** e.g. "fd52:d5:107" (pods are ::2, ::3, ...). */
  readonly prefix6: string;
  readonly pods: Pod[] = [];
  readonly #ipv6: boolean;
  #destroyed = false;

  private constructor(opts: MeshOptions) {
    const a = randomInt(200, 250);
    const b = randomInt(0, 256);
    this.id = `${NS_PREFIX}${process.pid}-${randomInt(0, 36 ** 3).toString(36)}`;
    this.hub = `${this.id}-hub`;
    this.prefix4 = `10.${a}.${b}`;
    // b + 0x100: never a 0 group, so pod addresses are in canonical form ("fd52:c8:0::3" is shown as "fd52:c8::3" by
    // the kernel and by Node; a test comparing addresses failed whenever b was 0).
    this.prefix6 = `fd52:${a.toString(16)}:${(b + 0x100).toString(16)}`;
    this.#ipv6 = opts.ipv6 ?? true;
  }

  static async create(opts: MeshOptions = {}): Promise<Mesh> {
    sweepStaleNamespaces();
    const mesh = new Mesh(opts);
    liveMeshes.add(mesh);
    await mesh.#must(['netns', 'add', mesh.hub]);
    await mesh.#must(['-n', mesh.hub, 'link', 'set', 'lo', 'up']);
    await mesh.#must(['-n', mesh.hub, 'link', 'add', 'br0', 'type', 'bridge']);
    await mesh.#must(['-n', mesh.hub, 'link', 'set', 'br0', 'up']);
    return mesh;
  }

  async #must(args: readonly string[]): Promise<void> {
    const r = await run('ip', args);
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.trim()}`);
  }

  /** Add a pod: namespace with lo up and eth0 on the mesh bridge, IPv4 .N/24 and IPv6 ::N/64. */
  async addPod(name: string): Promise<Pod> {
    if (!/^[a-z0-9]{1,12}$/.test(name)) throw new Error(`pod name "${name}": use 1-12 lower-case letters/digits`);
    const n = this.pods.length + 2;
    if (n > 250) throw new Error('too many pods');
    const ns = `${this.id}-${name}`;
    const hostIf = `v${n}`;
    const pod = new Pod(this, name, ns, `${this.prefix4}.${n}`, `${this.prefix6}::${n.toString(16)}`);
    this.pods.push(pod);
    await this.#must(['netns', 'add', ns]);
    await this.#must(['-n', ns, 'link', 'set', 'lo', 'up']);
    await this.#must(['-n', this.hub, 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await this.#must(['-n', this.hub, 'link', 'set', hostIf, 'master', 'br0', 'up']);
    await this.#must(['-n', ns, 'addr', 'add', `${pod.ip4}/24`, 'dev', 'eth0']);
    if (this.#ipv6) await this.#must(['-n', ns, 'addr', 'add', `${pod.ip6}/64`, 'dev', 'eth0', 'nodad']);
    await this.#must(['-n', ns, 'link', 'set', 'eth0', 'up']);
    return pod;
  }

  pod(name: string): Pod {
    const p = this.pods.find((x) => x.name === name);
    if (p === undefined) throw new Error(`no pod ${name}`);
    return p;
  }

  /** Kill every process in every pod and delete all namespaces of this run. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    await Promise.all(this.pods.map((p) => p.killAll(1000)));
    this.#destroySync();
    liveMeshes.delete(this);
  }

  #destroySync(): void {
    for (const ns of [...this.pods.map((p) => p.ns), this.hub]) {
      killNamespacePids(ns);
      ipSync(['netns', 'del', ns]);
    }
  }

  /** Last-resort synchronous cleanup (process exit). */
  static destroyAllSync(): void {
    for (const m of liveMeshes) m.#destroySync();
    liveMeshes.clear();
  }
}

process.on('exit', () => Mesh.destroyAllSync());
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { Mesh.destroyAllSync(); process.exit(130); });
}

/** Poll `check` until it returns a value other than undefined; bounded in time and attempts. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, opts: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  const maxAttempts = Math.ceil(timeoutMs / intervalMs) + 1;
  let lastErr: unknown;
  for (let i = 0; i < maxAttempts && Date.now() <= deadline; i++) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) { lastErr = err; }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${lastErr === undefined ? '' : `: ${String(lastErr)}`}`);
}
