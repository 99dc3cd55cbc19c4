import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CommandRunner } from '../../../src/interceptor/command-runner.js';
import { chooseBackend, detectBackend, xtablesBinary, type BackendProbe } from '../../../src/interceptor/iptables-backend.js';

const probe = (backend: 'nft' | 'legacy', family: 4 | 6, rules: number | undefined): BackendProbe => ({ backend, family, rules, ours: false });

test('binary names per backend and family, optionally in a directory', () => {
  assert.equal(xtablesBinary('nft', 4, 'restore'), 'iptables-nft-restore');
  assert.equal(xtablesBinary('legacy', 6, 'save'), 'ip6tables-legacy-save');
  assert.equal(xtablesBinary('plain', 6, 'restore'), 'ip6tables-restore');
  assert.equal(xtablesBinary('nft', 6, 'restore', '/opt/xt'), '/opt/xt/ip6tables-nft-restore');
});

test('existing rules win, both families counted', () => {
  const c = chooseBackend('auto', [probe('nft', 4, 0), probe('nft', 6, 0), probe('legacy', 4, 1), probe('legacy', 6, 3)]);
  assert.equal(c.backend, 'legacy');
  assert.equal(c.conflict, false);
  const d = chooseBackend('auto', [probe('nft', 4, 5), probe('nft', 6, 0), probe('legacy', 4, 2), probe('legacy', 6, 0)]);
  assert.equal(d.backend, 'nft');
  assert.equal(d.conflict, true);
});

test('no rules: nft when it works, else legacy, else plain', () => {
  assert.equal(chooseBackend('auto', [probe('nft', 4, 0), probe('legacy', 4, 0)]).backend, 'nft');
  assert.equal(chooseBackend('auto', [probe('nft', 4, undefined), probe('legacy', 4, 0)]).backend, 'legacy');
  const none = chooseBackend('auto', [probe('nft', 4, undefined), probe('legacy', 4, undefined)]);
  assert.equal(none.backend, 'plain');
  assert.equal(none.guessed, true);
});

test('a configured backend is used even when the other has rules', () => {
  const c = chooseBackend('nft', [probe('nft', 4, 0), probe('legacy', 4, 9)]);
  assert.equal(c.backend, 'nft');
  assert.match(c.reason, /configured/);
  assert.equal(c.conflict, true, 'the other backend holds rules');
  assert.equal(chooseBackend('legacy', [probe('nft', 4, 0), probe('legacy', 4, 9)]).conflict, false);
});

test('detection runs the four save binaries without -t and counts -A lines', async () => {
  const calls: string[] = [];
  const run: CommandRunner = async (cmd, args) => {
    calls.push([cmd, ...args].join(' '));
    if (cmd === 'iptables-legacy-save') return { code: 0, stdout: '*nat\n:REMORA_OUTPUT - [0:0]\n-A OUTPUT -p tcp -j REMORA_OUTPUT\nCOMMIT\n', stderr: '' };
    if (cmd.includes('legacy')) return { code: 0, stdout: '', stderr: '' };
    return { code: -1, stdout: '', stderr: '', spawnError: 'ENOENT' };
  };
  const c = await detectBackend(run, { requested: 'auto', binDir: '', timeoutMs: 1000 });
  assert.deepEqual(calls.sort(), ['ip6tables-legacy-save', 'ip6tables-nft-save', 'iptables-legacy-save', 'iptables-nft-save']);
  assert.equal(c.backend, 'legacy');
  assert.equal(c.probes.find((p) => p.backend === 'legacy' && p.family === 4)?.ours, true);
  assert.match(c.probes.find((p) => p.backend === 'nft')?.error ?? '', /ENOENT/);
});
