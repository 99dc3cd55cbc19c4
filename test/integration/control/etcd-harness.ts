// Real etcd members for the etcd store's tests: each an `etcd` process on loopback (unique free ports, its own temp
// data directory, its log in that directory), one cluster of N members started together. Everything started is
// killed by stop(), and by a process 'exit' hook should a test die before its finally.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { freePorts, tempDir } from './control-harness.js';

/** The etcd binary (Debian's etcd-server), or undefined when it is not installed. */
export const ETCD: string | undefined = ['/usr/bin/etcd', '/usr/local/bin/etcd'].find((p) => existsSync(p))
  ?? (spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' }).stdout.trim() || undefined);
/** node:test's skip: the reason when etcd is missing outside CI; in CI (CI set) never: there the tests must run (and fail). */
export const NO_ETCD: string | false = ETCD === undefined && process.env['CI'] === undefined
  ? 'the etcd binary is not installed (apt-get install etcd-server; .ci/run installs it)' : false;

const running = new Set<ChildProcess>();
process.on('exit', () => { for (const c of running) c.kill('SIGKILL'); });

export interface EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly logFile: string;
  child: ChildProcess | undefined;
  exited: Promise<unknown>;
}

function health(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', timeout: 2_000, agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => {
        try { resolve((JSON.parse(text) as { health?: string }).health === 'true'); } catch { resolve(false); }
      });
    });
    req.on('timeout', () => { req.destroy(); });
    req.on('error', () => { resolve(false); });
    req.end();
  });
}

export class EtcdCluster {
  readonly members: EtcdMember[];
  readonly #tmp: { dir: string; remove: () => void };
  readonly #initialCluster: string;
  readonly #token: string;

  private constructor(members: EtcdMember[], tmp: { dir: string; remove: () => void }, token: string) {
    this.members = members;
    this.#tmp = tmp;
    this.#initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
    this.#token = token;
  }

  /** Start `n` members and wait (bounded) until every one reports healthy. */
  static async start(n: number): Promise<EtcdCluster> {
    const tmp = tempDir('remora-etcd-');
    const ports = await freePorts(2 * n);
    const members: EtcdMember[] = Array.from({ length: n }, (_, i) => ({
      name: `m${i}`, clientPort: ports[2 * i] ?? 0, peerPort: ports[2 * i + 1] ?? 0,
      dataDir: join(tmp.dir, `m${i}`), logFile: join(tmp.dir, `m${i}.log`), child: undefined, exited: Promise.resolve(),
    }));
    const cluster = new EtcdCluster(members, tmp, `remora-test-${process.pid}-${ports[0] ?? 0}`);
    try {
      for (const m of members) cluster.#spawn(m);
      await cluster.waitHealthy(members.map((_, i) => i));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  #spawn(m: EtcdMember): void {
    const log = openSync(m.logFile, 'a');
    const child = spawn(ETCD ?? 'etcd', [
      '--name', m.name, '--data-dir', m.dataDir,
      '--listen-client-urls', `http://127.0.0.1:${m.clientPort}`, '--advertise-client-urls', `http://127.0.0.1:${m.clientPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-cluster', this.#initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', this.#token,
    ], { stdio: ['ignore', log, log] });
    closeSync(log);
    running.add(child);
    m.child = child;
    m.exited = new Promise((resolve) => { child.on('close', (code, signal) => { running.delete(child); resolve(code ?? signal); }); });
  }

  /** Wait (bounded) for these members to answer /health true (a member answers true only with a quorum). */
  async waitHealthy(indexes: readonly number[], timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ok = await Promise.all(indexes.map((i) => health(this.members[i]?.clientPort ?? 0)));
      if (ok.every(Boolean)) return;
      if (Date.now() > deadline) {
        const logs = indexes.map((i) => { const m = this.members[i]; return m === undefined ? '' : `--- ${m.name}\n${readFileSync(m.logFile, 'utf8').slice(-2000)}`; });
        throw new Error(`etcd members ${indexes.join(',')} not healthy within ${timeoutMs} ms:\n${logs.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** etcd://127.0.0.1:P1,... for these members (all by default), in this order. */
  storeUrl(indexes: readonly number[] = this.members.map((_, i) => i)): string {
    return `etcd://${indexes.map((i) => `127.0.0.1:${this.members[i]?.clientPort ?? 0}`).join(',')}`;
  }

  /** SIGKILL one member and wait for it to be gone. */
  async kill(i: number): Promise<void> {
    const m = this.members[i];
    if (m?.child === undefined) return;
    m.child.kill('SIGKILL');
    await m.exited;
    m.child = undefined;
  }

  /** Start a killed member again on its data directory (it rejoins the cluster it was part of). */
  restart(i: number): void {
    const m = this.members[i];
    if (m === undefined || m.child !== undefined) return;
    this.#spawn(m);
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.members.length; i++) await this.kill(i);
    this.#tmp.remove();
  }
}
