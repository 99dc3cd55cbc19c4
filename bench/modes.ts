// How the client pod reaches the server: directly, through remora (at L4, or with its HTTP engine), or through a peer
// proxy (HAProxy in tcp or http mode) behind the same `remora init` rules. To add a mode: append a Mode here.
import type { ChildProcess } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { waitFor, type Pod } from '../test/netns/harness.js';
import { commOf, listening } from './proc.js';
import type { Mode, ModeContext, RunningMode } from './types.js';

export const PROXY_UID = 1337;
/** remora's default outbound port (what plain `remora init` redirects to). */
export const REMORA_OUTBOUND_PORT = 15001;
/** HAProxy's: it runs next to remora for the whole bench; its rules are `remora init --outbound-port 15002`. */
export const HAPROXY_OUTBOUND_PORT = 15002;
export const ADMIN_PORT = 15000;
/** remora with its HTTP engine runs as a second process: its own outbound, inbound and admin ports. */
export const REMORA_L7_OUTBOUND_PORT = 15003;
export const REMORA_L7_INBOUND_PORT = 15007;
export const REMORA_L7_ADMIN_PORT = 15010;
/** HAProxy in http mode. */
export const HAPROXY_HTTP_OUTBOUND_PORT = 15004;
/** remora with its HTTP engine and `workers = 2` (the L7 rows with two proxy processes). */
export const REMORA_L7_W2_OUTBOUND_PORT = 15021;
export const REMORA_L7_W2_INBOUND_PORT = 15026;
export const REMORA_L7_W2_ADMIN_PORT = 15020;
/** The L7 rows (bench/scenarios.ts) are the only ones the L7 modes run. */
export const L7_SCENARIOS = ['l7-http1-keepalive', 'l7-http1-conn-per-request', 'l7-h2c', 'l7-latency-1k'] as const;

/**
 * Start `cmd` in the pod with stdout+stderr appended to logFile (never through a pipe the bench must drain). The
 * shell opens the log as root, then execs (through setpriv when uid is given), so the pid is the command's.
 */
export function spawnToFile(pod: Pod, cmd: readonly string[], logFile: string, uid?: number): ChildProcess {
  const asUid = uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--'];
  const child = pod.spawn(['sh', '-c', 'exec "$@" >>"$BENCH_LOG_FILE" 2>&1', 'sh', ...asUid, ...cmd], {
    env: { BENCH_LOG_FILE: logFile },
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

/** Poll `ready` until true; fails at once when the child exits, with the tail of its log. */
export async function waitUntilReady(what: string, child: ChildProcess, logFile: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const state = await waitFor(what, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return 'exited' as const;
    return (await ready()) ? 'ready' as const : undefined;
  }, { timeoutMs, intervalMs: 100 });
  if (state === 'exited') {
    let tail = '';
    try { tail = (await readFile(logFile, 'utf8')).trim().split('\n').slice(-5).join(' / '); } catch { /* no log */ }
    throw new Error(`${what}: exited ${child.exitCode ?? child.signalCode} (${logFile}: ${tail.slice(-600)})`);
  }
}

export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((res) => {
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => { clearTimeout(t); res(); });
    child.kill('SIGTERM');
  });
}

function flattenNumbers(v: unknown, prefix: string, out: Record<string, number>): void {
  if (typeof v === 'number') { out[prefix] = v; return; }
  if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) flattenNumbers(x, prefix === '' ? k : `${prefix}.${k}`, out);
  }
}

export async function adminGet(pod: Pod, path: string, port = ADMIN_PORT): Promise<{ status: number; body: string }> {
  const r = await pod.exec(['curl', '-sS', '--max-time', '5', '-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:${port}${path}`]);
  const i = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(0, i)) };
}

export const direct: Mode = {
  id: 'direct',
  title: 'direct (no rules, no proxy)',
  redirect: false,
  start: () => Promise.resolve({ notes: [], stop: () => Promise.resolve() }),
};

interface RemoraVariant {
  readonly name: string;
  readonly config: string;
  readonly adminPort: number;
  readonly notes: readonly string[];
  /** Extra arguments for node itself (e.g. --cpu-prof). */
  readonly nodeArgs?: readonly string[];
  /** The pod to run in (default: the client pod). */
  readonly pod?: Pod;
}

/** Start a `remora proxy` with `config` in the client pod (started as root, it drops to uid 1337 after binding). */
export async function startRemora(ctx: ModeContext, v: RemoraVariant): Promise<RunningMode> {
  const pod = v.pod ?? ctx.client;
  const logFile = join(ctx.tmpDir, `${v.name}.log`);
  const bin = resolve(ctx.repoRoot, 'bin/remora');
  const config = join(ctx.tmpDir, `${v.name}.ini`);
  await writeFile(config, v.config);
  await chmod(config, 0o644);
  const configArgs = ctx.remoraArgs.some((a) => a === '--config' || a.startsWith('--config=')) ? [] : ['--config', config];
  const cmd = [process.execPath, ...(v.nodeArgs ?? []), bin];
  // The bench points the pod's rules at one mode at a time, so the other proxies' redirect probes fail and /ready
  // would rightly say 503 (docs/operations.md): the probes are off here, /ready then follows listeners and config.
  const probeArgs = ctx.remoraArgs.some((a) => a.startsWith('--readiness-probe-interval')) ? [] : ['--readiness-probe-interval', 'off'];
  const child = spawnToFile(pod, [...cmd, 'proxy', ...configArgs, ...probeArgs, ...ctx.remoraArgs], logFile);
  await waitUntilReady(`${v.name} /ready`, child, logFile, async () => (await adminGet(pod, '/ready', v.adminPort)).status === 200, 20_000);
  const pid = child.pid;
  if (pid === undefined || commOf(pid) === undefined) throw new Error(`${v.name}: no process id`);
  const levelArg = ctx.remoraArgs.findIndex((a) => a === '--log-level' || a.startsWith('--log-level='));
  const level = levelArg < 0 ? 'default (info)' : (ctx.remoraArgs[levelArg]?.split('=')[1] ?? ctx.remoraArgs[levelArg + 1] ?? '?');
  return {
    pid,
    notes: [`single Node.js process, started as root, runs as uid ${PROXY_UID}`, `log level ${level}, log to a file`, ...v.notes,
      ...(ctx.remoraArgs.length > 0 ? [`extra args: ${ctx.remoraArgs.join(' ')}`] : [])],
    async counters() {
      const r = await adminGet(pod, '/stats', v.adminPort);
      const out: Record<string, number> = {};
      if (r.status === 200) { try { flattenNumbers(JSON.parse(r.body), '', out); } catch { /* not JSON */ } }
      return out;
    },
    stop: () => stopChild(child, 20_000),
  };
}

export const remora: Mode = {
  id: 'remora',
  title: 'remora proxy (L4)',
  redirect: true,
  outboundPort: REMORA_OUTBOUND_PORT,
  start: (ctx: ModeContext) => startRemora(ctx, {
    name: 'remora-proxy',
    // L4 like the peer (http_engine = off), and the multi-endpoint service; passthrough for every other
    // destination. protocol = opaque: L4 balancing per connection (no detection), as HAProxy's mode tcp does.
    config: remoraServices(ctx),
    adminPort: ADMIN_PORT,
    notes: ['http_engine = off (HTTP detected, forwarded as opaque TCP)',
      `[service bench-l4]: VIP ${ctx.server.serviceVip}:${ctx.server.servicePort}, 3 endpoints, round-robin, protocol opaque`],
  }),
};

/** remora with its HTTP engine (the default): every HTTP/1.1 and h2c connection is proxied per request. */
export function remoraL7Config(ctx: ModeContext): string {
  const s = ctx.server;
  return `; remora bench, L7: HTTP/1.1 and h2c go through the HTTP engine (detected; passthrough route to the original
; destination, pooled upstream connections); the multi-endpoint service is balanced per request
[proxy]
outbound_port = ${REMORA_L7_OUTBOUND_PORT}
inbound_port = ${REMORA_L7_INBOUND_PORT}
admin_address = 127.0.0.1:${REMORA_L7_ADMIN_PORT}
http_engine = on

[service bench-l4]
addresses = ${s.serviceVip}:${s.servicePort}
balancer = round-robin
endpoints = ${s.serviceEndpoints.map((e) => `${e}:${s.servicePort}`).join(', ')}
`;
}

export const remoraL7: Mode = {
  id: 'remora-l7',
  title: 'remora proxy with its HTTP engine (L7)',
  redirect: true,
  outboundPort: REMORA_L7_OUTBOUND_PORT,
  scenarios: L7_SCENARIOS,
  start: (ctx: ModeContext) => startRemora(ctx, {
    name: 'remora-l7',
    config: remoraL7Config(ctx),
    adminPort: REMORA_L7_ADMIN_PORT,
    notes: ['http_engine = on (HTTP/1.1 and h2c detected, proxied per request; passthrough route, pooled upstream connections)',
      `listens on ${REMORA_L7_OUTBOUND_PORT} (rules: remora init --outbound-port ${REMORA_L7_OUTBOUND_PORT}), admin ${REMORA_L7_ADMIN_PORT}`],
  }),
};

/** remora-l7 with `workers = 2`: two worker processes share the listeners (node:cluster), a primary answers the admin API. */
export const remoraL7Workers2: Mode = {
  id: 'remora-l7-w2',
  title: 'remora proxy with its HTTP engine (L7), workers = 2',
  redirect: true,
  outboundPort: REMORA_L7_W2_OUTBOUND_PORT,
  scenarios: L7_SCENARIOS,
  start: (ctx: ModeContext) => startRemora(ctx, {
    name: 'remora-l7-w2',
    config: remoraL7Config(ctx)
      .replace(`outbound_port = ${REMORA_L7_OUTBOUND_PORT}`, `outbound_port = ${REMORA_L7_W2_OUTBOUND_PORT}`)
      .replace(`inbound_port = ${REMORA_L7_INBOUND_PORT}`, `inbound_port = ${REMORA_L7_W2_INBOUND_PORT}`)
      .replace(`admin_address = 127.0.0.1:${REMORA_L7_ADMIN_PORT}`, `admin_address = 127.0.0.1:${REMORA_L7_W2_ADMIN_PORT}`)
      .replace('http_engine = on\n', 'http_engine = on\nworkers = 2\n'),
    adminPort: REMORA_L7_W2_ADMIN_PORT,
    notes: ['as remora-l7, with workers = 2: a primary (admin, config) and two worker processes accepting on the shared listeners; CPU is the sum of the three',
      `listens on ${REMORA_L7_W2_OUTBOUND_PORT} (rules: remora init --outbound-port ${REMORA_L7_W2_OUTBOUND_PORT}), admin ${REMORA_L7_W2_ADMIN_PORT}`],
  }),
};

function remoraServices(ctx: ModeContext): string {
  const s = ctx.server;
  return `; remora bench: L4 (HTTP is detected and forwarded as opaque TCP, as by HAProxy in mode tcp), and the
; multi-endpoint service (every other destination is passthrough)
[proxy]
http_engine = off

[service bench-l4]
addresses = ${s.serviceVip}:${s.servicePort}
protocol = opaque
balancer = round-robin
endpoints = ${s.serviceEndpoints.map((e) => `${e}:${s.servicePort}`).join(', ')}
`;
}

function haproxyConf(port: number, ctx: ModeContext): string {
  const s = ctx.server;
  return `# remora bench: HAProxy as a transparent L4 sidecar behind remora's REDIRECT rules
global
  nbthread 1
  maxconn 8000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend outbound
  # separate sockets per family: on a v4v6 socket HAProxy cannot read an IPv4 original destination
  bind 0.0.0.0:${port}
  bind :::${port} v6only
  # the multi-endpoint service: dst is the original destination (SO_ORIGINAL_DST) of the redirected connection
  use_backend service if { dst ${s.serviceVip} } { dst_port ${s.servicePort} }
  default_backend original_dst
backend original_dst
  # 0.0.0.0 without a port: connect to the connection's original destination (SO_ORIGINAL_DST) and port
  server orig 0.0.0.0
backend service
  balance roundrobin
${s.serviceEndpoints.map((e, i) => `  server e${i + 1} ${e}:${s.servicePort}`).join('\n')}
`;
}

export const haproxyL4: Mode = {
  id: 'haproxy-l4',
  title: 'HAProxy mode tcp, server orig 0.0.0.0',
  redirect: true,
  outboundPort: HAPROXY_OUTBOUND_PORT,
  async start(ctx: ModeContext): Promise<RunningMode> {
    const conf = join(ctx.tmpDir, 'haproxy.cfg');
    const logFile = join(ctx.tmpDir, 'haproxy.log');
    await writeFile(conf, haproxyConf(HAPROXY_OUTBOUND_PORT, ctx));
    await chmod(conf, 0o644);
    const child = spawnToFile(ctx.client, ['haproxy', '-f', conf, '-db'], logFile, PROXY_UID);
    await waitUntilReady(`haproxy listening on ${HAPROXY_OUTBOUND_PORT}`, child, logFile, () => listening(ctx.client, HAPROXY_OUTBOUND_PORT), 10_000);
    const pid = child.pid;
    if (pid === undefined || commOf(pid) === undefined) throw new Error('haproxy: no process id');
    return {
      pid,
      notes: ['nbthread 1', 'mode tcp, `server orig 0.0.0.0` (original destination)',
        `the VIP ${ctx.server.serviceVip}:${ctx.server.servicePort} (\`dst\` ACL): \`balance roundrobin\` over the 3 endpoints`, `runs as uid ${PROXY_UID}`,
        `listens on ${HAPROXY_OUTBOUND_PORT} (rules: remora init --outbound-port ${HAPROXY_OUTBOUND_PORT})`],
      stop: () => stopChild(child, 5_000),
    };
  },
};

function haproxyHttpConf(port: number, ctx: ModeContext): string {
  const s = ctx.server;
  return `# remora bench: HAProxy as a transparent L7 sidecar (mode http) behind remora's REDIRECT rules
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
frontend outbound
  # h2c with prior knowledge is recognised on a clear bind in http mode
  bind 0.0.0.0:${port}
  bind :::${port} v6only
  use_backend service if { dst ${s.serviceVip} } { dst_port ${s.servicePort} }
  use_backend original_dst_h2 if { dst_port ${s.h2cPort} }
  default_backend original_dst
backend original_dst
  # 0.0.0.0 without a port: the connection's original destination (SO_ORIGINAL_DST) and port
  server orig 0.0.0.0
backend original_dst_h2
  server orig 0.0.0.0 proto h2
backend service
  balance roundrobin
${s.serviceEndpoints.map((e, i) => `  server e${i + 1} ${e}:${s.servicePort}`).join('\n')}
`;
}

export const haproxyHttp: Mode = {
  id: 'haproxy-http',
  title: 'HAProxy mode http, server orig 0.0.0.0',
  redirect: true,
  outboundPort: HAPROXY_HTTP_OUTBOUND_PORT,
  scenarios: L7_SCENARIOS,
  async start(ctx: ModeContext): Promise<RunningMode> {
    const conf = join(ctx.tmpDir, 'haproxy-http.cfg');
    const logFile = join(ctx.tmpDir, 'haproxy-http.log');
    await writeFile(conf, haproxyHttpConf(HAPROXY_HTTP_OUTBOUND_PORT, ctx));
    await chmod(conf, 0o644);
    const child = spawnToFile(ctx.client, ['haproxy', '-f', conf, '-db'], logFile, PROXY_UID);
    await waitUntilReady(`haproxy (http) listening on ${HAPROXY_HTTP_OUTBOUND_PORT}`, child, logFile,
      () => listening(ctx.client, HAPROXY_HTTP_OUTBOUND_PORT), 10_000);
    const pid = child.pid;
    if (pid === undefined || commOf(pid) === undefined) throw new Error('haproxy (http): no process id');
    return {
      pid,
      notes: ['nbthread 1', 'mode http (keep-alive both sides), `server orig 0.0.0.0` (original destination)',
        `h2c: recognised on the clear bind; \`dst_port ${ctx.server.h2cPort}\` -> \`server orig 0.0.0.0 proto h2\``,
        `the VIP ${ctx.server.serviceVip}:${ctx.server.servicePort} (\`dst\` ACL): \`balance roundrobin\` over the 3 endpoints`, `runs as uid ${PROXY_UID}`,
        `listens on ${HAPROXY_HTTP_OUTBOUND_PORT} (rules: remora init --outbound-port ${HAPROXY_HTTP_OUTBOUND_PORT})`],
      stop: () => stopChild(child, 5_000),
    };
  },
};

export const MODES: readonly Mode[] = [direct, remora, haproxyL4, remoraL7, remoraL7Workers2, haproxyHttp];
