// Options of `remora proxy` (section [proxy] of the config file).
import type { OptionSpec } from './option-set.js';
import * as v from './value-parsers.js';
import { MTLS_MODES, mtlsPortModes, type MtlsMode, type MtlsPortMode } from './mtls-settings.js';
import type { HostPort } from '../core/addr.js';
import type { LogLevel } from '../core/log.js';
import { LOG_LEVELS } from '../core/log.js';
import { DEFAULT_INBOUND_PORT, DEFAULT_OUTBOUND_PORT, DEFAULT_PROXY_UID } from './init-options.js';

const spec = <T>(s: OptionSpec<T>): OptionSpec<T> => s;

export const proxyOptionSpecs = {
  outboundPort: spec({
    key: 'outbound_port', flag: 'outbound-port', env: 'REMORA_OUTBOUND_PORT', valueName: 'PORT',
    help: 'listener for redirected outbound connections',
    defaultValue: DEFAULT_OUTBOUND_PORT, defaultText: String(DEFAULT_OUTBOUND_PORT), parse: v.port,
  }),
  inboundPort: spec({
    key: 'inbound_port', flag: 'inbound-port', env: 'REMORA_INBOUND_PORT', valueName: 'PORT',
    help: 'listener for redirected inbound connections',
    defaultValue: DEFAULT_INBOUND_PORT, defaultText: String(DEFAULT_INBOUND_PORT), parse: v.port,
  }),
  listenAddress: spec({
    key: 'listen_address', flag: 'listen-address', env: 'REMORA_LISTEN_ADDRESS', valueName: 'IP',
    help: 'address of both capture listeners ("::" accepts IPv4 and IPv6; falls back to 0.0.0.0 without IPv6)',
    defaultValue: '::', defaultText: '::', parse: v.ipAddress,
  }),
  uid: spec({
    key: 'uid', flag: 'uid', env: 'REMORA_PROXY_UID', valueName: 'UID',
    help: 'uid the proxy runs as; started as root it switches to it after binding; must be excluded by the rules',
    defaultValue: DEFAULT_PROXY_UID, defaultText: String(DEFAULT_PROXY_UID), parse: v.id,
  }),
  gid: spec({
    key: 'gid', flag: 'gid', env: 'REMORA_PROXY_GID', valueName: 'GID',
    help: 'gid the proxy runs as (see uid)',
    defaultValue: DEFAULT_PROXY_UID, defaultText: String(DEFAULT_PROXY_UID), parse: v.id,
  }),
  adminAddress: spec({
    key: 'admin_address', flag: 'admin-address', env: 'REMORA_ADMIN_ADDRESS', valueName: 'HOST:PORT',
    help: 'admin listener (/ready, /stats, /config_dump); keep it on loopback',
    defaultValue: { host: '127.0.0.1', port: 15000 }, defaultText: '127.0.0.1:15000', parse: v.hostPort,
  }),
  inboundDelivery: spec({
    key: 'inbound_delivery', flag: 'inbound-delivery', env: 'REMORA_INBOUND_DELIVERY', valueName: 'MODE',
    help: 'where inbound connections go: original-dst (the pod address the client dialed) or loopback (127.0.0.1/::1)',
    defaultValue: 'original-dst' as 'original-dst' | 'loopback', defaultText: 'original-dst',
    parse: v.oneOf(['original-dst', 'loopback']),
  }),
  connectTimeout: spec({
    key: 'connect_timeout', flag: 'connect-timeout', env: 'REMORA_CONNECT_TIMEOUT', valueName: 'DURATION',
    help: 'upstream connect timeout', defaultValue: 10_000, defaultText: '10s', parse: v.duration(1, 600_000),
  }),
  idleTimeout: spec({
    key: 'idle_timeout', flag: 'idle-timeout', env: 'REMORA_IDLE_TIMEOUT', valueName: 'DURATION',
    help: 'close a forwarded connection after this long with no bytes either way (0 = never)',
    defaultValue: 3_600_000, defaultText: '1h', parse: v.duration(0, 7 * 24 * 3_600_000),
  }),
  detectTimeout: spec({
    key: 'detect_timeout', flag: 'detect-timeout', env: 'REMORA_DETECT_TIMEOUT', valueName: 'DURATION',
    help: 'protocol detection deadline: a connection still undecided then (client and server silent) continues as opaque TCP, never closed',
    defaultValue: 5_000, defaultText: '5s', parse: v.duration(1, 3_600_000),
  }),
  httpEngine: spec({
    key: 'http_engine', flag: 'http-engine', env: 'REMORA_HTTP_ENGINE', valueName: 'BOOL',
    help: 'proxy connections detected or declared as HTTP/1.1 or h2c per request (routes, balancing, retries); off = forward them as opaque TCP',
    defaultValue: true, defaultText: 'on', parse: v.boolean,
  }),
  drainTimeout: spec({
    key: 'drain_timeout', flag: 'drain-timeout', env: 'REMORA_DRAIN_TIMEOUT', valueName: 'DURATION',
    help: 'on SIGTERM (or POST /quitquitquit), how long open connections may finish before they are reset and the proxy exits',
    defaultValue: 15_000, defaultText: '15s', parse: v.duration(0, 3_600_000),
  }),
  drainGrace: spec({
    key: 'drain_grace', flag: 'drain-grace', env: 'REMORA_DRAIN_GRACE', valueName: 'DURATION',
    help: 'once a drain begins (SIGTERM, POST /drain), how long the inbound listener keeps accepting, every HTTP answer saying Connection: close or GOAWAY, before it closes and idle connections are closed (cut short by drain_timeout)',
    defaultValue: 5_000, defaultText: '5s', parse: v.duration(0, 3_600_000),
  }),
  readinessProbeInterval: spec({
    key: 'readiness_probe_interval', flag: 'readiness-probe-interval', env: 'REMORA_READINESS_PROBE_INTERVAL', valueName: 'DURATION',
    help: 'how often /ready proves that the iptables rules still redirect to this proxy (connections sent through them, docs/operations.md); "off" = /ready checks the listeners and the configuration only',
    defaultValue: 5_000, defaultText: '5s', parse: v.durationOrOff(200, 60_000),
  }),
  readinessProbeTarget: spec({
    key: 'readiness_probe_target', flag: 'readiness-probe-target', env: 'REMORA_READINESS_PROBE_TARGET', valueName: 'IP:PORT',
    help: 'destination of the outbound redirect probe: never reached, it must be routed and captured by the outbound rules (in outbound_cidrs, not excluded); "" = no outbound probe',
    defaultValue: { host: '192.0.2.1', port: 15099 } as HostPort | undefined, defaultText: '192.0.2.1:15099', parse: v.optionalIpPort,
  }),
  readinessProbeUid: spec({
    key: 'readiness_probe_uid', flag: 'readiness-probe-uid', env: 'REMORA_READINESS_PROBE_UID', valueName: 'UID',
    help: 'uid and gid of the outbound probe helper, started before the switch to uid when the proxy starts as root; must differ from uid/gid and not be excluded by the rules',
    defaultValue: 65534, defaultText: '65534', parse: v.id,
  }),
  identityDir: spec({
    key: 'identity_dir', flag: 'identity-dir', env: 'REMORA_IDENTITY_DIR', valueName: 'DIR',
    help: 'the workload identity for mesh mTLS: DIR/cert-chain.pem, DIR/key.pem, DIR/root-cert.pem (remora ca issue writes them); watched, a change rotates it; "" = no identity, no mTLS',
    defaultValue: '', defaultText: '""', parse: v.optionalPath,
  }),
  mtlsMode: spec({
    key: 'mtls_mode', flag: 'mtls-mode', env: 'REMORA_MTLS_MODE', valueName: 'MODE',
    help: 'what inbound accepts: permissive (mesh mTLS and plaintext), strict (mesh mTLS only), disable (no termination: mesh TLS goes to the app as is)',
    defaultValue: 'permissive' as MtlsMode, defaultText: 'permissive', parse: v.oneOf(MTLS_MODES),
  }),
  mtlsPortModes: spec({
    key: 'mtls_port_modes', flag: 'mtls-port-modes', env: 'REMORA_MTLS_PORT_MODES', valueName: 'LIST',
    help: 'per inbound port (the original destination port) overrides of mtls_mode: "8080=strict, 9000-9100=disable"',
    defaultValue: [] as readonly MtlsPortMode[], defaultText: '""', parse: mtlsPortModes,
  }),
  logLevel: spec({
    key: 'log_level', flag: 'log-level', env: 'REMORA_LOG_LEVEL', valueName: 'LEVEL',
    help: 'log level', defaultValue: 'info' as LogLevel, defaultText: 'info', parse: v.oneOf(LOG_LEVELS),
  }),
} as const;
