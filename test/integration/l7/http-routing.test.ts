// Routed requests: the request chain executes the decisions of stand-in policies (a stand-in route filter and
// clusters from the harness, plus the real retry-policy.ts): endpoint choice, retries with body replay and backoff,
// per-try and route timeouts, circuit breaker, header mutations, local replies from the router, outcome reports,
// and the cluster's connect timeout.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import type { ForwardDecision, RequestHead, RouteDecision } from '../../../src/l7/request-types.js';
import type { AttemptOutcome } from '../../../src/upstream/health/attempt-outcome.js';
import type { ClusterView, PickedEndpoint } from '../../../src/upstream/cluster.js';
import type { RetryPolicy } from '../../../src/config/route-spec.js';
import { localReply } from '../../../src/l7/local-reply.js';
import { createRetryDecider, type RetryDecider } from '../../../src/l7/router/retry-policy.js';
import {
  blackholeListener, fakeCluster, listen, PASSTHROUGH_DECISION, rawExchange, run, sleep, startProxy, waitFor,
  type FakeClusterOptions, type ProxyUnderTest,
} from './harness.js';

/** The real retry policy (src/l7/router/retry-policy.ts), typed as the router's RetryDecider. */
const realRetry: RetryDecider = createRetryDecider(() => 0.5);

/** The body of a local reply as the one table renders it ("<reason>: <text>\n"). */
const bodyOf = (reason: Parameters<typeof localReply>[0]): string => localReply(reason).body;

const RETRY: RetryPolicy = {
  maxAttempts: 3,
  on: ['connect-failure', 'reset', 'gateway-error'],
  statuses: [],
  grpcStatuses: [],
  perTryTimeoutMs: 0,
  backoffBaseMs: 20,
  backoffMaxMs: 100,
  preferOtherHosts: true,
};

function decision(over: Partial<ForwardDecision> = {}): RouteDecision {
  return { ...PASSTHROUGH_DECISION, route: 'r1', backend: { service: 'svc', weight: 1 }, retry: RETRY, ...over };
}

interface Endpoint {
  readonly address: string;
  readonly port: number;
}

interface Backend {
  server: http.Server;
  port: number;
  hits: { method: string; url: string; body: string; headers: string[] }[];
}

async function backend(handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void): Promise<Backend> {
  const b: Backend = { server: http.createServer(), port: 0, hits: [] };
  b.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      b.hits.push({ method: req.method ?? '', url: req.url ?? '', body, headers: req.rawHeaders });
      handler(req, res, body);
    });
  });
  b.port = await listen(b.server);
  return b;
}

describe('routed requests with stand-in policies', () => {
  let failing: Backend; // 503
  let hanging: Backend; // never answers
  let good: Backend; // 200
  let slowBody: Backend; // head at once, body never ends
  let deadPort = 0;
  const servers: Backend[] = [];

  before(async () => {
    failing = await backend((_q, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('busy\n');
    });
    hanging = await backend(() => {});
    good = await backend((req, res, body) => {
      res.writeHead(200, { 'x-upstream': 'good', 'x-secret': 'internal' });
      res.end(`ok ${req.method} ${req.url} ${body}\n`);
    });
    slowBody = await backend((_q, res) => {
      res.writeHead(200);
      res.write('started');
    });
    servers.push(failing, hanging, good, slowBody);
    const dead = net.createServer();
    deadPort = await listen(dead);
    dead.close();
  });

  after(() => {
    for (const b of servers) {
      b.server.closeAllConnections();
      b.server.close();
    }
  });

  /**
   * A cluster picking endpoints in order, skipping the ones tried (`tried` is only filled when the route's retry
   * policy has preferOtherHosts), recording picks and reports. One object per proxy: pools are keyed by cluster id.
   */
  function cluster(
    endpoints: Endpoint[],
    reports: [string, AttemptOutcome][] = [],
    picks: string[][] = [],
    over: Partial<FakeClusterOptions> = {},
  ): ClusterView {
    return fakeCluster({
      name: 'svc',
      pick(ctx) {
        picks.push([...ctx.tried]);
        return endpoints.find((e) => !ctx.tried.has(`${e.address}:${e.port}`)) ?? endpoints[0];
      },
      report(e, outcome) {
        reports.push([`${e.port}`, outcome]);
      },
      ...over,
    });
  }

  async function withProxy<T>(deps: Parameters<typeof startProxy>[1], fn: (p: ProxyUnderTest) => Promise<T>): Promise<T> {
    const p = await startProxy({ address: '127.0.0.1', port: 1 }, deps);
    try {
      return await fn(p);
    } finally {
      await p.close();
    }
  }

  const ep = (port: number): Endpoint => ({ address: '127.0.0.1', port });

  test('gateway errors and connect failures are retried on other endpoints; the POST body is replayed', async () => {
    const reports: [string, AttemptOutcome][] = [];
    const picks: string[][] = [];
    const c = cluster([ep(failing.port), ep(deadPort), ep(good.port)], reports, picks);
    await withProxy(
      { route: () => decision(), cluster: () => c, retry: realRetry },
      async (p) => {
        // POST is not idempotent: the 503 (a response) is not retried by the real policy...
        const post = await run('curl', ['-sS', '-i', '--data-binary', 'the-body', `http://127.0.0.1:${p.port}/post`]);
        assert.match(post.stdout, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
        assert.match(post.stdout, /\r\n\r\nbusy\n$/, "the upstream's own 503 is passed on");
        assert.equal(p.stats.get('http.retries'), 0);
        // ...a PUT is: 503 -> connect failure -> 200, with the body sent again each time.
        good.hits.length = 0;
        const put = await run('curl', ['-sS', '-X', 'PUT', '--data-binary', 'the-body', `http://127.0.0.1:${p.port}/put`]);
        assert.equal(put.stdout, 'ok PUT /put the-body\n');
        assert.equal(good.hits[0]?.body, 'the-body');
        assert.deepEqual(picks.slice(-3), [[], [`127.0.0.1:${failing.port}`], [`127.0.0.1:${failing.port}`, `127.0.0.1:${deadPort}`]]);
        assert.deepEqual(reports.slice(-3).map(([port, o]) => `${port}:${o.kind}${o.kind === 'response' ? o.status : ''}`), [
          `${failing.port}:response503`,
          `${deadPort}:connect-failure`,
          `${good.port}:response200`,
        ]);
        assert.equal(p.stats.get('http.retries'), 2);
      },
    );
  });

  test('per-try timeout: a hanging endpoint is abandoned and the next one answers', async () => {
    const retry: RetryPolicy = { ...RETRY, perTryTimeoutMs: 150, on: ['gateway-error'] };
    const reports: [string, AttemptOutcome][] = [];
    const c = cluster([ep(hanging.port), ep(good.port)], reports);
    await withProxy({ route: () => decision({ retry }), cluster: () => c, retry: realRetry }, async (p) => {
      const r = await run('curl', ['-sS', `http://127.0.0.1:${p.port}/slow`]);
      assert.equal(r.stdout, 'ok GET /slow \n');
      assert.equal(p.stats.get('http.per_try_timeouts'), 1);
      assert.deepEqual(reports.map(([port, o]) => `${port}:${o.kind}`), [`${hanging.port}:timeout`, `${good.port}:response`]);
    });
  });

  test('per-try timeout without retries: 504 upstream-timeout', async () => {
    const retry: RetryPolicy = { ...RETRY, perTryTimeoutMs: 100, maxAttempts: 1 };
    const c = cluster([ep(hanging.port)]);
    await withProxy({ route: () => decision({ retry }), cluster: () => c, retry: realRetry }, async (p) => {
      const r = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/x`]);
      assert.match(r.stdout, /^HTTP\/1\.1 504 Gateway Timeout\r\n/);
      assert.match(r.stdout, /\r\nx-remora-error: upstream-timeout\r\n/);
      assert.ok(r.stdout.endsWith(`\r\n\r\n${bodyOf('upstream-timeout')}`));
      assert.equal(p.stats.get('http.per_try_timeouts'), 1);
    });
  });

  test('route timeout before the response: 504; after the response started: the connection is reset', async () => {
    const toHanging = cluster([ep(hanging.port)]);
    await withProxy({ route: () => decision({ timeoutMs: 150 }), cluster: () => toHanging }, async (p) => {
      const r = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/t`]);
      assert.match(r.stdout, /^HTTP\/1\.1 504 Gateway Timeout\r\n/);
      assert.match(r.stdout, /\r\nx-remora-error: upstream-timeout\r\n/);
      assert.equal(p.stats.get('http.route_timeouts'), 1);
    });
    const toSlowBody = cluster([ep(slowBody.port)]);
    await withProxy({ route: () => decision({ timeoutMs: 150 }), cluster: () => toSlowBody }, async (p) => {
      const r = await rawExchange(p.port, 'GET /t2 HTTP/1.1\r\nHost: h\r\n\r\n', 3_000);
      assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*started/);
      assert.doesNotMatch(r.text, /\r\n0\r\n\r\n$/, 'the chunked body was not terminated: the client can tell');
      assert.equal(r.closed, true);
      assert.equal(p.stats.get('http.route_timeouts'), 1);
    });
  });

  test('circuit breaker open: 503 circuit-open; the slot is released after each request', async () => {
    let open = false;
    let held = 0;
    const c = cluster([ep(good.port)], [], [], {
      admit(kind) {
        if (open) return undefined;
        // The pools also ask for 'connection' (held by the keep-alive connection) and 'pending' slots.
        if (kind !== 'request') return () => {};
        held++;
        return () => {
          held--;
        };
      },
    });
    await withProxy({ route: () => decision(), cluster: () => c }, async (p) => {
      const ok = await run('curl', ['-sS', `http://127.0.0.1:${p.port}/a`]);
      assert.equal(ok.stdout, 'ok GET /a \n');
      assert.equal(held, 0);
      open = true;
      const r = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/b`]);
      assert.match(r.stdout, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      assert.match(r.stdout, /\r\nx-remora-error: circuit-open\r\n/);
      assert.ok(r.stdout.endsWith(`\r\n\r\n${bodyOf('circuit-open')}`));
      assert.equal(held, 0);
    });
  });

  test('no endpoint: 503 no-healthy-upstream; unknown service: 404 no-route; a route reply is rendered from its reason', async () => {
    const lookups: string[] = [];
    const empty = fakeCluster({ name: 'svc', pick: () => undefined });
    await withProxy(
      {
        route: (h: RequestHead) =>
          h.path === '/denied'
            // Status and body here are ignored by design: a local reply is rendered from the one table by its reason.
            ? { kind: 'reply', reply: { ...localReply('no-route'), status: 403, body: 'denied by route\n' } }
            : decision({ backend: { service: h.path === '/unknown' ? 'nope' : 'svc', weight: 1 } }),
        cluster: (b, h) => {
          lookups.push(h.path);
          return b.service === 'nope' ? undefined : empty;
        },
      },
      async (p) => {
        const a = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/x`]);
        assert.match(a.stdout, /^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*x-remora-error: no-healthy-upstream\r\n/);
        assert.ok(a.stdout.endsWith(`\r\n\r\n${bodyOf('no-healthy-upstream')}`));
        const b = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/unknown`]);
        assert.match(b.stdout, /^HTTP\/1\.1 404 Not Found\r\n[\s\S]*x-remora-error: no-route\r\n/);
        assert.ok(b.stdout.endsWith(`\r\n\r\n${bodyOf('no-route')}`));
        const c = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/denied`]);
        assert.match(c.stdout, /^HTTP\/1\.1 404 Not Found\r\n[\s\S]*x-remora-error: no-route\r\n/);
        assert.ok(c.stdout.endsWith(`\r\n\r\n${bodyOf('no-route')}`), 'the body is the table\'s, "no-route: no route matches this request"');
        assert.deepEqual(lookups, ['/x', '/unknown'], 'a route reply ends the request before any cluster lookup');
        assert.equal(p.stats.get('http.local_replies.no-healthy-upstream'), 1);
        assert.equal(p.stats.get('http.local_replies.no-route'), 2);
      },
    );
  });

  test('a policy that throws fails that request only', async () => {
    const fine = cluster([ep(good.port)], [], [], { protocol: 'http1' }); // an HTTP/1.1 backend, for h2 clients too
    await withProxy(
      {
        route: (h) => {
          if (h.path === '/route-throws') throw new Error('router bug');
          return decision();
        },
        cluster: (_b, h) => {
          if (h.path === '/cluster-throws') throw new Error('registry bug');
          return fine;
        },
      },
      async (p) => {
        const r = await rawExchange(
          p.port,
          'GET /route-throws HTTP/1.1\r\nHost: h\r\n\r\nGET /cluster-throws HTTP/1.1\r\nHost: h\r\n\r\nGET /fine HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n',
        );
        // The route and the cluster lookup are both stages of the request chain now: a throw in either is an internal
        // error of that request (502 upstream-reset, counted), as docs/l7-engines.md says of any policy.
        const statuses = [...r.text.matchAll(/HTTP\/1\.1 (\d{3}) [^\r]*\r\n(?:[^\r]+\r\n)*?x-remora-error: ([a-z-]+)\r\n/g)]
          .map((m) => `${m[1]} ${m[2]}`);
        assert.deepEqual(statuses, ['502 upstream-reset', '502 upstream-reset']);
        assert.match(r.text, /HTTP\/1\.1 200 OK\r\n[\s\S]*ok GET \/fine \n\r\n0\r\n\r\n$/, 'the last request is answered in full');
        assert.equal(r.closed, true, 'closed after the Connection: close request, not before');
        assert.equal(r.text.match(/HTTP\/1\.1 /g)?.length, 3, 'three answers on the one connection');
        assert.equal(p.stats.get('errors.REMORA_ERR_INTERNAL'), 2);
        // The same over HTTP/2: those streams fail, the session and its other streams go on.
        const client = http2.connect(`http://127.0.0.1:${p.port}`);
        client.on('error', () => {});
        try {
          const h2get = (path: string): Promise<{ status: unknown; error: unknown; body: string }> =>
            new Promise((resolve, reject) => {
              const req = client.request({ ':path': path });
              let head: http2.IncomingHttpHeaders = {};
              let body = '';
              req.setEncoding('latin1');
              req.on('response', (h) => {
                head = h;
              });
              req.on('data', (d: string) => {
                body += d;
              });
              req.on('end', () => resolve({ status: head[':status'], error: head['x-remora-error'], body }));
              req.on('error', reject);
            });
          const [a, b, c] = await Promise.all([h2get('/route-throws'), h2get('/cluster-throws'), h2get('/fine')]);
          assert.deepEqual(a, { status: 502, error: 'upstream-reset', body: bodyOf('upstream-reset') });
          assert.deepEqual(b, { status: 502, error: 'upstream-reset', body: bodyOf('upstream-reset') });
          assert.deepEqual(c, { status: 200, error: undefined, body: 'ok GET /fine \n' });
          assert.equal(p.stats.get('errors.REMORA_ERR_INTERNAL'), 4);
        } finally {
          client.close();
        }
      },
    );
  });

  test('request and response header mutations', async () => {
    good.hits.length = 0;
    const c = cluster([ep(good.port)]);
    await withProxy(
      {
        route: () =>
          decision({
            requestHeaders: { add: [['X-Added', 'yes']], remove: ['x-remove-me'] },
            responseHeaders: { add: [['x-resp-added', '1']], remove: ['x-secret'] },
          }),
        cluster: () => c,
      },
      async (p) => {
        const r = await run('curl', ['-sS', '-i', '-H', 'X-Remove-Me: 1', `http://127.0.0.1:${p.port}/m`]);
        assert.match(r.stdout, /\r\nx-upstream: good\r\n/);
        assert.match(r.stdout, /\r\nx-resp-added: 1\r\n/);
        assert.doesNotMatch(r.stdout, /x-secret/);
        const h = good.hits[0]?.headers ?? [];
        assert.equal(h[h.indexOf('X-Added') + 1], 'yes');
        assert.ok(!h.some((x) => x.toLowerCase() === 'x-remove-me'));
      },
    );
  });

  test('the route sees the request head (method, path, query, authority, headers, addresses)', async () => {
    let seen: RequestHead | undefined;
    const c = cluster([ep(good.port)]);
    await withProxy(
      {
        route: (h) => {
          seen = h;
          return decision();
        },
        cluster: () => c,
      },
      async (p) => {
        await run('curl', ['-sS', '-H', 'X-Route-Me: v', `http://127.0.0.1:${p.port}/a/b?c=1&d=2`]);
        assert.equal(seen?.method, 'GET');
        assert.equal(seen?.path, '/a/b');
        assert.equal(seen?.query, 'c=1&d=2');
        assert.equal(seen?.authority, `127.0.0.1:${p.port}`);
        assert.equal(seen?.protocol, 'http/1.1');
        assert.equal(seen?.sourceAddress, '127.0.0.1');
        assert.deepEqual(seen?.headers.find(([n]) => n === 'X-Route-Me'), ['X-Route-Me', 'v']);
        assert.deepEqual(seen?.originalDst, { address: '127.0.0.1', port: 1 });
      },
    );
  });

  test('a backoff delays the retry; a decider may end with retry-budget-exhausted', async () => {
    const budget: RetryDecider = {
      decide: (_p, outcome) => (outcome.kind === 'connect-failure' ? { retry: false, reply: 'retry-budget-exhausted' } : { retry: false }),
    };
    const toDead = cluster([ep(deadPort)]);
    await withProxy({ route: () => decision(), cluster: () => toDead, retry: budget }, async (p) => {
      const r = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/x`]);
      assert.match(r.stdout, /^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*x-remora-error: retry-budget-exhausted\r\n/);
      assert.ok(r.stdout.endsWith(`\r\n\r\n${bodyOf('retry-budget-exhausted')}`));
      assert.equal(p.stats.get('http.retries'), 0);
    });
    const BACKOFF_MS = 200;
    const slowRetry: RetryDecider = { decide: (_p, o) => (o.kind === 'connect-failure' ? { retry: true, backoffMs: BACKOFF_MS } : { retry: false }) };
    const events: [string, number][] = [];
    const order = [ep(deadPort), ep(good.port)];
    const timed = fakeCluster({
      name: 'svc',
      pick(ctx) {
        events.push(['pick', performance.now()]);
        return order.find((e) => !ctx.tried.has(`${e.address}:${e.port}`));
      },
      report(_e, o) {
        events.push([o.kind, performance.now()]);
      },
    });
    await withProxy({ route: () => decision(), cluster: () => timed, retry: slowRetry }, async (p) => {
      const r = await run('curl', ['-sS', `http://127.0.0.1:${p.port}/b`]);
      assert.equal(r.stdout, 'ok GET /b \n');
      assert.deepEqual(events.map(([e]) => e), ['pick', 'connect-failure', 'pick', 'response']);
      assert.equal(p.stats.get('http.retries'), 1);
    });
  });

  test('a client that resets during the backoff leaves nothing behind', async () => {
    const BACKOFF_MS = 300;
    const slowRetry: RetryDecider = { decide: () => ({ retry: true, backoffMs: BACKOFF_MS }) };
    const reports: [string, AttemptOutcome][] = [];
    const picks: string[][] = [];
    let abandoned = 0;
    const c = cluster([ep(deadPort)], reports, picks, {
      abandon() {
        abandoned++;
      },
    });
    await withProxy({ route: () => decision(), cluster: () => c, retry: slowRetry }, async (p) => {
      const s = net.connect(p.port, '127.0.0.1');
      s.on('error', () => {});
      s.write('GET /gone HTTP/1.1\r\nHost: h\r\n\r\n');
      // The first attempt failed (connection refused): the retry is now waiting out its backoff.
      await waitFor(() => reports.length === 1 && p.stats.get('http.retries') === 1, 'the first attempt to fail and a retry to be scheduled');
      const backoffFrom = performance.now();
      s.resetAndDestroy(); // a FIN alone would be a half-close: the answer would still be owed
      await waitFor(
        () => p.stats.get('http.downstream_aborts') === 1 && p.engine.activeConnections === 0,
        'the proxy to see the abort and drop the connection',
      );
      // Let the backoff run out: this wait is the behaviour under test (the cancelled backoff never starts an attempt).
      await sleep(Math.max(0, backoffFrom + BACKOFF_MS + 100 - performance.now()));
      assert.equal(picks.length, 1, 'no attempt after the client left');
      assert.deepEqual(reports.map(([port, o]) => `${port}:${o.kind}`), [`${deadPort}:connect-failure`]);
      assert.equal(abandoned, 0, 'the one pick was settled by its report');
      assert.equal(p.stats.get('http.downstream_aborts'), 1);
      assert.equal(p.engine.activeConnections, 0);
      const pools = p.engine.poolSnapshot();
      assert.equal(pools.http1Pools + pools.http1Connections, 0, 'no upstream pool or connection left behind');
    });
  });
});

describe('connect timeout', () => {
  test("a connect that does not finish within the cluster's connectTimeoutMs: 503 upstream-connect-failure, the socket is destroyed", async () => {
    const blackhole = await blackholeListener();
    const sockets: net.Socket[] = [];
    const reports: [PickedEndpoint, AttemptOutcome][] = [];
    const base = fakeCluster({
      name: 'slow',
      connectTimeoutMs: 100,
      pick: () => ({ address: '127.0.0.1', port: blackhole.port }),
      report(e, o) {
        reports.push([e, o]);
      },
    });
    const slow: ClusterView = {
      ...base,
      connect(e, handler) {
        const socket = base.connect(e, handler);
        sockets.push(socket);
        return socket;
      },
    };
    const p = await startProxy({ address: '127.0.0.1', port: 1 }, { route: () => decision({ retry: { ...RETRY, maxAttempts: 1 } }), cluster: () => slow });
    try {
      const t0 = performance.now();
      const r = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/x`]);
      const elapsed = performance.now() - t0;
      assert.match(r.stdout, /^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*x-remora-error: upstream-connect-failure\r\n/);
      assert.ok(r.stdout.endsWith(`\r\n\r\n${bodyOf('upstream-connect-failure')}`));
      assert.ok(elapsed >= 95 && elapsed < 5_000, `answered after ${elapsed.toFixed(0)} ms (connect timeout 100 ms)`);
      assert.equal(sockets.length, 1);
      assert.equal(sockets[0]?.destroyed, true, 'the pending connect was aborted');
      assert.deepEqual(reports.map(([e, o]) => `${e.port}:${o.kind}`), [`${blackhole.port}:connect-failure`]);
      assert.equal(p.stats.get('pool.http1.connect_failure'), 1);
      assert.equal(p.stats.get('errors.REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT'), 1);
    } finally {
      await p.close();
      await blackhole.close();
    }
  });
});
