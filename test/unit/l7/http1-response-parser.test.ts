import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ParseError, ResponseParser, type ResponseHead } from '../../../src/l7/pool/http1-response-parser.js';
import { decimalValue } from '../../../src/l7/http/http1-syntax.js';

interface Result {
  heads: ResponseHead[];
  body: string;
  trailers: string[] | undefined;
  consumed: number;
}

/** Feed `text` in pieces of `step` bytes (to exercise every split point). */
function parse(text: string, method = 'GET', step = 0, upgrade = false): Result {
  const r: Result = { heads: [], body: '', trailers: undefined, consumed: 0 };
  const p = new ResponseParser(
    {
      onHead: (h) => r.heads.push(h),
      onBody: (c) => {
        r.body += c.toString('latin1');
      },
      onComplete: (t) => {
        r.trailers = t;
      },
    },
    { maxHeadBytes: 1024 },
  );
  p.expect(method, upgrade);
  const buf = Buffer.from(text, 'latin1');
  if (step <= 0) {
    r.consumed = p.execute(buf);
    return r;
  }
  for (let i = 0; i < buf.length; i += step) {
    const n = p.execute(buf.subarray(i, i + step));
    r.consumed = i + n;
    if (p.done) break;
  }
  return r;
}

test('content-length body, any split', () => {
  const text = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello';
  for (const step of [0, 1, 2, 3, 7]) {
    const r = parse(text, 'GET', step);
    assert.equal(r.heads.length, 1);
    assert.equal(r.heads[0]?.statusCode, 200);
    assert.equal(r.heads[0]?.statusText, 'OK');
    assert.deepEqual(r.heads[0]?.headers, ['Content-Type', 'text/plain', 'Content-Length', '5']);
    assert.equal(r.body, 'hello');
    assert.deepEqual(r.trailers, []);
    assert.equal(r.heads[0]?.keepAlive, true);
  }
});

test('chunked body with extensions and trailers, any split', () => {
  const text = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n';
  for (const step of [0, 1, 2, 5]) {
    const r = parse(text, 'GET', step);
    assert.equal(r.body, 'hello world');
    assert.deepEqual(r.trailers, ['X-Sum', '1', 'X-Other', '2']);
    assert.equal(r.consumed, text.length);
  }
});

test('bytes after a complete response are not consumed', () => {
  const text = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1';
  const r = parse(text);
  assert.equal(r.consumed, text.length - 'HTTP/1.1'.length);
});

test('interim responses come before the final one', () => {
  const r = parse('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n');
  assert.deepEqual(r.heads.map((h) => h.statusCode), [100, 103, 204]);
  assert.deepEqual(r.trailers, []);
});

test('HEAD, 204 and 304 have no body whatever the headers say', () => {
  assert.deepEqual(parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', 'HEAD').trailers, []);
  assert.deepEqual(parse('HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n').trailers, []);
});

test('close-delimited body', () => {
  const r = parse('HTTP/1.1 200 OK\r\n\r\nuntil close');
  assert.equal(r.heads[0]?.framing, 'close');
  assert.equal(r.heads[0]?.keepAlive, false);
  assert.equal(r.body, 'until close');
  assert.equal(r.trailers, undefined);
});

test('101 is a tunnel only when an upgrade was asked for; CONNECT 2xx is a tunnel', () => {
  const up = parse('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframe', 'GET', 0, true);
  assert.equal(up.heads[0]?.framing, 'tunnel');
  assert.equal(up.consumed, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n'.length, 'the rest belongs to the tunnel');
  assert.throws(() => parse('HTTP/1.1 101 Switching Protocols\r\n\r\n'), ParseError);
  assert.equal(parse('HTTP/1.1 200 OK\r\n\r\n', 'CONNECT').heads[0]?.framing, 'tunnel');
});

test('keep-alive: Connection: close, HTTP/1.0, and the Keep-Alive timeout hint', () => {
  assert.equal(parse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').heads[0]?.keepAlive, false);
  assert.equal(parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').heads[0]?.keepAlive, false);
  assert.equal(parse('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').heads[0]?.keepAlive, true);
  assert.equal(parse('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n').heads[0]?.keepAliveHintMs, 5000);
  // The common single value, any case of the parameter name; a value that is not a number gives no hint.
  assert.equal(parse('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=30\r\nContent-Length: 0\r\n\r\n').heads[0]?.keepAliveHintMs, 30_000);
  assert.equal(parse('HTTP/1.1 200 OK\r\nKeep-Alive: Timeout=7\r\nContent-Length: 0\r\n\r\n').heads[0]?.keepAliveHintMs, 7_000);
  const noHint = parse('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=x\r\nContent-Length: 0\r\n\r\n').heads[0];
  assert.equal(noHint?.statusCode, 200);
  assert.equal(noHint.keepAliveHintMs, undefined);
  assert.equal(parse('HTTP/1.1 200 OK\r\nconnection: CLOSE\r\nContent-Length: 0\r\n\r\n').heads[0]?.keepAlive, false);
  assert.equal(parse('HTTP/1.0 200 OK\r\nCONNECTION: Keep-Alive\r\nContent-Length: 0\r\n\r\n').heads[0]?.keepAlive, true);
});

test('status line read in place: code, reason phrase, none', () => {
  const h = parse('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n').heads[0];
  assert.equal(h?.statusCode, 404);
  assert.equal(h?.statusText, 'Not Found');
  const bare = parse('HTTP/1.1 204\r\n\r\n').heads[0];
  assert.equal(bare?.statusCode, 204);
  assert.equal(bare?.statusText, '');
  for (const bad of ['HTTP/1.1 099 X\r\n\r\n', 'HTTP/1.1 2x0 OK\r\n\r\n', 'HTTP/1.1 200OK\r\n\r\n', 'HTTP/1.1 20\r\n\r\n']) {
    assert.throws(() => parse(bad), ParseError, JSON.stringify(bad));
  }
});

test('hopByHop says whether any field must be removed before the response goes on', () => {
  assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n').heads[0]?.hopByHop, false);
  for (const field of ['Connection: keep-alive', 'keep-alive: timeout=5', 'TE: trailers', 'Upgrade: h2c', 'Proxy-Connection: x', 'Transfer-Encoding: chunked']) {
    const text = `HTTP/1.1 200 OK\r\n${field}\r\n${field.startsWith('Transfer') ? '' : 'Content-Length: 0\r\n'}\r\n${field.startsWith('Transfer') ? '0\r\n\r\n' : ''}`;
    assert.equal(parse(text).heads[0]?.hopByHop, true, field);
  }
});

test('Transfer-Encoding wins over Content-Length, which is dropped, and the connection is not reused', () => {
  const r = parse('HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
  assert.equal(r.body, 'ok');
  assert.deepEqual(r.heads[0]?.headers, ['Transfer-Encoding', 'chunked']);
  assert.equal(r.heads[0]?.keepAlive, false);
});

test('malformed responses are rejected', () => {
  const bad = [
    'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', // bare LF
    'HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n', // obs-fold
    'HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip, chunked\r\n\r\n',
    'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
    'HTTP/2.0 200 OK\r\n\r\n',
    'HTTP/1.1 20 OK\r\n\r\n',
    'ICY 200 OK\r\n\r\n',
  ];
  for (const text of bad) assert.throws(() => parse(text), ParseError, JSON.stringify(text));
  assert.throws(() => parse(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(2000)}\r\n\r\n`), ParseError);
});

test('identical repeated Content-Length values are accepted', () => {
  assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok').body, 'ok');
});

test('decimalValue: 1 to 15 ASCII digits from an offset, anything else -1', () => {
  assert.equal(decimalValue('0'), 0);
  assert.equal(decimalValue('007'), 7);
  assert.equal(decimalValue('999999999999999'), 999_999_999_999_999);
  assert.equal(decimalValue('timeout=30', 8), 30);
  for (const bad of ['', '1000000000000000', '-1', '1 ', '1,1', '+1', '0x10', '\u0661']) assert.equal(decimalValue(bad), -1, JSON.stringify(bad));
  assert.equal(decimalValue('timeout=', 8), -1);
});

test('an upstream that does not speak HTTP/1.x fails on its first bytes, not when a head would end', () => {
  // Byte by byte: every prefix of a real status line waits for more; the first byte that cannot begin one fails.
  for (const step of [0, 1, 3]) {
    assert.doesNotThrow(() => parse('HTTP/1.1 200 OK\r\nContent-Le', 'GET', step));
    assert.doesNotThrow(() => parse('HTT', 'GET', step));
    assert.throws(() => parse('srv GET / HTTP/1.1\n', 'GET', step), ParseError);
    assert.throws(() => parse('220 remora-test ESMTP ready\r\n', 'GET', step), ParseError);
    assert.throws(() => parse('HTTP/2 200\r\n', 'GET', step), ParseError);
  }
});
