// planClusters: the cluster set of a snapshot, carrying over from the previous set every cluster whose definition
// (everything but its static endpoint list and PEM contents) did not change; commit() applies, discard() abandons.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SnapshotDefinitions } from '../../../src/config/config-snapshot.js';
import { resolveOptions } from '../../../src/config/option-set.js';
import { proxyOptionSpecs } from '../../../src/config/proxy-options.js';
import { DEFAULT_REGISTRY_OPTIONS, type EndpointSpec, type ServiceSpec } from '../../../src/config/service-spec.js';
import { defaultTrafficPolicy } from '../../../src/config/traffic-policy-config.js';
import type { TrafficPolicySpec } from '../../../src/config/traffic-policy-spec.js';
import { silentLogger } from '../../../src/core/log.js';
import type { Cluster } from '../../../src/upstream/cluster.js';
import { INBOUND_CLUSTER, PASSTHROUGH_CLUSTER, planClusters, type ClusterSet, type ClusterSetDeps } from '../../../src/upstream/cluster-set.js';
import { FakeTime, seededRandom, serviceSpec, spec, specs } from './helpers.js';

const PROXY = resolveOptions(proxyOptionSpecs, { flags: new Map(), env: {} }).values;
const [A, B, C, D] = ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080', '10.0.0.4:8080'] as [string, string, string, string];

function defs(services: readonly ServiceSpec[], trafficPolicies: readonly TrafficPolicySpec[] = []): SnapshotDefinitions {
  return structuredClone({ proxy: PROXY, registry: DEFAULT_REGISTRY_OPTIONS, services, routes: [], trafficPolicies, authorizations: [], files: {} });
}

const web = (endpoints: readonly EndpointSpec[] = specs([1, 1, 1]), over: Partial<ServiceSpec> = {}): ServiceSpec =>
  ({ ...serviceSpec({ name: 'web', endpoints }), ...over });
const api = (over: Partial<ServiceSpec> = {}): ServiceSpec =>
  ({ ...serviceSpec({ name: 'api', endpoints: [spec(9)], connectTimeoutMs: 2_500, passive: { ejectBaseTimeMs: 10_000 } }), ...over });

const names = (cs: readonly Cluster[]): string[] => cs.map((c) => c.name);
const memberKeys = (c: Cluster | undefined): string[] => (c?.members() ?? []).map((e) => e.key);

/** The set of `d`, committed, on its own FakeTime. */
function first(d: SnapshotDefinitions): { set: ClusterSet; time: FakeTime; deps: ClusterSetDeps } {
  const time = new FakeTime();
  const deps: ClusterSetDeps = { log: silentLogger(), clock: time, timers: time, random: seededRandom(1) };
  const plan = planClusters(d, undefined, deps);
  plan.commit();
  return { set: plan.set, time, deps };
}

test('a first plan creates every cluster (services in config order, passthrough, inbound); commit starts them', () => {
  const time = new FakeTime();
  const policy: TrafficPolicySpec = { ...defaultTrafficPolicy('api'), balancer: 'peak-ewma', balancerExplicit: true };
  const plan = planClusters(defs([web(), api()], [policy]), undefined, { log: silentLogger(), clock: time, timers: time, random: seededRandom(1) });
  const set = plan.set;
  assert.deepEqual(names(plan.added), ['web', 'api', PASSTHROUGH_CLUSTER, INBOUND_CLUSTER]);
  assert.deepEqual([plan.kept, plan.retired], [[], []]);
  assert.deepEqual(names(set.services()), ['web', 'api']);
  assert.deepEqual(names(set.all()), ['web', 'api', PASSTHROUGH_CLUSTER, INBOUND_CLUSTER]);
  const w = set.get('web') as Cluster;
  const a = set.get('api') as Cluster;
  assert.equal(w.spec.connectTimeoutMs, 10_000, 'the proxy\'s connect_timeout');
  assert.equal(a.spec.connectTimeoutMs, 2_500, 'the service\'s own');
  assert.deepEqual(w.spec.policy, defaultTrafficPolicy('web', w.spec.service?.passiveHealth), 'no [traffic-policy]: the defaults');
  assert.equal(a.spec.policy.outlier.baseEjectionMs, 30_000, 'a written policy keeps its own ejection times');
  assert.equal(a.requestBalancer, 'peak-ewma');
  assert.equal(w.requestBalancer, 'round-robin');
  assert.deepEqual([set.passthrough.originalDst, set.passthrough.spec.inboundSource], [true, false]);
  assert.deepEqual([set.inbound.originalDst, set.inbound.spec.inboundSource], [true, true]);
  assert.deepEqual(Object.keys(set.status()), ['web', 'api']);
  assert.equal(time.pending, 0, 'nothing runs before commit');
  plan.commit();
  assert.equal(time.pending, 2, 'the health tick of each service cluster');
  set.close();
  assert.equal(time.pending, 0);
  assert.ok(set.all().every((c) => c.closed));
});

test('a service without a [traffic-policy] takes its ejection times and cap from its [service]', () => {
  const { set } = first(defs([api()]));
  const o = (set.get('api') as Cluster).spec.policy.outlier;
  assert.deepEqual([o.baseEjectionMs, o.maxEjectionMs, o.maxEjectedPercent], [10_000, 300_000, 50]);
  set.close();
});

test('an unchanged definition is carried over: the same object, with its health and load', () => {
  const d1 = defs([web(), api()]);
  const { set: s1, deps } = first(d1);
  const w1 = s1.get('web') as Cluster;
  for (let i = 0; i < 5; i++) w1.onConnectResult(A, false);
  w1.acquire(B);
  // Equal definitions (a new snapshot object; the section's line moved, which is not part of the definition).
  const d2 = defs([web(specs([1, 1, 1]), { source: 'test.ini:40' }), api()]);
  const plan = planClusters(d2, s1, deps, d1);
  assert.equal(plan.set.get('web'), w1);
  assert.equal(plan.set.get('api'), s1.get('api'));
  assert.equal(plan.set.passthrough, s1.passthrough);
  assert.equal(plan.set.inbound, s1.inbound);
  assert.deepEqual(names(plan.kept), ['web', 'api', PASSTHROUGH_CLUSTER, INBOUND_CLUSTER]);
  assert.deepEqual([plan.added, plan.retired], [[], []]);
  plan.commit();
  assert.equal(w1.closed, false);
  const status = w1.status().endpoints;
  assert.deepEqual(status.map((e) => [e.endpoint, e.ejected, e.active]), [[A, true, 0], [B, false, 1], [C, false, 0]]);
  plan.set.close();
});

test('a changed definition gets a new cluster; commit closes the old one (its pools drain); a removed service retires', () => {
  const d1 = defs([web(), api()]);
  const { set: s1, deps, time } = first(d1);
  const w1 = s1.get('web') as Cluster;
  const a1 = s1.get('api') as Cluster;
  const heard: string[] = [];
  w1.subscribe({ onClusterClosed: () => { heard.push('web closed'); } });
  const d2 = defs([web(specs([1, 1, 1]), { balancer: 'ring-hash' })]);
  const plan = planClusters(d2, s1, deps, d1);
  const w2 = plan.set.get('web') as Cluster;
  assert.notEqual(w2, w1);
  assert.notEqual(w2.id, w1.id, 'pools are keyed by id: the successor shares none');
  assert.equal(w2.connectionBalancer, 'ring-hash');
  assert.equal(plan.set.get('api'), undefined);
  assert.deepEqual(names(plan.added), ['web']);
  assert.deepEqual(names(plan.retired), ['web', 'api']);
  assert.deepEqual(names(plan.kept), [PASSTHROUGH_CLUSTER, INBOUND_CLUSTER]);
  assert.deepEqual([w1.closed, a1.closed, heard], [false, false, []], 'nothing changes before commit');
  assert.equal(w1.pick({}).kind, 'endpoint', 'the old set keeps serving');
  const pendingBefore = time.pending;
  plan.commit();
  assert.deepEqual([w1.closed, a1.closed, w2.closed, heard], [true, true, false, ['web closed']]);
  assert.equal(time.pending, pendingBefore - 1, 'two ticks stopped, one started');
  plan.commit();
  assert.equal(w2.closed, false, 'a second commit does nothing');

  // A changed traffic policy is a changed definition too.
  const d3 = defs([web(specs([1, 1, 1]), { balancer: 'ring-hash' })], [{ ...defaultTrafficPolicy('web'), upstreamProtocol: 'http2' }]);
  const plan3 = planClusters(d3, plan.set, deps, d2);
  assert.notEqual(plan3.set.get('web'), w2);
  assert.equal(plan3.set.get('web')?.protocol, 'http2');
  plan3.commit();
  assert.equal(w2.closed, true);
  plan3.set.close();
});

test('an endpoint-only change keeps the cluster and applies the list on commit; removed endpoints drain', () => {
  const d1 = defs([web()]);
  const { set: s1, deps } = first(d1);
  const w = s1.get('web') as Cluster;
  const removed: string[][] = [];
  w.subscribe({ onEndpointsRemoved: (keys) => { removed.push([...keys]); } });
  for (let i = 0; i < 5; i++) w.onConnectResult(A, false);
  const d2 = defs([web([spec(0), spec(1), spec(3, 2)])]);
  const plan = planClusters(d2, s1, deps, d1);
  assert.equal(plan.set.get('web'), w);
  assert.deepEqual(names(plan.kept).slice(0, 1), ['web']);
  assert.deepEqual(memberKeys(w), [A, B, C], 'not before commit');
  plan.commit();
  assert.deepEqual(memberKeys(w), [A, B, D]);
  assert.deepEqual(w.members().map((e) => e.weight), [1, 1, 2]);
  assert.deepEqual(removed, [[C]]);
  assert.equal(w.status().endpoints.find((e) => e.endpoint === A)?.ejected, true, 'a kept endpoint keeps its ejection');
  assert.equal(w.closed, false);
  plan.set.close();
});

test('endpoint lists changed back and forth over reloads are all applied (A -> B -> A)', () => {
  const d1 = defs([web(specs([1, 1, 1]))]);
  const { set: s1, deps } = first(d1);
  const w = s1.get('web') as Cluster;
  const d2 = defs([web([spec(0), spec(3)])]);
  const p2 = planClusters(d2, s1, deps, d1);
  p2.commit();
  assert.deepEqual(memberKeys(w), [A, D]);
  const p3 = planClusters(d1, p2.set, deps, d2);
  assert.equal(p3.set.get('web'), w);
  p3.commit();
  assert.deepEqual(memberKeys(w), [A, B, C], 'the list of the snapshot in force, not the one the cluster was built with');
  p3.set.close();
});

test('discard() closes only what the plan created; the previous set is untouched', () => {
  const d1 = defs([web(), api()]);
  const { set: s1, deps } = first(d1);
  const w1 = s1.get('web') as Cluster;
  const a1 = s1.get('api') as Cluster;
  const d2 = defs([web(specs([1])), api({ balancer: 'random' }), serviceSpec({ name: 'db', endpoints: [spec(7)] })]);
  const plan = planClusters(d2, s1, deps, d1);
  assert.equal(plan.set.get('web'), w1);
  assert.deepEqual(names(plan.added), ['api', 'db']);
  plan.discard();
  assert.deepEqual(plan.added.map((c) => c.closed), [true, true]);
  assert.deepEqual([w1.closed, a1.closed, s1.passthrough.closed, s1.inbound.closed], [false, false, false, false]);
  assert.deepEqual(memberKeys(w1), [A, B, C], 'the kept cluster\'s new endpoint list was not applied');
  plan.commit();
  assert.deepEqual([w1.closed, a1.closed], [false, false], 'commit after discard does nothing');
  assert.deepEqual(memberKeys(w1), [A, B, C]);
  assert.equal(s1.get('web'), w1);
  s1.close();
});

test('a change of the proxy connect_timeout keeps every cluster and applies the new timeout on commit', () => {
  const d1 = defs([web(), api()]);
  const { set: s1, deps } = first(d1);
  const w = s1.get('web') as Cluster;
  const a = s1.get('api') as Cluster;
  const d2 = { ...d1, proxy: { ...d1.proxy, connectTimeout: 3_000 } };
  const plan = planClusters(d2, s1, deps, d1);
  assert.equal(plan.set.get('web'), w, 'carried over, with its health, load and pools');
  assert.equal(plan.set.passthrough, s1.passthrough);
  assert.deepEqual(plan.added, []);
  assert.equal(w.connectTimeoutMs, 10_000, 'not before commit');
  plan.commit();
  assert.equal(w.connectTimeoutMs, 3_000);
  assert.equal(s1.passthrough.connectTimeoutMs, 3_000);
  assert.equal(a.connectTimeoutMs, 2_500, 'a service\'s own connect_timeout wins');
  plan.set.close();
});

test('a DNS cluster rebuilt for another reason starts with what its predecessor resolved for the same name', () => {
  const dns = { name: 'db.internal', type: 'A', port: 5432, targetType: 'A', refreshMinMs: 5_000, refreshMaxMs: 300_000 } as const;
  const db = (over: Partial<ServiceSpec> = {}): ServiceSpec => ({ ...serviceSpec({ name: 'db', endpoints: [] }), endpoints: { kind: 'dns', dns }, ...over });
  const d1 = defs([db()]);
  // No resolver answers in this test: the first cluster gets its endpoints as DNS would give them.
  const { set: s1, deps } = first(d1);
  const old = s1.get('db') as Cluster;
  old.reconfigure([spec(0), spec(1)], undefined);
  assert.deepEqual(memberKeys(old), ['10.0.0.1:8080', '10.0.0.2:8080']);
  const d2 = defs([db({ balancer: 'random' })]);
  const plan = planClusters(d2, s1, deps, d1);
  const rebuilt = plan.set.get('db') as Cluster;
  assert.notEqual(rebuilt, old, 'a changed balancer builds a new cluster');
  assert.deepEqual(memberKeys(rebuilt), memberKeys(old), 'seeded with the resolved endpoints');
  const d3 = defs([db({ endpoints: { kind: 'dns', dns: { ...dns, name: 'other.internal' } } })]);
  const other = planClusters(d3, s1, deps, d1);
  assert.deepEqual(memberKeys(other.set.get('db')), [], 'another name: nothing to carry');
  other.discard();
  plan.commit();
  plan.set.close();
});
