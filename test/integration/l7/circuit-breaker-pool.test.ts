// Per-service connection and pending-request limits: the pools ask the request's cluster (ClusterView.admit
// 'connection' / 'pending') before opening an upstream connection and before queueing a request; a refusal is the
// circuit-open local reply (503), never a retry or a 502. The cluster here (the harness's fakeCluster) wraps the real
// CircuitBreaker; one cluster object per proxy, as pools are keyed by cluster id.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CircuitBreaker } from '../../../src/upstream/circuit-breaker.js';
import { DEFAULT_CIRCUIT_BREAKER_LIMITS } from '../../../src/config/traffic-policy-spec.js';
import { localReply } from '../../../src/l7/local-reply.js';
import type { RouteDecision } from '../../../src/l7/request-types.js';
import { createRetryDecider } from '../../../src/l7/router/retry-policy.js';
import type { ClusterView } from '../../../src/upstream/cluster.js';
import { fakeCluster, listen, PASSTHROUGH_DECISION, startProxy, waitFor, HTTP2_CODECS } from './harness.js';

const CIRCUIT_OPEN_BODY = localReply('circuit-open').body;

const decision: RouteDecision = {
  ...PASSTHROUGH_DECISION,
  route: 'r1',
  backend: { service: 'svc', weight: 1 },
  retry: {
    maxAttempts: 3, on: ['connect-failure', 'reset', 'gateway-error'], statuses: [], grpcStatuses: [],
    perTryTimeoutMs: 0, backoffBaseMs: 1, backoffMaxMs: 5, preferOtherHosts: false,
  },
};

interface Reply {
  status: number;
  error: string | undefined;
  body: string;
}

function get(port: number, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => {
        const e = res.headers['x-remora-error'];
        resolve({ status: res.statusCode ?? 0, error: typeof e === 'string' ? e : undefined, body });
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('request timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('per-service connection and pending limits', () => {
  /** Holds every response until `release()`; counts concurrent connections. */
  const held: http.ServerResponse[] = [];
  let holding = true;
  let open = 0;
  let maxOpen = 0;
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits++;
    if (holding) held.push(res);
    else res.end('ok\n');
  });
  server.on('connection', (s: net.Socket) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    s.once('close', () => {
      open--;
    });
  });
  let port = 0;

  before(async () => {
    port = await listen(server);
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  /** `asked`: every admission asked for; `granted`: the ones the breaker let through. */
  function clusterWith(breaker: CircuitBreaker, asked: string[], granted: string[] = []): ClusterView {
    return fakeCluster({
      name: 'svc',
      protocol: 'http1',
      pick: () => ({ address: '127.0.0.1', port }),
      admit(kind) {
        asked.push(kind);
        const r = breaker.tryAcquire(kind);
        if (r === 'open') return undefined;
        granted.push(kind);
        return r;
      },
    });
  }

  test('max_connections = 2, max_pending_requests = 1, 6 concurrent requests: 3 x 200, 3 x 503 circuit-open', async () => {
    holding = true;
    maxOpen = 0;
    hits = 0;
    const breaker = new CircuitBreaker({ ...DEFAULT_CIRCUIT_BREAKER_LIMITS, maxConnections: 2, maxPendingRequests: 1 });
    const asked: string[] = [];
    const svc = clusterWith(breaker, asked);
    const p = await startProxy({ address: '127.0.0.1', port: 1 }, {
      route: () => decision,
      cluster: () => svc,
      retry: createRetryDecider(() => 0.5),
    });
    try {
      const replies: Reply[] = [];
      const all = Promise.all(Array.from({ length: 6 }, (_, i) => get(p.port, `/r${i}`).then((r) => {
        replies.push(r);
        return r;
      })));
      // Two requests reach the backend on two connections, one waits in the pool, three are refused at once.
      await waitFor(() => held.length === 2 && replies.length === 3, '2 requests held and 3 refused');
      assert.equal(breaker.active('connection'), 2);
      assert.equal(breaker.active('pending'), 1);
      for (const r of replies) {
        assert.equal(r.status, 503);
        assert.equal(r.error, 'circuit-open');
        assert.equal(r.body.split('\n').length, 2, 'one-line body');
        assert.equal(r.body, CIRCUIT_OPEN_BODY);
      }
      holding = false;
      for (const res of held.splice(0)) res.end('ok\n');
      const done = await all;
      assert.equal(done.filter((r) => r.status === 200).length, 3);
      assert.equal(done.filter((r) => r.status === 503 && r.error === 'circuit-open').length, 3);
      assert.equal(hits, 3, 'refused requests are not retried');
      assert.equal(maxOpen, 2, 'never more than 2 connections to the backend');
      assert.equal(breaker.active('pending'), 0);
      assert.equal(breaker.active('request'), 0);
      assert.equal(breaker.active('retry'), 0);
      assert.equal(breaker.stats().overflow.pending, 3);
    } finally {
      await p.close();
    }
    // Connection slots are given back when the upstream connections close.
    await waitFor(() => breaker.active('connection') === 0, 'connection slots released');
  });

  test('max_pending_requests = 0: a request that would wait for a connection is refused; slots come back', async () => {
    holding = true;
    hits = 0;
    const breaker = new CircuitBreaker({ ...DEFAULT_CIRCUIT_BREAKER_LIMITS, maxConnections: 1, maxPendingRequests: 0 });
    const asked: string[] = [];
    const granted: string[] = [];
    const svc = clusterWith(breaker, asked, granted);
    const p = await startProxy({ address: '127.0.0.1', port: 1 }, {
      route: () => decision,
      cluster: () => svc,
    });
    try {
      const first = get(p.port, '/a');
      await waitFor(() => held.length === 1, 'first request held');
      const second = await get(p.port, '/b');
      assert.equal(second.status, 503);
      assert.equal(second.error, 'circuit-open');
      assert.equal(second.body, CIRCUIT_OPEN_BODY);
      holding = false;
      for (const res of held.splice(0)) res.end('ok\n');
      assert.equal((await first).status, 200);
      // The connection is kept alive and reused: no new connection slot is needed.
      const third = await get(p.port, '/c');
      assert.equal(third.status, 200);
      assert.equal(hits, 2);
      assert.ok(asked.includes('connection') && asked.includes('pending'));
      assert.equal(granted.filter((k) => k === 'connection').length, 1, 'one connection slot granted: the connection was reused');
    } finally {
      await p.close();
    }
    await waitFor(() => breaker.active('connection') === 0, 'connection slot released');
  });

  test('passthrough (no cluster admission) is unaffected', async () => {
    holding = false;
    const p = await startProxy({ address: '127.0.0.1', port });
    try {
      const rs = await Promise.all(Array.from({ length: 4 }, (_, i) => get(p.port, `/p${i}`)));
      assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200]);
    } finally {
      await p.close();
    }
  });

  for (const codec of HTTP2_CODECS) test(`HTTP/2 upstream, max_connections = 1, max_pending_requests = 1: streams share the session, 1 waits, 1 refused (http2_codec = ${codec})`, async () => {
    const heldH2: http2.Http2ServerResponse[] = [];
    let holdH2 = true;
    let sessions = 0;
    const h2 = http2.createServer({ settings: { maxConcurrentStreams: 2 } }, (_req, res) => {
      if (holdH2) heldH2.push(res);
      else res.end('ok\n');
    });
    h2.on('session', () => {
      sessions++;
    });
    const h2Port = await listen(h2);
    const breaker = new CircuitBreaker({ ...DEFAULT_CIRCUIT_BREAKER_LIMITS, maxConnections: 1, maxPendingRequests: 1 });
    const svc2 = fakeCluster({
      name: 'svc2',
      protocol: 'http2',
      pick: () => ({ address: '127.0.0.1', port: h2Port }),
      admit(kind) {
        const r = breaker.tryAcquire(kind);
        return r === 'open' ? undefined : r;
      },
    });
    const p = await startProxy({ address: '127.0.0.1', port: 1 }, {
      route: () => decision,
      cluster: () => svc2,
    }, { http2Codec: codec });
    try {
      // Warm up: the first request waits (pending) while the session connects.
      holdH2 = false;
      assert.equal((await get(p.port, '/warm')).status, 200);
      holdH2 = true;
      const replies: Reply[] = [];
      const all = Promise.all(Array.from({ length: 4 }, (_, i) => get(p.port, `/s${i}`).then((r) => {
        replies.push(r);
        return r;
      })));
      await waitFor(() => heldH2.length === 2 && replies.length === 1, '2 streams held and 1 refused');
      assert.equal(replies[0]?.status, 503);
      assert.equal(replies[0]?.error, 'circuit-open');
      assert.equal(replies[0]?.body, CIRCUIT_OPEN_BODY);
      assert.equal(breaker.active('pending'), 1);
      holdH2 = false;
      for (const res of heldH2.splice(0)) res.end('ok\n');
      const done = await all;
      assert.equal(done.filter((r) => r.status === 200).length, 3);
      assert.equal(sessions, 1, 'one upstream session');
      assert.equal(breaker.active('pending'), 0);
    } finally {
      await p.close();
      h2.close();
    }
    await waitFor(() => breaker.active('connection') === 0, 'session slot released');
  });

  test('a retry the budget refuses: after a connect failure the reply is retry-budget-exhausted; after a 503 the 503 passes', async () => {
    // Budget 0 % / 0: every retry is refused by the budget (max_retries stays high).
    const limits = { ...DEFAULT_CIRCUIT_BREAKER_LIMITS, retryBudget: { budgetPercent: 0, minRetryConcurrency: 0 } };
    const failing = http.createServer((_req, res) => {
      res.statusCode = 503;
      res.end('down\n');
    });
    const failingPort = await listen(failing);
    const dead = http.createServer();
    const deadPort = await listen(dead);
    dead.close();
    for (const [target, expected] of [[deadPort, 'retry-budget-exhausted'], [failingPort, undefined]] as const) {
      const breaker = new CircuitBreaker(limits);
      let budgetRefusals = 0;
      const svc = fakeCluster({
        name: 'svc',
        protocol: 'http1',
        pick: () => ({ address: '127.0.0.1', port: target }),
        admit(kind) {
          const r = breaker.tryAcquire(kind);
          return r === 'open' ? undefined : r;
        },
        admitRetry() {
          const r = breaker.tryAcquireRetry();
          if (r === 'budget-exhausted') budgetRefusals++;
          return r === 'open' ? 'circuit-open' : r === 'budget-exhausted' ? 'retry-budget-exhausted' : r;
        },
      });
      const p = await startProxy({ address: '127.0.0.1', port: 1 }, {
        route: () => decision,
        cluster: () => svc,
        retry: createRetryDecider(() => 0.5),
      });
      try {
        const r = await get(p.port, '/budget');
        assert.equal(r.status, 503);
        assert.equal(r.error, expected);
        if (expected === undefined) assert.equal(r.body, 'down\n', 'the upstream 503 is passed on');
        else assert.equal(r.body, localReply('retry-budget-exhausted').body, 'the one-line body of the table');
        assert.equal(budgetRefusals, 1);
        assert.equal(breaker.stats().retryBudgetOverflow, 1);
        assert.equal(breaker.active('retry'), 0);
      } finally {
        await p.close();
      }
    }
    failing.close();
  });
});
