// SPIFFE IDs (spiffe/spiffe standards/SPIFFE-ID.md): `spiffe://` + trust domain + path.
//   trust domain: non-empty, lower-case letters, digits, ".", "-", "_"; no userinfo, port or percent-encoding;
//                 at most 255 bytes;
//   path:         "/"-separated segments of letters, digits, ".", "-", "_"; no empty, "." or ".." segment, no trailing
//                 "/"; a workload ID has a non-empty path (an ID without path names the trust domain itself);
//   whole ID:     at most 2048 bytes; scheme and trust domain are case-insensitive (compared lower-cased here), the
//                 path is case-sensitive.
// remora's workload IDs follow Istio's shape, spiffe://TD/ns/NAMESPACE/sa/SERVICE-ACCOUNT (namespaceOf reads it).
// Identity patterns (authorization policies, accepted server identities): exact, "prefix*", "*suffix", or "*".

export interface SpiffeId {
  /** The ID in canonical form (scheme and trust domain lower-case). */
  readonly id: string;
  readonly trustDomain: string;
  /** "" for a trust-domain ID, else starting with "/". */
  readonly path: string;
}

export type SpiffeParse = { readonly ok: true; readonly value: SpiffeId } | { readonly ok: false; readonly expected: string };

const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;
const MAX_ID_BYTES = 2048;
const MAX_TRUST_DOMAIN_BYTES = 255;

/** Parse a SPIFFE ID; `workload` (default true) requires a path. */
export function parseSpiffeId(text: string, workload = true): SpiffeParse {
  const bad = (why: string): SpiffeParse => ({ ok: false, expected: `a SPIFFE ID like spiffe://cluster.local/ns/default/sa/web (${why})` });
  if (Buffer.byteLength(text) > MAX_ID_BYTES) return bad(`at most ${MAX_ID_BYTES} bytes`);
  if (!/^spiffe:\/\//i.test(text)) return bad('it starts with spiffe://');
  const rest = text.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = (slash < 0 ? rest : rest.slice(0, slash)).toLowerCase();
  const path = slash < 0 ? '' : rest.slice(slash);
  if (trustDomain === '') return bad('a trust domain after spiffe://');
  if (Buffer.byteLength(trustDomain) > MAX_TRUST_DOMAIN_BYTES) return bad(`a trust domain of at most ${MAX_TRUST_DOMAIN_BYTES} bytes`);
  if (!TRUST_DOMAIN_RE.test(trustDomain)) return bad('the trust domain has only lower-case letters, digits, ".", "-" and "_"');
  if (path !== '') {
    if (path.endsWith('/')) return bad('no trailing "/"');
    for (const seg of path.slice(1).split('/')) {
      if (seg === '') return bad('no empty path segment');
      if (seg === '.' || seg === '..') return bad('no "." or ".." path segment');
      if (!SEGMENT_RE.test(seg)) return bad(`path segments of letters, digits, ".", "-" and "_" ("${seg}" is not)`);
    }
  } else if (workload) {
    return bad('a workload ID has a path, e.g. /ns/NAMESPACE/sa/ACCOUNT');
  }
  return { ok: true, value: { id: `spiffe://${trustDomain}${path}`, trustDomain, path } };
}

/** A trust domain as written in config ("cluster.local"). */
export function checkTrustDomain(text: string): string | undefined {
  if (text === '' || Buffer.byteLength(text) > MAX_TRUST_DOMAIN_BYTES || !TRUST_DOMAIN_RE.test(text)) {
    return 'a trust domain of lower-case letters, digits, ".", "-" and "_", like cluster.local';
  }
  return undefined;
}

/** The namespace of an Istio-shaped workload ID (spiffe://TD/ns/NAMESPACE/sa/ACCOUNT), else undefined. */
export function namespaceOf(id: string): string | undefined {
  const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/.exec(id);
  return m?.[1];
}

/** An identity pattern: exact, "prefix*", "*suffix" or "*" (any identity). */
export function matchesPattern(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  if (pattern.length > 1 && pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  if (pattern.length > 1 && pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  return pattern === value;
}

// Check an identity pattern as written in config: "*", or a SPIFFE ID, optionally with one "*" at its start or end
// ("spiffe://cluster.local/ns/prod/*", "*/sa/web").
export function checkIdentityPattern(text: string): string | undefined {
  if (text === '*') return undefined;
  const star = text.indexOf('*');
  if (star >= 0 && star !== 0 && star !== text.length - 1) return 'a SPIFFE ID, with "*" only at its start or end, or "*"';
  if (text.indexOf('*', star + 1) > 0) return 'at most one "*"';
  if (star < 0) {
    const p = parseSpiffeId(text);
    return p.ok ? undefined : p.expected;
  }
  if (star === text.length - 1 && !/^spiffe:\/\//.test(text)) return 'a prefix starting with spiffe:// ("spiffe://cluster.local/ns/prod/*")';
  return undefined;
}
