// The HTTP layer's view of the config file: the [route NAME] specs and [traffic-policy SERVICE] policies, read from
// the same document as the service registry. Every section is validated at startup together with the rest of the
// file (proxy-config.ts loadServiceConfig); this reader adds the checks that need the registry itself and returns
// the parsed values. Throws REMORA_ERR_CONFIG_INVALID with every problem, each with file:line.
import { configError, type ConfigIssue } from '../config/config-issue.js';
import type { IniDocument } from '../config/ini-file.js';
import type { ServiceRegistry } from '../config/service-registry.js';
import { parseRoutes } from '../l7/route-config.js';
import type { RouteSpec } from '../l7/router.js';
import { parseTrafficPolicies, type TrafficPolicySpec } from '../l7/traffic-policy-config.js';

export interface HttpConfig {
  readonly routes: readonly RouteSpec[];
  readonly policies: ReadonlyMap<string, TrafficPolicySpec>;
}

function lineOf(source: string): number {
  return Number(/:(\d+)$/.exec(source)?.[1] ?? 0);
}

export const EMPTY_HTTP_CONFIG: HttpConfig = { routes: [], policies: new Map() };

/**
 * Checks that need both the registry and the routes (loadServiceConfig runs them with every other check of the file):
 * a backend with a subset (endpoints have no labels yet), and a service without addresses or hostnames that no route
 * names (nothing could ever reach it).
 */
export function httpRegistryIssues(doc: IniDocument, routes: readonly RouteSpec[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const r of routes) {
    if (!r.backends.some((b) => b.subset !== undefined)) continue;
    const section = doc.sections.find((s) => s.name === `route ${r.name}`);
    const entry = section?.entries.get('backends');
    issues.push({
      source: `${doc.file}:${entry?.line ?? section?.line ?? 0}`,
      key: `[route ${r.name}] backends`,
      ...(entry === undefined ? {} : { value: entry.value }),
      expected: 'backends that are services (subsets need endpoint labels, which [service NAME] endpoints do not have yet:'
        + ' describe each version as its own service, e.g. web-v1=90, web-v2=10)',
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

export function loadHttpConfig(doc: IniDocument | undefined, registry: ServiceRegistry): HttpConfig {
  if (doc === undefined) return EMPTY_HTTP_CONFIG;
  const knownServices = registry.services.map((s) => s.name);
  const issues: ConfigIssue[] = [];
  const routes = parseRoutes(doc, { knownServices });
  if (!routes.ok) issues.push(...routes.issues);
  const policies = parseTrafficPolicies(doc, { knownServices });
  if (!policies.ok) issues.push(...policies.issues);
  if (routes.ok) issues.push(...httpRegistryIssues(doc, routes.routes));
  if (issues.length > 0) throw configError(issues.sort((a, b) => lineOf(a.source) - lineOf(b.source)));
  return { routes: routes.ok ? routes.routes : [], policies: policies.ok ? policies.policies : new Map() };
}
