// The IPv6 inbound-passthrough source ::6/128 on lo. IPv4 can bind any 127/8 address (127.0.0.6 works out of the
// box) but IPv6 loopback is a single /128, so the proxy can only bind ::6 when init has added it. Added idempotently
// (`ip -6 addr replace`) whenever IPv6 rules are applied, removed by cleanup. Presence is read from
// /proc/net/if_inet6 (see ipv6-status.ts).
import { RemoraError } from '../core/errors.js';
import { formatCommand, type CommandRunner } from './command-runner.js';
import type { Ipv6Status } from './ipv6-status.js';

export const PASSTHROUGH_V6 = '::6';

export function hasLoopbackV6(status: Ipv6Status): boolean {
  return status.addresses.some((a) => a.ifname === 'lo' && a.address === PASSTHROUGH_V6);
}

async function ip(run: CommandRunner, args: readonly string[], what: string): Promise<void> {
  const r = await run('ip', args, { timeoutMs: 15_000 });
  if (r.code !== 0) {
    const why = r.spawnError !== undefined ? `cannot run ip (${r.spawnError}; is iproute2 installed?)` : r.stderr.trim();
    const code = /not permitted|permission denied/i.test(r.stderr) ? 'REMORA_ERR_PERMISSION' : 'REMORA_ERR_RULES_APPLY';
    throw new RemoraError(code, `${what}: ${formatCommand('ip', args)} failed: ${why}`);
  }
}

export function ensureLoopbackV6(run: CommandRunner): Promise<void> {
  return ip(run, ['-6', 'addr', 'replace', `${PASSTHROUGH_V6}/128`, 'dev', 'lo'], `adding ${PASSTHROUGH_V6}/128 to lo`);
}

export function removeLoopbackV6(run: CommandRunner): Promise<void> {
  return ip(run, ['-6', 'addr', 'del', `${PASSTHROUGH_V6}/128`, 'dev', 'lo'], `removing ${PASSTHROUGH_V6}/128 from lo`);
}
