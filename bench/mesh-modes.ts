// The mesh group's modes (issue 11): two hops, a sidecar in the client pod and one in the mesh server pod, both
// behind the rules of the real `remora init` (outbound capture in the client pod, inbound capture in the server pod).
//
// - mesh-plain: two remora proxies with their HTTP engine on; the client sidecar's [service bench-mesh] (the mesh
//   server pod's address and port) sends plaintext to the server pod, whose rules redirect it to the server sidecar
//   (no identity: no termination), which delivers to the app (original destination, source 127.0.0.6).
// - mesh-mtls: the same two proxies' configuration plus identities (`identity_dir`, issued by `remora ca`), the
//   service with `mtls = true` (TLS 1.3, ALPN remora, the server's SPIFFE ID checked) and the server sidecar in
//   `mtls_mode = strict` (terminates the mesh mTLS, checks the client certificate, delivers plaintext).
// - haproxy-tls: HAProxy in both pods (mode http, nbthread 1). Client side: the mesh server pod's address goes to
//   `server ... ssl crt ... ca-file ... verify required` (TLS 1.3, pooled with http-reuse always); server side: a
//   TLS-only bind with `verify required` on the client certificate, forwarding to the original destination from
//   127.0.0.6 (as remora's inbound delivery, which the rules exclude from capture).
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  MESH_CLIENT_ID, MESH_PORTS, MESH_SCENARIOS, MESH_SERVER_ID, MESH_TRUST_DOMAIN, ROLE_CLIENT, ROLE_SERVER,
} from './mesh-group.js';
import { commOf, listening } from './proc.js';
import { adminGet, PROXY_UID, spawnToFile, startRemora, stopChild, waitUntilReady } from './modes.js';
import type { MeshPki, MeshServerInfo, Mode, ModeContext, RunningMode } from './types.js';

/**
 * A CA (`remora ca init`) and two workload identities (`remora ca issue`, ECDSA P-256, 24 h), owned by uid 1337 (the
 * proxies drop to it and watch the files); HAProxy gets the same leaf certificates and keys as one PEM each.
 */
export async function createMeshPki(tmpDir: string, repoRoot: string): Promise<MeshPki> {
  const base = join(tmpDir, 'mesh-pki');
  await mkdir(base, { recursive: true });
  await chmod(base, 0o755);
  const bin = resolve(repoRoot, 'bin/remora');
  const ca = join(base, 'ca');
  const remoraCa = (args: readonly string[]): void => {
    execFileSync(process.execPath, [bin, 'ca', ...args], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  };
  remoraCa(['init', '--dir', ca, '--trust-domain', MESH_TRUST_DOMAIN]);
  const clientDir = join(base, 'client');
  const serverDir = join(base, 'server');
  remoraCa(['issue', '--dir', ca, '--spiffe-id', MESH_CLIENT_ID, '--out', clientDir]);
  remoraCa(['issue', '--dir', ca, '--spiffe-id', MESH_SERVER_ID, '--out', serverDir]);
  const haproxyClientPem = join(base, 'haproxy-client.pem');
  const haproxyServerPem = join(base, 'haproxy-server.pem');
  for (const [dir, pem] of [[clientDir, haproxyClientPem], [serverDir, haproxyServerPem]] as const) {
    await writeFile(pem, `${await readFile(join(dir, 'cert-chain.pem'), 'utf8')}\n${await readFile(join(dir, 'key.pem'), 'utf8')}`, { mode: 0o600 });
    await chown(pem, PROXY_UID, PROXY_UID);
    await chown(dir, PROXY_UID, PROXY_UID);
    for (const f of ['cert-chain.pem', 'key.pem', 'root-cert.pem']) await chown(join(dir, f), PROXY_UID, PROXY_UID);
  }
  return {
    clientDir, serverDir, clientId: MESH_CLIENT_ID, serverId: MESH_SERVER_ID, rootPem: join(clientDir, 'root-cert.pem'),
    haproxyClientPem, haproxyServerPem,
  };
}

function meshOf(ctx: ModeContext): MeshServerInfo {
  if (ctx.meshServer === undefined) throw new Error('the mesh server pod was not set up (no mesh scenario selected)');
  return ctx.meshServer;
}

interface Ports { readonly outbound: number; readonly inbound: number; readonly admin: number }

/** The client pod's sidecar: HTTP engine on, the mesh server pod's address as a service (mesh mTLS or not). */
export function meshClientConfig(ctx: ModeContext, mtls: boolean): string {
  const m = meshOf(ctx);
  const p: Ports = mtls ? MESH_PORTS.mtlsClient : MESH_PORTS.plainClient;
  return `; remora bench, mesh rows (${mtls ? 'mTLS' : 'plaintext'}): the client pod's sidecar
[proxy]
outbound_port = ${p.outbound}
inbound_port = ${p.inbound}
admin_address = 127.0.0.1:${p.admin}
http_engine = on
${mtls ? `identity_dir = ${m.pki.clientDir}\n` : ''}
; the server pod's workload (a headless service: its address is its endpoint)
[service bench-mesh]
addresses = ${m.ip4}:${m.httpPort}
endpoints = ${m.ip4}:${m.httpPort}
${mtls ? `mtls = true\nidentities = ${m.pki.serverId}\n` : ''}`;
}

/** The server pod's sidecar: inbound capture delivers to the app; with mTLS, strict termination. */
export function meshServerConfig(ctx: ModeContext, mtls: boolean): string {
  const m = meshOf(ctx);
  const p: Ports = mtls ? MESH_PORTS.mtlsServer : MESH_PORTS.plainServer;
  return `; remora bench, mesh rows (${mtls ? 'mTLS' : 'plaintext'}): the server pod's sidecar
[proxy]
outbound_port = ${p.outbound}
inbound_port = ${p.inbound}
admin_address = 127.0.0.1:${p.admin}
http_engine = on
${mtls ? `identity_dir = ${m.pki.serverDir}\nmtls_mode = strict\n` : ''}`;
}

const n = (c: Readonly<Record<string, number>>, k: string): number => c[k] ?? 0;

/** Start the two remora sidecars of mesh-plain or mesh-mtls; `serverNodeArgs` / `clientNodeArgs` e.g. --cpu-prof. */
export async function startRemoraPair(ctx: ModeContext, mtls: boolean,
  o: { serverNodeArgs?: readonly string[]; clientNodeArgs?: readonly string[]; suffix?: string } = {}): Promise<RunningMode> {
  const m = meshOf(ctx);
  const kind = mtls ? 'mtls' : 'plain';
  const cp = mtls ? MESH_PORTS.mtlsClient : MESH_PORTS.plainClient;
  const sp = mtls ? MESH_PORTS.mtlsServer : MESH_PORTS.plainServer;
  const server = await startRemora(ctx, {
    name: `mesh-${kind}-server${o.suffix ?? ''}`, pod: m.pod, config: meshServerConfig(ctx, mtls), adminPort: sp.admin, notes: [],
    ...(o.serverNodeArgs === undefined ? {} : { nodeArgs: o.serverNodeArgs }),
  });
  let client: RunningMode;
  try {
    client = await startRemora(ctx, {
      name: `mesh-${kind}-client${o.suffix ?? ''}`, config: meshClientConfig(ctx, mtls), adminPort: cp.admin, notes: [],
      ...(o.clientNodeArgs === undefined ? {} : { nodeArgs: o.clientNodeArgs }),
    });
  } catch (err) {
    await server.stop();
    throw err;
  }
  if (client.pid === undefined || server.pid === undefined) throw new Error('mesh sidecars without a process id');
  const counters = async (): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const [role, r] of [[ROLE_CLIENT, client], [ROLE_SERVER, server]] as const) {
      for (const [k, v] of Object.entries((await r.counters?.()) ?? {})) out[`${role}.${k}`] = v;
    }
    return out;
  };
  return {
    processes: [{ role: ROLE_CLIENT, pid: client.pid }, { role: ROLE_SERVER, pid: server.pid }],
    notes: [
      'two remora proxies (one Node.js process each, started as root, run as uid 1337, log level default (info), log to a file), http_engine = on in both',
      `client pod: outbound ${cp.outbound} (rules: remora init --outbound-port ${cp.outbound}), admin ${cp.admin}; [service bench-mesh] = ${m.ip4}:${m.httpPort}${mtls ? ', mtls = true, identities = the server\'s SPIFFE ID' : ' (no mtls)'}`,
      `server pod: inbound ${sp.inbound} (rules: remora init --inbound-port ${sp.inbound} --outbound-cidrs ""), admin ${sp.admin}; ${mtls ? 'identity_dir, mtls_mode = strict' : 'no identity (plaintext passes)'}; delivery to the original destination from 127.0.0.6`,
      ...(mtls ? [`identities from remora ca (ECDSA P-256): client ${m.pki.clientId}, server ${m.pki.serverId}`] : []),
      ...(ctx.remoraArgs.length > 0 ? [`extra args: ${ctx.remoraArgs.join(' ')}`] : []),
    ],
    counters,
    async verify() {
      const c = await counters();
      const hs = n(c, 'server.mtls.inbound.handshakes');
      const sniffed = n(c, 'server.sniff.mtls');
      const out = n(c, 'client.mtls.outbound.handshakes');
      const inboundRequests = n(c, 'server.http.inbound.http.requests');
      if (inboundRequests < 1) return `the server sidecar saw no inbound HTTP request (server.http.inbound.http.requests ${inboundRequests})`;
      if (mtls && (hs < 1 || sniffed < 1 || out < 1)) {
        return `mTLS not used: server mtls.inbound.handshakes ${hs}, sniff.mtls ${sniffed}; client mtls.outbound.handshakes ${out}`;
      }
      if (!mtls && (hs !== 0 || out !== 0)) return `plaintext mode made mTLS handshakes (server ${hs}, client ${out})`;
      return undefined;
    },
    stop: async () => { await Promise.all([client.stop(), server.stop()]); },
  };
}

export const meshPlain: Mode = {
  id: 'mesh-plain',
  title: 'two remora sidecars (HTTP engine), plaintext hop',
  redirect: true,
  outboundPort: MESH_PORTS.plainClient.outbound,
  serverInboundPort: MESH_PORTS.plainServer.inbound,
  scenarios: MESH_SCENARIOS,
  checks: 'mesh',
  start: (ctx) => startRemoraPair(ctx, false),
};

export const meshMtls: Mode = {
  id: 'mesh-mtls',
  title: 'two remora sidecars (HTTP engine), mesh mTLS hop',
  redirect: true,
  outboundPort: MESH_PORTS.mtlsClient.outbound,
  serverInboundPort: MESH_PORTS.mtlsServer.inbound,
  scenarios: MESH_SCENARIOS,
  checks: 'mesh',
  start: (ctx) => startRemoraPair(ctx, true),
};

const TLS13 = 'ssl-min-ver TLSv1.3';

/** A stats page on 127.0.0.1 (CSV at /stats;csv): the bench reads connection and request counts from it. */
const statsFrontend = (port: number): string => `frontend stats
  bind 127.0.0.1:${port}
  stats enable
  stats uri /stats
`;

/** HAProxy's CSV stats: `${pxname}.${svname}.${column}` -> value, numeric columns only. */
export function parseHaproxyCsv(csv: string): Record<string, number> {
  const lines = csv.split('\n').filter((l) => l.trim() !== '');
  const header = lines[0]?.replace(/^#\s*/, '').split(',') ?? [];
  const out: Record<string, number> = {};
  for (const line of lines.slice(1)) {
    const f = line.split(',');
    const name = `${f[0] ?? ''}.${f[1] ?? ''}`;
    header.forEach((col, i) => {
      const v = f[i];
      if (i > 1 && col !== '' && v !== undefined && v !== '' && /^\d+$/.test(v)) out[`${name}.${col}`] = Number(v);
    });
  }
  return out;
}

/** The counters of the TLS hop: the server side's accepted connections (each a handshake) and requests. */
const HAPROXY_COUNTERS: Readonly<Record<string, readonly string[]>> = {
  [ROLE_CLIENT]: ['mesh.s1.connect', 'mesh.s1.reuse', 'mesh.s1.stot', 'mesh.BACKEND.req_tot'],
  [ROLE_SERVER]: ['inbound.FRONTEND.conn_tot', 'inbound.FRONTEND.req_tot', 'app.orig.connect', 'app.orig.reuse'],
};

function haproxyTlsClientConf(ctx: ModeContext): string {
  const m = meshOf(ctx);
  const port = MESH_PORTS.haproxyClient;
  return `# remora bench, mesh rows: HAProxy as the client pod's sidecar, TLS to the server pod's HAProxy
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
frontend outbound
  bind 0.0.0.0:${port}
  bind :::${port} v6only
  use_backend mesh if { dst ${m.ip4} } { dst_port ${m.httpPort} }
  default_backend original_dst
${statsFrontend(MESH_PORTS.haproxyClientStats)}backend mesh
  # TLS 1.3 with our client certificate; the server's chain verified against the mesh root
  server s1 ${m.ip4}:${m.httpPort} ssl crt ${m.pki.haproxyClientPem} ca-file ${m.pki.rootPem} verify required alpn http/1.1 ${TLS13}
backend original_dst
  server orig 0.0.0.0
`;
}

function haproxyTlsServerConf(ctx: ModeContext): string {
  const m = meshOf(ctx);
  const port = MESH_PORTS.haproxyServer;
  const tls = `ssl crt ${m.pki.haproxyServerPem} ca-file ${m.pki.rootPem} verify required alpn http/1.1 ${TLS13}`;
  return `# remora bench, mesh rows: HAProxy as the server pod's sidecar, terminating TLS (client certificate required)
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
frontend inbound
  # TLS only: a plaintext connection cannot pass
  bind 0.0.0.0:${port} ${tls}
  bind :::${port} v6only ${tls}
  default_backend app
${statsFrontend(MESH_PORTS.haproxyServerStats)}backend app
  # the original destination (the pod's address and port), from 127.0.0.6: remora init's rules never capture that
  # source (as remora's inbound delivery)
  server orig 0.0.0.0 source 127.0.0.6
`;
}

export const haproxyTls: Mode = {
  id: 'haproxy-tls',
  title: 'two HAProxy (mode http), TLS hop with client certificates',
  redirect: true,
  outboundPort: MESH_PORTS.haproxyClient,
  serverInboundPort: MESH_PORTS.haproxyServer,
  scenarios: MESH_SCENARIOS,
  checks: 'mesh',
  async start(ctx: ModeContext): Promise<RunningMode> {
    const m = meshOf(ctx);
    const sides = [
      { role: ROLE_SERVER, pod: m.pod, port: MESH_PORTS.haproxyServer, stats: MESH_PORTS.haproxyServerStats, conf: haproxyTlsServerConf(ctx) },
      { role: ROLE_CLIENT, pod: ctx.client, port: MESH_PORTS.haproxyClient, stats: MESH_PORTS.haproxyClientStats, conf: haproxyTlsClientConf(ctx) },
    ];
    const started: { role: string; child: ReturnType<typeof spawnToFile> }[] = [];
    try {
      for (const s of sides) {
        const conf = join(ctx.tmpDir, `haproxy-tls-${s.role}.cfg`);
        const logFile = join(ctx.tmpDir, `haproxy-tls-${s.role}.log`);
        await writeFile(conf, s.conf);
        await chmod(conf, 0o644);
        const child = spawnToFile(s.pod, ['haproxy', '-f', conf, '-db'], logFile, PROXY_UID);
        started.push({ role: s.role, child });
        await waitUntilReady(`haproxy-tls (${s.role}) listening on ${s.port}`, child, logFile, () => listening(s.pod, s.port), 10_000);
        if (child.pid === undefined || commOf(child.pid) === undefined) throw new Error(`haproxy-tls (${s.role}): no process id`);
      }
    } catch (err) {
      await Promise.all(started.map((s) => stopChild(s.child, 5_000)));
      throw err;
    }
    const counters = async (): Promise<Record<string, number>> => {
      const out: Record<string, number> = {};
      for (const s of sides) {
        const r = await adminGet(s.pod, '/stats;csv', s.stats);
        if (r.status !== 200) continue;
        const all = parseHaproxyCsv(r.body);
        for (const k of HAPROXY_COUNTERS[s.role] ?? []) if (all[k] !== undefined) out[`${s.role}.${k}`] = all[k];
      }
      return out;
    };
    return {
      // Listed client first, as remora's pair.
      processes: started.map((s) => ({ role: s.role, pid: s.child.pid ?? 0 })).reverse(),
      counters,
      async verify() {
        // The server side's bind is TLS-only with verify required: a request it served came over the TLS hop.
        const c = await counters();
        const tlsConns = c[`${ROLE_SERVER}.inbound.FRONTEND.conn_tot`] ?? 0;
        const reqs = c[`${ROLE_SERVER}.inbound.FRONTEND.req_tot`] ?? 0;
        return tlsConns >= 1 && reqs >= 1 ? undefined : `the server pod's HAProxy served no request over TLS (connections ${tlsConns}, requests ${reqs})`;
      },
      notes: [
        'two HAProxy (nbthread 1, mode http, keep-alive, http-reuse always, run as uid 1337)',
        `client pod: listens on ${MESH_PORTS.haproxyClient} (rules: remora init --outbound-port ${MESH_PORTS.haproxyClient}); \`dst ${m.ip4}\` -> \`server ... ssl crt ... ca-file ... verify required alpn http/1.1 ssl-min-ver TLSv1.3\``,
        `server pod: \`bind :${MESH_PORTS.haproxyServer} ssl crt ... ca-file ... verify required ssl-min-ver TLSv1.3\` (rules: remora init --inbound-port ${MESH_PORTS.haproxyServer} --outbound-cidrs ""); \`server orig 0.0.0.0 source 127.0.0.6\``,
        'the same certificates as remora (chains verified; HAProxy does not match SPIFFE IDs); TLS session resumption on (HAProxy default)',
      ],
      stop: async () => { await Promise.all(started.map((s) => stopChild(s.child, 5_000))); },
    };
  },
};

export const MESH_MODE_LIST: readonly Mode[] = [meshPlain, meshMtls, haproxyTls];
