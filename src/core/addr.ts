// Address helpers shared by the rule planner and the proxy: CIDRs, port ranges, host:port.
import { isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 4 | 6;

export interface Cidr {
  readonly family: IpFamily;
  /** Canonical text, e.g. "10.0.0.0/8" or "fd00::/8" (host bits must be zero). */
  readonly text: string;
  readonly prefix: number;
}

export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/** The original destination of a redirected connection (address in canonical inet_ntop text, never v4-mapped). */
export interface OriginalDst {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

function parsePortNumber(s: string): number | undefined {
  if (!/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return isPort(n) ? n : undefined;
}

/** "8080" or "8000-8100" (also "8000:8100"). */
export function parsePortRange(text: string): PortRange | undefined {
  const t = text.trim();
  const m = /^(\d+)\s*[-:]\s*(\d+)$/.exec(t);
  if (m !== null) {
    const from = parsePortNumber(m[1] ?? '');
    const to = parsePortNumber(m[2] ?? '');
    if (from === undefined || to === undefined || from > to) return undefined;
    return { from, to };
  }
  const p = parsePortNumber(t);
  return p === undefined ? undefined : { from: p, to: p };
}

/** Merge overlapping/adjacent ranges and sort them. */
export function normalizePortRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a.from - b.from || a.to - b.to);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.from <= last.to + 1) {
      out[out.length - 1] = { from: last.from, to: Math.max(last.to, r.to) };
    } else {
      out.push({ ...r });
    }
  }
  return out;
}

export function formatPortRange(r: PortRange, sep = '-'): string {
  return r.from === r.to ? String(r.from) : `${r.from}${sep}${r.to}`;
}

function ipv4ToBigInt(a: string): bigint {
  return a.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function expandIpv6(a: string): number[] | undefined {
  let text = a;
  // An embedded IPv4 tail ("::ffff:1.2.3.4") becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null && v4[1] !== undefined) {
    const n = Number(ipv4ToBigInt(v4[1]));
    text = `${text.slice(0, -v4[1].length)}${((n >>> 16) & 0xffff).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : (halves[0] ?? '').split(':');
  const tail = halves.length === 2 ? (halves[1] === '' ? [] : (halves[1] ?? '').split(':')) : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  if (fill < 0) return undefined;
  const parts = [...head, ...Array<string>(fill).fill('0'), ...tail];
  if (parts.length !== 8) return undefined;
  return parts.map((p) => parseInt(p, 16));
}

function ipv6ToBigInt(a: string): bigint {
  const parts = expandIpv6(a) ?? [];
  return parts.reduce((acc, h) => (acc << 16n) | BigInt(h), 0n);
}

function bigIntToIpv4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
}

function bigIntToIpv6(n: bigint): string {
  const hextets: number[] = [];
  for (let i = 7; i >= 0; i--) hextets.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero hextets.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (hextets[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && hextets[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = hextets.map((h) => h.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

/** Canonical text of an IP address ("::ffff:0:1" style compression for v6). */
export function canonicalIp(address: string): string | undefined {
  // node:net's isIPv4 accepts only the canonical dotted-decimal form (no leading zeros, no spaces): already canonical.
  if (isIPv4(address)) return address;
  if (isIPv6(address)) return bigIntToIpv6(ipv6ToBigInt(address));
  return undefined;
}

/** "10.0.0.0/8", "10.1.2.3" (= /32), "fd00::/8". Host bits must be zero, like iptables prints them. */
export function parseCidr(text: string): Cidr | { error: string } {
  const t = text.trim();
  const [addr = '', prefixText, extra] = t.split('/');
  if (extra !== undefined) return { error: 'more than one "/"' };
  const family: IpFamily | undefined = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : undefined;
  if (family === undefined) return { error: `"${addr}" is not an IPv4 or IPv6 address` };
  const bits = family === 4 ? 32 : 128;
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
      return { error: `prefix length must be 0-${bits}` };
    }
    prefix = Number(prefixText);
  }
  const value = family === 4 ? ipv4ToBigInt(addr) : ipv6ToBigInt(addr);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((value & hostMask) !== 0n) {
    const net = value & ~hostMask;
    const netText = family === 4 ? bigIntToIpv4(net) : bigIntToIpv6(net);
    return { error: `host bits are set; did you mean ${netText}/${prefix}?` };
  }
  const canon = family === 4 ? bigIntToIpv4(value) : bigIntToIpv6(value);
  return { family, prefix, text: `${canon}/${prefix}` };
}

/** "127.0.0.1:15000", "[::1]:15000", "localhost:15000". */
export function parseHostPort(text: string): HostPort | undefined {
  const t = text.trim();
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(t);
  if (bracket !== null) {
    const port = parsePortNumber(bracket[2] ?? '');
    if (!isIPv6(bracket[1] ?? '') || port === undefined) return undefined;
    return { host: bracket[1] ?? '', port };
  }
  const i = t.lastIndexOf(':');
  if (i <= 0) return undefined;
  const host = t.slice(0, i);
  if (host.includes(':')) return undefined; // bare IPv6 needs brackets
  const port = parsePortNumber(t.slice(i + 1));
  if (port === undefined || !/^[A-Za-z0-9.-]+$/.test(host)) return undefined;
  return { host, port };
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** "::ffff:10.0.0.1" -> "10.0.0.1"; anything else unchanged. */
export function unmapIpv4(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/**
 * Whether `address` lies in `cidr` ("10.0.0.0/8", "fd00::/8", a bare address = /32 or /128; host bits may be set, as
 * in iptables-save output they never are). False across families; undefined when either text is not valid.
 */
export function cidrContains(cidr: string, address: string): boolean | undefined {
  const [net = '', prefixText] = cidr.split('/');
  const addr = unmapIpv4(address);
  const family: IpFamily | undefined = isIPv4(net) ? 4 : isIPv6(net) ? 6 : undefined;
  const addrFamily: IpFamily | undefined = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : undefined;
  if (family === undefined || addrFamily === undefined) return undefined;
  if (family !== addrFamily) return false;
  const bits = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) return undefined;
  const toBig = family === 4 ? ipv4ToBigInt : ipv6ToBigInt;
  const shift = BigInt(bits - prefix);
  return (toBig(net) >> shift) === (toBig(addr) >> shift);
}
