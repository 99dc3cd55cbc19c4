// The cluster of one upstream service, as L4 (pick + connect results) and L7 (pickForRequest + report) use it:
// membership and reconfigure, passive health through both paths, subsets, shared pickers, slow start, original-dst
// clusters, status and the breaker. Everything runs on FakeTime and a seeded random; no sockets.
import assert from 'node:assert/strict';
import type { RecordWithTtl, SrvRecord } from 'node:dns';
import { test } from 'node:test';
import type { ServiceSpec } from '../../../src/config/service-spec.js';
import { defaultTrafficPolicy } from '../../../src/config/traffic-policy-config.js';
import type { TrafficPolicySpec } from '../../../src/config/traffic-policy-spec.js';
import { silentLogger } from '../../../src/core/log.js';
import type { RequestHead } from '../../../src/l7/request-types.js';
import { requestHashKey } from '../../../src/l7/router/hash-key.js';
import { Cluster, type ClusterSpec, type ClusterView, type PickedEndpoint, type RequestPick } from '../../../src/upstream/cluster.js';
import type { Timers } from '../../../src/upstream/clock.js';
import type { DnsResolverLike } from '../../../src/upstream/dns-discovery.js';
import type { PickResult } from '../../../src/upstream/picker.js';
import {
  countPicks, FakeTime, flushMicrotasks, keyOf, seededRandom, serviceSpec, sourceAddresses, spec, specs, type ServiceOptions,
} from './helpers.js';

// Keys of spec(0), spec(1), ... (sorted the same way).
const [A, B, C, D] = ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080', '10.0.0.4:8080'] as [string, string, string, string];
const ORIGINAL_DST = { address: '10.96.0.10', port: 80 };
const OK = { kind: 'response', status: 200, latencyMs: 5 } as const;
const E503 = { kind: 'response', status: 503, latencyMs: 5 } as const;

/** The ClusterSpec planClusters builds for a service without a [traffic-policy] (plus overrides). */
function clusterSpec(svc: ServiceSpec, policy: Partial<TrafficPolicySpec> = {}): ClusterSpec {
  return {
    name: svc.name, service: svc, policy: { ...defaultTrafficPolicy(svc.name, svc.passiveHealth), ...policy },
    connectTimeoutMs: svc.connectTimeoutMs ?? 10_000, inboundSource: false,
  };
}

interface Made {
  readonly cluster: Cluster;
  readonly time: FakeTime;
}

function make(o: ServiceOptions = {}, policy: Partial<TrafficPolicySpec> = {}, deps: { seed?: number; timers?: Timers; resolver?: DnsResolverLike } = {}): Made {
  const time = new FakeTime();
  const cluster = new Cluster(clusterSpec(serviceSpec(o), policy), {
    log: silentLogger(), clock: time, timers: deps.timers ?? time, random: seededRandom(deps.seed ?? 1), resolver: deps.resolver,
  });
  return { cluster, time };
}

const rotation = (c: Cluster): string[] => [...c.inRotation].sort();
const req = (over: Partial<RequestPick> = {}): RequestPick => ({ originalDst: ORIGINAL_DST, ...over });
const statusOf = (c: Cluster, key: string) => c.status().endpoints.find((e) => e.endpoint === key);

function failConnects(c: Cluster, key: string, n: number): void {
  for (let i = 0; i < n; i++) c.onConnectResult(key, false);
}

/** One request attempt, abandoned at once, as a PickResult (for countPicks). */
function requestPick(view: ClusterView, ctx: RequestPick = req()): PickResult {
  const e = view.pickForRequest(ctx);
  if (e === undefined) return { kind: 'none', reason: 'no-endpoints' };
  view.abandon(e);
  return { kind: 'endpoint', endpoint: { ...e, weight: 1 } };
}

function head(over: Partial<RequestHead> = {}): RequestHead {
  return {
    method: 'GET', target: '/', path: '/', query: '', authority: 'web:80', headers: [], protocol: 'http/1.1',
    sourceAddress: '10.1.2.3', originalDst: ORIGINAL_DST, ...over,
  };
}

// === membership ===

test('static membership: every endpoint in rotation, status() describes the cluster and each endpoint', () => {
  const { cluster } = make();
  assert.deepEqual(rotation(cluster), [A, B, C]);
  assert.deepEqual(cluster.members().map((e) => e.key), [A, B, C]);
  assert.match(cluster.id, /^web#\d+$/);
  assert.equal(cluster.originalDst, false);
  const zero = { connection: 0, pending: 0, request: 0, retry: 0 };
  const noEjections = {
    'consecutive-connect-failure': 0, 'consecutive-5xx': 0, 'consecutive-gateway-error': 0, 'success-rate': 0, 'probation-failure': 0,
  };
  assert.deepEqual(cluster.status(), {
    kind: 'static', protocol: 'http', balancer: 'round-robin', httpBalancer: 'round-robin', upstreamProtocol: 'downstream',
    tlsOrigination: false, mtls: false, connectFailures: 0, ejections: 0,
    breaker: { active: zero, overflow: zero, retryBudgetOverflow: 0 },
    outlier: { ejected: 0, ejections: noEjections, ejectionsRefused: 0 },
    endpoints: [A, B, C].map((endpoint) => ({
      endpoint, weight: 1, active: 0, healthy: true, ejected: false, inRotation: true, ejectionCount: 0,
      consecutiveConnectFailures: 0, weightFactor: 1,
    })),
  });
  cluster.close();
});

test('an empty static cluster answers no-endpoints; endpoints appear with reconfigure(); duplicates: the first wins', () => {
  const { cluster } = make({ endpoints: [] });
  assert.deepEqual(cluster.pick({}), { kind: 'none', reason: 'no-endpoints' });
  assert.equal(cluster.pickForRequest(req()), undefined);
  cluster.reconfigure([spec(0, 5), spec(0, 1), spec(1, 1)], undefined);
  assert.deepEqual(cluster.members().map((e) => [e.key, e.weight]), [[A, 5], [B, 1]]);
  assert.equal(cluster.pick({}).kind, 'endpoint');
  cluster.close();
});

test('reconfigure(): kept endpoints keep their load and health, removed ones are announced, weights and labels apply', () => {
  const { cluster } = make();
  const removed: string[][] = [];
  cluster.subscribe({ onEndpointsRemoved: (keys) => { removed.push([...keys]); } });
  cluster.acquire(A);
  cluster.acquire(A);
  failConnects(cluster, B, 5);
  assert.deepEqual(rotation(cluster), [A, C]);

  cluster.reconfigure([spec(0, 3, 'zone-a'), spec(1), spec(3)], undefined);
  assert.deepEqual(removed, [[C]]);
  assert.deepEqual(cluster.members().map((e) => [e.key, e.weight, e.zone]), [[A, 3, 'zone-a'], [B, 1, undefined], [D, 1, undefined]]);
  assert.equal(statusOf(cluster, A)?.active, 2, 'load survives a weight change');
  assert.equal(statusOf(cluster, B)?.ejected, true, 'the ejection survives the reload');
  assert.equal(statusOf(cluster, B)?.ejectionCount, 1);
  assert.deepEqual(rotation(cluster), [A, D]);
  // Round robin over whole cycles of 3:1.
  const counts = countPicks(() => cluster.pick({}), 400);
  assert.deepEqual([counts.get(A), counts.get(B), counts.get(D)], [300, undefined, 100]);

  // The same list again (any order): nothing is republished or announced.
  const before = cluster.inRotation;
  cluster.reconfigure([spec(3), spec(1), spec(0, 3, 'zone-a')], undefined);
  assert.equal(cluster.inRotation, before, 'no new picker');
  assert.deepEqual(removed, [[C]]);
  cluster.reconfigure([spec(3), spec(1), spec(0, 3, 'zone-b')], undefined);
  assert.notEqual(cluster.inRotation, before, 'a zone change publishes');
  cluster.close();
});

test('close(): listeners hear onClusterClosed once, timers stop, the last picker keeps answering, reconfigure is ignored', () => {
  const { cluster, time } = make({ endpoints: specs([1, 1]) });
  const closed: string[] = [];
  cluster.subscribe({ onClusterClosed: () => { closed.push('kept'); } });
  const unsubscribe = cluster.subscribe({ onClusterClosed: () => { closed.push('unsubscribed'); } });
  unsubscribe();
  failConnects(cluster, A, 5);
  assert.equal(time.pending, 1, 'the ejection end is armed');
  cluster.close();
  cluster.close();
  assert.deepEqual(closed, ['kept']);
  assert.equal(cluster.closed, true);
  assert.equal(time.pending, 0);
  assert.equal(keyOf(cluster.pick({})), B);
  cluster.reconfigure(specs([1, 1, 1]), undefined);
  assert.deepEqual(cluster.members().map((e) => e.key), [A, B]);
});

test('with active checks configured, endpoints start healthy and close() cancels the scheduled probes', () => {
  // Probes are TCP connects inside the cluster (covered by active-health.test.ts and the netns tests); here they
  // are only scheduled on the fake timers, never run.
  const { cluster, time } = make({
    activeHealth: { kind: 'tcp', intervalMs: 5_000, timeoutMs: 1_000, healthyThreshold: 2, unhealthyThreshold: 3 },
  });
  assert.equal(time.pending, 3, 'one probe timer per endpoint');
  assert.deepEqual(cluster.status().endpoints.map((e) => e.healthy), [true, true, true]);
  assert.deepEqual(rotation(cluster), [A, B, C]);
  cluster.close();
  assert.equal(time.pending, 0);
});

test('DNS membership: resolved endpoints join, a later answer replaces them on the cluster\'s timers', async () => {
  let answer: RecordWithTtl[] = [{ address: '10.1.0.2', ttl: 30 }, { address: '10.1.0.1', ttl: 30 }];
  const queries: string[] = [];
  const resolver: DnsResolverLike = {
    resolve4: (name) => { queries.push(name); return Promise.resolve(answer); },
    resolve6: () => Promise.reject(Object.assign(new Error('ENODATA'), { code: 'ENODATA' })),
    resolveSrv: (): Promise<SrvRecord[]> => Promise.reject(new Error('unused')),
  };
  const dns = { name: 'web.internal', type: 'A', port: 8080, targetType: 'A', refreshMinMs: 5_000, refreshMaxMs: 300_000 } as const;
  const { cluster, time } = make({ endpoints: { kind: 'dns', dns } }, {}, { resolver });
  assert.deepEqual(cluster.pick({}), { kind: 'none', reason: 'no-endpoints' }, 'nothing before start()');
  const removed: string[][] = [];
  cluster.subscribe({ onEndpointsRemoved: (keys) => { removed.push([...keys]); } });
  cluster.start();
  await flushMicrotasks();
  assert.deepEqual(queries, ['web.internal']);
  assert.deepEqual(rotation(cluster), ['10.1.0.1:8080', '10.1.0.2:8080']);
  const s = cluster.status();
  assert.equal(s.kind, 'dns');
  assert.equal(s.dns?.name, 'web.internal');
  assert.equal(s.dns?.type, 'A');
  assert.equal(s.dns?.consecutiveFailures, 0);
  assert.equal(s.dns?.lastError, undefined);
  assert.equal(typeof s.dns?.lastSuccessAt, 'number');

  answer = [{ address: '10.1.0.3', ttl: 30 }, { address: '10.1.0.1', ttl: 30 }];
  time.advance(29_999);
  await flushMicrotasks();
  assert.equal(queries.length, 1, 'the refresh waits for the TTL');
  time.advance(1);
  await flushMicrotasks();
  assert.equal(queries.length, 2);
  assert.deepEqual(rotation(cluster), ['10.1.0.1:8080', '10.1.0.3:8080']);
  assert.deepEqual(removed, [['10.1.0.2:8080']]);
  cluster.close();
  assert.equal(time.pending, 0, 'discovery and the health tick stopped');
});

// === passive health: connect results (L4 and L7 alike) ===

test('connect failures eject after N; the pickers skip the endpoint until the ejection ends', () => {
  const { cluster, time } = make();
  failConnects(cluster, A, 4);
  cluster.onConnectResult(A, true);
  failConnects(cluster, A, 4);
  assert.deepEqual(rotation(cluster), [A, B, C], 'a success restarts the run');
  assert.equal(statusOf(cluster, A)?.consecutiveConnectFailures, 4);
  cluster.onConnectResult(A, false);
  assert.deepEqual(rotation(cluster), [B, C]);
  assert.equal(countPicks(() => cluster.pick({}), 30).get(A), undefined);
  assert.equal(countPicks(() => requestPick(cluster), 30).get(A), undefined);
  const s = cluster.status();
  assert.equal(s.connectFailures, 9);
  assert.equal(s.ejections, 1);
  assert.equal(s.outlier?.ejections['consecutive-connect-failure'], 1);
  assert.deepEqual(s.endpoints.find((e) => e.endpoint === A), {
    endpoint: A, weight: 1, active: 0, healthy: true, ejected: true, inRotation: false, ejectionCount: 1,
    consecutiveConnectFailures: 0, weightFactor: 0,
  });
  time.advance(29_999);
  assert.deepEqual(rotation(cluster), [B, C]);
  time.advance(1); // the cluster's timer fires
  assert.deepEqual(rotation(cluster), [A, B, C]);
  assert.equal(statusOf(cluster, A)?.inRotation, true);
  assert.equal(statusOf(cluster, A)?.weightFactor, 0.1, 'slow start from 10 %');
  assert.ok((countPicks(() => cluster.pick({}), 210).get(A) ?? 0) > 0);
  cluster.close();
});

test('returns are also applied lazily by pick() when timers do not fire', () => {
  const inert: Timers = { setTimeout: () => ({}), clearTimeout: () => undefined };
  const { cluster, time } = make({ endpoints: specs([1, 1]) }, { outlier: { ...defaultTrafficPolicy('web').outlier, slowStartMs: 0 } }, { timers: inert });
  failConnects(cluster, A, 5);
  assert.deepEqual(rotation(cluster), [B]);
  time.advance(30_000);
  assert.deepEqual(countPicks(() => cluster.pick({}), 4), new Map([[A, 2], [B, 2]]));
  assert.deepEqual(rotation(cluster), [A, B]);
  cluster.close();
});

test('eject_after_failures = 0 turns connect-failure ejection off', () => {
  const { cluster } = make({ passive: { ejectAfterFailures: 0 } });
  failConnects(cluster, A, 50);
  assert.deepEqual(rotation(cluster), [A, B, C]);
  assert.equal(statusOf(cluster, A)?.consecutiveConnectFailures, 50);
  assert.equal(cluster.status().connectFailures, 50);
  cluster.close();
});

test('the max ejected share keeps endpoints in: two members both failing -> one stays', () => {
  const { cluster } = make({ endpoints: specs([1, 1]), passive: { maxEjectedPercent: 100 } });
  failConnects(cluster, A, 5);
  failConnects(cluster, B, 10);
  assert.deepEqual(rotation(cluster), [B]);
  assert.equal(keyOf(cluster.pick({})), B);
  assert.equal(cluster.status().outlier?.ejectionsRefused, 6, 'the 5th to 10th failures of the last endpoint');
  cluster.close();
});

test('a membership shrink under ejections returns the soonest-returning ejected endpoints', () => {
  const { cluster, time } = make({ endpoints: specs([1, 1, 1, 1]) });
  failConnects(cluster, A, 5);
  time.advance(1_000);
  failConnects(cluster, B, 5);
  assert.deepEqual(rotation(cluster), [C, D]);
  // Keep A, B, C: 3 members allow 1 ejected; A (returning first) comes back, B stays out.
  cluster.reconfigure(specs([1, 1, 1]), undefined);
  assert.deepEqual(rotation(cluster), [A, C]);
  cluster.close();
});

test('the connect-retry loop: pick, acquire, fail, report, exclude — each attempt on a new endpoint', () => {
  const { cluster } = make({ balancer: 'ring-hash' });
  const tried = new Set<string>();
  const attempts: string[] = [];
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = cluster.pick({ sourceAddress: '172.16.1.2', exclude: tried });
    if (r.kind === 'none') {
      assert.equal(r.reason, 'all-excluded');
      break;
    }
    const release = cluster.acquire(r.endpoint.key);
    assert.equal(statusOf(cluster, r.endpoint.key)?.active, 1);
    release(); // the connect failed
    cluster.onConnectResult(r.endpoint.key, false);
    tried.add(r.endpoint.key);
    attempts.push(r.endpoint.key);
  }
  assert.deepEqual([...attempts].sort(), [A, B, C]);
  assert.deepEqual(cluster.status().endpoints.map((e) => [e.active, e.consecutiveConnectFailures]), [[0, 1], [0, 1], [0, 1]]);
  cluster.close();
});

test('acquire/release drive least-connections; release is idempotent; unknown endpoints get a no-op', () => {
  const { cluster } = make({ balancer: 'least-connections', endpoints: specs([1, 1]) });
  const r1 = cluster.acquire(A);
  assert.equal(keyOf(cluster.pick({})), B);
  const r2 = cluster.acquire(B);
  const r3 = cluster.acquire(B);
  assert.equal(keyOf(cluster.pick({})), A);
  r2();
  r2();
  assert.deepEqual(cluster.status().endpoints.map((e) => e.active), [1, 1]);
  r3();
  assert.equal(keyOf(cluster.pick({})), B);
  r1();
  assert.deepEqual(cluster.status().endpoints.map((e) => e.active), [0, 0]);
  cluster.acquire('10.9.9.9:1')();
  assert.deepEqual(cluster.status().endpoints.map((e) => e.active), [0, 0]);
  cluster.close();
});

// === requests (L7) ===

test('a request pick counts as active until report() or abandon(); counts never go negative', () => {
  const { cluster } = make({ endpoints: specs([1]) });
  const e = cluster.pickForRequest(req());
  assert.deepEqual(e, { key: A, address: '10.0.0.1', port: 8080, weight: 1 });
  const e2 = cluster.pickForRequest(req()) as PickedEndpoint;
  assert.equal(statusOf(cluster, A)?.active, 2);
  cluster.report(e as PickedEndpoint, OK);
  assert.equal(statusOf(cluster, A)?.active, 1);
  cluster.abandon(e2);
  assert.equal(statusOf(cluster, A)?.active, 0);
  cluster.abandon(e2);
  cluster.report(e2, { kind: 'timeout' });
  assert.equal(statusOf(cluster, A)?.active, 0);
  cluster.report({ key: '10.9.9.9:1', address: '10.9.9.9', port: 1 }, E503); // not a member: ignored
  assert.equal(cluster.status().ejections, 0);
  cluster.close();
});

test('report(): 503 x N ejects (gateway errors); 500s and successes do not; tried endpoints are avoided', () => {
  const { cluster, time } = make();
  const b = { key: B, address: '10.0.0.2', port: 8080 };
  for (let i = 0; i < 10; i++) cluster.report(b, { kind: 'response', status: 500, latencyMs: 1 });
  for (let i = 0; i < 4; i++) cluster.report(b, E503);
  cluster.report(b, OK);
  for (let i = 0; i < 4; i++) cluster.report(b, E503);
  assert.deepEqual(rotation(cluster), [A, B, C]);
  cluster.report(b, E503);
  assert.deepEqual(rotation(cluster), [A, C]);
  assert.equal(cluster.status().outlier?.ejections['consecutive-gateway-error'], 1);
  assert.equal(countPicks(() => requestPick(cluster), 200).get(B), undefined);
  assert.deepEqual(countPicks(() => requestPick(cluster, req({ exclude: new Set([A]) })), 20), new Map([[C, 20]]));
  time.advance(30_000);
  assert.deepEqual(rotation(cluster), [A, B, C]);
  // Probation: the first gateway error after the return ejects again, for twice as long.
  cluster.report(b, E503);
  assert.deepEqual(rotation(cluster), [A, C]);
  time.advance(59_999);
  assert.deepEqual(rotation(cluster), [A, C]);
  time.advance(1);
  assert.deepEqual(rotation(cluster), [A, B, C]);
  cluster.close();
});

test('request outcomes feed the peak-EWMA estimate: a peak-ewma cluster prefers the faster endpoint', () => {
  const { cluster } = make({ balancer: 'peak-ewma', endpoints: specs([1, 1]) });
  const report = (key: string, latencyMs: number, status = 200): void => {
    const e = { key, address: key.split(':')[0] as string, port: 8080 };
    cluster.report(e, { kind: 'response', status, latencyMs });
  };
  report(A, 10);
  report(B, 100);
  assert.deepEqual(countPicks(() => requestPick(cluster), 50), new Map([[A, 50]]));
  for (let i = 0; i < 10; i++) cluster.acquire(A); // cost = rtt x (active + 1): 110 > 100
  assert.deepEqual(countPicks(() => cluster.pick({}), 20), new Map([[B, 20]]));
  report(B, 1, 503); // a failure counts as the failure penalty (1 s)
  assert.deepEqual(countPicks(() => cluster.pick({}), 20), new Map([[A, 20]]));
  cluster.close();
});

test('least-request (p2c) over the cluster\'s shared load: the busiest of three never wins', () => {
  const { cluster } = make({ balancer: 'least-request' });
  for (let i = 0; i < 10; i++) cluster.acquire(A);
  cluster.acquire(B);
  const counts = countPicks(() => requestPick(cluster), 1000);
  assert.equal(counts.get(A), undefined);
  assert.ok((counts.get(C) ?? 0) > (counts.get(B) ?? 0), `idle C beats B (1 active): ${JSON.stringify([...counts])}`);
  assert.equal(cluster.status().balancer, 'least-request');
  cluster.close();
});

// === subsets ===

test('subsets: a subset picks only its labelled endpoints, shares load and health; unknown -> no-endpoints', () => {
  const eps = [{ ...spec(0), subsets: ['v1'] }, { ...spec(1), subsets: ['v2'] }, { ...spec(2), subsets: ['v2'] }];
  const { cluster } = make({ endpoints: eps });
  const v2 = cluster.subset('v2');
  assert.equal(cluster.subset('v2'), v2, 'one view per subset');
  assert.equal(v2.name, 'web/v2');
  assert.equal(v2.id, cluster.id);
  assert.equal(v2.protocol, cluster.protocol);
  assert.deepEqual(countPicks(() => requestPick(v2), 40), new Map([[B, 20], [C, 20]]));
  assert.deepEqual(cluster.status().subsets, { v1: [A], v2: [B, C] });

  const held = v2.pickForRequest(req()) as PickedEndpoint;
  assert.equal(statusOf(cluster, held.key)?.active, 1, 'the subset counts on the cluster\'s endpoint');
  v2.report(held, OK);
  assert.equal(statusOf(cluster, held.key)?.active, 0);

  assert.equal(cluster.subset('v9').pickForRequest(req()), undefined);
  assert.deepEqual(cluster.pick({}, 'v9'), { kind: 'none', reason: 'no-endpoints' });

  // The only v1 endpoint ejected: its subset has members but none usable.
  failConnects(cluster, A, 5);
  assert.deepEqual(cluster.pick({}, 'v1'), { kind: 'none', reason: 'no-healthy-endpoint' });
  assert.equal(cluster.subset('v1').pickForRequest(req()), undefined);

  // Labels move with a reload.
  cluster.reconfigure([{ ...spec(0), subsets: ['v1'] }, { ...spec(1), subsets: ['v1'] }, { ...spec(2), subsets: ['v2'] }], undefined);
  assert.deepEqual(countPicks(() => requestPick(cluster.subset('v1')), 10), new Map([[B, 10]]));
  assert.deepEqual(countPicks(() => requestPick(v2), 10), new Map([[C, 10]]));
  cluster.close();
});

// === one family of pickers for connections and requests ===

test('the same balancer kind for connections and requests: one picker object (one round-robin cursor)', () => {
  const { cluster } = make({ endpoints: specs([1, 1]) });
  const conn: string[] = [];
  const reqs: string[] = [];
  for (let i = 0; i < 6; i++) {
    conn.push(keyOf(cluster.pick({})));
    reqs.push(keyOf(requestPick(cluster)));
  }
  // One cursor: connections and requests take turns, so each side always lands on the same endpoint.
  assert.equal(new Set(conn).size, 1, conn.join(' '));
  assert.equal(new Set(reqs).size, 1, reqs.join(' '));
  assert.notEqual(conn[0], reqs[0]);
  cluster.close();
});

test('http_balancer of another kind: a separate request picker; unset, requests use the service\'s balancer', () => {
  const { cluster } = make({ endpoints: specs([1, 1]) }, { balancer: 'random', balancerExplicit: true });
  assert.equal(cluster.status().balancer, 'round-robin');
  assert.equal(cluster.status().httpBalancer, 'random');
  const conn: string[] = [];
  for (let i = 0; i < 6; i++) {
    conn.push(keyOf(cluster.pick({})));
    requestPick(cluster);
  }
  assert.deepEqual(conn, [0, 1, 2, 3, 4, 5].map((i) => (i % 2 === 0 ? conn[0] : conn[1])));
  assert.notEqual(conn[0], conn[1], 'the connection cursor is not moved by requests');
  cluster.close();

  const { cluster: inherits } = make({ balancer: 'maglev' }, { balancer: 'p2c', balancerExplicit: false });
  assert.equal(inherits.requestBalancer, 'maglev');
  assert.equal(inherits.status().httpBalancer, 'maglev');
  inherits.close();
});

test('ring-hash: one source address lands on one endpoint over TCP and over HTTP, and in another sidecar', () => {
  const { cluster } = make({ balancer: 'ring-hash', endpoints: specs([1, 1, 1, 1]) });
  const { cluster: other } = make({ balancer: 'ring-hash', endpoints: specs([1, 1, 1, 1]) }, {}, { seed: 77 });
  const owners = new Set<string>();
  for (const src of sourceAddresses(100)) {
    const tcp = keyOf(cluster.pick({ sourceAddress: src }));
    owners.add(tcp);
    assert.equal(keyOf(requestPick(cluster, req({ sourceAddress: src }))), tcp, src);
    assert.equal(keyOf(other.pick({ sourceAddress: src })), tcp, `${src} in another instance`);
  }
  assert.equal(owners.size, 4, 'the sources spread over every endpoint');
  cluster.close();
  other.close();
});

test('ring-hash on the route\'s hash_on: the same header / cookie / source value always lands on the same endpoint', () => {
  const { cluster } = make({ balancer: 'ring-hash', endpoints: specs([1, 1, 1, 1]) });
  const { cluster: other } = make({ balancer: 'ring-hash', endpoints: specs([1, 1, 1, 1]) }, {}, { seed: 5 });
  const hk = requestHashKey({ kind: 'header', name: 'x-user' }, head({ headers: [['X-User', 'alice']] }));
  const ck = requestHashKey({ kind: 'cookie', name: 'session' }, head({ headers: [['cookie', 'theme=dark; session="s-123"'], ['cookie', 'other=1']] }));
  const sk = requestHashKey({ kind: 'source' }, head({ sourceAddress: '10.1.2.3' }));
  assert.deepEqual([hk, ck, sk], ['alice', 's-123', '10.1.2.3']);
  assert.equal(requestHashKey({ kind: 'cookie', name: 'missing' }, head({ headers: [['cookie', 'a=1']] })), undefined);
  assert.equal(requestHashKey({ kind: 'header', name: 'x-user' }, head()), undefined);
  for (const hashKey of [hk, ck, sk]) {
    const first = keyOf(requestPick(cluster, req({ hashKey, sourceAddress: '172.16.0.1' })));
    for (let i = 0; i < 20; i++) {
      assert.equal(keyOf(requestPick(cluster, req({ hashKey, sourceAddress: `172.16.0.${i + 2}` }))), first, `stable for ${hashKey}`);
    }
    assert.equal(keyOf(requestPick(other, req({ hashKey }))), first, 'same answer in another sidecar');
  }
  // The key of the source hash is the address L4 hashes: one client, one endpoint over TCP and HTTP.
  assert.equal(keyOf(requestPick(cluster, req({ hashKey: sk }))), keyOf(cluster.pick({ sourceAddress: '10.1.2.3' })));
  cluster.close();
  other.close();
});

// === slow start ===

test('slow start: a returning endpoint gets a reduced round-robin share that grows to a full one', () => {
  const { cluster, time } = make();
  failConnects(cluster, A, 5);
  time.advance(30_000); // returns at 10 %: weights 10:100:100, i.e. 1:10:10
  assert.equal(statusOf(cluster, A)?.weightFactor, 0.1);
  let counts = countPicks(() => cluster.pick({}), 21 * 10);
  assert.deepEqual([A, B, C].map((k) => counts.get(k)), [10, 100, 100]);
  counts = countPicks(() => requestPick(cluster), 21 * 10);
  assert.deepEqual([A, B, C].map((k) => counts.get(k)), [10, 100, 100], 'requests too');

  time.advance(15_000); // half way: 55 %, weights 55:100:100, i.e. 11:20:20
  assert.equal(statusOf(cluster, A)?.weightFactor, 0.55);
  counts = countPicks(() => cluster.pick({}), 51 * 10);
  assert.deepEqual([A, B, C].map((k) => counts.get(k)), [110, 200, 200]);

  time.advance(15_000); // ramp over: full weight
  assert.equal(statusOf(cluster, A)?.weightFactor, 1);
  counts = countPicks(() => cluster.pick({}), 300);
  assert.deepEqual([A, B, C].map((k) => counts.get(k)), [100, 100, 100]);
  assert.equal(time.pending, 0, 'nothing left to republish');
  cluster.close();
});

test('slow start leaves ring-hash weights alone: a returning endpoint gets its keys back at once', () => {
  const { cluster, time } = make({ balancer: 'ring-hash' });
  const srcs = sourceAddresses(300);
  const map = (): string[] => srcs.map((s) => keyOf(cluster.pick({ sourceAddress: s })));
  const before = map();
  assert.ok(before.includes(A));
  failConnects(cluster, A, 5);
  const during = map();
  assert.ok(!during.includes(A));
  during.forEach((k, i) => { if (before[i] !== A) assert.equal(k, before[i], 'only the ejected endpoint\'s keys move'); });
  time.advance(30_000);
  assert.equal(statusOf(cluster, A)?.weightFactor, 0.1, 'ramping');
  assert.deepEqual(map(), before);
  cluster.close();
});

// === original destination ===

test('an original-destination cluster forwards to each connection\'s own original destination', () => {
  const time = new FakeTime();
  const cluster = new Cluster(
    { name: 'passthrough', service: undefined, policy: defaultTrafficPolicy('passthrough'), connectTimeoutMs: 10_000, inboundSource: false },
    { log: silentLogger(), clock: time, timers: time, random: seededRandom(1) },
  );
  assert.equal(cluster.originalDst, true);
  const r = cluster.pick({ originalDst: ORIGINAL_DST });
  assert.ok(r.kind === 'endpoint');
  assert.deepEqual({ ...r.endpoint }, { key: '10.96.0.10:80', address: '10.96.0.10', port: 80, weight: 1 });
  assert.deepEqual(cluster.pick({}), { kind: 'none', reason: 'no-endpoints' });
  const e = cluster.pickForRequest(req({ originalDst: { address: 'fd00::5', port: 443 } }));
  assert.deepEqual(e, { key: '[fd00::5]:443', address: 'fd00::5', port: 443, weight: 1 });
  cluster.report(e as PickedEndpoint, E503);
  assert.equal(typeof cluster.admit('request'), 'function', 'no breaker: always admitted');
  assert.equal(typeof cluster.admitRetry(), 'function');
  assert.deepEqual(cluster.status(), {
    kind: 'original-dst', protocol: 'auto', balancer: undefined, httpBalancer: undefined, upstreamProtocol: 'downstream',
    tlsOrigination: false, mtls: false, connectFailures: 0, ejections: 0, endpoints: [],
  });
  cluster.start();
  assert.equal(time.pending, 0, 'no health tick without membership');
  cluster.close();

  const { cluster: svc } = make({ endpoints: { kind: 'original-dst' } });
  assert.equal(svc.originalDst, true);
  assert.equal(keyOf(svc.pick({ originalDst: ORIGINAL_DST })), '10.96.0.10:80');
  assert.equal(svc.status().kind, 'original-dst');
  assert.ok(svc.breaker !== undefined, 'a [service] with discovery = original-dst has its breaker');
  svc.close();
});

// === breaker ===

test('admit follows the breaker: requests, connections and pending requests have their own limits; a release counts once', () => {
  const base = defaultTrafficPolicy('web').breaker;
  const { cluster } = make({}, { breaker: { ...base, maxRequests: 1, maxConnections: 2, maxPendingRequests: 1 } });
  const r = cluster.admit('request');
  assert.equal(typeof r, 'function');
  assert.equal(cluster.admit('request'), undefined);
  r?.();
  assert.equal(typeof cluster.admit('request'), 'function');
  const c1 = cluster.admit('connection');
  assert.equal(typeof cluster.admit('connection'), 'function');
  assert.equal(cluster.admit('connection'), undefined);
  const q = cluster.admit('pending');
  assert.equal(cluster.subset('v1').admit('pending'), undefined, 'a subset shares the service\'s breaker');
  c1?.();
  c1?.();
  assert.equal(cluster.status().breaker?.active.connection, 1, 'a release counts once');
  q?.();
  assert.deepEqual(cluster.status().breaker, {
    active: { connection: 1, pending: 0, request: 1, retry: 0 },
    overflow: { connection: 1, pending: 1, request: 1, retry: 0 },
    retryBudgetOverflow: 0,
  });
  cluster.close();
});

test('admitRetry tells the max_retries cap (circuit-open) from the retry budget (retry-budget-exhausted)', () => {
  const base = defaultTrafficPolicy('web').breaker;
  const { cluster: budget } = make({}, { breaker: { ...base, retryBudget: { budgetPercent: 0, minRetryConcurrency: 1 } } });
  const release = budget.admitRetry();
  assert.equal(typeof release, 'function');
  assert.equal(budget.admitRetry(), 'retry-budget-exhausted');
  assert.equal(budget.subset('v1').admitRetry(), 'retry-budget-exhausted');
  if (typeof release === 'function') release();
  assert.equal(typeof budget.admitRetry(), 'function');
  assert.equal(budget.status().breaker?.retryBudgetOverflow, 2);
  budget.close();
  const { cluster: capped } = make({}, { breaker: { ...base, maxRetries: 0 } });
  assert.equal(capped.admitRetry(), 'circuit-open');
  assert.equal(capped.status().breaker?.retryBudgetOverflow, 0);
  capped.close();
});
