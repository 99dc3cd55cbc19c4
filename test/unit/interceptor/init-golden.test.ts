// Golden files: the exact `remora init --dry-run` output (backend nft, IPv4 + IPv6, empty nat tables) for several
// configurations, rendered with the pure functions and compared byte for byte with test/netns/golden/<name>.rules.
// REMORA_UPDATE_GOLDEN=1 rewrites them. The netns test init-dry-run compares the real CLI with defaults.rules.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { initOptionSpecs } from '../../../src/config/init-options.js';
import { resolveOptions } from '../../../src/config/option-set.js';
import { renderDryRun } from '../../../src/interceptor/dry-run.js';
import { xtablesBinary } from '../../../src/interceptor/iptables-backend.js';
import { EMPTY_NAT } from '../../../src/interceptor/rule-readback.js';

const GOLDEN_DIR = new URL('../../../../test/netns/golden/', import.meta.url);

/** name -> flags. */
export const GOLDEN_CONFIGS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  'defaults': {},
  'inbound-include': { 'inbound-ports': '80,443,8000-8100,15020' },
  'exclusions': {
    'exclude-inbound-ports': '22,25,110,143,465,587,993,995,3306,5432,6379,9000-9100,11211,27017,30000-32767,50000',
    'exclude-outbound-ports': '21,23,53,389,636,1433,1521,2049,3306,3389,4222,5432,5672,6379,8500-8600,9042,9092,27017-27019',
    'exclude-outbound-cidrs': '169.254.169.254/32,10.96.0.0/12,fd00:10:96::/112',
  },
  'cidrs-mixed': {
    'outbound-cidrs': '10.0.0.0/8,fd00::/8,172.16.0.0/12,2001:db8::/32',
    'exclude-outbound-cidrs': 'fd00:1::/32,10.1.0.0/16',
  },
  'multi-ids': { 'proxy-uid': '1337,1338', 'proxy-gid': '1337,2000' },
  'inbound-disabled': { 'inbound-ports': '' },
  'outbound-include': { 'outbound-cidrs': '10.0.0.0/8,192.168.0.0/16' },
  'outbound-disabled': { 'outbound-cidrs': '', 'outbound-port': '4140', 'inbound-port': '4143' },
};

export function goldenText(flags: Readonly<Record<string, string>>): string {
  const r = resolveOptions(initOptionSpecs, { flags: new Map(Object.entries(flags).map(([k, v]) => [k, { value: v }])), env: {} });
  assert.deepEqual(r.issues, []);
  return renderDryRun({
    mode: 'apply',
    options: r.values,
    backend: 'nft',
    families: ([4, 6] as const).map((family) => ({ family, restore: xtablesBinary('nft', family, 'restore'), state: { table: EMPTY_NAT } })),
    skipped: [],
  });
}

for (const [name, flags] of Object.entries(GOLDEN_CONFIGS)) {
  test(`golden ${name}.rules`, () => {
    const file = new URL(`${name}.rules`, GOLDEN_DIR);
    const text = goldenText(flags);
    if (process.env['REMORA_UPDATE_GOLDEN'] === '1') writeFileSync(file, text);
    let golden: string;
    try {
      golden = readFileSync(file, 'utf8');
    } catch {
      assert.fail(`${file.pathname} is missing; run with REMORA_UPDATE_GOLDEN=1 to create it`);
    }
    assert.equal(text, golden, `${name}.rules differs; if the change is intended, run with REMORA_UPDATE_GOLDEN=1`);
  });
}

test('golden invariants: >15 ports are split, CIDRs stay in their family, no -N', () => {
  const ex = goldenText(GOLDEN_CONFIGS['exclusions'] ?? {});
  for (const m of ex.matchAll(/--dports (\S+)/g)) {
    const slots = (m[1] ?? '').split(',').reduce((n, p) => n + (p.includes(':') ? 2 : 1), 0);
    assert.ok(slots <= 15, m[0]);
  }
  assert.ok((ex.match(/-A REMORA_INBOUND .*-j RETURN/g) ?? []).length >= 4); // 2 blocks x >= 2 rules
  const mixed = goldenText(GOLDEN_CONFIGS['cidrs-mixed'] ?? {});
  const [v4, v6] = mixed.split('# IPv6:');
  assert.ok(v4 !== undefined && v6 !== undefined);
  assert.ok(!/-d [0-9a-f]*:[0-9a-f:]*\//.test(v4), 'no IPv6 CIDR in the IPv4 block');
  assert.ok(!/-d \d+\.\d+\.\d+\.\d+\//.test(v6), 'no IPv4 CIDR in the IPv6 block');
  assert.ok(!ex.includes('-N '));
});
