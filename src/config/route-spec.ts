// The route model: what a [route NAME] section defines (match conditions, weighted backends, timeout, retry policy,
// header edits, hash key) and the checks every route must pass. Definitions only: src/config/route-config.ts parses
// them from INI, src/l7/router/route-table.ts compiles them into the table the data path matches against.
import { compileSafeRegex } from '../core/safe-regex.js';

/** Header list as received: names keep their case and order; duplicates stay separate entries. */
export type HeaderList = readonly (readonly [name: string, value: string])[];

export interface HeaderMutations {
  readonly add: HeaderList;
  readonly remove: readonly string[];
}

export interface WeightedBackend {
  /** Service name (a [service NAME] section) and optional subset (endpoint label "subset=v2"). */
  readonly service: string;
  readonly subset?: string;
  readonly weight: number;
}

export interface RetryPolicy {
  /** Total attempts including the first (1 = no retry). */
  readonly maxAttempts: number;
  /** Conditions: 'connect-failure', 'reset' (before any response byte), 'gateway-error' (502/503/504), '5xx',
   *  'retriable-status' (with statuses), 'grpc' (with grpcStatuses). */
  readonly on: readonly ('connect-failure' | 'reset' | 'gateway-error' | '5xx' | 'retriable-status' | 'grpc')[];
  readonly statuses: readonly number[];
  /** gRPC status names/numbers: cancelled, deadline-exceeded, internal, resource-exhausted, unavailable. */
  readonly grpcStatuses: readonly number[];
  readonly perTryTimeoutMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Prefer endpoints not tried yet in this request. */
  readonly preferOtherHosts: boolean;
  /** Also retry requests with non-idempotent methods (POST, PATCH, ...) after they may have reached the upstream
   *  (a response, a reset after bytes were sent, a timeout). Absent = false. Failures before any request byte was
   *  sent are retried for every method regardless. (Added by the policies; optional, so existing literals hold.) */
  readonly retryNonIdempotent?: boolean;
}

export type RetryCondition = RetryPolicy['on'][number];

export const RETRY_CONDITIONS: readonly RetryCondition[] = Object.freeze([
  'connect-failure', 'reset', 'gateway-error', '5xx', 'retriable-status', 'grpc',
]);

/** gRPC status codes by the names used in configuration. */
export const GRPC_STATUS_CODES: Readonly<Record<string, number>> = Object.freeze({
  ok: 0, cancelled: 1, unknown: 2, 'invalid-argument': 3, 'deadline-exceeded': 4, 'not-found': 5,
  'already-exists': 6, 'permission-denied': 7, 'resource-exhausted': 8, 'failed-precondition': 9, aborted: 10,
  'out-of-range': 11, unimplemented: 12, internal: 13, unavailable: 14, 'data-loss': 15, unauthenticated: 16,
});

/**
 * Default retry policy: 2 retries (3 attempts) on connect-failure and reset, 25 ms base / 250 ms max backoff, other
 * hosts preferred. With the safety rule above this retries every method when the request provably never reached
 * the upstream (the keep-alive race of §3.5: a pooled connection closed by the server just as it was reused), and
 * idempotent methods after a reset mid-request. Status-code retries (Istio's default 503 retry) are opt-in per
 * route: a 503 is a response, and retrying it blindly is how POSTs got repeated (istio/istio#13851).
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 3,
  on: Object.freeze(['connect-failure', 'reset'] as const),
  statuses: Object.freeze([]),
  grpcStatuses: Object.freeze([]),
  perTryTimeoutMs: 0,
  backoffBaseMs: 25,
  backoffMaxMs: 250,
  preferOtherHosts: true,
});

/** A policy that never retries. */
export const NO_RETRY_POLICY: RetryPolicy = Object.freeze({ ...DEFAULT_RETRY_POLICY, maxAttempts: 1 });

export type PathMatchSpec = { readonly kind: 'exact' | 'prefix' | 'regex'; readonly value: string };

export type HeaderMatchSpec =
  | { readonly kind: 'exact'; readonly name: string; readonly value: string }
  | { readonly kind: 'regex'; readonly name: string; readonly value: string }
  | { readonly kind: 'present'; readonly name: string }
  | { readonly kind: 'absent'; readonly name: string };

export type QueryMatchSpec =
  | { readonly kind: 'exact'; readonly name: string; readonly value: string }
  | { readonly kind: 'present'; readonly name: string };

/** How a consistent-hash balancer hashes a request: a header, a cookie or the client's address. */
export interface HashOn {
  readonly kind: 'header' | 'cookie' | 'source';
  readonly name?: string;
}

export interface RouteMatchSpec {
  /** Host patterns, any of which must match; [] = any host. Lower-case. */
  readonly hosts: readonly string[];
  readonly path?: PathMatchSpec;
  /** Methods, any of which must match; [] = any. Case-sensitive (RFC 9110 §9.1). */
  readonly methods: readonly string[];
  /** All must match. Names are case-insensitive. */
  readonly headers: readonly HeaderMatchSpec[];
  /** All must match; names and values compared after percent-decoding. */
  readonly query: readonly QueryMatchSpec[];
}

export interface RouteSpec {
  readonly name: string;
  /** The service whose requests this route applies to. */
  readonly service: string;
  /** Lower first; ties keep the order of the specs (file order). */
  readonly order: number;
  /** "file:line" of the [route NAME] header, for messages and the admin API. */
  readonly source?: string;
  readonly match: RouteMatchSpec;
  readonly backends: readonly WeightedBackend[];
  /** Whole-request timeout, all attempts included; 0 = none. */
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
  readonly requestHeaders: HeaderMutations;
  readonly responseHeaders: HeaderMutations;
  readonly hashOn?: HashOn;
}

export const MAX_BACKEND_WEIGHT = 10_000;
export const NO_HEADER_MUTATIONS: HeaderMutations = Object.freeze({ add: Object.freeze([]), remove: Object.freeze([]) });
/** Route, service and subset names. */
export const ROUTE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const HOST_NAME_RE = new RegExp(`^(?:${LABEL})(?:\\.${LABEL})*$`);
/** Headers routes may not add or remove: framing, connection management, pseudo-headers, Host (no rewrites yet). */
export const PROTECTED_HEADERS: ReadonlySet<string> = new Set([
  'host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer',
  'upgrade',
]);

/** The identity of a backend in weights: "service" or "service/subset". */
export function backendId(b: { readonly service: string; readonly subset?: string | undefined }): string {
  return b.subset === undefined ? b.service : `${b.service}/${b.subset}`;
}

// ---- validation shared with route-config.ts (each returns what was expected, or undefined when fine) ----

export function checkHostPattern(pattern: string): string | undefined {
  const expected = 'host names like "api.example.com", "api.example.com:8080", "*.example.com" or "*"';
  if (pattern === '*') return undefined;
  const m = /^(.*?)(?::(\d{1,5}))?$/.exec(pattern);
  const host = m?.[1] ?? '';
  const port = m?.[2];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return `${expected} (port 1-65535)`;
  if (host !== host.toLowerCase()) return `${expected}, in lower case`;
  const name = host.startsWith('*.') ? host.slice(2) : host;
  if (/^\[[0-9a-f:.]+\]$/.test(name) && !host.startsWith('*.')) return undefined; // IPv6 literal
  return HOST_NAME_RE.test(name) && name.length <= 253 ? undefined : expected;
}

export function checkMethod(method: string): string | undefined {
  if (!TOKEN_RE.test(method)) return 'HTTP method tokens like GET, POST';
  if (method !== method.toUpperCase()) return `methods in upper case ("${method}": methods are case-sensitive, write ${method.toUpperCase()})`;
  return undefined;
}

export function checkHeaderName(name: string): string | undefined {
  if (name.startsWith(':')) return 'a header name (pseudo-headers like ":path" cannot be used)';
  return TOKEN_RE.test(name) ? undefined : 'a header name of token characters (letters, digits, "-", ...)';
}

export function checkHeaderValue(value: string): string | undefined {
  return /[\0\r\n]/.test(value) ? 'a header value without CR, LF or NUL' : undefined;
}

export function checkMutableHeader(name: string): string | undefined {
  const bad = checkHeaderName(name);
  if (bad !== undefined) return bad;
  return PROTECTED_HEADERS.has(name.toLowerCase())
    ? `a header other than ${[...PROTECTED_HEADERS].join(', ')} (they carry framing or connection state)`
    : undefined;
}

export function checkPath(kind: PathMatchSpec['kind'], value: string): string | undefined {
  if (kind === 'regex') {
    const r = compileSafeRegex(value);
    return r.ok ? undefined : r.expected;
  }
  if (!value.startsWith('/')) return 'a path starting with "/"';
  return /[\s?#]/.test(value) ? 'a path without spaces, "?" or "#" (match the query with match_query)' : undefined;
}

/** Every problem of a spec (route-config.ts reports them per key and line; compile() refuses specs with any). */
export function routeSpecProblems(spec: RouteSpec): string[] {
  const out: string[] = [];
  const p = (what: string): void => { out.push(`route ${spec.name}: ${what}`); };
  if (!ROUTE_NAME_RE.test(spec.name)) p('name: expected 1-63 letters, digits, ".", "_" or "-"');
  if (!ROUTE_NAME_RE.test(spec.service)) p(`service "${spec.service}" is not a valid service name`);
  if (!Number.isSafeInteger(spec.order)) p('order must be an integer');
  for (const h of spec.match.hosts) {
    const e = checkHostPattern(h);
    if (e !== undefined) p(`host "${h}": expected ${e}`);
  }
  if (spec.match.path !== undefined) {
    const e = checkPath(spec.match.path.kind, spec.match.path.value);
    if (e !== undefined) p(`path "${spec.match.path.value}": expected ${e}`);
  }
  for (const m of spec.match.methods) {
    const e = checkMethod(m);
    if (e !== undefined) p(`method "${m}": expected ${e}`);
  }
  for (const h of spec.match.headers) {
    const e = checkHeaderName(h.name) ?? (h.kind === 'regex' ? regexProblem(h.value) : h.kind === 'exact' ? checkHeaderValue(h.value) : undefined);
    if (e !== undefined) p(`header match "${h.name}": expected ${e}`);
  }
  for (const q of spec.match.query) {
    if (q.name === '') p('query match: expected a parameter name');
  }
  const wp = weightsProblem(spec.backends.map((b) => b.weight));
  if (wp !== undefined) p(`backends: expected ${wp}`);
  const ids = new Set<string>();
  for (const b of spec.backends) {
    if (!ROUTE_NAME_RE.test(b.service)) p(`backend service "${b.service}" is not a valid service name`);
    if (b.subset !== undefined && !ROUTE_NAME_RE.test(b.subset)) p(`backend subset "${b.subset}" is not a valid subset name`);
    if (ids.has(backendId(b))) p(`backend ${backendId(b)} is listed twice`);
    ids.add(backendId(b));
  }
  if (!(spec.timeoutMs >= 0)) p('timeoutMs must be >= 0');
  const r = spec.retry;
  if (!Number.isInteger(r.maxAttempts) || r.maxAttempts < 1) p('retry.maxAttempts must be an integer >= 1');
  for (const c of r.on) if (!RETRY_CONDITIONS.includes(c)) p(`retry condition "${String(c)}" is unknown`);
  if (!(r.perTryTimeoutMs >= 0 && r.backoffBaseMs >= 0 && r.backoffMaxMs >= r.backoffBaseMs)) {
    p('retry timings must be >= 0 with backoffMaxMs >= backoffBaseMs');
  }
  for (const [name, value] of [...spec.requestHeaders.add, ...spec.responseHeaders.add]) {
    const e = checkMutableHeader(name) ?? checkHeaderValue(value);
    if (e !== undefined) p(`header add "${name}": expected ${e}`);
  }
  for (const name of [...spec.requestHeaders.remove, ...spec.responseHeaders.remove]) {
    const e = checkMutableHeader(name);
    if (e !== undefined) p(`header remove "${name}": expected ${e}`);
  }
  if (spec.hashOn !== undefined && spec.hashOn.kind !== 'source' && (spec.hashOn.name ?? '') === '') {
    p(`hashOn ${spec.hashOn.kind} needs a name`);
  }
  return out;
}

function regexProblem(pattern: string): string | undefined {
  const r = compileSafeRegex(pattern);
  return r.ok ? undefined : r.expected;
}

/** undefined when the weights are usable: integers 0..MAX_BACKEND_WEIGHT, at least one, sum > 0. */
export function weightsProblem(weights: readonly number[]): string | undefined {
  if (weights.length === 0) return 'at least one backend';
  if (weights.some((w) => !Number.isInteger(w) || w < 0 || w > MAX_BACKEND_WEIGHT)) {
    return `weights are integers 0-${MAX_BACKEND_WEIGHT}`;
  }
  if (weights.every((w) => w === 0)) return 'at least one backend with a weight above 0';
  return undefined;
}

/** "web-v1=50, web-v2=50" (the admin API body) -> weights by backend id. */
export function parseWeights(text: string): { ok: true; value: ReadonlyMap<string, number> } | { ok: false; expected: string } {
  const out = new Map<string, number>();
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) return { ok: false, expected: 'BACKEND=WEIGHT pairs like "web-v1=90, web-v2=10"' };
  for (const item of items) {
    const m = /^([^=\s]+)\s*=\s*(\d{1,6})$/.exec(item);
    if (m === null) return { ok: false, expected: `BACKEND=WEIGHT pairs like "web-v1=90, web-v2=10" ("${item}" is not)` };
    const id = m[1] as string;
    if (out.has(id)) return { ok: false, expected: `each backend once ("${id}" is repeated)` };
    out.set(id, Number(m[2]));
  }
  return { ok: true, value: out };
}

