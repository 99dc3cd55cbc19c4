// The one validator of the proxy's configuration, at start and on every reload: the config file (--config /
// REMORA_CONFIG), the environment and the command-line flags in, the definitions of a ConfigSnapshot
// (src/config/config-snapshot.ts) or every problem out. It reads each file once (the config, then each PEM file its
// services name) and parses each section once:
//
//   [proxy]                       resolveOptions (default < file < environment < flag), unknown keys;
//   [registry], [service NAME]    parseServiceRegistry (unknown sections too), TLS file names checked readable;
//   [route NAME]                  parseRoutes, naming [service NAME] sections;
//   [traffic-policy SERVICE]      parseTrafficPolicies, inheriting the service's balancer and passive health;
//   [authorization NAME]          parseAuthorizations (inbound policies; warnings for deny policies that widen);
//   identity_dir                  the workload identity files (src/config/identity-files.ts), read into `files`;
//   across sections               route backend subsets that no endpoint is labelled with, services nothing can
//                                 reach (no addresses, no hostnames, no route);
//   TLS material                  CA bundles, client certificates and their keys, and the whole TLS setting, checked
//                                 by building a secure context (then dropped: the runtime builds its own from the
//                                 PEM contents kept in the definitions).
//
// An unreadable config file throws REMORA_ERR_CONFIG_READ; every other problem is a ConfigIssue, all returned
// together in file order (issues without a line, from the command line or the environment, first), never thrown.
// When the registry has problems there are no ServiceSpecs; then, so that the other checks neither miss nor invent
// problems, the few keys they need of the [service NAME] sections (balancer, eject_*, endpoints, tls_*) are read
// again leniently from the sections (their own mistakes were reported by the registry).
import { readFileSync } from 'node:fs';
import { RemoraError } from '../core/errors.js';
import { nodeTls } from '../core/lazy-builtins.js';
import type { SnapshotDefinitions } from './config-snapshot.js';
import type { ConfigIssue } from './config-issue.js';
import { formatAuthorizationWarning, parseAuthorizations } from './authorization-config.js';
import { checkIdentityFiles, identityPaths } from './identity-files.js';
import type { MtlsMode, MtlsPortMode } from './mtls-settings.js';
import { findSection, parseIni, qualify, type IniDocument, type IniSection } from './ini-file.js';
import { resolveOptions, type RawFlag } from './option-set.js';
import { proxyOptionSpecs } from './proxy-options.js';
import { parseRoutes } from './route-config.js';
import type { RouteSpec } from './route-spec.js';
import { OTHER_SECTION_KINDS, OTHER_SECTIONS, parseServiceRegistry, SERVICE_KEYS, staticEndpoints } from './service-registry.js';
import { BALANCER_KINDS, DEFAULT_BALANCER, DEFAULT_REGISTRY_OPTIONS, type EndpointSpec, type ServiceSpec } from './service-spec.js';
import { SectionReader } from './section-reader.js';
import { readTlsOrigination, type TlsOriginationSpec } from './tls-settings.js';
import { defaultTrafficPolicy, parseTrafficPolicies, type PolicyService } from './traffic-policy-config.js';
import { DEFAULT_OUTLIER_CONFIG } from './traffic-policy-spec.js';
import * as v from './value-parsers.js';

/** The section of the config file whose keys are the proxy's options. */
export const PROXY_SECTION = 'proxy';

export interface SnapshotInput {
  /** The config file (--config / REMORA_CONFIG); undefined or '' = none. */
  readonly file: string | undefined;
  /** Parsed command-line flags. */
  readonly flags: ReadonlyMap<string, RawFlag>;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Problems found before (e.g. in argv), reported with the rest. */
  readonly preIssues?: readonly ConfigIssue[];
  /** Reads the config and the PEM files (default fs.readFileSync). */
  readonly readFile?: (path: string) => Buffer;
  /** Wall-clock ms, for certificate validity (default Date.now). */
  readonly now?: () => number;
}

export type SnapshotLoad =
  | {
    readonly ok: true; readonly definitions: SnapshotDefinitions; readonly document: IniDocument | undefined;
    /** Valid but probably not what was meant (a deny policy with HTTP-only keys and no to_ports): logged as warnings. */
    readonly warnings: readonly string[];
  }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

function lineOf(issue: ConfigIssue): number {
  return Number(/:(\d+)$/.exec(issue.source)?.[1] ?? 0);
}

/** Issues in file order (by line; issues without a line, from the command line or environment, first; stable). */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return issues.map((issue, n) => ({ issue, n })).sort((a, b) => lineOf(a.issue) - lineOf(b.issue) || a.n - b.n).map((x) => x.issue);
}

/**
 * Read and check everything the proxy is configured with. Throws only REMORA_ERR_CONFIG_READ (the config file
 * cannot be read); every other problem is returned, all of them at once.
 */
export function loadSnapshotDefinitions(input: SnapshotInput): SnapshotLoad {
  const readFile = input.readFile ?? readFileSync;
  const file = input.file === '' ? undefined : input.file;
  const issues: ConfigIssue[] = [...(input.preIssues ?? [])];
  let document: IniDocument | undefined;
  if (file !== undefined) {
    let text: string;
    try {
      text = readFile(file).toString('utf8');
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'EIO';
      throw new RemoraError('REMORA_ERR_CONFIG_READ', `cannot read configuration file ${file}: ${code}`, { cause: err });
    }
    const parsed = parseIni(text, file);
    document = parsed.doc;
    issues.push(...parsed.issues);
    for (const e of document.sections.find((s) => s.name === '')?.entries.values() ?? []) {
      issues.push({ source: `${file}:${e.line}`, key: e.key, expected: `the key inside a section such as [${PROXY_SECTION}]` });
    }
  }
  const proxy = resolveOptions(proxyOptionSpecs, {
    flags: input.flags,
    env: input.env,
    section: document === undefined ? undefined : findSection(document, PROXY_SECTION),
    file,
  });
  issues.push(...proxy.issues);
  const rest = document === undefined ? undefined : loadServices(document, readFile, issues);
  const identityDir = proxy.values.identityDir;
  const identity = identityDir === '' ? undefined : checkIdentityFiles(identityDir, readFile, (input.now ?? Date.now)());
  if (identity !== undefined && !identity.ok) issues.push(...identity.issues);
  issues.push(...mtlsIssues(document, file, proxy.values.identityDir, proxy.values.mtlsMode, proxy.values.mtlsPortModes));
  issues.push(...probeUidIssues(document, file, proxy.values.readinessProbeUid, proxy.values.uid, proxy.values.gid));
  issues.push(...tracingIssues(document, file, proxy.values.tracing, proxy.values.tracingCollector));
  if (issues.length > 0) return { ok: false, issues: sortIssues(issues) };
  const files = { ...rest?.files };
  if (identity?.ok === true) {
    const paths = identityPaths(identityDir);
    files[paths.certChain] = identity.pems.certChain;
    files[paths.key] = identity.pems.key;
    files[paths.roots] = identity.pems.roots;
  }
  return {
    ok: true,
    definitions: {
      proxy: proxy.values,
      registry: rest?.registry ?? DEFAULT_REGISTRY_OPTIONS,
      services: rest?.services ?? [],
      routes: rest?.routes ?? [],
      trafficPolicies: rest?.trafficPolicies ?? [],
      authorizations: rest?.authorizations ?? [],
      files,
    },
    document,
    warnings: rest?.warnings ?? [],
  };
}

type ServiceDefinitions = Omit<SnapshotDefinitions, 'proxy'> & { readonly warnings: readonly string[] };

/** Everything of the file beyond [proxy]; undefined when there are issues (pushed to `issues`). */
function loadServices(doc: IniDocument, readFile: (path: string) => Buffer, issues: ConfigIssue[]): ServiceDefinitions | undefined {
  const before = issues.length;
  const reads = new Map<string, string | Error>();
  const read = (path: string): string | Error => {
    let content = reads.get(path);
    if (content === undefined) {
      try {
        content = readFile(path).toString('utf8');
      } catch (err) {
        content = err instanceof Error ? err : new Error(String(err));
      }
      reads.set(path, content);
    }
    return content;
  };

  const reg = parseServiceRegistry(doc, {
    otherSections: OTHER_SECTIONS,
    otherSectionKinds: OTHER_SECTION_KINDS,
    checkFile: (path) => !(read(path) instanceof Error),
  });
  if (!reg.ok) {
    // Say why a file is unreadable (ENOENT, EACCES, EISDIR ...).
    for (const i of reg.issues) {
      const err = i.expected === 'a readable file' && i.value !== undefined ? reads.get(i.value) : undefined;
      const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
      issues.push(typeof code === 'string' ? { ...i, expected: `a readable file (${code})` } : i);
    }
  }
  const specs = reg.ok ? new Map(reg.services.map((s) => [s.name, s])) : undefined;

  // The L7 sections must name services that exist (as sections, even if they have problems of their own).
  const knownServices = doc.sections.filter((s) => s.name.startsWith('service ')).map((s) => s.name.slice('service '.length));
  const routes = parseRoutes(doc, { knownServices });
  if (!routes.ok) issues.push(...routes.issues);
  const policies = parseTrafficPolicies(doc, { knownServices, services: reg.ok ? reg.services : policyServicesOf(doc) });
  if (!policies.ok) issues.push(...policies.issues);
  const authorizations = parseAuthorizations(doc);
  if (!authorizations.ok) issues.push(...authorizations.issues);
  // Checks across the registry and the routes (subsets without labelled endpoints, services nothing can reach).
  if (routes.ok) issues.push(...registryRouteIssues(doc, routes.routes, specs));

  const files = new Map<string, string>();
  for (const t of reg.ok ? reg.services : tlsOfSections(doc)) {
    if (t.tls !== undefined) checkTls(doc, t, t.tls, read, files, issues);
  }
  if (issues.length > before || !reg.ok || !routes.ok || !policies.ok || !authorizations.ok) return undefined;
  return {
    registry: reg.registry,
    services: reg.services,
    routes: routes.routes,
    trafficPolicies: reg.services.map((s) => policies.policies.get(s.name) ?? defaultTrafficPolicy(s.name, s.passiveHealth)),
    authorizations: authorizations.policies,
    files: Object.fromEntries(files),
    warnings: authorizations.warnings.map(formatAuthorizationWarning),
  };
}

/**
 * What the traffic policies inherit from their services when the registry has problems (so no ServiceSpec): the
 * `balancer` and passive-health keys read leniently (a bad value counts as the default; the registry reported it),
 * so that a policy is not blamed for its service's mistakes.
 */
function policyServicesOf(doc: IniDocument): PolicyService[] {
  const out: PolicyService[] = [];
  for (const section of doc.sections) {
    if (!section.name.startsWith('service ')) continue;
    const r = new SectionReader(doc.file, section, SERVICE_KEYS, []);
    const o = DEFAULT_OUTLIER_CONFIG;
    const ejectBaseTimeMs = r.get('eject_base_time', v.duration(100, 86_400_000), o.baseEjectionMs);
    out.push({
      name: section.name.slice('service '.length),
      balancer: r.get('balancer', v.oneOf(BALANCER_KINDS), DEFAULT_BALANCER),
      passiveHealth: {
        ejectBaseTimeMs,
        ejectMaxTimeMs: r.get('eject_max_time', v.duration(100, 86_400_000), Math.max(o.maxEjectionMs, ejectBaseTimeMs)),
        maxEjectedPercent: r.get('max_ejected_percent', v.integer(0, 100), o.maxEjectedPercent),
      },
    });
  }
  return out;
}

/**
 * The TLS settings of every [service NAME] section, read leniently (their problems were reported by the registry),
 * when the registry has problems: the PEM files of the services whose TLS settings are fine are checked all the same,
 * so that a bad certificate is reported along with every other mistake of the file.
 */
function tlsOfSections(doc: IniDocument): { name: string; source: string; tls: TlsOriginationSpec | undefined }[] {
  const out: { name: string; source: string; tls: TlsOriginationSpec | undefined }[] = [];
  const seen = new Set<string>();
  for (const section of doc.sections) {
    if (!section.name.startsWith('service ') || seen.has(section.name)) continue;
    seen.add(section.name);
    const r = new SectionReader(doc.file, section, SERVICE_KEYS, []);
    // The defaults only choose the server name and check the protocol; neither matters to the PEM files.
    out.push({ name: section.name.slice('service '.length), source: r.where(), tls: readTlsOrigination(r, { hostname: undefined, dnsName: undefined, protocol: 'auto' }) });
  }
  return out;
}

/**
 * Checks that need both the registry and the routes: a backend subset that no endpoint of its service is labelled
 * with (or a service whose endpoints cannot carry labels: discovery = dns / original-dst), and a service without
 * addresses or hostnames that no route names (nothing could ever reach it). Uses the parsed services when the
 * registry is valid, else the [service NAME] sections themselves, so that these are reported even when other parts
 * of the registry have problems of their own.
 */
function registryRouteIssues(doc: IniDocument, routes: readonly RouteSpec[], specs: ReadonlyMap<string, ServiceSpec> | undefined): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const r of routes) {
    const problems: string[] = [];
    for (const b of r.backends) {
      if (b.subset !== undefined) problems.push(...subsetProblems(doc, specs, b.service, b.subset));
    }
    if (problems.length === 0) continue;
    const section = doc.sections.find((s) => s.name === `route ${r.name}`);
    const entry = section?.entries.get('backends');
    issues.push({
      source: `${doc.file}:${entry?.line ?? section?.line ?? 0}`,
      key: `[route ${r.name}] backends`,
      ...(entry === undefined ? {} : { value: entry.value }),
      expected: problems.join('; '),
    });
  }
  // A service without addresses and hostnames can only be reached as a route backend.
  const targets = new Set(routes.flatMap((r) => r.backends.map((b) => b.service)));
  for (const section of doc.sections) {
    if (!section.name.startsWith('service ')) continue;
    const name = section.name.slice('service '.length);
    if (section.entries.has('addresses') || section.entries.has('hostnames') || targets.has(name)) continue;
    issues.push({
      source: `${doc.file}:${section.line}`,
      key: `[service ${name}]`,
      expected: 'addresses (VIP:port) and/or hostnames (SNI/Host names) so that connections can match the service,'
        + ' or a [route NAME] whose backends name it',
    });
  }
  return issues;
}

/** Why `service subset=NAME` selects nothing (empty when it selects some endpoint, or the service has its own issues). */
function subsetProblems(doc: IniDocument, specs: ReadonlyMap<string, ServiceSpec> | undefined, service: string, subset: string): string[] {
  const section = doc.sections.find((s) => s.name === `service ${service}`);
  if (section === undefined) return []; // the route parser reports unknown services
  const spec = specs?.get(service);
  const discovery = spec?.endpoints.kind ?? section.entries.get('discovery')?.value.trim() ?? 'static';
  if (discovery !== 'static') {
    return [`"${service} subset=${subset}": subsets need static endpoints labelled subset=NAME`
      + ` ([service ${service}] uses discovery = ${discovery})`];
  }
  const endpoints = spec?.endpoints.kind === 'static' ? spec.endpoints.endpoints : sectionEndpoints(section);
  if (endpoints === undefined) return []; // the registry reports missing or bad endpoints
  if (endpoints.some((e) => e.subsets?.includes(subset) === true)) return [];
  const known = [...new Set(endpoints.flatMap((e) => e.subsets ?? []))].sort();
  return [`"${service} subset=${subset}": an endpoint of [service ${service}] labelled subset=${subset},`
    + ` e.g. endpoints = 10.0.0.1:8080 subset=${subset} (${known.length === 0 ? 'none is labelled' : `its subsets: ${known.join(', ')}`})`];
}

/** The static endpoints of a service section whose spec is unavailable (undefined when missing or invalid). */
function sectionEndpoints(section: IniSection): readonly EndpointSpec[] | undefined {
  const text = section.entries.get('endpoints')?.value;
  const parsed = text === undefined ? undefined : staticEndpoints(text);
  return parsed?.ok === true ? parsed.value : undefined;
}

/**
 * Check a service's TLS material (the PEM files it names, already checked readable by the registry) by building a
 * secure context as the runtime will; a PEM Node cannot use is an issue at the key that names it. The contents go
 * to `files`, by path as written.
 */
function checkTls(
  doc: IniDocument, spec: { readonly name: string; readonly source: string }, t: TlsOriginationSpec,
  read: (path: string) => string | Error, files: Map<string, string>, issues: ConfigIssue[],
): void {
  const section = doc.sections.find((s) => s.name === `service ${spec.name}`);
  const at = (key: string, value: string | undefined, expected: string): void => {
    const e = section?.entries.get(key);
    issues.push({
      source: e === undefined ? spec.source : `${doc.file}:${e.line}`,
      key: qualify(`service ${spec.name}`, key),
      ...(value === undefined ? {} : { value }),
      expected,
    });
  };
  const material: { ca?: string; cert?: string; key?: string } = {};
  let bad = false;
  for (const [path, field] of [[t.caFile, 'ca'], [t.certFile, 'cert'], [t.keyFile, 'key']] as const) {
    if (path === undefined) continue;
    const content = read(path);
    if (content instanceof Error) {
      bad = true; // parseServiceRegistry reported it (checkFile); not reached in practice
      continue;
    }
    material[field] = content;
    files.set(path, content);
  }
  if (bad) return;
  const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));
  if (material.ca !== undefined) {
    try {
      nodeTls().createSecureContext({ ca: material.ca });
      if (!/-----BEGIN CERTIFICATE-----/.test(material.ca)) throw new Error('no PEM certificate in the file');
    } catch (err) {
      at('tls_ca_file', t.caFile, `a PEM file of CA certificates (${message(err)})`);
      bad = true;
    }
  }
  if (material.cert !== undefined && material.key !== undefined) {
    try {
      nodeTls().createSecureContext({ cert: material.cert, key: material.key });
    } catch (err) {
      at('tls_cert_file', t.certFile, `a PEM certificate whose private key is tls_key_file (${message(err)})`);
      bad = true;
    }
  }
  if (bad) return;
  // The context the runtime builds (src/upstream/transport/tls-origination.ts), without a CA file from Node's store.
  try {
    nodeTls().createSecureContext({
      ...(material.ca === undefined ? {} : { ca: material.ca }),
      ...(material.cert === undefined ? {} : { cert: material.cert }),
      ...(material.key === undefined ? {} : { key: material.key }),
      minVersion: t.minVersion,
    });
  } catch (err) {
    at('tls_origination', undefined, `usable TLS settings (${message(err)})`);
  }
}

/**
 * The outbound probe helper must not run as the proxy's uid or gid: the rules exclude those, so its probe would never
 * take the app's path (src/proxy/probe-helper.ts).
 */
function probeUidIssues(doc: IniDocument | undefined, file: string | undefined, probeUid: number, uid: number, gid: number): ConfigIssue[] {
  if (probeUid !== uid && probeUid !== gid) return [];
  const e = doc === undefined ? undefined : findSection(doc, PROXY_SECTION)?.entries.get('readiness_probe_uid');
  return [{
    source: e === undefined || file === undefined ? 'configuration' : `${file}:${e.line}`,
    key: qualify(PROXY_SECTION, 'readiness_probe_uid'),
    value: String(probeUid),
    expected: `a uid other than the proxy's uid ${uid} and gid ${gid}: the rules exclude those, so the outbound probe would not take the app's path`,
  }];
}

/**
 * Mesh mTLS needs an identity: strict inbound (mtls_mode or a port of mtls_port_modes) and a service with mtls = true
 * are problems without identity_dir (the key's line when the file sets it).
 */
/** tracing = on needs a collector (at the tracing key's line, else the collector's, else "configuration"). */
function tracingIssues(doc: IniDocument | undefined, file: string | undefined, tracing: boolean, collector: string): ConfigIssue[] {
  if (!tracing || collector !== '') return [];
  const proxy = doc === undefined ? undefined : findSection(doc, PROXY_SECTION);
  const e = proxy?.entries.get('tracing') ?? proxy?.entries.get('tracing_collector');
  return [{
    source: e === undefined || file === undefined ? 'configuration' : `${file}:${e.line}`,
    key: qualify(PROXY_SECTION, 'tracing_collector'),
    value: '',
    expected: 'the OTLP/HTTP JSON endpoint spans go to (e.g. http://127.0.0.1:4318/v1/traces) when tracing = on',
  }];
}

function mtlsIssues(
  doc: IniDocument | undefined, file: string | undefined, identityDir: string, mode: MtlsMode, portModes: readonly MtlsPortMode[],
): ConfigIssue[] {
  if (identityDir !== '') return [];
  const issues: ConfigIssue[] = [];
  const proxy = doc === undefined ? undefined : findSection(doc, PROXY_SECTION);
  const where = (key: string): string => {
    const e = proxy?.entries.get(key);
    return e === undefined || file === undefined ? 'configuration' : `${file}:${e.line}`;
  };
  const fix = 'identity_dir set to the directory of cert-chain.pem, key.pem and root-cert.pem (remora ca issue writes them)';
  if (mode === 'strict') issues.push({ source: where('mtls_mode'), key: qualify(PROXY_SECTION, 'mtls_mode'), value: mode, expected: `${fix}: strict mTLS needs a workload identity` });
  if (portModes.some((p) => p.mode === 'strict')) {
    issues.push({ source: where('mtls_port_modes'), key: qualify(PROXY_SECTION, 'mtls_port_modes'), expected: `${fix}: strict mTLS needs a workload identity` });
  }
  for (const section of doc?.sections ?? []) {
    const e = section.name.startsWith('service ') ? section.entries.get('mtls') : undefined;
    if (e === undefined || !/^(true|yes|on|1)$/i.test(e.value.trim())) continue;
    issues.push({ source: `${doc?.file ?? 'config'}:${e.line}`, key: qualify(section.name, 'mtls'), value: e.value, expected: `[proxy] ${fix}: mesh mTLS needs a workload identity` });
  }
  return issues;
}
