// `remora init --dry-run` through the real CLI in a fresh namespace prints exactly test/netns/golden/defaults.rules
// (the unit test init-golden renders the same file with the pure functions). Without root it still works: it
// renders against an empty state and says so.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { netnsTestOptions, type Pod } from './harness.js';
import { meshPerSuite } from './init-helpers.js';
import { REMORA_BIN, REPO_ROOT, remoraInit } from './remora-process.js';

const opts = netnsTestOptions();
const golden = readFileSync(resolve(REPO_ROOT, 'test/netns/golden/defaults.rules'), 'utf8');

describe('init --dry-run', opts, () => {
  let pod: Pod;
  meshPerSuite(opts, async (mesh) => { pod = await mesh.addPod('app'); });

  test('the CLI prints the golden defaults byte for byte and changes nothing', opts, async () => {
    const before = await pod.execOk(['iptables-nft-save']);
    const r = await remoraInit(pod, ['--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, golden);
    assert.equal(await pod.execOk(['iptables-nft-save']), before);
    assert.doesNotMatch(await pod.execOk(['ip', '-6', 'addr', 'show', 'dev', 'lo']), /::6\//);
  });

  test('without root: rendered against an empty state, said in a # line, same rules', opts, async () => {
    const r = await pod.exec([process.execPath, REMORA_BIN, 'init', '--dry-run'], { uid: 65534, env: { REMORA_LOCK_DIR: '/nonexistent' } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^# current IPv4 rules not read \(.+\); rendered against an empty nat table$/m);
    const rules = (text: string): string[] => text.split('\n').filter((l) => !l.startsWith('#'));
    assert.deepEqual(rules(r.stdout), rules(golden));
  });
});
