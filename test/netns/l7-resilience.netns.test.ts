// Resilience of HTTP through remora on a real kernel: retries hide endpoints that fail every other request (503, or a
// reset connection) so that the client sees no error; status retries apply to idempotent methods only; outlier
// detection stops traffic to a failing pod, brings it back once it recovers, and ejects it again for longer at its
// first failure on probation; circuit breaker limits (requests in flight; connections and pending requests per
// service) answer 503 circuit-open at once; a retry the retry budget refuses after a connect failure ends with
// 503 retry-budget-exhausted; a client pipelining far past the 32 requests remora takes at once is not read further
// (its bytes wait in the kernels' buffers, not in the proxy).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { tempDir, writeConfig } from './l4-helpers.js';
import { curlFull, httpStats, httpStatsWhere, load, startL7Tool, type L7Tool } from './l7-helpers.js';
import { initOk, waitForLog } from './proxy-helpers.js';
import { startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();

describe('L7 resilience through remora', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let pods: Pod[] = [];
  let proxy: RunningProxy;
  let outlierApp: L7Tool;
  let holdApp: L7Tool;
  const tmp = tempDir('remora-l7-resilience-');
  let vip: (n: number) => string = () => '';
  const url = (n: number, path = '/'): string => `http://${vip(n)}${path}`;

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    client = await mesh.addPod('client');
    pods = [await mesh.addPod('f1'), await mesh.addPod('f2'), await mesh.addPod('f3')];
    vip = (n) => `${mesh.prefix4}.${200 + n}`;
    const [f1, f2, f3] = pods as [Pod, Pod, Pod];
    await startL7Tool(f1, ['http-tag', '::', '8080', 'f1', 'flaky-503']);
    await startL7Tool(f2, ['http-tag', '::', '8080', 'f2']);
    await startL7Tool(f3, ['http-tag', '::', '8080', 'f3', 'flaky-reset']);
    outlierApp = await startL7Tool(f1, ['http-tag', '::', '8090', 'f1', 'fail']);
    await startL7Tool(f2, ['http-tag', '::', '8090', 'f2']);
    await startL7Tool(f3, ['http-tag', '::', '8090', 'f3']);
    await startL7Tool(f1, ['http-tag', '::', '8070', 'always', 'fail']);
    await startL7Tool(f2, ['http-tag', '::', '8071', 'slow']);
    holdApp = await startL7Tool(f3, ['http-tag', '::', '8060', 'hold']);
    const eps = (port: number): string => `endpoints = ${pods.map((p) => `${p.ip4}:${port}`).join(', ')}`;
    const config = writeConfig(tmp.dir, 'client.ini', [
      '[service flaky]', `addresses = ${vip(0)}:80`, eps(8080),
      // Ejection off here: this service is about retries alone; a generous budget so that concurrent retries are never refused.
      '[traffic-policy flaky]', 'outlier_consecutive_gateway_errors = 0', 'retry_budget_min_concurrency = 50',
      '[route flaky-retry]', 'service = flaky', 'retries = 2', 'retry_on = 5xx', 'retry_backoff_base = 5ms', 'retry_backoff_max = 20ms',
      '[service outlier]', `addresses = ${vip(1)}:80`, eps(8090),
      // Base ejection 6 s: long enough that the checks right after the burst always see it ejected.
      '[traffic-policy outlier]', 'outlier_consecutive_gateway_errors = 3', 'outlier_base_ejection_time = 6s',
      'outlier_max_ejection_time = 30s', 'outlier_interval = 1s', 'outlier_slow_start = 0',
      '[service always]', `addresses = ${vip(2)}:80`, `endpoints = ${f1.ip4}:8070`,
      '[route always-retry]', 'service = always', 'retries = 2', 'retry_on = 5xx', 'retry_backoff_base = 5ms', 'retry_backoff_max = 10ms',
      '[service narrow]', `addresses = ${vip(3)}:80`, `endpoints = ${f2.ip4}:8071`,
      '[traffic-policy narrow]', 'max_requests = 2',
      '[service pooled]', `addresses = ${vip(4)}:80`, `endpoints = ${f2.ip4}:8071`,
      '[traffic-policy pooled]', 'max_connections = 2', 'max_pending_requests = 1',
      // Nothing listens on f3:8099 (connection refused); the budget (0 %, at least 0) refuses every retry.
      '[service budget]', `addresses = ${vip(5)}:80`, `endpoints = ${f3.ip4}:8099`, 'eject_after_failures = 0',
      '[traffic-policy budget]', 'retry_budget_percent = 0', 'retry_budget_min_concurrency = 0',
      '[service hold]', `addresses = ${vip(6)}:80`, `endpoints = ${f3.ip4}:8060`,
      '[route budget-retry]', 'service = budget', 'retries = 2', 'retry_on = connect-failure', 'retry_backoff_base = 5ms',
    ]);
    await initOk(client);
    proxy = await startProxy(client, ['--config', config]);
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  test('retries hide an endpoint failing every other request with 503 and one resetting every other connection', opts, async () => {
    const r = await load(client, url(0), 300, 3);
    assert.deepEqual(r.errors, {}, 'no client-visible error');
    assert.deepEqual(r.statuses, { 200: 300 });
    assert.deepEqual(r.remoraErrors, {});
    assert.deepEqual(Object.keys(r.bodies).sort(), ['f1', 'f2', 'f3'], 'every endpoint served some requests');
    const h = await httpStats(proxy);
    assert.ok((h.outbound['http.retries'] ?? 0) + (h.outbound['http.retries.stale_connection'] ?? 0) >= 10,
      `failures were retried: ${JSON.stringify(h.outbound)}`);
    assert.ok((h.outbound['http.responses.5xx'] ?? 0) === 0, 'no 5xx reached the client');
  });

  test('a 503 is retried for GET but not for POST (the request may have been processed)', opts, async () => {
    const before = (await httpStats(proxy)).outbound['http.retries'] ?? 0;
    const get = await curlFull(client, url(2));
    assert.equal(get.status, 503);
    assert.equal(get.body, 'always failing\n', 'the app\'s own 503 after the last attempt');
    const mid = (await httpStats(proxy)).outbound['http.retries'] ?? 0;
    assert.equal(mid - before, 2, 'GET: two retries');
    const post = await curlFull(client, url(2), ['-X', 'POST', '--data', 'order=1']);
    assert.equal(post.status, 503);
    assert.equal((await httpStats(proxy)).outbound['http.retries'] ?? 0, mid, 'POST: no retry');
  });

  test('outlier detection: a failing pod is ejected and gets no traffic, is ejected again for longer at its first failure on probation, and comes back once it recovers', opts, async () => {
    const [f1] = pods as [Pod];
    const key = `${f1.ip4}:8090`;
    const burst = await load(client, url(1), 40, 1);
    assert.deepEqual(burst.errors, {});
    const failing = burst.bodies['f1 failing'] ?? 0;
    assert.ok(failing >= 3 && failing <= 4, `three consecutive gateway errors eject f1 (probation may add one): ${JSON.stringify(burst.bodies)}`);
    assert.equal(burst.bodies['f1'], undefined);
    const ejected = await httpStats(proxy);
    const row = ejected.services['outlier']?.endpoints.find((e) => e.endpoint === key);
    assert.equal(row?.ejected, true, JSON.stringify(ejected.services['outlier']));
    assert.ok((row?.ejectionCount ?? 0) >= 1, JSON.stringify(ejected.services['outlier']));
    assert.ok((ejected.services['outlier']?.outlier.ejections['consecutive-gateway-error'] ?? 0) >= 1);
    await waitForLog(proxy, 'the ejection is logged', (r) => r['event'] === 'endpoint.ejected' && r['endpoint'] === key);

    // While it is ejected, nothing goes to f1.
    const during = await load(client, url(1), 20, 1);
    assert.equal(during.bodies['f1 failing'], undefined, `no traffic to the ejected pod: ${JSON.stringify(during.bodies)}`);

    // Still failing when its ejection ends: on probation, its first failure ejects it again at once, for twice as long.
    await waitFor('f1 ejected again on probation', async () => {
      await load(client, url(1), 5, 1);
      const s = await httpStats(proxy);
      const e = s.services['outlier']?.endpoints.find((x) => x.endpoint === key);
      return (s.services['outlier']?.outlier.ejections['probation-failure'] ?? 0) >= 1 && (e?.ejectionCount ?? 0) >= 2 ? true : undefined;
    }, { timeoutMs: 40_000, intervalMs: 200 });

    // The pod recovers: after the (longer) ejection it is picked again and answers.
    outlierApp.child.kill('SIGUSR1');
    await waitFor('f1 to serve again', async () => {
      const r = await load(client, url(1), 10, 1);
      return (r.bodies['f1'] ?? 0) > 0 ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    const back = await httpStatsWhere(proxy, 'f1 back in service',
      (x) => x.services['outlier']?.endpoints.find((e) => e.endpoint === key)?.ejected === false);
    assert.equal(back.services['outlier']?.outlier.ejected, 0);
    await waitForLog(proxy, 'the return is logged', (r) => r['event'] === 'endpoint.returned' && r['endpoint'] === key);
  });

  test('a retry the retry budget refuses after a connect failure ends with 503 retry-budget-exhausted', opts, async () => {
    const r = await curlFull(client, url(5));
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-remora-error'], 'retry-budget-exhausted');
    const h = await httpStats(proxy);
    assert.equal(h.outbound['http.retries.budget_exhausted'], 1);
    assert.equal(h.outbound['http.local_replies.retry-budget-exhausted'], 1);
    assert.equal(h.services['budget']?.breaker?.retryBudgetOverflow, 1);
  });

  test('circuit breaker: beyond max_requests in flight, requests get 503 circuit-open at once', opts, async () => {
    const r = await load(client, url(3, '/delay/500'), 12, 6);
    assert.deepEqual(r.errors, {});
    assert.ok((r.statuses['200'] ?? 0) >= 2, JSON.stringify(r));
    assert.ok((r.remoraErrors['circuit-open'] ?? 0) >= 1, `some requests found the breaker open: ${JSON.stringify(r)}`);
    assert.equal((r.statuses['200'] ?? 0) + (r.statuses['503'] ?? 0), 12);
    const h = await httpStats(proxy);
    assert.ok((h.outbound['http.local_replies.circuit-open'] ?? 0) >= 1);
  });

  test('circuit breaker: max_connections = 2 and max_pending_requests = 1 -> at most 3 requests admitted at once, the others 503 circuit-open', opts, async () => {
    const r = await load(client, url(4, '/delay/800'), 6, 6);
    assert.deepEqual(r.errors, {});
    assert.equal((r.statuses['200'] ?? 0) + (r.statuses['503'] ?? 0), 6, JSON.stringify(r));
    assert.ok((r.statuses['200'] ?? 0) >= 2, JSON.stringify(r));
    assert.ok((r.remoraErrors['circuit-open'] ?? 0) >= 1, `some requests found the breaker open: ${JSON.stringify(r)}`);
    assert.equal(r.remoraErrors['circuit-open'] ?? 0, r.statuses['503'] ?? 0, 'every 503 is circuit-open');
    const h = await httpStats(proxy);
    const b = h.services['pooled']?.breaker;
    assert.ok(b !== undefined, 'breaker stats of the service');
    assert.ok(b.overflow.pending >= 1, JSON.stringify(b));
    assert.ok(b.active.connection <= 2, `never more than 2 upstream connections: ${JSON.stringify(b)}`);
    assert.equal(b.active.pending, 0);
  });

  test('a client pipelining far past the 32 requests remora takes at once is not read further: its bytes wait in the kernel', opts, async () => {
    // One write: 40 requests the server holds, then 16 MiB more of requests. remora proxies 32, stops reading the
    // connection until answers go out, and the rest stays in the kernels' buffers and the client's (none is answered).
    const hold = 'GET /hold HTTP/1.1\r\nHost: h\r\n\r\n';
    const more = 'GET /more HTTP/1.1\r\nHost: h\r\n\r\n';
    const file = join(tmp.dir, 'flood.txt');
    writeFileSync(file, hold.repeat(40) + more.repeat(Math.ceil((16 * 1024 * 1024) / more.length)));
    const flood = await startL7Tool(client, ['flood', vip(6), '80', file, '8000'], 'writing');
    try {
      await waitFor('unread bytes queued at remora\'s side of the connection (Recv-Q of the capture port\'s socket)', async () => {
        const out = await client.execOk(['ss', '-tnH', 'state', 'established', '( sport = :15001 )']);
        return out.split('\n').some((l) => Number(l.trim().split(/\s+/)[0]) >= 64 * 1024) ? true : undefined;
      }, { timeoutMs: 15_000, intervalMs: 100 });
      const r = await flood.json<{ drained: boolean; unsent: number }>(20_000);
      assert.equal(r.drained, false, 'remora did not take the whole flood');
      assert.ok(r.unsent > 4 * 1024 * 1024, `most of the 16 MiB never left the client: ${r.unsent} bytes unsent`);
    } finally {
      flood.child.kill();
      holdApp.child.kill('SIGUSR2'); // answer the held requests
    }
  });
});
