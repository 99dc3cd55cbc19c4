// The server pod's services: nginx (one process, HTTP/1.1 keep-alive, tiny bodies) on two ports, and iperf3.
// Both are killed with the mesh (Pod.spawn).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor, type Pod } from '../test/netns/harness.js';
import { listening } from './proc.js';
import type { ServerInfo } from './types.js';

export const HTTP_PORT = 8080;
export const HTTP_PORT2 = 8081;
export const IPERF_PORT = 5201;
/** nginx with HTTP/2 prior knowledge (h2c; `listen ... http2` without TLS in nginx 1.22). */
export const H2C_PORT = 8082;
export const BODY = 'hello from upstream\n';
export const BODY2 = 'hello from upstream 8081\n';
/** The server-first banner server's port (not a default opaque port: remora detects, with the upstream pre-dialed). */
export const BANNER_PORT = 2525;

/** An nginx configuration for one process (master_process off = a single worker), keep-alive, tiny bodies. */
function nginxConf(dir: string, title: string, servers: readonly string[]): string {
  return `# remora bench: ${title}
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 16384;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  default_type text/plain;
${servers.map((line) => `  ${line}`).join('\n')}
}
`;
}

const ret = (body: string): string => `location / { return 200 "${body.replace('\n', '\\n')}"; }`;

/** Start nginx (HTTP/1.1 on two ports, h2c on a third) and iperf3 in `pod`; resolves when all listen. */
/** The server pod's part of ServerInfo (the multi-endpoint service and the banner are added by the caller). */
export type ServerPodInfo = Omit<ServerInfo, 'bannerPort' | 'serviceVip' | 'servicePort' | 'serviceEndpoints'>;

export async function startServerPod(pod: Pod, tmpDir: string): Promise<ServerPodInfo> {
  const conf = join(tmpDir, 'nginx.conf');
  await writeFile(conf, nginxConf(tmpDir, 'the server pod (HTTP/1.1 on two ports, h2c on a third)', [
    `server { listen ${HTTP_PORT} reuseport backlog=4096; listen [::]:${HTTP_PORT} reuseport backlog=4096; ${ret(BODY)} }`,
    `server { listen ${HTTP_PORT2}; listen [::]:${HTTP_PORT2}; ${ret(BODY2)} }`,
    `server { listen ${H2C_PORT} http2 reuseport backlog=4096; listen [::]:${H2C_PORT} http2 reuseport backlog=4096; ${ret(BODY)} }`,
  ]));
  const nginxLog: string[] = [];
  const nginx = pod.spawn(['nginx', '-c', conf, '-e', join(tmpDir, 'nginx-error.log')]);
  nginx.stderr?.setEncoding('utf8').on('data', (d: string) => { if (nginxLog.length < 50) nginxLog.push(d); });
  const iperf = pod.spawn(['iperf3', '-s', '-p', String(IPERF_PORT)]);
  iperf.stdout?.resume();
  iperf.stderr?.resume();
  await waitFor('nginx and iperf3 in the server pod', async () => {
    if (nginx.exitCode !== null) throw new Error(`nginx exited ${nginx.exitCode}: ${nginxLog.join('')}`);
    if (iperf.exitCode !== null) throw new Error(`iperf3 exited ${iperf.exitCode}`);
    return (await listening(pod, HTTP_PORT)) && (await listening(pod, HTTP_PORT2)) && (await listening(pod, H2C_PORT))
      && (await listening(pod, IPERF_PORT)) ? true : undefined;
  }, { timeoutMs: 10_000, intervalMs: 100 });
  return { pod, ip4: pod.ip4, ip6: pod.ip6, httpPort: HTTP_PORT, httpPort2: HTTP_PORT2, iperfPort: IPERF_PORT, h2cPort: H2C_PORT };
}

/** An extra endpoint of the multi-endpoint service: one nginx process on HTTP_PORT answering BODY, files under its name. */
export async function startEndpointPod(pod: Pod, tmpDir: string): Promise<void> {
  const dir = join(tmpDir, `endpoint-${pod.name}`);
  await mkdir(dir, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  await writeFile(conf, nginxConf(dir, 'an extra endpoint of the multi-endpoint service', [
    `server { listen ${HTTP_PORT} reuseport backlog=4096; ${ret(BODY)} }`,
  ]));
  const nginx = pod.spawn(['nginx', '-c', conf, '-e', join(dir, 'nginx-error.log')]);
  nginx.stdout?.resume();
  nginx.stderr?.resume();
  await waitFor(`nginx in ${pod.name}`, async () => {
    if (nginx.exitCode !== null) throw new Error(`nginx in ${pod.name} exited ${nginx.exitCode}`);
    return (await listening(pod, HTTP_PORT)) ? true : undefined;
  }, { timeoutMs: 10_000, intervalMs: 100 });
}

/**
 * The mesh rows' server pod: one nginx process on HTTP_PORT answering BODY (as the server pod's), files under
 * tmpDir/mesh-server. Its inbound rules are set per mesh mode by the bench, never by this function.
 */
export async function startMeshServerPod(pod: Pod, tmpDir: string): Promise<void> {
  const dir = join(tmpDir, 'mesh-server');
  await mkdir(dir, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  await writeFile(conf, nginxConf(dir, 'the mesh rows\' server pod (the app behind the server-side sidecar)', [
    `server { listen ${HTTP_PORT} reuseport backlog=4096; listen [::]:${HTTP_PORT} reuseport backlog=4096; ${ret(BODY)} }`,
  ]));
  const nginx = pod.spawn(['nginx', '-c', conf, '-e', join(dir, 'nginx-error.log')]);
  nginx.stdout?.resume();
  nginx.stderr?.resume();
  await waitFor(`nginx in ${pod.name}`, async () => {
    if (nginx.exitCode !== null) throw new Error(`nginx in ${pod.name} exited ${nginx.exitCode}`);
    return (await listening(pod, HTTP_PORT)) ? true : undefined;
  }, { timeoutMs: 10_000, intervalMs: 100 });
}

/** The banner server (test/netns/l4-tools.ts) in the server pod: greets every connection at once. */
export async function startBanner(pod: Pod, repoRoot: string): Promise<void> {
  const child = pod.spawn([process.execPath, join(repoRoot, 'dist/test/netns/l4-tools.js'), 'banner', '0.0.0.0', String(BANNER_PORT), '220 bench ESMTP ready']);
  child.stdout?.resume();
  child.stderr?.resume();
  await waitFor('the banner server', async () => {
    if (child.exitCode !== null) throw new Error(`banner server exited ${child.exitCode}`);
    return (await listening(pod, BANNER_PORT)) ? true : undefined;
  }, { timeoutMs: 10_000, intervalMs: 100 });
}
