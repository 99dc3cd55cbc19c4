import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSnapshotDefinitions } from '../../../src/config/load-snapshot.js';
import { sidecarDocument } from '../../../src/control/sidecar-config.js';
import { renderState } from '../../../src/control/control-objects.js';
import { ControlledConfig, proxyControlOptions } from '../../../src/cli/proxy-control.js';

const pushed = renderState([
  { kind: 'mesh', name: 'default', spec: { connect_timeout: '2s' } },
  { kind: 'service', name: 'web', spec: { addresses: '10.96.0.10:80', endpoints: '10.1.0.1:8080' } },
]).text;
const local = '[proxy]\noutbound_port = 16001\nconnect_timeout = 9s\n\n[service local-only]\naddresses = 10.0.0.1:1\nendpoints = 10.0.0.2:1\n';

test('the sidecar validates the pushed state under its own [proxy] keys; the control plane wins for the keys it sets', () => {
  const text = sidecarDocument(pushed, local, 'local.ini');
  const r = loadSnapshotDefinitions({ file: 'c.ini', flags: new Map(), env: {}, readFile: () => Buffer.from(text) });
  assert.equal(r.ok, true, JSON.stringify(r));
  if (!r.ok) return;
  assert.equal(r.definitions.proxy.outboundPort, 16001);
  assert.equal(r.definitions.proxy.connectTimeout, 2000);
  assert.deepEqual(r.definitions.services.map((s) => s.name), ['web'], 'local service sections are not used once the control plane drives');
});

test('ControlledConfig keeps a pushed snapshot only when the reload accepts it', () => {
  const files: Record<string, string> = { 'local.ini': local };
  const cfg = new ControlledConfig({ file: 'local.ini', flags: new Map(), env: {}, readFile: (p) => Buffer.from(files[p] ?? '') });
  const first = cfg.load();
  assert.ok(first.ok);
  assert.deepEqual(first.ok ? first.definitions.services.map((s) => s.name) : [], ['local-only']);
  const ok = cfg.apply({ version: 3, nonce: 'n', ini: pushed }, () => ({ result: 'ok', version: 2, hash: 'h' }));
  assert.deepEqual(ok, { ok: true });
  const after = cfg.load();
  assert.deepEqual(after.ok ? after.definitions.services.map((s) => s.name) : [], ['web']);
  const bad = cfg.apply({ version: 4, nonce: 'n', ini: '[service x]\nbalancer = fastest\n' }, () => {
    const tried = cfg.load();
    assert.equal(tried.ok, false, 'the candidate is what the reload reads');
    return { result: 'rejected', issues: ['control:v4.ini:2: [service x] balancer: expected ...'] };
  });
  assert.deepEqual(bad, { ok: false, error: 'control:v4.ini:2: [service x] balancer: expected ...' });
  const kept = cfg.load();
  assert.deepEqual(kept.ok ? kept.definitions.services.map((s) => s.name) : [], ['web'], 'the last good snapshot stays');
});

test('--control needs https, a token and a readable CA file; without --control nothing changes', () => {
  assert.equal(proxyControlOptions(new Map(), {}), undefined);
  const r = proxyControlOptions(new Map([['control', { value: 'http://x:1' }], ['control-ca-file', { value: '/nonexistent/ca.pem' }]]), {});
  assert.ok(r !== undefined && !r.ok);
  assert.deepEqual(r !== undefined && !r.ok ? r.issues.map((i) => i.key) : [], ['--control', '--token', '--control-ca-file']);
  const lone = proxyControlOptions(new Map([['token', { value: 't' }]]), {});
  assert.ok(lone !== undefined && !lone.ok);
});
