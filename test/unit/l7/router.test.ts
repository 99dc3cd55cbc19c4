import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RouteDecision } from '../../../src/l7/request-types.js';
import { DEFAULT_RETRY_POLICY } from '../../../src/config/route-spec.js';
import { RouteTable, parseQuery, splitAuthority } from '../../../src/l7/router/route-table.js';
import { NO_HEADER_MUTATIONS, backendId, parseWeights, type RouteMatchSpec, type RouteSpec } from '../../../src/config/route-spec.js';
import { head, seededRandom } from './helpers.js';

const ANY: RouteMatchSpec = { hosts: [], methods: [], headers: [], query: [] };

function spec(name: string, match: Partial<RouteMatchSpec> = {}, extra: Partial<RouteSpec> = {}): RouteSpec {
  return {
    name, service: 'web', order: 0, match: { ...ANY, ...match }, backends: [{ service: name, weight: 1 }],
    timeoutMs: 0, retry: DEFAULT_RETRY_POLICY, requestHeaders: NO_HEADER_MUTATIONS, responseHeaders: NO_HEADER_MUTATIONS,
    ...extra,
  };
}

function routeOf(d: RouteDecision): string {
  return d.kind === 'forward' ? d.route : `reply:${d.reply.reason}`;
}

function table(specs: RouteSpec[], seed = 1): RouteTable {
  return RouteTable.compile(specs, { random: seededRandom(seed) });
}

test('first match wins in declared order; order overrides file order; no match -> no-route 404', () => {
  const t = table([
    spec('api', { path: { kind: 'prefix', value: '/api' } }),
    spec('api-v2', { path: { kind: 'prefix', value: '/api/v2' } }),
    spec('early', { path: { kind: 'exact', value: '/api/v2/x' } }, { order: -1 }),
    spec('late-catch-all', {}, { order: 10 }),
    spec('health', { path: { kind: 'exact', value: '/healthz' } }),
  ]);
  assert.equal(routeOf(t.match(head({ target: '/api/v2/users' }), 'web')), 'api', 'api is declared first');
  assert.equal(routeOf(t.match(head({ target: '/api/v2/x' }), 'web')), 'early');
  assert.equal(routeOf(t.match(head({ target: '/healthz' }), 'web')), 'health');
  assert.equal(routeOf(t.match(head({ target: '/other' }), 'web')), 'late-catch-all');
  assert.deepEqual(t.describe().map((r) => r.name), ['early', 'api', 'api-v2', 'health', 'late-catch-all']);

  const noCatchAll = table([spec('api', { path: { kind: 'prefix', value: '/api' } })]);
  const d = noCatchAll.match(head({ target: '/nope' }), 'web');
  assert.equal(d.kind, 'reply');
  if (d.kind === 'reply') {
    assert.equal(d.reply.status, 404);
    assert.equal(d.reply.reason, 'no-route');
  }
});

test('services without routes forward to themselves with the default policy; routes are per service', () => {
  const t = table([spec('api', { path: { kind: 'prefix', value: '/api' } })]);
  const d = t.match(head({ target: '/x' }), 'db');
  assert.equal(d.kind, 'forward');
  if (d.kind === 'forward') {
    assert.deepEqual(d.backend, { service: 'db', weight: 1 });
    assert.equal(d.route, 'default:db');
    assert.equal(d.timeoutMs, 0);
    assert.equal(d.retry, DEFAULT_RETRY_POLICY);
  }
  assert.equal(t.match(head({ target: '/x' }), 'db'), d, 'default decisions are cached');
  assert.equal(t.hasRoutes('web'), true);
  assert.equal(t.hasRoutes('db'), false);
  const custom = RouteTable.compile([], { random: Math.random, defaultTimeoutMs: 1500, defaultRetry: { ...DEFAULT_RETRY_POLICY, maxAttempts: 1 } });
  const c = custom.match(head(), 'x');
  assert.ok(c.kind === 'forward' && c.timeoutMs === 1500 && c.retry.maxAttempts === 1);
});

test('path matches: exact, segment-aware prefix, full-match regex; query is not part of the path', () => {
  const t = table([
    spec('exact', { path: { kind: 'exact', value: '/a' } }),
    spec('prefix', { path: { kind: 'prefix', value: '/b/' } }),
    spec('regex', { path: { kind: 'regex', value: '/c/[0-9]+' } }),
    spec('root', { path: { kind: 'prefix', value: '/' } }),
  ]);
  const r = (target: string): string => routeOf(t.match(head({ target }), 'web'));
  assert.equal(r('/a'), 'exact');
  assert.equal(r('/a?x=1'), 'exact');
  assert.equal(r('/a/'), 'root');
  assert.equal(r('/b'), 'prefix');
  assert.equal(r('/b/c'), 'prefix');
  assert.equal(r('/bc'), 'root', 'prefix matching is per segment');
  assert.equal(r('/c/123'), 'regex');
  assert.equal(r('/c/123/x'), 'root', 'regexes match the whole path');
  assert.equal(r('/c/12a'), 'root');
});

test('host matches: exact (port optional), *.suffix, *, trailing dot, IPv6 literal, port from original dst', () => {
  const t = table([
    spec('exact', { hosts: ['api.example.com'] }),
    spec('port', { hosts: ['admin.example.com:8443'] }),
    spec('wild', { hosts: ['*.example.com'] }),
    spec('v6', { hosts: ['[fd00::1]'] }),
    spec('any', { hosts: ['*'] }),
  ]);
  const r = (authority: string, port = 80): string =>
    routeOf(t.match(head({ authority, originalDst: { address: '10.0.0.1', port } }), 'web'));
  assert.equal(r('api.example.com'), 'exact');
  assert.equal(r('api.example.com:8080'), 'exact', 'a pattern without port matches any port');
  assert.equal(r('api.example.com.'), 'exact');
  assert.equal(r('admin.example.com:8443'), 'port');
  assert.equal(r('admin.example.com:9000'), 'wild');
  assert.equal(r('admin.example.com', 8443), 'port', 'no port in the authority: the original destination port counts');
  assert.equal(r('a.b.example.com'), 'wild', '*.suffix covers one or more labels');
  assert.equal(r('example.com'), 'any', '*.example.com does not match example.com itself');
  assert.equal(r('[fd00::1]:80'), 'v6');
  assert.equal(r('other.org'), 'any');
  assert.deepEqual(splitAuthority('[fd00::1]:8080'), { name: '[fd00::1]', port: 8080 });
  assert.deepEqual(splitAuthority('Web.Local'), { name: 'web.local', port: undefined });
});

test('method, header (exact, regex, present, absent) and query (exact, present) matches; all conditions must hold', () => {
  const t = table([
    spec('post-only', { methods: ['POST', 'PUT'] }),
    spec('canary', { headers: [{ kind: 'exact', name: 'x-canary', value: '1' }] }),
    spec('user-regex', { headers: [{ kind: 'regex', name: 'x-user', value: 'admin-[a-z]+' }] }),
    spec('debug', { headers: [{ kind: 'present', name: 'x-debug' }, { kind: 'absent', name: 'x-internal' }] }),
    spec('q-exact', { query: [{ kind: 'exact', name: 'v', value: 'a b' }] }),
    spec('q-present', { query: [{ kind: 'present', name: 'trace' }] }),
    spec('combo', { methods: ['GET'], path: { kind: 'prefix', value: '/combo' }, headers: [{ kind: 'present', name: 'x-a' }], query: [{ kind: 'exact', name: 'k', value: '1' }] }),
    spec('rest'),
  ]);
  const r = (h: Parameters<typeof head>[0]): string => routeOf(t.match(head(h), 'web'));
  assert.equal(r({ method: 'POST' }), 'post-only');
  assert.equal(r({ method: 'post' }), 'rest', 'methods are case-sensitive');
  assert.equal(r({ headers: [['X-Canary', '1']] }), 'canary', 'header names are case-insensitive');
  assert.equal(r({ headers: [['x-canary', '0'], ['x-canary', '1']] }), 'canary', 'any field line may match');
  assert.equal(r({ headers: [['x-canary', '10']] }), 'rest');
  assert.equal(r({ headers: [['x-user', 'admin-bob']] }), 'user-regex');
  assert.equal(r({ headers: [['x-user', 'admin-bob!']] }), 'rest', 'regex is full-match');
  assert.equal(r({ headers: [['x-debug', '']] }), 'debug', 'present with an empty value');
  assert.equal(r({ headers: [['x-debug', '1'], ['x-internal', '1']] }), 'rest', 'absent fails');
  assert.equal(r({ target: '/?v=a+b' }), 'q-exact', 'query values are form-decoded');
  assert.equal(r({ target: '/?v=a%20b' }), 'q-exact');
  assert.equal(r({ target: '/?x=1&trace' }), 'q-present');
  assert.equal(r({ target: '/combo/1?k=1', headers: [['x-a', 'y']] }), 'combo');
  assert.equal(r({ target: '/combo/1?k=1' }), 'rest', 'one failing condition fails the route');
  assert.equal(r({ target: '/combo/1?k=2', headers: [['x-a', 'y']] }), 'rest');
  assert.deepEqual([...parseQuery('a=1&a=2&b&%zz=1')], [['a', ['1', '2']], ['b', ['']], ['%zz', ['1']]]);
});

test('weighted backends: 90/10 over 1,000 seeded picks lands within tolerance; single backend uses no randomness', () => {
  const s = spec('canary', {}, { backends: [{ service: 'web-v1', weight: 90 }, { service: 'web-v2', weight: 10 }] });
  const t = table([s], 12345);
  const counts = new Map<string, number>();
  for (let i = 0; i < 1000; i++) {
    const d = t.match(head(), 'web');
    assert.equal(d.kind, 'forward');
    if (d.kind === 'forward') counts.set(d.backend.service, (counts.get(d.backend.service) ?? 0) + 1);
  }
  const v2 = counts.get('web-v2') ?? 0;
  assert.equal((counts.get('web-v1') ?? 0) + v2, 1000);
  assert.ok(v2 >= 70 && v2 <= 130, `web-v2 got ${v2} of 1000 (expected ~100)`);

  let calls = 0;
  const single = RouteTable.compile([spec('one')], { random: () => { calls++; return 0.5; } });
  single.match(head(), 'web');
  assert.equal(calls, 0);

  const zero = RouteTable.compile([spec('bg', {}, { backends: [{ service: 'blue', weight: 0 }, { service: 'green', weight: 5 }] })], { random: () => 0 });
  const d = zero.match(head(), 'web');
  assert.ok(d.kind === 'forward' && d.backend.service === 'green', 'a weight-0 backend never receives traffic');
});

test('withWeights returns a new table; the old one keeps routing with the old weights', () => {
  const s = spec('canary', { path: { kind: 'regex', value: '/v[0-9]' } }, {
    backends: [{ service: 'web-v1', weight: 90 }, { service: 'web', subset: 'v2', weight: 10 }],
  });
  const old = RouteTable.compile([s, spec('other')], { random: () => 0.95 });
  const before = old.match(head({ target: '/v1' }), 'web');
  assert.ok(before.kind === 'forward' && backendId(before.backend) === 'web/v2');

  const r = old.withWeights('canary', parseWeightsOk('web-v1=100, web/v2=0'));
  assert.ok(r.ok);
  if (!r.ok) return;
  const next = r.table;
  assert.notEqual(next, old);
  assert.equal(next.version, old.version + 1);
  const after = next.match(head({ target: '/v1' }), 'web');
  assert.ok(after.kind === 'forward' && after.backend.service === 'web-v1');
  const again = old.match(head({ target: '/v1' }), 'web');
  assert.ok(again.kind === 'forward' && backendId(again.backend) === 'web/v2', 'the old table is unchanged');
  assert.deepEqual(old.route('canary')?.backends.map((b) => b.weight), [90, 10]);
  assert.deepEqual(next.route('canary')?.backends.map((b) => b.weight), [100, 0]);
  assert.equal(next.route('other'), old.route('other'), 'untouched routes are shared');
  assert.equal(routeOf(next.match(head({ target: '/x' }), 'web')), 'other', 'matchers keep working');
  assert.throws(() => { (old.route('canary')?.backends as unknown as { weight: number }[])[0]!.weight = 1; }, TypeError, 'specs are frozen');

  const bad = (w: Record<string, number>): string => {
    const x = old.withWeights('canary', w);
    return x.ok ? 'ok' : x.error;
  };
  assert.match(bad({ 'web-v1': 50 }), /missing: web\/v2/);
  assert.match(bad({ 'web-v1': 50, 'web/v2': 50, 'web-v3': 1 }), /no backend web-v3/);
  assert.match(bad({ 'web-v1': 0, 'web/v2': 0 }), /weight above 0/);
  assert.match(bad({ 'web-v1': 1.5, 'web/v2': 1 }), /integers/);
  assert.match(bad({ 'web-v1': 20_000, 'web/v2': 1 }), /integers 0-10000/);
  const missingRoute = old.withWeights('nope', {});
  assert.ok(!missingRoute.ok && /no route named "nope"/.test(missingRoute.error));
});

function parseWeightsOk(text: string): ReadonlyMap<string, number> {
  const p = parseWeights(text);
  if (!p.ok) throw new Error(p.expected);
  return p.value;
}

test('parseWeights reads the admin body format', () => {
  assert.deepEqual([...parseWeightsOk('web-v1=50,web-v2=50')], [['web-v1', 50], ['web-v2', 50]]);
  assert.deepEqual([...parseWeightsOk(' web/v2 = 7 ')], [['web/v2', 7]]);
  assert.equal(parseWeights('').ok, false);
  assert.equal(parseWeights('a=1,a=2').ok, false);
  assert.equal(parseWeights('a=-1').ok, false);
  assert.equal(parseWeights('a').ok, false);
});

test('decisions carry the route policy; header mutations remove then add', () => {
  const retry = { ...DEFAULT_RETRY_POLICY, maxAttempts: 5 };
  const t = table([spec('p', {}, {
    timeoutMs: 2500, retry, hashOn: { kind: 'header', name: 'x-user' },
    requestHeaders: { add: [['x-env', 'canary']], remove: ['x-debug'] },
    responseHeaders: { add: [], remove: ['server'] },
  })]);
  const d = t.match(head(), 'web');
  assert.equal(d.kind, 'forward');
  if (d.kind !== 'forward') return;
  assert.equal(d.timeoutMs, 2500);
  assert.equal(d.retry.maxAttempts, 5);
  assert.deepEqual(d.hashOn, { kind: 'header', name: 'x-user' });
  assert.ok(Object.isFrozen(d));
  // The edits themselves are applied by the header-edits request filter (test/unit/l7/header-edits.test.ts).
  assert.deepEqual(d.requestHeaders, { add: [['x-env', 'canary']], remove: ['x-debug'] });
});

test('compile refuses invalid specs with every problem listed', () => {
  assert.throws(() => table([
    spec('bad', { path: { kind: 'regex', value: '(a+)+' }, methods: ['get'] }, { backends: [{ service: 'x', weight: 0 }] }),
    spec('bad'),
  ]), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'REMORA_ERR_CONFIG_INVALID');
    assert.match(err.message, /nested quantifiers/);
    assert.match(err.message, /upper case/);
    assert.match(err.message, /weight above 0/);
    assert.match(err.message, /defined twice/);
    return true;
  });
  assert.throws(() => table([spec('h', {}, { requestHeaders: { add: [['content-length', '1']], remove: [] } })]), /content-length/);
});
