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

export function loadHttpConfig(doc: IniDocument | undefined, registry: ServiceRegistry): HttpConfig {
  if (doc === undefined) return EMPTY_HTTP_CONFIG;
  const knownServices = registry.services.map((s) => s.name);
  const issues: ConfigIssue[] = [];
  const routes = parseRoutes(doc, { knownServices });
  if (!routes.ok) issues.push(...routes.issues);
  const policies = parseTrafficPolicies(doc, { knownServices });
  if (!policies.ok) issues.push(...policies.issues);
  if (routes.ok) {
    for (const r of routes.routes) {
      const subsets = r.backends.filter((b) => b.subset !== undefined);
      if (subsets.length === 0) continue;
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
  }
  if (routes.ok) {
    // A service without addresses and hostnames can only be reached as a route backend.
    const targets = new Set(routes.routes.flatMap((r) => r.backends.map((b) => b.service)));
    for (const s of registry.services) {
      if (s.addresses.length > 0 || s.hostnames.length > 0 || targets.has(s.name)) continue;
      issues.push({
        source: s.source,
        key: `[service ${s.name}]`,
        expected: 'addresses (VIP:port) and/or hostnames (SNI/Host names) so that connections can match the service,'
          + ' or a [route NAME] whose backends name it',
      });
    }
  }
  if (issues.length > 0) throw configError(issues.sort((a, b) => lineOf(a.source) - lineOf(b.source)));
  return { routes: routes.ok ? routes.routes : [], policies: policies.ok ? policies.policies : new Map() };
}
