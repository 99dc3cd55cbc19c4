// [route NAME] sections -> RouteSpec[]. Pure: IniDocument in, specs or ConfigIssues (file:line, section, key) out;
// every problem is reported, none thrown. Other sections are left to their own parsers. Keys and semantics are
// documented in docs/l7-policies.md.
//
// List values are comma-separated; write "\," for a comma inside an item (e.g. in a regex "a{1\,3}" or a header
// value). The INI reader already strips inline comments (" ; ..." / " # ..."): write "\;" and "\#" for those
// characters.
import type { ConfigIssue } from './config-issue.js';
import { configError } from './config-issue.js';
import type { IniDocument, IniSection } from './ini-file.js';
import { SectionReader } from './section-reader.js';
import * as v from './value-parsers.js';
import type { HeaderList, HeaderMutations, RetryPolicy, WeightedBackend } from './route-spec.js';
import { DEFAULT_RETRY_POLICY, GRPC_STATUS_CODES, RETRY_CONDITIONS, type RetryCondition } from './route-spec.js';
import { MAX_BACKEND_WEIGHT, NO_HEADER_MUTATIONS, ROUTE_NAME_RE, backendId, checkHeaderName, checkHeaderValue, checkHostPattern, checkMethod, checkMutableHeader, checkPath, routeSpecProblems, type HashOn, type HeaderMatchSpec, type PathMatchSpec, type QueryMatchSpec, type RouteSpec } from './route-spec.js';
import { compileSafeRegex } from '../core/safe-regex.js';

export const ROUTE_KEYS = [
  'service', 'order',
  'match_host', 'match_path_exact', 'match_path_prefix', 'match_path_regex', 'match_method', 'match_header', 'match_query',
  'backends', 'hash_on', 'timeout',
  'retries', 'retry_on', 'retry_statuses', 'retry_grpc', 'per_try_timeout', 'retry_backoff_base', 'retry_backoff_max',
  'retry_other_hosts', 'retry_non_idempotent',
  'request_headers_add', 'request_headers_remove', 'response_headers_add', 'response_headers_remove',
] as const;

const PATH_KEYS = ['match_path_exact', 'match_path_prefix', 'match_path_regex'] as const;
const MAX_TIMEOUT_MS = 86_400_000;
const MAX_RETRIES = 10;

export interface RouteConfigOptions {
  /** Names of the [service NAME] sections; when given, `service` and backends must name one of them. */
  readonly knownServices?: Iterable<string>;
}

export type RouteConfigResult =
  | { readonly ok: true; readonly routes: readonly RouteSpec[] }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

type Parsed<T> = v.Parsed<T>;
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(expected: string): Parsed<T> => ({ ok: false, expected });

/** Split on commas not preceded by a backslash; "\," becomes ","; items are trimmed, empty ones dropped. */
export function splitItems(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '\\' && text[i + 1] === ',') {
      cur += ',';
      i++;
    } else if (c === ',') {
      out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

function list<T>(what: string, item: (text: string) => Parsed<T>): v.ValueParser<T[]> {
  return (text) => {
    const items = splitItems(text);
    if (items.length === 0) return bad(what);
    const out: T[] = [];
    for (const it of items) {
      const r = item(it);
      if (!r.ok) return r;
      out.push(r.value);
    }
    return ok(out);
  };
}

const routeName = (what: string) => (text: string): Parsed<string> => {
  const t = text.trim();
  return ROUTE_NAME_RE.test(t) ? ok(t) : bad(`${what}: 1-63 letters, digits, ".", "_" or "-"`);
};

export const hostPatterns = list<string>('host patterns like "api.example.com, *.example.com"', (it) => {
  const t = it.toLowerCase().replace(/\.(?=:\d+$|$)/, '');
  const e = checkHostPattern(t);
  return e === undefined ? ok(t) : bad(`${e} ("${it}" is not)`);
});

export const methods = list<string>('HTTP methods like "GET, HEAD"', (it) => {
  const e = checkMethod(it);
  return e === undefined ? ok(it) : bad(e);
});

/** "name=value" exact, "name~regex" full-match regex, "name" present, "!name" absent. */
export const headerMatches = list<HeaderMatchSpec>('header matches like "x-canary=1, x-user~^a.*, x-debug, !x-internal"', (it) => {
  if (it.startsWith('!')) {
    const name = it.slice(1).trim().toLowerCase();
    const e = checkHeaderName(name);
    return e === undefined ? ok({ kind: 'absent', name }) : bad(`${e} ("${it}")`);
  }
  const m = /^([^=~]*)([=~])(.*)$/.exec(it);
  const name = (m === null ? it : (m[1] ?? '')).trim().toLowerCase();
  const e = checkHeaderName(name);
  if (e !== undefined) return bad(`header matches "name=value", "name~regex", "name" or "!name": ${e} ("${it}")`);
  if (m === null) return ok({ kind: 'present', name });
  const value = (m[3] ?? '').trim();
  if (m[2] === '=') {
    const ve = checkHeaderValue(value);
    return ve === undefined ? ok({ kind: 'exact', name, value }) : bad(ve);
  }
  const r = compileSafeRegex(value);
  return r.ok ? ok({ kind: 'regex', name, value }) : bad(`${r.expected} (in "${it}")`);
});

/** "name=value" exact, "name" present. */
export const queryMatches = list<QueryMatchSpec>('query matches like "version=2, debug"', (it) => {
  const eq = it.indexOf('=');
  const name = (eq < 0 ? it : it.slice(0, eq)).trim();
  if (name === '' || /[&\s]/.test(name)) return bad(`query matches "name=value" or "name" ("${it}")`);
  return eq < 0 ? ok({ kind: 'present', name }) : ok({ kind: 'exact', name, value: it.slice(eq + 1).trim() });
});

function pathParser(kind: PathMatchSpec['kind']): v.ValueParser<PathMatchSpec> {
  return (text) => {
    const value = kind === 'regex' ? text.trim().replace(/\\,/g, ',') : text.trim();
    const e = checkPath(kind, value);
    return e === undefined ? ok({ kind, value }) : bad(e);
  };
}

interface BackendItem { readonly backend: WeightedBackend; readonly weighted: boolean }

function backendRef(text: string): Parsed<{ service: string; subset?: string }> {
  const [service = '', subset, ...more] = text.split('/');
  if (more.length > 0 || !ROUTE_NAME_RE.test(service) || (subset !== undefined && !ROUTE_NAME_RE.test(subset))) {
    return bad(`a backend as SERVICE or SERVICE/SUBSET ("${text}" is not)`);
  }
  return ok(subset === undefined ? { service } : { service, subset });
}

function weight(text: string, item: string): Parsed<number> {
  return /^\d{1,6}$/.test(text) && Number(text) <= MAX_BACKEND_WEIGHT
    ? ok(Number(text))
    : bad(`weights 0-${MAX_BACKEND_WEIGHT} ("${item}")`);
}

/** "web-v1=90, web-v2=10", "web/v1=90, web/v2=10", "web subset=v2 weight=10", or "web" (one backend). */
function backendItem(item: string): Parsed<BackendItem> {
  const [first = '', ...attrs] = item.split(/\s+/);
  const short = /^([^=]+)=(.*)$/.exec(first);
  if (short !== null) {
    if (attrs.length > 0) return bad(`"SERVICE=WEIGHT" or "SERVICE subset=NAME weight=N" items ("${item}" mixes both)`);
    const ref = backendRef(short[1] ?? '');
    if (!ref.ok) return ref;
    const w = weight(short[2] ?? '', item);
    if (!w.ok) return w;
    return ok({ backend: { ...ref.value, weight: w.value }, weighted: true });
  }
  const ref = backendRef(first);
  if (!ref.ok) return ref;
  let subset = ref.value.subset;
  let w: number | undefined;
  for (const attr of attrs) {
    const m = /^(subset|weight)=(.*)$/.exec(attr);
    if (m?.[1] === 'subset' && subset === undefined && ROUTE_NAME_RE.test(m[2] ?? '')) {
      subset = m[2];
    } else if (m?.[1] === 'weight' && w === undefined) {
      const r = weight(m[2] ?? '', item);
      if (!r.ok) return r;
      w = r.value;
    } else {
      return bad(`backend attributes subset=NAME and weight=N, each once ("${attr}" in "${item}")`);
    }
  }
  const backend: WeightedBackend = subset === undefined
    ? { service: ref.value.service, weight: w ?? 1 }
    : { service: ref.value.service, subset, weight: w ?? 1 };
  return ok({ backend, weighted: w !== undefined });
}

export const backends: v.ValueParser<WeightedBackend[]> = (text) => {
  const items = list('backends like "web-v1=90, web-v2=10" or "web subset=v2 weight=10"', backendItem)(text);
  if (!items.ok) return items;
  const weighted = items.value.filter((i) => i.weighted).length;
  if (weighted !== 0 && weighted !== items.value.length) {
    return bad('a weight for every backend or for none (none = equal shares)');
  }
  const seen = new Set<string>();
  for (const { backend } of items.value) {
    const id = backendId(backend);
    if (seen.has(id)) return bad(`each backend once ("${id}" is repeated)`);
    seen.add(id);
  }
  const out = items.value.map((i) => i.backend);
  if (out.every((b) => b.weight === 0)) return bad('at least one backend with a weight above 0');
  return ok(out);
};

export const hashOn: v.ValueParser<HashOn> = (text) => {
  const t = text.trim();
  if (t === 'source') return ok({ kind: 'source' });
  const m = /^(header|cookie):\s*(\S+)$/.exec(t);
  const expected = 'header:NAME, cookie:NAME or source';
  if (m === null) return bad(expected);
  const name = m[2] as string;
  if (m[1] === 'header') {
    const e = checkHeaderName(name);
    return e === undefined ? ok({ kind: 'header', name: name.toLowerCase() }) : bad(`${expected} (${e})`);
  }
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) ? ok({ kind: 'cookie', name }) : bad(`${expected} (a cookie name of token characters)`);
};

export const retryConditions = list<RetryCondition>(`retry conditions (${RETRY_CONDITIONS.join(', ')})`, (it) =>
  (RETRY_CONDITIONS as readonly string[]).includes(it) ? ok(it as RetryCondition) : bad(`retry conditions from ${RETRY_CONDITIONS.join(', ')} ("${it}" is not)`));

/** "503, 429" or ranges "500-504". */
export const statusList: v.ValueParser<number[]> = (text) => {
  const items = list('HTTP statuses like "503, 429" or "500-504"', (it): Parsed<number[]> => {
    const m = /^(\d{3})(?:\s*-\s*(\d{3}))?$/.exec(it);
    const from = Number(m?.[1]);
    const to = m?.[2] === undefined ? from : Number(m[2]);
    if (m === null || from < 100 || to > 599 || from > to) return bad(`HTTP statuses 100-599 or ranges like "500-504" ("${it}" is not)`);
    return ok(Array.from({ length: to - from + 1 }, (_, i) => from + i));
  })(text);
  return items.ok ? ok([...new Set(items.value.flat())].sort((a, b) => a - b)) : items;
};

const GRPC_NAMES = Object.keys(GRPC_STATUS_CODES).filter((n) => n !== 'ok');

/** "unavailable, resource-exhausted" or numbers 1-16. */
export const grpcStatusList: v.ValueParser<number[]> = (text) => {
  const items = list('gRPC statuses like "unavailable, cancelled"', (it): Parsed<number> => {
    const t = it.toLowerCase().replace(/_/g, '-');
    const byName = GRPC_STATUS_CODES[t];
    if (byName !== undefined && byName !== 0) return ok(byName);
    if (/^\d{1,2}$/.test(t) && Number(t) >= 1 && Number(t) <= 16) return ok(Number(t));
    return bad(`gRPC statuses by name (${GRPC_NAMES.join(', ')}) or number 1-16 ("${it}" is not)`);
  })(text);
  return items.ok ? ok([...new Set(items.value)].sort((a, b) => a - b)) : items;
};

/** "x-env: canary, x-team: web". */
export const headerAdds: v.ValueParser<[string, string][]> = list<[string, string]>('headers like "x-env: canary, x-team: web"', (it) => {
  const colon = it.indexOf(':', 1);
  if (colon < 0) return bad(`headers as "name: value" ("${it}" is not)`);
  const name = it.slice(0, colon).trim(); // case kept as written (HTTP/1 peers see it; names compare case-insensitively)
  const value = it.slice(colon + 1).trim();
  const e = checkMutableHeader(name) ?? checkHeaderValue(value);
  return e === undefined ? ok([name, value] as [string, string]) : bad(`${e} ("${it}")`);
});

export const headerNames: v.ValueParser<string[]> = list<string>('header names like "x-debug, x-internal"', (it) => {
  const name = it.toLowerCase();
  const e = checkMutableHeader(name);
  return e === undefined ? ok(name) : bad(`${e} ("${it}")`);
});

function mutations(r: SectionReader, addKey: string, removeKey: string): HeaderMutations {
  const add: HeaderList = r.get(addKey, headerAdds, []);
  const remove = r.get<string[]>(removeKey, headerNames, []);
  return add.length === 0 && remove.length === 0 ? NO_HEADER_MUTATIONS : { add, remove };
}

function readRetry(r: SectionReader, timeoutMs: number): RetryPolicy {
  const d = DEFAULT_RETRY_POLICY;
  const keys = ['retries', 'retry_on', 'retry_statuses', 'retry_grpc', 'per_try_timeout', 'retry_backoff_base',
    'retry_backoff_max', 'retry_other_hosts', 'retry_non_idempotent'];
  if (!keys.some((k) => r.has(k))) return d;
  const retries = r.get('retries', v.integer(0, MAX_RETRIES), d.maxAttempts - 1);
  const explicitOn = r.optional('retry_on', retryConditions);
  const statuses = r.optional('retry_statuses', statusList);
  const grpc = r.optional('retry_grpc', grpcStatusList);
  const perTryTimeoutMs = r.get('per_try_timeout', v.duration(0, MAX_TIMEOUT_MS), d.perTryTimeoutMs);
  const backoffBaseMs = r.get('retry_backoff_base', v.duration(1, 60_000), d.backoffBaseMs);
  const backoffMaxMs = r.get('retry_backoff_max', v.duration(1, 600_000), Math.max(d.backoffMaxMs, backoffBaseMs));
  const preferOtherHosts = r.get('retry_other_hosts', v.boolean, d.preferOtherHosts);
  const retryNonIdempotent = r.get('retry_non_idempotent', v.boolean, false);

  const on = new Set<RetryCondition>(explicitOn ?? d.on);
  if (r.has('retry_statuses')) on.add('retriable-status');
  if (r.has('retry_grpc')) on.add('grpc');
  if (explicitOn?.includes('retriable-status') === true && !r.has('retry_statuses')) {
    r.issue('retry_on', 'retry_statuses in this section too (retriable-status needs the list of statuses)');
  }
  if (explicitOn?.includes('grpc') === true && !r.has('retry_grpc')) {
    r.issue('retry_on', 'retry_grpc in this section too (grpc needs the list of gRPC statuses)');
  }
  if (r.has('retry_grpc') && !retryNonIdempotent) {
    r.issue('retry_grpc', 'retry_non_idempotent = true as well: every gRPC call is a POST, and remora retries a request '
      + 'that may have been processed only when the route declares it safe');
  }
  if (retries === 0) {
    for (const k of ['retry_on', 'retry_statuses', 'retry_grpc']) {
      if (r.has(k)) r.issue(k, `retries > 0 for ${k} to have an effect (this route sets retries = 0)`);
    }
  }
  if (backoffBaseMs > backoffMaxMs) {
    r.issue(r.has('retry_backoff_max') ? 'retry_backoff_max' : 'retry_backoff_base', 'retry_backoff_base <= retry_backoff_max');
  }
  if (timeoutMs > 0 && perTryTimeoutMs > timeoutMs) {
    r.issue('per_try_timeout', `per_try_timeout <= timeout (${timeoutMs}ms: the whole request, all attempts included)`);
  }
  return {
    maxAttempts: retries + 1,
    on: RETRY_CONDITIONS.filter((c) => on.has(c)),
    statuses: statuses ?? [],
    grpcStatuses: grpc ?? [],
    perTryTimeoutMs,
    backoffBaseMs,
    backoffMaxMs,
    preferOtherHosts,
    ...(retryNonIdempotent ? { retryNonIdempotent: true } : {}),
  };
}

function readRoute(r: SectionReader, name: string, known: ReadonlySet<string> | undefined): RouteSpec | undefined {
  r.reportUnknownKeys('[route NAME]');
  const service = r.optional('service', routeName('a service name'));
  if (!r.has('service')) r.issue(undefined, 'service = NAME (the service whose requests this route applies to)');
  if (service !== undefined && known !== undefined && !known.has(service)) {
    r.issue('service', `the name of a [service NAME] section (${[...known].join(', ') || 'none defined'})`);
  }
  const order = r.get('order', v.integer(-1_000_000, 1_000_000), 0);
  const hosts: string[] = r.get<string[]>('match_host', hostPatterns, []);
  const pathKeys = PATH_KEYS.filter((k) => r.has(k));
  for (const k of pathKeys.slice(1)) {
    r.issue(k, `one of ${PATH_KEYS.join(', ')} (this route already has ${pathKeys[0] ?? ''})`);
  }
  let path: PathMatchSpec | undefined;
  const pathKey = pathKeys[0];
  if (pathKey !== undefined) {
    path = r.optional(pathKey, pathParser(pathKey === 'match_path_exact' ? 'exact' : pathKey === 'match_path_prefix' ? 'prefix' : 'regex'));
  }
  const methodList: string[] = r.get<string[]>('match_method', methods, []);
  const headers = r.get<HeaderMatchSpec[]>('match_header', headerMatches, []);
  const query = r.get<QueryMatchSpec[]>('match_query', queryMatches, []);
  const bs = r.optional('backends', backends);
  if (bs !== undefined && known !== undefined) {
    const unknown = bs.filter((b) => !known.has(b.service)).map((b) => b.service);
    if (unknown.length > 0) r.issue('backends', `backends naming [service NAME] sections (${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not defined)`);
  }
  const hash = r.optional('hash_on', hashOn);
  const timeoutMs = r.get('timeout', v.duration(0, MAX_TIMEOUT_MS), 0);
  const retry = readRetry(r, timeoutMs);
  const requestHeaders = mutations(r, 'request_headers_add', 'request_headers_remove');
  const responseHeaders = mutations(r, 'response_headers_add', 'response_headers_remove');
  if (service === undefined || (r.has('backends') && bs === undefined)) return undefined;
  const spec: RouteSpec = {
    name, service, order, source: r.where(),
    match: { hosts, ...(path === undefined ? {} : { path }), methods: methodList, headers, query },
    backends: bs ?? [{ service, weight: 1 }],
    timeoutMs, retry, requestHeaders, responseHeaders,
    ...(hash === undefined ? {} : { hashOn: hash }),
  };
  return spec;
}

/** Parse every [route NAME] section of a document (other sections are ignored). */
export function parseRoutes(doc: IniDocument, opts: RouteConfigOptions = {}): RouteConfigResult {
  const issues: ConfigIssue[] = [];
  const known = opts.knownServices === undefined ? undefined : new Set(opts.knownServices);
  const routes: RouteSpec[] = [];
  const seen = new Set<string>();
  for (const section of doc.sections) {
    const [kind = '', ...rest] = section.name.split(' ');
    if (kind !== 'route') continue;
    if (seen.has(section.name)) continue; // parseIni reported the repetition
    seen.add(section.name);
    const name = rest.join(' ');
    if (!ROUTE_NAME_RE.test(name)) {
      issues.push(sectionIssue(doc, section, '[route NAME] with NAME of 1-63 letters, digits, ".", "_" or "-"'));
      continue;
    }
    const before = issues.length;
    const r = new SectionReader(doc.file, section, ROUTE_KEYS, issues);
    const spec = readRoute(r, name, known);
    if (spec === undefined || issues.length > before) continue;
    // Every key was checked above; this is a safety net so that compile() never meets a spec it refuses.
    for (const problem of routeSpecProblems(spec)) r.issue(undefined, `a valid route (${problem})`);
    routes.push(spec);
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, routes };
}

/** parseRoutes, throwing REMORA_ERR_CONFIG_INVALID with every issue. */
export function routesOrThrow(doc: IniDocument, opts: RouteConfigOptions = {}): readonly RouteSpec[] {
  const r = parseRoutes(doc, opts);
  if (!r.ok) throw configError(r.issues);
  return r.routes;
}

function sectionIssue(doc: IniDocument, section: IniSection, expected: string): ConfigIssue {
  return { source: `${doc.file}:${section.line}`, key: `[${section.name}]`, expected };
}
