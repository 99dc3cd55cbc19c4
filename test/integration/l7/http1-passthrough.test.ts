// HTTP/1.1 through the engine on the passthrough path: real curl, real Node servers, raw sockets where byte-exact
// behaviour matters (header case and order, framing, pipelining).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { listen, rawExchange, readUntil, run, startProxy, waitFor, type ProxyUnderTest } from './harness.js';

interface Seen {
  method: string;
  url: string;
  rawHeaders: string[];
  rawTrailers: string[];
  body: Buffer;
}

describe('HTTP/1.1 passthrough with a Node backend', () => {
  let backend: http.Server;
  let proxy: ProxyUnderTest;
  const seen: Seen[] = [];
  let continues = 0;

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, rawTrailers: req.rawTrailers, body });
      if (req.url === '/trailers') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('part1,');
        res.write('part2');
        res.addTrailers({ 'x-checksum': 'abc123' });
        res.end();
        return;
      }
      if (req.url === '/no-content') {
        res.writeHead(204);
        res.end();
        return;
      }
      if (req.url === '/big') {
        // 4 MiB in 64 KiB writes, respecting backpressure
        let left = 64;
        const chunk = Buffer.alloc(65536, 0x61);
        const pump = (): void => {
          while (left > 0) {
            left--;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        res.writeHead(200, { 'content-length': String(64 * 65536) });
        pump();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': 'node' });
      res.end(`${req.method} ${req.url} ${body.length}\n`);
    });
  };

  before(async () => {
    backend = http.createServer({ maxHeaderSize: 256 * 1024 }, handler);
    backend.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      continues++;
      res.writeContinue();
      handler(req, res);
    });
    const port = await listen(backend);
    proxy = await startProxy({ address: '127.0.0.1', port });
  });

  after(async () => {
    await proxy.close();
    backend.closeAllConnections();
    backend.close();
  });

  test('curl: keep-alive reuses the downstream connection; x-request-id added, traceparent untouched', async () => {
    seen.length = 0;
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const connsBefore = proxy.stats.get('http1.connections');
    const r = await run('curl', [
      '-sS', '-v',
      '-H', `traceparent: ${tp}`,
      '-H', 'tracestate: congo=t61rcWkgMzE',
      '-H', 'X-B3-TraceId: 80f198ee56343ba864fe8b2a57d3eff7',
      `http://127.0.0.1:${proxy.port}/one`,
      `http://127.0.0.1:${proxy.port}/two`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /GET \/one 0\nGET \/two 0\n/);
    assert.match(r.stderr, /Re-using existing connection/);
    assert.equal(proxy.stats.get('http1.connections'), connsBefore + 1, 'both requests on one downstream connection');
    assert.equal(seen.length, 2);
    for (const s of seen) {
      const h = s.rawHeaders;
      assert.equal(h[h.indexOf('traceparent') + 1], tp);
      assert.equal(h[h.indexOf('tracestate') + 1], 'congo=t61rcWkgMzE');
      assert.equal(h[h.indexOf('X-B3-TraceId') + 1], '80f198ee56343ba864fe8b2a57d3eff7');
      const id = h[h.indexOf('x-request-id') + 1] ?? '';
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    assert.notEqual(seen[0]?.rawHeaders.at(-1), seen[1]?.rawHeaders.at(-1));
  });

  test('an x-request-id sent by the client is kept', async () => {
    seen.length = 0;
    const r = await run('curl', ['-sS', '-H', 'X-Request-Id: client-id-1', `http://127.0.0.1:${proxy.port}/id`]);
    assert.equal(r.code, 0, r.stderr);
    const h = seen[0]?.rawHeaders ?? [];
    assert.equal(h.filter((x) => x.toLowerCase() === 'x-request-id').length, 1);
    assert.equal(h[h.indexOf('X-Request-Id') + 1], 'client-id-1');
  });

  test('curl: chunked upload arrives chunked with the same bytes', async () => {
    seen.length = 0;
    const body = 'x'.repeat(200_000);
    const r = await run('curl', ['-sS', '-H', 'Transfer-Encoding: chunked', '--data-binary', '@-', `http://127.0.0.1:${proxy.port}/upload`], 15_000, body);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'POST /upload 200000\n');
    const h = seen[0]?.rawHeaders ?? [];
    assert.equal(h[h.findIndex((x) => x.toLowerCase() === 'transfer-encoding') + 1], 'chunked');
    assert.equal(seen[0]?.body.toString(), body);
  });

  test('curl: Expect: 100-continue is forwarded and the 100 relayed', async () => {
    seen.length = 0;
    const before = continues;
    const body = 'y'.repeat(5000);
    const r = await run('curl', [
      '-sS', '-v', '--expect100-timeout', '30',
      '-H', 'Expect: 100-continue',
      '--data-binary', '@-',
      `http://127.0.0.1:${proxy.port}/expect`,
    ], 20_000, body);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(continues, before + 1, 'the backend saw the expectation');
    assert.match(r.stderr, /< HTTP\/1\.1 100 Continue/);
    assert.equal(r.stdout, 'POST /expect 5000\n');
    assert.equal(seen[0]?.body.length, 5000);
  });

  test('trailers: request trailers reach the backend, response trailers reach the client', async () => {
    seen.length = 0;
    const req =
      'POST /trailers HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTrailer: X-Req-Sum\r\nConnection: close\r\n\r\n' +
      '5\r\nhello\r\n0\r\nX-Req-Sum: 42\r\n\r\n';
    const r = await rawExchange(proxy.port, req);
    assert.deepEqual(seen[0]?.rawTrailers, ['X-Req-Sum', '42']);
    assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(r.text, /\r\n\r\n6\r\npart1,\r\n5\r\npart2\r\n0\r\nx-checksum: abc123\r\n\r\n$/);
  });

  test('HEAD and 204 responses carry no body; the connection stays usable', async () => {
    const s = net.connect(proxy.port, '127.0.0.1');
    s.on('error', () => {});
    await once(s, 'connect');
    s.write('HEAD /head HTTP/1.1\r\nHost: h\r\n\r\n');
    const a = await readUntil(s, (t) => t.includes('\r\n\r\n'));
    assert.match(a, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(a.endsWith('\r\n\r\n'), 'no body after the HEAD response head');
    s.write('GET /no-content HTTP/1.1\r\nHost: h\r\n\r\n');
    const b = await readUntil(s, (t) => t.includes('\r\n\r\n'));
    assert.match(b, /^HTTP\/1\.1 204 No Content\r\n/);
    s.write('GET /after HTTP/1.1\r\nHost: h\r\n\r\n');
    const c = await readUntil(s, (t) => t.includes('GET /after 0\n'));
    assert.match(c, /^HTTP\/1\.1 200 OK\r\n/);
    s.destroy();
  });

  test('pipelined requests are answered in order', async () => {
    const reqs = ['/p1', '/p2', '/p3'].map((p) => `GET ${p} HTTP/1.1\r\nHost: p\r\n\r\n`).join('');
    const s = net.connect(proxy.port, '127.0.0.1');
    s.on('error', () => {});
    await once(s, 'connect');
    s.write(reqs);
    const all = await readUntil(s, (t) => t.includes('GET /p3 0\n'));
    const order = [...all.matchAll(/GET (\/p\d) 0\n/g)].map((m) => m[1]);
    assert.deepEqual(order, ['/p1', '/p2', '/p3']);
    s.destroy();
  });

  test('a half-closed client still gets its response', async () => {
    const r = await rawExchange(proxy.port, 'GET /half HTTP/1.1\r\nHost: h\r\n\r\n', 3_000, true);
    assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*GET \/half 0\n/);
    assert.equal(r.closed, true);
  });

  test('a 4 MiB response streams through with backpressure', async () => {
    const r = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download}', `http://127.0.0.1:${proxy.port}/big`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, String(64 * 65536));
  });

  test('a 60 KiB header passes; a 70 KiB one is refused with 431', async () => {
    seen.length = 0;
    const ok = await rawExchange(proxy.port, `GET /h60 HTTP/1.1\r\nHost: h\r\nX-Big: ${'a'.repeat(60 * 1024)}\r\nConnection: close\r\n\r\n`);
    assert.match(ok.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.rawHeaders[seen[0].rawHeaders.indexOf('X-Big') + 1]?.length, 60 * 1024);
    const big = await rawExchange(proxy.port, `GET /h70 HTTP/1.1\r\nHost: h\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`);
    assert.match(big.text, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    assert.match(big.text, /\r\nx-remora-error: header-too-large\r\n/);
    assert.equal(big.closed, true);
    assert.equal(seen.length, 1, 'the refused request never reached the backend');
  });
});

describe('HTTP/1.1 passthrough with a raw-socket backend (byte-exact checks)', () => {
  let backend: net.Server;
  let proxy: ProxyUnderTest;
  const heads: string[] = [];
  let reply = (_head: string): string => 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

  before(async () => {
    backend = net.createServer((s) => {
      s.on('error', () => {});
      let buf = '';
      s.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.slice(0, end + 4);
          buf = buf.slice(end + 4);
          heads.push(head);
          const out = reply(head);
          if (out.endsWith('<close>')) s.end(out.slice(0, -7));
          else s.write(out);
        }
      });
    });
    const port = await listen(backend);
    proxy = await startProxy({ address: '127.0.0.1', port });
  });

  after(async () => {
    await proxy.close();
    backend.close();
  });

  test('request header names keep their case and order; duplicates stay separate', async () => {
    heads.length = 0;
    reply = () => 'HTTP/1.1 200 OK\r\nX-Resp-CASE: a\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok';
    const r = await rawExchange(
      proxy.port,
      'GET /case HTTP/1.1\r\nHost: c\r\nX-MiXeD-Case: 1\r\nzeta: 2\r\nAlpha: 3\r\nX-MiXeD-Case: 4\r\nCoNtEnT-TyPe: text/x\r\nConnection: close\r\n\r\n',
    );
    const lines = (heads[0] ?? '').split('\r\n');
    assert.equal(lines[0], 'GET /case HTTP/1.1');
    assert.deepEqual(lines.slice(1, 7), ['Host: c', 'X-MiXeD-Case: 1', 'zeta: 2', 'Alpha: 3', 'X-MiXeD-Case: 4', 'CoNtEnT-TyPe: text/x']);
    assert.match(lines[7] ?? '', /^x-request-id: /);
    assert.match(r.text, /\r\nX-Resp-CASE: a\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\n/);
  });

  test('hop-by-hop fields are removed, TE keeps only trailers, no framing header is invented', async () => {
    heads.length = 0;
    reply = () => 'HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=30\r\nContent-Length: 2\r\n\r\nok';
    const r = await rawExchange(
      proxy.port,
      'POST /hop HTTP/1.1\r\nHost: h\r\nConnection: X-Foo, keep-alive\r\nX-Foo: bar\r\nX-Keep: 1\r\nKeep-Alive: timeout=5\r\n' +
        'Proxy-Connection: keep-alive\r\nTE: trailers, deflate\r\nContent-Length: 0\r\n\r\n',
      1_000,
    );
    const head = heads[0] ?? '';
    assert.doesNotMatch(head, /X-Foo|Keep-Alive|Proxy-Connection|Connection/i);
    assert.match(head, /\r\nX-Keep: 1\r\n/);
    assert.match(head, /\r\nTE: trailers\r\n/);
    assert.match(head, /\r\nContent-Length: 0\r\n/, 'Content-Length: 0 is preserved');
    assert.doesNotMatch(head, /Transfer-Encoding/i);
    assert.doesNotMatch(r.text, /X-Hop|timeout=30/);
  });

  test('a close-delimited response is relayed completely', async () => {
    reply = () => 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close body<close>';
    const r = await rawExchange(proxy.port, 'GET /eof HTTP/1.1\r\nHost: e\r\nConnection: close\r\n\r\n');
    assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(r.text.includes('until-close body'));
  });

  test('an upstream Connection: close is propagated to the client', async () => {
    reply = () => 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok<close>';
    const r = await rawExchange(proxy.port, 'GET /close HTTP/1.1\r\nHost: e\r\n\r\n', 3_000);
    assert.match(r.text, /\r\nConnection: close\r\n/i);
    assert.equal(r.closed, true);
  });

  test('an invalid upstream response becomes 502 upstream-reset', async () => {
    reply = () => 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok<close>';
    const r = await rawExchange(proxy.port, 'GET /bad HTTP/1.1\r\nHost: e\r\nConnection: close\r\n\r\n');
    assert.match(r.text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    assert.match(r.text, /\r\nx-remora-error: upstream-reset\r\n/);
  });
});

describe('HTTP/1.1 local replies', () => {
  test('connection refused upstream -> 503 upstream-connect-failure', async () => {
    const dead = net.createServer();
    const port = await listen(dead);
    dead.close();
    await once(dead, 'close');
    const proxy = await startProxy({ address: '127.0.0.1', port });
    try {
      const r = await run('curl', ['-sS', '-i', `http://127.0.0.1:${proxy.port}/x`]);
      assert.match(r.stdout, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      assert.match(r.stdout, /\r\nx-remora-error: upstream-connect-failure\r\n/);
      assert.equal(proxy.stats.get('http.local_replies.upstream-connect-failure'), 1);
      assert.equal(proxy.stats.get('errors.ECONNREFUSED'), 1);
    } finally {
      await proxy.close();
    }
  });
});

describe('HTTP/1.1 shutdown', () => {
  test('idle connections close at once; a request in flight completes with Connection: close; nothing is left', async () => {
    const received: string[] = [];
    const backend = http.createServer((req, res) => {
      received.push(req.url ?? '');
      req.resume();
      setTimeout(() => res.end(`late ${req.url}\n`), 150);
    });
    const port = await listen(backend);
    const proxy = await startProxy({ address: '127.0.0.1', port });
    try {
      const idle = net.connect(proxy.port, '127.0.0.1');
      idle.on('error', () => {});
      await once(idle, 'connect');
      idle.write('GET /idle HTTP/1.1\r\nHost: h\r\n\r\n');
      await readUntil(idle, (t) => t.includes('late /idle\n'));
      const busy = net.connect(proxy.port, '127.0.0.1');
      busy.on('error', () => {});
      await once(busy, 'connect');
      busy.write('GET /busy HTTP/1.1\r\nHost: h\r\n\r\n');
      await waitFor(() => received.includes('/busy'), 'the busy request to reach the upstream');
      const idleClosed = once(idle, 'end');
      const answer = readUntil(busy, (t) => t.includes('late /busy\n'));
      const shut = proxy.engine.shutdown(5_000);
      await idleClosed;
      const text = await answer;
      assert.match(text, /\r\nConnection: close\r\n/i);
      busy.end();
      idle.end();
      await shut;
      assert.equal(proxy.engine.activeConnections, 0);
      assert.deepEqual(proxy.engine.poolSnapshot(), { http1Pools: 0, http1Connections: 0, http1Idle: 0, http2Pools: 0, http2Sessions: 0 });
    } finally {
      await proxy.close();
      backend.closeAllConnections();
      backend.close();
    }
  });
});
