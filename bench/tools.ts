// The bench's external tools: installed with apt-get when missing; their versions and the machine for the report.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** command -> Debian package. */
export const TOOLS: Readonly<Record<string, string>> = {
  wrk: 'wrk',
  h2load: 'nghttp2-client',
  iperf3: 'iperf3',
  haproxy: 'haproxy',
  nginx: 'nginx-light',
  curl: 'curl',
  ip: 'iproute2',
  ss: 'iproute2',
  iptables: 'iptables',
  setpriv: 'util-linux',
};

/** Services a package starts on the host after installing; stopped again (the bench runs its own in namespaces). */
const HOST_SERVICES: Readonly<Record<string, string>> = { haproxy: 'haproxy', 'nginx-light': 'nginx', iperf3: 'iperf3' };

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Install missing tools with apt-get (Debian/Ubuntu). Returns the packages installed. */
export function ensureTools(log: (s: string) => void): string[] {
  const missing = [...new Set(Object.entries(TOOLS).filter(([cmd]) => !hasCommand(cmd)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return [];
  if (!hasCommand('apt-get')) throw new Error(`missing tools (${missing.join(', ')}) and no apt-get to install them`);
  log(`installing ${missing.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env, timeout: 300_000 });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env, timeout: 600_000 });
  for (const pkg of missing) {
    const svc = HOST_SERVICES[pkg];
    if (svc !== undefined) spawnSync('service', [svc, 'stop'], { stdio: 'ignore', timeout: 30_000 });
  }
  return missing;
}

function firstLine(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.split('\n').map((l) => l.trim()).find((l) => l !== '');
  return text ?? 'unknown';
}

export interface MachineInfo {
  readonly date: string;
  readonly nproc: string;
  readonly cpuModel: string;
  readonly kernel: string;
  readonly os: string;
  readonly node: string;
  readonly remoraCommit: string;
  readonly tools: Readonly<Record<string, string>>;
}

export function machineInfo(repoRoot: string): MachineInfo {
  let os = 'unknown';
  try { os = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os; } catch { /* no os-release */ }
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=all', '--', 'src', 'native'], { encoding: 'utf8' })
      .split('\n').map((l) => l.slice(3).trim()).filter((l) => l !== '');
    if (dirty.length > 0) {
      commit += ` + uncommitted changes in ${dirty.slice(0, 6).join(', ')}${dirty.length > 6 ? ` and ${dirty.length - 6} more` : ''}`;
    }
  } catch { /* not a git checkout */ }
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc: firstLine('nproc', []),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    kernel: firstLine('uname', ['-r']),
    os,
    node: process.version,
    remoraCommit: commit,
    tools: {
      wrk: firstLine('wrk', ['-v']).replace(/\s+Copyright.*$/, ''),
      h2load: firstLine('h2load', ['--version']),
      iperf3: firstLine('iperf3', ['-v']),
      haproxy: firstLine('haproxy', ['-v']).replace(/\s+-\s+https?:.*$/, ''),
      nginx: firstLine('nginx', ['-v']),
    },
  };
}
