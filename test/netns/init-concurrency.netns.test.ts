// Concurrent `remora init` runs in one network namespace are serialised by the per-namespace lock: all succeed and
// the final ruleset is the one a single run gives (one jump each, no duplicate rules).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stableSaveText } from '../../src/interceptor/rule-readback.js';
import { Mesh, netnsTestOptions, type Pod } from './harness.js';
import { remoraInit } from './remora-process.js';

const opts = netnsTestOptions();
const lockDir = mkdtempSync(join(tmpdir(), 'remora-init-concurrency-'));
const env = { REMORA_LOCK_DIR: lockDir };
after(() => rmSync(lockDir, { recursive: true, force: true }));

async function saveBoth(pod: Pod): Promise<string> {
  return `${stableSaveText(await pod.execOk(['iptables-nft-save']))}\n${stableSaveText(await pod.execOk(['ip6tables-nft-save']))}`;
}

describe('concurrent init', opts, () => {
  let mesh: Mesh;
  let a: Pod;
  let b: Pod;
  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create();
    a = await mesh.addPod('a');
    b = await mesh.addPod('b');
  });
  after(async () => { await mesh?.destroy(); });

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
