// `remora init --cleanup` on a real kernel: it removes only remora's chains and jumps (and ::6 from lo); a foreign
// chain and rules added before init survive, and the save output is identical to the one before init. Cleanup of a
// namespace without remora's rules succeeds and changes nothing. Both backends.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { stableSaveText } from '../../src/interceptor/rule-readback.js';
import { netnsTestOptions, type Pod } from './harness.js';
import { meshPerSuite, privateLockEnv } from './init-helpers.js';
import { remoraInit } from './remora-process.js';

const opts = netnsTestOptions();
const env = privateLockEnv('remora-init-cleanup-');

async function saveAll(pod: Pod, backend: string): Promise<string> {
  const v4 = await pod.execOk([`iptables-${backend}-save`]);
  const v6 = await pod.execOk([`ip6tables-${backend}-save`]);
  return `${stableSaveText(v4)}\n----\n${stableSaveText(v6)}`;
}

for (const backend of ['nft', 'legacy'] as const) {
  describe(`cleanup, backend ${backend}`, opts, () => {
    let pod: Pod;
    meshPerSuite(opts, async (mesh) => { pod = await mesh.addPod('app'); });

    test('cleanup of a namespace without remora rules succeeds and changes nothing', opts, async () => {
      const before = await saveAll(pod, backend);
      const r = await remoraInit(pod, ['--cleanup', '--backend', backend], env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await saveAll(pod, backend), before);
    });

    test('foreign rules and chains survive; after cleanup the save output equals the one before init', opts, async () => {
      for (const bin of [`iptables-${backend}`, `ip6tables-${backend}`]) {
        await pod.execOk([bin, '-t', 'nat', '-N', 'FOREIGN']);
        await pod.execOk([bin, '-t', 'nat', '-A', 'FOREIGN', '-p', 'tcp', '--dport', '9999', '-j', 'RETURN']);
        await pod.execOk([bin, '-t', 'nat', '-A', 'OUTPUT', '-p', 'udp', '-j', 'FOREIGN']);
        await pod.execOk([bin, '-t', 'nat', '-A', 'PREROUTING', '-m', 'comment', '--comment', 'someone else', '-j', 'FOREIGN']);
        await pod.execOk([bin, '-t', 'filter', '-A', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT']);
      }
      const before = await saveAll(pod, backend);
      const loBefore = await pod.execOk(['ip', '-6', 'addr', 'show', 'dev', 'lo']);
      assert.doesNotMatch(loBefore, /::6\//);

      const init = await remoraInit(pod, ['--backend', backend], env);
      assert.equal(init.code, 0, init.stderr);
      const during = await saveAll(pod, backend);
      assert.match(during, /REMORA_OUTPUT/);
      assert.match(during, /-A FOREIGN -p tcp -m tcp --dport 9999 -j RETURN/);

      // auto backend on purpose: cleanup finds the backend that holds remora's rules.
      const clean = await remoraInit(pod, ['--cleanup'], env);
      assert.equal(clean.code, 0, clean.stderr);
      const afterCleanup = await saveAll(pod, backend);
      assert.equal(afterCleanup, before);
      assert.doesNotMatch(afterCleanup, /REMORA/);
      assert.doesNotMatch(await pod.execOk(['ip', '-6', 'addr', 'show', 'dev', 'lo']), /::6\//);

      const again = await remoraInit(pod, ['--cleanup'], env);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(await saveAll(pod, backend), before);
    });
  });
}
