import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestEvent, RequestParser } from '../../../src/l7/http/http1-request-parser.js';
import { Http1SyntaxError } from '../../../src/l7/http/http1-syntax.js';
import { parseAll, type ParsedMessage } from '../../support/http1-parse.js';

function steps(text: string): number[] {
  return [0, 1, 2, 3, 7, Math.max(1, Math.floor(text.length / 2))];
}

test('a simple GET: method, target, version, raw headers with case and order, no body', () => {
  const text = 'GET /a?b=1 HTTP/1.1\r\nHost: example\r\nX-MiXeD: 1\r\nzeta: 2\r\nX-MiXeD: 3\r\n\r\n';
  for (const step of steps(text)) {
    const r = parseAll(text, step);
    assert.equal(r.error, undefined);
    assert.equal(r.messages.length, 1);
    const m = r.messages[0] as ParsedMessage;
    assert.equal(m.head.method, 'GET');
    assert.equal(m.head.target, '/a?b=1');
    assert.equal(m.head.versionMinor, 1);
    assert.equal(m.head.host, 'example');
    assert.deepEqual(m.head.headers, ['Host', 'example', 'X-MiXeD', '1', 'zeta', '2', 'X-MiXeD', '3']);
    assert.equal(m.head.framing, 'none');
    assert.equal(m.head.keepAlive, true);
    assert.equal(m.head.hopByHop, false);
    assert.equal(m.complete, true);
  }
});

test('OWS around values is trimmed; an empty value is kept', () => {
  const r = parseAll('GET / HTTP/1.1\r\nHost:h\r\nA: \t x y \t\r\nB:\r\n\r\n');
  assert.deepEqual(r.messages[0]?.head.headers, ['Host', 'h', 'A', 'x y', 'B', '']);
});

test('Content-Length body, pipelined with a chunked one with trailers, at every split', () => {
  const text =
    'POST /one HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello' +
    'POST /two HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 9\r\n\r\n' +
    'GET /three HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n';
  for (const step of steps(text)) {
    const r = parseAll(text, step);
    assert.equal(r.error, undefined, `step ${step}`);
    assert.deepEqual(r.messages.map((m) => [m.head.target, m.body, m.complete]), [
      ['/one', 'hello', true],
      ['/two', 'abcde', true],
      ['/three', '', true],
    ]);
    assert.deepEqual(r.messages[1]?.trailers, ['X-Sum', '9']);
    assert.equal(r.messages[1]?.head.framing, 'chunked');
    assert.equal(r.messages[1]?.head.hopByHop, true);
    assert.equal(r.messages[2]?.head.keepAlive, false);
  }
});

test('HTTP/1.0: keep-alive only when asked; no Host needed', () => {
  assert.equal(parseAll('GET / HTTP/1.0\r\n\r\n').messages[0]?.head.keepAlive, false);
  assert.equal(parseAll('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n').messages[0]?.head.keepAlive, true);
});

test('empty lines before a request line are skipped', () => {
  const r = parseAll('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n');
  assert.equal(r.error, undefined);
  assert.deepEqual(r.messages.map((m) => m.head.target), ['/', '/next']);
});

test('Upgrade with Connection: upgrade and CONNECT are tunnels; the bytes after the head are kept', () => {
  const up = parseAll('GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nEARLY');
  assert.equal(up.messages[0]?.head.upgrade, true);
  assert.equal(up.rest, 'EARLY');
  const connect = parseAll('CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n');
  assert.equal(connect.messages[0]?.head.upgrade, true);
  assert.equal(connect.rest, '');
  // Upgrade without the Connection token is an ordinary request (the field is hop-by-hop).
  const plain = parseAll('GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n');
  assert.equal(plain.messages[0]?.head.upgrade, false);
  assert.equal(plain.messages[0]?.head.hopByHop, true);
});

const SMUGGLING: Record<string, string> = {
  'CL and TE': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n',
  'TE and CL': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n',
  'two identical CL': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n',
  'CL list': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 5\r\n\r\n',
  'signed CL': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n',
  'empty CL': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n',
  'huge CL': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456\r\n\r\n',
  'chunked not last': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n',
  'gzip, chunked': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
  'two TE fields': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n',
  'unknown coding': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n',
  'TE on HTTP/1.0': 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n',
  'bad chunk size': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n',
  'chunk size overflow': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nabcd\r\n0\r\n\r\n',
  'space after chunk size': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4 \r\nabcd\r\n0\r\n\r\n',
  'chunk data longer than size': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdef\r\n0\r\n\r\n',
  'bare LF in chunk framing': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\nabcd\n0\n\n',
  'bad chunk extension': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4;a b\r\nabcd\r\n0\r\n\r\n',
  'obs-fold in a trailer': 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n',
};

const BAD: Record<string, string> = {
  'obs-fold': 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n',
  'space before colon': 'GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n',
  'invalid name': 'GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n',
  'NUL in a value': 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n',
  'bare CR in a value': 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n',
  'bare LF line ends': 'GET / HTTP/1.1\nHost: a\n\n',
  'bare LF after the request line': 'GET / HTTP/1.1\nHost: a\r\n\r\n',
  'no Host on 1.1': 'GET / HTTP/1.1\r\nX-A: b\r\n\r\n',
  'two Host fields': 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
  'space in target': 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n',
  'HTTP/2.0': 'GET / HTTP/2.0\r\nHost: a\r\n\r\n',
  'HTTP/1.2': 'GET / HTTP/1.2\r\nHost: a\r\n\r\n',
  'lower-case version': 'GET / http/1.1\r\nHost: a\r\n\r\n',
  'no version': 'GET /\r\nHost: a\r\n\r\n',
  'two spaces': 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n',
  'bad method': 'G(T / HTTP/1.1\r\nHost: a\r\n\r\n',
  'header line without colon': 'GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n',
  'DEL in a value': 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n',
  'control byte in the target': 'GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n',
};

test('smuggling shapes are refused as framing errors, at every split', () => {
  for (const [name, text] of Object.entries(SMUGGLING)) {
    for (const step of steps(text)) {
      const r = parseAll(text, step);
      assert.ok(r.error !== undefined, `${name} (step ${step}) refused`);
      assert.equal(r.error.smuggling, true, `${name}: ${r.error.message}`);
      assert.ok(r.messages.every((m) => !m.complete), `${name}: no message completed`);
    }
  }
});

test('malformed heads are refused as bad requests, at every split', () => {
  for (const [name, text] of Object.entries(BAD)) {
    for (const step of steps(text)) {
      const r = parseAll(text, step);
      assert.ok(r.error !== undefined, `${name} (step ${step}) refused`);
      assert.equal(r.error.smuggling, false, `${name}: ${r.error.message}`);
      assert.equal(r.error.tooLarge, false, name);
      assert.equal(r.messages.length, 0, name);
    }
  }
});

test('a bare LF is refused before the head ends (a client with LF line ends is not left waiting)', () => {
  const r = parseAll('GET / HTTP/1.1\nHost: a\n');
  assert.equal(r.error?.message, 'bare LF');
});

test('heads over the limit are refused as too large, complete or not', () => {
  const big = `GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(2000)}\r\n\r\n`;
  assert.equal(parseAll(big).error?.tooLarge, true);
  assert.equal(parseAll(big.slice(0, 1500)).error?.tooLarge, true);
  const fits = `GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(900)}\r\n\r\n`;
  assert.equal(parseAll(fits).error, undefined);
});

test('state: idle / inHead / inBody follow the bytes', () => {
  const p = new RequestParser({ maxHeadBytes: 1024 });
  assert.equal(p.idle, true);
  p.push(Buffer.from('POST / HTTP/1.1\r\nHost: a\r\n'));
  assert.equal(p.next(), RequestEvent.NeedMore);
  assert.equal(p.inHead, true);
  assert.equal(p.idle, false);
  p.push(Buffer.from('Content-Length: 3\r\n\r\nab'));
  assert.equal(p.next(), RequestEvent.Head);
  assert.equal(p.inBody, true);
  assert.equal(p.next(), RequestEvent.Body);
  assert.equal(p.next(), RequestEvent.NeedMore);
  assert.equal(p.midMessage, true);
  p.push(Buffer.from('c'));
  assert.equal(p.next(), RequestEvent.Body);
  assert.equal(p.next(), RequestEvent.End);
  assert.equal(p.idle, true);
  // After an error the parser stays dead.
  p.push(Buffer.from('BAD\r\n\r\n'));
  assert.throws(() => p.next(), Http1SyntaxError);
  assert.throws(() => p.next(), Http1SyntaxError);
});

test('a complete request leaves nothing of itself in the parser: head and chunk are undefined after End (keep-alive idle)', () => {
  const p = new RequestParser({ maxHeadBytes: 1024 });
  // Read through functions: an assertion on the field would narrow its type for the lines after it.
  const head = (): string | undefined => p.head?.target;
  const chunk = (): string | undefined => p.chunk?.toString();
  p.push(Buffer.from('POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc'));
  assert.equal(p.next(), RequestEvent.Head);
  assert.equal(head(), '/a');
  assert.equal(p.next(), RequestEvent.Body);
  assert.equal(chunk(), 'abc');
  assert.equal(p.next(), RequestEvent.End);
  assert.equal(head(), undefined);
  assert.equal(chunk(), undefined);
  p.push(Buffer.from('POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n'));
  assert.equal(p.next(), RequestEvent.Head);
  assert.equal(head(), '/b');
  assert.equal(p.next(), RequestEvent.Body);
  assert.equal(p.next(), RequestEvent.End);
  assert.equal(head(), undefined, 'chunked too');
  assert.equal(chunk(), undefined);
  assert.equal(p.next(), RequestEvent.NeedMore);
});
