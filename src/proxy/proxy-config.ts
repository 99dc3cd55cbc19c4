// The proxy's view of the config file beyond [proxy]: the service registry ([registry], [service NAME]), the TLS
// files its services name (read now, at startup, while the proxy may still be root), and a validation of the L7
// sections ([route NAME], [traffic-policy SERVICE]) so that a mistake anywhere in the file stops the proxy before it
// starts. Every problem of every section is collected and reported at once, in file order, each with file:line.
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { configError, type ConfigIssue } from '../config/config-issue.js';
import type { IniDocument } from '../config/ini-file.js';
import { qualify } from '../config/ini-file.js';
import { OTHER_SECTION_KINDS, OTHER_SECTIONS, parseServiceRegistry } from '../config/service-registry.js';
import { DEFAULT_REGISTRY_OPTIONS, type ServiceRegistry, type ServiceSpec } from '../config/service-spec.js';
import { parseRoutes } from '../config/route-config.js';
import { httpRegistryIssues } from './http-config.js';
import { parseTrafficPolicies } from '../config/traffic-policy-config.js';
import { TlsOriginator, type TlsMaterial } from '../upstream/transport/tls-origination.js';

export interface ProxyServiceConfig {
  readonly registry: ServiceRegistry;
  /** TLS originators by service name (services with tls_origination = on). */
  readonly tls: ReadonlyMap<string, TlsOriginator>;
}

export const EMPTY_SERVICE_CONFIG: ProxyServiceConfig = {
  registry: { services: [], registry: DEFAULT_REGISTRY_OPTIONS },
  tls: new Map(),
};

export type ReadFile = (path: string) => Buffer;

function lineOf(issue: ConfigIssue): number {
  return Number(/:(\d+)$/.exec(issue.source)?.[1] ?? 0);
}

/** Issues in file order (by line; issues without a line, from the command line or environment, first; stable). */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return issues.map((issue, n) => ({ issue, n })).sort((a, b) => lineOf(a.issue) - lineOf(b.issue) || a.n - b.n).map((x) => x.issue);
}

/**
 * Parse and check everything the proxy needs from the document. Throws REMORA_ERR_CONFIG_INVALID listing every
 * problem (nothing is started then).
 */
export function loadServiceConfig(doc: IniDocument | undefined, readFile: ReadFile = readFileSync): ProxyServiceConfig {
  if (doc === undefined) return EMPTY_SERVICE_CONFIG;
  const files = new Map<string, Buffer | Error>();
  const read = (path: string): Buffer | Error => {
    let v = files.get(path);
    if (v === undefined) {
      try { v = readFile(path); } catch (err) { v = err instanceof Error ? err : new Error(String(err)); }
      files.set(path, v);
    }
    return v;
  };
  const issues: ConfigIssue[] = [];
  const reg = parseServiceRegistry(doc, {
    otherSections: OTHER_SECTIONS,
    otherSectionKinds: OTHER_SECTION_KINDS,
    checkFile: (path) => !(read(path) instanceof Error),
  });
  if (!reg.ok) {
    // Say why a file is unreadable (ENOENT, EACCES, EISDIR ...).
    for (const i of reg.issues) {
      const err = i.expected === 'a readable file' && i.value !== undefined ? files.get(i.value) : undefined;
      const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
      issues.push(typeof code === 'string' ? { ...i, expected: `a readable file (${code})` } : i);
    }
  }

  // The L7 sections must name services that exist (as sections, even if they have problems of their own).
  const knownServices = doc.sections.filter((s) => s.name.startsWith('service ')).map((s) => s.name.slice('service '.length));
  const routes = parseRoutes(doc, { knownServices });
  if (!routes.ok) issues.push(...routes.issues);
  const policies = parseTrafficPolicies(doc, { knownServices });
  if (!policies.ok) issues.push(...policies.issues);
  // Checks across the registry and the routes (subsets without labelled endpoints, services nothing can reach).
  if (routes.ok) issues.push(...httpRegistryIssues(doc, routes.routes));

  const tls = new Map<string, TlsOriginator>();
  if (reg.ok) {
    for (const spec of reg.services) {
      if (spec.tls === undefined) continue;
      const o = buildOriginator(doc, spec, read, issues);
      if (o !== undefined) tls.set(spec.name, o);
    }
  }
  if (issues.length > 0) throw configError(sortIssues(issues));
  if (!reg.ok) return EMPTY_SERVICE_CONFIG; // unreachable: issues were thrown
  return { registry: { services: reg.services, registry: reg.registry }, tls };
}

/** Build a service's TlsOriginator; a PEM Node cannot use is an issue at the key that names it. */
function buildOriginator(
  doc: IniDocument, spec: ServiceSpec, read: (path: string) => Buffer | Error, issues: ConfigIssue[],
): TlsOriginator | undefined {
  const t = spec.tls;
  if (t === undefined) return undefined;
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
  const material: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  let bad = false;
  for (const [, path, field] of [
    ['tls_ca_file', t.caFile, 'ca'], ['tls_cert_file', t.certFile, 'cert'], ['tls_key_file', t.keyFile, 'key'],
  ] as const) {
    if (path === undefined) continue;
    const content = read(path);
    if (content instanceof Error) {
      // parseServiceRegistry already reported it (checkFile); not reached in practice.
      bad = true;
      continue;
    }
    material[field] = content;
  }
  if (bad) return undefined;
  const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));
  if (material.ca !== undefined) {
    try {
      createSecureContext({ ca: material.ca });
      if (!/-----BEGIN CERTIFICATE-----/.test(material.ca.toString('latin1'))) throw new Error('no PEM certificate in the file');
    } catch (err) {
      at('tls_ca_file', t.caFile, `a PEM file of CA certificates (${message(err)})`);
      bad = true;
    }
  }
  if (material.cert !== undefined && material.key !== undefined) {
    try {
      createSecureContext({ cert: material.cert, key: material.key });
    } catch (err) {
      at('tls_cert_file', t.certFile, `a PEM certificate whose private key is tls_key_file (${message(err)})`);
      bad = true;
    }
  }
  if (bad) return undefined;
  try {
    return new TlsOriginator(t, material as TlsMaterial);
  } catch (err) {
    at('tls_origination', undefined, `usable TLS settings (${message(err)})`);
    return undefined;
  }
}
