// What IPv6 looks like in this network namespace, from /proc/net/if_inet6: whether the kernel has IPv6 at all, and
// which addresses the pod could be reached on or send from (global and unique-local; not loopback, not link-local).
// Parsing is pure; reading takes the file's text.
import { canonicalIp } from '../core/addr.js';

export const IF_INET6 = '/proc/net/if_inet6';

export interface Ipv6Address {
  readonly address: string;
  readonly ifname: string;
  readonly prefix: number;
  /** Kernel scope: 0x00 global (also ULA), 0x10 host, 0x20 link, 0x40 site. */
  readonly scope: number;
}

export interface Ipv6Status {
  /** The kernel has IPv6 (the file exists). */
  readonly kernel: boolean;
  readonly addresses: readonly Ipv6Address[];
}

export function parseIfInet6(text: string): Ipv6Address[] {
  const out: Ipv6Address[] = [];
  for (const line of text.split('\n')) {
    const [hex, , prefixHex, scopeHex, , ifname] = line.trim().split(/\s+/);
    if (hex === undefined || !/^[0-9a-f]{32}$/i.test(hex) || ifname === undefined) continue;
    const groups = hex.match(/.{4}/g) ?? [];
    const address = canonicalIp(groups.join(':')) ?? groups.join(':');
    out.push({ address, ifname, prefix: parseInt(prefixHex ?? '0', 16), scope: parseInt(scopeHex ?? '0', 16) });
  }
  return out;
}

/** Addresses that make the pod an IPv6 pod: not on lo, not link-local, not host scope. */
export function podIpv6Addresses(status: Ipv6Status): Ipv6Address[] {
  return status.addresses.filter((a) => a.ifname !== 'lo' && a.scope !== 0x20 && a.scope !== 0x10
    && !a.address.toLowerCase().startsWith('fe80:'));
}

/** `text` is the content of /proc/net/if_inet6, or undefined when it does not exist. */
export function ipv6Status(text: string | undefined): Ipv6Status {
  return text === undefined ? { kernel: false, addresses: [] } : { kernel: true, addresses: parseIfInet6(text) };
}
