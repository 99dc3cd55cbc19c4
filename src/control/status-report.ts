// The body of POST /api/v1/sync/status (a sidecar's status report, every 5 s on its sync connection next to the golden
// metrics; docs/control-plane.md#sidecar-status), checked field by field like metrics-report.ts:
//   {"name","identity","epoch","seq",
//    "ready":bool,"readyReason":text,
//    "certificate":{"identity","notAfter":ISO,"serial":hex}|null,"rootsNotAfter":[ISO...],
//    "endpoints":[{"service","address","labels":{k:v},"weight","healthy":bool,"ejected":bool,"ejections","activeConnections"}],
//    "endpointsTruncated"?:bool,
//    "policies":[{"name","action":"allow"|"deny"|"audit","allowed","denied","audited","wouldDeny"}],
//    "routes":[{"route","service","backends":[{"backend","weight","requests"}]}]}
// Counters (ejections, the policies' and the routes' counts) are cumulative for the sidecar process (`epoch`); the
// control plane takes deltas (status-aggregator.ts). Sizes are bounded: a report over a bound is refused as a whole.

/** Endpoints in one report at most (a sidecar with more reports the first ones, sorted, and endpointsTruncated). */
export const MAX_STATUS_ENDPOINTS = 10_000;
export const MAX_STATUS_POLICIES = 2_000;
export const MAX_STATUS_ROUTES = 2_000;
export const MAX_ROUTE_BACKENDS = 64;
export const MAX_ENDPOINT_LABELS = 16;
export const MAX_ROOTS = 64;

export type PolicyAction = 'allow' | 'deny' | 'audit';

export interface CertificateStatus {
  readonly identity: string;
  /** ISO-8601. */
  readonly notAfter: string;
  /** Hex, as node:crypto's X509Certificate.serialNumber. */
  readonly serial: string;
}

export interface EndpointStatus {
  readonly service: string;
  /** host:port ("10.0.0.5:8080", "[fd00::1]:80"). */
  readonly address: string;
  /** The endpoint's configured labels: zone, subset (several subsets joined with ","). */
  readonly labels: Readonly<Record<string, string>>;
  readonly weight: number;
  /** In rotation: not ejected and not failing active health checks. */
  readonly healthy: boolean;
  /** Ejected by outlier detection now. */
  readonly ejected: boolean;
  /** Ejections so far (cumulative). */
  readonly ejections: number;
  /** Connections and request attempts in flight to it now. */
  readonly activeConnections: number;
}

export interface PolicyStatus {
  readonly name: string;
  readonly action: PolicyAction;
  /** Decisions (connections and requests) this policy decided as allowed (cumulative). */
  readonly allowed: number;
  /** Decisions this policy decided as denied. */
  readonly denied: number;
  /** Connections and requests this audit policy matched, whatever the decision. */
  readonly audited: number;
  /** Of those, the ones that were allowed: what making the audit policy a deny policy would newly deny. */
  readonly wouldDeny: number;
}

/** A policy's counters, in the order the control plane keeps them (status-aggregator.ts). */
export const POLICY_COUNTS = ['allowed', 'denied', 'audited', 'wouldDeny'] as const;
export type PolicyCounts = Pick<PolicyStatus, (typeof POLICY_COUNTS)[number]>;

/** `a` with `b`'s counts added (the sum of two workers', of a window's slots). */
export function addPolicyCounts<P extends PolicyCounts>(a: P, b: PolicyCounts): P {
  return { ...a, allowed: a.allowed + b.allowed, denied: a.denied + b.denied, audited: a.audited + b.audited, wouldDeny: a.wouldDeny + b.wouldDeny };
}

/** The counts of `values` (in POLICY_COUNTS order; missing ones are 0). */
export function policyCounts(values: readonly number[]): PolicyCounts {
  const [allowed = 0, denied = 0, audited = 0, wouldDeny = 0] = values;
  return { allowed, denied, audited, wouldDeny };
}

export interface RouteBackendStatus {
  /** The backend's id ("web-v1", "web/v2"). */
  readonly backend: string;
  /** The weight in force at the sidecar. */
  readonly weight: number;
  /** Requests the route filter sent to it (cumulative). */
  readonly requests: number;
}

export interface RouteStatus {
  readonly route: string;
  readonly service: string;
  readonly backends: readonly RouteBackendStatus[];
}

/** What the proxy reports (src/proxy/sidecar-status.ts builds it); the sync client adds name, identity, epoch, seq. */
export interface SidecarStatus {
  readonly ready: boolean;
  /** The body of /ready. */
  readonly readyReason: string;
  readonly certificate: CertificateStatus | null;
  /** Each trust-bundle root's expiry, earliest first. */
  readonly rootsNotAfter: readonly string[];
  readonly endpoints: readonly EndpointStatus[];
  readonly endpointsTruncated?: boolean;
  readonly policies: readonly PolicyStatus[];
  readonly routes: readonly RouteStatus[];
}

export interface StatusReport extends SidecarStatus {
  readonly name: string;
  readonly identity: string;
  readonly epoch: string;
  readonly seq: number;
}

const count = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const text = (v: unknown, max: number): v is string => typeof v === 'string' && v !== '' && v.length <= max;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isIsoTime = (v: unknown): v is string => typeof v === 'string' && v.length <= 40 && /^\d{4}-\d\d-\d\dT/.test(v) && Number.isFinite(Date.parse(v));

type Parsed<T> = T | { readonly expected: string };
const failed = <T>(p: Parsed<T>): p is { readonly expected: string } => typeof p === 'object' && p !== null && 'expected' in p;

function parseEndpoint(raw: unknown, at: string): Parsed<EndpointStatus> {
  if (!isObject(raw)) return { expected: `${at}: an object` };
  const { service, address, labels, weight, healthy, ejected, ejections, activeConnections } = raw;
  if (!text(service, 253)) return { expected: `${at}.service: a service name` };
  if (!text(address, 300)) return { expected: `${at}.address: HOST:PORT` };
  if (!isObject(labels) || Object.keys(labels).length > MAX_ENDPOINT_LABELS) return { expected: `${at}.labels: an object of at most ${MAX_ENDPOINT_LABELS} labels` };
  for (const [k, v] of Object.entries(labels)) {
    if (k === '' || k.length > 63 || typeof v !== 'string' || v.length > 1024) return { expected: `${at}.labels.${k.slice(0, 63)}: a string value` };
  }
  if (!count(weight)) return { expected: `${at}.weight: an integer >= 0` };
  if (typeof healthy !== 'boolean') return { expected: `${at}.healthy: a boolean` };
  if (typeof ejected !== 'boolean') return { expected: `${at}.ejected: a boolean` };
  if (!count(ejections)) return { expected: `${at}.ejections: a count >= 0` };
  if (!count(activeConnections)) return { expected: `${at}.activeConnections: a count >= 0` };
  return { service, address, labels: labels as Record<string, string>, weight, healthy, ejected, ejections, activeConnections };
}

function parsePolicy(raw: unknown, at: string): Parsed<PolicyStatus> {
  if (!isObject(raw)) return { expected: `${at}: an object` };
  const { name, action } = raw;
  if (!text(name, 253)) return { expected: `${at}.name: a policy name` };
  if (action !== 'allow' && action !== 'deny' && action !== 'audit') return { expected: `${at}.action: "allow", "deny" or "audit"` };
  for (const f of POLICY_COUNTS) if (!count(raw[f])) return { expected: `${at}.${f}: a count >= 0` };
  return { name, action, allowed: raw.allowed as number, denied: raw.denied as number, audited: raw.audited as number, wouldDeny: raw.wouldDeny as number };
}

function parseRoute(raw: unknown, at: string): Parsed<RouteStatus> {
  if (!isObject(raw)) return { expected: `${at}: an object` };
  const { route, service, backends } = raw;
  if (!text(route, 253)) return { expected: `${at}.route: a route name` };
  if (!text(service, 253)) return { expected: `${at}.service: a service name` };
  if (!Array.isArray(backends) || backends.length > MAX_ROUTE_BACKENDS) return { expected: `${at}.backends: an array of at most ${MAX_ROUTE_BACKENDS}` };
  const out: RouteBackendStatus[] = [];
  for (const [j, b] of backends.entries()) {
    const bat = `${at}.backends[${j}]`;
    if (!isObject(b)) return { expected: `${bat}: an object` };
    if (!text(b.backend, 300)) return { expected: `${bat}.backend: a backend id` };
    if (!count(b.weight)) return { expected: `${bat}.weight: an integer >= 0` };
    if (!count(b.requests)) return { expected: `${bat}.requests: a count >= 0` };
    out.push({ backend: b.backend, weight: b.weight, requests: b.requests });
  }
  return { route, service, backends: out };
}

function parseList<T>(v: unknown, field: string, max: number, one: (raw: unknown, at: string) => Parsed<T>): Parsed<T[]> {
  if (!Array.isArray(v) || v.length > max) return { expected: `status: "${field}", an array of at most ${max}` };
  const out: T[] = [];
  for (const [i, raw] of v.entries()) {
    const p = one(raw, `status: ${field}[${i}]`);
    if (failed(p)) return p;
    out.push(p);
  }
  return out;
}

/** The report, or what was expected where (the API's 400 message). */
export function parseStatusReport(body: Record<string, unknown>): StatusReport | { readonly expected: string } {
  const { name, identity, epoch, seq, ready, readyReason, certificate, rootsNotAfter, endpointsTruncated } = body;
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(name)) return { expected: 'status: "name", the pod name' };
  if (identity !== undefined && (typeof identity !== 'string' || identity.length > 2048)) return { expected: 'status: "identity", a SPIFFE ID or ""' };
  if (typeof epoch !== 'string' || epoch === '' || epoch.length > 64) return { expected: 'status: "epoch", a non-empty string (one per sidecar process)' };
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return { expected: 'status: "seq", an integer >= 1' };
  if (typeof ready !== 'boolean') return { expected: 'status: "ready", a boolean (the /ready verdict)' };
  if (typeof readyReason !== 'string' || readyReason.length > 1024) return { expected: 'status: "readyReason", the body of /ready' };
  let cert: CertificateStatus | null = null;
  if (certificate !== null) {
    if (!isObject(certificate)) return { expected: 'status: "certificate", an object or null' };
    if (!text(certificate.identity, 2048)) return { expected: 'status: certificate.identity: a SPIFFE ID' };
    if (!isIsoTime(certificate.notAfter)) return { expected: 'status: certificate.notAfter: an ISO-8601 time' };
    if (typeof certificate.serial !== 'string' || !/^[0-9A-Fa-f]{1,128}$/.test(certificate.serial)) return { expected: 'status: certificate.serial: hex digits' };
    cert = { identity: certificate.identity, notAfter: new Date(certificate.notAfter).toISOString(), serial: certificate.serial };
  }
  if (!Array.isArray(rootsNotAfter) || rootsNotAfter.length > MAX_ROOTS || !rootsNotAfter.every(isIsoTime)) {
    return { expected: `status: "rootsNotAfter", at most ${MAX_ROOTS} ISO-8601 times` };
  }
  if (endpointsTruncated !== undefined && typeof endpointsTruncated !== 'boolean') return { expected: 'status: "endpointsTruncated", a boolean' };
  const endpoints = parseList(body.endpoints, 'endpoints', MAX_STATUS_ENDPOINTS, parseEndpoint);
  if (failed(endpoints)) return endpoints;
  const policies = parseList(body.policies, 'policies', MAX_STATUS_POLICIES, parsePolicy);
  if (failed(policies)) return policies;
  const routes = parseList(body.routes, 'routes', MAX_STATUS_ROUTES, parseRoute);
  if (failed(routes)) return routes;
  return {
    name, identity: typeof identity === 'string' ? identity : '', epoch, seq, ready, readyReason, certificate: cert,
    rootsNotAfter: rootsNotAfter.map((t) => new Date(t).toISOString()).sort(),
    endpoints, ...(endpointsTruncated === true ? { endpointsTruncated: true } : {}), policies, routes,
  };
}
