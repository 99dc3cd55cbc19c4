// buildRuntime builds the listeners' HTTP runtimes only when it is given the builder (src/proxy/http-runtimes.ts,
// which the proxy loads only when its HTTP engine runs); either way the L4 side of the runtime is the same.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { makeSnapshot } from '../../../src/config/config-snapshot.js';
import { loadSnapshotDefinitions } from '../../../src/config/load-snapshot.js';
import { MeshStats } from '../../../src/core/mesh-stats.js';
import { Stats } from '../../../src/core/stats.js';
import { ConnectionPipeline, ConnectionTracker } from '../../../src/l4/connection-pipeline.js';
import { buildHttpRuntimes } from '../../../src/proxy/http-runtimes.js';
import { buildRuntime, type RuntimePlan } from '../../../src/proxy/runtime.js';

const INI = [
  '[service web]', 'addresses = 10.255.0.10:80', 'endpoints = 10.0.0.1:8080', 'balancer = round-robin',
  '[route web-all]', 'service = web',
  '[authorization deny-admin]', 'action = deny', 'paths = /admin*',
].join('\n');
const handoff = { handleConnection: (): void => undefined };

function plan(withBuilder: boolean, version = 1): RuntimePlan {
  const r = loadSnapshotDefinitions({ file: 'test.ini', flags: new Map(), env: {}, readFile: () => Buffer.from(INI) });
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
  const stats = new Stats();
  const pipeline = (d: 'outbound' | 'inbound'): ConnectionPipeline => new ConnectionPipeline({ counters: stats.listener(d), countSniff: () => undefined }, new ConnectionTracker());
  return buildRuntime(makeSnapshot(r.definitions, version, { kind: 'inline', name: 'test' }), undefined, {
    log: pino({ level: 'silent' }), random: () => 0.5, meshStats: new MeshStats(),
    pipelines: { outbound: pipeline('outbound'), inbound: pipeline('inbound') },
    http: { outbound: handoff, inbound: handoff },
    connectionFilters: { outbound: [], inbound: [] },
    ...(withBuilder ? { httpRuntimes: buildHttpRuntimes } : {}),
  });
}

test('with the builder: one HTTP runtime per listener, of the snapshot version', (t) => {
  const p = plan(true, 7);
  t.after(() => { p.discard(); });
  const http = p.runtime.http;
  assert.ok(http !== undefined);
  assert.equal(http.outbound.version, 7);
  assert.equal(http.inbound.version, 7);
  assert.equal(typeof http.outbound.handle, 'function');
  assert.notEqual(http.outbound.handle, http.inbound.handle, 'each listener has its own chain (inbound: security filters)');
});

test('without the builder (HTTP engine off): no HTTP runtime, the same listeners, routes and authorizer', (t) => {
  const without = plan(false);
  const withIt = plan(true);
  t.after(() => { without.discard(); withIt.discard(); });
  assert.equal(without.runtime.http, undefined);
  for (const d of ['outbound', 'inbound'] as const) {
    assert.equal(without.runtime.listeners[d].version, withIt.runtime.listeners[d].version);
    assert.equal(without.runtime.listeners[d].http, handoff, 'the hand-off is the deps\'');
    assert.equal(withIt.runtime.listeners[d].http, handoff);
    assert.equal(without.runtime.listeners[d].authorize === undefined, withIt.runtime.listeners[d].authorize === undefined);
  }
  assert.equal(without.runtime.authorizer.hasPolicies, true);
  assert.deepEqual([...without.runtime.clusters.all()].map((c) => c.name).sort(), [...withIt.runtime.clusters.all()].map((c) => c.name).sort());
});
