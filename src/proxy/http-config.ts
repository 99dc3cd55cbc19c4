// The HTTP layer's view of the config file: the [route NAME] specs and [traffic-policy SERVICE] policies, read from
// the same document as the service registry. Every section is validated at startup together with the rest of the
// file (proxy-config.ts loadServiceConfig); this reader adds the checks that need the registry itself and returns
// the parsed values. Throws REMORA_ERR_CONFIG_INVALID with every problem, each with file:line.
import { configError, type ConfigIssue } from '../config/config-issue.js';
import type { IniDocument } from '../config/ini-file.js';
import { staticEndpoints } from '../config/service-registry.js';
import { type ServiceRegistry } from '../config/service-spec.js';
import { parseRoutes } from '../config/route-config.js';
import type { RouteSpec } from '../config/route-spec.js';
import { parseTrafficPolicies } from '../config/traffic-policy-config.js';
import { type TrafficPolicySpec } from '../config/traffic-policy-spec.js';

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
 * a backend subset that no endpoint of its service is labelled with (or a service whose endpoints cannot carry
 * labels: discovery = dns / original-dst), and a service without addresses or hostnames that no route names (nothing
 * could ever reach it). Reads the [service NAME] sections itself, so that these are reported even when other parts
 * of the registry have problems of their own.
 */
export function httpRegistryIssues(doc: IniDocument, routes: readonly RouteSpec[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const r of routes) {
    const problems: string[] = [];
    for (const b of r.backends) {
      if (b.subset !== undefined) problems.push(...subsetProblems(doc, b.service, b.subset));
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
function subsetProblems(doc: IniDocument, service: string, subset: string): string[] {
  const section = doc.sections.find((s) => s.name === `service ${service}`);
  if (section === undefined) return []; // the route parser reports unknown services
  const discovery = section.entries.get('discovery')?.value.trim() ?? 'static';
  if (discovery !== 'static') {
    return [`"${service} subset=${subset}": subsets need static endpoints labelled subset=NAME`
      + ` ([service ${service}] uses discovery = ${discovery})`];
  }
  const text = section.entries.get('endpoints')?.value;
  const parsed = text === undefined ? undefined : staticEndpoints(text);
  if (parsed === undefined || !parsed.ok) return []; // the registry reports missing or bad endpoints
  if (parsed.value.some((e) => e.subsets?.includes(subset) === true)) return [];
  const known = [...new Set(parsed.value.flatMap((e) => e.subsets ?? []))].sort();
  return [`"${service} subset=${subset}": an endpoint of [service ${service}] labelled subset=${subset},`
    + ` e.g. endpoints = 10.0.0.1:8080 subset=${subset} (${known.length === 0 ? 'none is labelled' : `its subsets: ${known.join(', ')}`})`];
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
