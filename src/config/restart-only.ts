// The [proxy] options a reload cannot change: the listeners (capture and admin) are bound, the uid/gid dropped to and
// the connection handlers chosen when the proxy starts. A reload whose file changes one of them is refused with one
// issue per changed key, pointing at the key in the new file.
import { formatHostPort, type HostPort } from '../core/addr.js';
import type { ProxySettings } from './config-snapshot.js';
import type { ConfigIssue } from './config-issue.js';
import { findSection, qualify, type IniDocument } from './ini-file.js';
import { proxyOptionSpecs } from './proxy-options.js';

/** [proxy] keys that a reload cannot change (listeners and identity are bound at start). */
export const RESTART_ONLY_KEYS = ['outbound_port', 'inbound_port', 'listen_address', 'uid', 'gid', 'admin_address', 'http_engine', 'tcp_forwarder', 'http2_codec', 'readiness_probe_uid', 'metrics_address',
  'control', 'control_token', 'control_ca_file', 'spiffe_id', 'workers'] as const;
export type RestartOnlyKey = (typeof RESTART_ONLY_KEYS)[number];

/** Why each key is fixed at start. */
const REASONS: Readonly<Record<RestartOnlyKey, string>> = {
  outbound_port: 'listeners are bound at start',
  inbound_port: 'listeners are bound at start',
  listen_address: 'listeners are bound at start',
  uid: 'the proxy switches to its uid and gid at start',
  gid: 'the proxy switches to its uid and gid at start',
  admin_address: 'the admin listener is bound at start',
  http_engine: 'the connection handlers are chosen at start',
  tcp_forwarder: 'the connection handlers are chosen at start',
  http2_codec: 'the connection handlers are chosen at start',
  readiness_probe_uid: 'the probe helper is started with it before the proxy drops root',
  metrics_address: 'the metrics listener is bound at start',
  control: 'the control plane subscription is made at start',
  control_token: 'the control plane subscription is made at start',
  control_ca_file: 'the control plane subscription is made at start',
  spiffe_id: 'the certificate renewal is set up at start',
  workers: 'the worker processes are started at start',
};

type OptionName = keyof typeof proxyOptionSpecs;

function optionOf(key: RestartOnlyKey): OptionName {
  const found = (Object.keys(proxyOptionSpecs) as OptionName[]).find((name) => proxyOptionSpecs[name].key === key);
  if (found === undefined) throw new Error(`no [proxy] option has the key ${key}`); // a programming error
  return found;
}

function isHostPort(v: unknown): v is HostPort {
  return typeof v === 'object' && v !== null && typeof (v as HostPort).host === 'string' && typeof (v as HostPort).port === 'number';
}

/** A setting's value compared structurally (admin_address is {host, port}). */
function same(a: unknown, b: unknown): boolean {
  if (isHostPort(a) && isHostPort(b)) return a.host === b.host && a.port === b.port;
  return Object.is(a, b);
}

/** A value as a user would write it. */
function formatValue(v: unknown): string {
  if (v === undefined) return '""';
  if (isHostPort(v)) return formatHostPort(v.host, v.port);
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  return String(v);
}

/**
 * One issue per restart-only key whose value differs between the running settings and the new ones: at the key's
 * line in the new document (else the [proxy] section's, else `file`), with the new text and the running value.
 */
export function restartOnlyIssues(running: ProxySettings, next: ProxySettings, document: IniDocument | undefined, file: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const section = document === undefined ? undefined : findSection(document, 'proxy');
  for (const key of RESTART_ONLY_KEYS) {
    const name = optionOf(key);
    const was: unknown = running[name];
    const now: unknown = next[name];
    if (same(was, now)) continue;
    const entry = section?.entries.get(key);
    issues.push({
      source: entry !== undefined ? `${file}:${entry.line}` : section !== undefined ? `${file}:${section.line}` : file,
      key: qualify('proxy', key),
      value: entry?.value ?? formatValue(now),
      expected: `${formatValue(was)}, the value the proxy started with (${REASONS[key]}: restart the proxy to change ${key})`,
    });
  }
  return issues;
}
