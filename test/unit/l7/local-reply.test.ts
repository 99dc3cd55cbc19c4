import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LocalReplyReason } from '../../../src/l7/request-types.js';
import {
  LOCAL_REPLIES, LOCAL_REPLY_HEADER, LOCAL_REPLY_REASONS, localReply, localReplyHeaders, replyForFailedAttempt,
} from '../../../src/l7/local-reply.js';

// Every member of the LocalReplyReason union, spelled out: if the contract gains a reason, this list (and the
// Record in local-reply.ts, which the compiler checks) must gain it too.
const ALL: Record<LocalReplyReason, true> = {
  'no-route': true, 'no-healthy-upstream': true, 'circuit-open': true, 'upstream-connect-failure': true,
  'upstream-reset': true, 'upstream-timeout': true, 'request-timeout': true, 'bad-request': true,
  'request-smuggling': true, 'header-too-large': true, 'retry-budget-exhausted': true,
};

test('every LocalReplyReason has exactly one table entry, well formed', () => {
  const reasons = Object.keys(ALL) as LocalReplyReason[];
  assert.deepEqual([...LOCAL_REPLY_REASONS].sort(), [...reasons].sort());
  for (const reason of reasons) {
    const r = localReply(reason);
    assert.equal(r.reason, reason);
    assert.ok(r.status >= 400 && r.status <= 599, `${reason} status ${r.status}`);
    assert.ok(r.body.endsWith('\n') && r.body.indexOf('\n') === r.body.length - 1, `${reason}: one line`);
    assert.ok(r.body.startsWith(`${reason}: `));
    assert.ok(Object.isFrozen(r));
  }
});

test('statuses and connection handling follow Envoy/Linkerd choices', () => {
  const expect: Record<LocalReplyReason, [number, boolean]> = {
    'no-route': [404, false], 'no-healthy-upstream': [503, false], 'circuit-open': [503, false],
    'upstream-connect-failure': [503, false], 'upstream-reset': [502, false], 'upstream-timeout': [504, false],
    'request-timeout': [408, true], 'bad-request': [400, true], 'request-smuggling': [400, true],
    'header-too-large': [431, true], 'retry-budget-exhausted': [503, false],
  };
  for (const [reason, [status, close]] of Object.entries(expect) as [LocalReplyReason, [number, boolean]][]) {
    assert.equal(LOCAL_REPLIES[reason].status, status, reason);
    assert.equal(LOCAL_REPLIES[reason].close, close, reason);
  }
});

test('reply headers carry x-remora-error and connection: close only on HTTP/1.1 closing replies', () => {
  const r = localReply('header-too-large');
  const h1 = localReplyHeaders(r, 'http/1.1');
  assert.deepEqual(h1, [
    ['content-type', 'text/plain; charset=utf-8'],
    ['content-length', String(Buffer.byteLength(r.body))],
    [LOCAL_REPLY_HEADER, 'header-too-large'],
    ['connection', 'close'],
  ]);
  assert.equal(localReplyHeaders(r, 'h2').some(([n]) => n === 'connection'), false);
  assert.equal(localReplyHeaders(localReply('no-route'), 'http/1.1').some(([n]) => n === 'connection'), false);
  assert.equal(LOCAL_REPLY_HEADER, 'x-remora-error');
});

test('failed attempts map to the matching upstream reply; responses are forwarded, not replaced', () => {
  assert.equal(replyForFailedAttempt({ kind: 'connect-failure' })?.reason, 'upstream-connect-failure');
  assert.equal(replyForFailedAttempt({ kind: 'reset', bytesSent: true })?.reason, 'upstream-reset');
  assert.equal(replyForFailedAttempt({ kind: 'timeout' })?.reason, 'upstream-timeout');
  assert.equal(replyForFailedAttempt({ kind: 'response', status: 503, latencyMs: 1 }), undefined);
});
