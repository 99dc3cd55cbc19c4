import assert from 'node:assert/strict';
import { test } from 'node:test';
import { areaOf, summarizeCpuProfile, type CpuProfile } from '../../../bench/profile.js';

const frame = (functionName: string, url: string, lineNumber = 0): { functionName: string; url: string; lineNumber: number } => ({ functionName, url, lineNumber });

test('areas: idle, GC, native, remora layers, Node modules, pino', () => {
  assert.equal(areaOf(frame('(idle)', '')), 'idle (waiting in epoll)');
  assert.equal(areaOf(frame('(garbage collector)', '')), 'garbage collection');
  assert.equal(areaOf(frame('writev', '')), 'native builtins and bindings (writev, parsers, ...)');
  assert.equal(areaOf(frame('x', 'file:///work/main/dist/src/l7/http-exchange.js')), 'remora l7/');
  assert.equal(areaOf(frame('x', 'file:///app/dist/src/proxy/proxy.js')), 'remora proxy/');
  assert.equal(areaOf(frame('x', 'node:_http_outgoing')), 'Node http/http2 (JavaScript)');
  assert.equal(areaOf(frame('x', 'node:internal/stream_base_commons')), 'Node net/streams (JavaScript)');
  assert.equal(areaOf(frame('x', 'file:///app/node_modules/pino/lib/proto.js')), 'logging (pino)');
});

test('self samples per area and function; busy excludes idle', () => {
  const p: CpuProfile = {
    startTime: 0, endTime: 2_000_000,
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 3, 4, 5] },
      { id: 2, callFrame: frame('(idle)', '') },
      { id: 3, callFrame: frame('writev', '') },
      { id: 4, callFrame: frame('#runAttempt', 'file:///r/dist/src/l7/http-exchange.js', 260) },
      { id: 5, callFrame: frame('writev', '') },
    ],
    samples: [2, 2, 3, 3, 3, 4, 5, 2],
    timeDeltas: [1, 1, 1, 1, 1, 1, 1, 1],
  };
  const s = summarizeCpuProfile(p);
  assert.equal(s.samples, 8);
  assert.equal(s.busy, 5 / 8);
  assert.equal(s.durationS, 2);
  assert.deepEqual(s.areas.map((a) => [a.area, a.busyShare]), [['native builtins and bindings (writev, parsers, ...)', 0.8], ['remora l7/', 0.2]]);
  assert.deepEqual(s.top.map((f) => [f.name, f.where, f.busyShare]), [['writev', '(native)', 0.8], ['#runAttempt', 'src/l7/http-exchange.js:261', 0.2]]);
});
