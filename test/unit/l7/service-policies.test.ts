import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ServicePolicies, type PolicyEndpoint } from '../../../src/l7/service-policies.js';
import { defaultTrafficPolicy } from '../../../src/config/traffic-policy-config.js';
import { FakeClock, head, seededRandom } from './helpers.js';

const EPS: PolicyEndpoint[] = ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((address) => ({ key: `${address}:80`, address, port: 80, weight: 1 }));
const ctx = { head: head(), tried: new Set<string>(), preferOtherHosts: true, hashOn: undefined };

test('pick skips ejected endpoints, counts the attempt as active until report, and report feeds outlier detection', () => {
  const clock = new FakeClock();
  const p = new ServicePolicies(defaultTrafficPolicy('web'), { clock, random: seededRandom(9) });
  p.setEndpoints(EPS);
  const first = p.pick(ctx);
  assert.ok(first !== undefined);
  assert.equal(p.load.active(first.key), 1);
  p.report(first, { kind: 'response', status: 200, latencyMs: 3 });
  assert.equal(p.load.active(first.key), 0);

  let ev;
  for (let i = 0; i < 5; i++) {
    p.load.start('10.0.0.2:80');
    ev = p.report({ address: '10.0.0.2', port: 80 }, { kind: 'connect-failure' }) ?? ev;
  }
  assert.ok(ev?.kind === 'ejected' && ev.endpoint === '10.0.0.2:80', 'the key is found from address and port');
  for (let i = 0; i < 200; i++) {
    const e = p.pick(ctx);
    assert.notEqual(e?.key, '10.0.0.2:80');
    if (e !== undefined) p.report(e, { kind: 'response', status: 200, latencyMs: 1 });
  }
  // After the ejection the endpoint returns with a reduced share (slow start), growing back to a full one.
  clock.advance(30_000);
  const share = (): number => {
    let n = 0;
    for (let i = 0; i < 3000; i++) {
      const e = p.pick(ctx);
      if (e?.key === '10.0.0.2:80') n++;
      if (e !== undefined) p.report(e, { kind: 'response', status: 200, latencyMs: 1 });
    }
    return n / 3000;
  };
  const early = share();
  clock.advance(30_000);
  const late = share();
  assert.ok(early > 0 && early < late, `share right after return ${early} < after slow start ${late}`);
  assert.deepEqual(p.tick().map((e) => e.kind), ['returned']);
});

test('tried endpoints are avoided when the policy prefers other hosts; admit follows the breaker', () => {
  const spec = defaultTrafficPolicy('web');
  const p = new ServicePolicies({ ...spec, breaker: { ...spec.breaker, maxRequests: 1 } }, { clock: new FakeClock(), random: seededRandom(1) });
  p.setEndpoints(EPS);
  const tried = new Set(['10.0.0.1:80', '10.0.0.2:80']);
  for (let i = 0; i < 20; i++) assert.equal(p.pick({ ...ctx, tried })?.key, '10.0.0.3:80');
  const release = p.admit('request');
  assert.equal(typeof release, 'function');
  assert.equal(p.admit('request'), undefined);
  release?.();
  assert.equal(typeof p.admit('request'), 'function');
  p.setEndpoints([]);
  assert.equal(p.pick(ctx), undefined);
});

test('admit covers connections and pending requests with the service\'s max_connections / max_pending_requests', () => {
  const spec = defaultTrafficPolicy('web');
  const p = new ServicePolicies(
    { ...spec, breaker: { ...spec.breaker, maxConnections: 2, maxPendingRequests: 1 } },
    { clock: new FakeClock(), random: seededRandom(3) },
  );
  const c1 = p.admit('connection');
  const c2 = p.admit('connection');
  assert.equal(typeof c1, 'function');
  assert.equal(typeof c2, 'function');
  assert.equal(p.admit('connection'), undefined);
  const q = p.admit('pending');
  assert.equal(typeof q, 'function');
  assert.equal(p.admit('pending'), undefined);
  assert.equal(typeof p.admit('request'), 'function', 'the limits are independent');
  c1?.();
  c1?.();
  assert.equal(p.breaker.active('connection'), 1, 'a release counts once');
  assert.equal(typeof p.admit('connection'), 'function');
  q?.();
  assert.equal(p.breaker.active('pending'), 0);
  const s = p.breaker.stats();
  assert.equal(s.overflow.connection, 1);
  assert.equal(s.overflow.pending, 1);
});

test('ring-hash policies hash the route\'s input and keep configured weights', () => {
  const p = new ServicePolicies({ ...defaultTrafficPolicy('web'), balancer: 'ring-hash' }, { clock: new FakeClock(), random: seededRandom(2) });
  p.setEndpoints(EPS);
  const byUser = { ...ctx, head: head({ headers: [['x-user', 'u-42']] }), hashOn: { kind: 'header' as const, name: 'x-user' } };
  const first = p.pick(byUser)?.key;
  for (let i = 0; i < 10; i++) assert.equal(p.pick(byUser)?.key, first);
});

test('admitRetry tells the max_retries cap (circuit-open) from the retry budget (retry-budget-exhausted)', () => {
  const spec = defaultTrafficPolicy('web');
  const budget = new ServicePolicies({ ...spec, breaker: { ...spec.breaker, retryBudget: { budgetPercent: 0, minRetryConcurrency: 1 } } },
    { clock: new FakeClock(), random: seededRandom(1) });
  const release = budget.admitRetry();
  assert.equal(typeof release, 'function');
  assert.equal(budget.admitRetry(), 'retry-budget-exhausted');
  if (typeof release === 'function') release();
  assert.equal(typeof budget.admitRetry(), 'function');
  const capped = new ServicePolicies({ ...spec, breaker: { ...spec.breaker, maxRetries: 0 } }, { clock: new FakeClock(), random: seededRandom(1) });
  assert.equal(capped.admitRetry(), 'circuit-open');
});
