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
import { RemoraError } from '../../core/errors.js';
import type { ForwardDecision, RequestHead, RouteDecision } from '../request-types.js';
import {
  backendId, DEFAULT_RETRY_POLICY, NO_HEADER_MUTATIONS, routeSpecProblems, weightsProblem,
  type RetryPolicy, type RouteMatchSpec, type RouteSpec, type WeightedBackend,
} from '../../config/route-spec.js';
import { LOCAL_REPLIES } from '../local-reply.js';
import { compileSafeRegex, regexMatches } from '../../core/safe-regex.js';
import type { RouteCounter, RouteCounters } from './route-counters.js';

export interface RouteTableOptions {
  /** Uniform random numbers in [0, 1) for weighted backends (Math.random in production, seeded in tests). */
  readonly random: () => number;
  /** Policy for services without routes: defaults 0 (no timeout) and DEFAULT_RETRY_POLICY. */
  readonly defaultTimeoutMs?: number;
  readonly defaultRetry?: RetryPolicy;
  /** Requests per route and backend: each forward decision of a named route carries its counter (route-counters.ts). */
  readonly counters?: RouteCounters;
}

export interface RouteSummary {
  readonly name: string;
  readonly service: string;
  readonly order: number;
  readonly source: string | undefined;
  readonly backends: readonly { readonly id: string; readonly service: string; readonly subset?: string; readonly weight: number }[];
}

/** One route tried by explain(): its conditions, and the first that does not hold. */
export interface RouteCheck {
  readonly route: string;
  readonly order: number;
  readonly source: string | undefined;
  readonly conditions: readonly string[];
  readonly matched: boolean;
  readonly failed?: string;
}

export interface RouteBackendSummary {
  readonly id: string;
  readonly service: string;
  readonly subset?: string;
  readonly weight: number;
}

/** The policy of the route that matched (what the router applies to the request). */
export interface RoutePolicySummary {
  readonly backends: readonly RouteBackendSummary[];
  readonly timeoutMs: number;
  readonly retry: { readonly attempts: number; readonly on: readonly string[] };
  readonly requestHeaders: { readonly add: readonly string[]; readonly remove: readonly string[] };
  readonly responseHeaders: { readonly add: readonly string[]; readonly remove: readonly string[] };
  readonly hashOn: string | undefined;
}

export interface RouteExplanation {
  readonly service: string;
  /** The service's routes in match order, up to the one that matched. Empty: the service has no routes. */
  readonly routes: readonly RouteCheck[];
  /** The route that matched ("default:SERVICE" without routes); undefined: none (the no-route local reply, 404). */
  readonly matched: string | undefined;
  readonly decision: RoutePolicySummary | undefined;
}

export type WeightsResult = { readonly ok: true; readonly table: RouteTable } | { readonly ok: false; readonly error: string };

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

/** One condition of a route with what it asks, for `remora explain` ("path prefix /api"). */
interface LabeledCond {
  readonly label: string;
  readonly cond: Cond;
}

function matchParts(spec: RouteMatchSpec, routeName: string): LabeledCond[] {
  const conds: LabeledCond[] = [];
  if (spec.methods.length > 0) {
    const methods = new Set(spec.methods);
    conds.push({ label: `method ${spec.methods.join(' or ')}`, cond: (v) => methods.has(v.head.method) });
  }
  const path = spec.path;
  if (path !== undefined) {
    if (path.kind === 'exact') {
      const want = path.value;
      conds.push({ label: `path = ${want}`, cond: (v) => v.head.path === want });
    } else if (path.kind === 'prefix') {
      const p = path.value.replace(/\/+$/, '');
      if (p !== '') {
        const slash = `${p}/`;
        conds.push({ label: `path prefix ${path.value}`, cond: (v) => v.head.path === p || v.head.path.startsWith(slash) });
      }
    } else {
      const re = mustRegex(path.value, routeName);
      conds.push({ label: `path ~ ${path.value}`, cond: (v) => regexMatches(re, v.head.path) });
    }
  }
  if (spec.hosts.length > 0 && !spec.hosts.includes('*')) {
    const hosts = spec.hosts.map(hostCond);
    conds.push({ label: `host ${spec.hosts.join(' or ')}`, cond: (v) => hosts.some((h) => h(v)) });
  }
  for (const h of spec.headers) {
    const name = h.name.toLowerCase();
    switch (h.kind) {
      case 'present': conds.push({ label: `header ${name} present`, cond: (v) => v.header(name) !== undefined }); break;
      case 'absent': conds.push({ label: `header ${name} absent`, cond: (v) => v.header(name) === undefined }); break;
      case 'exact': {
        const want = h.value;
        conds.push({ label: `header ${name} = ${want}`, cond: (v) => v.header(name)?.some((x) => x === want) ?? false });
        break;
      }
      case 'regex': {
        const re = mustRegex(h.value, routeName);
        conds.push({ label: `header ${name} ~ ${h.value}`, cond: (v) => v.header(name)?.some((x) => regexMatches(re, x)) ?? false });
        break;
      }
    }
  }
  for (const q of spec.query) {
    const name = q.name;
    if (q.kind === 'present') conds.push({ label: `query ${name} present`, cond: (v) => v.query(name) !== undefined });
    else {
      const want = q.value;
      conds.push({ label: `query ${name} = ${want}`, cond: (v) => v.query(name)?.includes(want) ?? false });
    }
  }
  return conds;
}

function compileMatch(spec: RouteMatchSpec, routeName: string): Cond {
  const conds = matchParts(spec, routeName).map((p) => p.cond);
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

function compileRoute(spec: RouteSpec, counters: RouteCounters | undefined, matches?: Cond): CompiledRoute {
  const frozenSpec = deepFreeze(spec);
  const cond = matches ?? compileMatch(frozenSpec.match, frozenSpec.name);
  const decisions = frozenSpec.backends.map((backend) => forward(frozenSpec.name, backend, frozenSpec, counters?.counter(frozenSpec.name, backendId(backend))));
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
  counter?: RouteCounter,
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
    ...(counter === undefined ? {} : { counter }),
  });
}

function describeForward(d: ForwardDecision, backends: readonly RouteBackendSummary[]): RoutePolicySummary {
  const edits = (m: ForwardDecision['requestHeaders']): RoutePolicySummary['requestHeaders'] => ({
    add: m.add.map(([n, v]) => `${n}: ${v}`), remove: [...m.remove],
  });
  return {
    backends,
    timeoutMs: d.timeoutMs,
    retry: { attempts: d.retry.maxAttempts, on: [...d.retry.on] },
    requestHeaders: edits(d.requestHeaders),
    responseHeaders: edits(d.responseHeaders),
    hashOn: d.hashOn === undefined ? undefined : d.hashOn.name === undefined ? d.hashOn.kind : `${d.hashOn.kind}:${d.hashOn.name}`,
  };
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
    return RouteTable.#build(sorted.map((s) => compileRoute(s, options.counters)), options, 1);
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

  /**
   * How match() decides for this request, for `remora explain`: each route of the service in order with the first
   * condition that does not hold, the route that matches (or the default route of a service without routes, or none:
   * no-route), and its backends with their weights. Nothing is drawn: a weighted route lists every backend.
   */
  explain(head: RequestHead, service: string): RouteExplanation {
    const routes = this.#state.byService.get(service);
    if (routes === undefined) {
      const d = this.#defaultFor(service) as ForwardDecision;
      return { service, routes: [], matched: d.route, decision: describeForward(d, [{ id: service, service, weight: 1 }]) };
    }
    const view = new RequestView(head);
    const tried: RouteCheck[] = [];
    let matched: CompiledRoute | undefined;
    for (const r of routes) {
      const parts = matchParts(r.spec.match, r.spec.name);
      const failed = parts.find((p) => !p.cond(view));
      tried.push({
        route: r.spec.name, order: r.spec.order, source: r.spec.source, matched: failed === undefined,
        conditions: parts.map((p) => p.label), ...(failed === undefined ? {} : { failed: failed.label }),
      });
      if (failed === undefined) { matched = r; break; }
    }
    if (matched === undefined) return { service, routes: tried, matched: undefined, decision: undefined };
    const backends = matched.spec.backends.map((b) => ({ id: backendId(b), service: b.service, ...(b.subset === undefined ? {} : { subset: b.subset }), weight: b.weight }));
    return { service, routes: tried, matched: matched.spec.name, decision: describeForward(matched.decisions[0] as ForwardDecision, backends) };
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
    const replaced = compileRoute({ ...current.spec, backends }, this.#state.options.counters, current.matches);
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
