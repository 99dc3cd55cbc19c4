// The route table: route specs (from [route NAME] sections, see route-config.ts) compiled once into an immutable
// table; match() turns a request head into a RouteDecision synchronously, without allocating on the common path.
//
// Semantics (docs/l7-policies.md has the user-facing version):
//   * A route belongs to one service (the service the request's original destination / authority resolved to).
//     Routes of that service are tried in order (`order`, then position in the file); the first whose every
//     condition holds wins.
//   * A service without routes is forwarded to itself with the default policy (a transparent sidecar must not
//     need a route per service). A service WITH routes where none matches gets the no-route local reply (404) —
//     Istio/Envoy behaviour; end the list with a catch-all route to avoid it.
//   * Conditions: host (exact, "*.suffix" = one or more extra labels, "*"; port compared only when the pattern has
//     one), path (exact, segment-aware prefix, full-match regex), methods (any of), headers (all of: exact,
//     full-match regex, present, absent), query parameters (all of: exact, present). Paths are matched as received
//     (no percent-decoding, no dot-segment removal): routing is not an authorization boundary.
//   * Weighted backends (canary/blue-green): one backend per request, chosen with the injected random source.
//     withWeights() returns a NEW table with one route's weights changed; tables are never mutated, so requests
//     already routed by the old table, and holders of it, are unaffected (the admin API swaps the reference).
import { RemoraError } from '../core/errors.js';
import type {
  HeaderList, HeaderMutations, RequestHead, RetryPolicy, RouteDecision, WeightedBackend,
} from './l7-contract.js';
import { LOCAL_REPLIES } from './local-reply.js';
import { DEFAULT_RETRY_POLICY, RETRY_CONDITIONS } from './retry-policy.js';
import { compileSafeRegex, regexMatches } from './safe-regex.js';

export type PathMatchSpec = { readonly kind: 'exact' | 'prefix' | 'regex'; readonly value: string };

export type HeaderMatchSpec =
  | { readonly kind: 'exact'; readonly name: string; readonly value: string }
  | { readonly kind: 'regex'; readonly name: string; readonly value: string }
  | { readonly kind: 'present'; readonly name: string }
  | { readonly kind: 'absent'; readonly name: string };

export type QueryMatchSpec =
  | { readonly kind: 'exact'; readonly name: string; readonly value: string }
  | { readonly kind: 'present'; readonly name: string };

export type HashOn = NonNullable<Extract<RouteDecision, { kind: 'forward' }>['hashOn']>;

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

export interface RouteTableOptions {
  /** Uniform random numbers in [0, 1) for weighted backends (Math.random in production, seeded in tests). */
  readonly random: () => number;
  /** Policy for services without routes: defaults 0 (no timeout) and DEFAULT_RETRY_POLICY. */
  readonly defaultTimeoutMs?: number;
  readonly defaultRetry?: RetryPolicy;
}

export interface RouteSummary {
  readonly name: string;
  readonly service: string;
  readonly order: number;
  readonly source: string | undefined;
  readonly backends: readonly { readonly id: string; readonly service: string; readonly subset?: string; readonly weight: number }[];
}

export type WeightsResult = { readonly ok: true; readonly table: RouteTable } | { readonly ok: false; readonly error: string };

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

export function formatWeights(backends: readonly WeightedBackend[]): string {
  return backends.map((b) => `${backendId(b)}=${b.weight}`).join(', ');
}

/** Remove (case-insensitively), then add; returns the input unchanged when there is nothing to do. */
export function applyHeaderMutations(headers: HeaderList, m: HeaderMutations): HeaderList {
  if (m.add.length === 0 && m.remove.length === 0) return headers;
  const remove = new Set(m.remove.map((n) => n.toLowerCase()));
  const kept = remove.size === 0 ? [...headers] : headers.filter(([name]) => !remove.has(name.toLowerCase()));
  return kept.concat(m.add);
}

// ---- compilation ----

/** Per-request lazily built views of the head (headers by lower-case name, decoded query). */
class RequestView {
  readonly head: RequestHead;
  #headers: Map<string, string[]> | undefined;
  #query: Map<string, string[]> | undefined;
  #host: { name: string; port: number | undefined } | undefined;

  constructor(head: RequestHead) {
    this.head = head;
  }

  header(name: string): readonly string[] | undefined {
    if (this.#headers === undefined) {
      const map = new Map<string, string[]>();
      for (const [n, v] of this.head.headers) {
        const k = n.toLowerCase();
        const list = map.get(k);
        if (list === undefined) map.set(k, [v]);
        else list.push(v);
      }
      this.#headers = map;
    }
    return this.#headers.get(name);
  }

  query(name: string): readonly string[] | undefined {
    if (this.#query === undefined) this.#query = parseQuery(this.head.query);
    return this.#query.get(name);
  }

  host(): { name: string; port: number | undefined } {
    if (this.#host === undefined) this.#host = splitAuthority(this.head.authority);
    return this.#host;
  }
}

function decodeQueryPart(s: string): string {
  const plus = s.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}

export function parseQuery(query: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (query === '') return out;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decodeQueryPart(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decodeQueryPart(part.slice(eq + 1));
    const list = out.get(name);
    if (list === undefined) out.set(name, [value]);
    else list.push(value);
  }
  return out;
}

/** "a.example.com:8080" -> name/port; "[fd00::1]:80" keeps the brackets; a trailing dot is dropped. */
export function splitAuthority(authority: string): { name: string; port: number | undefined } {
  const a = authority.toLowerCase();
  let name = a;
  let port: number | undefined;
  if (a.startsWith('[')) {
    const end = a.indexOf(']');
    name = end < 0 ? a : a.slice(0, end + 1);
    const rest = end < 0 ? '' : a.slice(end + 1);
    if (/^:\d{1,5}$/.test(rest)) port = Number(rest.slice(1));
  } else {
    const colon = a.lastIndexOf(':');
    if (colon >= 0 && a.indexOf(':') === colon && /^\d{1,5}$/.test(a.slice(colon + 1))) {
      name = a.slice(0, colon);
      port = Number(a.slice(colon + 1));
    }
  }
  if (name.endsWith('.')) name = name.slice(0, -1);
  return { name, port };
}

type Cond = (v: RequestView) => boolean;

function hostCond(pattern: string): Cond {
  if (pattern === '*') return () => true;
  const m = /^(.*?)(?::(\d{1,5}))?$/.exec(pattern);
  const host = m?.[1] ?? pattern;
  const port = m?.[2] === undefined ? undefined : Number(m[2]);
  const portOk = (v: RequestView): boolean => {
    if (port === undefined) return true;
    return (v.host().port ?? v.head.originalDst.port) === port;
  };
  if (host.startsWith('*.')) {
    const suffix = host.slice(1); // ".example.com"
    return (v) => {
      const n = v.host().name;
      return n.length > suffix.length && n.endsWith(suffix) && portOk(v);
    };
  }
  return (v) => v.host().name === host && portOk(v);
}

function compileMatch(spec: RouteMatchSpec, routeName: string): Cond {
  const conds: Cond[] = [];
  if (spec.methods.length > 0) {
    const methods = new Set(spec.methods);
    conds.push((v) => methods.has(v.head.method));
  }
  const path = spec.path;
  if (path !== undefined) {
    if (path.kind === 'exact') {
      const want = path.value;
      conds.push((v) => v.head.path === want);
    } else if (path.kind === 'prefix') {
      const p = path.value.replace(/\/+$/, '');
      if (p !== '') {
        const slash = `${p}/`;
        conds.push((v) => v.head.path === p || v.head.path.startsWith(slash));
      }
    } else {
      const re = mustRegex(path.value, routeName);
      conds.push((v) => regexMatches(re, v.head.path));
    }
  }
  if (spec.hosts.length > 0 && !spec.hosts.includes('*')) {
    const hosts = spec.hosts.map(hostCond);
    conds.push((v) => hosts.some((h) => h(v)));
  }
  for (const h of spec.headers) {
    const name = h.name.toLowerCase();
    switch (h.kind) {
      case 'present': conds.push((v) => v.header(name) !== undefined); break;
      case 'absent': conds.push((v) => v.header(name) === undefined); break;
      case 'exact': {
        const want = h.value;
        conds.push((v) => v.header(name)?.some((x) => x === want) ?? false);
        break;
      }
      case 'regex': {
        const re = mustRegex(h.value, routeName);
        conds.push((v) => v.header(name)?.some((x) => regexMatches(re, x)) ?? false);
        break;
      }
    }
  }
  for (const q of spec.query) {
    const name = q.name;
    if (q.kind === 'present') conds.push((v) => v.query(name) !== undefined);
    else {
      const want = q.value;
      conds.push((v) => v.query(name)?.includes(want) ?? false);
    }
  }
  if (conds.length === 0) return () => true;
  if (conds.length === 1) return conds[0] as Cond;
  return (v) => {
    for (const c of conds) if (!c(v)) return false;
    return true;
  };
}

function mustRegex(pattern: string, routeName: string): RegExp {
  const r = compileSafeRegex(pattern);
  if (!r.ok) throw new RemoraError('REMORA_ERR_CONFIG_INVALID', `route ${routeName}: regex "${pattern}": expected ${r.expected}`);
  return r.regex;
}

interface CompiledRoute {
  readonly spec: RouteSpec;
  readonly matches: Cond;
  /** One frozen forward decision per backend, same order as spec.backends. */
  readonly decisions: readonly RouteDecision[];
  /** Cumulative weights; the last is the total. */
  readonly cumulative: readonly number[];
}

function compileRoute(spec: RouteSpec, matches?: Cond): CompiledRoute {
  const frozenSpec = deepFreeze(spec);
  const cond = matches ?? compileMatch(frozenSpec.match, frozenSpec.name);
  const decisions = frozenSpec.backends.map((backend) => forward(frozenSpec.name, backend, frozenSpec));
  const cumulative: number[] = [];
  let sum = 0;
  for (const b of frozenSpec.backends) {
    sum += b.weight;
    cumulative.push(sum);
  }
  return Object.freeze({ spec: frozenSpec, matches: cond, decisions: Object.freeze(decisions), cumulative: Object.freeze(cumulative) });
}

function forward(
  route: string, backend: WeightedBackend,
  p: Pick<RouteSpec, 'timeoutMs' | 'retry' | 'requestHeaders' | 'responseHeaders' | 'hashOn'>,
): RouteDecision {
  return Object.freeze({
    kind: 'forward' as const,
    route,
    backend,
    timeoutMs: p.timeoutMs,
    retry: p.retry,
    requestHeaders: p.requestHeaders,
    responseHeaders: p.responseHeaders,
    ...(p.hashOn === undefined ? {} : { hashOn: p.hashOn }),
  });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

interface TableState {
  readonly routes: readonly CompiledRoute[];
  readonly byService: ReadonlyMap<string, readonly CompiledRoute[]>;
  readonly options: RouteTableOptions;
  readonly version: number;
}

const NO_ROUTE: RouteDecision = Object.freeze({ kind: 'reply', reply: LOCAL_REPLIES['no-route'] });

/** An immutable, compiled route table. Create with RouteTable.compile(). */
export class RouteTable {
  readonly #state: TableState;
  /** Forward decisions for services without routes, built on first use. */
  readonly #defaults = new Map<string, RouteDecision>();
  readonly #defaultPolicy: Pick<RouteSpec, 'timeoutMs' | 'retry' | 'requestHeaders' | 'responseHeaders'>;

  /** Use RouteTable.compile(). */
  constructor(state: TableState) {
    this.#state = state;
    this.#defaultPolicy = {
      timeoutMs: state.options.defaultTimeoutMs ?? 0,
      retry: state.options.defaultRetry ?? DEFAULT_RETRY_POLICY,
      requestHeaders: NO_HEADER_MUTATIONS,
      responseHeaders: NO_HEADER_MUTATIONS,
    };
  }

  /** Compile specs (sorted by order, stably). Throws REMORA_ERR_CONFIG_INVALID listing every problem. */
  static compile(specs: readonly RouteSpec[], options: RouteTableOptions): RouteTable {
    const problems = specs.flatMap(routeSpecProblems);
    const names = new Set<string>();
    for (const s of specs) {
      if (names.has(s.name)) problems.push(`route ${s.name}: defined twice`);
      names.add(s.name);
    }
    if (problems.length > 0) {
      throw new RemoraError('REMORA_ERR_CONFIG_INVALID', `invalid routes:\n  ${problems.join('\n  ')}`, { details: { problems } });
    }
    const sorted = specs.map((s, i) => ({ s, i })).sort((a, b) => a.s.order - b.s.order || a.i - b.i).map((x) => x.s);
    return RouteTable.#build(sorted.map((s) => compileRoute(s)), options, 1);
  }

  static #build(routes: readonly CompiledRoute[], options: RouteTableOptions, version: number): RouteTable {
    const byService = new Map<string, CompiledRoute[]>();
    for (const r of routes) {
      const list = byService.get(r.spec.service);
      if (list === undefined) byService.set(r.spec.service, [r]);
      else list.push(r);
    }
    return new RouteTable({ routes: Object.freeze([...routes]), byService, options, version });
  }

  /** 1 for a compiled table, +1 for each withWeights() derivation. */
  get version(): number {
    return this.#state.version;
  }

  /** Route the request of `service` (the service its original destination / authority resolved to). */
  match(head: RequestHead, service: string): RouteDecision {
    const routes = this.#state.byService.get(service);
    if (routes === undefined) return this.#defaultFor(service);
    const view = new RequestView(head);
    for (const r of routes) {
      if (r.matches(view)) return this.#pickBackend(r);
    }
    return NO_ROUTE;
  }

  /** Whether `service` has routes (false: match() forwards everything to the service itself). */
  hasRoutes(service: string): boolean {
    return this.#state.byService.has(service);
  }

  /** The spec of a route (frozen), or undefined. */
  route(name: string): RouteSpec | undefined {
    return this.#state.routes.find((r) => r.spec.name === name)?.spec;
  }

  /** Every route in match order (for the admin API). */
  describe(): readonly RouteSummary[] {
    return this.#state.routes.map(({ spec }) => ({
      name: spec.name,
      service: spec.service,
      order: spec.order,
      source: spec.source,
      backends: spec.backends.map((b) => ({
        id: backendId(b), service: b.service, ...(b.subset === undefined ? {} : { subset: b.subset }), weight: b.weight,
      })),
    }));
  }

  /**
   * A NEW table in which route `name` has the given weights (by backend id: "web-v1" or "web/v2"); this table is
   * unchanged. Every backend of the route must be given (no silent leftovers), weights are integers
   * 0-MAX_BACKEND_WEIGHT with a positive sum. Compiled matchers (regexes) are shared, not recompiled.
   */
  withWeights(name: string, weights: ReadonlyMap<string, number> | Readonly<Record<string, number>>): WeightsResult {
    const idx = this.#state.routes.findIndex((r) => r.spec.name === name);
    const current = this.#state.routes[idx];
    if (current === undefined) return { ok: false, error: `no route named "${name}"` };
    const given = weights instanceof Map ? new Map(weights) : new Map(Object.entries(weights));
    const ids = current.spec.backends.map(backendId);
    const unknown = [...given.keys()].filter((k) => !ids.includes(k));
    if (unknown.length > 0) {
      return { ok: false, error: `route ${name} has no backend ${unknown.join(', ')} (its backends: ${ids.join(', ')})` };
    }
    const missing = ids.filter((id) => !given.has(id));
    if (missing.length > 0) return { ok: false, error: `route ${name}: give a weight for every backend (missing: ${missing.join(', ')})` };
    const newWeights = ids.map((id) => given.get(id) as number);
    const problem = weightsProblem(newWeights);
    if (problem !== undefined) return { ok: false, error: `route ${name}: expected ${problem}` };
    const backends = current.spec.backends.map((b, i) => ({ ...b, weight: newWeights[i] as number }));
    const replaced = compileRoute({ ...current.spec, backends }, current.matches);
    const routes = this.#state.routes.map((r, i) => (i === idx ? replaced : r));
    return { ok: true, table: RouteTable.#build(routes, this.#state.options, this.#state.version + 1) };
  }

  #pickBackend(r: CompiledRoute): RouteDecision {
    const n = r.decisions.length;
    if (n === 1) return r.decisions[0] as RouteDecision;
    const total = r.cumulative[n - 1] as number;
    const x = this.#state.options.random() * total;
    for (let i = 0; i < n; i++) {
      if (x < (r.cumulative[i] as number)) return r.decisions[i] as RouteDecision;
    }
    // random() returned 1 or more (not a valid source); take the last backend with a weight.
    for (let i = n - 1; i >= 0; i--) {
      if ((r.spec.backends[i] as WeightedBackend).weight > 0) return r.decisions[i] as RouteDecision;
    }
    return r.decisions[n - 1] as RouteDecision;
  }

  #defaultFor(service: string): RouteDecision {
    let d = this.#defaults.get(service);
    if (d === undefined) {
      d = forward(`default:${service}`, Object.freeze({ service, weight: 1 }), this.#defaultPolicy);
      this.#defaults.set(service, d);
    }
    return d;
  }
}
