// Concurrent `remora init` runs in one network namespace are serialised by the per-namespace lock: all succeed and
// the final ruleset is the one a single run gives (one jump each, no duplicate rules).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { stableSaveText } from '../../src/interceptor/rule-readback.js';
import { netnsTestOptions, type Pod } from './harness.js';
import { meshPerSuite, privateLockEnv } from './init-helpers.js';
import { remoraInit } from './remora-process.js';

const opts = netnsTestOptions();
const env = privateLockEnv('remora-init-concurrency-');

async function saveBoth(pod: Pod): Promise<string> {
  return `${stableSaveText(await pod.execOk(['iptables-nft-save']))}\n${stableSaveText(await pod.execOk(['ip6tables-nft-save']))}`;
}

describe('concurrent init', opts, () => {
  let a: Pod;
  let b: Pod;
  meshPerSuite(opts, async (mesh) => {
    a = await mesh.addPod('a');
    b = await mesh.addPod('b');
  });

  test('three inits at once in one namespace all succeed with the same final ruleset', opts, async () => {
    const runs = await Promise.all([remoraInit(a, [], env), remoraInit(a, [], env), remoraInit(a, [], env)]);
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const concurrent = await saveBoth(a);
    assert.equal(concurrent.match(/^-A OUTPUT -p tcp -j REMORA_OUTPUT$/gm)?.length, 2);
    assert.equal(concurrent.match(/^-A PREROUTING -p tcp -j REMORA_INBOUND$/gm)?.length, 2);
    // The same as what a single, uncontended run in a fresh namespace gives.
    const single = await remoraInit(b, [], env);
    assert.equal(single.code, 0, single.stderr);
    assert.equal(concurrent, await saveBoth(b));
  });
});
