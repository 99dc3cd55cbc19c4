// A staged connection once it is forwarded (src/l4/forwarded-connection.ts), without sockets: a recording forward
// stands for TcpForward or the native thread's forward. Checked: it is tracked from start() to its end, the outcome
// handed to `done` (the forward's bytes, code and idle flag with the stages' facts), the drain's abort reaching the
// forward, what /debug/connections shows, and an end that comes before start() leaving nothing tracked.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RemoraErrorCode } from '../../../src/core/errors.js';
import type { ConnectionContext, ConnectionOutcome, ListenerRuntime } from '../../../src/l4/connection-context.js';
import { ConnectionTracker } from '../../../src/l4/connection-pipeline.js';
import { ForwardedConnection } from '../../../src/l4/forwarded-connection.js';
import type { SideState } from '../../../src/l4/live-connection.js';
import type { OpaqueForward } from '../../../src/l4/tcp-forward.js';

class FakeForward implements OpaqueForward {
  bytesDownstreamToUpstream = 0;
  bytesUpstreamToDownstream = 0;
  upstreamConnected = true;
  idleTimedOut = false;
  errorCode: RemoraErrorCode | undefined;
  error: Error | undefined;
  ended = false;
  downstreamState: SideState = 'open';
  upstreamState: SideState = 'fin-received';
  readonly aborts: RemoraErrorCode[] = [];
  abort(code: RemoraErrorCode): void { this.aborts.push(code); }
}

const FACTS = { protocol: 'opaque:server-first', service: 'mail', endpoint: '10.0.0.5:2525', attempts: 2 };

function context(): ConnectionContext {
  return {
    id: 41, direction: 'outbound', socket: undefined, native: undefined, handle: undefined,
    originalDst: { address: '10.96.0.7', port: 2525, family: 4 },
    peerAddress: '10.0.0.2', peerPort: 40_000, startedAt: 1_000, runtime: {} as ListenerRuntime,
    peerIdentity: 'spiffe://cluster.local/ns/a/sa/b', peerCertificateHash: undefined,
  };
}

test('tracked from start() to the end; the outcome has the forward\'s bytes and code and the stages\' facts', () => {
  const tracker = new ConnectionTracker();
  const outcomes: ConnectionOutcome[] = [];
  const c = new ForwardedConnection(context(), FACTS, (o) => { outcomes.push(o); }, tracker);
  assert.equal(tracker.size, 0, 'not tracked before the forward runs');
  const f = new FakeForward();
  c.start(f);
  assert.equal(tracker.size, 1);
  f.bytesDownstreamToUpstream = 120;
  f.bytesUpstreamToDownstream = 4_096;
  f.idleTimedOut = true;
  f.errorCode = 'REMORA_ERR_UPSTREAM_RESET';
  f.error = new Error('read ECONNRESET');
  c.end(f);
  assert.equal(tracker.size, 0);
  assert.equal(outcomes.length, 1);
  assert.deepEqual(outcomes[0], {
    code: 'REMORA_ERR_UPSTREAM_RESET', error: f.error, bytesIn: 120, bytesOut: 4_096, idleTimeout: true,
    protocol: 'opaque:server-first', service: 'mail', endpoint: '10.0.0.5:2525', attempts: 2, tlsCode: undefined,
    http: false, peerIdentity: 'spiffe://cluster.local/ns/a/sa/b',
  });
  c.end(f);
  assert.equal(outcomes.length, 1, 'the end is reported once');
  assert.equal(c.describe(2_000), undefined, 'an ended connection is not shown');
});

test('/debug/connections shows the forward phase with live bytes and side states; the drain\'s abort reaches the forward', () => {
  const tracker = new ConnectionTracker();
  const c = new ForwardedConnection(context(), FACTS, () => undefined, tracker);
  assert.equal(c.describe(2_000), undefined, 'nothing to show before the forward runs');
  const f = new FakeForward();
  c.start(f);
  f.bytesDownstreamToUpstream = 7;
  f.bytesUpstreamToDownstream = 9;
  assert.deepEqual(tracker.list(2_500), [{
    id: 41, direction: 'outbound', downstream: '10.0.0.2:40000', originalDst: '10.96.0.7:2525',
    peerIdentity: 'spiffe://cluster.local/ns/a/sa/b', ageMs: 1_500, phase: 'forward', protocol: 'mtls/opaque:server-first',
    service: 'mail', endpoint: '10.0.0.5:2525', bytesIn: 7, bytesOut: 9, downstreamState: 'open', upstreamState: 'fin-received',
  }]);
  assert.equal(tracker.abortAll('REMORA_ERR_DRAIN_TIMEOUT'), 1);
  assert.deepEqual(f.aborts, ['REMORA_ERR_DRAIN_TIMEOUT']);
});

test('an end reported before start() leaves nothing tracked', async () => {
  const tracker = new ConnectionTracker();
  const outcomes: ConnectionOutcome[] = [];
  const c = new ForwardedConnection(context(), FACTS, (o) => { outcomes.push(o); }, tracker);
  const f = new FakeForward();
  c.end(f);
  c.start(f);
  assert.equal(tracker.size, 0);
  assert.equal(outcomes.length, 1);
  await tracker.whenEmpty();
});
