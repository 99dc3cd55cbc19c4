import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseControlFlags } from '../../../src/cli/control-command.js';

const T = 'write-token-0123456789';

test('remora control flags: repeatable tokens with scopes, a tokens file, port 0, defaults', () => {
  const files: Record<string, string> = { '/t': `# ops\nread:viewer-token-0123456789\nsidecar:boot-token-0123456789\n` };
  const r = parseControlFlags(['--data-dir', '/d', '--token', T, '--token=read:other-token-0123456789', '--tokens-file', '/t', '--listen', '127.0.0.1:0', '--san', 'a.example', '--san', '10.0.0.9'],
    (p) => { const f = files[p]; if (f === undefined) throw Object.assign(new Error('x'), { code: 'ENOENT' }); return f; });
  assert.ok(!r.help && 'flags' in r, JSON.stringify(r));
  if (r.help || !('flags' in r)) return;
  assert.deepEqual(r.flags.tokens.map((t) => t.scope), ['write', 'read', 'read', 'sidecar']);
  assert.deepEqual(r.flags.listen, { host: '127.0.0.1', port: 0 });
  assert.deepEqual(r.flags.sans, ['a.example', '10.0.0.9']);
  assert.equal(r.flags.trustDomain, 'cluster.local');
  const d = parseControlFlags(['--data-dir', '/d', '--token', T]);
  assert.ok(!d.help && 'flags' in d && d.flags.listen.port === 15012 && d.flags.listen.host === '0.0.0.0');
});

test('remora control flags: every problem at once, never echoing a token', () => {
  const r = parseControlFlags(['--store', 'etcd://h:2379', '--token', 'admin:secret-but-bad-0123456789', '--tokens-file', '/missing', '--bogus', '--data-dir', '/a', '--data-dir', '/b', '--log-level', 'loud'],
    () => { throw Object.assign(new Error('x'), { code: 'ENOENT' }); });
  assert.ok(!r.help && 'issues' in r);
  if (r.help || !('issues' in r)) return;
  assert.deepEqual(r.issues.map((i) => i.key), ['--bogus', '--data-dir', '--data-dir', '--token', '--tokens-file', '--log-level']);
  assert.match(r.issues[2]?.expected ?? '', /either --data-dir DIR .* or --store etcd:\/\/\.\.\. .*not both/);
  assert.ok(!JSON.stringify(r.issues).includes('secret-but-bad'), 'tokens are not echoed');
  assert.deepEqual(parseControlFlags(['--help']), { help: true });
});

test('remora control flags: --store etcd://HOST:PORT[,...] instead of --data-dir; a malformed URL names the form expected', () => {
  const r = parseControlFlags(['--store', 'etcd://10.0.0.1:2379,[::1]:2380,etcd-2.example:12379', '--token', T]);
  assert.ok(!r.help && 'flags' in r, JSON.stringify(r));
  if (r.help || !('flags' in r)) return;
  assert.deepEqual(r.flags.etcd, [{ host: '10.0.0.1', port: 2379 }, { host: '::1', port: 2380 }, { host: 'etcd-2.example', port: 12379 }]);
  assert.equal(r.flags.dataDir, '');
  for (const bad of ['http://h:2379', 'etcd://', 'etcd://h', 'etcd://h:0', 'etcd://h:2379,', 'etcd://h:99999', 'etcd://h:2379/x']) {
    const b = parseControlFlags(['--store', bad, '--token', T]);
    assert.ok(!b.help && 'issues' in b, bad);
    if (b.help || !('issues' in b)) continue;
    assert.deepEqual(b.issues.map((i) => [i.key, i.value]), [['--store', bad]], bad);
    assert.match(b.issues[0]?.expected ?? '', /^etcd:\/\/HOST:PORT\[,HOST:PORT\.\.\.\]/, bad);
  }
  const none = parseControlFlags(['--token', T]);
  assert.ok(!none.help && 'issues' in none && none.issues[0]?.expected.includes('--store etcd://'));
});
