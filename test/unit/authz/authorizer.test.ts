import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIssue } from '../../../src/config/config-issue.js';
import { parseIni } from '../../../src/config/ini-file.js';
import { parseAuthorizations } from '../../../src/config/authorization-config.js';
import type { AuthorizationSpec } from '../../../src/config/authorization-spec.js';
import {
  compileAuthorizer, compileStringMatches, describeDecision, normalizeHost, normalizePath,
  type Authorizer, type AuthzDecision, type ConnectionAttributes, type RequestAttributes,
} from '../../../src/authz/authorizer.js';

function specs(text: string): readonly AuthorizationSpec[] {
  const { doc, issues } = parseIni(text, 'a.ini');
  assert.deepEqual(issues, []);
  const r = parseAuthorizations(doc);
  if (!r.ok) assert.fail(r.issues.map(formatIssue).join('; '));
  return r.policies;
}

function authz(text: string): Authorizer {
  return compileAuthorizer(specs(text));
}

const WEB = 'spiffe://cluster.local/ns/prod/sa/web';

function conn(over: Partial<ConnectionAttributes> = {}): ConnectionAttributes {
  return { peerIdentity: WEB, sourceIp: '10.1.2.3', destinationPort: 8080, ...over };
}

function req(over: Partial<Omit<RequestAttributes, 'header'>> & { headers?: Record<string, string> } = {}): RequestAttributes {
  const headers = over.headers ?? {};
  return {
    peerIdentity: over.peerIdentity === undefined && 'peerIdentity' in over ? undefined : (over.peerIdentity ?? WEB),
    sourceIp: over.sourceIp ?? '10.1.2.3',
    destinationPort: over.destinationPort ?? 8080,
    method: over.method ?? 'GET',
    path: over.path ?? '/api/items',
    host: over.host ?? 'api.example.com',
    header: (name) => headers[name],
  };
}

/** [allowed, reason, policy, audited] of a decision, for compact assertions. */
function d(x: AuthzDecision): [boolean, string, string | undefined, string[]] {
  return [x.allowed, x.reason, x.policy, [...x.audited]];
}

/** A single allow policy with `key = value`: does the request match it (allowed) or not (no-allow-matched)? */
function allows(keyValue: string, r: RequestAttributes): boolean {
  const a = authz(`[authorization p]\n${keyValue}\n`);
  const x = a.checkRequest(r);
  assert.ok(x.reason === 'allowed' || x.reason === 'no-allow-matched');
  return x.allowed;
}

/** A single deny policy with `key = value`: does it deny the request? */
function denies(keyValue: string, r: RequestAttributes): boolean {
  const x = authz(`[authorization p]\naction = deny\n${keyValue}\n`).checkRequest(r);
  assert.ok(x.reason === 'denied' || x.reason === 'allowed');
  return !x.allowed;
}

test('no policies: hasPolicies false, every decision is the frozen no-policies decision', () => {
  const a = compileAuthorizer([]);
  assert.equal(a.hasPolicies, false);
  assert.equal(a.enforces, false);
  const x = a.checkConnection(conn());
  assert.deepEqual(d(x), [true, 'no-policies', undefined, []]);
  assert.ok(Object.isFrozen(x));
  assert.equal(a.checkRequest(req()), x, 'one shared decision object');
});

test('from_identities: exact, prefix, suffix, *; plaintext never matches, not even *', () => {
  const cases: [pattern: string, id: string | undefined, match: boolean][] = [
    [WEB, WEB, true],
    [WEB, 'spiffe://cluster.local/ns/prod/sa/webx', false],
    ['spiffe://Cluster.Local/ns/prod/sa/web', WEB, true],
    ['spiffe://cluster.local/ns/prod/*', WEB, true],
    ['spiffe://cluster.local/ns/prod/*', 'spiffe://cluster.local/ns/production/sa/web', false],
    ['*/sa/web', WEB, true],
    ['*/sa/web', 'spiffe://cluster.local/ns/prod/sa/api', false],
    ['*', WEB, true],
    ['*', undefined, false],
    [WEB, undefined, false],
    ['spiffe://cluster.local/ns/dev/sa/x, */sa/web', WEB, true],
  ];
  for (const [pattern, id, match] of cases) {
    assert.equal(allows(`from_identities = ${pattern}`, req({ peerIdentity: id })), match, `${pattern} vs ${String(id)}`);
    const a = authz(`[authorization p]\nfrom_identities = ${pattern}\n`);
    assert.equal(a.checkConnection(conn({ peerIdentity: id })).allowed, match, `TCP ${pattern} vs ${String(id)}`);
  }
});

test('from_namespaces: from the Istio-shaped identity; exact, prefix, suffix, *; plaintext and other shapes never match', () => {
  const cases: [pattern: string, id: string | undefined, match: boolean][] = [
    ['prod', WEB, true],
    ['prod', 'spiffe://cluster.local/ns/production/sa/web', false],
    ['team-*', 'spiffe://td/ns/team-a/sa/x', true],
    ['team-*', 'spiffe://td/ns/teams/sa/x', false],
    ['*-staging', 'spiffe://td/ns/web-staging/sa/x', true],
    ['*-staging', 'spiffe://td/ns/web-prod/sa/x', false],
    ['*', WEB, true],
    ['*', undefined, false],
    ['*', 'spiffe://td/workload/web', false],
    ['prod', 'spiffe://td/workload/prod', false],
    ['dev, prod', WEB, true],
  ];
  for (const [pattern, id, match] of cases) {
    assert.equal(allows(`from_namespaces = ${pattern}`, req({ peerIdentity: id })), match, `${pattern} vs ${String(id)}`);
  }
  // The memo of the last identity does not leak between different identities.
  const a = authz('[authorization p]\nfrom_namespaces = prod\n');
  for (let i = 0; i < 3; i++) {
    assert.equal(a.checkConnection(conn({ peerIdentity: WEB })).allowed, true);
    assert.equal(a.checkConnection(conn({ peerIdentity: 'spiffe://td/ns/dev/sa/web' })).allowed, false);
  }
});

test('from_cidrs: IPv4, IPv6, IPv4-mapped sources, mapped CIDRs, families kept apart, garbage never matches', () => {
  const cases: [cidrs: string, ip: string, match: boolean][] = [
    ['10.0.0.0/8', '10.1.2.3', true],
    ['10.0.0.0/8', '11.0.0.1', false],
    ['10.0.0.0/8', '::ffff:10.1.2.3', true],
    ['10.0.0.0/8', '::FFFF:10.1.2.3', true],
    ['10.0.0.0/8', '0:0:0:0:0:ffff:a01:203', true],
    ['10.0.0.0/8', '::ffff:11.1.2.3', false],
    ['192.168.1.7', '192.168.1.7', true],
    ['192.168.1.7', '192.168.1.8', false],
    ['192.168.1.0/31', '192.168.1.1', true],
    ['192.168.1.0/31', '192.168.1.2', false],
    ['0.0.0.0/0', '203.0.113.9', true],
    ['0.0.0.0/0', 'fd00::1', false],
    ['fd00::/8', 'fd12:3456::1', true],
    ['fd00::/8', 'fe80::1', false],
    ['fd00::/8', 'fd00::1%eth0', true],
    ['2001:db8::/32', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['2001:db8::/32', '2001:db9::', false],
    ['2001:db8:0:1::/64', '2001:db8:0:1:abcd::1', true],
    ['2001:db8:0:1::/64', '2001:db8:0:2::1', false],
    ['2001:db8::1', '2001:db8::1', true],
    ['2001:db8::1', '2001:db8::2', false],
    ['::/0', 'fe80::1', true],
    ['::/0', '10.1.2.3', false],
    ['::/0', '::ffff:10.1.2.3', false],
    ['::ffff:10.0.0.0/104', '10.9.9.9', true],
    ['::ffff:10.0.0.0/104', '::ffff:10.9.9.9', true],
    ['::ffff:10.0.0.0/104', '11.9.9.9', false],
    ['::1', '::1', true],
    ['::1', '::2', false],
    ['10.0.0.0/8, fd00::/8', 'fd00::5', true],
    ['10.0.0.0/8, fd00::/8', '10.0.0.5', true],
    ['10.0.0.0/8, fd00::/8', '172.16.0.1', false],
    ['0.0.0.0/0', 'not-an-ip', false],
    ['0.0.0.0/0', '', false],
    ['0.0.0.0/0', '1.2.3', false],
    ['0.0.0.0/0', '1.2.3.256', false],
    ['::/0', '1::2::3', false],
    ['::/0', '1:2:3:4:5:6:7:8:9', false],
    ['::/0', '12345::', false],
  ];
  for (const [cidrs, ip, match] of cases) {
    const a = authz(`[authorization p]\nfrom_cidrs = ${cidrs}\n`);
    assert.equal(a.checkConnection(conn({ sourceIp: ip })).allowed, match, `${cidrs} vs ${ip}`);
  }
  // Interleaved sources through one authorizer (the per-address memo is keyed by the text).
  const a = authz('[authorization p]\nfrom_cidrs = 10.0.0.0/8\n');
  const seq = ['10.0.0.1', '11.0.0.1', '10.0.0.1', 'fd00::1', '::ffff:10.0.0.1', '11.0.0.1'];
  assert.deepEqual(seq.map((ip) => a.checkConnection(conn({ sourceIp: ip })).allowed), [true, false, true, false, true, false]);
});

test('to_ports: single ports and ranges', () => {
  const cases: [ports: string, port: number, match: boolean][] = [
    ['8080', 8080, true], ['8080', 8081, false],
    ['9000-9100', 9000, true], ['9000-9100', 9100, true], ['9000-9100', 8999, false], ['9000-9100', 9101, false],
    ['80, 443, 9000-9100', 443, true], ['80, 443, 9000-9100', 9050, true], ['80, 443, 9000-9100', 8080, false],
  ];
  for (const [ports, port, match] of cases) {
    assert.equal(authz(`[authorization p]\nto_ports = ${ports}\n`).checkConnection(conn({ destinationPort: port })).allowed, match, `${ports} vs ${port}`);
    assert.equal(allows(`to_ports = ${ports}`, req({ destinationPort: port })), match, `HTTP ${ports} vs ${port}`);
  }
});

test('methods: exact, case-sensitive', () => {
  assert.equal(allows('methods = GET, HEAD', req({ method: 'GET' })), true);
  assert.equal(allows('methods = GET, HEAD', req({ method: 'HEAD' })), true);
  assert.equal(allows('methods = GET, HEAD', req({ method: 'POST' })), false);
  assert.equal(allows('methods = GET', req({ method: 'get' })), false);
  assert.equal(allows('methods = GET', req({ method: 'GETX' })), false);
});

test('paths: exact, prefix, suffix, *; no query; case-sensitive', () => {
  const cases: [paths: string, path: string, match: boolean][] = [
    ['/healthz', '/healthz', true], ['/healthz', '/healthz/', false], ['/healthz', '/Healthz', false],
    ['/api/*', '/api/items', true], ['/api/*', '/api/', true], ['/api/*', '/api', false], ['/api/*', '/apix/1', false],
    ['*.png', '/img/a.png', true], ['*.png', '/img/a.png.txt', false],
    ['*', '/anything', true],
    ['/a, /b/*', '/b/c', true], ['/a, /b/*', '/c', false],
  ];
  for (const [paths, path, match] of cases) {
    assert.equal(allows(`paths = ${paths}`, req({ path })), match, `allow ${paths} vs ${path}`);
    assert.equal(denies(`paths = ${paths}`, req({ path })), match, `deny ${paths} vs ${path}`);
  }
});

test('paths not in normal form: deny/audit match either form, allow needs both', () => {
  // Deny cannot be bypassed with dot segments, double slashes or encoded unreserved characters.
  for (const path of ['/x/../admin/a', '//admin/a', '/admin//a', '/%61dmin/a', '/%2e%2e/admin/a', '/./admin/a', '/admin/./a']) {
    assert.equal(denies('paths = /admin/*', req({ path })), true, `deny /admin/* vs ${path}`);
  }
  assert.equal(denies('paths = /admin/*', req({ path: '/admin%2Fa' })), false, 'an encoded "/" is not decoded');
  // Allow: both the path as received and its normal form must match.
  assert.equal(allows('paths = /api/*', req({ path: '/api/../admin' })), false);
  assert.equal(allows('paths = /api/*', req({ path: '/api/%7Euser' })), true);
  assert.equal(allows('paths = /api/*', req({ path: '/admin/../api/x' })), false, 'the received form does not match');
  assert.equal(allows('paths = /api/*', req({ path: '/api/./x' })), true);
  // Audit lists on either form.
  const a = authz('[authorization p]\naction = audit\npaths = /admin/*\n');
  assert.deepEqual(a.checkRequest(req({ path: '/z/../admin/1' })).audited, ['p']);
});

test('normalizePath and normalizeHost', () => {
  assert.equal(normalizePath('/a/b'), '/a/b');
  assert.equal(normalizePath('/a/./b/../c'), '/a/c');
  assert.equal(normalizePath('/a/..'), '/');
  assert.equal(normalizePath('/..'), '/');
  assert.equal(normalizePath('/a/b/.'), '/a/b/');
  assert.equal(normalizePath('//a///b'), '/a/b');
  assert.equal(normalizePath('/%41%7e%2f%2F'), '/A~%2F%2F');
  assert.equal(normalizePath('/.well-known/x'), '/.well-known/x');
  assert.equal(normalizePath('*'), '*');
  assert.equal(normalizeHost('API.Example.COM:8080'), 'api.example.com');
  assert.equal(normalizeHost('api.example.com.'), 'api.example.com');
  assert.equal(normalizeHost('[::1]:8080'), '[::1]');
  assert.equal(normalizeHost('[::1]'), '[::1]');
  assert.equal(normalizeHost(''), '');
});

test('hosts: case-insensitive, port and trailing dot ignored, exact/prefix/suffix/*, empty host matches nothing', () => {
  const cases: [hosts: string, host: string, match: boolean][] = [
    ['api.example.com', 'api.example.com', true],
    ['api.example.com', 'API.Example.Com', true],
    ['API.example.com', 'api.example.com:8443', true],
    ['api.example.com', 'api.example.com.', true],
    ['api.example.com', 'www.example.com', false],
    ['*.example.com', 'a.b.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'evil-example.com', false],
    ['api.*', 'api.internal:80', true],
    ['api.*', 'web.internal', false],
    ['[::1]', '[::1]:8080', true],
    ['*', 'x', true],
    ['*', '', false],
    ['api.example.com', '', false],
  ];
  for (const [hosts, host, match] of cases) {
    assert.equal(allows(`hosts = ${hosts}`, req({ host })), match, `${hosts} vs ${host}`);
  }
});

test('headers: entries are alternatives; exact/prefix/suffix/* (present); absent never matches', () => {
  const h = 'headers = x-env: prod, x-user: admin-*, x-id: *-ops, x-trace: *';
  assert.equal(allows(h, req({ headers: { 'x-env': 'prod' } })), true);
  assert.equal(allows(h, req({ headers: { 'x-env': 'dev' } })), false);
  assert.equal(allows(h, req({ headers: { 'x-env': 'Prod' } })), false, 'values are case-sensitive');
  assert.equal(allows(h, req({ headers: { 'x-env': 'dev', 'x-user': 'admin-bob' } })), true, 'one entry is enough');
  assert.equal(allows(h, req({ headers: { 'x-user': 'bob-admin-' } })), false);
  assert.equal(allows(h, req({ headers: { 'x-id': 'team-ops' } })), true);
  assert.equal(allows(h, req({ headers: { 'x-trace': '' } })), true, '* = present, even empty');
  assert.equal(allows(h, req({ headers: {} })), false);
  // Names are compared lower-case: the parser lower-cases them, header() is called with lower-case names.
  const seen: string[] = [];
  const r = { ...req(), header: (n: string) => { seen.push(n); return n === 'x-env' ? 'prod' : undefined; } };
  assert.equal(authz('[authorization p]\nheaders = X-Env: prod\n').checkRequest(r).allowed, true);
  assert.deepEqual(seen, ['x-env']);
});

test('headers with repeated values: deny matches one element, allow needs the whole value', () => {
  const joined = req({ headers: { 'x-user': 'bob, admin' } });
  assert.equal(denies('headers = x-user: admin', joined), true);
  assert.equal(denies('headers = x-user: admin', req({ headers: { 'x-user': 'bob,admin' } })), true);
  assert.equal(denies('headers = x-user: admin', req({ headers: { 'x-user': 'bob, carol' } })), false);
  assert.equal(allows('headers = x-user: admin', joined), false);
  assert.equal(allows('headers = x-user: bob*', joined), true, 'the whole joined value starts with bob');
});

test('several keys must all match (AND): each attribute alone can break the match', () => {
  const a = authz(`[authorization all]
from_identities = spiffe://cluster.local/ns/prod/*
from_namespaces = prod
from_cidrs = 10.0.0.0/8
to_ports = 8080
methods = GET
paths = /api/*
hosts = api.example.com
headers = x-env: prod
`);
  const base = { headers: { 'x-env': 'prod' } };
  assert.deepEqual(d(a.checkRequest(req(base))), [true, 'allowed', 'all', []]);
  const breakers: Partial<Omit<RequestAttributes, 'header'>>[] = [
    { peerIdentity: 'spiffe://cluster.local/ns/dev/sa/web' },
    { peerIdentity: undefined },
    { sourceIp: '192.168.0.1' },
    { destinationPort: 8081 },
    { method: 'POST' },
    { path: '/other' },
    { host: 'web.example.com' },
  ];
  for (const b of breakers) {
    assert.deepEqual(d(a.checkRequest(req({ ...base, ...b }))), [false, 'no-allow-matched', undefined, []], JSON.stringify(b));
  }
  assert.equal(a.checkRequest(req({ headers: { 'x-env': 'dev' } })).allowed, false);
});

test('deny beats allow; the first matching deny / allow in file order decides and is named', () => {
  const a = authz(`[authorization allow-all]
[authorization deny-ext]
action = deny
from_cidrs = 203.0.113.0/24
[authorization deny-ext-2]
action = deny
from_cidrs = 203.0.113.0/25
[authorization allow-web]
from_identities = ${WEB}
`);
  assert.equal(a.enforces, true);
  assert.deepEqual(d(a.checkRequest(req({ sourceIp: '203.0.113.5' }))), [false, 'denied', 'deny-ext', []]);
  assert.deepEqual(d(a.checkConnection(conn({ sourceIp: '203.0.113.5' }))), [false, 'denied', 'deny-ext', []]);
  assert.deepEqual(d(a.checkRequest(req())), [true, 'allowed', 'allow-all', []], 'file order: allow-all before allow-web');
  // The same frozen decision object each time (no allocation without audits).
  const x = a.checkRequest(req({ sourceIp: '203.0.113.7' }));
  assert.ok(Object.isFrozen(x));
  assert.equal(a.checkRequest(req({ sourceIp: '203.0.113.8' })), x);
  assert.equal(describeDecision(x), 'denied by policy deny-ext');
});

test('when any allow policy exists, a request matching none is denied (no-allow-matched)', () => {
  const a = authz(`[authorization prod-get]
from_namespaces = prod
methods = GET
paths = /api/*
`);
  assert.deepEqual(d(a.checkRequest(req())), [true, 'allowed', 'prod-get', []]);
  const x = a.checkRequest(req({ method: 'DELETE' }));
  assert.deepEqual(d(x), [false, 'no-allow-matched', undefined, []]);
  assert.equal(describeDecision(x), 'denied: no allow policy matched');
  assert.deepEqual(d(a.checkRequest(req({ peerIdentity: undefined }))), [false, 'no-allow-matched', undefined, []]);
});

test('deny policies only: what no deny matches is allowed (reason allowed, no policy)', () => {
  const a = authz('[authorization d]\naction = deny\nfrom_cidrs = 10.0.0.0/8\n');
  const x = a.checkRequest(req({ sourceIp: '192.168.0.1' }));
  assert.deepEqual(d(x), [true, 'allowed', undefined, []]);
  assert.equal(describeDecision(x), 'allowed: no allow policy, no deny matched');
  assert.deepEqual(d(a.checkRequest(req())), [false, 'denied', 'd', []]);
});

test('a policy without keys: allow allows everything, deny denies everything (TCP too)', () => {
  const allowAll = authz('[authorization all]\n');
  assert.deepEqual(d(allowAll.checkRequest(req({ peerIdentity: undefined, sourceIp: 'x' }))), [true, 'allowed', 'all', []]);
  assert.deepEqual(d(allowAll.checkConnection(conn({ peerIdentity: undefined }))), [true, 'allowed', 'all', []]);
  const denyAll = authz('[authorization none]\naction = deny\n[authorization all]\n');
  assert.deepEqual(d(denyAll.checkRequest(req())), [false, 'denied', 'none', []]);
  assert.deepEqual(d(denyAll.checkConnection(conn())), [false, 'denied', 'none', []]);
});

test('audit policies never change the decision; every matching one is listed in file order', () => {
  const onlyAudit = authz(`[authorization a1]
action = audit
from_cidrs = 10.0.0.0/8
[authorization a2]
action = audit
methods = GET
[authorization a3]
action = audit
methods = POST
`);
  assert.equal(onlyAudit.hasPolicies, true);
  assert.equal(onlyAudit.enforces, false);
  const x = onlyAudit.checkRequest(req());
  assert.deepEqual(d(x), [true, 'no-policies', undefined, ['a1', 'a2']]);
  assert.ok(Object.isFrozen(x) && Object.isFrozen(x.audited));
  assert.equal(describeDecision(x), 'allowed: no policies (audited by a1, a2)');
  assert.deepEqual(d(onlyAudit.checkRequest(req({ sourceIp: '1.1.1.1', method: 'PUT' }))), [true, 'no-policies', undefined, []]);

  const mixed = authz(`[authorization watch]
action = audit
[authorization d]
action = deny
methods = DELETE
[authorization ok]
methods = GET
`);
  assert.deepEqual(d(mixed.checkRequest(req({ method: 'DELETE' }))), [false, 'denied', 'd', ['watch']]);
  assert.deepEqual(d(mixed.checkRequest(req())), [true, 'allowed', 'ok', ['watch']]);
  assert.deepEqual(d(mixed.checkRequest(req({ method: 'PUT' }))), [false, 'no-allow-matched', undefined, ['watch']]);
});

test('TCP: allow policies with HTTP-only keys never match; deny and audit ignore those keys (wider)', () => {
  for (const key of ['methods = GET', 'paths = /x', 'hosts = a.example.com', 'headers = x-a: b']) {
    const allow = authz(`[authorization http]\n${key}\n`);
    assert.deepEqual(d(allow.checkConnection(conn())), [false, 'no-allow-matched', undefined, []], `allow ${key}`);
    const deny = authz(`[authorization http]\naction = deny\n${key}\n`);
    assert.deepEqual(d(deny.checkConnection(conn())), [false, 'denied', 'http', []], `deny ${key}`);
    const audit = authz(`[authorization http]\naction = audit\n${key}\n`);
    assert.deepEqual(d(audit.checkConnection(conn())), [true, 'no-policies', undefined, ['http']], `audit ${key}`);
  }
  // An allow with HTTP keys still matches HTTP; a pure-L4 allow still matches TCP.
  const a = authz(`[authorization get]
methods = GET
[authorization db]
to_ports = 5432
from_namespaces = prod
`);
  assert.deepEqual(d(a.checkRequest(req())), [true, 'allowed', 'get', []]);
  assert.deepEqual(d(a.checkConnection(conn({ destinationPort: 5432 }))), [true, 'allowed', 'db', []]);
  assert.deepEqual(d(a.checkConnection(conn({ destinationPort: 8080 }))), [false, 'no-allow-matched', undefined, []]);
  // A deny scoped by to_ports and from_* keeps those conditions on TCP.
  const scoped = authz('[authorization no-post]\naction = deny\nmethods = POST\nto_ports = 8080\n');
  assert.equal(scoped.checkConnection(conn({ destinationPort: 8080 })).allowed, false);
  assert.equal(scoped.checkConnection(conn({ destinationPort: 5432 })).allowed, true);
  assert.equal(scoped.checkRequest(req({ method: 'GET' })).allowed, true, 'on HTTP the method counts');
  assert.equal(scoped.checkRequest(req({ method: 'POST' })).allowed, false);
});

test('compileStringMatches', () => {
  const m = compileStringMatches([{ kind: 'exact', value: 'a' }, { kind: 'prefix', value: 'p-' }, { kind: 'suffix', value: '-s' }]);
  assert.deepEqual(['a', 'p-1', '1-s', 'b', 'xp-', 'A'].map(m), [true, true, true, false, false, false]);
  const one = compileStringMatches([{ kind: 'exact', value: 'a' }]);
  assert.deepEqual(['a', 'b'].map(one), [true, false]);
  const set = compileStringMatches([{ kind: 'exact', value: 'a' }, { kind: 'exact', value: 'b' }]);
  assert.deepEqual(['a', 'b', 'c'].map(set), [true, true, false]);
  const any = compileStringMatches([{ kind: 'exact', value: 'a' }, { kind: 'any', value: '' }]);
  assert.deepEqual(['a', 'zzz', ''].map(any), [true, true, true]);
});
