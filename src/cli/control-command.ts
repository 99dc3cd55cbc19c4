// `remora control`: the control plane (issue 13, docs/control-plane.md). Flags only:
//   --data-dir DIR | --store etcd://HOST:PORT[,...]   (exactly one)
//   --listen HOST:PORT (default 0.0.0.0:15012), --token [SCOPE:]TOKEN (repeatable), --tokens-file FILE,
//   --trust-domain NAME (for the CA created on first start), --san NAME (repeatable), --log-level LEVEL
// Runs until SIGTERM/SIGINT; then it stops listening and releases the data directory.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { configError, type ConfigIssue } from '../config/config-issue.js';
import { parseHostPort, type HostPort } from '../core/addr.js';
import { LOG_LEVELS, createLogger, type LogLevel } from '../core/log.js';
import { checkTrustDomain } from '../core/spiffe.js';
import { startControlServer } from '../control/control-server.js';
import { parseEtcdUrl, type EtcdEndpoint } from '../control/etcd-client.js';
import { TokenSet, parseTokenSpec, parseTokensFile, type TokenScope } from '../control/token-auth.js';

const HELP = `Usage: remora control --data-dir DIR | --store etcd://HOST:PORT[,HOST:PORT...] [flags]

Runs the control plane: the mesh's desired state (the INI sections of the static config as objects),
validated by the proxy's own validator, versioned, stored durably in DIR or in etcd, served over one
TLS listener (REST API under /api/v1/, OpenAPI at /api/v1/openapi.json). The mesh CA lives with the
state (DIR, or etcd; created on first start); the serving certificate is issued by it. With etcd,
several replicas serve the same state. See docs/control-plane.md.

Flags:
  --data-dir DIR              the embedded store and the mesh CA (one remora control per DIR)
  --store etcd://HOST:PORT[,HOST:PORT...]
                              keep the state and the CA in etcd (the client URLs of its members, http)
  --listen HOST:PORT          the TLS listener (default 0.0.0.0:15012; port 0: any free port, logged)
  --token [SCOPE:]TOKEN       a bearer token to accept (repeatable); SCOPE read, write (default) or sidecar
  --tokens-file FILE          more tokens, one [SCOPE:]TOKEN per line (# comments)
  --trust-domain NAME         the trust domain of a CA created on first start (default cluster.local)
  --san NAME                  an extra DNS name or IP for the serving certificate (repeatable)
  --log-level LEVEL           trace, debug, info (default), warn, error
`;

const VALUE_FLAGS = new Set(['data-dir', 'store', 'listen', 'token', 'tokens-file', 'trust-domain', 'san', 'log-level']);
const REPEATABLE = new Set(['token', 'san']);

export interface ControlFlags {
  readonly dataDir: string;
  /** --store etcd://...: the etcd endpoints (dataDir is then ''). */
  readonly etcd?: EtcdEndpoint[];
  readonly listen: HostPort;
  readonly tokens: { scope: TokenScope; token: string }[];
  readonly trustDomain: string;
  readonly sans: string[];
  readonly logLevel: LogLevel;
}

/** Parse and check the flags; every problem is returned at once (tokens never appear in a message). */
export function parseControlFlags(argv: readonly string[], readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')):
  { help: true } | { help: false; flags: ControlFlags } | { help: false; issues: ConfigIssue[] } {
  const values = new Map<string, string[]>();
  const issues: ConfigIssue[] = [];
  const cl = 'command line';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') return { help: true };
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (m === null || !VALUE_FLAGS.has(m[1] ?? '')) {
      issues.push({ source: cl, key: arg.startsWith('--') ? arg.split('=')[0] ?? arg : arg, expected: 'a known flag (see --help)' });
      continue;
    }
    const name = m[1] ?? '';
    let value = m[2];
    if (value === undefined) {
      if (i + 1 >= argv.length) { issues.push({ source: cl, key: `--${name}`, expected: `a value after --${name}` }); continue; }
      value = argv[++i] ?? '';
    }
    const list = values.get(name) ?? [];
    if (list.length > 0 && !REPEATABLE.has(name)) issues.push({ source: cl, key: `--${name}`, expected: 'each flag once' });
    list.push(value);
    values.set(name, list);
  }
  const one = (name: string): string | undefined => values.get(name)?.[0];
  const dataDir = one('data-dir') ?? '';
  const storeText = one('store');
  let etcd: EtcdEndpoint[] | undefined;
  if (storeText !== undefined) {
    const p = parseEtcdUrl(storeText);
    if (!p.ok) issues.push({ source: cl, key: '--store', value: storeText, expected: p.expected });
    else etcd = p.endpoints;
    if (one('data-dir') !== undefined) {
      issues.push({ source: cl, key: '--data-dir', expected: 'either --data-dir DIR (embedded store) or --store etcd://... (state and CA in etcd), not both' });
    }
  } else if (dataDir === '') {
    issues.push({ source: cl, key: '--data-dir', expected: 'the directory of the embedded store and the mesh CA (--data-dir DIR), or --store etcd://HOST:PORT[,...]' });
  }
  const listenText = one('listen') ?? '0.0.0.0:15012';
  // Port 0: any free port (the bound address is logged in control.listening); used by tests.
  const anyPort = /^(.*):0$/.exec(listenText);
  const parsedListen = parseHostPort(anyPort === null ? listenText : `${anyPort[1] ?? ''}:1`);
  const listen = parsedListen === undefined || anyPort === null ? parsedListen : { ...parsedListen, port: 0 };
  if (listen === undefined) issues.push({ source: cl, key: '--listen', value: listenText, expected: 'HOST:PORT, e.g. 0.0.0.0:15012 or [::]:15012' });
  const tokens: { scope: TokenScope; token: string }[] = [];
  for (const t of values.get('token') ?? []) {
    const p = parseTokenSpec(t);
    if (p.ok) tokens.push({ scope: p.scope, token: p.token });
    else issues.push({ source: cl, key: '--token', expected: p.expected });
  }
  const file = one('tokens-file');
  if (file !== undefined) {
    let text: string | undefined;
    try {
      text = readFile(file);
    } catch (err) {
      issues.push({ source: cl, key: '--tokens-file', value: file, expected: `a readable file (${(err as { code?: string }).code ?? 'EIO'})` });
    }
    if (text !== undefined) {
      const f = parseTokensFile(text, file);
      tokens.push(...f.tokens);
      for (const p of f.problems) issues.push({ source: file, key: '--tokens-file', expected: p.slice(p.indexOf('expected ') + 'expected '.length) });
    }
  }
  if (tokens.length === 0 && issues.every((i) => i.key !== '--token' && i.key !== '--tokens-file')) {
    issues.push({ source: cl, key: '--token', expected: 'at least one token (--token or --tokens-file): the API never accepts anonymous writes' });
  }
  const trustDomain = one('trust-domain') ?? 'cluster.local';
  const why = checkTrustDomain(trustDomain);
  if (why !== undefined) issues.push({ source: cl, key: '--trust-domain', value: trustDomain, expected: why });
  const levelText = one('log-level') ?? 'info';
  const logLevel = LOG_LEVELS.find((l) => l === levelText);
  if (logLevel === undefined) issues.push({ source: cl, key: '--log-level', value: levelText, expected: `one of ${LOG_LEVELS.join(', ')}` });
  if (issues.length > 0 || listen === undefined || logLevel === undefined) return { help: false, issues };
  return { help: false, flags: { dataDir, ...(etcd === undefined ? {} : { etcd }), listen, tokens, trustDomain, sans: values.get('san') ?? [], logLevel } };
}

function version(): string {
  const require = createRequire(import.meta.url);
  return (require('../../../package.json') as { version: string }).version;
}

export async function runControlCommand(argv: readonly string[]): Promise<void> {
  const parsed = parseControlFlags(argv);
  if (parsed.help) {
    process.stdout.write(HELP);
    return;
  }
  if ('issues' in parsed) throw configError(parsed.issues);
  const f = parsed.flags;
  const log = createLogger({ level: f.logLevel, name: 'remora-control' });
  const server = await startControlServer({
    dataDir: f.dataDir, ...(f.etcd === undefined ? {} : { etcd: f.etcd }), listen: f.listen, tokens: new TokenSet(f.tokens), trustDomain: f.trustDomain, extraSans: f.sans, version: version(), log,
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ event: 'control.stopping', signal }, 'stopping');
      server.close().then(resolve, (err: unknown) => {
        log.error({ err }, 'stopping failed');
        resolve();
      });
    };
    process.once('SIGTERM', () => { stop('SIGTERM'); });
    process.once('SIGINT', () => { stop('SIGINT'); });
  });
}
