import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIssue, type ConfigIssue } from '../../../src/config/config-issue.js';
import { parseIni } from '../../../src/config/ini-file.js';
import {
  AUTHORIZATION_KEYS, authorizationsOrThrow, formatAuthorizationWarning, parseAuthorizations, stringPattern,
  type AuthorizationConfigResult,
} from '../../../src/config/authorization-config.js';
import { httpOnlyKeysOf, type AuthorizationSpec } from '../../../src/config/authorization-spec.js';
import { RemoraError } from '../../../src/core/errors.js';

function parse(text: string): AuthorizationConfigResult {
  const { doc, issues } = parseIni(text, 'a.ini');
  assert.deepEqual(issues, [], 'the INI text itself is well-formed');
  return parseAuthorizations(doc);
}

function policies(text: string): readonly AuthorizationSpec[] {
  const r = parse(text);
  if (!r.ok) assert.fail(`unexpected issues: ${r.issues.map(formatIssue).join('; ')}`);
  return r.policies;
}

function only(text: string): AuthorizationSpec {
  const ps = policies(text);
  assert.equal(ps.length, 1);
  return ps[0] as AuthorizationSpec;
}

function issues(text: string): readonly ConfigIssue[] {
  const r = parse(text);
  if (r.ok) assert.fail('expected issues, the config parsed');
  return r.issues;
}

/** The one issue of a text: "source key" and its expected text. */
function oneIssue(text: string): ConfigIssue {
  const is = issues(text);
  assert.equal(is.length, 1, is.map(formatIssue).join('\n'));
  return is[0] as ConfigIssue;
}

test('AUTHORIZATION_KEYS are the issue\'s names, in order', () => {
  assert.deepEqual([...AUTHORIZATION_KEYS], [
    'action', 'from_identities', 'from_namespaces', 'from_cidrs', 'to_ports', 'methods', 'paths', 'hosts', 'headers',
  ]);
});

test('every key parses into the model; other sections are ignored; file order is kept', () => {
  const ps = policies(`[proxy]
log_level = info

[route web]
service = web

[authorization full]
action = deny
from_identities = spiffe://Cluster.Local/ns/prod/sa/web, spiffe://CLUSTER.local/ns/dev/*, */sa/admin, *
from_namespaces = prod, team-*, *-staging, *
from_cidrs = 10.0.0.0/8 192.168.1.7, fd00::/8
to_ports = 8080, 9000-9100, 8080
methods = GET, POST, GET
paths = /api/*, /healthz, *.png, *
hosts = API.Example.com., *.example.com, api.*, [::1], *
headers = X-Env: prod, x-user: admin-*, x-id: *-ops, x-trace: *, x-note: a\\,b

[authorization second]
`);
  assert.deepEqual(ps.map((p) => p.name), ['full', 'second']);
  const p = ps[0] as AuthorizationSpec;
  assert.deepEqual(p, {
    name: 'full',
    source: 'a.ini:7',
    action: 'deny',
    fromIdentities: [
      { kind: 'exact', value: 'spiffe://cluster.local/ns/prod/sa/web' },
      { kind: 'prefix', value: 'spiffe://cluster.local/ns/dev/' },
      { kind: 'suffix', value: '/sa/admin' },
      { kind: 'any', value: '' },
    ],
    fromNamespaces: [
      { kind: 'exact', value: 'prod' },
      { kind: 'prefix', value: 'team-' },
      { kind: 'suffix', value: '-staging' },
      { kind: 'any', value: '' },
    ],
    fromCidrs: [
      { family: 4, prefix: 8, text: '10.0.0.0/8' },
      { family: 4, prefix: 32, text: '192.168.1.7/32' },
      { family: 6, prefix: 8, text: 'fd00::/8' },
    ],
    toPorts: [{ from: 8080, to: 8080 }, { from: 9000, to: 9100 }],
    methods: ['GET', 'POST'],
    paths: [
      { kind: 'prefix', value: '/api/' },
      { kind: 'exact', value: '/healthz' },
      { kind: 'suffix', value: '.png' },
      { kind: 'any', value: '' },
    ],
    hosts: [
      { kind: 'exact', value: 'api.example.com' },
      { kind: 'suffix', value: '.example.com' },
      { kind: 'prefix', value: 'api.' },
      { kind: 'exact', value: '[::1]' },
      { kind: 'any', value: '' },
    ],
    headers: [
      { name: 'x-env', value: { kind: 'exact', value: 'prod' } },
      { name: 'x-user', value: { kind: 'prefix', value: 'admin-' } },
      { name: 'x-id', value: { kind: 'suffix', value: '-ops' } },
      { name: 'x-trace', value: { kind: 'any', value: '' } },
      { name: 'x-note', value: { kind: 'exact', value: 'a,b' } },
    ],
  });
  // A section without keys: action allow, no condition at all (absent keys are absent, not undefined-valued).
  assert.deepEqual(ps[1], { name: 'second', source: 'a.ini:18', action: 'allow' });
  assert.deepEqual(Object.keys(ps[1] as object), ['name', 'source', 'action']);
  // JSON round trip (the snapshot hashes and freezes it).
  assert.deepEqual(JSON.parse(JSON.stringify(ps)), ps);
});

test('action: allow (default), deny, audit; upper case accepted; anything else is an issue naming the choices', () => {
  assert.equal(only('[authorization a]\n').action, 'allow');
  assert.equal(only('[authorization a]\naction = allow\n').action, 'allow');
  assert.equal(only('[authorization a]\naction = deny\n').action, 'deny');
  assert.equal(only('[authorization a]\naction = AUDIT\n').action, 'audit');
  const i = oneIssue('[authorization a]\naction = custom\n');
  assert.deepEqual(i, { source: 'a.ini:2', key: '[authorization a] action', value: 'custom', expected: 'one of allow, deny, audit' });
});

test('an unknown key names the file, line, section and the known keys, with a hint when one is near', () => {
  const i = oneIssue('[authorization web]\naction = allow\nfrom_identity = spiffe://td/ns/a/sa/b\n');
  assert.equal(i.source, 'a.ini:3');
  assert.equal(i.key, '[authorization web] from_identity');
  assert.equal(i.expected, `a key of [authorization NAME] (${AUTHORIZATION_KEYS.join(', ')}); did you mean from_identities?`);
  assert.equal(formatIssue(i), `a.ini:3: [authorization web] from_identity: expected ${i.expected}`);
  assert.match(oneIssue('[authorization web]\nprincipals = x\n').expected, /did you mean from_identities\?$/);
  assert.match(oneIssue('[authorization web]\nipBlocks = 10.0.0.0/8\n').expected, /did you mean from_cidrs\?$/);
  assert.match(oneIssue('[authorization web]\nports = 80\n').expected, /did you mean to_ports\?$/);
  assert.match(oneIssue('[authorization web]\npath = /x\n').expected, /did you mean paths\?$/);
  assert.match(oneIssue('[authorization web]\nmethds = GET\n').expected, /did you mean methods\?$/);
  assert.match(oneIssue('[authorization web]\nnot_paths = /x\n').expected, /negations \(not_\*\) are not supported: write a deny policy/);
  const far = oneIssue('[authorization web]\ncolour = blue\n');
  assert.equal(far.expected, `a key of [authorization NAME] (${AUTHORIZATION_KEYS.join(', ')})`);
});

test('section names: [authorization] without a name, bad characters; names differing only in case', () => {
  const none = oneIssue('[authorization]\naction = deny\n');
  assert.deepEqual(none, {
    source: 'a.ini:1', key: '[authorization]',
    expected: '[authorization NAME] with NAME of 1-63 letters, digits, ".", "_" or "-" (the name is logged with every decision)',
  });
  const spaced = oneIssue('[authorization two words]\n');
  assert.equal(spaced.key, '[authorization two words]');
  assert.match(spaced.expected, /NAME of 1-63 letters/);
  assert.equal(oneIssue(`[authorization ${'x'.repeat(64)}]\n`).source, 'a.ini:1');
  assert.equal(only(`[authorization ${'x'.repeat(63)}]\n`).name, 'x'.repeat(63));
  const folded = oneIssue('[authorization web]\naction = deny\n[authorization Web]\naction = allow\n');
  assert.deepEqual(folded, {
    source: 'a.ini:3', key: '[authorization Web]',
    expected: 'a policy name used once, ignoring case ([authorization web] is at line 1; logs and counters could not tell them apart)',
  });
});

test('the same section twice: parseIni reports it once with both lines; the first section is the policy', () => {
  const { doc, issues: iniIssues } = parseIni('[authorization web]\naction = deny\n[authorization web]\naction = allow\n', 'a.ini');
  assert.deepEqual(iniIssues, [{ source: 'a.ini:3', key: '[authorization web]', expected: 'each section once (already at line 1)' }]);
  const r = parseAuthorizations(doc);
  assert.ok(r.ok, 'the repetition is reported once, by parseIni');
  assert.deepEqual(r.policies.map((p) => [p.name, p.action, p.source]), [['web', 'deny', 'a.ini:1']]);
});

test('an empty value is an issue for every key (leave the key out for no condition)', () => {
  for (const key of AUTHORIZATION_KEYS) {
    const i = oneIssue(`[authorization a]\n${key} =\n`);
    assert.equal(i.source, 'a.ini:2', key);
    assert.equal(i.key, `[authorization a] ${key}`, key);
    assert.equal(i.expected, 'a value (leave the key out for no condition)', key);
  }
  // Only separators: no item at all.
  assert.match(oneIssue('[authorization a]\npaths = , ,\n').expected, /^path patterns like/);
  assert.match(oneIssue('[authorization a]\nfrom_cidrs = ,\n').expected, /^a list of CIDRs like/);
  assert.match(oneIssue('[authorization a]\nto_ports = ,\n').expected, /^a list of ports and ranges like/);
});

test('bad values: each reported at its line with what was expected', () => {
  const cases: [key: string, value: string, expected: RegExp][] = [
    ['from_identities', 'cluster.local/ns/a/sa/b', /^SPIFFE ID patterns: .*starts with spiffe:\/\/.*\("cluster\.local\/ns\/a\/sa\/b" is not\)$/],
    ['from_identities', 'spiffe://td/ns/*/sa/b', /with "\*" only at its start or end/],
    ['from_identities', 'web*', /a prefix starting with spiffe:\/\//],
    ['from_identities', '*a b', /letters, digits/],
    ['from_identities', 'spiffe://td/ns/a/sa/b/', /no trailing "\/"/],
    ['from_namespaces', 'pr od', /namespace patterns of letters/],
    ['from_namespaces', 'a*b', /one "\*", only at the start/],
    ['from_namespaces', '**', /one "\*"/],
    ['from_cidrs', '10.0.0.1/8', /host bits are set; did you mean 10\.0\.0\.0\/8\?/],
    ['from_cidrs', '10.0.0.0/33', /prefix length must be 0-32/],
    ['from_cidrs', '*', /"\*" is not an IPv4 or IPv6 address/],
    ['to_ports', '0', /"0" is not a port or range/],
    ['to_ports', '90-80', /"90-80" is not a port or range/],
    ['to_ports', 'http', /"http" is not a port or range/],
    ['methods', 'get', /^methods in upper case \("get": methods are case-sensitive, write GET\)$/],
    ['methods', '*', /compared exactly \("\*": leave methods out to allow any method\)/],
    ['methods', 'GET POST', /^HTTP method tokens like GET, POST \("GET POST" is not\)$/],
    ['paths', 'api/*', /paths starting with "\/", or "\*suffix" \("api\/\*" is not\)/],
    ['paths', '/a?b=1', /the query string is not matched/],
    ['paths', '/a/*/b', /one "\*", only at the start/],
    ['hosts', 'api.example.com:8080', /host names without a port.*use to_ports/],
    ['hosts', '::1', /host names without a port/],
    ['hosts', 'a_b!.com', /host names without a port/],
    ['hosts', '*.exa mple.com', /host names without a port/],
    ['headers', 'x-env', /header conditions "name: value"/],
    ['headers', 'x-env:', /header conditions "name: value"/],
    ['headers', ':path: /x', /pseudo-headers like ":path" cannot be used/],
    ['headers', 'x env: a', /a header name of token characters/],
    ['headers', 'x-a: a*b', /one "\*", only at the start/],
  ];
  for (const [key, value, expected] of cases) {
    const i = oneIssue(`[authorization p]\naction = deny\n${key} = ${value}\n`);
    assert.equal(i.source, 'a.ini:3', `${key} = ${value}`);
    assert.equal(i.key, `[authorization p] ${key}`, `${key} = ${value}`);
    assert.equal(i.value, value, `${key} = ${value}`);
    assert.match(i.expected, expected, `${key} = ${value}: ${i.expected}`);
  }
});

test('all issues of a file are reported together, a bad section yields no policy', () => {
  const is = issues(`[authorization good]
action = deny
[authorization bad]
action = maybe
to_ports = x
colour = red
[authorization]
`);
  assert.deepEqual(is.map((i) => `${i.source} ${i.key}`), [
    'a.ini:6 [authorization bad] colour',
    'a.ini:4 [authorization bad] action',
    'a.ini:5 [authorization bad] to_ports',
    'a.ini:7 [authorization]',
  ]);
  assert.throws(() => authorizationsOrThrow(parseIni('[authorization a]\naction = x\n', 'a.ini').doc), (e: unknown) =>
    e instanceof RemoraError && e.code === 'REMORA_ERR_CONFIG_INVALID' && /a\.ini:2: \[authorization a\] action = "x": expected one of allow, deny, audit/.test(e.message));
  assert.deepEqual(authorizationsOrThrow(parseIni('[authorization a]\n', 'a.ini').doc).map((p) => p.name), ['a']);
});

test('no [authorization] section: ok with no policies and no warnings', () => {
  const r = parse('[proxy]\nlog_level = info\n[authorizationx y]\n');
  assert.deepEqual(r, { ok: true, policies: [], warnings: [] });
});

test('warnings: a deny with HTTP-only keys and no to_ports widens to every TCP connection', () => {
  const r = parse(`[authorization no-post]
action = deny
paths = /admin/*
methods = POST
[authorization scoped]
action = deny
methods = POST
to_ports = 8080
[authorization from-ext]
action = deny
from_cidrs = 0.0.0.0/0
hosts = admin.example.com
[authorization allow-get]
methods = GET
[authorization audit-get]
action = audit
methods = GET
[authorization l4-deny]
action = deny
from_cidrs = 10.0.0.0/8
`);
  assert.ok(r.ok);
  assert.equal(r.policies.length, 6);
  assert.equal(r.warnings.length, 2);
  const [w1, w2] = r.warnings;
  assert.equal(w1?.source, 'a.ini:3', 'at the first HTTP-only key in the file (paths, line 3)');
  assert.equal(w1?.key, '[authorization no-post] paths');
  assert.equal(w1?.message, 'deny policy "no-post" uses methods, paths (HTTP only) without to_ports: on opaque TCP connections '
    + 'these keys are ignored, so it denies EVERY TCP connection, on every port; add to_ports with the HTTP ports to scope it');
  assert.equal(w2?.source, 'a.ini:12');
  assert.equal(w2?.key, '[authorization from-ext] hosts');
  assert.match(w2?.message ?? '', /denies every TCP connection its from_\* keys match, on every port/);
  assert.equal(formatAuthorizationWarning(w2 ?? { source: '', key: '', message: '' }), `a.ini:12: [authorization from-ext] hosts: ${w2?.message ?? ''}`);
});

test('httpOnlyKeysOf and stringPattern', () => {
  const p = only('[authorization a]\nheaders = x: *\nmethods = GET\nto_ports = 80\n');
  assert.deepEqual(httpOnlyKeysOf(p), ['methods', 'headers']);
  assert.deepEqual(httpOnlyKeysOf(only('[authorization a]\nto_ports = 80\nfrom_namespaces = a\n')), []);
  const lit = (s: string) => ({ ok: true as const, value: s });
  assert.deepEqual(stringPattern('*', lit), { ok: true, value: { kind: 'any', value: '' } });
  assert.deepEqual(stringPattern('a*', lit), { ok: true, value: { kind: 'prefix', value: 'a' } });
  assert.deepEqual(stringPattern('*a', lit), { ok: true, value: { kind: 'suffix', value: 'a' } });
  assert.deepEqual(stringPattern('a', lit), { ok: true, value: { kind: 'exact', value: 'a' } });
  assert.equal(stringPattern('*a*', lit).ok, false);
  assert.equal(stringPattern('a*b', lit).ok, false);
});
