// `remora wait-ready`: block until the local sidecar's /ready answers 200, for an application container's start hook
// (Kubernetes postStart of the proxy container, or a wrapper in front of the app's command). Polls GET /ready on the
// admin listener; exit 0 when ready, 1 with REMORA_ERR_NOT_READY and the last answer on timeout, 2 on a usage error.
import { request } from 'node:http';
import { configError } from '../config/config-issue.js';
import { resolveOptions } from '../config/option-set.js';
import { waitReadyOptionSpecs } from '../config/wait-ready-options.js';
import { formatHostPort, type HostPort } from '../core/addr.js';
import { formatDurationMs } from '../core/duration.js';
import { RemoraError } from '../core/errors.js';
import { parseArgv } from './argv.js';

const HELP = `Usage: remora wait-ready [flags]

Waits until the local remora proxy is ready: GET /ready on its admin listener answers 200 (the
listeners are bound, the configuration is loaded and the redirect probes prove that the iptables
rules send traffic to it). Exit code 0 when ready; 1 (REMORA_ERR_NOT_READY) when the timeout passes,
with the last answer of /ready; 2 for a bad flag. Meant for the start hook of an application
container, so that the application starts once its traffic is intercepted.

Flags:
  --admin-address HOST:PORT  the local sidecar's admin listener (default: 127.0.0.1:15000)
                             env REMORA_ADMIN_ADDRESS
  --timeout DURATION         give up after this long (default: 60s)
                             env REMORA_WAIT_READY_TIMEOUT
  --interval DURATION        pause between two GET /ready (default: 250ms)
                             env REMORA_WAIT_READY_INTERVAL
`;

/** What one GET /ready found: 200, another status with its body, or no answer. */
interface Answer {
  readonly ready: boolean;
  /** "503 not ready: ...", "no answer: connect ECONNREFUSED (is remora proxy running?)". */
  readonly text: string;
}

export interface WaitReadyIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const PROCESS_IO: WaitReadyIo = {
  out: (t) => { process.stdout.write(t); },
  err: (t) => { process.stderr.write(t); },
};

function getReady(admin: HostPort, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request({ host: admin.host, port: admin.port, path: '/ready', method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { if (body.length < 1024) body += d; });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        resolve({ ready: status === 200, text: `${status} ${body.trim()}` });
      });
      res.on('error', (err: NodeJS.ErrnoException) => { resolve({ ready: false, text: `no answer: ${err.code ?? err.message}` }); });
    });
    req.on('timeout', () => { req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })); });
    req.on('error', (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'ECONNREFUSED' ? ' (nothing listens there: is remora proxy running, with this admin_address?)' : '';
      resolve({ ready: false, text: `no answer: ${err.code ?? err.message}${hint}` });
    });
    req.end();
  });
}

export async function runWaitReadyCommand(argv: readonly string[], env: NodeJS.ProcessEnv, io: WaitReadyIo = PROCESS_IO): Promise<number> {
  const parsed = parseArgv(argv, waitReadyOptionSpecs);
  if (parsed.help) {
    io.out(HELP);
    return 0;
  }
  const r = resolveOptions(waitReadyOptionSpecs, { flags: parsed.flags, env });
  const issues = [...parsed.issues, ...r.issues];
  if (issues.length > 0) throw configError(issues);
  const { adminAddress, timeout, interval } = r.values;
  const where = formatHostPort(adminAddress.host, adminAddress.port);
  const started = Date.now();
  const deadline = started + timeout;
  let last: Answer = { ready: false, text: 'no answer yet' };
  // Bounded: at most one attempt per interval until the deadline (and at least one attempt).
  const maxAttempts = Math.ceil(timeout / interval) + 1;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const left = deadline - Date.now();
    last = await getReady(adminAddress, Math.max(50, Math.min(1_000, left)));
    if (last.ready) {
      io.out(`remora wait-ready: ${where} is ready (after ${formatDurationMs(Math.max(1, Date.now() - started))})\n`);
      return 0;
    }
    if (Date.now() + interval > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
  throw new RemoraError('REMORA_ERR_NOT_READY',
    `the sidecar at ${where} was not ready within ${formatDurationMs(timeout)}; last answer of GET /ready: ${last.text}`,
    { details: { adminAddress: where, last: last.text } });
}
