// What `remora explain` asks about: a destination (and, for an HTTP request, its host, path, method and headers; for
// the rules, the connecting uid/gid; for inbound authorization, the client's address and identity). One parser for
// the admin API's query string (GET /debug/explain?dst=...) and the command's flags, so both refuse the same
// mistakes with the same words. Pure.
import { isIPv4, isIPv6 } from 'node:net';
import type { ConfigIssue } from '../../config/config-issue.js';
import { canonicalIp, formatHostPort, type IpFamily } from '../../core/addr.js';
import { parseSpiffeId } from '../../core/spiffe.js';

export type ExplainDirection = 'outbound' | 'inbound';

export interface ExplainQuery {
  /** outbound: the pod's app connects to dst; inbound: a client outside the pod connects to dst (the pod). */
  readonly direction: ExplainDirection;
  readonly dst: { readonly family: IpFamily; readonly address: string; readonly port: number };
  /** HTTP request attributes; any of them makes the query an HTTP request. */
  readonly host: string | undefined;
  readonly path: string | undefined;
  readonly method: string | undefined;
  readonly headers: readonly (readonly [name: string, value: string])[];
  /** The uid/gid of the connecting process (outbound rules); undefined: an application uid. */
  readonly uid: number | undefined;
  readonly gid: number | undefined;
  /** The client's address (inbound: authorization from_cidrs, rules -s). */
  readonly src: string | undefined;
  /** The client's SPIFFE ID, as if it came over mesh mTLS (inbound authorization). */
  readonly identity: string | undefined;
}

/** The query's parameter names (and the command's flags, --NAME). */
export const EXPLAIN_PARAMS = ['dst', 'direction', 'host', 'path', 'method', 'header', 'uid', 'gid', 'src', 'identity'] as const;
export type ExplainParam = (typeof EXPLAIN_PARAMS)[number];

/** True when the query describes an HTTP request (some HTTP attribute was given). */
export function isHttpQuery(q: ExplainQuery): boolean {
  return q.host !== undefined || q.path !== undefined || q.method !== undefined || q.headers.length > 0;
}

function parseDst(text: string): ExplainQuery['dst'] | string {
  const bracket = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text);
  const plain = /^([^:[\]]+):(\d{1,5})$/.exec(text);
  const m = bracket ?? plain;
  const expected = 'IP:PORT (an IPv4 address, or [IPv6]:PORT), port 1-65535';
  if (m === null) return expected;
  const address = m[1] ?? '';
  const port = Number(m[2]);
  if (!(isIPv4(address) || (bracket !== null && isIPv6(address))) || port < 1 || port > 65535) return expected;
  const canon = canonicalIp(address) ?? address;
  return { family: isIPv4(canon) ? 4 : 6, address: canon, port };
}

function parseId(text: string): number | undefined {
  return /^\d{1,10}$/.test(text) && Number(text) <= 4_294_967_294 ? Number(text) : undefined;
}

export type ParsedExplainQuery = { readonly ok: true; readonly query: ExplainQuery } | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/**
 * Parse the parameters (each NAME -> the values given; `header` may repeat, the others may not). `source` names
 * where they came from in issues ("command line" / "query string"), `keyOf` how a parameter is written there.
 */
export function parseExplainQuery(
  params: ReadonlyMap<string, readonly string[]>, source: string, keyOf: (name: string) => string,
): ParsedExplainQuery {
  const issues: ConfigIssue[] = [];
  const issue = (name: string, expected: string, value?: string): void => {
    issues.push({ source, key: keyOf(name), ...(value === undefined ? {} : { value }), expected });
  };
  for (const [name, values] of params) {
    if (!(EXPLAIN_PARAMS as readonly string[]).includes(name)) issue(name, `a known parameter (${EXPLAIN_PARAMS.join(', ')})`);
    else if (name !== 'header' && values.length > 1) issue(name, 'once');
  }
  const one = (name: ExplainParam): string | undefined => params.get(name)?.[0];

  let dst: ExplainQuery['dst'] | undefined;
  const dstText = one('dst');
  if (dstText === undefined) issue('dst', 'IP:PORT (required)');
  else {
    const d = parseDst(dstText.trim());
    if (typeof d === 'string') issue('dst', d, dstText);
    else dst = d;
  }
  const directionText = one('direction') ?? 'outbound';
  if (directionText !== 'outbound' && directionText !== 'inbound') issue('direction', 'outbound or inbound', directionText);
  const direction: ExplainDirection = directionText === 'inbound' ? 'inbound' : 'outbound';

  const host = one('host');
  if (host !== undefined && (host === '' || /[\s/]/.test(host))) issue('host', 'a host name or host:port (the Host header / SNI)', host);
  const path = one('path');
  if (path !== undefined && (!path.startsWith('/') || /\s/.test(path))) issue('path', 'a path starting with "/" (a query string may follow "?")', path);
  const method = one('method');
  if (method !== undefined && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(method)) issue('method', 'an HTTP method token (GET, POST, ...)', method);
  const headers: (readonly [string, string])[] = [];
  for (const h of params.get('header') ?? []) {
    const colon = h.indexOf(':');
    const name = colon < 0 ? '' : h.slice(0, colon).trim();
    if (colon < 0 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) issue('header', '"NAME: VALUE"', h);
    else headers.push([name.toLowerCase(), h.slice(colon + 1).trim()]);
  }
  const idOf = (name: 'uid' | 'gid'): number | undefined => {
    const text = one(name);
    if (text === undefined) return undefined;
    const id = parseId(text);
    if (id === undefined) issue(name, 'a numeric id', text);
    return id;
  };
  const uid = idOf('uid');
  const gid = idOf('gid');
  const srcText = one('src');
  let src: string | undefined;
  if (srcText !== undefined) {
    src = canonicalIp(srcText.trim());
    if (src === undefined) issue('src', 'an IPv4 or IPv6 address', srcText);
  }
  const idText = one('identity');
  let identity: string | undefined;
  if (idText !== undefined) {
    const p = parseSpiffeId(idText, true);
    if (p.ok) identity = p.value.id;
    else issue('identity', p.expected, idText);
  }
  if (direction === 'outbound' && (idText !== undefined || srcText !== undefined)) {
    issue('direction', 'inbound when src or identity is given (they describe a client connecting to this pod)', directionText);
  }
  if (direction === 'inbound' && (one('uid') !== undefined || one('gid') !== undefined)) {
    issue('direction', 'outbound when uid or gid is given (they describe a process of this pod)', directionText);
  }
  if (issues.length > 0 || dst === undefined) return { ok: false, issues };
  return {
    ok: true,
    query: { direction, dst, host, path, method, headers, uid, gid, src, identity },
  };
}

/** The query as URL parameters (what the command sends to the admin API). */
export function explainQueryString(q: ExplainQuery): string {
  const p = new URLSearchParams();
  p.set('dst', formatHostPort(q.dst.address, q.dst.port));
  p.set('direction', q.direction);
  if (q.host !== undefined) p.set('host', q.host);
  if (q.path !== undefined) p.set('path', q.path);
  if (q.method !== undefined) p.set('method', q.method);
  for (const [n, v] of q.headers) p.append('header', `${n}: ${v}`);
  if (q.uid !== undefined) p.set('uid', String(q.uid));
  if (q.gid !== undefined) p.set('gid', String(q.gid));
  if (q.src !== undefined) p.set('src', q.src);
  if (q.identity !== undefined) p.set('identity', q.identity);
  return p.toString();
}

/** URLSearchParams -> the map parseExplainQuery reads. */
export function paramsOf(search: URLSearchParams): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [k, v] of search) {
    const list = out.get(k);
    if (list === undefined) out.set(k, [v]);
    else list.push(v);
  }
  return out;
}
