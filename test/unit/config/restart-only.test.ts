import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProxySettings } from '../../../src/config/config-snapshot.js';
import { parseIni, type IniDocument } from '../../../src/config/ini-file.js';
import { resolveOptions } from '../../../src/config/option-set.js';
import { proxyOptionSpecs } from '../../../src/config/proxy-options.js';
import { RESTART_ONLY_KEYS, restartOnlyIssues } from '../../../src/config/restart-only.js';

const FILE = '/etc/remora/remora.ini';

/** The [proxy] settings of an INI text (defaults for what it does not set), and its document. */
function settings(text: string): { values: ProxySettings; doc: IniDocument } {
  const { doc, issues } = parseIni(text, FILE);
  assert.deepEqual(issues, []);
  const r = resolveOptions(proxyOptionSpecs, { flags: new Map(), env: {}, section: doc.sections.find((s) => s.name === 'proxy'), file: FILE });
  assert.deepEqual(r.issues, []);
  return { values: r.values, doc };
}

test('the restart-only keys are [proxy] keys', () => {
  const keys = Object.values(proxyOptionSpecs).map((s) => s.key);
  for (const k of RESTART_ONLY_KEYS) assert.ok(keys.includes(k), k);
  assert.deepEqual([...RESTART_ONLY_KEYS], ['outbound_port', 'inbound_port', 'listen_address', 'uid', 'gid', 'admin_address', 'http_engine', 'tcp_forwarder', 'http2_codec', 'readiness_probe_uid', 'metrics_address',
    'control', 'control_token', 'control_ca_file', 'spiffe_id', 'workers']);
});

test('no issue when only reloadable keys change, or nothing does', () => {
  const running = settings('[proxy]\noutbound_port = 15001\nadmin_address = 127.0.0.1:15000\nconnect_timeout = 10s\n');
  assert.deepEqual(restartOnlyIssues(running.values, running.values, running.doc, FILE), []);
  const next = settings('[proxy]\nconnect_timeout = 2s\nlog_level = debug\nidle_timeout = 1m\noutbound_port = 15001\n');
  assert.deepEqual(restartOnlyIssues(running.values, next.values, next.doc, FILE), []);
  // admin_address compared as {host, port}, not by object identity or spelling.
  const same = settings('[proxy]\nadmin_address = 127.0.0.1:15000\n');
  assert.notEqual(same.values.adminAddress, running.values.adminAddress);
  assert.deepEqual(restartOnlyIssues(running.values, same.values, same.doc, FILE), []);
});

test('one issue per changed key, at its line in the new file, with the new text and the value the proxy started with', () => {
  const running = settings('[proxy]\noutbound_port = 15001\n');
  const next = settings([
    '; comment',
    '[proxy]',                          // 2
    'log_level = debug',                // 3
    'outbound_port = 16001',            // 4
    'inbound_port = 16006',             // 5
    'listen_address = 0.0.0.0',         // 6
    'uid = 1000',                       // 7
    'gid = 1001',                       // 8
    'admin_address = 127.0.0.1:16000',  // 9
    'http_engine = off',                // 10
  ].join('\n'));
  const issues = restartOnlyIssues(running.values, next.values, next.doc, FILE);
  assert.deepEqual(issues.map((i) => [i.source, i.key, i.value]), [
    [`${FILE}:4`, '[proxy] outbound_port', '16001'],
    [`${FILE}:5`, '[proxy] inbound_port', '16006'],
    [`${FILE}:6`, '[proxy] listen_address', '0.0.0.0'],
    [`${FILE}:7`, '[proxy] uid', '1000'],
    [`${FILE}:8`, '[proxy] gid', '1001'],
    [`${FILE}:9`, '[proxy] admin_address', '127.0.0.1:16000'],
    [`${FILE}:10`, '[proxy] http_engine', 'off'],
  ]);
  assert.equal(issues[0]?.expected,
    '15001, the value the proxy started with (listeners are bound at start: restart the proxy to change outbound_port)');
  assert.match(issues[2]?.expected ?? '', /^::, the value the proxy started with \(listeners are bound at start: restart the proxy to change listen_address\)$/);
  assert.match(issues[3]?.expected ?? '', /^1337, the value the proxy started with \(.*restart the proxy to change uid\)$/);
  assert.match(issues[5]?.expected ?? '', /^127\.0\.0\.1:15000, the value the proxy started with \(the admin listener is bound at start: restart the proxy to change admin_address\)$/);
  assert.match(issues[6]?.expected ?? '', /^on, the value the proxy started with \(.*restart the proxy to change http_engine\)$/);
});

test('a key removed from the new file is at the [proxy] line, else at the file, with its new value', () => {
  const running = settings('[proxy]\ninbound_port = 16006\n');
  const withSection = settings('\n[proxy]\nlog_level = info\n');
  assert.deepEqual(restartOnlyIssues(running.values, withSection.values, withSection.doc, FILE).map((i) => [i.source, i.key, i.value]),
    [[`${FILE}:2`, '[proxy] inbound_port', '15006']]);
  const withoutSection = settings('[registry]\nmode = passthrough\n');
  assert.deepEqual(restartOnlyIssues(running.values, withoutSection.values, withoutSection.doc, FILE).map((i) => [i.source, i.value]),
    [[FILE, '15006']]);
  assert.deepEqual(restartOnlyIssues(running.values, withoutSection.values, undefined, FILE).map((i) => i.source), [FILE]);
  // admin_address is formatted as HOST:PORT ([v6]:port for IPv6).
  const v6 = settings('[proxy]\nadmin_address = [::1]:15000\n');
  const back = settings('[proxy]\n');
  assert.deepEqual(restartOnlyIssues(v6.values, back.values, back.doc, FILE).map((i) => [i.value, i.expected.split(',')[0]]),
    [['127.0.0.1:15000', '[::1]:15000']]);
});

test('tcp_forwarder: native by default, node accepted, a change needs a restart, a bad value names the key and the choices', () => {
  assert.equal(settings('[proxy]\n').values.tcpForwarder, 'native');
  const running = settings('[proxy]\n');
  const next = settings('[proxy]\ntcp_forwarder = node\n');
  assert.equal(next.values.tcpForwarder, 'node');
  const issues = restartOnlyIssues(running.values, next.values, next.doc, FILE);
  assert.deepEqual(issues.map((i) => [i.source, i.key, i.value]), [[`${FILE}:2`, '[proxy] tcp_forwarder', 'node']]);
  assert.match(issues[0]?.expected ?? '', /^native, the value the proxy started with \(.*restart the proxy to change tcp_forwarder\)$/);
  const { doc } = parseIni('[proxy]\ntcp_forwarder = splice\n', FILE);
  const bad = resolveOptions(proxyOptionSpecs, { flags: new Map(), env: {}, section: doc.sections.find((s) => s.name === 'proxy'), file: FILE });
  assert.equal(bad.issues.length, 1);
  assert.equal(bad.issues[0]?.source, `${FILE}:2`);
  assert.equal(bad.issues[0]?.key, '[proxy] tcp_forwarder');
  assert.match(bad.issues[0]?.expected ?? '', /native.*node/);
  const env = resolveOptions(proxyOptionSpecs, { flags: new Map(), env: { REMORA_TCP_FORWARDER: 'node' }, section: undefined, file: FILE });
  assert.deepEqual(env.issues, []);
  assert.equal(env.values.tcpForwarder, 'node');
});
