// Running external programs (iptables-save/-restore, ip) for `remora init`: argv only (no shell), input on stdin,
// output collected, bounded in time. Never throws: a program that cannot be started is reported as spawnError.
import { spawn } from 'node:child_process';

export interface CommandResult {
  /** Exit code; -1 when the program could not be started or was killed. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Node's error code when the program could not be started (ENOENT, EACCES). */
  readonly spawnError?: string;
}

export interface CommandOptions {
  readonly input?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly timeoutMs?: number;
}

export type CommandRunner = (cmd: string, args: readonly string[], opts?: CommandOptions) => Promise<CommandResult>;

const MAX_OUTPUT = 16 * 1024 * 1024;

/** The real runner: child_process.spawn, SIGKILL after timeoutMs (default 30 s). */
export const runCommand: CommandRunner = (cmd, args, opts = {}) => new Promise((resolve) => {
  let settled = false;
  const finish = (r: CommandResult): void => {
    if (!settled) { settled = true; resolve(r); }
  };
  let child;
  try {
    child = spawn(cmd, [...args], { stdio: ['pipe', 'pipe', 'pipe'], env: cleanEnv(opts.env ?? process.env) });
  } catch (err) {
    finish({ code: -1, stdout: '', stderr: String(err), spawnError: (err as { code?: string }).code ?? 'EINVAL' });
    return;
  }
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { if (stdout.length < MAX_OUTPUT) stdout += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < MAX_OUTPUT) stderr += d; });
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const timer = setTimeout(() => {
    stderr += `\n${cmd}: killed after ${timeoutMs} ms`;
    child.kill('SIGKILL');
  }, timeoutMs);
  child.on('error', (err: NodeJS.ErrnoException) => {
    clearTimeout(timer);
    finish({ code: -1, stdout, stderr: stderr || err.message, spawnError: err.code ?? 'EIO' });
  });
  child.on('close', (code) => {
    clearTimeout(timer);
    finish({ code: code ?? -1, stdout, stderr });
  });
  child.stdin.on('error', () => undefined);
  child.stdin.end(opts.input ?? '');
});

function cleanEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/** "iptables-nft-save -t nat" for messages. */
export function formatCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].join(' ');
}
