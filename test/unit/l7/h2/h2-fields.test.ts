// RFC 9113 §8.2-§8.3: field section rules of HTTP/2 requests, responses and trailers; each rule with a passing and a
// failing case.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkTrailerFields,
  parseRequestFields,
  parseResponseFields,
  type H2RequestHead,
  type H2ResponseHead,
} from '../../../../src/l7/h2/h2-fields.js';

const BASE = [':method', 'GET', ':scheme', 'https', ':path', '/a?b=c', ':authority', 'x.test'];

function request(fields: readonly string[]): H2RequestHead {
  const r = parseRequestFields(fields);
  if (typeof r === 'string') assert.fail(`unexpected error: ${r}`);
  return r;
}

function requestError(fields: readonly string[]): string {
  const r = parseRequestFields(fields);
  if (typeof r !== 'string') assert.fail(`accepted: ${JSON.stringify(fields)}`);
  return r;
}

function response(fields: readonly string[]): H2ResponseHead {
  const r = parseResponseFields(fields);
  if (typeof r === 'string') assert.fail(`unexpected error: ${r}`);
  return r;
}

function responseError(fields: readonly string[]): string {
  const r = parseResponseFields(fields);
  if (typeof r !== 'string') assert.fail(`accepted: ${JSON.stringify(fields)}`);
  return r;
}

test('request: control data and regular fields in order', () => {
  const head = request([...BASE, 'accept', '*/*', 'x-b', '2', 'x-a', '1', 'x-b', '3']);
  assert.equal(head.method, 'GET');
  assert.equal(head.scheme, 'https');
  assert.equal(head.path, '/a?b=c');
  assert.equal(head.authority, 'x.test');
  assert.equal(head.protocol, '');
  assert.equal(head.contentLength, -1);
  assert.deepEqual(head.headers, ['accept', '*/*', 'x-b', '2', 'x-a', '1', 'x-b', '3']);
  // Pseudo-headers in any order; :authority is optional.
  const h2 = request([':path', '/', ':scheme', 'http', ':method', 'OPTIONS']);
  assert.equal(h2.authority, '');
  assert.deepEqual(h2.headers, []);
});

test('field name: token characters only, lower case, not empty', () => {
  assert.deepEqual(request([...BASE, "x-!#$%&'*+-.^_`|~09az", 'v']).headers, ["x-!#$%&'*+-.^_`|~09az", 'v']);
  assert.equal(requestError([...BASE, 'X-Foo', 'v']), 'uppercase field name');
  assert.equal(requestError([...BASE, 'x-fOo', 'v']), 'uppercase field name');
  assert.equal(requestError([...BASE, '', 'v']), 'empty field name');
  for (const name of ['x foo', 'x:foo', 'x\0', 'x\r\n', 'caf\u00e9', 'x"y', 'a/b', 'x\u0100', 'x{']) {
    assert.equal(requestError([...BASE, name, 'v']), 'invalid character in field name', JSON.stringify(name));
  }
  assert.equal(checkTrailerFields(['X-Foo', 'v']), 'uppercase field name');
  assert.equal(responseError([':status', '200', 'a b', 'v']), 'invalid character in field name');
});

test('field value: no NUL, CR or LF; no SP or HTAB at either end (§8.2.1)', () => {
  const ok = ['', 'a b', 'a\tb', 'x', 'caf\u00e9 \u00ff\u0080', '"quoted"', '\u007f'];
  for (const value of ok) assert.deepEqual(request([...BASE, 'x-v', value]).headers, ['x-v', value]);
  for (const value of ['a\0b', 'a\rb', 'a\nb', '\r\n', 'ab\0']) {
    assert.equal(requestError([...BASE, 'x-v', value]), 'NUL, CR or LF in a field value: x-v');
  }
  for (const value of [' a', '\ta', ' ', '\t']) {
    assert.equal(requestError([...BASE, 'x-v', value]), 'whitespace at the start of a field value: x-v');
  }
  for (const value of ['a ', 'a\t']) {
    assert.equal(requestError([...BASE, 'x-v', value]), 'whitespace at the end of a field value: x-v');
  }
  // Pseudo-header values too.
  assert.equal(
    requestError([':method', 'GET', ':scheme', 'https', ':path', '/a', ':authority', 'x.test ']),
    'whitespace at the end of a field value: :authority',
  );
  assert.equal(
    requestError([':method', 'GET', ':scheme', 'https', ':path', '/a\n']),
    'NUL, CR or LF in a field value: :path',
  );
  assert.equal(responseError([':status', '200', 'x-v', 'a\r']), 'NUL, CR or LF in a field value: x-v');
  assert.equal(checkTrailerFields(['x-v', ' a']), 'whitespace at the start of a field value: x-v');
});

test('connection-specific fields are malformed (§8.2.2)', () => {
  for (const name of ['connection', 'proxy-connection', 'keep-alive', 'transfer-encoding', 'upgrade']) {
    assert.equal(requestError([...BASE, name, 'x']), `connection-specific field: ${name}`);
    assert.equal(responseError([':status', '200', name, 'x']), `connection-specific field: ${name}`);
    assert.equal(checkTrailerFields([name, 'x']), `connection-specific field: ${name}`);
  }
  // Names that only look alike.
  for (const name of ['connections', 'x-connection', 'keep-alive2', 'upgrade-insecure-requests', 'tex', 't']) {
    assert.deepEqual(request([...BASE, name, 'x']).headers, [name, 'x']);
  }
});

test('te: only "trailers"', () => {
  assert.deepEqual(request([...BASE, 'te', 'trailers']).headers, ['te', 'trailers']);
  for (const value of ['gzip', 'trailers, gzip', 'Trailers', '']) {
    assert.equal(requestError([...BASE, 'te', value]), 'te other than trailers', value);
  }
  assert.equal(responseError([':status', '200', 'te', 'gzip']), 'te other than trailers');
});

test('pseudo-headers: before regular fields, at most once each, known names only', () => {
  assert.equal(
    requestError([...BASE.slice(0, 6), 'accept', '*/*', ':authority', 'x']),
    'pseudo-header after regular fields: :authority',
  );
  assert.equal(requestError([...BASE, ':path', '/b']), 'duplicate pseudo-header: :path');
  assert.equal(requestError([':method', 'GET', ...BASE]), 'duplicate pseudo-header: :method');
  assert.equal(requestError([...BASE, ':foo', 'x']), 'invalid pseudo-header: :foo');
  assert.equal(requestError([...BASE, ':status', '200']), 'invalid pseudo-header: :status');
  assert.equal(requestError([...BASE, ':', 'x']), 'invalid pseudo-header: :');
  assert.equal(requestError([...BASE, ':Path', 'x']), 'invalid pseudo-header: :Path');
});

test('request: :method, :scheme and a non-empty :path are required (§8.3.1)', () => {
  assert.equal(requestError([':scheme', 'https', ':path', '/']), 'missing :method');
  assert.equal(requestError([':method', 'GET', ':path', '/']), 'missing :scheme');
  assert.equal(requestError([':method', 'GET', ':scheme', 'https']), 'missing :path');
  assert.equal(requestError([':method', 'GET', ':scheme', 'https', ':path', '']), 'empty :path');
  assert.equal(requestError([]), 'missing :method');
  assert.equal(request([':method', 'OPTIONS', ':scheme', 'https', ':path', '*']).path, '*');
});

test('request: :method is a token, :path has no whitespace or controls (what HTTP/1.1 forwarding needs)', () => {
  assert.equal(request([':method', 'M-SEARCH', ':scheme', 'http', ':path', '/']).method, 'M-SEARCH');
  assert.equal(request([':method', 'get', ':scheme', 'http', ':path', '/']).method, 'get');
  for (const method of ['', 'GE T', 'GET/', 'G\u00e9T']) {
    assert.equal(requestError([':method', method, ':scheme', 'http', ':path', '/']), 'invalid :method', method);
  }
  assert.equal(request([':method', 'GET', ':scheme', 'http', ':path', '/%20?q=\u00e9']).path, '/%20?q=\u00e9');
  for (const path of ['/a b', '/a\tb', '/\u007f', '/\u0001']) {
    assert.equal(requestError([':method', 'GET', ':scheme', 'http', ':path', path]), 'invalid :path', path);
  }
});

test('request: CONNECT has :method and :authority only (§8.5)', () => {
  const head = request([':method', 'CONNECT', ':authority', 'db.internal:5432']);
  assert.equal(head.method, 'CONNECT');
  assert.equal(head.authority, 'db.internal:5432');
  assert.equal(head.scheme, '');
  assert.equal(head.path, '');
  assert.equal(requestError([':method', 'CONNECT']), 'CONNECT without :authority');
  assert.equal(requestError([':method', 'CONNECT', ':authority', '']), 'CONNECT without :authority');
  assert.equal(
    requestError([':method', 'CONNECT', ':authority', 'h:1', ':scheme', 'https']),
    'CONNECT with :scheme or :path',
  );
  assert.equal(
    requestError([':method', 'CONNECT', ':authority', 'h:1', ':path', '/']),
    'CONNECT with :scheme or :path',
  );
});

test('request: :protocol only with CONNECT (RFC 8441 extended CONNECT)', () => {
  const head = request([
    ':method', 'CONNECT',
    ':protocol', 'websocket',
    ':scheme', 'https',
    ':path', '/chat',
    ':authority', 'x.test',
    'sec-websocket-version', '13',
  ]);
  assert.equal(head.protocol, 'websocket');
  assert.equal(head.path, '/chat');
  assert.equal(head.scheme, 'https');
  assert.deepEqual(head.headers, ['sec-websocket-version', '13']);
  assert.equal(requestError([...BASE, ':protocol', 'websocket']), ':protocol without CONNECT');
  assert.equal(
    requestError([':method', 'CONNECT', ':protocol', 'websocket', ':scheme', 'https', ':authority', 'x.test']),
    'missing :path',
  );
  assert.equal(
    requestError([':method', 'CONNECT', ':protocol', 'websocket', ':path', '/', ':authority', 'x.test']),
    'missing :scheme',
  );
});

test('content-length: digits only, every value equal, at most 2^53 - 1', () => {
  assert.equal(request([...BASE, 'content-length', '42']).contentLength, 42);
  assert.equal(request([...BASE, 'content-length', '0']).contentLength, 0);
  assert.equal(request([...BASE, 'content-length', '42', 'x', 'y', 'content-length', '42']).contentLength, 42);
  assert.equal(request([...BASE, 'content-length', '9007199254740991']).contentLength, Number.MAX_SAFE_INTEGER);
  assert.deepEqual(request([...BASE, 'content-length', '7']).headers, ['content-length', '7']);
  for (const value of ['', '+1', '-1', '1a', '0x10', '1.5', '1,1', '1 1', '9007199254740992', '99999999999999999999']) {
    assert.equal(requestError([...BASE, 'content-length', value]), 'invalid content-length', value);
  }
  assert.equal(
    requestError([...BASE, 'content-length', '42', 'content-length', '43']),
    'conflicting content-length values',
  );
  assert.equal(
    responseError([':status', '200', 'content-length', '1', 'content-length', '2']),
    'conflicting content-length values',
  );
  assert.equal(responseError([':status', '200', 'content-length', 'abc']), 'invalid content-length');
  assert.deepEqual(response([':status', '200', 'content-length', '5', 'content-length', '5']).headers, [
    'content-length', '5',
    'content-length', '5',
  ]);
});

test('response: :status is exactly 3 digits, 100-999', () => {
  const head = response([':status', '404', 'content-type', 'text/plain', 'x-a', '']);
  assert.equal(head.status, 404);
  assert.deepEqual(head.headers, ['content-type', 'text/plain', 'x-a', '']);
  assert.equal(response([':status', '100']).status, 100);
  assert.equal(response([':status', '999']).status, 999);
  for (const status of ['099', '000', '20', '2000', '2x0', '', ' 200', '+20', '20\u0000']) {
    assert.equal(responseError([':status', status]), 'invalid :status', JSON.stringify(status));
  }
});

test('response: :status required, once, and the only pseudo-header', () => {
  assert.equal(responseError([]), 'missing :status');
  assert.equal(responseError(['content-type', 'text/plain']), 'missing :status');
  assert.equal(responseError([':status', '200', ':status', '204']), 'duplicate pseudo-header: :status');
  assert.equal(responseError([':status', '200', ':method', 'GET']), 'invalid pseudo-header: :method');
  assert.equal(responseError([':path', '/', ':status', '200']), 'invalid pseudo-header: :path');
  assert.equal(
    responseError([':status', '200', 'x-a', '1', ':status', '200']),
    'pseudo-header after regular fields: :status',
  );
});

test('trailers: regular fields only, same rules; the same array is returned', () => {
  const fields = ['grpc-status', '0', 'grpc-message', 'OK', 'x-empty', ''];
  assert.equal(checkTrailerFields(fields), fields);
  assert.deepEqual(checkTrailerFields([]), []);
  assert.equal(checkTrailerFields([':status', '200']), 'pseudo-header in trailers: :status');
  assert.equal(checkTrailerFields(['x-a', '1', ':path', '/']), 'pseudo-header in trailers: :path');
  assert.equal(checkTrailerFields(['te', 'gzip']), 'te other than trailers');
  assert.equal(checkTrailerFields(['', 'x']), 'empty field name');
  // content-length is an ordinary field there (its value is still checked).
  assert.notEqual(typeof checkTrailerFields(['content-length', '5']), 'string');
  assert.equal(checkTrailerFields(['content-length', '5 ']), 'whitespace at the end of a field value: content-length');
});

test('error messages stay on one line', () => {
  assert.equal(requestError([...BASE, ':a\r\nb', 'x']), 'invalid pseudo-header: :a??b');
  assert.equal(requestError([':a\r\nb', ' x']), 'invalid pseudo-header: :a??b');
});
