// The stats filter's observation: made exactly once per request, whichever way it ends (the response's end, a local
// reply, a reset, a tunnel, the client going away), with the status, bytes and gRPC status the client was sent.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { CounterMap } from '../../../src/core/stats.js';
import { silentLogger } from '../../../src/core/log.js';
import { observingRequestStatsFilter, type RequestObservation } from '../../../src/l7/filters/request-stats.js';
import { localReply } from '../../../src/l7/local-reply.js';
import { RequestContext } from '../../../src/l7/request-context.js';
import type { DownstreamRequest, DownstreamResponder, HttpHandler } from '../../../src/l7/request-types.js';

function context(grpc = false, protocol: 'http/1.1' | 'h2' = 'http/1.1'): RequestContext {
  const downstream = {
    protocol, method: 'GET', target: '/', authority: 'a', scheme: 'http', headers: [], body: undefined, tunnel: false, grpc,
    conn: { protocol: 'http1', originalDst: { address: '10.0.0.1', port: 80 }, sourceAddress: '10.0.0.2' }, log: silentLogger(),
  } as unknown as DownstreamRequest;
  const core = { stats: new CounterMap() } as unknown as ConstructorParameters<typeof RequestContext>[1];
  return new RequestContext(downstream, core, {} as unknown as ConstructorParameters<typeof RequestContext>[2]);
}

const sink: DownstreamResponder = {
  headersSent: false, informational: () => undefined, start: () => true, write: () => true, flush: () => undefined, onDrain: () => undefined,
  end: () => undefined, localReply: () => undefined, reset: () => undefined, tunnel: () => undefined,
};

function run(ctx: RequestContext, stage: HttpHandler): RequestObservation[] {
  const seen: RequestObservation[] = [];
  observingRequestStatsFilter((o) => { seen.push(o); })(stage)(ctx, sink);
  return seen;
}

test('a response from the upstream: status, body bytes, first byte and end times; observed at its end, once', () => {
  const ctx = context();
  let res!: DownstreamResponder;
  const seen = run(ctx, (_req, r) => { res = r; });
  assert.equal(seen.length, 0, 'nothing before the end');
  res.start(201, 'Created', [], false, false);
  res.write(Buffer.from('hello'));
  res.write(Buffer.from(' world'));
  res.end([]);
  ctx.finish();
  ctx.downstreamAborted();
  assert.equal(seen.length, 1);
  const o = seen[0] as RequestObservation;
  assert.equal(o.status, 201);
  assert.equal(o.responseBytes, 11);
  assert.equal(o.grpcStatus, -1);
  assert.ok(o.firstByteAt >= o.startedAt && o.endedAt >= o.firstByteAt);
  assert.equal(o.downstreamAborted, false);
  assert.equal((ctx.core.stats as CounterMap).get('http.responses.2xx'), 1);
});

test('a local reply: its status and body; gRPC over HTTP/2: a trailers-only 200 with the table\'s grpc-status', () => {
  const seen = run(context(), (_req, r) => { r.localReply(localReply('no-route'), false); });
  assert.equal(seen[0]?.status, 404);
  assert.equal(seen[0]?.localReplyReason, 'no-route');
  assert.equal(seen[0]?.responseBytes, Buffer.byteLength(localReply('no-route').body));
  const g = run(context(true, 'h2'), (_req, r) => { r.localReply(localReply('no-healthy-upstream'), true); });
  assert.equal(g[0]?.status, 200);
  assert.equal(g[0]?.grpcStatus, 14);
  assert.equal(g[0]?.responseBytes, 0);
});

test('gRPC status from the trailers', () => {
  const ctx = context(true, 'h2');
  const seen = run(ctx, (_req, r) => { r.start(200, '', ['content-type', 'application/grpc'], false, false); r.end(['grpc-status', '5']); });
  assert.equal(seen[0]?.grpcStatus, 5);
});

test('the client going away before the end: one observation, status 0; a reset after it: nothing more', () => {
  const ctx = context();
  let res!: DownstreamResponder;
  const seen = run(ctx, (req, r) => { res = r; req.onAbort(() => { req.finish(); }); });
  ctx.downstreamAborted(8);
  res.reset(8);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.downstreamAborted, true);
  assert.equal(seen[0]?.status, 0);
});

test('a reset after the head, and a tunnel', () => {
  const reset = run(context(), (_req, r) => { r.start(200, '', [], false, false); r.reset(2); });
  assert.equal(reset[0]?.status, 200);
  assert.equal(reset[0]?.wasReset, true);
  const tunnel = run(context(), (_req, r) => { r.tunnel(101, 'Switching Protocols', [], {} as Socket, Buffer.alloc(0)); });
  assert.equal(tunnel[0]?.status, 101);
  assert.equal(tunnel[0]?.tunneled, true);
});

test('an observer that throws fails neither the request nor the next ones', () => {
  const ctx = context();
  const h = observingRequestStatsFilter(() => { throw new Error('bug'); })((_req, r) => { r.localReply(localReply('no-route'), false); });
  // The reply still reaches the client, for this request and the next one.
  const replies: string[] = [];
  const recording: DownstreamResponder = { ...sink, localReply: (reply) => { replies.push(reply.reason); } };
  assert.doesNotThrow(() => { h(ctx, recording); });
  assert.doesNotThrow(() => { h(context(), recording); });
  assert.deepEqual(replies, ['no-route', 'no-route']);
});
