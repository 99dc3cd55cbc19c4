// The mesh group of the bench (issue 11): ids, ports and identities shared by its modes (bench/mesh-modes.ts), its
// scenarios (bench/scenarios.ts) and its report section (bench/mesh-report.ts). A leaf: imports nothing.

/** Scenarios of the mesh group; they load the mesh server pod. */
export const MESH_SCENARIOS = ['mesh-keepalive', 'mesh-conn-per-request', 'mesh-latency-1k'] as const;
/** Modes of the mesh group (direct is the shared one). */
export const MESH_MODES = ['direct', 'mesh-plain', 'mesh-mtls', 'haproxy-tls'] as const;

export const MESH_GROUP = {
  baseline: 'direct',
  /** Two remora sidecars, no TLS on the hop: what mTLS is compared with. */
  plain: 'mesh-plain',
  /** Two remora sidecars, mesh mTLS on the hop: the subject of the targets. */
  subject: 'mesh-mtls',
  /** Two HAProxy, TLS on the hop. */
  peer: 'haproxy-tls',
  /** The pooled-connection row the CPU target is judged on, and the fixed-rate latency row. */
  pooledScenario: 'mesh-keepalive',
  latencyScenario: 'mesh-latency-1k',
} as const;

/** Ports. Client pod: its other proxies use 15000-15010. Mesh server pod: only the mesh modes run there. */
export const MESH_PORTS = {
  plainClient: { outbound: 15041, inbound: 15046, admin: 15040 },
  plainServer: { outbound: 15042, inbound: 15047, admin: 15043 },
  mtlsClient: { outbound: 15051, inbound: 15056, admin: 15050 },
  mtlsServer: { outbound: 15052, inbound: 15057, admin: 15053 },
  haproxyClient: 15061,
  haproxyServer: 15062,
  /** HAProxy's stats pages (CSV), on 127.0.0.1 of each pod. */
  haproxyClientStats: 15063,
  haproxyServerStats: 15064,
} as const;

export const MESH_TRUST_DOMAIN = 'cluster.local';
export const MESH_CLIENT_ID = 'spiffe://cluster.local/ns/bench/sa/client';
export const MESH_SERVER_ID = 'spiffe://cluster.local/ns/bench/sa/server';

/** The mesh modes' process roles. */
export const ROLE_CLIENT = 'client';
export const ROLE_SERVER = 'server';
