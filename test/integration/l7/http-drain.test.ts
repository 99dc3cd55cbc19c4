// The engines' drain (issue 12), on loopback: a request read during the drain is always answered, with Connection:
// close (HTTP/1.1) or followed by GOAWAY (HTTP/2); connections handed over during the drain are served; at the end of
// the grace (closeIdle) an idle keep-alive connection is closed but one holding unanswered request bytes is not.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { HTTP2_CODECS, listen, readUntil, startProxy, waitFor, type ProxyUnderTest } from './harness.js';

function connect(port: number): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  return once(s, 'connect').then(() => s);
}

describe('HTTP/1.1 drain', () => {
  let backend: http.Server;
  let port: number;

  before(async () => {
    backend = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => { res.end(`hello ${req.url ?? ''}\n`); });
    });
    port = await listen(backend);
  });
  after(() => {
    backend.closeAllConnections();
    backend.close();
  });

  test('a request on a connection that was idle when the drain began is answered, with Connection: close', async () => {
    const proxy = await startProxy({ address: '127.0.0.1', port });
    try {
      const s = await connect(proxy.port);
      s.write('GET /before HTTP/1.1\r\nHost: h\r\n\r\n');
      const first = await readUntil(s, (t) => t.includes('hello /before\n'));
      assert.doesNotMatch(first, /connection: close/i);
      proxy.engine.drain();
      // The keep-alive connection is not closed under the client: its next request is read and answered.
      const closed = once(s, 'end');
      s.write('GET /during HTTP/1.1\r\nHost: h\r\n\r\n');
      const second = await readUntil(s, (t) => t.includes('hello /during\n'));
      assert.match(second, /\r\nConnection: close\r\n/i);
      await closed; // the proxy closes it after that answer
      s.destroy();
      // A connection handed over during the drain is served too.
      const late = await connect(proxy.port);
      late.write('GET /late HTTP/1.1\r\nHost: h\r\n\r\n');
      const third = await readUntil(late, (t) => t.includes('hello /late\n'));
      assert.match(third, /\r\nConnection: close\r\n/i);
      late.destroy();
    } finally {
      await proxy.close();
    }
  });

  test('closeIdle closes an idle connection and never one whose request bytes were read but not answered', async () => {
    const proxy: ProxyUnderTest = await startProxy({ address: '127.0.0.1', port });
    try {
      const idle = await connect(proxy.port);
      idle.write('GET /idle HTTP/1.1\r\nHost: h\r\n\r\n');
      await readUntil(idle, (t) => t.includes('hello /idle\n'));
      const busy = await connect(proxy.port);
      busy.write('GET /first HTTP/1.1\r\nHost: h\r\n\r\n');
      await readUntil(busy, (t) => t.includes('hello /first\n'));
      // Half a request head on `busy`: read by the proxy, not answerable yet.
      await waitFor(() => proxy.stats.get('http1.connections') === 2, 'both connections handed over');
      const before = proxy.downstreamBytesRead();
      const half = 'GET /half HTTP/1.1\r\n';
      busy.write(half);
      await waitFor(() => proxy.downstreamBytesRead() === before + half.length, 'the proxy to read the half request head');
      const idleClosed = once(idle, 'end'); // the client keeps its half open (allowHalfOpen)
      proxy.engine.closeIdle();
      await idleClosed;
      assert.equal(proxy.stats.get('http1.drain_idle_closed'), 1);
      assert.equal(busy.destroyed, false, 'the connection with unanswered bytes stays');
      busy.write('Host: h\r\n\r\n');
      const answer = await readUntil(busy, (t) => t.includes('hello /half\n'));
      assert.match(answer, /\r\nConnection: close\r\n/i);
      busy.destroy();
      await proxy.engine.whenEmpty();
    } finally {
      await proxy.close();
    }
  });

  test('a pipelined half request read with the previous one is not taken for idle: it is answered after closeIdle', async () => {
    const proxy = await startProxy({ address: '127.0.0.1', port });
    try {
      const s = await connect(proxy.port);
      // One write: the first request and the start of the second arrive together, before the first answer ends, so
      // the bytes count of the last answer already includes them; the parser still holds the half request.
      const first = 'GET /one HTTP/1.1\r\nHost: h\r\n\r\n';
      const half = 'GET /two HTTP/1.1\r\n';
      s.write(first + half);
      await readUntil(s, (t) => t.includes('hello /one\n'));
      await waitFor(() => proxy.downstreamBytesRead() === first.length + half.length, 'the proxy to read both');
      proxy.engine.closeIdle();
      assert.equal(proxy.stats.get('http1.drain_idle_closed'), 0, 'not closed as idle');
      s.write('Host: h\r\n\r\n');
      const answer = await readUntil(s, (t) => t.includes('hello /two\n'));
      assert.match(answer, /\r\nConnection: close\r\n/i);
      s.destroy();
    } finally {
      await proxy.close();
    }
  });
});

for (const codec of HTTP2_CODECS) describe(`HTTP/2 drain (http2_codec = ${codec})`, () => {
  let backend: http2.Http2Server;
  let port: number;

  before(async () => {
    backend = http2.createServer();
    backend.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      const send = (): void => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200 });
        stream.end(`h2 ${String(headers[':path'])}\n`);
      };
      if (String(headers[':path']).startsWith('/slow')) setTimeout(send, 300);
      else send();
    });
    port = await listen(backend as unknown as net.Server);
  });
  after(() => { backend.close(); });

  function get(session: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const st = session.request({ ':path': path });
      let status = 0;
      let body = '';
      st.on('response', (h) => { status = Number(h[':status']); });
      st.setEncoding('utf8').on('data', (d: string) => { body += d; });
      st.on('end', () => { resolve({ status, body }); });
      st.on('error', reject);
      st.end();
    });
  }

  test('a session open when the drain begins gets GOAWAY and finishes its stream; a new session is served, then told to go', async () => {
    const proxy = await startProxy({ address: '127.0.0.1', port }, {}, { http2Codec: codec });
    try {
      const a = http2.connect(`http://127.0.0.1:${proxy.port}`);
      a.on('error', () => {});
      assert.deepEqual(await get(a, '/one'), { status: 200, body: 'h2 /one\n' });
      const inflight = get(a, '/slow');
      await waitFor(() => proxy.stats.get('http.requests') >= 2, 'the slow stream to reach the engine');
      const goawayA = once(a, 'goaway');
      proxy.engine.drain();
      await goawayA;
      assert.deepEqual(await inflight, { status: 200, body: 'h2 /slow\n' });

      const b = http2.connect(`http://127.0.0.1:${proxy.port}`);
      b.on('error', () => {});
      const goawayB = once(b, 'goaway');
      assert.deepEqual(await get(b, '/new'), { status: 200, body: 'h2 /new\n' });
      await goawayB;
      a.close();
      b.close();
      await proxy.engine.whenEmpty();
    } finally {
      await proxy.close();
    }
  });
});
