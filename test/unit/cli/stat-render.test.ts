// `remora ctl stat`'s table: Linkerd-like columns, "-" without requests, an explicit line without traffic.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderStat } from '../../../src/cli/stat-render.js';

test('one row per service; "-" where nothing was measured', () => {
  const text = renderStat({
    window: '1m', sidecars: 2, droppedEdges: 0, edges: [],
    services: [
      { name: 'db', rps: 0, successRate: null, p50: null, p95: null, p99: null, tcpConnections: 3, requests: 0 },
      { name: 'web', rps: 2.5, successRate: 0.6667, p50: 7.5, p95: 48.25, p99: 97, tcpConnections: 0, requests: 150 },
    ],
  });
  const lines = text.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^SERVICE +SUCCESS +RPS +LATENCY_P50 +LATENCY_P95 +LATENCY_P99 +TCP_CONN$/);
  assert.match(lines[1] ?? '', /^db +- +0\.00rps +- +- +- +3$/);
  assert.match(lines[2] ?? '', /^web +66\.67% +2\.50rps +7\.5ms +48ms +97ms +0$/);
  assert.equal(renderStat({ window: '5m', sidecars: 1, droppedEdges: 0, edges: [], services: [] }), 'no traffic reported in the last 5m (1 sidecar reporting)\n');
});
