import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as v from '../../../src/config/value-parsers.js';

test('ports and port selections', () => {
  assert.deepEqual(v.port('8080'), { ok: true, value: 8080 });
  assert.equal(v.port('0').ok, false);
  assert.equal(v.port('65536').ok, false);
  assert.equal(v.port('80-90').ok, false);
  assert.deepEqual(v.portSelection('*'), { ok: true, value: { all: true } });
  assert.deepEqual(v.portSelection(''), { ok: true, value: { all: false, ranges: [] } });
  assert.deepEqual(v.portSelection('8000-8100, 80,8050:8200 81'), {
    ok: true, value: { all: false, ranges: [{ from: 80, to: 81 }, { from: 8000, to: 8200 }] },
  });
  const bad = v.portSelection('80,9000-8000');
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? '' : bad.expected, /"9000-8000" is not a port or range/);
});

test('CIDRs: both families, canonical text, host bits refused with a hint', () => {
  const r = v.cidrList('10.0.0.0/8, fd00::/8,192.168.1.1,2001:DB8:0:0::/32');
  assert.ok(r.ok);
  if (r.ok) assert.deepEqual(r.value.map((c) => c.text), ['10.0.0.0/8', 'fd00::/8', '192.168.1.1/32', '2001:db8::/32']);
  const bad = v.cidrList('10.1.2.3/8');
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? '' : bad.expected, /did you mean 10\.0\.0\.0\/8/);
  assert.equal(v.cidrList('10.0.0.0/33').ok, false);
  assert.equal(v.cidrList('nope').ok, false);
  assert.deepEqual(v.cidrSelection('*'), { ok: true, value: { all: true } });
});

test('ids, durations, host:port, booleans, enums', () => {
  assert.deepEqual(v.idList('1337, 1338,1337'), { ok: true, value: [1337, 1338] });
  assert.equal(v.idList('istio').ok, false);
  assert.equal(v.idList('').ok, false);
  assert.deepEqual(v.duration(0, 60_000)('5s'), { ok: true, value: 5000 });
  assert.deepEqual(v.duration(0, 60_000)('250ms'), { ok: true, value: 250 });
  assert.equal(v.duration(0, 60_000)('2m').ok, false);
  assert.equal(v.duration(0, 60_000)('soon').ok, false);
  assert.deepEqual(v.hostPort('[::1]:15000'), { ok: true, value: { host: '::1', port: 15000 } });
  assert.deepEqual(v.hostPort('127.0.0.1:15000'), { ok: true, value: { host: '127.0.0.1', port: 15000 } });
  assert.equal(v.hostPort('::1:15000').ok, false);
  assert.equal(v.hostPort('127.0.0.1').ok, false);
  assert.deepEqual(v.boolean('yes'), { ok: true, value: true });
  assert.equal(v.boolean('maybe').ok, false);
  assert.deepEqual(v.oneOf(['a', 'b'])('b'), { ok: true, value: 'b' });
  assert.equal(v.oneOf(['a', 'b'])('c').ok, false);
});
