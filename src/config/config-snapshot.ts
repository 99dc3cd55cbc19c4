// ConfigSnapshot: everything the proxy is configured with, as one deep-frozen value of definitions only — the
// resolved [proxy] options, the service registry, routes, traffic policies and authorization policies, and the PEM
// contents of every file the config names (the workload identity's included) (read once, with the config). No runtime objects (no TLS contexts, endpoint sets, sockets or
// timers): src/proxy/runtime.ts builds those from a snapshot. A snapshot comes from the INI file (at start and on
// every reload) and later from a control-plane push or an admin change; each has a version (1, 2, ... per process,
// in the order they were accepted), a content hash and its source.
import { createHash } from 'node:crypto';
import type { AuthorizationSpec } from './authorization-spec.js';
import type { OptionValues } from './option-set.js';
import type { proxyOptionSpecs } from './proxy-options.js';
import type { RouteSpec } from './route-spec.js';
import type { RegistryOptions, ServiceSpec } from './service-spec.js';
import type { TrafficPolicySpec } from './traffic-policy-spec.js';

export type ProxySettings = Readonly<OptionValues<typeof proxyOptionSpecs>>;

/** Where a snapshot came from. */
export type SnapshotSource =
  | { readonly kind: 'file'; readonly path: string }
  /** No config file: defaults, environment and flags only. */
  | { readonly kind: 'defaults' }
  /** Derived from the snapshot in force by an admin API change (e.g. POST /routes/NAME/weights). */
  | { readonly kind: 'admin'; readonly change: string }
  /** Built by a caller in-process (tests, embedders). */
  | { readonly kind: 'inline'; readonly name: string };

/** The PEM contents of the files a snapshot names, by path as written in the config (secrets: never logged). */
export type PemFiles = Readonly<Record<string, string>>;

/** The definitions of a snapshot (what its hash covers). */
export interface SnapshotDefinitions {
  readonly proxy: ProxySettings;
  readonly registry: RegistryOptions;
  readonly services: readonly ServiceSpec[];
  readonly routes: readonly RouteSpec[];
  /** One per [traffic-policy SERVICE] section (services without one get the defaults). */
  readonly trafficPolicies: readonly TrafficPolicySpec[];
  /** [authorization NAME] sections, in file order (inbound policies). */
  readonly authorizations: readonly AuthorizationSpec[];
  readonly files: PemFiles;
}

export interface ConfigSnapshot extends SnapshotDefinitions {
  readonly version: number;
  /** sha256 (hex) of the canonical JSON of the definitions: equal definitions, equal hash. */
  readonly hash: string;
  readonly source: SnapshotSource;
  /** Wall-clock ms when it was accepted. */
  readonly loadedAt: number;
}

/** Freeze a value and everything reachable from it (plain objects and arrays). */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/** JSON with object keys sorted (and Infinity kept distinguishable), so equal definitions give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) return `#${String(v)}`;
    if (v instanceof Map) return Object.fromEntries([...v].sort(([a], [b]) => (String(a) < String(b) ? -1 : 1)));
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

export function hashDefinitions(d: SnapshotDefinitions): string {
  const { proxy, registry, services, routes, trafficPolicies, authorizations, files } = d;
  return createHash('sha256').update(canonicalJson({ proxy, registry, services, routes, trafficPolicies, authorizations, files })).digest('hex');
}

/** A frozen snapshot of `definitions`. */
export function makeSnapshot(definitions: SnapshotDefinitions, version: number, source: SnapshotSource, loadedAt = Date.now()): ConfigSnapshot {
  const { proxy, registry, services, routes, trafficPolicies, authorizations, files } = definitions;
  const d = { proxy, registry, services, routes, trafficPolicies, authorizations, files };
  return deepFreeze({ ...structuredClone(d), version, hash: hashDefinitions(d), source, loadedAt });
}
