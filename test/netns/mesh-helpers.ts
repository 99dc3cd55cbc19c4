// Shared pieces of the mesh-* netns tests (mesh mTLS and authorization across pods): sidecars with an identity_dir,
// `remora ca` run as the proxy's user, the mesh parts of /stats and /certs, `openssl s_client` as a foreign client,
// a tcpdump capture on a pod's veth with a small pcap reader, and the mesh-tools servers and clients.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { chownSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spiffe } from '../support/mesh-pki.js';
import { waitFor, type Pod } from './harness.js';
import { writeConfig } from './l4-helpers.js';
import { initOk, logRecords, type LogRecord } from './proxy-helpers.js';
import { outputLines, REMORA_BIN, REPO_ROOT, startProxy, type RunningProxy } from './remora-process.js';

/** The uid/gid `remora proxy` drops to (startProxy's default): identity files must be readable by it. */
export const PROXY_UID = 1337;
export const MESH_TOOLS = resolve(REPO_ROOT, 'dist/test/netns/mesh-tools.js');

export const SERVER_ID = spiffe('default', 'api');
export const CLIENT_ID = spiffe('default', 'web');
export const IDENTITY_FILES = ['cert-chain.pem', 'key.pem', 'root-cert.pem'] as const;

// === files and `remora ca` ===

/** `parent/name`, created and owned by the proxy's user (so `remora ca` run as that user can write into it). */
export function proxyOwnedDir(parent: string, name: string): string {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chownSync(dir, PROXY_UID, PROXY_UID);
  return dir;
}

/** Hand identity files written by the test (as root) to the proxy's user: key.pem is 0600. */
export function giveToProxy(dir: string, files: readonly string[] = IDENTITY_FILES): void {
  chownSync(dir, PROXY_UID, PROXY_UID);
  for (const f of files) chownSync(join(dir, f), PROXY_UID, PROXY_UID);
}

/**
 * Run `remora ca ARGS` in `pod` as the proxy's user, as an operator's tooling would write a workload's identity: the
 * files it writes (key.pem 0600) belong to the user that reads them. Returns stdout; fails on a non-zero exit.
 */
export async function remoraCa(pod: Pod, args: readonly string[]): Promise<string> {
  const r = await pod.exec([process.execPath, REMORA_BIN, 'ca', ...args], { uid: PROXY_UID, timeoutMs: 30_000 });
  assert.equal(r.code, 0, `remora ca ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

function firstCert(pemFile: string): X509Certificate {
  return new X509Certificate(readFileSync(pemFile));
}

/** The serial of the first certificate in a PEM file, lower-case hex. */
export function certSerial(pemFile: string): string {
  return firstCert(pemFile).serialNumber.toLowerCase();
}

/** The SHA-256 of the first certificate's DER, lower-case hex (x-forwarded-client-cert's Hash=). */
export function certSha256(pemFile: string): string {
  return createHash('sha256').update(firstCert(pemFile).raw).digest('hex');
}

// === sidecars ===

export interface Sidecar {
  readonly pod: Pod;
  readonly proxy: RunningProxy;
  readonly identityDir: string;
  readonly configFile: string;
}

/** `remora init` and `remora proxy --config FILE` in `pod`, FILE = [proxy] identity_dir = DIR + `lines`. */
export async function startSidecar(pod: Pod, configDir: string, identityDir: string, lines: readonly string[]): Promise<Sidecar> {
  const configFile = writeConfig(configDir, `${pod.name}.ini`, ['[proxy]', `identity_dir = ${identityDir}`, ...lines]);
  await initOk(pod);
  const proxy = await startProxy(pod, ['--config', configFile]);
  return { pod, proxy, identityDir, configFile };
}

/** A [service NAME] reached over mesh mTLS at the server pod's own address:port (its sidecar terminates it). */
export function meshService(name: string, server: Pod, port: number, extra: readonly string[] = []): string[] {
  return [
    `[service ${name}]`, `addresses = ${server.ip4}:${port}`, `endpoints = ${server.ip4}:${port}`,
    'mtls = true', `identities = ${SERVER_ID}`, ...extra,
  ];
}

// === /stats and /certs ===

export type Counters = Readonly<Record<string, number>>;

/** The mesh parts of /stats (src/core/mesh-stats.ts) with the error and sniff counters. */
export interface MeshStatsView {
  readonly mtls: { readonly outbound: Counters; readonly inbound: Counters };
  readonly identity: Counters;
  readonly authz: Counters;
  readonly errors: Counters;
  readonly sniff: Counters;
}

export async function meshStats(proxy: RunningProxy): Promise<MeshStatsView> {
  const s = await proxy.stats();
  return {
    mtls: s['mtls'] as MeshStatsView['mtls'],
    identity: s['identity'] as Counters,
    authz: s['authz'] as Counters,
    errors: s.errors,
    sniff: s['sniff'] as Counters,
  };
}

/** Poll /stats until `ok` holds (bounded). */
export async function meshStatsWhere(proxy: RunningProxy, what: string, ok: (s: MeshStatsView) => boolean, timeoutMs = 15_000): Promise<MeshStatsView> {
  return waitFor(what, async () => {
    const s = await meshStats(proxy);
    return ok(s) ? s : undefined;
  }, { timeoutMs, intervalMs: 50 });
}

/** The counters that changed from `before` to `after`: name -> after - before (changed ones only). */
export function delta(before: Counters, after: Counters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[k] ?? 0) - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

export interface CertView {
  readonly serial: string;
  readonly spiffeId?: string;
  readonly sha256: string;
  readonly notAfter: string;
  readonly secondsLeft: number;
}

/** GET /certs (src/proxy/certs-json.ts). */
export interface CertsView {
  readonly identity: { readonly spiffeId: string; readonly dir: string; readonly chain: readonly CertView[]; readonly trustBundle: readonly CertView[] } | null;
  readonly mtls: { readonly mode: string; readonly services: Readonly<Record<string, readonly string[]>> };
  readonly rotations: Counters;
}

export async function certs(proxy: RunningProxy): Promise<CertsView> {
  const r = await proxy.admin('/certs');
  assert.equal(r.status, 200, `/certs: ${r.body}`);
  return JSON.parse(r.body) as CertsView;
}

// === openssl s_client: a TLS client that is not a sidecar ===

export interface SClientOptions {
  readonly cert?: string;
  readonly key?: string;
  readonly caFile?: string;
  /** ALPN to offer ("remora" = the mesh's); none when undefined. */
  readonly alpn?: string;
  /** Bytes to send once connected (an HTTP request with Connection: close). */
  readonly input: string;
}

export interface SClientResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The serial of the certificate the server presented (lower-case hex), when the handshake got that far. */
  readonly serverSerial: string | undefined;
}

/** `openssl s_client` (TLS 1.3) from `pod` to host:port, sending `input`, reading until the server closes. */
export async function sClient(pod: Pod, host: string, port: number, o: SClientOptions): Promise<SClientResult> {
  const args = ['openssl', 's_client', '-connect', `${host}:${port}`, '-tls1_3', '-ign_eof', '-servername', 'api'];
  if (o.alpn !== undefined) args.push('-alpn', o.alpn);
  if (o.cert !== undefined) args.push('-cert', o.cert);
  if (o.key !== undefined) args.push('-key', o.key);
  if (o.caFile !== undefined) args.push('-CAfile', o.caFile);
  const r = await pod.exec(args, { input: o.input, timeoutMs: 20_000 });
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
  return { ...r, serverSerial: pem === undefined ? undefined : new X509Certificate(pem).serialNumber.toLowerCase() };
}

export function httpGet(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n`;
}

// === capture on a pod's veth ===

export interface Capture {
  /** The TCP segments captured so far (packets are written as they arrive, in order). */
  segments(): TcpSegment[];
  /** Stop tcpdump and return the pcap file's bytes. */
  stop(): Promise<Buffer>;
}

/**
 * tcpdump on `pod`'s eth0 (its end of the veth to the other pods) into `file`; resolves once it is listening. Packets
 * go to the file one by one as they arrive (--immediate-mode, -U): once a packet is in the file, every packet
 * captured before it is too, so a test waits for the last packet it expects (see segments()) before stop().
 */
export async function startCapture(pod: Pod, file: string, filter: readonly string[]): Promise<Capture> {
  const child = pod.spawn(['tcpdump', '-i', 'eth0', '-nn', '--immediate-mode', '-U', '-s', '0', '-Z', 'root', '-w', file, ...filter]);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exited = new Promise<void>((res) => { child.once('exit', () => { res(); }); });
  await waitFor('tcpdump listening', async () => {
    if (child.exitCode !== null) throw new Error(`tcpdump exited ${child.exitCode}: ${stderr}`);
    return stderr.includes('listening on') ? true : undefined;
  }, { timeoutMs: 10_000, intervalMs: 50 });
  return {
    segments: () => pcapTcpSegments(readFileSync(file)),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      const t = setTimeout(() => { child.kill('SIGKILL'); }, 5_000);
      await exited;
      clearTimeout(t);
      return readFileSync(file);
    },
  };
}

export interface TcpSegment {
  readonly src: string;
  readonly sport: number;
  readonly dst: string;
  readonly dport: number;
  readonly payload: Buffer;
}

/** The IPv4 TCP segments of a pcap file of Ethernet frames (what tcpdump -w writes for a veth). */
export function pcapTcpSegments(pcap: Buffer): TcpSegment[] {
  assert.ok(pcap.length >= 24, 'a pcap file has a 24-byte header');
  const magic = pcap.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  assert.ok(le || pcap.readUInt32BE(0) === 0xa1b2c3d4 || pcap.readUInt32BE(0) === 0xa1b23c4d, `pcap magic ${magic.toString(16)}`);
  const u32 = (off: number): number => (le ? pcap.readUInt32LE(off) : pcap.readUInt32BE(off));
  assert.equal(u32(20), 1, 'link type Ethernet');
  const out: TcpSegment[] = [];
  let off = 24;
  while (off + 16 <= pcap.length) {
    const incl = u32(off + 8);
    if (off + 16 + incl > pcap.length) break; // a record still being written
    const frame = pcap.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    if (frame.length < 34 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    const ihl = (ip[0]! & 0x0f) * 4;
    if (ip[9] !== 6) continue;
    const total = Math.min(ip.readUInt16BE(2), ip.length);
    const tcp = ip.subarray(ihl, total);
    if (tcp.length < 20) continue;
    const doff = (tcp[12]! >> 4) * 4;
    out.push({
      src: [...ip.subarray(12, 16)].join('.'), dst: [...ip.subarray(16, 20)].join('.'),
      sport: tcp.readUInt16BE(0), dport: tcp.readUInt16BE(2), payload: tcp.subarray(doff),
    });
  }
  return out;
}

/** The bytes each way between client and server:port in a capture (all connections, in capture order). */
export function hopBytes(segments: readonly TcpSegment[], client: string, server: string, port: number): { up: Buffer; down: Buffer } {
  const up = segments.filter((s) => s.src === client && s.dst === server && s.dport === port).map((s) => s.payload);
  const down = segments.filter((s) => s.src === server && s.sport === port && s.dst === client).map((s) => s.payload);
  return { up: Buffer.concat(up), down: Buffer.concat(down) };
}

// === mesh-tools ===

export interface MeshTool {
  readonly child: ChildProcess;
  lines(): string[];
  /** The first JSON line the tool printed. */
  json<T>(timeoutMs?: number): Promise<T>;
  /** SIGTERM, then its JSON result. */
  stop<T>(timeoutMs?: number): Promise<T>;
}

/** Start a mesh-tools server or long-running client in `pod`; resolves once it printed "ready". */
export async function startMeshTool(pod: Pod, toolArgs: readonly string[]): Promise<MeshTool> {
  const child = pod.spawn([process.execPath, MESH_TOOLS, ...toolArgs]);
  const lines = outputLines(child);
  await waitFor(`${toolArgs[0] ?? 'tool'} in ${pod.name} to print "ready"`, async () => {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${lines.join('\n')}`);
    return lines.includes('ready') ? true : undefined;
  }, { timeoutMs: 15_000, intervalMs: 50 });
  const json = <T>(timeoutMs = 30_000): Promise<T> => waitFor(`a result from ${toolArgs[0] ?? 'tool'}`, async () => {
    const line = lines.find((l) => l.startsWith('{'));
    return line === undefined ? undefined : JSON.parse(line) as T;
  }, { timeoutMs, intervalMs: 50 });
  return {
    child,
    lines: () => [...lines],
    json,
    stop: <T>(timeoutMs = 30_000): Promise<T> => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return json<T>(timeoutMs);
    },
  };
}

export interface ExchangeResult {
  readonly reply: string;
  readonly end: boolean;
  readonly error?: string;
}

/** mesh-tools exchange: one TCP connection from `pod` (from `source` when given), TEXT sent, the whole reply read. */
export async function tcpExchange(pod: Pod, host: string, port: number, text: string, source?: string): Promise<ExchangeResult> {
  const r = await pod.exec([process.execPath, MESH_TOOLS, 'exchange', host, String(port), text, ...(source === undefined ? [] : [source])], { timeoutMs: 20_000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line !== undefined, `exchange ${host}:${port} printed no result (exit ${r.code}): ${r.stderr}`);
  return JSON.parse(line) as ExchangeResult;
}

/** The records of the proxy's log from index `from` on that match, once there are at least `count` (bounded wait). */
export async function logsSince(proxy: RunningProxy, from: number, what: string, match: (r: LogRecord) => boolean, count: number): Promise<LogRecord[]> {
  return waitFor(`log: ${what}`, async () => {
    const found = logRecords(proxy).slice(from).filter(match);
    return found.length >= count ? found : undefined;
  }, { timeoutMs: 10_000, intervalMs: 50 });
}

/** The "served PORT METHOD PATH" lines of an http-echo app, as [port, method, path]. */
export function served(app: MeshTool): [number, string, string][] {
  return app.lines().filter((l) => l.startsWith('served ')).map((l) => {
    const [, port = '0', method = '', path = ''] = l.split(' ');
    return [Number(port), method, path];
  });
}

/** What http-echo answers. */
export interface EchoView {
  readonly tag: string;
  readonly port: number;
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly secret: string;
}
