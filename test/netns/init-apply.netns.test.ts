// `remora init` on a real kernel, once per iptables backend: applying three times gives the identical ruleset (IPv4
// and IPv6), the rules read back in exactly the canonical form of the golden file, ::6 is on lo; and one traffic
// sanity check: after init, a TCP connect from an application uid to another pod lands on the pod's port 15001,
// while the proxy uid's connect is not redirected.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { stableSaveText } from '../../src/interceptor/rule-readback.js';
import { netnsTestOptions, waitFor, type Pod } from './harness.js';
import { meshPerSuite, privateLockEnv } from './init-helpers.js';
import { REPO_ROOT, remoraInit } from './remora-process.js';

const opts = netnsTestOptions();
const env = privateLockEnv('remora-init-apply-');
const golden = readFileSync(resolve(REPO_ROOT, 'test/netns/golden/defaults.rules'), 'utf8');

function goldenRules(family: 4 | 6): string[] {
  const block = golden.split(/^# IPv6: .*$/m)[family === 4 ? 0 : 1] ?? '';
  return block.split('\n').filter((l) => l.startsWith('-A '));
}

async function save(pod: Pod, backend: string, family: 4 | 6): Promise<string> {
  return stableSaveText(await pod.execOk([`${family === 6 ? 'ip6' : 'ip'}tables-${backend}-save`]));
}

for (const backend of ['nft', 'legacy'] as const) {
  describe(`backend ${backend}`, opts, () => {
    let pod: Pod;
    meshPerSuite(opts, async (mesh) => { pod = await mesh.addPod('app'); });

    test('apply 3x gives the identical ruleset for IPv4 and IPv6, in canonical form', opts, async () => {
      const seen: string[][] = [];
      for (let i = 0; i < 3; i++) {
        const r = await remoraInit(pod, ['--backend', backend], env);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, new RegExp(`iptables backend: ${backend}`));
        assert.match(r.stderr, /rules applied and verified \(IPv4, IPv6/);
        seen.push([await save(pod, backend, 4), await save(pod, backend, 6)]);
      }
      assert.deepEqual(seen[1], seen[0]);
      assert.deepEqual(seen[2], seen[0]);
      const [v4 = '', v6 = ''] = seen[0] ?? [];
      // What the kernel gives back is, line for line, what the golden file (the pure renderer) says.
      for (const line of goldenRules(4)) assert.ok(v4.split('\n').includes(line), `IPv4 missing ${line}\n${v4}`);
      for (const line of goldenRules(6)) assert.ok(v6.split('\n').includes(line), `IPv6 missing ${line}\n${v6}`);
      assert.equal(v4.split('\n').filter((l) => l.startsWith('-A ')).length, goldenRules(4).length);
      assert.equal(v6.split('\n').filter((l) => l.startsWith('-A ')).length, goldenRules(6).length);
      const lo = await pod.execOk(['ip', '-6', 'addr', 'show', 'dev', 'lo']);
      assert.match(lo, /inet6 ::6\/128/);
    });
  });
}

describe('traffic sanity', opts, () => {
  let a: Pod;
  let b: Pod;
  meshPerSuite(opts, async (mesh) => {
    a = await mesh.addPod('a');
    b = await mesh.addPod('b');
  });

  const client = `const s = require('net').connect(80, process.argv[1]); let d = '';
s.on('data', (x) => { d += x; }); s.on('end', () => console.log(d.trim()));
s.on('error', (e) => console.log('ERR ' + e.code)); s.setTimeout(3000, () => { console.log('TIMEOUT'); s.destroy(); });`;

  test('an app uid connecting to another pod reaches 15001 in its own pod; the proxy uid does not', opts, async () => {
    const r = await remoraInit(a, [], env);
    assert.equal(r.code, 0, r.stderr);
    const listener = a.spawn([process.execPath, '-e',
      "require('net').createServer((s) => s.end('redirected\\n')).listen(15001, '::', () => console.log('up'))"]);
    await waitFor('listener on 15001', async () => {
      const ss = await a.exec(['ss', '-Hltn', 'sport = :15001']);
      return ss.stdout.includes('15001') ? true : undefined;
    });
    for (const dst of [b.ip4, b.ip6]) {
      const app = await a.exec([process.execPath, '-e', client, dst], { uid: 1000 });
      assert.equal(app.stdout.trim(), 'redirected', `app uid to ${dst}: ${app.stdout}${app.stderr}`);
      const proxy = await a.exec([process.execPath, '-e', client, dst], { uid: 1337 });
      assert.equal(proxy.stdout.trim(), 'ERR ECONNREFUSED', `proxy uid to ${dst}: ${proxy.stdout}${proxy.stderr}`);
    }
    listener.kill('SIGTERM');
  });
});
