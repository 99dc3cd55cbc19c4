// The TLS-origination keys of a [service NAME] section (tls_*): the sidecar receives plaintext from the app and
// opens TLS to the upstream. Pure: files are named here, read by whoever builds the secure context.
import { isIP } from 'node:net';
import type { SectionReader } from './section-reader.js';
import * as v from './value-parsers.js';

export const TLS_MIN_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export type TlsMinVersion = (typeof TLS_MIN_VERSIONS)[number];

/** Where the SNI of an originated connection comes from. */
export type ServerNameSource = 'tls_sni' | 'hostname' | 'dns_name' | 'none';

export interface TlsOriginationSpec {
  /** Upstream port to open TLS to; undefined = the endpoint's own port. */
  readonly port: number | undefined;
  /**
   * SNI sent and name verified: tls_sni, else the service's first exact hostname, else its dns_name (A/AAAA
   * discovery), else none (the certificate is then checked against the endpoint's IP address).
   */
  readonly serverName: string | undefined;
  readonly serverNameSource: ServerNameSource;
  /** PEM CA bundle; undefined = Node's default (system/bundled) trust store. */
  readonly caFile: string | undefined;
  /** Client certificate and key (PEM) for mutual TLS; both or neither. */
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  readonly minVersion: TlsMinVersion;
  /** ALPN protocol ids offered, in order of preference; empty = no ALPN extension. */
  readonly alpn: readonly string[];
  /** Verify the upstream certificate chain and name. Only `tls_insecure_skip_verify = true` turns this off. */
  readonly verify: boolean;
}

export const TLS_KEYS = [
  'tls_origination', 'tls_port', 'tls_sni', 'tls_ca_file', 'tls_cert_file', 'tls_key_file', 'tls_min_version',
  'tls_alpn', 'tls_insecure_skip_verify',
] as const;

const DNS_NAME_RE = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

export const serverName: v.ValueParser<string> = (text) => {
  const t = text.trim().toLowerCase().replace(/\.$/, '');
  if (isIP(t) !== 0) return { ok: false, expected: 'a DNS name (SNI cannot be an IP address; omit tls_sni to verify the IP)' };
  return DNS_NAME_RE.test(t) ? { ok: true, value: t } : { ok: false, expected: 'a DNS name like "api.example.com"' };
};

export const alpnList: v.ValueParser<readonly string[]> = (text) => {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) return { ok: false, expected: 'one or more ALPN protocol ids, e.g. "h2, http/1.1"' };
  const out: string[] = [];
  for (const item of items) {
    if (!/^[\x21-\x7e]{1,255}$/.test(item)) {
      return { ok: false, expected: `ALPN ids of 1-255 printable characters without spaces ("${item}" is not)` };
    }
    if (out.includes(item)) return { ok: false, expected: `each ALPN id once ("${item}" is repeated)` };
    out.push(item);
  }
  return { ok: true, value: out };
};

export interface TlsDefaults {
  /** The service's first exact (non-wildcard) hostname, if any. */
  readonly hostname: string | undefined;
  /** dns_name when discovery is A/AAAA DNS. */
  readonly dnsName: string | undefined;
  /** The service's `protocol` value (tls origination on a `tls` service would be TLS inside TLS). */
  readonly protocol: string;
  /** Optional I/O check (not done when absent): is this file readable? */
  readonly checkFile?: ((path: string) => boolean) | undefined;
}

/** Reads the tls_* keys of a service section; undefined when TLS origination is off (or invalid). */
export function readTlsOrigination(r: SectionReader, defaults: TlsDefaults): TlsOriginationSpec | undefined {
  const on = r.optional('tls_origination', v.boolean);
  const others = TLS_KEYS.filter((k) => k !== 'tls_origination' && r.has(k));
  // An invalid tls_origination is reported by itself; whether the other keys belong cannot be known.
  if (on === undefined && r.has('tls_origination')) return undefined;
  if (on !== true) {
    // Values are still validated so that every mistake is reported at once.
    for (const k of others) {
      r.issue(k, r.has('tls_origination')
        ? 'no tls_* keys while tls_origination = off (set tls_origination = on or remove the key)'
        : 'tls_origination = on in this section (tls_* keys only configure TLS origination)');
    }
    return undefined;
  }
  if (defaults.protocol === 'tls') {
    r.issue('tls_origination', 'tls_origination = off for protocol = tls (the app already speaks TLS; originating would nest TLS in TLS)');
  }
  const port = r.optional('tls_port', v.port);
  const sni = r.optional('tls_sni', serverName);
  const caFile = r.optional('tls_ca_file', v.path);
  const certFile = r.optional('tls_cert_file', v.path);
  const keyFile = r.optional('tls_key_file', v.path);
  const minVersion = r.get('tls_min_version', v.oneOf(TLS_MIN_VERSIONS), 'TLSv1.2');
  const alpn = r.get('tls_alpn', alpnList, []);
  const skipVerify = r.get('tls_insecure_skip_verify', v.boolean, false);

  if (r.has('tls_cert_file') !== r.has('tls_key_file')) {
    const missing = r.has('tls_cert_file') ? 'tls_key_file' : 'tls_cert_file';
    r.issue(r.has('tls_cert_file') ? 'tls_cert_file' : 'tls_key_file', `${missing} as well (a client certificate needs both the certificate and its key)`);
  }
  if (skipVerify && r.has('tls_ca_file')) {
    r.issue('tls_ca_file', 'no tls_ca_file when tls_insecure_skip_verify = true (nothing would be verified against it)');
  }
  if (defaults.checkFile !== undefined) {
    for (const [key, file] of [['tls_ca_file', caFile], ['tls_cert_file', certFile], ['tls_key_file', keyFile]] as const) {
      if (file !== undefined && !defaults.checkFile(file)) r.issue(key, 'a readable file');
    }
  }
  let serverNameValue: string | undefined;
  let source: ServerNameSource = 'none';
  if (sni !== undefined) { serverNameValue = sni; source = 'tls_sni'; }
  else if (!r.has('tls_sni') && defaults.hostname !== undefined) { serverNameValue = defaults.hostname; source = 'hostname'; }
  else if (!r.has('tls_sni') && defaults.dnsName !== undefined) { serverNameValue = defaults.dnsName; source = 'dns_name'; }
  return {
    port, serverName: serverNameValue, serverNameSource: source, caFile, certFile, keyFile, minVersion, alpn, verify: !skipVerify,
  };
}
