import assert from 'node:assert/strict';
import { getServers } from 'node:dns';
import type { RecordWithTtl, SrvRecord } from 'node:dns';
import { test } from 'node:test';
import type { DnsDiscoverySpec, ServiceSpec } from '../../../src/config/service-spec.js';
import { silentLogger } from '../../../src/core/log.js';
import {
  clampRefresh, createDnsResolver, DnsDiscovery, failureBackoff, srvWeights,
  type DiscoveryTimers, type DnsResolverLike, type DnsUpdate,
} from '../../../src/upstream/dns-discovery.js';
import { endpointKey } from '../../../src/config/service-spec.js';

type Answer<T> = readonly T[] | { readonly error: string };

/** A scripted resolver: answers come from mutable maps; anything unscripted is NXDOMAIN. */
class FakeResolver implements DnsResolverLike {
  readonly a = new Map<string, Answer<RecordWithTtl>>();
  readonly aaaa = new Map<string, Answer<RecordWithTtl>>();
  readonly srv = new Map<string, Answer<SrvRecord>>();
  readonly queries: string[] = [];

  #answer<T>(kind: string, map: Map<string, Answer<T>>, name: string): Promise<T[]> {
    this.queries.push(`${kind} ${name}`);
    const a = map.get(name) ?? { error: 'ENOTFOUND' };
    if ('error' in a) {
      const err = Object.assign(new Error(`query${kind} ${a.error} ${name}`), { code: a.error, syscall: `query${kind}`, hostname: name });
      return Promise.reject(err);
    }
    return Promise.resolve([...(a as readonly T[])]);
  }

  resolve4(name: string): Promise<RecordWithTtl[]> { return this.#answer('A', this.a, name); }
  resolve6(name: string): Promise<RecordWithTtl[]> { return this.#answer('AAAA', this.aaaa, name); }
  resolveSrv(name: string): Promise<SrvRecord[]> { return this.#answer('Srv', this.srv, name); }
}

/** Timers that only record: tests read the delay chosen and fire the callback themselves. */
class FakeTimers implements DiscoveryTimers {
  readonly delays: number[] = [];
  pending: { fn: () => void; ms: number; id: number } | undefined;
  cleared = 0;
  #next = 1;

  setTimeout(fn: () => void, ms: number): unknown {
    assert.equal(this.pending, undefined, 'at most one refresh is ever scheduled');
    this.delays.push(ms);
    this.pending = { fn, ms, id: this.#next++ };
    return this.pending.id;
  }

  clearTimeout(handle: unknown): void {
    if (this.pending?.id === handle) { this.pending = undefined; this.cleared++; }
  }

  fire(): void {
    const p = this.pending;
    assert.ok(p, 'a refresh is scheduled');
    this.pending = undefined;
    p.fn();
  }
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

const A = (address: string, ttl: number): RecordWithTtl => ({ address, ttl });
const SRV = (name: string, port: number, priority = 10, weight = 10): SrvRecord => ({ name, port, priority, weight });

function spec(over: Partial<DnsDiscoverySpec> = {}): DnsDiscoverySpec {
  return { name: 'db.internal', type: 'A', port: 5432, targetType: 'A', refreshMinMs: 5_000, refreshMaxMs: 300_000, ...over };
}

function setup(dns: DnsDiscoverySpec): { d: DnsDiscovery; res: FakeResolver; timers: FakeTimers; updates: DnsUpdate[] } {
  const res = new FakeResolver();
  const timers = new FakeTimers();
  const updates: DnsUpdate[] = [];
  const d = new DnsDiscovery({ service: 'db', dns, resolver: res, log: silentLogger(), onUpdate: (u) => updates.push(u), timers });
  return { d, res, timers, updates };
}

const keys = (u: DnsUpdate | undefined): string[] => (u?.endpoints ?? []).map(endpointKey);

test('A records become endpoints on dns_port; the refresh follows the TTL', async () => {
  const { d, res, updates } = setup(spec());
  res.a.set('db.internal', [A('10.1.0.2', 30), A('10.1.0.1', 60)]);
  const r = await d.refresh();
  assert.ok(r.ok);
  assert.equal(r.ttlMs, 30_000);
  assert.equal(r.nextDelayMs, 30_000);
  assert.equal(updates.length, 1);
  assert.deepEqual(updates[0]?.endpoints, [{ address: '10.1.0.1', port: 5432, weight: 1 }, { address: '10.1.0.2', port: 5432, weight: 1 }]);
  assert.equal(updates[0]?.added.length, 2);
  assert.deepEqual(res.queries, ['A db.internal']);
});

test('the TTL is clamped to [dns_refresh_min, dns_refresh_max]', async () => {
  const { d, res } = setup(spec({ refreshMinMs: 5_000, refreshMaxMs: 60_000 }));
  res.a.set('db.internal', [A('10.1.0.1', 0)]);
  const low = await d.refresh();
  assert.equal(low.nextDelayMs, 5_000);
  res.a.set('db.internal', [A('10.1.0.1', 86_400)]);
  const high = await d.refresh();
  assert.equal(high.nextDelayMs, 60_000);
  assert.equal(clampRefresh(1_000, 5_000, 60_000), 5_000);
  assert.equal(clampRefresh(10_000, 5_000, 60_000), 10_000);
  assert.equal(clampRefresh(10_000_000, 5_000, 60_000), 60_000);
});

test('an unchanged answer publishes nothing; a change publishes the full list with added/removed', async () => {
  const { d, res, updates } = setup(spec());
  res.a.set('db.internal', [A('10.1.0.1', 10), A('10.1.0.2', 10)]);
  await d.refresh();
  res.a.set('db.internal', [A('10.1.0.2', 10), A('10.1.0.1', 10)]);
  const same = await d.refresh();
  assert.ok(same.ok && !same.changed);
  assert.equal(updates.length, 1);
  res.a.set('db.internal', [A('10.1.0.2', 10), A('10.1.0.3', 10)]);
  await d.refresh();
  assert.equal(updates.length, 2);
  assert.deepEqual(keys(updates[1]), ['10.1.0.2:5432', '10.1.0.3:5432']);
  assert.deepEqual(updates[1]?.added.map(endpointKey), ['10.1.0.3:5432']);
  assert.deepEqual(updates[1]?.removed.map(endpointKey), ['10.1.0.1:5432']);
});

test('resolver failure keeps the last good endpoints, backs off from min to max, and recovers', async () => {
  const { d, res, updates } = setup(spec({ refreshMinMs: 5_000, refreshMaxMs: 30_000 }));
  res.a.set('db.internal', [A('10.1.0.1', 10)]);
  await d.refresh();
  res.a.set('db.internal', { error: 'ETIMEOUT' });
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await d.refresh();
    assert.equal(r.ok, false);
    assert.equal(r.ok ? '' : r.code, 'ETIMEOUT');
    assert.equal(r.ok ? 0 : r.keptEndpoints, 1);
    delays.push(r.nextDelayMs);
  }
  assert.deepEqual(delays, [5_000, 10_000, 20_000, 30_000, 30_000]);
  assert.deepEqual(d.endpoints.map(endpointKey), ['10.1.0.1:5432']);
  assert.equal(updates.length, 1, 'failures publish nothing');
  assert.equal(d.status.consecutiveFailures, 5);
  assert.equal(d.status.lastError?.code, 'ETIMEOUT');
  res.a.set('db.internal', [A('10.1.0.1', 10)]);
  const back = await d.refresh();
  assert.ok(back.ok && !back.changed);
  assert.equal(back.nextDelayMs, 10_000);
  assert.equal(d.status.consecutiveFailures, 0);
  assert.equal(failureBackoff(1, 100, 1000), 100);
  assert.equal(failureBackoff(100, 100, 1000), 1000);
});

test('NXDOMAIN / no records also keep the last good endpoints', async () => {
  const { d, res, updates } = setup(spec());
  res.a.set('db.internal', [A('10.1.0.1', 10)]);
  await d.refresh();
  res.a.delete('db.internal');
  const gone = await d.refresh();
  assert.equal(gone.ok ? '' : gone.code, 'ENOTFOUND');
  res.a.set('db.internal', []);
  const empty = await d.refresh();
  assert.equal(empty.ok ? '' : empty.code, 'ENODATA');
  assert.deepEqual(d.endpoints.map(endpointKey), ['10.1.0.1:5432']);
  assert.equal(updates.length, 1);
});

test('before the first success there are no endpoints and nothing is published', async () => {
  const { d, res, updates } = setup(spec());
  res.a.set('db.internal', { error: 'ECONNREFUSED' });
  const r = await d.refresh();
  assert.equal(r.ok, false);
  assert.deepEqual(d.endpoints, []);
  assert.equal(d.status.lastSuccessAt, undefined);
  assert.equal(updates.length, 0);
});

test('A+AAAA: both families, one family without records is fine, a real error on either fails', async () => {
  const { d, res, updates } = setup(spec({ type: 'A+AAAA', port: 80 }));
  res.a.set('db.internal', [A('10.1.0.1', 50)]);
  res.aaaa.set('db.internal', [A('FD00:0::1', 20)]);
  const both = await d.refresh();
  assert.ok(both.ok);
  assert.equal(both.ttlMs, 20_000);
  assert.deepEqual(keys(updates[0]), ['10.1.0.1:80', '[fd00::1]:80']);
  res.aaaa.set('db.internal', { error: 'ENODATA' });
  await d.refresh();
  assert.deepEqual(keys(updates[1]), ['10.1.0.1:80']);
  res.aaaa.set('db.internal', { error: 'ESERVFAIL' });
  const failed = await d.refresh();
  assert.equal(failed.ok ? '' : failed.code, 'ESERVFAIL');
  assert.deepEqual(d.endpoints.map(endpointKey), ['10.1.0.1:80']);
  res.a.set('db.internal', { error: 'ENODATA' });
  res.aaaa.set('db.internal', { error: 'ENODATA' });
  const none = await d.refresh();
  assert.equal(none.ok ? '' : none.code, 'ENODATA');
  assert.equal(updates.length, 2);
});

test('AAAA only asks AAAA', async () => {
  const { d, res } = setup(spec({ type: 'AAAA' }));
  res.aaaa.set('db.internal', [A('fd00::2', 5)]);
  await d.refresh();
  assert.deepEqual(res.queries, ['AAAA db.internal']);
  assert.deepEqual(d.endpoints.map(endpointKey), ['[fd00::2]:5432']);
});

test('SRV: ports and weights from the records, lowest priority only, targets resolved, TTL from the targets', async () => {
  const { d, res, updates } = setup(spec({ name: '_pg._tcp.db.internal', type: 'SRV', port: undefined, refreshMinMs: 1_000 }));
  res.srv.set('_pg._tcp.db.internal', [
    SRV('db1.internal', 5432, 10, 30), SRV('db2.internal', 5433, 10, 10), SRV('backup.internal', 5432, 20, 10),
  ]);
  res.a.set('db1.internal', [A('10.1.0.1', 40)]);
  res.a.set('db2.internal', [A('10.1.0.2', 15), A('10.1.0.3', 60)]);
  res.a.set('backup.internal', [A('10.9.0.1', 1)]);
  const r = await d.refresh();
  assert.ok(r.ok);
  assert.equal(r.ttlMs, 15_000);
  assert.deepEqual(updates[0]?.endpoints, [
    { address: '10.1.0.1', port: 5432, weight: 30 },
    { address: '10.1.0.2', port: 5433, weight: 10 },
    { address: '10.1.0.3', port: 5433, weight: 10 },
  ]);
  assert.ok(!res.queries.includes('A backup.internal'), 'higher priority values are not even resolved');
});

test('SRV: a port change follows; a target without addresses is skipped; a target lookup error keeps the last good list', async () => {
  const { d, res, updates } = setup(spec({ name: '_pg._tcp.db.internal', type: 'SRV', port: undefined }));
  res.srv.set('_pg._tcp.db.internal', [SRV('db1.internal', 5432), SRV('gone.internal', 5432)]);
  res.a.set('db1.internal', [A('10.1.0.1', 40)]);
  await d.refresh();
  assert.deepEqual(keys(updates[0]), ['10.1.0.1:5432']);
  res.srv.set('_pg._tcp.db.internal', [SRV('db1.internal', 6432)]);
  await d.refresh();
  assert.deepEqual(keys(updates[1]), ['10.1.0.1:6432']);
  res.a.set('db1.internal', { error: 'ETIMEOUT' });
  const r = await d.refresh();
  assert.equal(r.ok ? '' : r.code, 'ETIMEOUT');
  assert.deepEqual(d.endpoints.map(endpointKey), ['10.1.0.1:6432']);
  res.srv.set('_pg._tcp.db.internal', [SRV('.', 0)]);
  const dot = await d.refresh();
  assert.equal(dot.ok ? '' : dot.code, 'ENODATA', 'the "service not available" SRV record gives no endpoints');
  assert.equal(updates.length, 2);
});

test('SRV: AAAA targets and IP-literal targets (refresh at max when no TTL is known)', async () => {
  const { d, res, updates } = setup(spec({ name: '_x._tcp.a', type: 'SRV', port: undefined, targetType: 'AAAA', refreshMaxMs: 42_000 }));
  res.srv.set('_x._tcp.a', [SRV('fd00::7', 80)]);
  const r = await d.refresh();
  assert.ok(r.ok);
  assert.equal(r.nextDelayMs, 42_000);
  assert.deepEqual(keys(updates[0]), ['[fd00::7]:80']);
  assert.deepEqual(res.queries, ['Srv _x._tcp.a']);
});

test('SRV weights map to 1-1000 keeping ratios', () => {
  assert.deepEqual(srvWeights([0, 1, 500, 1000]), [1, 1, 500, 1000]);
  assert.deepEqual(srvWeights([65535, 32768, 0]), [1000, 500, 1]);
  assert.deepEqual(srvWeights([5000, 5000]), [1000, 1000]);
});

test('start() resolves at once and re-resolves on the chosen delay; stop() cancels and silences it', async () => {
  const { d, res, timers, updates } = setup(spec({ refreshMinMs: 1_000, refreshMaxMs: 60_000 }));
  res.a.set('db.internal', [A('10.1.0.1', 7)]);
  d.start();
  d.start(); // idempotent
  await flush();
  assert.equal(d.running, true);
  assert.deepEqual(timers.delays, [7_000]);
  res.a.set('db.internal', [A('10.1.0.2', 120)]);
  timers.fire();
  await flush();
  assert.deepEqual(timers.delays, [7_000, 60_000]);
  assert.deepEqual(updates.map(keys), [['10.1.0.1:5432'], ['10.1.0.2:5432']]);
  d.stop();
  assert.equal(timers.cleared, 1);
  assert.equal(timers.pending, undefined);
  assert.equal(d.running, false);
  assert.equal(res.queries.length, 2);
});

test('stop() while a query is in flight: the answer schedules nothing and publishes nothing', async () => {
  const { d, res, timers, updates } = setup(spec());
  res.a.set('db.internal', [A('10.1.0.1', 7)]);
  d.start(); // the query is already issued (resolved promise not yet consumed)
  d.stop();
  await flush();
  assert.equal(timers.pending, undefined);
  assert.equal(updates.length, 0);
});

test('a throwing update handler is contained', async () => {
  const res = new FakeResolver();
  res.a.set('db.internal', [A('10.1.0.1', 7)]);
  const d = new DnsDiscovery({
    service: 'db', dns: spec(), resolver: res, log: silentLogger(), timers: new FakeTimers(),
    onUpdate: () => { throw new Error('boom'); },
  });
  const r = await d.refresh();
  assert.ok(r.ok);
  assert.deepEqual(d.endpoints.map(endpointKey), ['10.1.0.1:5432']);
});

test('forService: only for discovery = dns', () => {
  const base = { name: 's', endpoints: { kind: 'static', endpoints: [] } } as unknown as ServiceSpec;
  const deps = { resolver: new FakeResolver(), log: silentLogger(), onUpdate: () => undefined, timers: new FakeTimers() };
  assert.equal(DnsDiscovery.forService(base, deps), undefined);
  const dnsService = { ...base, endpoints: { kind: 'dns', dns: spec() } } as ServiceSpec;
  assert.equal(DnsDiscovery.forService(dnsService, deps)?.status.name, 'db.internal');
});

test('createDnsResolver points a Resolver at [registry] resolver (ip:port)', () => {
  assert.deepEqual(createDnsResolver({ resolver: { host: '10.0.0.1', port: 5353 }, resolverTimeoutMs: 1000 }).getServers(), ['10.0.0.1:5353']);
  assert.deepEqual(createDnsResolver({ resolver: { host: 'fd00::a', port: 53 }, resolverTimeoutMs: 1000 }).getServers(), ['fd00::a']);
  // Without [registry] resolver: the system's resolvers (/etc/resolv.conf), exactly as node:dns uses them.
  assert.deepEqual(createDnsResolver({ resolver: undefined, resolverTimeoutMs: 1000 }).getServers(), getServers());
});
