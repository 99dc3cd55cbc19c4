// Routed requests: the engine executes the decisions of injected policies (stand-ins here, plus the real
// retry-policy.ts through a small adapter): endpoint choice, retries with body replay and backoff, per-try and route
// timeouts, circuit breaker, header mutations, local replies from the router, outcome reports.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { RequestHead, RouteDecision } from '../../../src/l7/request-types.js';
import type { AttemptOutcome } from '../../../src/upstream/health/attempt-outcome.js';
import type { RetryPolicy } from '../../../src/config/route-spec.js';
import {
  PASSTHROUGH_DECISION,
  type L7Endpoint,
  type RetryDecider,
  type UpstreamCluster,
} from '../../../src/l7/engine/http-engine.js';
import { createRetryDecider } from '../../../src/l7/router/retry-policy.js';
import { DEFAULT_POOL_OPTIONS } from '../../../src/l7/pool/upstream-pools.js';
import { listen, rawExchange, run, sleep, startProxy, type ProxyUnderTest } from './harness.js';

/** The real retry policy (src/l7/retry-policy.ts), typed as the engine's RetryDecider: the shapes must agree. */
const realRetry: RetryDecider = createRetryDecider(() => 0.5);

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

function decision(over: Partial<Extract<RouteDecision, { kind: 'forward' }>> = {}): RouteDecision {
  return { ...(PASSTHROUGH_DECISION as Extract<RouteDecision, { kind: 'forward' }>), route: 'r1', backend: { service: 'svc', weight: 1 }, retry: RETRY, ...over };
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

  /** A cluster picking endpoints in order, honouring `tried` (preferOtherHosts), recording reports. */
  function cluster(endpoints: L7Endpoint[], reports: [string, AttemptOutcome][] = [], picks: string[][] = []): UpstreamCluster {
    return {
      name: 'svc',
      protocol: 'downstream',
      pick(ctx) {
        picks.push([...ctx.tried]);
        const key = (e: L7Endpoint): string => `${e.address}:${e.port}`;
        return endpoints.find((e) => !(ctx.preferOtherHosts && ctx.tried.has(key(e)))) ?? endpoints[0];
      },
      report(e, outcome) {
        reports.push([`${e.port}`, outcome]);
      },
    };
  }

  async function withProxy<T>(deps: Parameters<typeof startProxy>[1], fn: (p: ProxyUnderTest) => Promise<T>): Promise<T> {
    const p = await startProxy({ address: '127.0.0.1', port: 1 }, deps);
    try {
      return await fn(p);
    } finally {
      await p.close();
    }
  }

  const ep = (port: number): L7Endpoint => ({ address: '127.0.0.1', port });

  test('gateway errors and connect failures are retried on other endpoints; the POST body is replayed', async () => {
    const reports: [string, AttemptOutcome][] = [];
    const picks: string[][] = [];
    await withProxy(
      { route: () => decision(), cluster: () => cluster([ep(failing.port), ep(deadPort), ep(good.port)], reports, picks), retry: realRetry },
      async (p) => {
        // POST is not idempotent: the 503 (a response) is not retried by the real policy...
        const post = await run('curl', ['-sS', '-i', '--data-binary', 'the-body', `http://127.0.0.1:${p.port}/post`]);
        assert.match(post.stdout, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
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
    await withProxy({ route: () => decision({ retry }), cluster: () => cluster([ep(hanging.port), ep(good.port)]), retry: realRetry }, async (p) => {
      const r = await run('curl', ['-sS', `http://127.0.0.1:${p.port}/slow`]);
      assert.equal(r.stdout, 'ok GET /slow \n');
      assert.equal(p.stats.get('http.per_try_timeouts'), 1);
    });
  });

  test('per-try timeout without retries: 504 upstream-timeout', async () => {
    const retry: RetryPolicy = { ...RETRY, perTryTimeoutMs: 100, maxAttempts: 1 };
    await withProxy({ route: () => decision({ retry }), cluster: () => cluster([ep(hanging.port)]), retry: realRetry }, async (p) => {
      const r = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/x`]);
      assert.match(r.stdout, /^HTTP\/1\.1 504 Gateway Timeout\r\n/);
      assert.match(r.stdout, /\r\nx-remora-error: upstream-timeout\r\n/);
    });
  });

  test('route timeout before the response: 504; after the response started: the connection is reset', async () => {
    await withProxy({ route: () => decision({ timeoutMs: 150 }), cluster: () => cluster([ep(hanging.port)]) }, async (p) => {
      const r = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/t`]);
      assert.match(r.stdout, /^HTTP\/1\.1 504 Gateway Timeout\r\n/);
      assert.match(r.stdout, /\r\nx-remora-error: upstream-timeout\r\n/);
    });
    await withProxy({ route: () => decision({ timeoutMs: 150 }), cluster: () => cluster([ep(slowBody.port)]) }, async (p) => {
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
    const c: UpstreamCluster = {
      ...cluster([ep(good.port)]),
      admit(kind) {
        if (open) return undefined;
        // The pools also ask for 'connection' (held by the keep-alive connection) and 'pending' slots.
        if (kind !== 'request') return () => {};
        held++;
        return () => {
          held--;
        };
      },
    };
    await withProxy({ route: () => decision(), cluster: () => c }, async (p) => {
      const ok = await run('curl', ['-sS', `http://127.0.0.1:${p.port}/a`]);
      assert.equal(ok.stdout, 'ok GET /a \n');
      assert.equal(held, 0);
      open = true;
      const r = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/b`]);
      assert.match(r.stdout, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      assert.match(r.stdout, /\r\nx-remora-error: circuit-open\r\n/);
    });
  });

  test('no endpoint: 503 no-healthy-upstream; unknown service: 404 no-route; router reply passed on', async () => {
    await withProxy(
      {
        route: (h: RequestHead) =>
          h.path === '/denied'
            ? { kind: 'reply', reply: { status: 403, reason: 'no-route', body: 'denied by route\n', close: false } }
            : decision({ backend: { service: h.path === '/unknown' ? 'nope' : 'svc', weight: 1 } }),
        cluster: (b) => (b.service === 'nope' ? undefined : { ...cluster([]), pick: () => undefined }),
      },
      async (p) => {
        const a = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/x`]);
        assert.match(a.stdout, /^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*x-remora-error: no-healthy-upstream\r\n/);
        const b = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/unknown`]);
        assert.match(b.stdout, /^HTTP\/1\.1 404 Not Found\r\n[\s\S]*x-remora-error: no-route\r\n/);
        const c = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/denied`]);
        assert.match(c.stdout, /^HTTP\/1\.1 403 Forbidden\r\n[\s\S]*x-remora-error: no-route\r\n[\s\S]*denied by route\n$/);
      },
    );
  });

  test('a policy that throws fails that request only', async () => {
    await withProxy(
      {
        route: (h) => {
          if (h.path === '/route-throws') throw new Error('router bug');
          return decision();
        },
        cluster: (_b, h) => {
          if (h.path === '/cluster-throws') throw new Error('registry bug');
          return cluster([ep(good.port)]);
        },
      },
      async (p) => {
        const r = await rawExchange(
          p.port,
          'GET /route-throws HTTP/1.1\r\nHost: h\r\n\r\nGET /cluster-throws HTTP/1.1\r\nHost: h\r\n\r\nGET /fine HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n',
        );
        assert.match(r.text, /^HTTP\/1\.1 404 Not Found\r\n[\s\S]*x-remora-error: no-route\r\n/);
        assert.match(r.text, /HTTP\/1\.1 502 Bad Gateway\r\n[\s\S]*x-remora-error: upstream-reset\r\n/);
        assert.match(r.text, /HTTP\/1\.1 200 OK\r\n[\s\S]*ok GET \/fine \n/);
        assert.equal(p.stats.get('errors.REMORA_ERR_INTERNAL'), 1);
      },
    );
  });

  test('request and response header mutations', async () => {
    good.hits.length = 0;
    await withProxy(
      {
        route: () =>
          decision({
            requestHeaders: { add: [['X-Added', 'yes']], remove: ['x-remove-me'] },
            responseHeaders: { add: [['x-resp-added', '1']], remove: ['x-secret'] },
          }),
        cluster: () => cluster([ep(good.port)]),
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
    await withProxy(
      {
        route: (h) => {
          seen = h;
          return decision();
        },
        cluster: () => cluster([ep(good.port)]),
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
      },
    );
  });

  test('a backoff delays the retry; a decider may end with retry-budget-exhausted', async () => {
    const budget: RetryDecider = {
      decide: (_p, outcome) => (outcome.kind === 'connect-failure' ? { retry: false, reply: 'retry-budget-exhausted' } : { retry: false }),
    };
    await withProxy({ route: () => decision(), cluster: () => cluster([ep(deadPort)]), retry: budget }, async (p) => {
      const r = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/x`]);
      assert.match(r.stdout, /^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*x-remora-error: retry-budget-exhausted\r\n/);
    });
    const slowRetry: RetryDecider = { decide: (_p, o) => (o.kind === 'connect-failure' ? { retry: true, backoffMs: 200 } : { retry: false }) };
    await withProxy({ route: () => decision(), cluster: () => cluster([ep(deadPort), ep(good.port)]), retry: slowRetry }, async (p) => {
      const r = await run('curl', ['-sS', `http://127.0.0.1:${p.port}/b`]);
      assert.equal(r.stdout, 'ok GET /b \n');
    });
  });

  test('a client that resets during the backoff leaves nothing behind', async () => {
    const slowRetry: RetryDecider = { decide: () => ({ retry: true, backoffMs: 300 }) };
    await withProxy({ route: () => decision(), cluster: () => cluster([ep(deadPort)]), retry: slowRetry }, async (p) => {
      const s = net.connect(p.port, '127.0.0.1');
      s.on('error', () => {});
      s.write('GET /gone HTTP/1.1\r\nHost: h\r\n\r\n');
      await sleep(100);
      s.resetAndDestroy(); // a FIN alone would be a half-close: the answer would still be owed
      await sleep(400);
      assert.equal(p.stats.get('http.downstream_aborts'), 1);
      assert.equal(p.engine.activeConnections, 0);
    });
  });
});

describe('connect timeout', () => {
  test('a connector that does not finish in time: 503 upstream-connect-failure, the attempt is aborted', async () => {
    let aborted = 0;
    const p = await startProxy(
      { address: '127.0.0.1', port: 1 },
      {
        connect: (_target, signal) =>
          new Promise((_resolve, reject) => {
            signal.addEventListener('abort', () => {
              aborted++;
              reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
            });
          }),
      },
      { pools: { ...DEFAULT_POOL_OPTIONS, http1: { ...DEFAULT_POOL_OPTIONS.http1, connectTimeoutMs: 100 } } },
    );
    try {
      const r = await run('curl', ['-sS', '-i', `http://127.0.0.1:${p.port}/x`]);
      assert.match(r.stdout, /^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*x-remora-error: upstream-connect-failure\r\n/);
      assert.equal(aborted, 1);
      assert.equal(p.stats.get('pool.http1.connect_failure'), 1);
      assert.equal(p.stats.get('errors.REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT'), 1);
    } finally {
      await p.close();
    }
  });
});
