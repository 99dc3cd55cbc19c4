import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RemoraError } from '../../../src/core/errors.js';
import type { CommandOptions, CommandResult, CommandRunner } from '../../../src/interceptor/command-runner.js';
import { applyFamilies, commandError, readNat, type FamilyChange, type XtablesContext } from '../../../src/interceptor/rule-apply.js';

interface Call { cmd: string; args: readonly string[]; input: string | undefined }

function ctxWith(handler: (cmd: string, args: readonly string[], opts?: CommandOptions) => CommandResult): { ctx: XtablesContext; calls: Call[] } {
  const calls: Call[] = [];
  const run: CommandRunner = async (cmd, args, opts) => {
    calls.push({ cmd, args, input: opts?.input });
    return handler(cmd, args, opts);
  };
  return { ctx: { run, env: {}, waitSeconds: 5, timeoutMs: 1000 }, calls };
}

const v4: FamilyChange = { tools: { family: 4, save: 'iptables-nft-save', restore: 'iptables-nft-restore' }, before: 'BEFORE4', input: 'NEW4' };
const v6: FamilyChange = { tools: { family: 6, save: 'ip6tables-nft-save', restore: 'ip6tables-nft-restore' }, before: 'BEFORE6', input: 'NEW6' };

test('a v6 failure after v4 rolls v4 back with its saved table (restore -T nat) and reports iptables\' stderr', async () => {
  const { ctx, calls } = ctxWith((cmd) => (cmd === 'ip6tables-nft-restore'
    ? { code: 2, stdout: '', stderr: 'ip6tables-restore: line 7 failed' } : { code: 0, stdout: '', stderr: '' }));
  await assert.rejects(applyFamilies(ctx, [v4, v6]), (err: unknown) => {
    assert.ok(err instanceof RemoraError);
    assert.equal(err.code, 'REMORA_ERR_RULES_APPLY');
    assert.match(err.message, /IPv6/);
    assert.match(err.message, /line 7 failed/);
    assert.match(err.message, /IPv4 rolled back/);
    return true;
  });
  assert.deepEqual(calls.map((c) => [c.cmd, c.args.join(' '), c.input]), [
    ['iptables-nft-restore', '--noflush -w 5', 'NEW4'],
    ['ip6tables-nft-restore', '--noflush -w 5', 'NEW6'],
    ['iptables-nft-restore', '-T nat -w 5', 'BEFORE4'],
  ]);
});

test('a failing rollback is reported loudly', async () => {
  const { ctx } = ctxWith((cmd, args) => (cmd === 'ip6tables-nft-restore' || args.includes('-T')
    ? { code: 1, stdout: '', stderr: 'boom' } : { code: 0, stdout: '', stderr: '' }));
  await assert.rejects(applyFamilies(ctx, [v4, v6]), /ROLLBACK FAILED/);
});

test('all families applied: resolves with them', async () => {
  const { ctx, calls } = ctxWith(() => ({ code: 0, stdout: '', stderr: '' }));
  assert.equal((await applyFamilies(ctx, [v4, v6])).length, 2);
  assert.equal(calls.length, 2);
});

test('error classification: missing binary, permission, other', () => {
  assert.equal(commandError('REMORA_ERR_RULES_READ', 'x', 'iptables-save', [], { code: -1, stdout: '', stderr: '', spawnError: 'ENOENT' }).code,
    'REMORA_ERR_IPTABLES_MISSING');
  assert.equal(commandError('REMORA_ERR_RULES_READ', 'x', 'iptables-save', [], { code: 1, stdout: '', stderr: 'iptables-save v1.8.9 (nf_tables): Permission denied (you must be root)' }).code,
    'REMORA_ERR_PERMISSION');
  const e = commandError('REMORA_ERR_RULES_APPLY', 'applying', 'iptables-restore', ['--noflush'], { code: 2, stdout: '', stderr: 'line 3 failed' });
  assert.equal(e.code, 'REMORA_ERR_RULES_APPLY');
  assert.match(e.message, /iptables-restore --noflush failed: line 3 failed/);
});

test('readNat: no nat block means an empty table', async () => {
  const { ctx, calls } = ctxWith(() => ({ code: 0, stdout: '', stderr: '' }));
  const r = await readNat(ctx, v4.tools);
  assert.equal(r.table.rules.length, 0);
  assert.deepEqual(calls[0]?.args, ['-t', 'nat']);
});
