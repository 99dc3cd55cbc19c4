// The body of GET /certs: the workload identity in force (its SPIFFE ID, the certificate chain and the trust bundle,
// each certificate with serial, SHA-256, validity and seconds left), the inbound mTLS mode, the services that use
// mesh mTLS with the identities they accept, and the rotation counters. Never a key.
import type { MeshStats } from '../core/mesh-stats.js';
import type { CertificateSummary } from '../upstream/transport/mesh-identity.js';
import type { Runtime } from './runtime.js';

export interface CertsJson {
  readonly identity: {
    readonly spiffeId: string;
    readonly dir: string;
    readonly chain: readonly CertificateSummary[];
    readonly trustBundle: readonly CertificateSummary[];
  } | null;
  readonly mtls: {
    readonly mode: string;
    readonly portModes: readonly { readonly ports: string; readonly mode: string }[];
    /** Services reached over mesh mTLS, with the server identities each accepts. */
    readonly services: Readonly<Record<string, readonly string[]>>;
  };
  readonly rotations: Readonly<Record<string, number>>;
}

export function certsJson(rt: Runtime, now: number, stats: MeshStats): CertsJson {
  const p = rt.snapshot.proxy;
  const mesh = rt.mesh;
  const d = mesh?.identity.describe(now);
  const services: Record<string, readonly string[]> = {};
  for (const s of rt.snapshot.services) if (s.mtls !== undefined) services[s.name] = s.mtls.identities;
  return {
    identity: d === undefined ? null : { spiffeId: d.spiffeId, dir: p.identityDir, chain: d.chain, trustBundle: d.roots },
    mtls: {
      mode: mesh === undefined ? 'off (no identity_dir)' : p.mtlsMode,
      portModes: p.mtlsPortModes.map((m) => ({ ports: m.first === m.last ? String(m.first) : `${m.first}-${m.last}`, mode: m.mode })),
      services,
    },
    rotations: stats.identity.json(),
  };
}
