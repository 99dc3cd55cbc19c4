import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LocalReplyReason } from '../../../src/l7/request-types.js';
import {
  LOCAL_REPLIES, LOCAL_REPLY_HEADER, LOCAL_REPLY_REASONS, localReply, rawHttp1LocalReply, renderLocalReply,
} from '../../../src/l7/local-reply.js';

// Every member of the LocalReplyReason union, spelled out: if the contract gains a reason, this list (and the
// Record in local-reply.ts, which the compiler checks) must gain it too.
const ALL: Record<LocalReplyReason, true> = {
  'no-route': true, 'no-healthy-upstream': true, 'circuit-open': true, 'upstream-connect-failure': true,
  'upstream-reset': true, 'upstream-timeout': true, 'request-timeout': true, 'bad-request': true,
  'request-smuggling': true, 'header-too-large': true, 'retry-budget-exhausted': true, 'rbac-denied': true,
};

test('every LocalReplyReason has exactly one table entry, well formed', () => {
  const reasons = Object.keys(ALL) as LocalReplyReason[];
  assert.deepEqual([...LOCAL_REPLY_REASONS].sort(), [...reasons].sort());
  for (const reason of reasons) {
    const r = localReply(reason);
    assert.equal(r.reason, reason);
    assert.ok(r.status >= 400 && r.status <= 599, `${reason} status ${r.status}`);
    if (reason === 'rbac-denied') {
      assert.equal(r.body, 'RBAC: access denied', "Envoy's exact body (clients match on it)");
    } else {
      assert.ok(r.body.endsWith('\n') && r.body.indexOf('\n') === r.body.length - 1, `${reason}: one line`);
      assert.ok(r.body.startsWith(`${reason}: `));
    }
    assert.ok(Object.isFrozen(r));
  }
});

test('statuses and connection handling follow Envoy/Linkerd choices', () => {
  const expect: Record<LocalReplyReason, [number, boolean]> = {
    'no-route': [404, false], 'no-healthy-upstream': [503, false], 'circuit-open': [503, false],
    'upstream-connect-failure': [503, false], 'upstream-reset': [502, false], 'upstream-timeout': [504, false],
    'request-timeout': [408, true], 'bad-request': [400, true], 'request-smuggling': [400, true],
    'header-too-large': [431, true], 'retry-budget-exhausted': [503, false], 'rbac-denied': [403, false],
  };
  for (const [reason, [status, close]] of Object.entries(expect) as [LocalReplyReason, [number, boolean]][]) {
    assert.equal(LOCAL_REPLIES[reason].status, status, reason);
    assert.equal(LOCAL_REPLIES[reason].close, close, reason);
  }
});

test('HTTP/1.1 replies carry x-remora-error, and connection: close only when the reply closes (or a drain forces it)', () => {
  const r = localReply('header-too-large');
  assert.deepEqual(renderLocalReply(r, 'http/1.1', false), {
    status: 431,
    headers: ['content-type', 'text/plain; charset=utf-8', 'content-length', String(Buffer.byteLength(r.body)),
      LOCAL_REPLY_HEADER, 'header-too-large', 'connection', 'close'],
    body: r.body,
  });
  assert.equal(renderLocalReply(localReply('no-route'), 'http/1.1', false).headers.includes('connection'), false);
  assert.equal(renderLocalReply(localReply('no-route'), 'http/1.1', false, true).headers.includes('connection'), true);
  assert.equal(LOCAL_REPLY_HEADER, 'x-remora-error');
});

test('HTTP/2 replies have no connection header; gRPC requests get a trailers-only reply with the table\'s grpc-status', () => {
  const h2 = renderLocalReply(localReply('header-too-large'), 'h2', false);
  assert.equal(h2.status, 431);
  assert.equal(h2.headers.includes('connection'), false);
  const g = renderLocalReply(localReply('upstream-timeout'), 'h2', true);
  assert.equal(g.status, 200);
  assert.equal(g.body, '');
  const h = new Map<string, string>();
  for (let i = 0; i < g.headers.length; i += 2) h.set(g.headers[i] as string, g.headers[i + 1] as string);
  assert.equal(h.get('content-type'), 'application/grpc');
  assert.equal(h.get('grpc-status'), '4', 'DEADLINE_EXCEEDED');
  assert.equal(h.get(LOCAL_REPLY_HEADER), 'upstream-timeout');
  assert.equal(renderLocalReply(localReply('no-route'), 'h2', true).headers[3], '12', 'UNIMPLEMENTED');
  assert.equal(renderLocalReply(localReply('circuit-open'), 'h2', true).headers[3], '14', 'UNAVAILABLE');
  assert.equal(renderLocalReply(localReply('rbac-denied'), 'h2', true).headers[3], '7', 'PERMISSION_DENIED');
});

test('the raw HTTP/1.1 form is a complete response that closes the connection', () => {
  const raw = rawHttp1LocalReply(localReply('bad-request'));
  assert.match(raw, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(raw, /\r\nx-remora-error: bad-request\r\n/);
  assert.match(raw, /\r\nconnection: close\r\n\r\nbad-request: bad request\n$/);
});
