// [authorization NAME] sections -> AuthorizationSpec[] (issue 11). Pure: IniDocument in, specs (plus warnings) or
// ConfigIssues (file:line, section, key, what was expected) out; every problem is reported, none thrown. Other
// sections are left to their own parsers. User-facing text: docs/authorization.md.
//
// Choices (documented there too):
//   * `action` defaults to allow (Istio's default). A section with no condition key matches everything: an allow
//     policy without keys allows everything, a deny policy without keys denies everything.
//   * Lists are comma-separated with "\," for a comma inside an item (splitItems, as in [route NAME]); from_cidrs
//     and to_ports also accept spaces, like the other CIDR/port keys. An empty value is an error (leave the key out
//     for "no condition").
//   * A section repeated with the very same name is reported by parseIni ("each section once"); this parser keeps
//     the first one. Names that differ only in case are reported here (they would be indistinguishable in logs).
//   * Warnings (not errors): a deny policy with HTTP-only keys and no to_ports also denies opaque TCP connections on
//     every port, because on TCP those keys are ignored for deny ("wider deny", Istio's rule); remora says so.
import { parseSpiffeId, checkIdentityPattern } from '../core/spiffe.js';
import type { ConfigIssue } from './config-issue.js';
import { configError } from './config-issue.js';
import type { IniDocument, IniSection } from './ini-file.js';
import { qualify } from './ini-file.js';
import { splitItems } from './route-config.js';
import { ROUTE_NAME_RE, checkHeaderName, checkHeaderValue, checkHostPattern, checkMethod } from './route-spec.js';
import { SectionReader } from './section-reader.js';
import * as v from './value-parsers.js';
import {
  AUTHORIZATION_ACTIONS, DEFAULT_AUTHORIZATION_ACTION, httpOnlyKeysOf,
  type AuthorizationAction, type AuthorizationSpec, type HeaderMatch, type StringMatch,
} from './authorization-spec.js';

export const AUTHORIZATION_KEYS = [
  'action', 'from_identities', 'from_namespaces', 'from_cidrs', 'to_ports', 'methods', 'paths', 'hosts', 'headers',
] as const;
export type AuthorizationKey = (typeof AUTHORIZATION_KEYS)[number];

/** Something legal but probably not what was meant; the proxy logs these (the config still loads). */
export interface AuthorizationWarning {
  /** "file:line" of the key the warning is about. */
  readonly source: string;
  /** The qualified key: "[authorization NAME] methods". */
  readonly key: string;
  readonly message: string;
}

export type AuthorizationConfigResult =
  | { readonly ok: true; readonly policies: readonly AuthorizationSpec[]; readonly warnings: readonly AuthorizationWarning[] }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

type Parsed<T> = v.Parsed<T>;
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(expected: string): Parsed<T> => ({ ok: false, expected });

const SECTION_KIND = 'authorization';
const EMPTY_VALUE = 'a value (leave the key out for no condition)';

/** Keys people bring from Istio's AuthorizationPolicy (or write in the singular), and what remora calls them. */
const KEY_HINTS: Readonly<Record<string, string>> = {
  principals: 'from_identities', identities: 'from_identities', from_identity: 'from_identities', principal: 'from_identities',
  namespaces: 'from_namespaces', from_namespace: 'from_namespaces', namespace: 'from_namespaces',
  ipblocks: 'from_cidrs', ip_blocks: 'from_cidrs', cidrs: 'from_cidrs', from_cidr: 'from_cidrs', source_ips: 'from_cidrs',
  ports: 'to_ports', to_port: 'to_ports', port: 'to_ports',
  method: 'methods', path: 'paths', host: 'hosts', header: 'headers',
};

/**
 * `*` (any: present), `prefix*`, `*suffix` or an exact value; at most one "*", at the start or the end. `literal`
 * checks (and may rewrite) the text around the "*"; it returns the rewritten literal or { expected }.
 */
export function stringPattern(
  text: string,
  literal: (lit: string, kind: StringMatch['kind']) => Parsed<string>,
): Parsed<StringMatch> {
  if (text === '*') return ok({ kind: 'any', value: '' });
  const star = text.indexOf('*');
  if (star >= 0 && (text.indexOf('*', star + 1) >= 0 || (star !== 0 && star !== text.length - 1))) {
    return bad(`one "*", only at the start ("*suffix") or the end ("prefix*"), or "*" alone ("${text}" is not)`);
  }
  const kind: StringMatch['kind'] = star < 0 ? 'exact' : star === 0 ? 'suffix' : 'prefix';
  const lit = literal(kind === 'exact' ? text : kind === 'suffix' ? text.slice(1) : text.slice(0, -1), kind);
  return lit.ok ? ok({ kind, value: lit.value }) : lit;
}

/** A comma list (splitItems) of items, duplicates dropped (by JSON identity), at least one. */
function list<T>(what: string, item: (text: string) => Parsed<T>): v.ValueParser<T[]> {
  return (text) => {
    const items = splitItems(text);
    if (items.length === 0) return bad(what);
    const out: T[] = [];
    const seen = new Set<string>();
    for (const it of items) {
      const r = item(it);
      if (!r.ok) return r;
      const id = JSON.stringify(r.value);
      if (!seen.has(id)) out.push(r.value);
      seen.add(id);
    }
    return ok(out);
  };
}

function nonEmpty<T>(parse: v.ValueParser<readonly T[]>, what: string): v.ValueParser<readonly T[]> {
  return (text) => {
    const r = parse(text);
    return r.ok && r.value.length === 0 ? bad(what) : r;
  };
}

const SPIFFE_CHARS_RE = /^[A-Za-z0-9._/:-]+$/;

/** SPIFFE ID patterns (checkIdentityPattern), canonical: the scheme and trust domain of exact IDs and prefixes lower-case. */
export const identityPatterns = list<StringMatch>('SPIFFE ID patterns like "spiffe://cluster.local/ns/prod/sa/web, spiffe://cluster.local/ns/dev/*"', (it) => {
  const e = checkIdentityPattern(it);
  if (e !== undefined) return bad(`SPIFFE ID patterns: ${e} ("${it}" is not)`);
  return stringPattern(it, (lit, kind) => {
    if (kind === 'exact') {
      const p = parseSpiffeId(lit);
      return p.ok ? ok(p.value.id) : bad(p.expected);
    }
    if (!SPIFFE_CHARS_RE.test(lit)) return bad(`SPIFFE ID patterns of letters, digits, ".", "-", "_", "/" and ":" ("${it}" is not)`);
    if (kind === 'suffix') return ok(lit);
    const m = /^spiffe:\/\/([^/]*)(.*)$/i.exec(lit);
    return ok(m === null ? lit : `spiffe://${(m[1] ?? '').toLowerCase()}${m[2] ?? ''}`);
  });
});

const NAMESPACE_RE = /^[A-Za-z0-9._-]+$/;

export const namespacePatterns = list<StringMatch>('namespace patterns like "prod, team-*"', (it) =>
  stringPattern(it, (lit) => NAMESPACE_RE.test(lit)
    ? ok(lit)
    : bad(`namespace patterns of letters, digits, ".", "-" and "_" like "prod", "team-*" or "*" ("${it}" is not)`)));

export const methodList = list<string>('HTTP methods like "GET, HEAD"', (it) => {
  if (it.includes('*')) return bad(`HTTP methods, compared exactly ("${it}": leave methods out to allow any method)`);
  const e = checkMethod(it);
  if (e === undefined) return ok(it);
  return bad(e.includes(`"${it}"`) ? e : `${e} ("${it}" is not)`);
});

export const pathPatterns = list<StringMatch>('path patterns like "/api/*, /healthz, *.png"', (it) =>
  stringPattern(it, (lit, kind) => {
    if (/[\s?#]/.test(lit)) return bad(`paths without spaces, "?" or "#" (the query string is not matched) ("${it}" is not)`);
    if (kind !== 'suffix' && !lit.startsWith('/')) return bad(`paths starting with "/", or "*suffix" ("${it}" is not)`);
    return ok(lit);
  }));

const HOST_CHARS_RE = /^[a-z0-9._-]+$/;

/** Hosts without port, lower-case, a trailing dot dropped: exact, "*.suffix", "prefix.*", "*". */
export const hostPatterns = list<StringMatch>('host patterns like "api.example.com, *.example.com"', (it) =>
  stringPattern(it.toLowerCase(), (lit, kind) => {
    const expected = `host names without a port, like "api.example.com", "*.example.com", "api.*" or "*" (the request's port is not compared: use to_ports) ("${it}" is not)`;
    if (kind === 'exact') {
      const h = lit.endsWith('.') ? lit.slice(0, -1) : lit;
      if (/:\d*$/.test(h) && !/^\[[0-9a-f:.]+\]$/.test(h)) return bad(expected);
      return checkHostPattern(h) === undefined ? ok(h) : bad(expected);
    }
    const h = kind === 'suffix' && lit.endsWith('.') ? lit.slice(0, -1) : lit;
    return HOST_CHARS_RE.test(h) ? ok(h) : bad(expected);
  }));

/** "name: pattern" entries (alternatives); the value pattern is exact, "prefix*", "*suffix" or "*" (present). */
export const headerPatterns = list<HeaderMatch>('header conditions like "x-env: prod, x-user: admin-*"', (it) => {
  const colon = it.indexOf(':', 1);
  const expected = `header conditions "name: value", with the value exact, "prefix*", "*suffix" or "*" (present) ("${it}" is not)`;
  if (colon < 0) return bad(expected);
  const name = it.slice(0, colon).trim().toLowerCase();
  const value = it.slice(colon + 1).trim();
  const ne = checkHeaderName(name);
  if (ne !== undefined) return bad(`${ne} ("${it}")`);
  if (value === '') return bad(expected);
  const p = stringPattern(value, (lit) => {
    const ve = checkHeaderValue(lit);
    return ve === undefined ? ok(lit) : bad(`${ve} ("${it}")`);
  });
  return p.ok ? ok({ name, value: p.value }) : p;
});

const actionParser: v.ValueParser<AuthorizationAction> = (text) =>
  v.oneOf(AUTHORIZATION_ACTIONS)(text.trim().toLowerCase());

const cidrs = nonEmpty(v.cidrList, 'a list of CIDRs like "10.0.0.0/8, fd00::/8"');
const ports = nonEmpty(v.portList, 'a list of ports and ranges like "8080, 9000-9100"');

/** Levenshtein distance, bounded (keys are short). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function unknownKeyHint(key: string): string {
  const k = key.toLowerCase();
  if (/^not_?/.test(k)) return '; negations (not_*) are not supported: write a deny policy for what must not pass';
  const hinted = KEY_HINTS[k.replace(/-/g, '_')];
  if (hinted !== undefined) return `; did you mean ${hinted}?`;
  const near = AUTHORIZATION_KEYS.filter((known) => distance(k, known) <= 2);
  return near.length > 0 ? `; did you mean ${near.join(' or ')}?` : '';
}

function readPolicy(r: SectionReader, name: string, issues: ConfigIssue[]): AuthorizationSpec {
  const sectionName = r.section.name;
  for (const e of r.section.entries.values()) {
    if ((AUTHORIZATION_KEYS as readonly string[]).includes(e.key)) continue;
    issues.push({
      source: `${r.file}:${e.line}`,
      key: qualify(sectionName, e.key),
      expected: `a key of [authorization NAME] (${AUTHORIZATION_KEYS.join(', ')})${unknownKeyHint(e.key)}`,
    });
  }
  const read = <T>(key: AuthorizationKey, parse: v.ValueParser<T>): T | undefined => {
    const e = r.entry(key);
    if (e === undefined) return undefined;
    if (e.value.trim() === '') {
      r.issue(key, EMPTY_VALUE);
      return undefined;
    }
    return r.optional(key, parse);
  };
  const action = read('action', actionParser) ?? DEFAULT_AUTHORIZATION_ACTION;
  const fromIdentities = read('from_identities', identityPatterns);
  const fromNamespaces = read('from_namespaces', namespacePatterns);
  const fromCidrs = read('from_cidrs', cidrs);
  const toPorts = read('to_ports', ports);
  const methods = read('methods', methodList);
  const paths = read('paths', pathPatterns);
  const hosts = read('hosts', hostPatterns);
  const headers = read('headers', headerPatterns);
  return {
    name,
    source: r.where(),
    action,
    ...(fromIdentities === undefined ? {} : { fromIdentities }),
    ...(fromNamespaces === undefined ? {} : { fromNamespaces }),
    ...(fromCidrs === undefined ? {} : { fromCidrs }),
    ...(toPorts === undefined ? {} : { toPorts }),
    ...(methods === undefined ? {} : { methods }),
    ...(paths === undefined ? {} : { paths }),
    ...(hosts === undefined ? {} : { hosts }),
    ...(headers === undefined ? {} : { headers }),
  };
}

/** A deny policy with HTTP-only keys and no to_ports: on opaque TCP it denies on every port (Istio's "wider deny"). */
function widenedDenyWarning(doc: IniDocument, section: IniSection, spec: AuthorizationSpec): AuthorizationWarning | undefined {
  if (spec.action !== 'deny' || spec.toPorts !== undefined) return undefined;
  const http = httpOnlyKeysOf(spec);
  if (http.length === 0) return undefined;
  const first = http
    .map((k) => ({ k, line: section.entries.get(k)?.line ?? section.line }))
    .sort((a, b) => a.line - b.line)[0];
  const others = spec.fromIdentities !== undefined || spec.fromNamespaces !== undefined || spec.fromCidrs !== undefined;
  return {
    source: `${doc.file}:${first?.line ?? section.line}`,
    key: qualify(section.name, first?.k ?? http[0] ?? 'methods'),
    message: `deny policy "${spec.name}" uses ${http.join(', ')} (HTTP only) without to_ports: on opaque TCP connections `
      + `these keys are ignored, so it denies ${others ? 'every TCP connection its from_* keys match' : 'EVERY TCP connection'}, `
      + 'on every port; add to_ports with the HTTP ports to scope it',
  };
}

/** Parse every [authorization NAME] section of a document (other sections are ignored), in file order. */
export function parseAuthorizations(doc: IniDocument): AuthorizationConfigResult {
  const issues: ConfigIssue[] = [];
  const policies: AuthorizationSpec[] = [];
  const warnings: AuthorizationWarning[] = [];
  const seen = new Set<string>();
  const byFolded = new Map<string, IniSection>();
  for (const section of doc.sections) {
    const [kind = '', ...rest] = section.name.split(' ');
    if (kind !== SECTION_KIND) continue;
    if (seen.has(section.name)) continue; // parseIni reported the repetition ("each section once")
    seen.add(section.name);
    const name = rest.join(' ');
    if (!ROUTE_NAME_RE.test(name)) {
      issues.push(sectionIssue(doc, section, '[authorization NAME] with NAME of 1-63 letters, digits, ".", "_" or "-" (the name is logged with every decision)'));
      continue;
    }
    const folded = byFolded.get(name.toLowerCase());
    if (folded !== undefined) {
      issues.push(sectionIssue(doc, section,
        `a policy name used once, ignoring case ([${folded.name}] is at line ${folded.line}; logs and counters could not tell them apart)`));
      continue;
    }
    byFolded.set(name.toLowerCase(), section);
    const before = issues.length;
    const spec = readPolicy(new SectionReader(doc.file, section, AUTHORIZATION_KEYS, issues), name, issues);
    if (issues.length > before) continue;
    policies.push(spec);
    const w = widenedDenyWarning(doc, section, spec);
    if (w !== undefined) warnings.push(w);
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, policies, warnings };
}

/** parseAuthorizations, throwing REMORA_ERR_CONFIG_INVALID with every issue (warnings are dropped). */
export function authorizationsOrThrow(doc: IniDocument): readonly AuthorizationSpec[] {
  const r = parseAuthorizations(doc);
  if (!r.ok) throw configError(r.issues);
  return r.policies;
}

/** "p.ini:12: [authorization NAME] methods: <message>" */
export function formatAuthorizationWarning(w: AuthorizationWarning): string {
  return `${w.source}: ${w.key}: ${w.message}`;
}

function sectionIssue(doc: IniDocument, section: IniSection, expected: string): ConfigIssue {
  return { source: `${doc.file}:${section.line}`, key: `[${section.name}]`, expected };
}
