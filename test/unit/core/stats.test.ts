import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Stats } from '../../../src/core/stats.js';

test('totals are the sums over listeners; per-listener counters are kept', () => {
  let now = 1000;
  const s = new Stats(() => now);
  const out = s.listener('outbound');
  const inb = s.listener('inbound');
  assert.equal(s.listener('outbound'), out, 'the same counters object is returned for a name');
  out.accepted += 3; out.active += 1; out.closed += 2; out.downstreamToUpstream += 10; out.upstreamToDownstream += 20;
  inb.accepted += 1; inb.closed += 1; inb.downstreamToUpstream += 5; inb.idleTimeouts += 1;
  now = 1500;
  const snap = s.snapshot('ready');
  assert.equal(snap.state, 'ready');
  assert.equal(snap.uptimeMs, 500);
  assert.deepEqual(snap.connections, { accepted: 4, active: 1, closed: 3 });
  assert.deepEqual(snap.bytes, { downstreamToUpstream: 15, upstreamToDownstream: 20 });
  assert.equal(snap.idleTimeouts, 1);
  assert.deepEqual(snap.listeners['outbound']?.connections, { accepted: 3, active: 1, closed: 2 });
  assert.deepEqual(snap.listeners['inbound']?.bytes, { downstreamToUpstream: 5, upstreamToDownstream: 0 });
  out.address = '[::]:15001';
  assert.equal(s.snapshot('ready').listeners['outbound']?.address, '[::]:15001');
  assert.equal(s.snapshot('ready').listeners['outbound']?.ipv4Only, false);
});

test('errors are counted by code, their system causes separately', () => {
  const s = new Stats();
  s.countError('REMORA_ERR_UPSTREAM_CONNECT', 'ECONNREFUSED');
  s.countError('REMORA_ERR_UPSTREAM_CONNECT', 'EHOSTUNREACH');
  s.countError('REMORA_ERR_NOT_REDIRECTED');
  s.countError('EMFILE', 'EMFILE');
  s.countSniff('opaque');
  const snap = s.snapshot('ready');
  assert.deepEqual(snap.errors, { EMFILE: 1, REMORA_ERR_NOT_REDIRECTED: 1, REMORA_ERR_UPSTREAM_CONNECT: 2 });
  assert.deepEqual(snap.errorCauses, { ECONNREFUSED: 1, EHOSTUNREACH: 1 });
  assert.deepEqual(snap.sniff, { opaque: 1 });
  assert.equal(s.errorCount('REMORA_ERR_UPSTREAM_CONNECT'), 2);
  assert.equal(s.errorCount('nothing'), 0);
});
