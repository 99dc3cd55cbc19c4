// The service registry: [service NAME] sections (what a destination is, where its endpoints come from, how to
// balance, check and reach them) and the [registry] section (what to do with destinations that match no service,
// which DNS server to ask, per-port protocol declarations). Pure: IniDocument in, specs or issues out. Every
// problem is reported, each with file:line, section and key. See docs/configuration-services.md.
import { isIP } from 'node:net';
import { canonicalIp, formatHostPort, parseHostPort, type HostPort } from '../core/addr.js';
import {
  BALANCER_KINDS, DEFAULT_BALANCER, DEFAULT_CONNECT_ATTEMPTS, DEFAULT_DNS_REFRESH_MAX_MS, DEFAULT_DNS_REFRESH_MIN_MS,
  DEFAULT_REGISTRY_OPTIONS, DEFAULT_RESOLVER_TIMEOUT_MS, DISCOVERY_KINDS, DNS_ADDRESS_TYPES, DNS_RECORD_TYPES, endpointKey,
  HEALTH_CHECK_KINDS, REGISTRY_MODES, SERVICE_PROTOCOLS,
  type ActiveHealthSpec, type DiscoveryKind, type EndpointSource, type EndpointSpec, type PassiveHealthSpec, type PortProtocol,
  type RegistryOptions, type ServiceAddress, type ServiceHostname, type ServiceRegistry, type ServiceSpec,
} from './service-spec.js';
import { configError, type ConfigIssue } from './config-issue.js';
import type { IniDocument, IniSection } from './ini-file.js';
import { SectionReader } from './section-reader.js';
import { readTlsOrigination, TLS_KEYS } from './tls-settings.js';
import { readServiceMtls, SERVICE_MTLS_KEYS } from './mtls-settings.js';
import * as v from './value-parsers.js';

/** Sections parsed by someone else; left alone here. */
export const OTHER_SECTIONS: readonly string[] = ['proxy', 'init'];
/**
 * Kinds of named sections parsed by someone else: `[route NAME]` and `[traffic-policy SERVICE]` belong to the L7
 * parsers (src/l7/route-config.ts, traffic-policy-config.ts), which report their own issues.
 */
export const OTHER_SECTION_KINDS: readonly string[] = ['route', 'traffic-policy', 'authorization'];

export type ServiceRegistryResult =
  | ({ readonly ok: true } & ServiceRegistry)
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

export interface ServiceRegistryParseOptions {
  /** Section names owned by other parsers (default OTHER_SECTIONS: proxy, init). */
  readonly otherSections?: readonly string[];
  /** Kinds of named sections (`[KIND NAME]`) owned by other parsers (default OTHER_SECTION_KINDS: route, traffic-policy). */
  readonly otherSectionKinds?: readonly string[];
  /** Optional I/O check for tls_*_file keys; without it file names are only checked for syntax. */
  readonly checkFile?: (path: string) => boolean;
}

export const SERVICE_KEYS = [
  'addresses', 'hostnames', 'protocol', 'balancer', 'discovery', 'endpoints',
  'dns_name', 'dns_type', 'dns_port', 'dns_target_type', 'dns_refresh_min', 'dns_refresh_max',
  'connect_timeout', 'connect_attempts',
  'eject_after_failures', 'eject_base_time', 'eject_max_time', 'max_ejected_percent',
  'health_check', 'health_interval', 'health_timeout', 'healthy_threshold', 'unhealthy_threshold',
  ...TLS_KEYS, ...SERVICE_MTLS_KEYS,
] as const;

export const REGISTRY_KEYS = ['mode', 'resolver', 'resolver_timeout', 'port_protocols'] as const;

const DNS_KEYS = ['dns_name', 'dns_type', 'dns_port', 'dns_target_type', 'dns_refresh_min', 'dns_refresh_max'] as const;
const HEALTH_KEYS = ['health_interval', 'health_timeout', 'healthy_threshold', 'unhealthy_threshold'] as const;
const EJECT_KEYS = ['eject_after_failures', 'eject_base_time', 'eject_max_time', 'max_ejected_percent'] as const;
const SERVICE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOSTNAME_RE = new RegExp(`^(?=.{1,253}$)(?:\\*\\.)?${LABEL}(?:\\.${LABEL})*$`);
const DNS_LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?';
const DNS_NAME_RE = new RegExp(`^(?=.{1,254}$)${DNS_LABEL}(?:\\.${DNS_LABEL})*\\.?$`);
/** Endpoint labels (zone=, subset=); the same shape as route and backend subset names (src/l7/router.ts ROUTE_NAME_RE). */
const LABEL_VALUE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

type Parsed<T> = v.Parsed<T>;
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(expected: string): Parsed<T> => ({ ok: false, expected });

/** Canonical text of an IP address, with IPv4-mapped IPv6 ("::ffff:10.0.0.1") reduced to IPv4; undefined if not an IP. */
export function canonicalAddress(ip: string): string | undefined {
  const c = canonicalIp(ip.trim());
  if (c === undefined) return undefined;
  if (!c.startsWith('::ffff:')) return c; // the common case, without running the pattern below
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(c);
  if (m === null) return c;
  const hi = parseInt(m[1] ?? '0', 16);
  const lo = parseInt(m[2] ?? '0', 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

function splitCommas(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** "10.0.0.1:80" or "[fd00::1]:80" (IP literals only). */
function ipPort(text: string, what: string): Parsed<{ address: string; port: number }> {
  const hp = parseHostPort(text);
  const address = hp === undefined ? undefined : canonicalAddress(hp.host);
  if (hp === undefined || address === undefined) {
    return bad(`${what} as IP:port, e.g. "10.0.0.1:80" or "[fd00::1]:80" ("${text}" is not)`);
  }
  return ok({ address, port: hp.port });
}

export const serviceAddresses: v.ValueParser<readonly ServiceAddress[]> = (text) => {
  const items = splitCommas(text);
  if (items.length === 0) return bad('one or more VIP:port, e.g. "10.96.0.10:80, [fd00::10]:80"');
  const out: ServiceAddress[] = [];
  for (const item of items) {
    const r = ipPort(item, 'addresses');
    if (!r.ok) {
      const named = /^[A-Za-z]/.test(item) && isIP(item) === 0;
      return named ? bad(`${r.expected}; names go in hostnames`) : r;
    }
    if (r.value.address === '0.0.0.0' || r.value.address === '::') {
      return bad(`specific addresses ("${item}" is the unspecified address)`);
    }
    if (out.some((o) => endpointKey(o) === endpointKey(r.value))) return bad(`each address once ("${item}" is repeated)`);
    out.push(r.value);
  }
  return ok(out);
};

export const serviceHostnames: v.ValueParser<readonly ServiceHostname[]> = (text) => {
  const items = splitCommas(text);
  if (items.length === 0) return bad('one or more host names, e.g. "api.example.com, *.internal:8080"');
  const out: ServiceHostname[] = [];
  for (const item of items) {
    const m = /^(.*?)(?::(\d{1,5}))?$/.exec(item);
    const name = (m?.[1] ?? '').toLowerCase().replace(/\.$/, '');
    const portText = m?.[2];
    const port = portText === undefined ? undefined : Number(portText);
    if (isIP(name) !== 0 || name.startsWith('[')) return bad(`host names, not addresses ("${item}": IP addresses go in addresses)`);
    if (!HOSTNAME_RE.test(name)) {
      return bad(`host names like "api.example.com", "*.example.com" or "api.example.com:443" ("${item}" is not)`);
    }
    if (port !== undefined && (port < 1 || port > 65535)) return bad(`ports 1-65535 ("${item}")`);
    if (out.some((o) => o.pattern === name && o.port === port)) return bad(`each host name once ("${item}" is repeated)`);
    out.push({ pattern: name, port });
  }
  return ok(out);
};

function endpointItem(item: string): Parsed<EndpointSpec> {
  const [first = '', ...attrs] = item.split(/\s+/);
  const hp = ipPort(first, 'endpoints');
  if (!hp.ok) {
    return /^[A-Za-z]/.test(first) && !first.startsWith('[')
      ? bad(`${hp.expected}; for names use discovery = dns`)
      : hp;
  }
  let weight: number | undefined;
  let zone: string | undefined;
  const subsets: string[] = [];
  for (const attr of attrs) {
    const m = /^([a-z_]+)=(.*)$/.exec(attr);
    if (m?.[1] === 'weight' && weight === undefined) {
      const w = m[2] ?? '';
      if (!/^\d{1,4}$/.test(w) || Number(w) < 1 || Number(w) > 1000) return bad(`weight=1..1000 ("${attr}" in "${item}")`);
      weight = Number(w);
    } else if (m?.[1] === 'zone' && zone === undefined) {
      if (!LABEL_VALUE_RE.test(m[2] ?? '')) return bad(`zone=LABEL of letters, digits, ".", "_", "-" ("${attr}" in "${item}")`);
      zone = m[2];
    } else if (m?.[1] === 'subset') {
      const name = m[2] ?? '';
      if (!LABEL_VALUE_RE.test(name)) return bad(`subset=NAME of letters, digits, ".", "_", "-" ("${attr}" in "${item}")`);
      if (subsets.includes(name)) return bad(`each subset once per endpoint ("${attr}" is repeated in "${item}")`);
      subsets.push(name);
    } else {
      return bad(`endpoint attributes weight=N and zone=NAME (each at most once) and subset=NAME ("${attr}" in "${item}")`);
    }
  }
  return ok({
    address: hp.value.address, port: hp.value.port, weight: weight ?? 1,
    ...(zone === undefined ? {} : { zone }), ...(subsets.length === 0 ? {} : { subsets: subsets.sort() }),
  });
}

/** "10.0.0.1:80 weight=5 zone=a subset=v1, 10.0.0.2:80 subset=v2 subset=canary, [fd00::1]:80 weight=2". */
export const staticEndpoints: v.ValueParser<readonly EndpointSpec[]> = (text) => {
  const items = splitCommas(text);
  if (items.length === 0) return bad('one or more endpoints, e.g. "10.0.0.1:8080 weight=5 zone=a, 10.0.0.2:8080"');
  const out: EndpointSpec[] = [];
  for (const item of items) {
    const r = endpointItem(item);
    if (!r.ok) return r;
    if (out.some((o) => endpointKey(o) === endpointKey(r.value))) {
      return bad(`each endpoint once ("${endpointKey(r.value)}" is repeated)`);
    }
    out.push(r.value);
  }
  return ok(out);
};

export const dnsName: v.ValueParser<string> = (text) => {
  const t = text.trim().toLowerCase();
  if (isIP(t) !== 0) return bad('a DNS name, not an address (use discovery = static with endpoints)');
  return DNS_NAME_RE.test(t) ? ok(t) : bad('a DNS name like "db.internal" or "_pg._tcp.db.internal"');
};

/** "10.0.0.10", "10.0.0.10:5353", "[fd00::a]:53", "fd00::a" (port 53 when omitted). */
export const resolverAddress: v.ValueParser<HostPort> = (text) => {
  const t = text.trim();
  const bare = canonicalAddress(t);
  if (bare !== undefined) return ok({ host: bare, port: 53 });
  const hp = parseHostPort(t);
  const host = hp === undefined ? undefined : canonicalAddress(hp.host);
  if (hp === undefined || host === undefined) return bad('the DNS server as IP or IP:port, e.g. "10.96.0.10:53" or "[fd00::a]:53"');
  return ok({ host, port: hp.port });
};

/** "3306=opaque, 8080=http, 9000-9100=http2". */
const portProtocolPairs = v.portValues(SERVICE_PROTOCOLS, { name: 'PROTOCOL', kinds: 'protocols', example: '3306=opaque, 8080=http' });

export const portProtocols: v.ValueParser<readonly PortProtocol[]> = (text) => {
  const r = portProtocolPairs(text);
  return r.ok ? ok(r.value.map((p) => ({ first: p.first, last: p.last, protocol: p.value }))) : r;
};

function readRegistry(r: SectionReader): RegistryOptions {
  r.reportUnknownKeys('[registry]');
  return {
    mode: r.get('mode', v.oneOf(REGISTRY_MODES), DEFAULT_REGISTRY_OPTIONS.mode),
    resolver: r.optional('resolver', resolverAddress),
    resolverTimeoutMs: r.get('resolver_timeout', v.duration(100, 60_000), DEFAULT_RESOLVER_TIMEOUT_MS),
    portProtocols: r.get('port_protocols', portProtocols, []),
  };
}

function readEndpointSource(r: SectionReader, discovery: DiscoveryKind | undefined): EndpointSource | undefined {
  if (r.has('discovery') && discovery === undefined) {
    // discovery itself is invalid (already reported): only check the values of the other keys.
    r.optional('endpoints', staticEndpoints);
    r.optional('dns_name', dnsName);
    return undefined;
  }
  const kind: DiscoveryKind = discovery ?? 'static';
  if (kind !== 'dns') {
    for (const k of DNS_KEYS) {
      if (r.has(k)) r.issue(k, `discovery = dns for ${k} (this service uses discovery = ${kind})`);
    }
  }
  if (kind === 'static') {
    if (!r.has('endpoints')) {
      r.issue(r.has('discovery') ? 'discovery' : undefined,
        'endpoints (a static list), discovery = dns with dns_name, or discovery = original-dst', r.has('discovery'));
      return undefined;
    }
    const endpoints = r.optional('endpoints', staticEndpoints);
    return endpoints === undefined ? undefined : { kind: 'static', endpoints };
  }
  if (r.has('endpoints')) {
    r.issue('endpoints', `no static endpoints with discovery = ${kind} (choose one source of endpoints)`);
  }
  if (kind === 'original-dst') return { kind: 'original-dst' };

  const name = r.optional('dns_name', dnsName);
  if (!r.has('dns_name')) r.issue('discovery', 'dns_name in this section (discovery = dns needs the name to resolve)');
  const type = r.get('dns_type', v.oneOf(DNS_RECORD_TYPES), 'A');
  const port = r.optional('dns_port', v.port);
  if (type === 'SRV') {
    if (r.has('dns_port')) r.issue('dns_port', 'no dns_port with dns_type = SRV (ports come from the SRV records)');
  } else {
    if (!r.has('dns_port')) r.issue(r.has('dns_type') ? 'dns_type' : 'discovery', `dns_port in this section (the endpoint port for dns_type = ${type})`, false);
    if (r.has('dns_target_type')) r.issue('dns_target_type', 'dns_target_type only with dns_type = SRV (it selects how SRV targets are resolved)');
  }
  const targetType = r.get('dns_target_type', v.oneOf(DNS_ADDRESS_TYPES), 'A');
  const refreshMinMs = r.get('dns_refresh_min', v.duration(100, 86_400_000), DEFAULT_DNS_REFRESH_MIN_MS);
  const refreshMaxMs = r.get('dns_refresh_max', v.duration(100, 86_400_000), Math.max(DEFAULT_DNS_REFRESH_MAX_MS, refreshMinMs));
  if (refreshMinMs > refreshMaxMs) {
    r.issue(r.has('dns_refresh_max') ? 'dns_refresh_max' : 'dns_refresh_min', 'dns_refresh_min <= dns_refresh_max');
  }
  if (name === undefined || (type !== 'SRV' && port === undefined)) return undefined;
  return { kind: 'dns', dns: { name, type, port: type === 'SRV' ? undefined : port, targetType, refreshMinMs, refreshMaxMs } };
}

function readPassiveHealth(r: SectionReader): PassiveHealthSpec {
  const ejectAfterFailures = r.get('eject_after_failures', v.integer(0, 1000), 5);
  const ejectBaseTimeMs = r.get('eject_base_time', v.duration(100, 86_400_000), 30_000);
  const ejectMaxTimeMs = r.get('eject_max_time', v.duration(100, 86_400_000), Math.max(300_000, ejectBaseTimeMs));
  const maxEjectedPercent = r.get('max_ejected_percent', v.integer(0, 100), 50);
  if (ejectBaseTimeMs > ejectMaxTimeMs) {
    r.issue(r.has('eject_max_time') ? 'eject_max_time' : 'eject_base_time', 'eject_base_time <= eject_max_time');
  }
  return { ejectAfterFailures, ejectBaseTimeMs, ejectMaxTimeMs, maxEjectedPercent };
}

function readActiveHealth(r: SectionReader): ActiveHealthSpec {
  const kind = r.get('health_check', v.oneOf(HEALTH_CHECK_KINDS), 'none');
  if (kind === 'none') {
    for (const k of HEALTH_KEYS) {
      if (r.has(k)) r.issue(k, `health_check = tcp for ${k} (active health checks are off)`);
    }
    return { kind: 'none' };
  }
  const intervalMs = r.get('health_interval', v.duration(100, 3_600_000), 10_000);
  const timeoutMs = r.get('health_timeout', v.duration(10, 600_000), Math.min(2_000, intervalMs));
  const healthyThreshold = r.get('healthy_threshold', v.integer(1, 100), 2);
  const unhealthyThreshold = r.get('unhealthy_threshold', v.integer(1, 100), 3);
  if (timeoutMs > intervalMs) r.issue(r.has('health_timeout') ? 'health_timeout' : 'health_interval', 'health_timeout <= health_interval');
  return { kind: 'tcp', intervalMs, timeoutMs, healthyThreshold, unhealthyThreshold };
}

interface ReadService {
  /** undefined when the section has problems (reported). */
  readonly spec: ServiceSpec | undefined;
  /** The names it claims, also when spec is undefined, so that clashes with other services are still found. */
  readonly addresses: readonly ServiceAddress[];
  readonly hostnames: readonly ServiceHostname[];
}

function readService(r: SectionReader, name: string, checkFile: ((p: string) => boolean) | undefined): ReadService {
  r.reportUnknownKeys('[service NAME]');
  const addresses = r.get('addresses', serviceAddresses, []);
  const hostnames = r.get('hostnames', serviceHostnames, []);
  // A service with neither is reachable only as the backend of a [route NAME] (e.g. the versions of a canary); the
  // config's validator (src/config/load-snapshot.ts) reports one that no route names.
  const protocol = r.get('protocol', v.oneOf(SERVICE_PROTOCOLS), 'auto');
  if (protocol === 'opaque' && r.has('hostnames')) {
    r.issue('hostnames', 'no hostnames with protocol = opaque (opaque bytes carry no SNI or Host to match; use addresses)', false);
  }
  const discovery = r.optional('discovery', v.oneOf(DISCOVERY_KINDS));
  const kind: DiscoveryKind = discovery ?? 'static';
  const balancer = r.get('balancer', v.oneOf(BALANCER_KINDS), DEFAULT_BALANCER);
  const endpoints = readEndpointSource(r, discovery);
  const connectTimeoutMs = r.optional('connect_timeout', v.duration(1, 600_000));
  const connectAttempts = r.get('connect_attempts', v.integer(1, 10), DEFAULT_CONNECT_ATTEMPTS);
  const passiveHealth = readPassiveHealth(r);
  const activeHealth = readActiveHealth(r);
  if (kind === 'original-dst') {
    for (const k of ['balancer', 'health_check', ...EJECT_KEYS]) {
      if (r.has(k)) r.issue(k, `no ${k} with discovery = original-dst (there is one endpoint: the original destination)`);
    }
  }
  const dns = endpoints?.kind === 'dns' ? endpoints.dns : undefined;
  const tls = readTlsOrigination(r, {
    hostname: hostnames.find((h) => !h.pattern.startsWith('*.'))?.pattern,
    dnsName: dns !== undefined && dns.type !== 'SRV' ? dns.name.replace(/\.$/, '') : undefined,
    protocol,
    checkFile,
  });
  const mtls = readServiceMtls(r, TLS_KEYS);
  if (endpoints === undefined) return { spec: undefined, addresses, hostnames };
  const spec: ServiceSpec = {
    name, source: r.where(), addresses, hostnames, protocol, balancer, endpoints, connectTimeoutMs, connectAttempts,
    passiveHealth, activeHealth, tls, mtls,
  };
  return { spec, addresses, hostnames };
}

/** Parse the [registry] and [service NAME] sections of a document. Every problem is returned, none thrown. */
export function parseServiceRegistry(doc: IniDocument, opts: ServiceRegistryParseOptions = {}): ServiceRegistryResult {
  const issues: ConfigIssue[] = [];
  const other = opts.otherSections ?? OTHER_SECTIONS;
  const otherKinds = opts.otherSectionKinds ?? OTHER_SECTION_KINDS;
  const seen = new Set<string>();
  const services: ServiceSpec[] = [];
  let registry = DEFAULT_REGISTRY_OPTIONS;
  const addressOwners = new Map<string, { service: string; source: string }>();
  const hostnameOwners = new Map<string, { service: string; source: string }>();

  for (const section of doc.sections) {
    if (section.name === '' || other.includes(section.name)) continue;
    // parseIni already reported a repeated section; reading it again would only repeat its issues.
    if (seen.has(section.name)) continue;
    seen.add(section.name);
    const [kind = '', ...rest] = section.name.split(' ');
    const rest1 = rest.join(' ');
    if (rest1 !== '' && otherKinds.includes(kind)) continue;
    if (kind === 'registry') {
      if (rest1 !== '') {
        issues.push(sectionIssue(doc, section, '[registry] (it takes no name)'));
        continue;
      }
      registry = readRegistry(new SectionReader(doc.file, section, REGISTRY_KEYS, issues));
      continue;
    }
    if (kind !== 'service') {
      const known = [...other.map((o) => `[${o}]`), '[registry]', '[service NAME]'].join(', ');
      const more = otherKinds.length === 0 ? '' : ` or ${otherKinds.map((k) => `[${k} NAME]`).join(', ')}`;
      issues.push(sectionIssue(doc, section, `a known section (${known})${more}`));
      continue;
    }
    if (!SERVICE_NAME_RE.test(rest1)) {
      issues.push(sectionIssue(doc, section, '[service NAME] with NAME of 1-63 letters, digits, ".", "_" or "-"'));
      continue;
    }
    const r = new SectionReader(doc.file, section, SERVICE_KEYS, issues);
    const read = readService(r, rest1, opts.checkFile);
    for (const a of read.addresses) {
      const key = endpointKey(a);
      const owner = addressOwners.get(key);
      if (owner !== undefined) {
        r.issue('addresses', `addresses not used by another service (${key} belongs to service ${owner.service} at ${owner.source})`);
      } else {
        addressOwners.set(key, { service: rest1, source: r.where('addresses') });
      }
    }
    for (const h of read.hostnames) {
      const key = h.port === undefined ? h.pattern : `${h.pattern}:${h.port}`;
      const owner = hostnameOwners.get(key);
      if (owner !== undefined) {
        r.issue('hostnames', `hostnames not used by another service (${key} belongs to service ${owner.service} at ${owner.source})`);
      } else {
        hostnameOwners.set(key, { service: rest1, source: r.where('hostnames') });
      }
    }
    if (read.spec !== undefined) services.push(read.spec);
  }
  if (issues.length > 0) return { ok: false, issues: sortByLine(issues) };
  return { ok: true, services, registry };
}

/** Issues in file order (stable for issues on the same line). */
function sortByLine(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const line = (i: ConfigIssue): number => Number(/:(\d+)$/.exec(i.source)?.[1] ?? 0);
  return issues.map((issue, n) => ({ issue, n })).sort((a, b) => line(a.issue) - line(b.issue) || a.n - b.n).map((x) => x.issue);
}

function sectionIssue(doc: IniDocument, section: IniSection, expected: string): ConfigIssue {
  return { source: `${doc.file}:${section.line}`, key: `[${section.name}]`, expected };
}

/** parseServiceRegistry, throwing REMORA_ERR_CONFIG_INVALID with every issue. */
export function serviceRegistryOrThrow(doc: IniDocument, opts: ServiceRegistryParseOptions = {}): ServiceRegistry {
  const r = parseServiceRegistry(doc, opts);
  if (!r.ok) throw configError(r.issues);
  return { services: r.services, registry: r.registry };
}

/** "10.0.0.1:80" / "[fd00::1]:80" for an address entry. */
export function formatServiceAddress(a: ServiceAddress): string {
  return formatHostPort(a.address, a.port);
}
