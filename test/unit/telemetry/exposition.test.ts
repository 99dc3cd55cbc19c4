// The text exposition format 0.0.4: escaping, values, histogram bucketing, and the chunked writer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  escapeLabelValue, formatValue, labelPairs, renderExposition, writeExposition, type ExpositionSource,
} from '../../../src/telemetry/exposition.js';
import { bucketIndex, ENVOY_DEFAULT_BUCKETS, Histogram } from '../../../src/telemetry/histogram.js';

test('label values escape backslash, double quote and line feed; nothing else', () => {
  assert.equal(escapeLabelValue('plain-value/1.0'), 'plain-value/1.0');
  assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  assert.equal(labelPairs(['a', 'b'], ['x', 'y"z']), 'a="x",b="y\\"z"');
  assert.equal(labelPairs(['a'], []), 'a=""');
});

test('values: integers and floats as JavaScript prints them, special values as Go parses them', () => {
  assert.equal(formatValue(3), '3');
  assert.equal(formatValue(0.25), '0.25');
  assert.equal(formatValue(Infinity), '+Inf');
  assert.equal(formatValue(-Infinity), '-Inf');
  assert.equal(formatValue(Number.NaN), 'NaN');
});

test('Envoy\'s default buckets; a value equal to a bound falls in that bound\'s bucket (le), above the last in +Inf', () => {
  assert.deepEqual([...ENVOY_DEFAULT_BUCKETS], [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000]);
  const h = new Histogram();
  assert.equal(bucketIndex(h.bounds, 0), 0);
  assert.equal(bucketIndex(h.bounds, 0.5), 0);
  assert.equal(bucketIndex(h.bounds, 0.51), 1);
  assert.equal(bucketIndex(h.bounds, 1), 1);
  assert.equal(bucketIndex(h.bounds, 3600000), 18);
  assert.equal(bucketIndex(h.bounds, 3600001), 19);
  for (const v of [0.2, 1, 7, 7, 4e6]) h.observe(v);
  assert.deepEqual([...h.counts].map((c, i) => [i, c]).filter(([, c]) => c !== 0), [[0, 1], [1, 1], [3, 2], [19, 1]]);
  assert.equal(h.count, 5);
  assert.equal(h.sum, 0.2 + 1 + 7 + 7 + 4e6);
});

const big: ExpositionSource = function* (w) {
  w.family('x_total', 'counter', 'many\nlines \\ of help');
  for (let i = 0; i < 5000; i++) {
    w.sample('x_total', `i="${i}"`, i);
    if (i % 10 === 0) yield;
  }
};

test('HELP and TYPE lines; the chunked writer produces exactly what the one-string render does, in chunks', async () => {
  const whole = renderExposition([big]);
  assert.ok(whole.startsWith('# HELP x_total many\\nlines \\\\ of help\n# TYPE x_total counter\nx_total{i="0"} 0\n'));
  const chunks: string[] = [];
  let turns = 0;
  const n = await writeExposition([big], async (c) => { chunks.push(c); turns++; await Promise.resolve(); }, { sliceMs: 0, chunkChars: 4096 });
  assert.equal(chunks.join(''), whole);
  assert.equal(n, whole.length);
  assert.ok(chunks.length > 10, 'several chunks');
  assert.ok(turns === chunks.length);
  for (const c of chunks.slice(0, -1)) assert.ok(c.endsWith('\n'), 'chunks end at line ends');
});
