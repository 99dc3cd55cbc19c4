// Request smuggling and malformed requests over raw sockets: every one is answered 400 by the proxy itself
// (x-remora-error: request-smuggling or bad-request), the connection is closed, and nothing reaches the backend.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { listen, rawExchange, startProxy, type ProxyUnderTest } from './harness.js';

const SMUGGLING: Record<string, string> = {
  'Content-Length and Transfer-Encoding': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n',
  'Transfer-Encoding and Content-Length': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n',
  'duplicate different Content-Length': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde',
  'duplicate identical Content-Length': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd',
  'Content-Length list': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 5\r\n\r\nabcde',
  'signed Content-Length': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\nabcd',
  'chunked not last': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
  'unknown transfer coding': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
  'Transfer-Encoding in HTTP/1.0': 'POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
};

// Framing errors inside a chunked body. When they arrive with the head (one write here), llhttp reports them before
// the request is dispatched; when they arrive later the head may already be upstream: the upstream request is then
// aborted (its connection destroyed, never reused), so the backend never sees a complete or a smuggled request.
const BODY_ERRORS: Record<string, string> = {
  'bad chunk size': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n',
  'chunk size overflow': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nabcd\r\n0\r\n\r\n',
  'chunk size with trailing space': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4 \r\nabcd\r\n0\r\n\r\n',
  'chunk data longer than its size': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdef\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n',
  'bare LF in chunked framing': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\nabcd\n0\n\n',
};

const BAD: Record<string, string> = {
  'obs-fold': 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n',
  'space before colon': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
  'invalid header name': 'GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n',
  'NUL in a value': 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n',
  'bare CR in a value': 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n',
  'bare LF line ends': 'GET / HTTP/1.1\nHost: a\n\n',
  'missing Host in HTTP/1.1': 'GET / HTTP/1.1\r\nX-A: b\r\n\r\n',
  'two Host fields': 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
  'space in the request-target': 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n',
  'HTTP/2.0 request line': 'GET / HTTP/2.0\r\nHost: a\r\n\r\n',
  'unknown HTTP version': 'GET / HTTP/1.2\r\nHost: a\r\n\r\n',
};

describe('HTTP/1.1 request smuggling and malformed requests', () => {
  let backend: http.Server;
  let proxy: ProxyUnderTest;
  let reached = 0;
  let completed = 0;
  const paths: string[] = [];

  before(async () => {
    backend = http.createServer((req, res) => {
      reached++;
      paths.push(req.url ?? '');
      req.resume();
      req.on('end', () => {
        completed++;
        res.end('reached\n');
      });
    });
    const port = await listen(backend);
    proxy = await startProxy({ address: '127.0.0.1', port });
  });

  after(async () => {
    await proxy.close();
    backend.closeAllConnections();
    backend.close();
  });

  for (const [name, raw] of Object.entries(SMUGGLING)) {
    test(`refused as smuggling: ${name}`, async () => {
      const before = reached;
      const r = await rawExchange(proxy.port, raw);
      assert.match(r.text, /^HTTP\/1\.1 400 Bad Request\r\n/, r.text);
      assert.match(r.text, /\r\nx-remora-error: request-smuggling\r\n/i, r.text);
      assert.equal(r.closed, true, 'the connection is closed');
      assert.equal(reached, before, 'nothing reached the backend');
      assert.doesNotMatch(r.text, /reached/);
    });
  }

  for (const [name, raw] of Object.entries(BODY_ERRORS)) {
    test(`refused as smuggling (body framing): ${name}`, async () => {
      const before = completed;
      const r = await rawExchange(proxy.port, raw);
      assert.match(r.text, /^HTTP\/1\.1 400 Bad Request\r\n/, r.text);
      assert.match(r.text, /\r\nx-remora-error: request-smuggling\r\n/i, r.text);
      assert.equal(r.closed, true, 'the connection is closed');
      assert.equal(completed, before, 'no request completed at the backend');
      assert.ok(!paths.includes('/smuggled'), 'the smuggled request never reached the backend');
    });
  }

  for (const [name, raw] of Object.entries(BAD)) {
    test(`refused as a bad request: ${name}`, async () => {
      const before = reached;
      const r = await rawExchange(proxy.port, raw);
      assert.match(r.text, /^HTTP\/1\.1 400 Bad Request\r\n/, r.text);
      assert.match(r.text, /\r\nx-remora-error: (bad-request|request-smuggling)\r\n/i, r.text);
      assert.equal(r.closed, true, 'the connection is closed');
      assert.equal(reached, before, 'nothing reached the backend');
    });
  }

  test('a valid request on the same listener still works', async () => {
    const r = await rawExchange(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*reached\n$/);
  });
});
