// The L4 route stage: direction + original destination (+ SNI/Host) -> a cluster (with its fixed endpoint for
// original-destination clusters) or a refusal, and the declared protocol. Clusters are built from config text by the
// real validator and cluster planner (no sockets are opened: nothing is started).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSnapshotDefinitions } from '../../../src/config/load-snapshot.js';
import { silentLogger } from '../../../src/core/log.js';
import { AcceptRouter, inboundTarget, type Destination, type InboundDelivery } from '../../../src/l4/accept-route.js';
import { INBOUND_SOURCE_V4, INBOUND_SOURCE_V6 } from '../../../src/upstream/cluster.js';
import { planClusters } from '../../../src/upstream/cluster-set.js';

function router(ini: string, delivery: InboundDelivery = 'original-dst'): { r: AcceptRouter; close: () => void } {
  const load = loadSnapshotDefinitions({ file: 't.ini', flags: new Map(), env: {}, readFile: () => Buffer.from(ini) });
  assert.ok(load.ok, load.ok ? '' : JSON.stringify(load.issues));
  const plan = planClusters(load.definitions, undefined, { log: silentLogger() });
  return { r: new AcceptRouter(plan.set, delivery), close: () => { plan.discard(); } };
}

const dst = (address: string, port: number) => ({ family: address.includes(':') ? 6 : 4, address, port }) as const;

function cluster(d: Destination): string {
  return d.kind === 'cluster' ? d.cluster.name : `refuse: ${d.reason}`;
}

test('no registry: passthrough to the original destination; default opaque ports are declared, others detected', () => {
  const { r, close } = router('');
  const out = r.accept('outbound', dst('10.0.0.1', 80));
  assert.equal(out.declared, 'detect');
  assert.equal(out.needName, false);
  assert.equal(cluster(out.destination), 'passthrough');
  assert.deepEqual(out.destination.kind === 'cluster' ? out.destination.target : undefined, { address: '10.0.0.1', port: 80 });
  assert.equal(r.accept('outbound', dst('10.0.0.1', 3306)).declared, 'opaque');
  const inbound = r.accept('inbound', dst('10.0.0.9', 8080));
  assert.equal(cluster(inbound.destination), 'inbound');
  assert.deepEqual(inbound.destination.kind === 'cluster' ? inbound.destination.target : undefined, { address: '10.0.0.9', port: 8080 });
  assert.equal(inbound.destination.kind === 'cluster' ? inbound.destination.cluster.spec.inboundSource : false, true,
    'the inbound cluster binds 127.0.0.6 / ::6');
  close();
});

test('inbound delivery: original-dst delivers to the address the client dialed, loopback to 127.0.0.1 / ::1', () => {
  const v4 = dst('10.1.2.3', 8080);
  const v6 = dst('fd00::3', 8443);
  assert.deepEqual(inboundTarget(v4, 'original-dst'), { address: '10.1.2.3', port: 8080 });
  assert.deepEqual(inboundTarget(v6, 'original-dst'), { address: 'fd00::3', port: 8443 });
  assert.deepEqual(inboundTarget(v4, 'loopback'), { address: '127.0.0.1', port: 8080 });
  assert.deepEqual(inboundTarget(v6, 'loopback'), { address: '::1', port: 8443 });
  assert.equal(INBOUND_SOURCE_V4, '127.0.0.6');
  assert.equal(INBOUND_SOURCE_V6, '::6');
  const { r, close } = router('', 'loopback');
  const inbound = r.accept('inbound', dst('10.0.0.9', 8080));
  assert.deepEqual(inbound.destination.kind === 'cluster' ? inbound.destination.target : undefined, { address: '127.0.0.1', port: 8080 });
  close();
});

test('VIP match: the service and its protocol (auto -> port declaration -> defaults)', () => {
  const { r, close } = router([
    '[registry]', 'port_protocols = 6379=auto, 8080=http',
    '[service a]', 'addresses = 10.96.0.1:80, 10.96.0.1:6379, 10.96.0.1:8080, 10.96.0.1:5432', 'endpoints = 10.1.0.1:80',
    '[service t]', 'addresses = 10.96.0.2:443', 'protocol = tls', 'endpoints = 10.1.0.2:443',
  ].join('\n'));
  const a = r.accept('outbound', dst('::ffff:10.96.0.1', 80));
  assert.equal(cluster(a.destination), 'a');
  assert.equal(a.destination.kind === 'cluster' ? a.destination.target : 'x', undefined, 'a balanced cluster has no fixed endpoint');
  assert.equal(a.declared, 'detect');
  assert.equal(r.accept('outbound', dst('10.96.0.1', 6379)).declared, 'detect', '6379=auto removes it from the defaults');
  assert.equal(r.accept('outbound', dst('10.96.0.1', 8080)).declared, 'http');
  assert.equal(r.accept('outbound', dst('10.96.0.1', 5432)).declared, 'opaque');
  assert.equal(r.accept('outbound', dst('10.96.0.2', 443)).declared, 'tls');
  close();
});

test('names: a destination without VIP on a port where hostnames apply needs the name; byName picks the service', () => {
  const { r, close } = router([
    '[service alpha]', 'hostnames = alpha.test:443, *.wild.test', 'protocol = tls', 'endpoints = 10.1.0.1:443',
  ].join('\n'));
  const x = r.accept('outbound', dst('10.9.9.9', 443));
  assert.equal(x.needName, true);
  assert.equal(cluster(x.destination), 'passthrough', 'passthrough until a name matches');
  const byName = r.byName(dst('10.9.9.9', 443), 'ALPHA.test.');
  assert.equal(byName === undefined ? undefined : cluster(byName), 'alpha');
  assert.equal(r.byName(dst('10.9.9.9', 443), 'beta.test'), undefined);
  assert.equal(r.accept('outbound', dst('10.9.9.9', 3306)).needName, false, 'an opaque port carries no name');
  assert.equal(r.accept('outbound', dst('10.9.9.9', 80)).needName, true, '*.wild.test applies on any port');
  close();
});

test('a discovery = original-dst service is reached at the connection\'s own original destination', () => {
  const { r, close } = router(['[service h]', 'hostnames = h.test:443', 'protocol = tls', 'discovery = original-dst'].join('\n'));
  const byName = r.byName(dst('10.9.9.9', 443), 'h.test');
  assert.equal(byName === undefined ? undefined : cluster(byName), 'h');
  assert.deepEqual(byName?.kind === 'cluster' ? byName.target : undefined, { address: '10.9.9.9', port: 443 });
  close();
});

test('registry-only: unknown destinations are refused (still waiting for a name where one could match)', () => {
  const { r, close } = router(['[registry]', 'mode = registry-only', '[service h]', 'hostnames = h.test:443', 'protocol = tls', 'discovery = original-dst'].join('\n'));
  const plain = r.accept('outbound', dst('10.9.9.9', 80));
  assert.equal(plain.destination.kind, 'refuse');
  assert.equal(plain.needName, false);
  assert.match(plain.destination.kind === 'refuse' ? plain.destination.reason : '', /10\.9\.9\.9:80.*registry-only/);
  const named = r.accept('outbound', dst('10.9.9.9', 443));
  assert.equal(named.destination.kind, 'refuse');
  assert.equal(named.needName, true);
  close();
});
