import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RemoraError } from '../../../src/core/errors.js';
import { decideFamilies } from '../../../src/interceptor/init-runner.js';
import { ipv6Status, parseIfInet6, podIpv6Addresses } from '../../../src/interceptor/ipv6-status.js';
import { hasLoopbackV6 } from '../../../src/interceptor/loopback-address.js';
import { parsePrivileges, privilegeProblem } from '../../../src/interceptor/privileges.js';

const IF_INET6 = `00000000000000000000000000000001 01 80 10 80       lo
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
fd520000000000000000000000000002 04 40 00 82     eth0
`;
const LO_ONLY = '00000000000000000000000000000001 01 80 10 80       lo\n00000000000000000000000000000006 01 80 00 80       lo\n';

test('/proc/net/if_inet6 parsing and the pod\'s IPv6 addresses (not lo, not link-local)', () => {
  const all = parseIfInet6(IF_INET6);
  assert.deepEqual(all.map((a) => a.address), ['::1', 'fe80::fc:ff:fe00:1', 'fd52::2']);
  assert.deepEqual(podIpv6Addresses(ipv6Status(IF_INET6)).map((a) => a.address), ['fd52::2']);
  assert.deepEqual(podIpv6Addresses(ipv6Status(LO_ONLY)), []);
  assert.equal(hasLoopbackV6(ipv6Status(LO_ONLY)), true);
  assert.equal(hasLoopbackV6(ipv6Status(IF_INET6)), false);
  assert.equal(ipv6Status(undefined).kernel, false);
});

test('IPv6 policy', () => {
  const podV6 = ipv6Status(IF_INET6);
  const noPodV6 = ipv6Status(LO_ONLY);
  const noKernel = ipv6Status(undefined);
  assert.deepEqual(decideFamilies('auto', podV6).families, [{ family: 4, required: true }, { family: 6, required: true }]);
  assert.deepEqual(decideFamilies('auto', noPodV6).families, [{ family: 4, required: true }, { family: 6, required: false }]);
  assert.deepEqual(decideFamilies('auto', noKernel).families, [{ family: 4, required: true }]);
  assert.deepEqual(decideFamilies('on', noPodV6).families, [{ family: 4, required: true }, { family: 6, required: true }]);
  assert.throws(() => decideFamilies('on', noKernel), (e: unknown) => e instanceof RemoraError && e.code === 'REMORA_ERR_IPV6_UNSUPPORTED');
  const off = decideFamilies('off', podV6);
  assert.deepEqual(off.families, [{ family: 4, required: true }]);
  assert.match(off.warnings[0] ?? '', /fd52::2.*will NOT go through the proxy/);
  assert.deepEqual(decideFamilies('off', noPodV6).warnings, []);
});

test('capabilities from /proc/self/status', () => {
  const root = parsePrivileges('Name:\tnode\nCapEff:\t000001ffffffffff\n', 0);
  assert.equal(privilegeProblem(root, 'legacy'), undefined);
  const netAdminOnly = parsePrivileges(`CapEff:\t${(1n << 12n).toString(16).padStart(16, '0')}\n`, 0);
  assert.equal(privilegeProblem(netAdminOnly, 'nft'), undefined);
  assert.match(privilegeProblem(netAdminOnly, 'legacy') ?? '', /CAP_NET_RAW/);
  const nobody = parsePrivileges('CapEff:\t0000000000000000\n', 65534);
  assert.match(privilegeProblem(nobody, 'nft') ?? '', /uid 65534 lacks CAP_NET_ADMIN/);
  assert.equal(parsePrivileges(undefined, 0).netAdmin, true);
});
