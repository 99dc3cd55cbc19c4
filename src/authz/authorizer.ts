// The authorization decision (issue 11): [authorization NAME] policies (AuthorizationSpec, parsed by
// src/config/authorization-config.ts) compiled once per config into closures; checkConnection() decides an opaque TCP
// connection, checkRequest() an HTTP request. Pure: no I/O, no clock, no logging (the caller counts and logs the
// decision with the policy's name). User-facing text: docs/authorization.md.
//
// Semantics (Istio AuthorizationPolicy; one section = one policy with one rule):
//   1. Deny policies, in file order: the first that matches denies     -> { allowed: false, reason: 'denied', policy }.
//   2. When at least one allow policy exists: the first that matches    -> { allowed: true, reason: 'allowed', policy };
//      none matches                                                      -> { allowed: false, reason: 'no-allow-matched',
//                                                                           policy: undefined }.
//   3. No allow policy: allowed by default                              -> { allowed: true, reason: 'allowed',
//                                                                           policy: undefined } when deny policies exist,
//                                                                           reason 'no-policies' when there is no allow
//                                                                           and no deny policy (none, or audit only).
//   Audit policies never change the decision; the names of all that match (file order) are in `audited`, whatever
//   the decision.
//   A policy matches when every condition it has holds; the values of one condition are alternatives.
//
// TCP (checkConnection) and the HTTP-only keys (methods, paths, hosts, headers), fail closed both ways as in Istio:
// an allow policy that has any of them never matches a TCP connection ("smaller allow"); deny and audit policies
// ignore them on TCP ("wider deny": a deny policy with only HTTP-only keys denies every TCP connection;
// parseAuthorizations warns when such a deny has no to_ports).
//
// Attributes, and how they are compared:
//   * from_identities / from_namespaces: the peer's SPIFFE ID as the mTLS layer verified it, canonical (scheme and
//     trust domain lower-case, as parseSpiffeId returns it); undefined (plaintext) never matches them, not even "*".
//     The namespace is read from an Istio-shaped ID (spiffe://TD/ns/NS/sa/SA); other IDs have none.
//   * from_cidrs: the source address; an IPv4-mapped IPv6 address (::ffff:10.0.0.1) is the IPv4 address, and a CIDR
//     written inside ::ffff:0:0/96 is the IPv4 CIDR. Other IPv6 CIDRs (::/0 included) match only IPv6 sources.
//   * to_ports: the connection's original destination port.
//   * methods: exact (case-sensitive, as HTTP says).
//   * paths: the path WITHOUT the query string (the caller strips "?..."), case-sensitive. Because this is an
//     authorization boundary, a path that is not in normal form (percent-encoded unreserved characters, "." / ".."
//     segments, "//") is also compared in normal form (RFC 3986 6.2.2 plus merged slashes): a deny or audit path
//     condition holds when the path as received OR its normal form matches, an allow path condition only when BOTH
//     match. The request is not rewritten.
//   * hosts: the :authority / Host without its port, lower-case, a trailing dot dropped; an empty host matches no
//     pattern (not even "*").
//   * headers: header(name) gets the lower-case name and returns the value, repeated headers joined with ", " (as
//     Node joins them); undefined = absent, which no pattern matches (not even "*"). The entries of `headers` are
//     alternatives. For deny and audit a pattern also holds when one comma-separated element of the value matches
//     (a repeated header cannot hide a denied value); for allow the whole value must match.
//
// Cost: a check runs the compiled closures of the policies in order and returns a frozen, preallocated decision
// unless an audit policy matched (then one small object). Per-call parsing (source address, namespace, host, normal
// path) is memoised on the last input string, so requests of one connection parse the address once.
import type { PortRange } from '../core/addr.js';
import { namespaceOf } from '../core/spiffe.js';
import type { AuthorizationSpec, HeaderMatch, StringMatch } from '../config/authorization-spec.js';

export interface ConnectionAttributes {
  /** The peer's SPIFFE ID from mTLS (canonical), undefined for plaintext. */
  readonly peerIdentity: string | undefined;
  /** The source address as the socket reports it ("10.0.0.1", "fd00::1", "::ffff:10.0.0.1"). */
  readonly sourceIp: string;
  /** The original destination port of the inbound connection. */
  readonly destinationPort: number;
}

export interface RequestAttributes extends ConnectionAttributes {
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  /** :authority or Host as received ("" when absent); the port, case and a trailing dot do not matter. */
  readonly host: string;
  /** The value of a header by lower-case name (repeated headers joined with ", "), undefined when absent. */
  header(name: string): string | undefined;
}

/**
 * 'no-policies': no allow and no deny policy (allowed). 'denied': a deny policy matched (`policy`).
 * 'allowed': an allow policy matched (`policy`), or no allow policy exists and no deny matched (`policy` undefined).
 * 'no-allow-matched': allow policies exist and none matched (denied, `policy` undefined).
 */
export type AuthzReason = 'no-policies' | 'denied' | 'allowed' | 'no-allow-matched';

export interface AuthzDecision {
  readonly allowed: boolean;
  /** The policy that decided: the matching deny, or the matching allow; undefined for default outcomes. */
  readonly policy: string | undefined;
  readonly reason: AuthzReason;
  /** Names of the audit policies that matched, in file order (often the shared empty array). */
  readonly audited: readonly string[];
}

export interface Authorizer {
  /** False when there is no policy at all: callers may skip the checks (every decision would be 'no-policies'). */
  readonly hasPolicies: boolean;
  /** True when some decision can be a denial (an allow or a deny policy exists). */
  readonly enforces: boolean;
  /** An opaque TCP connection (not parsed as HTTP). */
  checkConnection(a: ConnectionAttributes): AuthzDecision;
  /** One HTTP request. */
  checkRequest(a: RequestAttributes): AuthzDecision;
  /** checkConnection() with every policy's own verdict, for `remora explain` (not on the data path). */
  explainConnection(a: ConnectionAttributes): AuthzExplanation;
  /** checkRequest() with every policy's own verdict, for `remora explain`. */
  explainRequest(a: RequestAttributes): AuthzExplanation;
}

/** One policy's verdict on a connection or request, in file order. */
export interface PolicyVerdict {
  readonly name: string;
  readonly action: 'allow' | 'deny' | 'audit';
  readonly matched: boolean;
  /** Why a policy cannot match (an allow policy with HTTP-only keys, on TCP). */
  readonly note?: string;
}

export interface AuthzExplanation {
  readonly decision: AuthzDecision;
  readonly summary: string;
  readonly policies: readonly PolicyVerdict[];
}

type Check<A> = (a: A) => boolean;
type Mode = 'allow' | 'deny';

const EMPTY: readonly string[] = Object.freeze([]);

function decision(allowed: boolean, reason: AuthzReason, policy: string | undefined): AuthzDecision {
  return Object.freeze({ allowed, policy, reason, audited: EMPTY });
}

const NO_POLICIES = decision(true, 'no-policies', undefined);
const ALLOWED_BY_DEFAULT = decision(true, 'allowed', undefined);
const NO_ALLOW_MATCHED = decision(false, 'no-allow-matched', undefined);

/** One line for logs: "denied by policy deny-ext", "no allow policy matched", ... */
export function describeDecision(d: AuthzDecision): string {
  const audited = d.audited.length > 0 ? ` (audited by ${d.audited.join(', ')})` : '';
  switch (d.reason) {
    case 'denied': return `denied by policy ${d.policy ?? '?'}${audited}`;
    case 'no-allow-matched': return `denied: no allow policy matched${audited}`;
    case 'allowed': return `${d.policy === undefined ? 'allowed: no allow policy, no deny matched' : `allowed by policy ${d.policy}`}${audited}`;
    case 'no-policies': return `allowed: no policies${audited}`;
  }
}

// ---- strings ----

const TRUE = (): boolean => true;

/** exact / prefix / suffix / any alternatives as one predicate (presence is the caller's business). */
export function compileStringMatches(list: readonly StringMatch[]): (s: string) => boolean {
  if (list.some((m) => m.kind === 'any')) return TRUE;
  const exact = new Set(list.filter((m) => m.kind === 'exact').map((m) => m.value));
  const prefixes = list.filter((m) => m.kind === 'prefix').map((m) => m.value);
  const suffixes = list.filter((m) => m.kind === 'suffix').map((m) => m.value);
  if (prefixes.length === 0 && suffixes.length === 0) {
    if (exact.size === 1) {
      const only = [...exact][0] as string;
      return (s) => s === only;
    }
    return (s) => exact.has(s);
  }
  return (s) => {
    if (exact.has(s)) return true;
    for (let i = 0; i < prefixes.length; i++) if (s.startsWith(prefixes[i] as string)) return true;
    for (let i = 0; i < suffixes.length; i++) if (s.endsWith(suffixes[i] as string)) return true;
    return false;
  };
}

// ---- addresses ----

const WORDS = new Uint16Array(8);

/** Dotted quad at s[start..] to an unsigned 32-bit number, or -1. */
function parseIpv4At(s: string, start: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else if (c === 46 && digits > 0 && dots < 3) {
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** IPv6 text (with "::", an IPv4 tail, a "%zone") into WORDS; false when it is not IPv6. */
function parseIpv6(text: string): boolean {
  const zone = text.indexOf('%');
  const s = zone >= 0 ? text.slice(0, zone) : text;
  WORDS.fill(0);
  const head: number[] = [];
  const tail: number[] = [];
  let cur = head;
  let seenDouble = false;
  let i = 0;
  if (s.startsWith('::')) {
    seenDouble = true;
    cur = tail;
    i = 2;
    if (s.length === 2) return true;
  }
  while (i < s.length) {
    // One group: hex digits, or a dotted IPv4 tail.
    let j = i;
    let v = 0;
    while (j < s.length && j - i < 5) {
      const h = hexValue(s.charCodeAt(j));
      if (h < 0) break;
      v = v * 16 + h;
      j++;
    }
    if (j < s.length && s.charCodeAt(j) === 46) {
      const v4 = parseIpv4At(s, i);
      if (v4 < 0) return false;
      cur.push((v4 >>> 16) & 0xffff, v4 & 0xffff);
      i = s.length;
      break;
    }
    if (j === i || j - i > 4) return false;
    cur.push(v);
    if (j === s.length) {
      i = j;
      break;
    }
    if (s.charCodeAt(j) !== 58) return false;
    if (s.charCodeAt(j + 1) === 58) {
      if (seenDouble) return false;
      seenDouble = true;
      cur = tail;
      i = j + 2;
      if (i === s.length) break;
    } else {
      i = j + 1;
      if (i === s.length) return false;
    }
  }
  const n = head.length + tail.length;
  if (seenDouble ? n > 7 : n !== 8) return false;
  for (let k = 0; k < head.length; k++) WORDS[k] = head[k] as number;
  for (let k = 0; k < tail.length; k++) WORDS[8 - tail.length + k] = tail[k] as number;
  return true;
}

/** A parsed source address: family 4 (v4 set), 6 (v6 set), or 0 (not an address: matches no CIDR). */
interface Ip {
  family: 0 | 4 | 6;
  v4: number;
  readonly v6: Uint32Array;
}

function parseIpInto(text: string, out: Ip): void {
  const v4 = parseIpv4At(text, 0);
  if (v4 >= 0) {
    out.family = 4;
    out.v4 = v4;
    return;
  }
  if (!parseIpv6(text)) {
    out.family = 0;
    return;
  }
  if (WORDS[0] === 0 && WORDS[1] === 0 && WORDS[2] === 0 && WORDS[3] === 0 && WORDS[4] === 0 && WORDS[5] === 0xffff) {
    out.family = 4;
    out.v4 = ((WORDS[6] as number) * 65536) + (WORDS[7] as number);
    return;
  }
  out.family = 6;
  for (let k = 0; k < 4; k++) out.v6[k] = (((WORDS[2 * k] as number) << 16) | (WORDS[2 * k + 1] as number)) >>> 0;
}

interface Net4 { readonly net: number; readonly mask: number }
interface Net6 { readonly net: Uint32Array; readonly masks: Uint32Array }

function mask32(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

function compileCidrs(cidrs: readonly { readonly text: string; readonly prefix: number }[]): { v4: Net4[]; v6: Net6[] } {
  const v4: Net4[] = [];
  const v6: Net6[] = [];
  const ip: Ip = { family: 0, v4: 0, v6: new Uint32Array(4) };
  for (const c of cidrs) {
    const addr = c.text.slice(0, c.text.lastIndexOf('/'));
    parseIpInto(addr, ip);
    if (ip.family === 4) {
      // A v4 CIDR, or a v6 one inside ::ffff:0:0/96 (parseIpInto unmapped it): prefix counted from bit 96.
      const bits = addr.includes(':') ? c.prefix - 96 : c.prefix;
      if (bits < 0) {
        // ::ffff:0:0/N with N < 96 (covers more than the mapped range): keep it as an IPv6 CIDR.
        pushV6(v6, addr, c.prefix);
        continue;
      }
      const mask = mask32(bits);
      v4.push({ net: (ip.v4 & mask) >>> 0, mask });
    } else if (ip.family === 6) {
      pushV6(v6, addr, c.prefix);
    }
  }
  return { v4, v6 };
}

function pushV6(out: Net6[], addr: string, prefix: number): void {
  if (!parseIpv6(addr)) return;
  const net = new Uint32Array(4);
  const masks = new Uint32Array(4);
  for (let k = 0; k < 4; k++) {
    masks[k] = mask32(prefix - 32 * k);
    net[k] = ((((WORDS[2 * k] as number) << 16) | (WORDS[2 * k + 1] as number)) & (masks[k] as number)) >>> 0;
  }
  out.push({ net, masks });
}

// ---- paths and hosts ----

const UNRESERVED_RE = /^[A-Za-z0-9\-._~]$/;

/**
 * RFC 3986 normal form of an origin-form path: percent-encoded unreserved characters decoded (other escapes
 * upper-cased), "//" merged, "." and ".." segments removed. Returns `path` itself when already normal.
 */
export function normalizePath(path: string): string {
  if (!path.startsWith('/') || (!path.includes('%') && !path.includes('//') && !path.includes('/.'))) return path;
  let p = path.includes('%')
    ? path.replace(/%([0-9A-Fa-f]{2})/g, (m, hex: string) => {
      const ch = String.fromCharCode(parseInt(hex, 16));
      return UNRESERVED_RE.test(ch) ? ch : m.toUpperCase();
    })
    : path;
  p = p.replace(/\/{2,}/g, '/');
  if (!p.includes('/.')) return p;
  const segs = p.split('/');
  const out: string[] = [];
  const last = segs.length - 1;
  for (let i = 1; i <= last; i++) {
    const s = segs[i] as string;
    if (s === '.' || s === '..') {
      if (s === '..') out.pop();
      if (i === last) out.push('');
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}

/** Host for matching: lower-case, without ":port", without a trailing dot ("" stays ""). */
export function normalizeHost(host: string): string {
  let h = host;
  if (h.startsWith('[')) {
    const close = h.indexOf(']');
    if (close > 0) h = h.slice(0, close + 1);
  } else {
    const colon = h.lastIndexOf(':');
    if (colon >= 0 && h.indexOf(':') === colon) h = h.slice(0, colon);
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h.toLowerCase();
}

/** Memo of the last parsed inputs (keyed by the input string, so nesting and interleaving stay correct). */
class Memo {
  ipText: string | undefined = undefined;
  readonly ip: Ip = { family: 0, v4: 0, v6: new Uint32Array(4) };
  idText: string | undefined = undefined;
  ns: string | undefined = undefined;
  hostText: string | undefined = undefined;
  host = '';
  pathText: string | undefined = undefined;
  path = '';

  sourceIp(text: string): Ip {
    if (text !== this.ipText) {
      parseIpInto(text, this.ip);
      this.ipText = text;
    }
    return this.ip;
  }

  namespace(id: string): string | undefined {
    if (id !== this.idText) {
      this.ns = namespaceOf(id);
      this.idText = id;
    }
    return this.ns;
  }

  normalHost(text: string): string {
    if (text !== this.hostText) {
      this.host = normalizeHost(text);
      this.hostText = text;
    }
    return this.host;
  }

  normalPath(text: string): string {
    if (text !== this.pathText) {
      this.path = normalizePath(text);
      this.pathText = text;
    }
    return this.path;
  }
}

// ---- conditions ----

function portCheck(ranges: readonly PortRange[]): Check<ConnectionAttributes> {
  if (ranges.length === 1) {
    const { from, to } = ranges[0] as PortRange;
    return (a) => a.destinationPort >= from && a.destinationPort <= to;
  }
  return (a) => {
    const p = a.destinationPort;
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i] as PortRange;
      if (p >= r.from && p <= r.to) return true;
    }
    return false;
  };
}

function cidrCheck(spec: NonNullable<AuthorizationSpec['fromCidrs']>, memo: Memo): Check<ConnectionAttributes> {
  const { v4, v6 } = compileCidrs(spec);
  return (a) => {
    const ip = memo.sourceIp(a.sourceIp);
    if (ip.family === 4) {
      for (let i = 0; i < v4.length; i++) {
        const n = v4[i] as Net4;
        if (((ip.v4 & n.mask) >>> 0) === n.net) return true;
      }
      return false;
    }
    if (ip.family === 6) {
      const w = ip.v6;
      outer: for (let i = 0; i < v6.length; i++) {
        const n = v6[i] as Net6;
        for (let k = 0; k < 4; k++) {
          if ((((w[k] as number) & (n.masks[k] as number)) >>> 0) !== n.net[k]) continue outer;
        }
        return true;
      }
    }
    return false;
  };
}

function headerCheck(headers: readonly HeaderMatch[], mode: Mode): Check<RequestAttributes> {
  const entries = headers.map((h) => ({ name: h.name, match: compileStringMatches([h.value]) }));
  return (a) => {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as { name: string; match: (s: string) => boolean };
      const value = a.header(e.name);
      if (value === undefined) continue;
      if (e.match(value)) return true;
      if (mode === 'deny' && value.includes(',')) {
        for (const part of value.split(',')) if (e.match(part.trim())) return true;
      }
    }
    return false;
  };
}

interface Conditions {
  readonly l4: Check<ConnectionAttributes>[];
  readonly http: Check<RequestAttributes>[];
}

function conditionsOf(spec: AuthorizationSpec, memo: Memo): Conditions {
  const mode: Mode = spec.action === 'allow' ? 'allow' : 'deny';
  const l4: Check<ConnectionAttributes>[] = [];
  const http: Check<RequestAttributes>[] = [];
  if (spec.toPorts !== undefined) l4.push(portCheck(spec.toPorts));
  if (spec.fromIdentities !== undefined) {
    const m = compileStringMatches(spec.fromIdentities);
    l4.push((a) => a.peerIdentity !== undefined && m(a.peerIdentity));
  }
  if (spec.fromNamespaces !== undefined) {
    const m = compileStringMatches(spec.fromNamespaces);
    l4.push((a) => {
      if (a.peerIdentity === undefined) return false;
      const ns = memo.namespace(a.peerIdentity);
      return ns !== undefined && m(ns);
    });
  }
  if (spec.fromCidrs !== undefined) l4.push(cidrCheck(spec.fromCidrs, memo));
  if (spec.methods !== undefined) {
    const set = new Set(spec.methods);
    http.push((a) => set.has(a.method));
  }
  if (spec.hosts !== undefined) {
    const m = compileStringMatches(spec.hosts);
    http.push((a) => {
      const h = memo.normalHost(a.host);
      return h !== '' && m(h);
    });
  }
  if (spec.paths !== undefined) {
    const m = compileStringMatches(spec.paths);
    http.push(mode === 'allow'
      ? (a) => {
        if (!m(a.path)) return false;
        const n = memo.normalPath(a.path);
        return n === a.path || m(n);
      }
      : (a) => {
        if (m(a.path)) return true;
        const n = memo.normalPath(a.path);
        return n !== a.path && m(n);
      });
  }
  if (spec.headers !== undefined) http.push(headerCheck(spec.headers, mode));
  return { l4, http };
}

function all<A>(checks: readonly Check<A>[]): Check<A> {
  if (checks.length === 0) return TRUE;
  if (checks.length === 1) return checks[0] as Check<A>;
  if (checks.length === 2) {
    const [x, y] = checks as [Check<A>, Check<A>];
    return (a) => x(a) && y(a);
  }
  return (a) => {
    for (let i = 0; i < checks.length; i++) if (!(checks[i] as Check<A>)(a)) return false;
    return true;
  };
}

interface Compiled<A> {
  readonly name: string;
  readonly matches: Check<A>;
  /** The frozen decision when this (deny or allow) policy decides and no audit policy matched. */
  readonly decision: AuthzDecision;
}

interface Table<A> {
  readonly deny: readonly Compiled<A>[];
  readonly allow: readonly Compiled<A>[];
  readonly audit: readonly Compiled<A>[];
}

function decide<A>(t: Table<A>, a: A, hasAllow: boolean, fallback: AuthzDecision): AuthzDecision {
  let d: AuthzDecision | undefined;
  for (let i = 0; i < t.deny.length; i++) {
    const p = t.deny[i] as Compiled<A>;
    if (p.matches(a)) {
      d = p.decision;
      break;
    }
  }
  if (d === undefined) {
    if (hasAllow) {
      d = NO_ALLOW_MATCHED;
      for (let i = 0; i < t.allow.length; i++) {
        const p = t.allow[i] as Compiled<A>;
        if (p.matches(a)) {
          d = p.decision;
          break;
        }
      }
    } else {
      d = fallback;
    }
  }
  if (t.audit.length === 0) return d;
  let audited: string[] | undefined;
  for (let i = 0; i < t.audit.length; i++) {
    const p = t.audit[i] as Compiled<A>;
    if (p.matches(a)) (audited ??= []).push(p.name);
  }
  if (audited === undefined) return d;
  return Object.freeze({ allowed: d.allowed, policy: d.policy, reason: d.reason, audited: Object.freeze(audited) });
}

/** Compile policies (file order) into an Authorizer. Specs are assumed valid (as parseAuthorizations returns them). */
export function compileAuthorizer(policies: readonly AuthorizationSpec[]): Authorizer {
  const memo = new Memo();
  const tcp: { deny: Compiled<ConnectionAttributes>[]; allow: Compiled<ConnectionAttributes>[]; audit: Compiled<ConnectionAttributes>[] } = { deny: [], allow: [], audit: [] };
  const http: { deny: Compiled<RequestAttributes>[]; allow: Compiled<RequestAttributes>[]; audit: Compiled<RequestAttributes>[] } = { deny: [], allow: [], audit: [] };
  for (const spec of policies) {
    const c = conditionsOf(spec, memo);
    const d = spec.action === 'deny' ? decision(false, 'denied', spec.name)
      : spec.action === 'allow' ? decision(true, 'allowed', spec.name)
        : NO_POLICIES; // unused for audit policies
    // HTTP: every condition, L4 first (cheaper).
    http[spec.action].push({ name: spec.name, matches: all<RequestAttributes>([...c.l4, ...c.http]), decision: d });
    // TCP: an allow policy with HTTP-only conditions never matches; deny and audit ignore those conditions.
    if (spec.action !== 'allow' || c.http.length === 0) {
      tcp[spec.action].push({ name: spec.name, matches: all(c.l4), decision: d });
    }
  }
  const byName = new Map<string, { tcp: Compiled<ConnectionAttributes> | undefined; http: Compiled<RequestAttributes> }>();
  for (const action of ['deny', 'allow', 'audit'] as const) {
    for (const c of http[action]) byName.set(c.name, { tcp: tcp[action].find((t) => t.name === c.name), http: c });
  }
  const explain = <A>(a: A, d: AuthzDecision, pick: (e: { tcp: Compiled<ConnectionAttributes> | undefined; http: Compiled<RequestAttributes> }) => Compiled<A> | undefined): AuthzExplanation => ({
    decision: d,
    summary: describeDecision(d),
    policies: policies.map((spec) => {
      const entry = byName.get(spec.name);
      const c = entry === undefined ? undefined : pick(entry);
      if (c === undefined) {
        return { name: spec.name, action: spec.action, matched: false, note: 'an allow policy with HTTP-only keys never matches opaque TCP' };
      }
      return { name: spec.name, action: spec.action, matched: c.matches(a) };
    }),
  });
  const hasAllow = policies.some((p) => p.action === 'allow');
  const hasDeny = policies.some((p) => p.action === 'deny');
  const fallback = hasDeny ? ALLOWED_BY_DEFAULT : NO_POLICIES;
  const hasPolicies = policies.length > 0;
  if (!hasPolicies) {
    return Object.freeze({
      hasPolicies: false,
      enforces: false,
      checkConnection: (): AuthzDecision => NO_POLICIES,
      checkRequest: (): AuthzDecision => NO_POLICIES,
      explainConnection: (): AuthzExplanation => ({ decision: NO_POLICIES, summary: describeDecision(NO_POLICIES), policies: [] }),
      explainRequest: (): AuthzExplanation => ({ decision: NO_POLICIES, summary: describeDecision(NO_POLICIES), policies: [] }),
    });
  }
  return Object.freeze({
    hasPolicies,
    enforces: hasAllow || hasDeny,
    checkConnection: (a: ConnectionAttributes): AuthzDecision => decide(tcp, a, hasAllow, fallback),
    checkRequest: (a: RequestAttributes): AuthzDecision => decide(http, a, hasAllow, fallback),
    explainConnection: (a: ConnectionAttributes): AuthzExplanation => explain(a, decide(tcp, a, hasAllow, fallback), (e) => e.tcp),
    explainRequest: (a: RequestAttributes): AuthzExplanation => explain(a, decide(http, a, hasAllow, fallback), (e) => e.http),
  });
}
