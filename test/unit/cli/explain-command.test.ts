// `remora explain` without a kernel: flags, the rules from --rules-file, the proxy's half from a stand-in admin API,
// how both are merged (listener by REDIRECT port, notes) and the exit codes.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseExplainFlags, runExplainCommand, type ExplainReport } from '../../../src/cli/explain-command.js';
import { RemoraError } from '../../../src/core/errors.js';

const RULES = `*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [9:540]
:REMORA_OUTPUT - [0:0]
:REMORA_REDIRECT - [0:0]
[9:540] -A OUTPUT -p tcp -j REMORA_OUTPUT
[2:120] -A REMORA_OUTPUT -m owner --uid-owner 1337 -j RETURN
[4:240] -A REMORA_OUTPUT -p tcp -m multiport --dports 5432 -j RETURN
[3:180] -A REMORA_OUTPUT -j REMORA_REDIRECT
[3:180] -A REMORA_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
`;

test('flags: --header repeats, every other flag once; switches take no value; every problem at once', () => {
  const f = parseExplainFlags(['--dst', '10.0.0.1:80', '--header', 'a: 1', '--header=b: 2', '--json', '--admin', '[::1]:15000']);
  assert.deepEqual(f.issues, []);
  assert.deepEqual(f.params.get('header'), ['a: 1', 'b: 2']);
  assert.equal(f.json, true);
  assert.deepEqual(f.admin, { host: '::1', port: 15000 });
  const bad = parseExplainFlags(['--dst', 'a', '--dst', 'b', '--json=yes', '--admin', 'nope', 'stray']);
  assert.deepEqual(bad.issues.map((i) => `${i.key}: ${i.expected}`), [
    '--dst: each flag once', 'stray: a flag starting with "--" (see --help)', '--json: no value (a switch)', '--admin: HOST:PORT of the admin listener ([IPv6]:PORT)',
  ]);
});

test('bad flags and a bad query are one REMORA_ERR_USAGE listing each (exit 2 in main)', async () => {
  await assert.rejects(runExplainCommand(['--dst', '10.0.0.1', '--frob', '1', '--method', 'G T'], () => undefined), (err: unknown) => {
    assert.ok(err instanceof RemoraError);
    assert.equal(err.code, 'REMORA_ERR_USAGE');
    assert.match(err.message, /--frob: expected a known flag/);
    assert.match(err.message, /--dst = "10.0.0.1": expected IP:PORT/);
    assert.match(err.message, /--method = "G T": expected an HTTP method token/);
    return true;
  });
});

test('--rules-file and an admin API: merged into one report; listener by the REDIRECT port; exit 1 without a sidecar', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-explain-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const rules = join(dir, 'rules.txt');
  writeFileSync(rules, RULES);
  let asked = '';
  const admin = http.createServer((req, res) => {
    asked = req.url ?? '';
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      configVersion: 4, configHash: 'abcdef0123456789', listeners: { outbound: 15001, inbound: 15006 },
      stages: [{ stage: 'listener', decision: 'outbound listener :15001', reason: 'r' }, { stage: 'service', decision: 'service shop', reason: 'by address' }],
    }));
  });
  admin.listen(0, '127.0.0.1');
  await once(admin, 'listening');
  t.after(() => { admin.close(); });
  const port = (admin.address() as AddressInfo).port;
  let out = '';
  const code = await runExplainCommand(['--dst', '10.0.0.7:80', '--path', '/a', '--rules-file', rules, '--admin', `127.0.0.1:${port}`, '--json'], (s) => { out += s; });
  assert.equal(code, 0);
  assert.match(asked, /^\/debug\/explain\?dst=10\.0\.0\.7%3A80&direction=outbound&path=%2Fa$/);
  const r = JSON.parse(out) as ExplainReport;
  assert.equal(r.captured, true);
  assert.deepEqual(r.listener, { name: 'outbound', port: 15001 });
  assert.ok(r.rules.ok);
  assert.equal(r.rules.verdict.kind, 'captured');
  assert.equal(r.rules.verdict.rule?.packets, 3);
  assert.ok(r.proxy.ok);
  assert.deepEqual(r.notes, []);

  let text = '';
  assert.equal(await runExplainCommand(['--dst', '10.0.0.7:5432', '--rules-file', rules, '--admin', `127.0.0.1:${port}`], (s) => { text += s; }), 0);
  assert.match(text, /^rules\s+NOT captured \(nat OUTPUT\): exclude_outbound_ports: never captured/m);
  assert.match(text, /-A REMORA_OUTPUT -p tcp -m multiport --dports 5432 -j RETURN {2}\[4 connections so far\]/);
  assert.match(text, /^note: not captured/m);

  let none = '';
  let stderr = '';
  const closed = await runExplainCommand(['--dst', '10.0.0.7:80', '--rules-file', rules, '--admin', '127.0.0.1:1', '--json'], (s) => { none += s; }, (s) => { stderr += s; });
  assert.equal(closed, 1);
  assert.match(stderr, /^remora explain: REMORA_ERR_ADMIN_REQUEST: cannot reach the sidecar's admin API at http:\/\/127\.0\.0\.1:1\/debug\/explain/);
  const partial = JSON.parse(none) as ExplainReport;
  assert.equal(partial.proxy.ok, false);
  assert.equal(partial.listener?.name, 'unknown');
  assert.equal(partial.rules.ok, true);
});
