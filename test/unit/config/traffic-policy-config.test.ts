import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIni } from '../../../src/config/ini-file.js';
import { BALANCER_KINDS, type BalancerKind } from '../../../src/config/service-spec.js';
import { DEFAULT_CIRCUIT_BREAKER_LIMITS, DEFAULT_REQUEST_BALANCER, DEFAULT_RING_POINTS_PER_WEIGHT } from '../../../src/config/traffic-policy-spec.js';
import { DEFAULT_OUTLIER_CONFIG } from '../../../src/config/traffic-policy-spec.js';
import { defaultTrafficPolicy, parseTrafficPolicies, type PolicyService } from '../../../src/config/traffic-policy-config.js';

function parse(text: string, known?: string[], services?: PolicyService[]): ReturnType<typeof parseTrafficPolicies> {
  return parseTrafficPolicies(parseIni(text, 'p.ini').doc, {
    ...(known === undefined ? {} : { knownServices: known }),
    ...(services === undefined ? {} : { services }),
  });
}

/** A service as the policies see it (default passive health unless given). */
function svc(name: string, balancer: BalancerKind, passive = { ejectBaseTimeMs: 30_000, ejectMaxTimeMs: 300_000, maxEjectedPercent: 50 }): PolicyService {
  return { name, balancer, passiveHealth: passive };
}

function issueKeys(r: ReturnType<typeof parseTrafficPolicies>): string[] {
  return r.ok ? [] : r.issues.map((i) => `${i.source} ${i.key}`);
}

test('defaults: p2c, Envoy-like breaker, budget 20 %/3, outlier defaults, 1024 ring points per weight', () => {
  const d = defaultTrafficPolicy('web');
  assert.equal(d.balancer, 'p2c');
  assert.equal(DEFAULT_REQUEST_BALANCER, 'p2c');
  assert.equal(d.balancerExplicit, false);
  assert.equal(d.ringPointsPerWeight, 1024);
  assert.equal(DEFAULT_RING_POINTS_PER_WEIGHT, 1024);
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
  assert.match(expected('[traffic-policy web] http_balancer'),
    /^one of round-robin, least-request, least-connections, random, p2c, peak-ewma, ring-hash, maglev$/);
});

test('http_balancer accepts every balancer of the one family', () => {
  for (const kind of BALANCER_KINDS) {
    const r = parse(`[traffic-policy web]\nhttp_balancer = ${kind}\n`, ['web'], [svc('web', 'round-robin')]);
    assert.ok(r.ok, `${kind}: ${JSON.stringify(issueKeys(r))}`);
    assert.equal(r.policies.get('web')?.balancer, kind);
    assert.equal(r.policies.get('web')?.balancerExplicit, true);
  }
  const none = parse('[traffic-policy web]\n', ['web'], [svc('web', 'maglev')]);
  assert.ok(none.ok);
  assert.equal(none.policies.get('web')?.balancerExplicit, false, 'without http_balancer, requests use the service balancer');
});

test('ewma_* keys belong to peak-ewma: written as http_balancer, or the service balancer when http_balancer is not', () => {
  const ewma = 'ewma_decay = 5s\newma_default_rtt = 50ms\newma_failure_penalty = 2s\n';
  // The service balances with peak-ewma, the policy does not override it: accepted.
  const inherited = parse(`[traffic-policy web]\n${ewma}`, ['web'], [svc('web', 'peak-ewma')]);
  assert.ok(inherited.ok, JSON.stringify(issueKeys(inherited)));
  assert.deepEqual(inherited.policies.get('web')?.ewma, { decayMs: 5000, defaultRttMs: 50, failurePenaltyMs: 2000 });
  // Requests on round-robin, but the service's connections still use peak-ewma: the keys still configure it.
  const connections = parse(`[traffic-policy web]\nhttp_balancer = round-robin\n${ewma}`, ['web'], [svc('web', 'peak-ewma')]);
  assert.ok(connections.ok, JSON.stringify(issueKeys(connections)));
  // Neither is peak-ewma: each key is an issue at its line, saying what it needs and what the policy uses.
  const neither = parse(`[traffic-policy web]\n${ewma}`, ['web'], [svc('web', 'least-connections')]);
  assert.deepEqual(issueKeys(neither), [
    'p.ini:2 [traffic-policy web] ewma_decay', 'p.ini:3 [traffic-policy web] ewma_default_rtt', 'p.ini:4 [traffic-policy web] ewma_failure_penalty',
  ]);
  assert.ok(!neither.ok);
  assert.match(neither.issues[0]?.expected ?? '', /^http_balancer = peak-ewma \(or \[service web\] balancer = peak-ewma\) for ewma_decay \(this policy balances requests with least-connections\)$/);
  const explicit = parse(`[traffic-policy web]\nhttp_balancer = random\newma_decay = 5s\n`, ['web'], [svc('web', 'p2c')]);
  assert.ok(!explicit.ok);
  assert.match(explicit.issues[0]?.expected ?? '', /requests with random, the service's connections with p2c\)$/);
  // An explicit http_balancer = peak-ewma accepts them whatever the service uses.
  assert.ok(parse(`[traffic-policy web]\nhttp_balancer = peak-ewma\n${ewma}`, ['web'], [svc('web', 'maglev')]).ok);
});

test('ring_points_per_weight belongs to ring-hash, written or inherited from the service', () => {
  const inherited = parse('[traffic-policy web]\nring_points_per_weight = 64\n', ['web'], [svc('web', 'ring-hash')]);
  assert.ok(inherited.ok, JSON.stringify(issueKeys(inherited)));
  assert.equal(inherited.policies.get('web')?.ringPointsPerWeight, 64);
  const maglev = parse('[traffic-policy web]\nring_points_per_weight = 64\n', ['web'], [svc('web', 'maglev')]);
  assert.deepEqual(issueKeys(maglev), ['p.ini:2 [traffic-policy web] ring_points_per_weight']);
  assert.ok(!maglev.ok);
  assert.match(maglev.issues[0]?.expected ?? '', /^http_balancer = ring-hash \(or \[service web\] balancer = ring-hash\) for ring_points_per_weight/);
  const overridden = parse('[traffic-policy web]\nhttp_balancer = p2c\nring_points_per_weight = 64\n', ['web'], [svc('web', 'ring-hash')]);
  assert.ok(overridden.ok, 'the service connections still hash on the ring');
  // Without the services, the request balancer of a policy without http_balancer is the default (p2c).
  assert.deepEqual(issueKeys(parse('[traffic-policy web]\nring_points_per_weight = 64\n')), ['p.ini:2 [traffic-policy web] ring_points_per_weight']);
});

test('an invalid http_balancer is reported alone (whether ewma_* or ring keys belong cannot be known)', () => {
  const r = parse('[traffic-policy web]\nhttp_balancer = peak_ewma\newma_decay = 5s\nring_points_per_weight = 8\n', ['web'], [svc('web', 'p2c')]);
  assert.deepEqual(issueKeys(r), ['p.ini:2 [traffic-policy web] http_balancer']);
});

test('passive health: the outlier ejection times and cap default to the service eject_* keys', () => {
  const passive = { ejectBaseTimeMs: 10_000, ejectMaxTimeMs: 120_000, maxEjectedPercent: 30 };
  const d = defaultTrafficPolicy('web', passive);
  assert.deepEqual(
    { base: d.outlier.baseEjectionMs, max: d.outlier.maxEjectionMs, pct: d.outlier.maxEjectedPercent },
    { base: 10_000, max: 120_000, pct: 30 },
  );
  assert.deepEqual({ ...d.outlier, baseEjectionMs: 0, maxEjectionMs: 0, maxEjectedPercent: 0 },
    { ...DEFAULT_OUTLIER_CONFIG, baseEjectionMs: 0, maxEjectionMs: 0, maxEjectedPercent: 0 }, 'the rest are the defaults');
  assert.equal(DEFAULT_OUTLIER_CONFIG.baseEjectionMs, 30_000, 'the shared default is untouched');

  const empty = parse('[traffic-policy web]\n', ['web'], [svc('web', 'p2c', passive)]);
  assert.ok(empty.ok);
  assert.deepEqual({ ...empty.policies.get('web'), source: undefined }, { ...d, source: undefined });

  const partly = parse('[traffic-policy web]\noutlier_max_ejected_percent = 20\noutlier_base_ejection_time = 5s\n', ['web'], [svc('web', 'p2c', passive)]);
  assert.ok(partly.ok);
  const o = partly.policies.get('web')?.outlier;
  assert.deepEqual({ base: o?.baseEjectionMs, max: o?.maxEjectionMs, pct: o?.maxEjectedPercent }, { base: 5_000, max: 120_000, pct: 20 });

  // A policy base above the inherited max raises the max with it (as it does above the built-in default).
  const above = parse('[traffic-policy web]\noutlier_base_ejection_time = 10m\n', ['web'], [svc('web', 'p2c', passive)]);
  assert.ok(above.ok);
  assert.equal(above.policies.get('web')?.outlier.maxEjectionMs, 600_000);

  // A written max below the inherited base is an issue that says where the base came from.
  const below = parse('[traffic-policy web]\noutlier_max_ejection_time = 5s\n', ['web'], [svc('web', 'p2c', passive)]);
  assert.deepEqual(issueKeys(below), ['p.ini:2 [traffic-policy web] outlier_max_ejection_time']);
  assert.ok(!below.ok);
  assert.match(below.issues[0]?.expected ?? '', /^outlier_base_ejection_time <= outlier_max_ejection_time \(outlier_base_ejection_time is 10s from \[service web\] eject_base_time\)$/);

  // Without the services: the built-in defaults, as before.
  const alone = parse('[traffic-policy web]\n');
  assert.ok(alone.ok);
  assert.equal(alone.policies.get('web')?.outlier.baseEjectionMs, DEFAULT_OUTLIER_CONFIG.baseEjectionMs);
});
