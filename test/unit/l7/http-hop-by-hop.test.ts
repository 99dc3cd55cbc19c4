import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  fromH2Headers,
  headerCount,
  headerValue,
  isHopByHopName,
  nameIs,
  newHopByHopInfo,
  removeHeader,
  stripHopByHop,
  toH2Headers,
} from '../../../src/l7/http/headers.js';
import { ensureRequestId, newRequestId } from '../../../src/l7/filters/request-id.js';

test('hop-by-hop fields and the fields Connection lists are removed; case and order of the rest kept', () => {
  const info = newHopByHopInfo();
  const out = stripHopByHop(
    [
      'Host', 'a',
      'Connection', 'X-Foo, close',
      'X-Foo', '1',
      'x-foo', '2',
      'Keep-Alive', 'timeout=5',
      'Proxy-Connection', 'keep-alive',
      'TE', 'gzip, trailers',
      'Transfer-Encoding', 'chunked',
      'Upgrade', 'websocket',
      'X-Keep', 'yes',
      'traceparent', '00-abc-def-01',
    ],
    false,
    info,
  );
  assert.deepEqual(out, ['Host', 'a', 'TE', 'trailers', 'X-Keep', 'yes', 'traceparent', '00-abc-def-01']);
  assert.equal(info.close, true);
  assert.equal(info.teTrailers, true);
  assert.equal(info.upgrade, 'websocket');
});

test('Connection: close alone (its own fast path) removes as the token list does: a field named close too', () => {
  for (const value of ['close', 'CLOSE', 'Close']) {
    const info = newHopByHopInfo();
    const fields = ['Host', 'a', 'Connection', value, 'Close', 'x', 'X-Keep', 'yes', 'Closed', 'y'];
    assert.deepEqual(stripHopByHop(fields, false, info), ['Host', 'a', 'X-Keep', 'yes', 'Closed', 'y']);
    assert.equal(info.close, true);
    // The same list through the token path (a second token) gives the same fields.
    assert.deepEqual(stripHopByHop(['Host', 'a', 'Connection', `${value}, x-none`, 'Close', 'x', 'X-Keep', 'yes', 'Closed', 'y'], false),
      ['Host', 'a', 'X-Keep', 'yes', 'Closed', 'y']);
  }
});

test('TE without trailers is dropped', () => {
  assert.deepEqual(stripHopByHop(['TE', 'gzip', 'A', 'b'], false), ['A', 'b']);
});

test('Connection cannot remove Host or Content-Length', () => {
  assert.deepEqual(
    stripHopByHop(['Host', 'a', 'Content-Length', '3', 'Connection', 'host, content-length, x-a', 'X-A', '1'], false),
    ['Host', 'a', 'Content-Length', '3'],
  );
});

test('upgrade requests keep Upgrade and Connection: upgrade', () => {
  assert.deepEqual(
    stripHopByHop(['Host', 'a', 'Connection', 'Upgrade, X-B', 'Upgrade', 'websocket', 'X-B', '1', 'Sec-WebSocket-Key', 'k'], true),
    ['Host', 'a', 'Connection', 'upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k'],
  );
});

test('HTTP/1 -> HTTP/2 headers: lower case, connection-specific fields and Host dropped', () => {
  assert.deepEqual(
    toH2Headers(['Host', 'a', 'X-Up', '1', 'TE', 'trailers', 'Content-Type', 'text/plain', 'HTTP2-Settings', 'x']),
    ['x-up', '1', 'te', 'trailers', 'content-type', 'text/plain'],
  );
});

test('HTTP/2 -> HTTP/1 headers: cookies joined, pseudo-headers skipped', () => {
  assert.deepEqual(
    fromH2Headers([':path', '/', 'cookie', 'a=1', 'x-a', 'b', 'cookie', 'b=2', 'host', 'h']),
    ['cookie', 'a=1; b=2', 'x-a', 'b', 'host', 'h'],
  );
});

test('header helpers are case-insensitive', () => {
  const h = ['Host', 'a', 'X-A', '1', 'x-a', '2'];
  assert.equal(headerValue(h, 'x-a'), '1');
  assert.equal(headerCount(h, 'x-a'), 2);
  assert.equal(removeHeader(h, 'x-a'), 2);
  assert.deepEqual(h, ['Host', 'a']);
});

test('x-request-id: added when missing (UUIDv4), kept when present, fills an empty one', () => {
  const a = ['Host', 'x'];
  const id = ensureRequestId(a);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(a, ['Host', 'x', 'x-request-id', id]);
  const b = ['X-Request-ID', 'given'];
  assert.equal(ensureRequestId(b), 'given');
  assert.deepEqual(b, ['X-Request-ID', 'given']);
  const c = ['x-request-id', ''];
  const idc = ensureRequestId(c);
  assert.deepEqual(c, ['x-request-id', idc]);
});

test('newRequestId: UUIDv4 text, every one different, across refills of its random pool', () => {
  const seen = new Set<string>();
  const nibbles = new Set<string>();
  for (let i = 0; i < 2_000; i++) {
    const id = newRequestId();
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    seen.add(id);
    for (const ch of id.slice(0, 8)) nibbles.add(ch);
  }
  assert.equal(seen.size, 2_000);
  // The random part uses every hex digit (a formatter stuck on a few digits would fail this).
  assert.equal(nibbles.size, 16);
});

test('nameIs: ASCII case-insensitive equality with a lower-case name, nothing else folded', () => {
  assert.equal(nameIs('Content-Length', 'content-length'), true);
  assert.equal(nameIs('CONTENT-LENGTH', 'content-length'), true);
  assert.equal(nameIs('content-length', 'content-length'), true);
  assert.equal(nameIs('content-lengt', 'content-length'), false);
  assert.equal(nameIs('content_length', 'content-length'), false);
  // Only A-Z fold: '@' (0x40) is not '`' (0x60), and a non-ASCII letter is not its ASCII look-alike.
  assert.equal(nameIs('@', '`'), false);
  assert.equal(nameIs('K\u212a', 'kk'), false);
  for (const n of ['Connection', 'KEEP-ALIVE', 'te', 'Upgrade', 'proxy-connection', 'Transfer-Encoding']) assert.equal(isHopByHopName(n), true, n);
  for (const n of ['Host', 'tee', 'Upgrades', 'Content-Length', 'x-connection']) assert.equal(isHopByHopName(n), false, n);
});
