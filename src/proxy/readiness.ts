// Readiness: what GET /ready answers, from the proxy's lifecycle state and the redirect probes
// (src/proxy/redirect-prober.ts). Pure: the decision, its reason text and the JSON of /stats `readiness`; and the
// reading of the kernel's routing table the outbound probe needs to tell "not redirected" from "cannot be probed".
//
// Ready means: the capture listeners are bound, the configuration is loaded (the proxy is past `starting`), it is
// not draining, and (unless readiness_probe_interval = off) every redirect probe that can run passed its last round.
import type { ProxyState } from '../admin/admin-server.js';
import type { ProbeStateJson, ReadinessJson } from '../admin/stats-json.js';

export type { ReadinessJson } from '../admin/stats-json.js';

/**
 * The probes. `loopback-ipv4` / `loopback-ipv6`: the proxy's own connection to 127.0.0.6 / ::6 must come back to its
 * inbound listener (nat OUTPUT -> REMORA_OUTPUT -> REMORA_IN_REDIRECT). `outbound`: a connection of a helper process
 * running as another uid (the app's path) to readiness_probe_target must reach the outbound listener
 * (nat OUTPUT -> REMORA_OUTPUT -> REMORA_REDIRECT).
 */
export const PROBE_NAMES = ['loopback-ipv4', 'loopback-ipv6', 'outbound'] as const;
export type ProbeName = (typeof PROBE_NAMES)[number];

/**
 * pending: no round finished yet. ok / failed: the last round's result. unavailable: this probe cannot run here
 * (no helper uid, no route to the target, no IPv6 rules); it does not hold readiness back.
 */
export type ProbeState = ProbeStateJson;

export interface ProbeStatus {
  readonly state: ProbeState;
  /** What the last round found, in words ("redirected to the inbound listener :15006", the failure, why unavailable). */
  readonly detail: string;
  /** When the last round of this probe ended (ms since the epoch). */
  readonly at?: number | undefined;
  /** Rounds that passed and failed since start. */
  readonly passed: number;
  readonly failed: number;
}

export interface Readiness {
  readonly ready: boolean;
  /** "ready", "starting", "draining", or "not ready: ..." with the failed probe and why. The body of /ready. */
  readonly reason: string;
}

export interface ReadinessInputs {
  readonly lifecycle: ProxyState;
  /** readiness_probe_interval is not off. */
  readonly probing: boolean;
  readonly probes: ReadonlyMap<ProbeName, ProbeStatus>;
}

export function evaluateReadiness(i: ReadinessInputs): Readiness {
  if (i.lifecycle === 'starting') return { ready: false, reason: 'starting' };
  if (i.lifecycle === 'draining' || i.lifecycle === 'stopped') return { ready: false, reason: 'draining' };
  if (!i.probing) return { ready: true, reason: 'ready' };
  const failed: string[] = [];
  let pending = false;
  for (const name of PROBE_NAMES) {
    const p = i.probes.get(name);
    if (p === undefined) continue;
    if (p.state === 'failed') failed.push(`${name} redirect probe failed: ${p.detail}`);
    else if (p.state === 'pending') pending = true;
  }
  if (failed.length > 0) return { ready: false, reason: `not ready: ${failed.join('; ')}` };
  if (pending) return { ready: false, reason: 'not ready: waiting for the first redirect probe' };
  return { ready: true, reason: 'ready' };
}

export function readinessJson(r: Readiness, since: number, intervalMs: number, probes: ReadonlyMap<ProbeName, ProbeStatus>): ReadinessJson {
  const out: Record<string, ReadinessJson['probes'][string]> = {};
  for (const name of PROBE_NAMES) {
    const p = probes.get(name);
    if (p === undefined) continue;
    out[name] = {
      state: p.state, detail: p.detail, ...(p.at === undefined ? {} : { lastAt: new Date(p.at).toISOString() }),
      passed: p.passed, failed: p.failed,
    };
  }
  return { ready: r.ready, reason: r.reason, since: new Date(since).toISOString(), probeIntervalMs: intervalMs, probes: out };
}

/**
 * For the metrics: the readiness decision and the probes' state, read on demand (a gauge `remora_ready`, counters of
 * probe rounds by result). Implemented by the running proxy (`Proxy.readiness()`).
 */
export interface ReadinessSource {
  readiness(): ReadinessJson;
}

// === routes: can the kernel route to the probe target at all? ===

function ipv4ToInt(address: string): number | undefined {
  const parts = address.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

/** /proc/net/route stores addresses as host-order (little-endian on the machines we run on) hex. */
function procHexToInt(hex: string): number | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  const b = Buffer.from(hex, 'hex');
  return b.readUInt32LE(0);
}

/** Whether the main IPv4 routing table (the text of /proc/net/route) has a route covering `address`. */
export function hasIpv4Route(procNetRoute: string, address: string): boolean {
  const a = ipv4ToInt(address);
  if (a === undefined) return false;
  for (const line of procNetRoute.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const dest = procHexToInt(f[1] ?? '');
    const flags = Number.parseInt(f[3] ?? '0', 16);
    const mask = procHexToInt(f[7] ?? '');
    if (dest === undefined || mask === undefined || (flags & 1) === 0) continue; // RTF_UP
    if (((a & mask) >>> 0) === ((dest & mask) >>> 0)) return true;
  }
  return false;
}

function ipv6Bytes(address: string): Buffer | undefined {
  const [head = '', tail] = address.split('::');
  if (address.split('::').length > 2) return undefined;
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  if (tail === undefined && h.length !== 8) return undefined;
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(Number.parseInt(g, 16), i * 2));
  return b;
}

/** Whether /proc/net/ipv6_route has a route (not an unreachable one) covering `address`. */
export function hasIpv6Route(procNetIpv6Route: string, address: string): boolean {
  const a = ipv6Bytes(address);
  if (a === undefined) return false;
  for (const line of procNetIpv6Route.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const dest = Buffer.from(f[0] ?? '', 'hex');
    const plen = Number.parseInt(f[1] ?? '', 16);
    const flags = Number.parseInt(f[8] ?? '0', 16);
    if (dest.length !== 16 || !Number.isInteger(plen) || (flags & 1) === 0 || (flags & 0x200) !== 0) continue; // RTF_UP, not RTF_REJECT
    let match = true;
    for (let bit = 0; bit < plen && match; bit += 8) {
      const m = plen - bit >= 8 ? 0xff : (0xff << (8 - (plen - bit))) & 0xff;
      if (((a[bit / 8] ?? 0) & m) !== ((dest[bit / 8] ?? 0) & m)) match = false;
    }
    if (match) return true;
  }
  return false;
}
