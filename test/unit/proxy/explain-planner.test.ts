// The proxy's half of `remora explain`, over a runtime built from INI text (no sockets, no listeners): service by
// VIP and by hostname, the protocol decision, routes with the first failing condition, the endpoint a peek returns
// (and that the peek does not move the round-robin cursor), passthrough, registry-only, inbound authorization.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { makeSnapshot } from '../../../src/config/config-snapshot.js';
import { loadSnapshotDefinitions } from '../../../src/config/load-snapshot.js';
import { MeshStats } from '../../../src/core/mesh-stats.js';
import { Stats } from '../../../src/core/stats.js';
import { ConnectionPipeline, ConnectionTracker } from '../../../src/l4/connection-pipeline.js';
import { paramsOf, parseExplainQuery, type ExplainQuery } from '../../../src/proxy/explain/explain-query.js';
import { planExplain } from '../../../src/proxy/explain/explain-planner.js';
import { buildRuntime, type Runtime } from '../../../src/proxy/runtime.js';

const INI = [
  '[service web]', 'addresses = 10.255.0.10:80', 'endpoints = 10.0.0.1:8080, 10.0.0.2:8080, 10.0.0.3:8080', 'balancer = round-robin',
  '[service shop]', 'addresses = 10.255.0.11:80', 'hostnames = shop.example', 'endpoints = 10.0.1.1:8080', 'balancer = round-robin',
  '[service shop-api]', 'endpoints = 10.0.2.1:8080, 10.0.2.2:8080', 'balancer = round-robin',
  '[traffic-policy shop-api]', 'max_requests = 77',
  '[route api]', 'service = shop', 'match_path_prefix = /api', 'match_method = GET, POST', 'backends = shop-api',
  '[route beta]', 'service = shop', 'match_header = x-user=tester', 'backends = shop-api=80, shop=20',
  '[route rest]', 'service = shop',
  '[service db]', 'addresses = 10.255.0.12:5432', 'endpoints = 10.0.3.1:5432',
  '[service sticky]', 'addresses = 10.255.0.13:80', 'endpoints = 10.0.4.1:80, 10.0.4.2:80, 10.0.4.3:80, 10.0.4.4:80',
  '[traffic-policy sticky]', 'http_balancer = ring-hash',
  '[route sticky-user]', 'service = sticky', 'hash_on = header:x-user',
  '[authorization deny-admin]', 'action = deny', 'paths = /admin*',
  '[authorization allow-lan]', 'from_cidrs = 10.1.0.0/16',
].join('\n');

function runtime(ini: string, httpEngine = true): { rt: Runtime; discard: () => void } {
  const r = loadSnapshotDefinitions({ file: 'test.ini', flags: new Map(), env: {}, readFile: () => Buffer.from(ini) });
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
  const stats = new Stats();
  const pipeline = (d: 'outbound' | 'inbound'): ConnectionPipeline => new ConnectionPipeline({ counters: stats.listener(d), countSniff: () => undefined }, new ConnectionTracker());
  const handoff = { handleConnection: (): void => undefined };
  const plan = buildRuntime(makeSnapshot(r.definitions, 1, { kind: 'inline', name: 'test' }), undefined, {
    log: pino({ level: 'silent' }), random: () => 0.5, meshStats: new MeshStats(),
    pipelines: { outbound: pipeline('outbound'), inbound: pipeline('inbound') },
    http: httpEngine ? { outbound: handoff, inbound: handoff } : { outbound: undefined, inbound: undefined },
    connectionFilters: { outbound: [], inbound: [] },
  });
  return { rt: plan.runtime, discard: () => { plan.discard(); } };
}

function query(params: Record<string, string | string[]>): ExplainQuery {
  const map = new Map(Object.entries(params).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]));
  const p = parseExplainQuery(map, 'test', (n) => n);
  assert.ok(p.ok, p.ok ? '' : JSON.stringify(p.issues));
  return p.query;
}

test('an HTTP request to a VIP: service by address, detected HTTP, the route by path and method, the next round-robin endpoint (peek moves nothing)', (t) => {
  const { rt, discard } = runtime(INI);
  t.after(discard);
  const e = planExplain(rt, query({ dst: '10.255.0.11:80', path: '/api/items', method: 'GET' }));
  assert.deepEqual(e.listener, { name: 'outbound', port: 15001 });
  assert.deepEqual(e.listeners, { outbound: 15001, inbound: 15006 });
  assert.deepEqual(e.service, { name: 'shop', matchedBy: 'address' });
  assert.deepEqual(e.protocol, { declared: 'detect', handling: 'http', http: true });
  assert.equal(e.route?.matched, 'api');
  assert.deepEqual(e.route?.routes.map((r) => [r.route, r.matched]), [['api', true]]);
  assert.deepEqual(e.route?.decision?.backends, [{ id: 'shop-api', service: 'shop-api', weight: 1 }]);
  assert.equal(e.endpoints.length, 1);
  const choice = e.endpoints[0];
  assert.equal(choice?.cluster, 'shop-api');
  assert.equal(choice?.balancer, 'round-robin');
  assert.equal(choice?.deterministic, true);
  assert.equal(choice?.health?.inRotation, true);
  assert.equal(choice?.inRotation, 2);
  assert.match(choice?.endpoint ?? '', /^10\.0\.2\.[12]:8080$/);
  // Peeking again gives the same endpoint, and the next real pick is that endpoint: nothing was consumed.
  assert.equal(planExplain(rt, query({ dst: '10.255.0.11:80', path: '/api/items' })).endpoints[0]?.endpoint, choice?.endpoint);
  const cluster = rt.clusters.get('shop-api');
  const picked = cluster?.pickForRequest({ originalDst: { address: '10.255.0.11', port: 80 } });
  assert.equal(picked?.key, choice?.endpoint);
  if (picked !== undefined) cluster?.abandon(picked);
  assert.notEqual(planExplain(rt, query({ dst: '10.255.0.11:80', path: '/api/items' })).endpoints[0]?.endpoint, choice?.endpoint, 'after a real pick the cursor moved on');
  assert.deepEqual(e.authorization, { applies: false, reason: 'authorization policies apply to inbound traffic: the destination\'s sidecar decides' });
  assert.deepEqual(e.stages.map((s) => s.stage), ['listener', 'service', 'protocol', 'mtls', 'route', 'endpoint', 'traffic-policy', 'connect']);
  const policy = e.stages.find((s) => s.stage === 'traffic-policy');
  assert.equal(policy?.decision, '[traffic-policy shop-api]', 'the policy of the backend the route chose');
  assert.match(policy?.reason ?? '', /77 requests/);
});

test('routes are tried in order: the failing condition of each is named; a weighted route lists every backend; by hostname', (t) => {
  const { rt, discard } = runtime(INI);
  t.after(discard);
  const rest = planExplain(rt, query({ dst: '10.255.0.11:80', path: '/api/x', method: 'DELETE' }));
  assert.deepEqual(rest.route?.routes.map((r) => [r.route, r.failed]), [['api', 'method GET or POST'], ['beta', 'header x-user = tester'], ['rest', undefined]]);
  assert.equal(rest.route?.matched, 'rest');
  assert.equal(rest.endpoints[0]?.endpoint, '10.0.1.1:8080');
  const beta = planExplain(rt, query({ dst: '10.255.0.11:80', path: '/x', header: 'X-User: tester' }));
  assert.equal(beta.route?.matched, 'beta');
  assert.deepEqual(beta.endpoints.map((c) => [c.cluster, c.weight]), [['shop-api', 80], ['shop', 20]]);
  // No VIP for the address, but the Host names the service.
  const named = planExplain(rt, query({ dst: '10.9.9.9:80', host: 'shop.example', path: '/' }));
  assert.deepEqual(named.service, { name: 'shop', matchedBy: 'hostname' });
  assert.equal(named.route?.matched, 'rest');
});

test('opaque TCP: a default server-first port is declared opaque; the connection balancer picks; without http attributes detection decides', (t) => {
  const { rt, discard } = runtime(INI);
  t.after(discard);
  const db = planExplain(rt, query({ dst: '10.255.0.12:5432' }));
  assert.equal(db.protocol.declared, 'opaque');
  assert.equal(db.protocol.handling, 'opaque');
  assert.match(db.stages.find((s) => s.stage === 'protocol')?.reason ?? '', /default opaque \(server-first\) port/);
  assert.equal(db.route, undefined);
  assert.equal(db.endpoints[0]?.endpoint, '10.0.3.1:5432');
  const web = planExplain(rt, query({ dst: '10.255.0.10:80' }));
  assert.equal(web.protocol.handling, 'detect');
  assert.equal(web.endpoints[0]?.cluster, 'web');
  assert.equal(web.endpoints[0]?.balancer, 'round-robin');
});

test('an unknown destination is passthrough to itself; registry-only refuses it; http_engine off forwards HTTP as opaque', (t) => {
  const { rt, discard } = runtime(INI);
  t.after(discard);
  const p = planExplain(rt, query({ dst: '192.0.2.7:443' }));
  assert.equal(p.service, undefined);
  assert.equal(p.destination.kind, 'passthrough');
  assert.deepEqual(p.endpoints.map((e) => [e.cluster, e.endpoint]), [['passthrough', '192.0.2.7:443']]);
  const only = runtime(`[registry]\nmode = registry-only\n${INI}`);
  t.after(only.discard);
  const r = planExplain(only.rt, query({ dst: '192.0.2.7:443' }));
  assert.equal(r.destination.kind, 'refused');
  assert.match(r.destination.reason, /registry-only/);
  assert.deepEqual(r.endpoints, []);
  const off = runtime(INI, false);
  t.after(off.discard);
  const o = planExplain(off.rt, query({ dst: '10.255.0.11:80', path: '/api' }));
  assert.equal(o.protocol.handling, 'opaque');
  assert.equal(o.route, undefined);
  assert.equal(o.endpoints[0]?.cluster, 'shop');
});

test('inbound: the local app, and the authorization policies with each one\'s verdict', (t) => {
  const { rt, discard } = runtime(INI);
  t.after(discard);
  const denied = planExplain(rt, query({ dst: '10.1.0.5:8080', direction: 'inbound', path: '/admin/x', src: '10.1.0.9' }));
  assert.deepEqual(denied.listener, { name: 'inbound', port: 15006 });
  assert.equal(denied.destination.kind, 'inbound');
  assert.deepEqual(denied.endpoints.map((e) => e.endpoint), ['10.1.0.5:8080']);
  assert.ok(denied.authorization.applies);
  assert.equal(denied.authorization.as, 'http');
  assert.equal(denied.authorization.decision.allowed, false);
  assert.equal(denied.authorization.decision.policy, 'deny-admin');
  assert.deepEqual(denied.authorization.policies.map((p) => [p.name, p.action, p.matched]), [['deny-admin', 'deny', true], ['allow-lan', 'allow', true]]);
  const allowed = planExplain(rt, query({ dst: '10.1.0.5:8080', direction: 'inbound', path: '/', src: '10.1.0.9' }));
  assert.ok(allowed.authorization.applies);
  assert.equal(allowed.authorization.decision.policy, 'allow-lan');
  const stranger = planExplain(rt, query({ dst: '10.1.0.5:9000', direction: 'inbound', src: '192.0.2.1' }));
  assert.ok(stranger.authorization.applies);
  assert.equal(stranger.authorization.as, 'tcp');
  // On opaque TCP a deny policy ignores its HTTP-only keys (Istio's "wider deny"): deny-admin denies every connection.
  assert.equal(stranger.authorization.decision.reason, 'denied');
  assert.equal(stranger.authorization.decision.policy, 'deny-admin');
  assert.deepEqual(stranger.authorization.policies.map((p) => [p.name, p.matched]), [['deny-admin', true], ['allow-lan', false]]);
  assert.equal(stranger.stages.find((s) => s.stage === 'authorization')?.decision, 'denied');
});

test('the query parser refuses every mistake at once, naming the parameter', () => {
  const bad = parseExplainQuery(paramsOf(new URLSearchParams('dst=10.0.0.1&path=x&method=G%20T&header=novalue&uid=me&bogus=1&host=a%20b')), 'query string', (n) => n);
  assert.equal(bad.ok, false);
  assert.ok(!bad.ok);
  assert.deepEqual(bad.issues.map((i) => i.key).sort(), ['bogus', 'dst', 'header', 'host', 'method', 'path', 'uid']);
  const missing = parseExplainQuery(new Map(), 'command line', (n) => `--${n}`);
  assert.ok(!missing.ok);
  assert.deepEqual(missing.issues.map((i) => i.key), ['--dst']);
  const dir = parseExplainQuery(paramsOf(new URLSearchParams('dst=10.0.0.1:80&src=10.0.0.2')), 'q', (n) => n);
  assert.ok(!dir.ok);
  assert.match(dir.issues[0]?.expected ?? '', /inbound when src or identity is given/);
  const v6 = parseExplainQuery(paramsOf(new URLSearchParams('dst=[fd00:0::1]:443&header=X-A: b&header=x-c: d')), 'q', (n) => n);
  assert.ok(v6.ok);
  assert.deepEqual(v6.query.dst, { family: 6, address: 'fd00::1', port: 443 });
  assert.deepEqual(v6.query.headers, [['x-a', 'b'], ['x-c', 'd']]);
});

test('ring hash: with the route hash key the peek is the endpoint a real pick with that key returns; without one it is a sample', (t) => {
  const { rt, discard } = runtime(INI);
  t.after(discard);
  const cluster = rt.clusters.get('sticky');
  for (const user of ['alice', 'bob', 'carol', 'dave']) {
    const e = planExplain(rt, query({ dst: '10.255.0.13:80', path: '/', header: `x-user: ${user}` }));
    assert.equal(e.route?.matched, 'sticky-user');
    assert.equal(e.endpoints[0]?.balancer, 'ring-hash');
    assert.equal(e.endpoints[0]?.deterministic, true);
    const picked = cluster?.pickForRequest({ hashKey: user, originalDst: { address: '10.255.0.13', port: 80 } });
    assert.equal(e.endpoints[0]?.endpoint, picked?.key);
    if (picked !== undefined) cluster?.abandon(picked);
  }
  const keyless = planExplain(rt, query({ dst: '10.255.0.13:80', path: '/' }));
  assert.equal(keyless.endpoints[0]?.deterministic, false);
  assert.match(keyless.stages.find((st) => st.stage === 'endpoint')?.reason ?? '', /one random sample/);
});
