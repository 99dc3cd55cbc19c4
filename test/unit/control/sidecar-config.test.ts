import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

const noFile = (flags: [string, string][], env: NodeJS.ProcessEnv = {}) => ({ file: undefined, flags: new Map(flags.map(([k, v]) => [k, { value: v }])), env });
const withFile = (text: string, flags: [string, string][] = [], env: NodeJS.ProcessEnv = {}) => ({ ...noFile(flags, env), file: 'p.ini', readFile: () => Buffer.from(text) });

test('--control needs a token and a readable CA file; without control nothing changes; a bad URL is left to the validator', () => {
  assert.equal(proxyControlOptions(noFile([])), undefined);
  const r = proxyControlOptions(noFile([['control', 'https://x:1'], ['control-ca-file', '/nonexistent/ca.pem']]));
  assert.ok(r !== undefined && !r.ok);
  assert.deepEqual(r !== undefined && !r.ok ? r.issues.map((i) => i.key) : [], ['--token', '--control-ca-file']);
  const lone = proxyControlOptions(noFile([['token', 't']]));
  assert.ok(lone !== undefined && !lone.ok);
  assert.deepEqual(lone !== undefined && !lone.ok ? lone.issues.map((i) => i.key) : [], ['--control']);
  assert.deepEqual(proxyControlOptions(noFile([['control', 'http://x:1']])), { ok: false, issues: [] });
  const load = loadSnapshotDefinitions({ ...noFile([['control', 'http://x:1']]) });
  assert.equal(load.ok, false);
  assert.match(!load.ok ? JSON.stringify(load.issues) : '', /"--control".*"http:\/\/x:1".*https:\/\/HOST:PORT/);
});

test('[proxy] control, control_token, control_ca_file and spiffe_id come from the file; the environment and flags override them', () => {
  const ca = join(mkdtempSync(join(tmpdir(), 'remora-ctl-opt-')), 'root.pem');
  writeFileSync(ca, 'PEM');
  const file = `[proxy]\ncontrol = https://10.0.0.2:15012/\ncontrol_token = file-token\ncontrol_ca_file = ${ca}\nspiffe_id = spiffe://cluster.local/ns/a/sa/b\n`;
  const fromFile = proxyControlOptions(withFile(file, [], { POD_NAME: 'pod-1' }));
  assert.deepEqual(fromFile, { ok: true, options: { url: 'https://10.0.0.2:15012', token: 'file-token', ca: 'PEM', name: 'pod-1', spiffeId: 'spiffe://cluster.local/ns/a/sa/b' } });
  const overridden = proxyControlOptions(withFile(file, [['control', 'https://cp.mesh:9443'], ['token', 'flag-token']], { REMORA_CONTROL_TOKEN: 'env-token', POD_NAME: 'p' }));
  assert.ok(overridden?.ok === true);
  assert.equal(overridden.options.url, 'https://cp.mesh:9443');
  assert.equal(overridden.options.token, 'flag-token');
  const envOnly = proxyControlOptions(withFile(file, [], { REMORA_CONTROL_TOKEN: 'env-token', POD_NAME: 'p' }));
  assert.equal(envOnly?.ok === true ? envOnly.options.token : '', 'env-token');
  // The file's [proxy] keys validate like any other: a bad URL is a clear error at its line.
  for (const bad of ['http://10.0.0.2:15012', 'https://10.0.0.2:15012/api', 'https://user@10.0.0.2', 'not a url']) {
    const load = loadSnapshotDefinitions(withFile(`[proxy]\ncontrol = ${bad}\n`));
    assert.equal(load.ok, false, bad);
    assert.match(!load.ok ? JSON.stringify(load.issues) : '', /"p\.ini:2","key":"\[proxy\] control".*https:\/\/HOST:PORT of the control plane/, bad);
  }
  const badId = loadSnapshotDefinitions(withFile('[proxy]\nspiffe_id = spiffe://cluster.local\n'));
  assert.match(!badId.ok ? JSON.stringify(badId.issues) : '', /\[proxy\] spiffe_id/);
  // control in the file without a token or a CA file: the missing keys are named as file keys, at control's line.
  const missing = proxyControlOptions(withFile('[proxy]\ncontrol = https://10.0.0.2:15012\n'));
  assert.deepEqual(missing !== undefined && !missing.ok ? missing.issues.map((i) => `${i.source} ${i.key}`) : [], ['p.ini:2 [proxy] control_token', 'p.ini:2 [proxy] control_ca_file']);
});
