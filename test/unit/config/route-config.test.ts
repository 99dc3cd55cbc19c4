import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfigIssue } from '../../../src/config/config-issue.js';
import { parseIni } from '../../../src/config/ini-file.js';
import { DEFAULT_RETRY_POLICY } from '../../../src/config/route-spec.js';
import { parseRoutes, routesOrThrow, splitItems } from '../../../src/config/route-config.js';
import { RouteTable } from '../../../src/l7/router/route-table.js';
import { type RouteSpec } from '../../../src/config/route-spec.js';
import { head, seededRandom } from '../l7/helpers.js';

const FULL = `[proxy]
log_level = info

[service web]
addresses = 10.96.0.10:80

[route web-canary]
service = web
order = -5
match_host = web.default.svc, *.web.example.com
match_path_prefix = /api
match_method = GET, POST
match_header = x-canary=1, x-user~admin-[a-z]{1\\,8}, x-debug, !x-internal
match_query = version=2, trace
backends = web-v1=90, web-v2=10
hash_on = cookie:session
timeout = 3s
retries = 3
retry_on = connect-failure, reset, gateway-error
retry_statuses = 429, 500-502
per_try_timeout = 1s
retry_backoff_base = 50ms
retry_backoff_max = 1s
retry_other_hosts = false
request_headers_add = X-Env: canary, x-note: a\\,b
request_headers_remove = x-debug
response_headers_add = x-served-by: remora
response_headers_remove = server

[route web-subsets]
service = web
match_path_regex = /v[0-9]+/.*
backends = web subset=v1 weight=3, web/v2=1

[route web-default]
service = web
`;

function parse(text: string, known?: string[]): ReturnType<typeof parseRoutes> {
  return parseRoutes(parseIni(text, 'r.ini').doc, known === undefined ? {} : { knownServices: known });
}

function issues(text: string, known?: string[]): ConfigIssue[] {
  const r = parse(text, known);
  assert.equal(r.ok, false, 'expected issues');
  return r.ok ? [] : [...r.issues];
}

test('a full example parses into the expected specs', () => {
  const r = parse(FULL, ['web', 'web-v1', 'web-v2']);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues, null, 1));
  if (!r.ok) return;
  assert.deepEqual(r.routes.map((x) => x.name), ['web-canary', 'web-subsets', 'web-default']);
  const c = r.routes[0] as RouteSpec;
  assert.equal(c.service, 'web');
  assert.equal(c.order, -5);
  assert.equal(c.source, 'r.ini:7');
  assert.deepEqual(c.match, {
    hosts: ['web.default.svc', '*.web.example.com'],
    path: { kind: 'prefix', value: '/api' },
    methods: ['GET', 'POST'],
    headers: [
      { kind: 'exact', name: 'x-canary', value: '1' },
      { kind: 'regex', name: 'x-user', value: 'admin-[a-z]{1,8}' },
      { kind: 'present', name: 'x-debug' },
      { kind: 'absent', name: 'x-internal' },
    ],
    query: [{ kind: 'exact', name: 'version', value: '2' }, { kind: 'present', name: 'trace' }],
  });
  assert.deepEqual(c.backends, [{ service: 'web-v1', weight: 90 }, { service: 'web-v2', weight: 10 }]);
  assert.deepEqual(c.hashOn, { kind: 'cookie', name: 'session' });
  assert.equal(c.timeoutMs, 3000);
  assert.deepEqual(c.retry, {
    maxAttempts: 4, on: ['connect-failure', 'reset', 'gateway-error', 'retriable-status'], statuses: [429, 500, 501, 502],
    grpcStatuses: [], perTryTimeoutMs: 1000, backoffBaseMs: 50, backoffMaxMs: 1000, preferOtherHosts: false,
  });
  assert.deepEqual(c.requestHeaders, { add: [['X-Env', 'canary'], ['x-note', 'a,b']], remove: ['x-debug'] });
  assert.deepEqual(c.responseHeaders, { add: [['x-served-by', 'remora']], remove: ['server'] });

  const s = r.routes[1] as RouteSpec;
  assert.deepEqual(s.match.path, { kind: 'regex', value: '/v[0-9]+/.*' });
  assert.deepEqual(s.backends, [{ service: 'web', subset: 'v1', weight: 3 }, { service: 'web', subset: 'v2', weight: 1 }]);
  assert.equal(s.retry, DEFAULT_RETRY_POLICY, 'no retry keys: the shared default policy');

  const d = r.routes[2] as RouteSpec;
  assert.deepEqual(d.backends, [{ service: 'web', weight: 1 }], 'no backends: the route\'s own service');
  assert.deepEqual(d.match, { hosts: [], methods: [], headers: [], query: [] });

  // ... and compiles into a working table.
  const t = RouteTable.compile(r.routes, { random: seededRandom(3) });
  const dec = t.match(head({
    method: 'POST', target: '/api/x?version=2&trace', authority: 'a.web.example.com',
    headers: [['x-canary', '1'], ['x-user', 'admin-zed'], ['x-debug', '']],
  }), 'web');
  assert.ok(dec.kind === 'forward' && dec.route === 'web-canary');
  const sub = t.match(head({ target: '/v2/items' }), 'web');
  assert.ok(sub.kind === 'forward' && sub.route === 'web-subsets');
  const def = t.match(head({ target: '/other' }), 'web');
  assert.ok(def.kind === 'forward' && def.route === 'web-default');
});

test('equal shares without weights; gRPC retries with the explicit non-idempotent opt-in', () => {
  const r = parse('[route g]\nservice = grpc-api\nbackends = a, b\nretry_grpc = unavailable, CANCELLED, 4\nretry_non_idempotent = true\n');
  assert.ok(r.ok);
  if (!r.ok) return;
  const g = r.routes[0] as RouteSpec;
  assert.deepEqual(g.backends, [{ service: 'a', weight: 1 }, { service: 'b', weight: 1 }]);
  assert.deepEqual(g.retry.grpcStatuses, [1, 4, 14]);
  assert.deepEqual(g.retry.on, ['connect-failure', 'reset', 'grpc']);
  assert.equal(g.retry.retryNonIdempotent, true);
  assert.equal(g.retry.maxAttempts, 3);
});

test('each kind of bad input is reported at its line, with the section and key', () => {
  const bad = `[route r1]
service = web
match_path_exact = api
match_path_prefix = /x
match_method = get
match_header = x-a=1, :authority=x
match_query = =x
backends = web-v1=90, web-v2
timeout = soon
retries = 99
retry_on = connect-failure, teapot
retry_statuses = 700
retry_grpc = wobbly
per_try_timeout = fast
retry_backoff_base = 2s
retry_backoff_max = 1s
request_headers_add = content-length: 5
request_headers_remove = transfer-encoding
response_headers_add = no-colon
hash_on = body
order = first
bogus = 1
match_host = Bad_Host!
`;
  const got = issues(bad);
  const at = (line: number): ConfigIssue | undefined => got.find((i) => i.source === `r.ini:${line}`);
  const expectAt = (line: number, key: string, re: RegExp): void => {
    const i = at(line);
    assert.ok(i, `an issue at line ${line} (${key}); got ${got.map((g) => g.source).join(' ')}`);
    assert.equal(i?.key, `[route r1] ${key}`);
    assert.match(i?.expected ?? '', re, `line ${line}`);
  };
  expectAt(3, 'match_path_exact', /starting with "\/"/);
  expectAt(4, 'match_path_prefix', /one of match_path_exact/);
  expectAt(5, 'match_method', /upper case/);
  expectAt(6, 'match_header', /pseudo-headers/);
  expectAt(7, 'match_query', /query matches/);
  expectAt(8, 'backends', /a weight for every backend or for none/);
  expectAt(9, 'timeout', /duration/);
  expectAt(10, 'retries', /integer 0-10/);
  expectAt(11, 'retry_on', /"teapot" is not/);
  expectAt(12, 'retry_statuses', /100-599/);
  expectAt(13, 'retry_grpc', /gRPC statuses/);
  expectAt(14, 'per_try_timeout', /duration/);
  expectAt(16, 'retry_backoff_max', /retry_backoff_base <= retry_backoff_max/);
  expectAt(17, 'request_headers_add', /content-length/);
  expectAt(18, 'request_headers_remove', /transfer-encoding/);
  expectAt(19, 'response_headers_add', /"name: value"/);
  expectAt(20, 'hash_on', /header:NAME, cookie:NAME or source/);
  expectAt(21, 'order', /integer/);
  expectAt(22, 'bogus', /a key of \[route NAME\]/);
  expectAt(23, 'match_host', /host names/);
});

test('structural problems: missing service, bad names, unknown services, regex safety, cross-key rules', () => {
  const missing = issues('[route r]\nmatch_path_prefix = /a\n');
  assert.deepEqual(missing.map((i) => [i.source, i.key]), [['r.ini:1', '[route r]']]);
  assert.match(missing[0]?.expected ?? '', /service = NAME/);

  const badName = issues('[route bad/name]\nservice = web\n');
  assert.equal(badName[0]?.source, 'r.ini:1');
  assert.match(badName[0]?.expected ?? '', /\[route NAME\]/);

  const unknown = issues('[route r]\nservice = web\nbackends = web-v9=1, web=1\n', ['web']);
  assert.deepEqual(unknown.map((i) => i.source), ['r.ini:3']);
  assert.match(unknown[0]?.expected ?? '', /web-v9 is not defined/);
  const unknownService = issues('[route r]\nservice = nope\n', ['web']);
  assert.match(unknownService[0]?.expected ?? '', /\[service NAME\] section \(web\)/);

  const redos = issues('[route r]\nservice = web\nmatch_path_regex = /(a+)+$\nmatch_header = x~(a|aa)*\n');
  assert.deepEqual(redos.map((i) => i.source), ['r.ini:3', 'r.ini:4']);
  assert.match(redos[0]?.expected ?? '', /nested quantifiers/);
  assert.match(redos[1]?.expected ?? '', /alternation/);

  const grpcWithoutOptIn = issues('[route r]\nservice = web\nretry_grpc = unavailable\n');
  assert.equal(grpcWithoutOptIn[0]?.source, 'r.ini:3');
  assert.match(grpcWithoutOptIn[0]?.expected ?? '', /retry_non_idempotent = true/);

  const needsList = issues('[route r]\nservice = web\nretry_on = retriable-status\n');
  assert.match(needsList[0]?.expected ?? '', /retry_statuses/);

  const zeroRetries = issues('[route r]\nservice = web\nretries = 0\nretry_on = 5xx\n');
  assert.equal(zeroRetries[0]?.source, 'r.ini:4');

  const dupBackend = issues('[route r]\nservice = web\nbackends = a=1, a=2\n');
  assert.match(dupBackend[0]?.expected ?? '', /each backend once/);
  const allZero = issues('[route r]\nservice = web\nbackends = a=0, b=0\n');
  assert.match(allZero[0]?.expected ?? '', /above 0/);
  const mixed = issues('[route r]\nservice = web\nbackends = a=1 subset=x\n');
  assert.match(mixed[0]?.expected ?? '', /mixes both/);
});

test('other sections are left alone; several sections report together; routesOrThrow throws one error', () => {
  const ok = parse('[service web]\nweird_key = 1\n[registry]\nmode = passthrough\n');
  assert.ok(ok.ok && ok.routes.length === 0);
  const many = issues('[route a]\nservice = web\ntimeout = x\n[route b]\nservice = web\nretries = -1\n');
  assert.deepEqual(many.map((i) => i.source), ['r.ini:3', 'r.ini:6']);
  assert.throws(() => routesOrThrow(parseIni('[route a]\n', 'r.ini').doc), /REMORA_ERR_CONFIG_INVALID|invalid configuration/);
});

test('list items split on commas, "\\," keeps a comma', () => {
  assert.deepEqual(splitItems('a, b\\,c ,, d'), ['a', 'b,c', 'd']);
  assert.deepEqual(splitItems(''), []);
});

test('per_try_timeout may not exceed the whole-request timeout', () => {
  const got = issues('[route r]\nservice = web\ntimeout = 1s\nper_try_timeout = 2s\n');
  assert.deepEqual(got.map((i) => [i.source, i.key]), [['r.ini:4', '[route r] per_try_timeout']]);
  assert.match(got[0]?.expected ?? '', /per_try_timeout <= timeout/);
});
