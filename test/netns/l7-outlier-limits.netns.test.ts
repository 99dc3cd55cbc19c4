// Limits of the L7 resilience policies through remora on a real kernel: the maximum ejected share of outlier
// detection (only as many endpoints as `outlier_max_ejected_percent` allows are ejected, the other ejections are
// refused and counted, and the failing endpoints left in service keep getting requests); slow start (an endpoint
// back from ejection gets a reduced share that grows back to its fair share, with its /stats weight factor below 1
// right after its return); and the per-try timeout (a slow attempt is abandoned and retried on another endpoint, so
// the client sees no error; when every endpoint is slow the client gets the documented 504 upstream-timeout).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { tempDir, writeConfig } from './l4-helpers.js';
import { curlFull, httpStats, httpStatsWhere, load, startL7Tool, type HttpStats, type L7Tool } from './l7-helpers.js';
import { initOk, waitForLog } from './proxy-helpers.js';
import { startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();

/** Slow endpoints answer after this long: far beyond the per-try timeout, far below the load tool's own timeout. */
const SLOW_MS = 3_000;

/** An endpoint row of /stats `http.services.<name>.endpoints`, with the slow-start weight factor. */
interface EndpointRow {
  readonly endpoint: string;
  readonly ejected: boolean;
  readonly ejectionCount: number;
  readonly weightFactor: number;
}

function rows(s: HttpStats, service: string): EndpointRow[] {
  return (s.services[service]?.endpoints ?? []) as unknown as EndpointRow[];
}

function row(s: HttpStats, service: string, endpoint: string): EndpointRow | undefined {
  return rows(s, service).find((r) => r.endpoint === endpoint);
}

describe('L7 outlier limits, slow start and per-try timeouts through remora', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let pods: Pod[] = [];
  let proxy: RunningProxy;
  let rampApp: L7Tool;
  const tmp = tempDir('remora-l7-outlier-limits-');
  let vip: (n: number) => string = () => '';
  const url = (n: number, path = '/'): string => `http://${vip(n)}${path}`;

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    client = await mesh.addPod('client');
    pods = [await mesh.addPod('b1'), await mesh.addPod('b2'), await mesh.addPod('b3'), await mesh.addPod('b4')];
    vip = (n) => `${mesh.prefix4}.${200 + n}`;
    const [b1, b2, b3, b4] = pods as [Pod, Pod, Pod, Pod];
    // capped: three endpoints always 503, one healthy.
    await startL7Tool(b1, ['http-tag', '::', '8100', 'c1', 'fail']);
    await startL7Tool(b2, ['http-tag', '::', '8100', 'c2', 'fail']);
    await startL7Tool(b3, ['http-tag', '::', '8100', 'c3', 'fail']);
    await startL7Tool(b4, ['http-tag', '::', '8100', 'c4']);
    // ramp: r1 fails until SIGUSR1 switches it to ok.
    rampApp = await startL7Tool(b1, ['http-tag', '::', '8200', 'r1', 'fail']);
    await startL7Tool(b2, ['http-tag', '::', '8200', 'r2']);
    await startL7Tool(b3, ['http-tag', '::', '8200', 'r3']);
    // pertry: one endpoint slow, one fast. allslow: both slow.
    await startL7Tool(b3, ['http-tag', '::', '8300', 'p-slow', `slow-${SLOW_MS}`]);
    await startL7Tool(b4, ['http-tag', '::', '8300', 'p-fast']);
    await startL7Tool(b1, ['http-tag', '::', '8400', 'a1', `slow-${SLOW_MS}`]);
    await startL7Tool(b2, ['http-tag', '::', '8400', 'a2', `slow-${SLOW_MS}`]);
    const eps = (port: number, ps: readonly Pod[]): string => `endpoints = ${ps.map((p) => `${p.ip4}:${port}`).join(', ')}`;
    const config = writeConfig(tmp.dir, 'client.ini', [
      // 4 endpoints, 40 % -> floor(1.6) = 1 may be ejected at once. Long ejection: it stays ejected for the whole file.
      '[service capped]', `addresses = ${vip(0)}:80`, eps(8100, [b1, b2, b3, b4]),
      '[traffic-policy capped]', 'http_balancer = round-robin', 'outlier_consecutive_gateway_errors = 2',
      'outlier_max_ejected_percent = 40', 'outlier_base_ejection_time = 120s', 'outlier_max_ejection_time = 300s',
      // Round robin: each endpoint's share is exactly its weight's share, so the slow-start weighting shows in counts.
      '[service ramp]', `addresses = ${vip(1)}:80`, eps(8200, [b1, b2, b3]),
      '[traffic-policy ramp]', 'http_balancer = round-robin', 'outlier_consecutive_gateway_errors = 2',
      'outlier_base_ejection_time = 3s', 'outlier_max_ejection_time = 30s', 'outlier_interval = 1s',
      'outlier_slow_start = 10s', 'outlier_slow_start_min_weight_percent = 10',
      // Ejection off: the slow endpoint must stay in rotation so that its attempts keep timing out. A generous retry
      // budget so that no retry is refused.
      '[service pertry]', `addresses = ${vip(2)}:80`, eps(8300, [b3, b4]),
      '[traffic-policy pertry]', 'http_balancer = round-robin', 'outlier_consecutive_gateway_errors = 0',
      'retry_budget_min_concurrency = 20',
      '[route pertry-retry]', 'service = pertry', 'retries = 2', 'retry_on = gateway-error', 'per_try_timeout = 300ms',
      'timeout = 8s', 'retry_backoff_base = 5ms', 'retry_backoff_max = 20ms',
      '[service allslow]', `addresses = ${vip(3)}:80`, eps(8400, [b1, b2]),
      '[traffic-policy allslow]', 'http_balancer = round-robin', 'outlier_consecutive_gateway_errors = 0',
      'retry_budget_min_concurrency = 20',
      '[route allslow-retry]', 'service = allslow', 'retries = 2', 'retry_on = gateway-error', 'per_try_timeout = 300ms',
      'timeout = 8s', 'retry_backoff_base = 5ms', 'retry_backoff_max = 20ms',
    ]);
    await initOk(client);
    proxy = await startProxy(client, ['--config', config]);
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  test('maximum ejected share: of three always-failing endpoints only one is ejected, the refused ejections are counted, the other two keep getting requests', opts, async () => {
    const [b1, b2, b3, b4] = pods as [Pod, Pod, Pod, Pod];
    const tagOf: Record<string, string> = {
      [`${b1.ip4}:8100`]: 'c1', [`${b2.ip4}:8100`]: 'c2', [`${b3.ip4}:8100`]: 'c3', [`${b4.ip4}:8100`]: 'c4',
    };
    const first = await load(client, url(0), 40, 1);
    assert.deepEqual(first.errors, {}, 'no client error (the 503s are the apps\' own)');
    assert.deepEqual(first.remoraErrors, {}, 'no local reply: an endpoint is always left');
    const s1 = await httpStats(proxy);
    const svc1 = s1.services['capped'];
    assert.ok(svc1 !== undefined, JSON.stringify(s1.services));
    const ejected = rows(s1, 'capped').filter((r) => r.ejected);
    assert.equal(ejected.length, 1, `exactly one endpoint ejected: ${JSON.stringify(svc1)}`);
    assert.equal(svc1.outlier.ejected, 1, JSON.stringify(svc1.outlier));
    assert.equal(svc1.outlier.ejections['consecutive-gateway-error'], 1, JSON.stringify(svc1.outlier));
    const ejectedTag = tagOf[ejected[0]?.endpoint ?? ''];
    assert.ok(ejectedTag !== undefined && ejectedTag !== 'c4', `a failing endpoint was ejected: ${JSON.stringify(ejected)}`);
    // Both other failing endpoints reached 2 consecutive errors (each got about 10 requests) and were refused.
    assert.ok(svc1.outlier.ejectionsRefused >= 2, `refused ejections counted: ${JSON.stringify(svc1.outlier)}`);

    // The cap holds under more traffic: the ejected one gets nothing, the two failing ones left in service still
    // get requests (and keep failing), and no second ejection happens.
    const second = await load(client, url(0), 30, 1);
    assert.deepEqual(second.errors, {});
    assert.equal(second.bodies[`${ejectedTag} failing`], undefined, `no traffic to the ejected endpoint: ${JSON.stringify(second.bodies)}`);
    const stillFailing = ['c1', 'c2', 'c3'].filter((t) => t !== ejectedTag);
    for (const t of stillFailing) {
      assert.ok((second.bodies[`${t} failing`] ?? 0) >= 5, `${t} is failing but not ejected, and still gets requests: ${JSON.stringify(second.bodies)}`);
    }
    assert.ok((second.bodies['c4'] ?? 0) >= 5, JSON.stringify(second.bodies));
    assert.equal((second.statuses['503'] ?? 0) + (second.statuses['200'] ?? 0), 30, JSON.stringify(second.statuses));
    const s2 = await httpStats(proxy);
    const svc2 = s2.services['capped'];
    assert.ok(svc2 !== undefined);
    assert.equal(svc2.outlier.ejected, 1, `still exactly one ejected: ${JSON.stringify(svc2.outlier)}`);
    assert.equal(rows(s2, 'capped').filter((r) => r.ejected).length, 1, JSON.stringify(svc2.endpoints));
    assert.equal(svc2.outlier.ejections['consecutive-gateway-error'], 1, 'no second ejection');
    assert.ok(svc2.outlier.ejectionsRefused > svc1.outlier.ejectionsRefused,
      `each further failure in a row is another refused ejection: ${svc1.outlier.ejectionsRefused} -> ${svc2.outlier.ejectionsRefused}`);
  });

  test('slow start: an endpoint back from ejection gets well below its fair share at first, then its full share', opts, async () => {
    const [b1] = pods as [Pod];
    const key = `${b1.ip4}:8200`;
    // r1 fails: round robin sends it the 1st and 4th requests, and the 2nd error in a row ejects it.
    const burst = await load(client, url(1), 12, 1);
    assert.deepEqual(burst.errors, {});
    assert.equal(burst.bodies['r1 failing'], 2, `two errors in a row eject r1: ${JSON.stringify(burst.bodies)}`);
    assert.equal(burst.bodies['r1'], undefined);
    const ej = await httpStats(proxy);
    assert.ok((row(ej, 'ramp', key)?.ejectionCount ?? 0) >= 1, JSON.stringify(ej.services['ramp']));
    // It recovers while ejected (no request reaches it meanwhile, so nothing is recorded for it).
    rampApp.child.kill('SIGUSR1');
    await waitFor('r1 switched to ok', async () => (rampApp.lines().includes('mode ok') ? true : undefined), { timeoutMs: 5_000, intervalMs: 20 });

    const back = await httpStatsWhere(proxy, 'r1 back from ejection', (s) => row(s, 'ramp', key)?.ejected === false, 20_000);
    const f0 = row(back, 'ramp', key)?.weightFactor ?? Number.NaN;
    assert.ok(f0 > 0 && f0 < 1, `right after its return r1's weight factor is below 1: ${f0}`);

    // Window 1, right after the return: fair share is 1/3 (20 of 60); r1's weight is 10 % rising over 10 s.
    const w1 = await load(client, url(1), 60, 1);
    assert.deepEqual(w1.errors, {});
    assert.deepEqual(w1.statuses, { 200: 60 }, 'r1 is healthy again: every request succeeds');
    const r1First = w1.bodies['r1'] ?? 0;
    assert.ok(r1First < 15, `r1 gets well below its fair share (20 of 60) right after its return: ${JSON.stringify(w1.bodies)}`);
    const mid = await httpStats(proxy);
    const f1 = row(mid, 'ramp', key)?.weightFactor ?? Number.NaN;
    assert.ok(f1 >= f0, `the weight factor grows: ${f0} -> ${f1}`);
    assert.equal(row(mid, 'ramp', key)?.ejected, false, 'no probation re-ejection: r1 answers 200');

    // Once the ramp is over (weight factor 1), a window of the same size gives r1 its fair share again.
    await httpStatsWhere(proxy, 'r1 at full weight', (s) => row(s, 'ramp', key)?.weightFactor === 1, 30_000);
    const w2 = await load(client, url(1), 60, 1);
    assert.deepEqual(w2.statuses, { 200: 60 });
    const r1Later = w2.bodies['r1'] ?? 0;
    assert.ok(r1Later >= 15, `r1 back to (about) its fair share, 20 of 60: ${JSON.stringify(w2.bodies)}`);
    assert.ok(r1Later > r1First, `r1's share grew: ${r1First} -> ${r1Later} of 60`);
    await waitForLog(proxy, 'the return is logged', (r) => r['event'] === 'endpoint.returned' && r['endpoint'] === key);
  });

  test('per-try timeout: attempts on a slow endpoint are abandoned and retried on the fast one, so every request succeeds', opts, async () => {
    const before = (await httpStats(proxy)).outbound;
    const r = await load(client, url(2), 20, 2);
    assert.deepEqual(r.errors, {}, 'no client error');
    assert.deepEqual(r.remoraErrors, {}, 'no local reply');
    assert.deepEqual(r.statuses, { 200: 20 }, 'every request succeeds');
    assert.deepEqual(r.bodies, { 'p-fast': 20 }, 'every answer comes from the fast endpoint (the slow one never answers in time)');
    const after = (await httpStats(proxy)).outbound;
    const delta = (k: string): number => (after[k] ?? 0) - (before[k] ?? 0);
    // Round robin alternates the first attempts between the two endpoints: about half of them hit the slow one.
    assert.ok(delta('http.per_try_timeouts') >= 5, `per-try timeouts counted: ${JSON.stringify(after)}`);
    assert.equal(delta('http.retries'), delta('http.per_try_timeouts'), `each timed-out attempt was retried once: ${JSON.stringify(after)}`);
    assert.equal(delta('http.route_timeouts'), 0, 'the route timeout never fired');
    assert.equal(delta('http.local_replies.upstream-timeout'), 0);
  });

  test('per-try timeout: when every endpoint is slow the client gets 504 upstream-timeout after the last attempt', opts, async () => {
    const before = (await httpStats(proxy)).outbound;
    const r = await curlFull(client, url(3));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.status, 504, JSON.stringify(r));
    assert.equal(r.headers['x-remora-error'], 'upstream-timeout', JSON.stringify(r.headers));
    assert.match(r.body, /^upstream-timeout: /, 'the one-line local reply body');
    const after = (await httpStats(proxy)).outbound;
    const delta = (k: string): number => (after[k] ?? 0) - (before[k] ?? 0);
    assert.equal(delta('http.per_try_timeouts'), 3, `three attempts (retries = 2), each timed out: ${JSON.stringify(after)}`);
    assert.equal(delta('http.retries'), 2, JSON.stringify(after));
    assert.equal(delta('http.route_timeouts'), 0, 'the 504 comes from the last per-try timeout, not the route timeout');
    assert.equal(delta('http.local_replies.upstream-timeout'), 1, JSON.stringify(after));
  });
});
