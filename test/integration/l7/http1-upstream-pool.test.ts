// The upstream HTTP/1.1 pool through the engine: LIFO reuse, keep-alive hints, idle connections closed by the server,
// the transparent retry of a request that hit a connection the server had just closed ("503 UC"), and the race itself
// with a backend that closes idle connections after 1 s while clients send at ~1 s intervals.
import assert from 'node:assert/strict';

import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_POOL_OPTIONS } from '../../../src/l7/pool/upstream-pools.js';
import { listen, rawExchange, sleep, startProxy, waitFor, type ProxyUnderTest } from './harness.js';

/** A raw backend that records which connection (client port) carried each request and lets a test script answers. */
class ScriptedBackend {
  readonly server: net.Server;
  readonly sockets = new Set<net.Socket>();
  /** [connection port, nth request on that connection, request head] */
  readonly log: [number, number, string][] = [];
  closedByClient = 0;
  answer: (port: number, nth: number, head: string, body: string, s: net.Socket) => void = (_p, _n, _h, _b, s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  };

  constructor() {
    this.server = net.createServer({ allowHalfOpen: true }, (s) => {
      this.sockets.add(s);
      s.on('error', () => {});
      s.on('end', () => {
        this.closedByClient++;
        s.end();
      });
      s.once('close', () => this.sockets.delete(s));
      let buf = '';
      let nth = 0;
      s.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.slice(0, end + 4);
          const m = /\r\ncontent-length: (\d+)\r\n/i.exec(head);
          const len = m === null ? 0 : Number(m[1]);
          const chunked = /\r\ntransfer-encoding: chunked\r\n/i.test(head);
          let body = '';
          let rest: string;
          if (chunked) {
            const term = buf.indexOf('0\r\n\r\n', end + 4);
            if (term < 0) return;
            body = buf.slice(end + 4, term);
            rest = buf.slice(term + 5);
          } else {
            if (buf.length < end + 4 + len) return;
            body = buf.slice(end + 4, end + 4 + len);
            rest = buf.slice(end + 4 + len);
          }
          buf = rest;
          nth++;
          this.log.push([s.remotePort ?? 0, nth, head]);
          this.answer(s.remotePort ?? 0, nth, head, body, s);
        }
      });
    });
  }

  closeAll(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

function get(port: number, path: string, agent: http.Agent, method = 'GET', body?: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent }, (res) => {
      let b = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => {
        b += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('upstream HTTP/1.1 pool behaviour', () => {
  let backend: ScriptedBackend;
  let proxy: ProxyUnderTest;
  let agent: http.Agent;

  before(async () => {
    backend = new ScriptedBackend();
    const port = await listen(backend.server);
    proxy = await startProxy({ address: '127.0.0.1', port }, {}, {
      pools: { ...DEFAULT_POOL_OPTIONS, http1: { ...DEFAULT_POOL_OPTIONS.http1, idleTimeoutMs: 60_000, keepAliveMarginMs: 1_000 } },
    });
    agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  });

  after(async () => {
    agent.destroy();
    await proxy.close();
    backend.closeAll();
  });

  test('idle connections are reused, most recently used first', async () => {
    backend.log.length = 0;
    // Three requests at once -> three upstream connections.
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const pending: net.Socket[] = [];
    backend.answer = (_p, _n, _h, _b, s) => {
      pending.push(s);
      if (pending.length === 3) release();
    };
    const three = [get(proxy.port, '/a', agent), get(proxy.port, '/b', agent), get(proxy.port, '/c', agent)];
    await gate;
    backend.answer = (_p, _n, _h, _b, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    // Answer in a known order: the last answered is the most recently released.
    for (const [i, s] of pending.entries()) {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      await waitFor(() => proxy.engine.poolSnapshot().http1Idle === i + 1, `connection ${i + 1} back in the pool`);
    }
    await Promise.all(three);
    const lastReleased = pending[2]?.remotePort;
    await get(proxy.port, '/next', agent);
    assert.equal(backend.log.at(-1)?.[0], lastReleased, 'LIFO: the last released connection carries the next request');
    assert.equal(backend.log.at(-1)?.[1], 2);
  });

  test('a connection the server closes while idle is discarded; the next request does not fail', async () => {
    const beforeClosed = proxy.stats.get('pool.http1.idle_closed_by_peer');
    for (const s of backend.sockets) s.end(); // FIN on every idle upstream connection
    await waitFor(() => proxy.stats.get('pool.http1.idle_closed_by_peer') > beforeClosed, 'the pool to see the FIN');
    assert.ok(proxy.stats.get('pool.http1.idle_closed_by_peer') > beforeClosed);
    const r = await get(proxy.port, '/after-fin', agent);
    assert.equal(r.status, 200);
    assert.equal(backend.log.at(-1)?.[1], 1, 'on a new connection');
  });

  test('a request lost on a reused connection (closed before any response byte) is retried once on a fresh one, POST included', async () => {
    backend.answer = (_p, nth, _h, _b, s) => {
      // The race, made deterministic: the second request on a connection meets a close instead of an answer.
      if (nth === 2) s.destroy();
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    };
    const before = proxy.stats.get('http.retries.stale_connection');
    const a = await get(proxy.port, '/first', agent, 'POST', 'payload-1');
    assert.equal(a.status, 200);
    const b = await get(proxy.port, '/second', agent, 'POST', 'payload-2');
    assert.equal(b.status, 200, b.body);
    // Both requests rode a reused connection (the one left by the previous test, then the first retry's).
    assert.equal(proxy.stats.get('http.retries.stale_connection'), before + 2);
    const last = backend.log.at(-1);
    assert.equal(last?.[1], 1, 'the retry went out on a fresh connection');
    assert.match(last?.[2] ?? '', /^POST \/second /);
  });

  test('a body too large to replay is not retried: 502 upstream-reset', async () => {
    backend.answer = (_p, nth, _h, _b, s) => {
      if (nth === 2) s.destroy();
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    };
    // Prime: make sure the next request rides a reused connection.
    for (const s of backend.sockets) s.destroy();
    await waitFor(() => proxy.engine.poolSnapshot().http1Connections === 0, 'the pool to drop the closed connections');
    await get(proxy.port, '/prime', agent);
    const before = proxy.stats.get('http.retries.stale_connection');
    const big = 'b'.repeat(200 * 1024);
    const r = await get(proxy.port, '/big', agent, 'POST', big);
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-remora-error'], 'upstream-reset');
    assert.equal(proxy.stats.get('http.retries.stale_connection'), before);
  });

  test('a Keep-Alive: timeout=N hint retires the idle connection before the server would close it', async () => {
    const p2 = await startProxy({ address: '127.0.0.1', port: (backend.server.address() as net.AddressInfo).port }, {}, {
      // margin 1.9 s on a 2 s hint: retire after 0.1 s
      pools: { ...DEFAULT_POOL_OPTIONS, http1: { ...DEFAULT_POOL_OPTIONS.http1, idleTimeoutMs: 60_000, keepAliveMarginMs: 1_900 } },
    });
    try {
      backend.answer = (_p, _n, _h, _b, s) => s.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 2\r\n\r\nok');
      const closedBefore = backend.closedByClient;
      const r = await rawExchange(p2.port, 'GET /hint HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
      assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n/);
      assert.doesNotMatch(r.text, /timeout=2/, 'the hop-by-hop Keep-Alive is not forwarded');
      await waitFor(() => backend.closedByClient !== closedBefore, 'the pool to close the idle connection');
      assert.equal(backend.closedByClient, closedBefore + 1, 'the pool closed the idle connection itself');
      assert.equal(p2.stats.get('pool.http1.idle_retired'), 1);
      assert.equal(p2.stats.get('pool.http1.idle_closed_by_peer'), 0, 'a retirement is not counted as closed by the peer');
      // timeout=1 leaves no safe idle time: the connection is closed right after the response.
      backend.answer = (_p, _n, _h, _b, s) => s.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok');
      await rawExchange(p2.port, 'GET /hint1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
      assert.equal(p2.stats.get('pool.http1.closed_short_keepalive'), 1);
    } finally {
      await p2.close();
    }
  });

  test('an idle connection with a short deadline is retired on time behind one with a long deadline', async () => {
    // One retirement timer per pool, armed for the earliest deadline: a connection going idle with an earlier deadline
    // than the one armed must re-arm it (else it would wait for the 60 s one).
    const p2 = await startProxy({ address: '127.0.0.1', port: (backend.server.address() as net.AddressInfo).port }, {}, {
      pools: { ...DEFAULT_POOL_OPTIONS, http1: { ...DEFAULT_POOL_OPTIONS.http1, idleTimeoutMs: 60_000, keepAliveMarginMs: 1_900 } },
    });
    const slow = new http.Agent({ keepAlive: true, maxSockets: 2 });
    try {
      // Two requests at once: two upstream connections, both held by the backend. The first is answered without a
      // hint (60 s idle); only once its response reached the client (the pool released its connection in the same
      // turn) is the second answered with `timeout=2` (0.1 s idle).
      const held = new Map<string, net.Socket>();
      backend.answer = (_p, _n, head, _b, s) => { held.set(head.slice(0, head.indexOf(' HTTP/')), s); };
      const closedBefore = backend.closedByClient;
      const pa = get(p2.port, '/long', slow);
      const pb = get(p2.port, '/short', slow);
      await waitFor(() => held.size === 2, 'both requests at the backend');
      const long = held.get('GET /long') as net.Socket;
      const short = held.get('GET /short') as net.Socket;
      long.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      assert.equal((await pa).status, 200);
      short.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 2\r\n\r\nok');
      assert.equal((await pb).status, 200);
      // Without the re-arm, nothing closes for 60 s and this wait times out.
      await waitFor(() => backend.closedByClient === closedBefore + 1, 'the pool to close the short-deadline connection', 10_000);
      assert.equal(p2.stats.get('pool.http1.idle_retired'), 1, 'closed as retired, and only the short one: the other has 60 s left');
      assert.equal(p2.stats.get('pool.http1.idle_closed_by_peer'), 0);
      assert.equal(long.destroyed, false, 'the long-deadline connection is still open');
    } finally {
      slow.destroy();
      await p2.close();
    }
  });

  test('connections per endpoint are capped; extra requests wait for a free one', async () => {
    const p3 = await startProxy({ address: '127.0.0.1', port: (backend.server.address() as net.AddressInfo).port }, {}, {
      pools: { ...DEFAULT_POOL_OPTIONS, http1: { ...DEFAULT_POOL_OPTIONS.http1, maxConnections: 2 } },
    });
    try {
      const ports = new Set<number>();
      backend.answer = (p, _n, _h, _b, s) => {
        ports.add(p);
        setTimeout(() => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 20);
      };
      const a2 = new http.Agent({ keepAlive: true, maxSockets: 10 });
      const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => get(p3.port, `/cap${i}`, a2)));
      a2.destroy();
      assert.ok(rs.every((r) => r.status === 200));
      assert.ok(ports.size <= 2, `${ports.size} upstream connections`);
      assert.equal(p3.engine.poolSnapshot().http1Connections <= 2, true);
    } finally {
      await p3.close();
    }
  });
});

describe('keep-alive race: backend closes idle connections after 1 s, clients send every ~1 s', () => {
  // One backend and one proxy per client loop, so that each upstream pool holds one connection that is reused after
  // ~1 s of idle time: around the backend's idle timeout, where its close races the next request.
  const LOOPS = 10;
  const PER_LOOP = 30;
  const backends: ScriptedBackend[] = [];
  const proxies: ProxyUnderTest[] = [];

  before(async () => {
    for (let i = 0; i < LOOPS; i++) {
      // A raw backend that closes a keep-alive connection after exactly 1 s without a request, and sends no
      // Keep-Alive hint: the pool keeps its default idle time (4 s, longer than the server's), so the race is real.
      const backend = new ScriptedBackend();
      const idle = new WeakMap<net.Socket, NodeJS.Timeout>();
      backend.answer = (_p, _n, head, _b, s) => {
        clearTimeout(idle.get(s));
        const line = head.slice(0, head.indexOf(' HTTP/1.1'));
        const body = `${line}\n`;
        s.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        idle.set(s, setTimeout(() => s.destroy(), 1_000));
      };
      backend.server.on('connection', (s: net.Socket) => {
        idle.set(s, setTimeout(() => s.destroy(), 1_000));
        s.once('close', () => clearTimeout(idle.get(s)));
      });
      const port = await listen(backend.server);
      backends.push(backend);
      proxies.push(await startProxy({ address: '127.0.0.1', port }));
    }
  });

  after(async () => {
    for (const p of proxies) await p.close();
    for (const b of backends) b.closeAll();
  });

  test(`zero client-visible errors over ${LOOPS * PER_LOOP} requests`, { timeout: 120_000 }, async () => {
    const errors: string[] = [];
    let ok = 0;
    let seed = 12345;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    await Promise.all(
      proxies.map(async (proxy, loop) => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        await sleep(loop * 37); // stagger the loops (not a synchronisation)
        for (let i = 0; i < PER_LOOP; i++) {
          try {
            const r = await get(proxy.port, `/l${loop}/r${i}`, agent, i % 2 === 0 ? 'GET' : 'POST', i % 2 === 0 ? undefined : `body-${loop}-${i}`);
            if (r.status === 200 && r.body === `${i % 2 === 0 ? 'GET' : 'POST'} /l${loop}/r${i}\n`) ok++;
            else errors.push(`${r.status} ${String(r.headers['x-remora-error'])}`);
          } catch (err) {
            errors.push(String(err));
          }
          await sleep(960 + Math.floor(rand() * 80)); // 960..1040 ms: around the server's 1 s idle timeout
        }
        agent.destroy();
      }),
    );
    const sum = (name: string): number => proxies.reduce((n, p) => n + p.stats.get(name), 0);
    process.stdout.write(
      `# keep-alive race: ok=${ok} errors=${errors.length} stale-retries=${sum('http.retries.stale_connection')} ` +
        `idle-closed-by-peer=${sum('pool.http1.idle_closed_by_peer')} connects=${sum('pool.http1.connect')} reused=${sum('pool.http1.reused')}\n`,
    );
    assert.deepEqual(errors, []);
    assert.equal(ok, LOOPS * PER_LOOP);
    assert.ok(sum('pool.http1.idle_closed_by_peer') + sum('http.retries.stale_connection') > 0, 'the server did close pooled connections');
  });
});
