import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scanHttp1Host } from '../../../src/l4/detect/http1-host.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

test('the Host of a complete head; case-insensitive name, trimmed value, port kept for the caller', () => {
  assert.deepEqual(scanHttp1Host(b('GET / HTTP/1.1\r\nUser-Agent: x\r\nhOsT:  api.example.com:8080 \r\n\r\n'), 1024),
    { done: true, host: 'api.example.com:8080' });
  assert.deepEqual(scanHttp1Host(b('GET / HTTP/1.1\nHost: a\n\n'), 1024), { done: true, host: 'a' });
});

test('undecided until the blank line; decided without a host at the cap', () => {
  assert.deepEqual(scanHttp1Host(b('GET / HTTP/1.1\r\nHost: a\r\n'), 1024), { done: false });
  assert.deepEqual(scanHttp1Host(b(`GET / HTTP/1.1\r\nX: ${'y'.repeat(100)}`), 64), { done: true, host: undefined });
});

test('no Host, two Hosts, an empty Host or a folded line: no host (route without a name)', () => {
  for (const head of [
    'GET / HTTP/1.1\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: \r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\n  folded\r\n\r\n',
  ]) {
    assert.deepEqual(scanHttp1Host(b(head), 1024), { done: true, host: undefined }, JSON.stringify(head));
  }
});

test('bytes after the head (a body) do not matter', () => {
  assert.deepEqual(scanHttp1Host(b('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nHost: x'), 1024), { done: true, host: 'h' });
});
