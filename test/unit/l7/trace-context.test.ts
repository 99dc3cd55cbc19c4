// Trace context rules: W3C traceparent (invalid -> a new trace, version ff, lengths, upper case, all-zero ids), B3
// single and multi (64-bit ids left-padded, `b3: 0`, debug), the sampling decision (the caller's, else the rate),
// and the headers sent upstream (the sidecar's span id as the parent, every format present rewritten, tracestate kept).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatB3Single, formatTraceparent, formatsOf, IdSource, incomingTrace, parseB3Multi, parseB3Single, parseTraceparent, propagate, startSpan,
  type TraceContext,
} from '../../../src/l7/trace-context.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';
const fixedIds = { traceId: () => 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', spanId: () => 'bbbbbbbbbbbbbbbb' };

test('traceparent: a valid value, the sampled flag', () => {
  assert.deepEqual(parseTraceparent(`00-${T}-${S}-01`), { traceId: T, spanId: S, sampled: true });
  assert.deepEqual(parseTraceparent(`00-${T}-${S}-00`), { traceId: T, spanId: S, sampled: false });
  assert.deepEqual(parseTraceparent(` 00-${T}-${S}-03 `), { traceId: T, spanId: S, sampled: true }, 'other flag bits ignored, spaces trimmed');
  // A later version may be longer, followed by "-".
  assert.deepEqual(parseTraceparent(`01-${T}-${S}-01-what-comes-next`), { traceId: T, spanId: S, sampled: true });
});

test('traceparent: rejected values', () => {
  for (const bad of [
    `ff-${T}-${S}-01`, // version ff is invalid
    `00-${'0'.repeat(32)}-${S}-01`, // all-zero trace id
    `00-${T}-${'0'.repeat(16)}-01`, // all-zero parent id
    `00-${T.toUpperCase()}-${S}-01`, // upper case
    `00-${T}-${S}-01-extra`, // version 00 with more after
    `01-${T}-${S}-01x`, // a later version not followed by "-"
    `00-${T.slice(1)}-${S}-01`, // short trace id
    `00-${T}-${S}-0g`, // flags not hex
    `0-${T}-${S}-01`, '', 'garbage',
  ]) assert.equal(parseTraceparent(bad), undefined, bad);
});

test('b3 single: every form; 64-bit trace ids left-padded; b3: 0', () => {
  assert.deepEqual(parseB3Single(`${T}-${S}-1`), { traceId: T, spanId: S, sampled: true });
  assert.deepEqual(parseB3Single(`${T}-${S}`), { traceId: T, spanId: S, sampled: undefined });
  assert.deepEqual(parseB3Single(`${T}-${S}-d-${'1'.repeat(16)}`), { traceId: T, spanId: S, sampled: true }, 'debug: sampled; with parent');
  assert.deepEqual(parseB3Single(`a3ce929d0e0e4736-${S}-0`), { traceId: `0000000000000000a3ce929d0e0e4736`, spanId: S, sampled: false });
  assert.deepEqual(parseB3Single('0'), { traceId: undefined, spanId: undefined, sampled: false });
  assert.deepEqual(parseB3Single('1'), { traceId: undefined, spanId: undefined, sampled: true });
  for (const bad of [`${T}-${S}-x`, `${T}`, `${T}-${'0'.repeat(16)}-1`, `${T.slice(2)}-${S}-1`, `${T}-${S}-1-zz`, `${T}-${S}-1-${S}-5`, '2']) {
    assert.equal(parseB3Single(bad), undefined, bad);
  }
  const c: TraceContext = { traceId: T, spanId: S, parentSpanId: '1111111111111111', sampled: true };
  assert.equal(formatB3Single(c), `${T}-${S}-1-1111111111111111`);
  assert.equal(formatB3Single({ ...c, parentSpanId: undefined, sampled: false }), `${T}-${S}-0`);
  assert.equal(formatTraceparent(c), `00-${T}-${S}-01`);
});

test('b3 multi: ids, sampled, flags (debug), decision only, invalid', () => {
  assert.deepEqual(parseB3Multi(['X-B3-TraceId', T.toUpperCase(), 'X-B3-SpanId', S, 'X-B3-Sampled', '1']), { traceId: T, spanId: S, sampled: true });
  assert.deepEqual(parseB3Multi(['x-b3-traceid', 'a3ce929d0e0e4736', 'x-b3-spanid', S]), { traceId: '0000000000000000a3ce929d0e0e4736', spanId: S, sampled: undefined });
  assert.deepEqual(parseB3Multi(['x-b3-traceid', T, 'x-b3-spanid', S, 'x-b3-flags', '1', 'x-b3-sampled', '0']), { traceId: T, spanId: S, sampled: true });
  assert.deepEqual(parseB3Multi(['x-b3-sampled', '0']), { traceId: undefined, spanId: undefined, sampled: false });
  assert.equal(parseB3Multi(['x-b3-traceid', T]), undefined, 'a trace id without a span id');
  assert.equal(parseB3Multi(['x-b3-traceid', 'zz', 'x-b3-spanid', S]), undefined);
  assert.equal(parseB3Multi([]), undefined);
});

test('incoming: traceparent first; an invalid traceparent falls to B3, else nothing', () => {
  const b3 = `${'c'.repeat(32)}-${'d'.repeat(16)}-1`;
  assert.equal(incomingTrace(['traceparent', `00-${T}-${S}-01`, 'b3', b3])?.traceId, T);
  assert.equal(incomingTrace(['traceparent', `ff-${T}-${S}-01`, 'b3', b3])?.traceId, 'c'.repeat(32));
  assert.equal(incomingTrace(['traceparent', `ff-${T}-${S}-01`]), undefined);
  assert.equal(incomingTrace(['x-b3-traceid', T, 'x-b3-spanid', S])?.spanId, S);
});

test('startSpan: the incoming trace and a new span id under the incoming one; the caller\'s decision beats the rate', () => {
  const never = (): number => { throw new Error('random() must not be asked when the caller decided'); };
  const c = startSpan({ traceId: T, spanId: S, sampled: false }, 1, never, fixedIds);
  assert.deepEqual(c, { traceId: T, spanId: 'bbbbbbbbbbbbbbbb', parentSpanId: S, sampled: false });
  assert.equal(startSpan({ traceId: T, spanId: S, sampled: true }, 0, never, fixedIds).sampled, true);
  // No incoming context: a new root span, sampled by the rate.
  const root = startSpan(undefined, 1, () => 0.99, fixedIds);
  assert.deepEqual(root, { traceId: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', spanId: 'bbbbbbbbbbbbbbbb', parentSpanId: undefined, sampled: true });
  assert.equal(startSpan(undefined, 0, () => 0, fixedIds).sampled, false, 'rate 0: never');
  assert.equal(startSpan(undefined, 0.5, () => 0.49, fixedIds).sampled, true);
  assert.equal(startSpan(undefined, 0.5, () => 0.5, fixedIds).sampled, false);
  // b3: 0 (a decision without ids): a new trace, not sampled whatever the rate.
  const denied = startSpan({ traceId: undefined, spanId: undefined, sampled: false }, 1, never, fixedIds);
  assert.equal(denied.sampled, false);
  assert.equal(denied.parentSpanId, undefined);
  // Without an incoming decision but with ids (b3 with two parts): the rate decides, the parent is kept.
  assert.deepEqual(startSpan({ traceId: T, spanId: S, sampled: undefined }, 0, () => 0, fixedIds).parentSpanId, S);
});

test('propagate: W3C in -> W3C out with the sidecar as parent, tracestate kept, other headers in place', () => {
  const raw = ['host', 'a', 'TraceParent', `00-${T}-${S}-01`, 'tracestate', 'congo=t61rcWkgMzE', 'x-other', '1'];
  const c = startSpan(incomingTrace(raw), 0, Math.random, fixedIds);
  propagate(raw, c, formatsOf(raw));
  assert.deepEqual(raw, ['host', 'a', 'tracestate', 'congo=t61rcWkgMzE', 'x-other', '1', 'traceparent', `00-${T}-bbbbbbbbbbbbbbbb-01`]);
});

test('propagate: B3 multi in -> B3 multi out (ParentSpanId = the caller), single in -> single out; none in -> both W3C and B3', () => {
  const multi = ['X-B3-TraceId', T, 'X-B3-SpanId', S, 'X-B3-Sampled', '1', 'x-b3-flags', '0'];
  const c = startSpan(incomingTrace(multi), 0, Math.random, fixedIds);
  propagate(multi, c, formatsOf(multi));
  assert.deepEqual(multi, ['x-b3-traceid', T, 'x-b3-spanid', 'bbbbbbbbbbbbbbbb', 'x-b3-parentspanid', S, 'x-b3-sampled', '1']);

  const single = ['b3', `${T}-${S}-0`];
  const c2 = startSpan(incomingTrace(single), 1, Math.random, fixedIds);
  propagate(single, c2, formatsOf(single));
  assert.deepEqual(single, ['b3', `${T}-bbbbbbbbbbbbbbbb-0-${S}`]);

  const none = ['host', 'x'];
  const c3 = startSpan(incomingTrace(none), 1, Math.random, fixedIds);
  propagate(none, c3, formatsOf(none));
  assert.deepEqual(none, ['host', 'x', 'traceparent', `00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01`,
    'x-b3-traceid', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'x-b3-spanid', 'bbbbbbbbbbbbbbbb', 'x-b3-sampled', '1']);

  // An invalid traceparent is replaced by the new trace's.
  const bad = ['traceparent', `ff-${T}-${S}-01`];
  propagate(bad, startSpan(incomingTrace(bad), 1, Math.random, fixedIds), formatsOf(bad));
  assert.deepEqual(bad, ['traceparent', '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01']);
});

test('IdSource: lowercase hex of the right length, not zero, not repeated', () => {
  const ids = new IdSource();
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const t = ids.traceId();
    const s = ids.spanId();
    assert.match(t, /^[0-9a-f]{32}$/);
    assert.match(s, /^[0-9a-f]{16}$/);
    assert.ok(!seen.has(s));
    seen.add(s);
  }
});
