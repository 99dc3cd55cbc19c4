// Options of `remora init` (section [init] of the config file).
import type { OptionSpec } from './option-set.js';
import * as v from './value-parsers.js';
import type { LogLevel } from '../core/log.js';
import { LOG_LEVELS } from '../core/log.js';

export const DEFAULT_OUTBOUND_PORT = 15001;
export const DEFAULT_INBOUND_PORT = 15006;
export const DEFAULT_PROXY_UID = 1337;
export const DEFAULT_ADMIN_PORT = 15000;
/** Ports remora's own listeners use or reserve (admin, health, merged metrics, Prometheus): never captured inbound. */
export const DEFAULT_PROXY_PORTS = '15000,15020,15021,15090';

/** Where `remora init` keeps its per-network-namespace lock (and the xtables lock of iptables-legacy). */
export const DEFAULT_LOCK_DIR = '/run/remora';

const spec = <T>(s: OptionSpec<T>): OptionSpec<T> => s;

/** An absolute path; "" only when `emptyOk` (meaning "not set"). */
function absolutePath(emptyOk: boolean): v.ValueParser<string> {
  return (text) => {
    const t = text.trim();
    if (t === '' && emptyOk) return { ok: true, value: '' };
    if (t.startsWith('/') && !t.includes('\0')) return { ok: true, value: t.replace(/(.)\/+$/, '$1') };
    return { ok: false, expected: emptyOk ? 'an absolute directory path, or "" for none' : 'an absolute directory path' };
  };
}

export const initOptionSpecs = {
  outboundPort: spec({
    key: 'outbound_port', flag: 'outbound-port', env: 'REMORA_OUTBOUND_PORT', valueName: 'PORT',
    help: 'port of the proxy listener that receives redirected outbound TCP',
    defaultValue: DEFAULT_OUTBOUND_PORT, defaultText: String(DEFAULT_OUTBOUND_PORT), parse: v.port,
  }),
  inboundPort: spec({
    key: 'inbound_port', flag: 'inbound-port', env: 'REMORA_INBOUND_PORT', valueName: 'PORT',
    help: 'port of the proxy listener that receives redirected inbound TCP',
    defaultValue: DEFAULT_INBOUND_PORT, defaultText: String(DEFAULT_INBOUND_PORT), parse: v.port,
  }),
  proxyUid: spec({
    key: 'proxy_uid', flag: 'proxy-uid', env: 'REMORA_PROXY_UID', valueName: 'UIDS',
    help: 'numeric uids whose traffic is never redirected (the proxy\'s own); comma-separated',
    defaultValue: [DEFAULT_PROXY_UID] as readonly number[], defaultText: String(DEFAULT_PROXY_UID), parse: v.idList,
  }),
  proxyGid: spec({
    key: 'proxy_gid', flag: 'proxy-gid', env: 'REMORA_PROXY_GID', valueName: 'GIDS',
    help: 'numeric gids whose traffic is never redirected; comma-separated',
    defaultValue: [DEFAULT_PROXY_UID] as readonly number[], defaultText: String(DEFAULT_PROXY_UID), parse: v.idList,
  }),
  inboundPorts: spec({
    key: 'inbound_ports', flag: 'inbound-ports', env: 'REMORA_INBOUND_PORTS', valueName: 'PORTS',
    help: 'inbound ports to capture: "*" for all, a list like "80,8000-8100", or "" for none',
    defaultValue: { all: true } as v.PortSelection, defaultText: '*', parse: v.portSelection,
  }),
  excludeInboundPorts: spec({
    key: 'exclude_inbound_ports', flag: 'exclude-inbound-ports', env: 'REMORA_EXCLUDE_INBOUND_PORTS', valueName: 'PORTS',
    help: 'inbound ports never captured (taken out of inbound_ports, "*" or a list); ports and ranges',
    defaultValue: [] as readonly { from: number; to: number }[], defaultText: '', parse: v.portList,
  }),
  proxyPorts: spec({
    key: 'proxy_ports', flag: 'proxy-ports', env: 'REMORA_PROXY_PORTS', valueName: 'PORTS',
    help: 'the proxy\'s own admin/health/metrics ports, always excluded from inbound capture',
    defaultValue: (() => { const r = v.portList(DEFAULT_PROXY_PORTS); return r.ok ? r.value : []; })(),
    defaultText: DEFAULT_PROXY_PORTS, parse: v.portList,
  }),
  outboundCidrs: spec({
    key: 'outbound_cidrs', flag: 'outbound-cidrs', env: 'REMORA_OUTBOUND_CIDRS', valueName: 'CIDRS',
    help: 'outbound destinations to capture: "*" for all, a CIDR list, or "" for none',
    defaultValue: { all: true } as v.CidrSelection, defaultText: '*', parse: v.cidrSelection,
  }),
  excludeOutboundCidrs: spec({
    key: 'exclude_outbound_cidrs', flag: 'exclude-outbound-cidrs', env: 'REMORA_EXCLUDE_OUTBOUND_CIDRS', valueName: 'CIDRS',
    help: 'outbound destinations never captured; IPv4 and IPv6 CIDRs',
    defaultValue: [] as readonly import('../core/addr.js').Cidr[], defaultText: '', parse: v.cidrList,
  }),
  excludeOutboundPorts: spec({
    key: 'exclude_outbound_ports', flag: 'exclude-outbound-ports', env: 'REMORA_EXCLUDE_OUTBOUND_PORTS', valueName: 'PORTS',
    help: 'outbound destination ports never captured; ports and ranges',
    defaultValue: [] as readonly { from: number; to: number }[], defaultText: '', parse: v.portList,
  }),
  ipv6: spec({
    key: 'ipv6', flag: 'ipv6', env: 'REMORA_IPV6', valueName: 'MODE',
    help: 'IPv6 rules: auto (when the kernel has IPv6), on (required), off (never; only if the pod has no IPv6)',
    defaultValue: 'auto' as 'auto' | 'on' | 'off', defaultText: 'auto', parse: v.oneOf(['auto', 'on', 'off']),
  }),
  backend: spec({
    key: 'backend', flag: 'backend', env: 'REMORA_IPTABLES_BACKEND', valueName: 'NAME',
    help: 'iptables backend: auto (existing rules win, then nft), nft or legacy',
    defaultValue: 'auto' as 'auto' | 'nft' | 'legacy', defaultText: 'auto', parse: v.oneOf(['auto', 'nft', 'legacy']),
  }),
  lockTimeout: spec({
    key: 'lock_timeout', flag: 'lock-timeout', env: 'REMORA_LOCK_TIMEOUT', valueName: 'DURATION',
    help: 'how long to wait for another remora init in the same network namespace',
    defaultValue: 30_000, defaultText: '30s', parse: v.duration(0, 600_000),
  }),
  lockDir: spec({
    key: 'lock_dir', flag: 'lock-dir', env: 'REMORA_LOCK_DIR', valueName: 'DIR',
    help: 'directory of the lock that serialises remora init runs per network namespace (also holds the xtables lock)',
    defaultValue: DEFAULT_LOCK_DIR, defaultText: DEFAULT_LOCK_DIR, parse: absolutePath(false),
  }),
  iptablesBinDir: spec({
    key: 'iptables_bin_dir', flag: 'iptables-bin-dir', env: 'REMORA_IPTABLES_BIN_DIR', valueName: 'DIR',
    help: 'directory holding the iptables-*-save/-restore binaries ("" = search PATH)',
    defaultValue: '', defaultText: '', parse: absolutePath(true),
  }),
  dryRun: spec({
    key: 'dry_run', flag: 'dry-run', env: 'REMORA_DRY_RUN', isSwitch: true,
    help: 'print the iptables-restore input that would be applied, change nothing (needs no root)',
    defaultValue: false, defaultText: 'false', parse: v.boolean,
  }),
  cleanup: spec({
    key: 'cleanup', flag: 'cleanup', env: 'REMORA_CLEANUP', isSwitch: true,
    help: 'remove remora\'s chains and jumps (and ::6 on lo) instead of installing them',
    defaultValue: false, defaultText: 'false', parse: v.boolean,
  }),
  logLevel: spec({
    key: 'log_level', flag: 'log-level', env: 'REMORA_LOG_LEVEL', valueName: 'LEVEL',
    help: 'log level', defaultValue: 'info' as LogLevel, defaultText: 'info', parse: v.oneOf(LOG_LEVELS),
  }),
} as const;
