// `remora init` failure paths on a real kernel: a bad config value exits 2 with file:line and touches nothing; an
// IPv6 apply that fails after IPv4 was applied leaves IPv4 as it was (failure injected with the iptables_bin_dir
// option: a directory whose ip6tables-nft-restore passes `--test` but fails the real apply); ipv6 = off in a pod with
// IPv6 addresses warns; an IPv6 pod without ip6tables is REMORA_ERR_IPV6_UNSUPPORTED and nothing is changed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stableSaveText } from '../../src/interceptor/rule-readback.js';
import { Mesh, netnsTestOptions, type Pod } from './harness.js';
import { remoraInit } from './remora-process.js';

const opts = netnsTestOptions();
const work = mkdtempSync(join(tmpdir(), 'remora-init-failures-'));
const env = { REMORA_LOCK_DIR: join(work, 'lock') };
after(() => rmSync(work, { recursive: true, force: true }));

const TOOLS = ['iptables', 'ip6tables'].flatMap((f) => ['nft', 'legacy'].flatMap((b) => ['save', 'restore'].map((t) => `${f}-${b}-${t}`)));

function which(name: string): string {
  return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
}

/** A bin dir with symlinks to the real tools, minus `omit`, plus `replace` (name -> shell script). */
function binDir(name: string, omit: readonly string[], replace: Readonly<Record<string, string>> = {}): string {
  const dir = join(work, name);
  mkdirSync(dir);
  for (const tool of TOOLS) {
    if (omit.includes(tool)) continue;
    const script = replace[tool];
    if (script !== undefined) {
      writeFileSync(join(dir, tool), script);
      chmodSync(join(dir, tool), 0o755);
    } else {
      symlinkSync(which(tool), join(dir, tool));
    }
  }
  return dir;
}

async function saveBoth(pod: Pod): Promise<string> {
  return `${stableSaveText(await pod.execOk(['iptables-nft-save']))}\n----\n${stableSaveText(await pod.execOk(['ip6tables-nft-save']))}`;
}

describe('init failures', opts, () => {
  let mesh: Mesh;
  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create();
  });
  after(async () => { await mesh?.destroy(); });

  test('a bad value in the config file: exit 2, file:line on stderr, ruleset unchanged', opts, async () => {
    const pod = await mesh.addPod('cfg');
    assert.equal((await remoraInit(pod, [], env)).code, 0);
    const before = await saveBoth(pod);
    const file = join(work, 'bad.ini');
    writeFileSync(file, '# remora\n[init]\noutbound_port = 15001\ninbound_ports = 80,http\n');
    const r = await remoraInit(pod, ['--config', file, '--outbound-port', '15077'], env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.]/g, '\\.')}:4: \\[init\\] inbound_ports`));
    assert.match(r.stderr, /REMORA_ERR_CONFIG_INVALID/);
    assert.equal(await saveBoth(pod), before);
  });

  test('an IPv6 failure after IPv4 was applied leaves IPv4 (and IPv6) as they were', opts, async () => {
    const pod = await mesh.addPod('rollback');
    assert.equal((await remoraInit(pod, [], env)).code, 0);
    const before = await saveBoth(pod);
    const real = which('ip6tables-nft-restore');
    const dir = binDir('v6-apply-fails', [], {
      'ip6tables-nft-restore': `#!/bin/sh
# remora netns test hook: validation (--test) runs the real tool, the real apply fails.
for a in "$@"; do [ "$a" = "--test" ] && exec ${real} "$@"; done
cat >/dev/null
echo "ip6tables-nft-restore: injected failure (remora netns test)" >&2
exit 1
`,
    });
    const r = await remoraInit(pod, ['--iptables-bin-dir', dir, '--backend', 'nft', '--outbound-port', '15099'], env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /REMORA_ERR_RULES_APPLY/);
    assert.match(r.stderr, /injected failure/);
    assert.match(r.stderr, /IPv4 rolled back to the previous rules/);
    const after = await saveBoth(pod);
    assert.equal(after, before);
    assert.doesNotMatch(after, /15099/);
  });

  test('ipv6 = off in a pod with IPv6 addresses warns loudly and leaves IPv6 alone', opts, async () => {
    const pod = await mesh.addPod('v6off');
    const r = await remoraInit(pod, ['--ipv6', 'off'], env);
    assert.equal(r.code, 0, r.stderr);
    const warn = r.stderr.split('\n').find((l) => l.includes('"level":"warn"') && l.includes('NOT go through the proxy'));
    assert.ok(warn !== undefined, r.stderr);
    assert.ok(warn.includes(pod.ip6), warn);
    assert.match(stableSaveText(await pod.execOk(['iptables-nft-save'])), /REMORA_OUTPUT/);
    assert.doesNotMatch(await pod.execOk(['ip6tables-nft-save']), /REMORA/);
    assert.doesNotMatch(await pod.execOk(['ip', '-6', 'addr', 'show', 'dev', 'lo']), /::6\//);
  });

  test('an IPv6 pod without ip6tables: REMORA_ERR_IPV6_UNSUPPORTED and nothing changed', opts, async () => {
    const pod = await mesh.addPod('nov6tools');
    const before = await saveBoth(pod);
    const dir = binDir('no-ip6tables', TOOLS.filter((t) => t.startsWith('ip6tables')));
    const r = await remoraInit(pod, ['--iptables-bin-dir', dir], env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /REMORA_ERR_IPV6_UNSUPPORTED/);
    assert.equal(await saveBoth(pod), before);
  });
});
