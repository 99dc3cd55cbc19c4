// The raw-socket HTTP/1.1 engine's own behaviour over loopback (beyond what http1-passthrough checks): a request
// answered before its body was read leaves the connection usable, refusals wait for the earlier pipelined answers,
// HTTP/1.0 framing, the headers timeout (408) and the idle timeout of the engine's sweep, and no framing invented for
// bodyless answers. Its connections read without node:stream (direct reads): every one is counted so, and a body the
// backend does not take stops the reads from the client until it does, and a connection that must stay paused from
// its first bytes on (more pipelined requests than the engine takes at once) is not read at the socket meanwhile.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { localReply } from '../../../src/l7/local-reply.js';
import { HTTP2_CODECS, PASSTHROUGH_DECISION, fakeCluster, listen, passthroughCluster, rawExchange, readUntil, startProxy, waitFor, type ProxyUnderTest } from './harness.js';

function connect(port: number): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  return once(s, 'connect').then(() => s);
}

describe('HTTP/1.1 raw-socket engine', () => {
  let backend: http.Server;
  let proxy: ProxyUnderTest;
  const bodies: string[] = [];

  before(async () => {
    backend = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (d: string) => { body += d; });
      req.on('end', () => {
        bodies.push(`${req.url ?? ''}:${body}`);
        if (req.url === '/slow') setTimeout(() => res.end(`slow ${body}\n`), 100);
        else if (req.url === '/empty') { res.writeHead(204); res.end(); }
        else res.end(`${req.method ?? ''} ${req.url ?? ''} ${body}\n`);
      });
    });
    const port = await listen(backend);
    const route = (h: { path: string }) =>
      h.path === '/denied' ? { kind: 'reply' as const, reply: localReply('no-route') } : PASSTHROUGH_DECISION;
    const passthrough = passthroughCluster();
    proxy = await startProxy({ address: '127.0.0.1', port }, { route, cluster: () => passthrough });
  });

  after(async () => {
    await proxy.close();
    backend.closeAllConnections();
    backend.close();
  });

  test('a request answered before its body was read: the body is dropped, the next request on the connection is served', async () => {
    const s = await connect(proxy.port);
    // Body with the head, then a pipelined request.
    s.write('POST /denied HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /after1 HTTP/1.1\r\nHost: h\r\n\r\n');
    const a = await readUntil(s, (t) => t.includes('GET /after1 \n'));
    assert.match(a, /^HTTP\/1\.1 404 Not Found\r\n[\s\S]*x-remora-error: no-route\r\n[\s\S]*HTTP\/1\.1 200 OK\r\n/);
    // The body arriving after the answer (a chunked one, in pieces).
    s.write('POST /denied HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n');
    await readUntil(s, (t) => t.includes('x-remora-error: no-route'));
    s.write('5\r\nhello\r\n');
    s.write('0\r\n\r\nGET /after2 HTTP/1.1\r\nHost: h\r\n\r\n');
    const b = await readUntil(s, (t) => t.includes('GET /after2 \n'));
    assert.match(b, /HTTP\/1\.1 200 OK\r\n/);
    assert.ok(!bodies.some((x) => x.startsWith('/denied')), 'nothing of the refused requests reached the backend');
    s.destroy();
  });

  test('a refusal pipelined behind a slow request is sent after its answer, then the connection closes', async () => {
    const r = await rawExchange(proxy.port, 'GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\nBad Name: 1\r\n\r\n', 3_000);
    assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*slow \n[\s\S]*HTTP\/1\.1 400 Bad Request\r\n[\s\S]*x-remora-error: bad-request\r\n/);
    assert.equal(r.closed, true);
  });

  test('a request body is forwarded exactly (Content-Length and chunked, both pipelined)', async () => {
    const r = await rawExchange(
      proxy.port,
      'POST /cl HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc' +
        'POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n' +
        'GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n',
      3_000,
    );
    const order = [...r.text.matchAll(/(POST|GET) (\/\w+) (\w*)\n/g)].map((m) => `${m[2] as string}:${m[3] as string}`);
    assert.deepEqual(order, ['/cl:abc', '/chunked:def', '/last:']);
    assert.equal(r.closed, true, 'Connection: close ends the connection after its answer');
  });

  test('HTTP/1.0: close-delimited without keep-alive; keep-alive with a length when asked', async () => {
    const plain = await rawExchange(proxy.port, 'GET /ten HTTP/1.0\r\nHost: h\r\n\r\n', 3_000);
    assert.match(plain.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(plain.text, /\r\nConnection: close\r\n/i);
    assert.doesNotMatch(plain.text, /Transfer-Encoding/i);
    assert.ok(plain.text.endsWith('GET /ten \n'));
    assert.equal(plain.closed, true);
    const s = await connect(proxy.port);
    s.write('GET /ka HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n');
    const ka = await readUntil(s, (t) => t.endsWith('GET /ka \n'));
    assert.match(ka, /\r\nConnection: keep-alive\r\n/);
    s.write('GET /ka2 HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n');
    await readUntil(s, (t) => t.endsWith('GET /ka2 \n'));
    s.destroy();
  });

  test('bodyless answers (204, HEAD) carry no invented framing and keep the connection', async () => {
    const s = await connect(proxy.port);
    s.write('GET /empty HTTP/1.1\r\nHost: h\r\n\r\n');
    const a = await readUntil(s, (t) => t.includes('\r\n\r\n'));
    assert.match(a, /^HTTP\/1\.1 204 No Content\r\n/);
    assert.doesNotMatch(a, /Transfer-Encoding|Content-Length/i);
    s.write('HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n');
    const b = await readUntil(s, (t) => t.includes('\r\n\r\n'));
    assert.match(b, /^HTTP\/1\.1 200 OK\r\n/);
    s.write('GET /again HTTP/1.1\r\nHost: h\r\n\r\n');
    await readUntil(s, (t) => t.includes('GET /again \n'));
    s.destroy();
  });

  test('every connection handed over reads directly (no node:stream Readable on the way); on handles, with no socket', () => {
    const conns = proxy.stats.get('http1.connections');
    assert.ok(conns > 0);
    assert.equal(proxy.stats.get('http1.direct_reads'), conns);
    // The suite runs twice: on sockets, and with L7_DOWNSTREAM=handle (on-handles/) on the accepted TCP handles.
    assert.equal(proxy.stats.get('http1.tcp_handles'), process.env['L7_DOWNSTREAM'] === 'handle' ? conns : 0);
  });
});

describe('HTTP/1.1 engine: a request body the backend does not read', () => {
  test('reads from the client stop while the body waits, and the body arrives whole once the backend reads', { timeout: 30_000 }, async (t) => {
    let held: { req: http.IncomingMessage; res: http.ServerResponse } | undefined;
    const backend = http.createServer((req, res) => {
      req.pause();
      held = { req, res };
    });
    const port = await listen(backend);
    const proxy = await startProxy({ address: '127.0.0.1', port });
    t.after(async () => {
      await proxy.close();
      backend.closeAllConnections();
      backend.close();
    });
    // Larger than every kernel buffer on the way (client send, proxy receive and send, backend receive).
    const body = Buffer.alloc(48 << 20);
    for (let i = 0; i < body.length; i += 4) body.writeUInt32LE(i, i);
    const digest = createHash('sha256').update(body).digest('hex');
    const s = await connect(proxy.port);
    t.after(() => { s.destroy(); });
    s.write(`POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n`);
    s.write(body);
    await waitFor(() => held !== undefined && proxy.downstreamPaused(), 'the engine to stop reading the client', 20_000);
    const read = proxy.downstreamBytesRead();
    // Stopped at the socket, not only in the engine: bytes wait in the kernel, so a read would happen within a turn.
    for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
    assert.equal(proxy.downstreamBytesRead(), read, 'no read while the body waits');
    assert.ok(read < body.length, `read ${read} of ${body.length}`);
    const h = held as unknown as { req: http.IncomingMessage; res: http.ServerResponse };
    const hash = createHash('sha256');
    h.req.on('data', (d: Buffer) => hash.update(d));
    h.req.on('end', () => { h.res.end(`got ${hash.digest('hex')}\n`); });
    h.req.resume();
    const answer = await readUntil(s, (text) => text.endsWith('\n') && text.includes('got '), 20_000);
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(answer.endsWith(`got ${digest}\n`), answer.slice(-80));
  });
});

describe('HTTP/1.1 engine timers (one sweep per engine)', () => {
  test('a head not complete within the headers timeout gets 408 and the connection closes', async () => {
    const proxy = await startProxy({ address: '127.0.0.1', port: 9 }, {}, { headersTimeoutMs: 200 });
    try {
      const s = await connect(proxy.port);
      const closed = once(s, 'end');
      s.write('GET / HTTP/1.1\r\nHost: h\r\n'); // never finished
      const text = await readUntil(s, (t) => t.includes('request-timeout: '), 5_000);
      assert.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*x-remora-error: request-timeout\r\n/);
      await closed;
      assert.equal(proxy.stats.get('http.local_replies.request-timeout'), 1);
    } finally {
      await proxy.close();
    }
  });

  test('an idle keep-alive connection is closed after the idle timeout', async () => {
    const backend = http.createServer((req, res) => { req.resume(); res.end('ok'); });
    const port = await listen(backend);
    const proxy = await startProxy({ address: '127.0.0.1', port }, {}, { downstreamIdleTimeoutMs: 200 });
    try {
      const s = await connect(proxy.port);
      const ended = once(s, 'end');
      s.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
      await readUntil(s, (t) => t.endsWith('ok'));
      s.resume();
      await ended; // closed by the proxy, not by the test
      await proxy.engine.whenEmpty();
    } finally {
      await proxy.close();
      backend.closeAllConnections();
      backend.close();
    }
  });
});

describe('HTTP/1.1 raw-socket engine: reads stopped at the hand-over', () => {
  test('32 pipelined requests in the first bytes: the socket stops reading until answers go out', async (t) => {
    const held: http.ServerResponse[] = [];
    const backend = http.createServer((req, res) => { req.resume(); held.push(res); });
    const port = await listen(backend);
    const proxy = await startProxy({ address: '127.0.0.1', port }, { cluster: () => passthroughCluster() });
    t.after(async () => { await proxy.close(); backend.closeAllConnections(); backend.close(); });
    const s = await connect(proxy.port);
    t.after(() => s.destroy());
    let got = '';
    s.setEncoding('latin1').on('data', (d: string) => { got += d; });
    s.write('GET /p HTTP/1.1\r\nHost: h\r\n\r\n'.repeat(40));
    await waitFor(() => held.length === 32, 'the backend to hold the first 32 requests');
    // Let every tick the first read scheduled run before looking at the handle.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.equal(proxy.downstreamReading(), false, 'the socket is not read while 32 requests wait for answers');
    for (let i = 0; i < 100 && held.length < 40; i++) {
      for (const res of held.splice(0)) res.end('ok');
      await waitFor(() => held.length > 0 || (got.match(/HTTP\/1\.1 200/g) ?? []).length === 40, 'more requests or every answer');
    }
    for (const res of held.splice(0)) res.end('ok');
    await waitFor(() => (got.match(/HTTP\/1\.1 200/g) ?? []).length === 40, 'all 40 answers');
  });
});

describe('HTTP/1.1 raw-socket engine: a response head that arrives before its body', () => {
  // The engine holds a response head back to send it with the first body chunk (one write). When the body is not in
  // the read that brought the head, the head must still reach the client at once: here the backend sends the body only
  // after the client has received the head, so a head held until the body would never arrive (the test times out).
  const cases = [{ upstream: 'http1' as const, codec: 'remora' as const }, ...HTTP2_CODECS.map((codec) => ({ upstream: 'http2' as const, codec }))];
  for (const { upstream, codec } of cases) {
    test(`${upstream} upstream${upstream === 'http2' ? ` (http2_codec = ${codec})` : ''}: the head reaches the client before the body is sent`, async (t) => {
      let sendBody: (() => void) | undefined;
      const handler = (_req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void => {
        res.writeHead(200, { 'content-length': '5', 'x-head': 'first' });
        // Node's servers send a head on its own only with flushHeaders() (or a write).
        if ('flushHeaders' in res) res.flushHeaders();
        sendBody = () => { res.end('later'); };
      };
      const backend = upstream === 'http1' ? http.createServer(handler) : http2.createServer(handler);
      const port = await listen(backend);
      const cluster = fakeCluster({ name: `late-body-${upstream}`, protocol: upstream, pick: () => ({ address: '127.0.0.1', port }) });
      const proxy = await startProxy({ address: '127.0.0.1', port }, { route: () => PASSTHROUGH_DECISION, cluster: () => cluster }, { http2Codec: codec });
      t.after(async () => {
        await proxy.close();
        if (backend instanceof http.Server) backend.closeAllConnections();
        backend.close();
      });
      const s = await connect(proxy.port);
      t.after(() => s.destroy());
      s.write('GET /late HTTP/1.1\r\nHost: h\r\n\r\n');
      const head = await readUntil(s, (all) => all.includes('\r\n\r\n'));
      assert.match(head, /^HTTP\/1\.1 200 OK\r\n[\s\S]*x-head: first\r\n/);
      assert.ok(!head.includes('later'), 'the body was not sent yet');
      assert.ok(sendBody !== undefined, 'the backend holds the response');
      sendBody();
      const rest = await readUntil(s, (all) => all.includes('later'));
      assert.equal(rest.endsWith('later'), true);
    });
  }
});
