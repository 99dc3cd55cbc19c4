import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIni } from '../../../src/config/ini-file.js';
import { DEFAULT_CIRCUIT_BREAKER_LIMITS } from '../../../src/config/traffic-policy-spec.js';
import { DEFAULT_OUTLIER_CONFIG } from '../../../src/config/traffic-policy-spec.js';
import { defaultTrafficPolicy, parseTrafficPolicies } from '../../../src/config/traffic-policy-config.js';

function parse(text: string, known?: string[]): ReturnType<typeof parseTrafficPolicies> {
  return parseTrafficPolicies(parseIni(text, 'p.ini').doc, known === undefined ? {} : { knownServices: known });
}

test('defaults: least-request, Envoy-like breaker, budget 20 %/3, outlier defaults', () => {
  const d = defaultTrafficPolicy('web');
  assert.equal(d.balancer, 'least-request');
  assert.equal(d.breaker, DEFAULT_CIRCUIT_BREAKER_LIMITS);
  assert.equal(d.outlier, DEFAULT_OUTLIER_CONFIG);
  assert.deepEqual(d.ewma, { decayMs: 10_000, defaultRttMs: 30, failurePenaltyMs: 1000 });
  const empty = parse('[traffic-policy web]\n');
  assert.ok(empty.ok);
  if (empty.ok) assert.deepEqual({ ...empty.policies.get('web'), source: undefined }, { ...d, breaker: { ...d.breaker }, outlier: { ...d.outlier } });
});

test('a full section parses', () => {
  const r = parse(`[service web]
addresses = 10.0.0.1:80
[traffic-policy web]
http_balancer = peak-ewma
ewma_decay = 5s
ewma_default_rtt = 50ms
ewma_failure_penalty = 2s
max_connections = 100
max_pending_requests = 50
max_requests = 200
max_retries = 10
retry_budget_percent = 25.5
retry_budget_min_concurrency = 5
outlier_consecutive_5xx = 7
outlier_consecutive_gateway_errors = 3
outlier_interval = 5s
outlier_base_ejection_time = 10s
outlier_max_ejection_time = 100s
outlier_ejection_jitter = 1s
outlier_max_ejected_percent = 30
outlier_success_rate = true
outlier_success_rate_min_hosts = 3
outlier_success_rate_request_volume = 20
outlier_success_rate_stdev_factor = 1.5
outlier_slow_start = 1m
outlier_slow_start_min_weight_percent = 25
outlier_probation = false
`, ['web']);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
  if (!r.ok) return;
  const p = r.policies.get('web');
  assert.equal(p?.source, 'p.ini:3');
  assert.equal(p?.balancer, 'peak-ewma');
  assert.deepEqual(p?.ewma, { decayMs: 5000, defaultRttMs: 50, failurePenaltyMs: 2000 });
  assert.deepEqual(p?.breaker, {
    maxConnections: 100, maxPendingRequests: 50, maxRequests: 200, maxRetries: 10,
    retryBudget: { budgetPercent: 25.5, minRetryConcurrency: 5 },
  });
  assert.deepEqual(p?.outlier, {
    consecutive5xx: 7, consecutiveGatewayErrors: 3, intervalMs: 5000, baseEjectionMs: 10_000, maxEjectionMs: 100_000,
    ejectionJitterMs: 1000, maxEjectedPercent: 30, successRate: { minHosts: 3, requestVolume: 20, stdevFactor: 1.5 },
    slowStartMs: 60_000, slowStartMinWeightPercent: 25, probation: false,
  });
  const ring = parse('[traffic-policy s]\nhttp_balancer = ring-hash\nring_points_per_weight = 64\nretry_budget = off\n');
  assert.ok(ring.ok && ring.policies.get('s')?.ringPointsPerWeight === 64 && ring.policies.get('s')?.breaker.retryBudget === undefined);
});

test('bad values and inconsistent keys are reported at their lines', () => {
  const r = parse(`[traffic-policy web]
http_balancer = fastest
max_requests = 0
outlier_max_ejected_percent = 101
outlier_success_rate_min_hosts = 3
outlier_base_ejection_time = 10m
outlier_max_ejection_time = 1m
retry_budget_percent = lots
nope = 1
[traffic-policy ring]
ewma_decay = 5s
ring_points_per_weight = 10
[traffic-policy ghost]
[traffic-policy bad/name]
`, ['web', 'ring']);
  assert.equal(r.ok, false);
  if (r.ok) return;
  const got = r.issues.map((i) => `${i.source} ${i.key}`).sort();
  assert.deepEqual(got, [
    'p.ini:9 [traffic-policy web] nope',
    'p.ini:2 [traffic-policy web] http_balancer',
    'p.ini:8 [traffic-policy web] retry_budget_percent',
    'p.ini:3 [traffic-policy web] max_requests',
    'p.ini:5 [traffic-policy web] outlier_success_rate_min_hosts',
    'p.ini:7 [traffic-policy web] outlier_max_ejection_time',
    'p.ini:4 [traffic-policy web] outlier_max_ejected_percent',
    'p.ini:11 [traffic-policy ring] ewma_decay',
    'p.ini:12 [traffic-policy ring] ring_points_per_weight',
    'p.ini:13 [traffic-policy ghost]',
    'p.ini:14 [traffic-policy bad/name]',
  ].sort());
  const expected = (key: string): string => r.issues.find((i) => i.key === key)?.expected ?? '';
  assert.match(expected('[traffic-policy web] outlier_success_rate_min_hosts'), /outlier_success_rate = true/);
  assert.match(expected('[traffic-policy web] outlier_max_ejection_time'), /outlier_base_ejection_time <= outlier_max_ejection_time/);
  assert.match(expected('[traffic-policy ring] ewma_decay'), /http_balancer = peak-ewma/);
  assert.match(expected('[traffic-policy ghost]'), /\[service NAME\] section/);
  assert.match(expected('[traffic-policy web] http_balancer'), /least-request, peak-ewma, round-robin, ring-hash/);
});
