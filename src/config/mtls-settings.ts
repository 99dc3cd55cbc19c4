// Mesh mTLS settings. Inbound: [proxy] mtls_mode (permissive | strict | disable, Istio's PeerAuthentication modes)
// with per-port overrides in mtls_port_modes ("8080=strict, 9000-9100=disable"), by the original destination port.
// Outbound: [service NAME] mtls = true opens mesh mTLS to the service's endpoints, accepting the server identities
// listed in `identities` (SPIFFE ID patterns: exact, "prefix*", "*suffix", "*"; default: any identity the trust
// bundle vouches for). Pure parsing; the transport is src/upstream/transport/mesh-tls.ts.
import { checkIdentityPattern } from '../core/spiffe.js';
import type { SectionReader } from './section-reader.js';
import * as v from './value-parsers.js';

export const MTLS_MODES = ['permissive', 'strict', 'disable'] as const;
export type MtlsMode = (typeof MTLS_MODES)[number];

/** Ports first..last (inbound, original destination) use `mode` instead of mtls_mode. */
export interface MtlsPortMode {
  readonly first: number;
  readonly last: number;
  readonly mode: MtlsMode;
}

/** The outbound mTLS of a service. */
export interface ServiceMtlsSpec {
  /** SPIFFE ID patterns the server's certificate must match; ['*'] = any identity of the trust domain's bundle. */
  readonly identities: readonly string[];
}

export const SERVICE_MTLS_KEYS = ['mtls', 'identities'] as const;

const ok = <T>(value: T): v.Parsed<T> => ({ ok: true, value });
const bad = <T>(expected: string): v.Parsed<T> => ({ ok: false, expected });

function items(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

const portModes = v.portValues(MTLS_MODES, { name: 'MODE', kinds: 'modes', example: '8080=strict, 9000-9100=disable' });

/** "8080=strict, 9000-9100=disable" ("" = none). */
export const mtlsPortModes: v.ValueParser<readonly MtlsPortMode[]> = (text) => {
  const r = portModes(text);
  return r.ok ? ok(r.value.map((p) => ({ first: p.first, last: p.last, mode: p.value }))) : r;
};

/** The inbound mode of a port. */
export function mtlsModeFor(port: number, mode: MtlsMode, overrides: readonly MtlsPortMode[]): MtlsMode {
  for (const o of overrides) if (port >= o.first && port <= o.last) return o.mode;
  return mode;
}

/** "spiffe://cluster.local/ns/prod/sa/web, spiffe://cluster.local/ns/prod/*". */
export const identityPatterns: v.ValueParser<readonly string[]> = (text) => {
  const out: string[] = [];
  const list = items(text);
  if (list.length === 0) return bad('one or more SPIFFE ID patterns, e.g. "spiffe://cluster.local/ns/prod/sa/web"');
  for (const item of list) {
    const why = checkIdentityPattern(item);
    if (why !== undefined) return bad(`SPIFFE ID patterns separated by commas ("${item}": expected ${why})`);
    if (!out.includes(item)) out.push(item);
  }
  return ok(out);
};

/**
 * The `mtls` and `identities` keys of a [service NAME]. `conflicts` are keys of the section that cannot go with
 * mtls = true (TLS origination: the mesh hop is remora's own TLS).
 */
export function readServiceMtls(r: SectionReader, conflicts: readonly string[]): ServiceMtlsSpec | undefined {
  const on = r.get('mtls', v.boolean, false);
  const identities = r.optional('identities', identityPatterns);
  if (!on) {
    if (r.has('identities')) r.issue('identities', 'identities only with mtls = true (they are the server identities mesh mTLS accepts)', false);
    return undefined;
  }
  for (const k of conflicts) {
    if (r.has(k)) r.issue(k, `no ${k} with mtls = true (the mesh hop is remora's own mTLS; tls_* keys are for TLS to servers outside the mesh)`, false);
  }
  return { identities: identities ?? ['*'] };
}
