// The values of Istio's standard labels, in Istio's order (istio_stats.cc all_tags_; istio.io reference/config/metrics):
// which side of a request this proxy is on (reporter), the local workload (from [proxy] keys, else from the SPIFFE ID of
// identity_dir, else "unknown"), and what is known of the peer: inbound, the client's mesh mTLS identity (principal and
// namespace); outbound, the service (name, and the server identity when its mtls `identities` name exactly one).
// Nothing else is known of a peer without Istio's metadata exchange: those labels are "unknown", as Istio writes them
// when peer metadata is missing.
import { namespaceOf } from '../core/spiffe.js';

/** The 20 labels that describe who talks to whom, before the per-request ones. */
export const PEER_LABEL_NAMES = [
  'reporter',
  'source_workload', 'source_workload_namespace', 'source_principal', 'source_app', 'source_version',
  'source_canonical_service', 'source_canonical_revision', 'source_cluster',
  'destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version',
  'destination_service', 'destination_service_name', 'destination_service_namespace',
  'destination_canonical_service', 'destination_canonical_revision', 'destination_cluster',
] as const;

/** Istio's HTTP labels (25), in its order. */
export const HTTP_LABEL_NAMES = [
  ...PEER_LABEL_NAMES, 'request_protocol', 'response_flags', 'connection_security_policy', 'response_code', 'grpc_response_status',
] as const;

/** Istio's TCP labels (23): the HTTP ones without response_code and grpc_response_status. */
export const TCP_LABEL_NAMES = [...PEER_LABEL_NAMES, 'request_protocol', 'response_flags', 'connection_security_policy'] as const;

export const UNKNOWN = 'unknown';
/** destination_service(_name) of traffic to no [service] (Istio's name for its original-destination cluster). */
export const PASSTHROUGH_SERVICE = 'PassthroughCluster';

export interface LocalWorkload {
  readonly name: string;
  readonly namespace: string;
  /** The SPIFFE ID of identity_dir, else "unknown". */
  readonly principal: string;
  readonly app: string;
  readonly version: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly cluster: string;
}

export interface WorkloadSettings {
  readonly workloadName: string;
  readonly workloadNamespace: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
}

/**
 * The local workload's labels: each [proxy] key when set; else, from an Istio-shaped SPIFFE ID
 * (spiffe://TD/ns/NS/sa/SA), the namespace NS and the service account SA as the workload name; else "unknown".
 * canonical_service defaults to the workload name, canonical_revision to "latest" (Istio's injector defaults);
 * app/version are the canonical ones.
 */
export function localWorkload(s: WorkloadSettings, spiffeId: string | undefined): LocalWorkload {
  const m = spiffeId === undefined ? null : /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(spiffeId);
  const name = s.workloadName !== '' ? s.workloadName : (m?.[2] ?? UNKNOWN);
  const namespace = s.workloadNamespace !== '' ? s.workloadNamespace : (m?.[1] ?? UNKNOWN);
  const canonicalService = s.canonicalService !== '' ? s.canonicalService : name;
  const canonicalRevision = s.canonicalRevision !== '' ? s.canonicalRevision : 'latest';
  return {
    name, namespace, principal: spiffeId ?? UNKNOWN, app: canonicalService, version: canonicalRevision,
    canonicalService, canonicalRevision, cluster: UNKNOWN,
  };
}

/** What the outbound labels know of a [service NAME]. */
export interface ServiceLabels {
  /** destination_service: the service's first exact host name, else its name. */
  readonly host: string;
  /** Mesh mTLS to its endpoints. */
  readonly mtls: boolean;
  /** The server identity when `identities` names exactly one (no pattern), else "unknown". */
  readonly principal: string;
  readonly namespace: string;
}

export function serviceLabels(name: string, hostnames: readonly string[], mtlsIdentities: readonly string[] | undefined): ServiceLabels {
  const host = hostnames.find((h) => !h.includes('*')) ?? name;
  const only = mtlsIdentities?.length === 1 && !(mtlsIdentities[0] as string).includes('*') ? mtlsIdentities[0] as string : undefined;
  return { host, mtls: mtlsIdentities !== undefined, principal: only ?? UNKNOWN, namespace: (only === undefined ? undefined : namespaceOf(only)) ?? UNKNOWN };
}

/** The 20 peer label values of outbound traffic (reporter = source) to `service` (undefined: passthrough). */
export function outboundPeerValues(local: LocalWorkload, serviceName: string | undefined, svc: ServiceLabels | undefined): string[] {
  const dest = serviceName === undefined ? PASSTHROUGH_SERVICE : (svc?.host ?? serviceName);
  return [
    'source',
    local.name, local.namespace, svc?.mtls === true ? local.principal : UNKNOWN, local.app, local.version,
    local.canonicalService, local.canonicalRevision, local.cluster,
    UNKNOWN, svc?.namespace ?? UNKNOWN, svc?.principal ?? UNKNOWN, UNKNOWN, UNKNOWN,
    dest, serviceName ?? PASSTHROUGH_SERVICE, svc?.namespace ?? UNKNOWN,
    UNKNOWN, UNKNOWN, UNKNOWN,
  ];
}

/** The 20 peer label values of inbound traffic (reporter = destination) from a client with `peerIdentity`. */
export function inboundPeerValues(local: LocalWorkload, peerIdentity: string | undefined): string[] {
  const mtls = peerIdentity !== undefined;
  return [
    'destination',
    UNKNOWN, (mtls ? namespaceOf(peerIdentity) : undefined) ?? UNKNOWN, peerIdentity ?? UNKNOWN, UNKNOWN, UNKNOWN,
    UNKNOWN, UNKNOWN, UNKNOWN,
    local.name, local.namespace, mtls ? local.principal : UNKNOWN, local.app, local.version,
    local.canonicalService, local.canonicalService, local.namespace,
    local.canonicalService, local.canonicalRevision, local.cluster,
  ];
}

/** connection_security_policy: Istio writes "unknown" at the source, mutual_tls or none at the destination. */
export function securityPolicy(direction: 'outbound' | 'inbound', peerIdentity: string | undefined): string {
  if (direction === 'outbound') return UNKNOWN;
  return peerIdentity === undefined ? 'none' : 'mutual_tls';
}
