import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initOptionSpecs } from '../../../src/config/init-options.js';
import { resolveOptions } from '../../../src/config/option-set.js';
import { chunkPorts, planRules, subtractPorts, MULTIPORT_SLOTS } from '../../../src/interceptor/rule-plan.js';
import { renderRuleLine } from '../../../src/interceptor/rule-render.js';

function values(flags: Record<string, string> = {}) {
  const r = resolveOptions(initOptionSpecs, { flags: new Map(Object.entries(flags).map(([k, v]) => [k, { value: v }])), env: {} });
  assert.deepEqual(r.issues, []);
  return r.values;
}

const lines = (family: 4 | 6, flags: Record<string, string> = {}): string[] => {
  const plan = planRules(family, values(flags));
  return [...plan.jumps, ...plan.rules].map(renderRuleLine);
};

test('multiport chunks hold at most 15 slots, a range counting two', () => {
  const ports = Array.from({ length: 20 }, (_, i) => ({ from: 100 + i * 2, to: 100 + i * 2 }));
  const chunks = chunkPorts(ports);
  assert.deepEqual(chunks.map((c) => c.length), [15, 5]);
  const ranges = Array.from({ length: 9 }, (_, i) => ({ from: 1000 + i * 10, to: 1001 + i * 10 }));
  const rc = chunkPorts(ranges);
  assert.deepEqual(rc.map((c) => c.length), [7, 2]);
  for (const c of [...chunks, ...rc]) {
    assert.ok(c.reduce((n, r) => n + (r.from === r.to ? 1 : 2), 0) <= MULTIPORT_SLOTS);
  }
  // A single port after 14 slots still fits, a range does not.
  const mixed = [...Array.from({ length: 14 }, (_, i) => ({ from: i + 1, to: i + 1 })), { from: 50, to: 60 }];
  assert.deepEqual(chunkPorts(mixed).map((c) => c.length), [14, 1]);
  assert.deepEqual(chunkPorts([]), []);
});

test('port subtraction splits ranges', () => {
  assert.deepEqual(subtractPorts([{ from: 8000, to: 8100 }], [{ from: 8050, to: 8050 }, { from: 7000, to: 8000 }]),
    [{ from: 8001, to: 8049 }, { from: 8051, to: 8100 }]);
  assert.deepEqual(subtractPorts([{ from: 80, to: 80 }], [{ from: 80, to: 80 }]), []);
});

test('default IPv4 rule set: Istio-equivalent loop prevention, in order', () => {
  assert.deepEqual(lines(4), [
    '-A PREROUTING -p tcp -j REMORA_INBOUND',
    '-A OUTPUT -p tcp -j REMORA_OUTPUT',
    '-A REMORA_INBOUND -p tcp -m multiport --dports 15000,15020:15021,15090 -j RETURN',
    '-A REMORA_INBOUND -p tcp -j REMORA_IN_REDIRECT',
    '-A REMORA_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
    '-A REMORA_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
    '-A REMORA_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1337 -j REMORA_IN_REDIRECT',
    '-A REMORA_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
    '-A REMORA_OUTPUT -m owner --uid-owner 1337 -j RETURN',
    '-A REMORA_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner 1337 -j REMORA_IN_REDIRECT',
    '-A REMORA_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
    '-A REMORA_OUTPUT -m owner --gid-owner 1337 -j RETURN',
    '-A REMORA_OUTPUT -d 127.0.0.1/32 -j RETURN',
    '-A REMORA_OUTPUT -j REMORA_REDIRECT',
    '-A REMORA_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
  ]);
});

test('IPv6 uses ::6 and ::1 and never gets an IPv4 CIDR (and vice versa)', () => {
  const flags = { 'exclude-outbound-cidrs': '10.0.0.0/8,fd00::/8', 'outbound-cidrs': '192.168.0.0/16,2001:db8::/32' };
  const v6 = lines(6, flags);
  const v4 = lines(4, flags);
  assert.ok(v6.includes('-A REMORA_OUTPUT -s ::6/128 -o lo -j RETURN'));
  assert.ok(v6.includes('-A REMORA_OUTPUT -d ::1/128 -j RETURN'));
  assert.ok(v6.includes('-A REMORA_OUTPUT -d fd00::/8 -j RETURN'));
  assert.ok(v6.includes('-A REMORA_OUTPUT -d 2001:db8::/32 -j REMORA_REDIRECT'));
  assert.ok(v6.every((l) => !/\d+\.\d+\.\d+\.\d+/.test(l)), v6.join('\n'));
  assert.ok(v4.includes('-A REMORA_OUTPUT -d 10.0.0.0/8 -j RETURN'));
  assert.ok(v4.includes('-A REMORA_OUTPUT -d 192.168.0.0/16 -j REMORA_REDIRECT'));
  assert.ok(v4.every((l) => !l.includes('::')), v4.join('\n'));
});

test('exclusions come before capture, in the documented order', () => {
  const l = lines(4, { 'exclude-outbound-cidrs': '10.0.0.0/8', 'exclude-outbound-ports': '22,3306-3307' });
  const idx = (s: string): number => l.findIndex((x) => x.includes(s));
  assert.ok(idx('-d 127.0.0.1/32 -j RETURN') < idx('-d 10.0.0.0/8 -j RETURN'));
  assert.ok(idx('-d 10.0.0.0/8 -j RETURN') < idx('--dports 22,3306:3307 -j RETURN'));
  assert.ok(idx('--dports 22,3306:3307 -j RETURN') < idx('-j REMORA_REDIRECT'));
  assert.ok(idx('--gid-owner 1337 -j RETURN') < idx('-d 127.0.0.1/32 -j RETURN'));
});

test('inbound include list: proxy and excluded ports are subtracted, the rest split per 15 slots', () => {
  const l = lines(4, { 'inbound-ports': '80,15000-15001,8000-8100', 'exclude-inbound-ports': '8080' });
  assert.deepEqual(l.filter((x) => x.startsWith('-A REMORA_INBOUND')), [
    '-A REMORA_INBOUND -p tcp -m multiport --dports 80,8000:8079,8081:8100,15001 -j REMORA_IN_REDIRECT',
  ]);
});

test('inbound disabled: no PREROUTING jump, empty inbound chain; outbound disabled: no redirect jump', () => {
  const plan = planRules(4, values({ 'inbound-ports': '', 'outbound-cidrs': '' }));
  assert.deepEqual(plan.jumps.map((j) => j.chain), ['OUTPUT']);
  assert.equal(plan.rules.filter((r) => r.chain === 'REMORA_INBOUND').length, 0);
  assert.equal(plan.rules.filter((r) => r.target.kind === 'jump' && r.target.chain === 'REMORA_REDIRECT').length, 0);
  assert.deepEqual(plan.chains, ['REMORA_INBOUND', 'REMORA_IN_REDIRECT', 'REMORA_OUTPUT', 'REMORA_REDIRECT']);
  assert.ok(plan.notes.some((n) => n.includes('no inbound capture')));
});

test('an include list without a CIDR of the family captures nothing there, and says so', () => {
  const plan = planRules(6, values({ 'outbound-cidrs': '10.0.0.0/8' }));
  assert.equal(plan.rules.filter((r) => r.target.kind === 'jump' && r.target.chain === 'REMORA_REDIRECT').length, 0);
  assert.ok(plan.notes.some((n) => n.includes('no IPv6 CIDR')));
});

test('several uids and gids each get the three owner rules, uids first', () => {
  const l = lines(4, { 'proxy-uid': '1337,1400', 'proxy-gid': '2000' }).filter((x) => x.includes('-owner'));
  assert.equal(l.length, 9);
  assert.match(l[0] ?? '', /--uid-owner 1337 -j REMORA_IN_REDIRECT$/);
  assert.match(l[3] ?? '', /--uid-owner 1400 -j REMORA_IN_REDIRECT$/);
  assert.match(l[8] ?? '', /-m owner --gid-owner 2000 -j RETURN$/);
});

test('ports are configurable', () => {
  const l = lines(4, { 'outbound-port': '4140', 'inbound-port': '4143' });
  assert.ok(l.includes('-A REMORA_REDIRECT -p tcp -j REDIRECT --to-ports 4140'));
  assert.ok(l.includes('-A REMORA_IN_REDIRECT -p tcp -j REDIRECT --to-ports 4143'));
});
