// The authorization model: what an [authorization NAME] section defines (issue 11). Definitions only, plain readonly
// data (JSON-serialisable, no Map/RegExp/function) so that a config snapshot can deep-freeze and hash it:
// src/config/authorization-config.ts parses the sections, src/authz/authorizer.ts compiles them into the per-request
// decision. User-facing text: docs/authorization.md.
//
// Semantics in one paragraph (Istio AuthorizationPolicy, one section = one policy with one rule): every key written is
// a condition and all of them must hold; the values of one key are alternatives (any of them). Deny policies are
// tried first (a match denies), then allow policies (when at least one allow policy exists, a request or connection
// that matches none is denied). Audit policies never change the decision. A key left out is no condition.
import type { Cidr, PortRange } from '../core/addr.js';

export const AUTHORIZATION_ACTIONS = ['allow', 'deny', 'audit'] as const;
export type AuthorizationAction = (typeof AUTHORIZATION_ACTIONS)[number];

/** Istio's default action. */
export const DEFAULT_AUTHORIZATION_ACTION: AuthorizationAction = 'allow';

/**
 * A string condition as written: `exact`, `prefix*` (kind 'prefix', value without the "*"), `*suffix` (kind 'suffix',
 * value without the "*"), or `*` (kind 'any', value "": the attribute is present).
 */
export interface StringMatch {
  readonly kind: 'exact' | 'prefix' | 'suffix' | 'any';
  readonly value: string;
}

/** `name: pattern` in `headers`: the header (name lower-case) is present and its value matches the pattern. */
export interface HeaderMatch {
  readonly name: string;
  readonly value: StringMatch;
}

export interface AuthorizationSpec {
  /** The NAME of [authorization NAME]; named in decisions, logs and counters. */
  readonly name: string;
  /** "file:line" of the section header. */
  readonly source: string;
  readonly action: AuthorizationAction;
  /** The peer's SPIFFE ID (mTLS); canonical (scheme and trust domain lower-case). Never matches plaintext. */
  readonly fromIdentities?: readonly StringMatch[];
  /** The namespace of the peer's SPIFFE ID (spiffe://TD/ns/NS/sa/SA). Never matches plaintext. */
  readonly fromNamespaces?: readonly StringMatch[];
  /** The connection's source address (IPv4-mapped IPv6 sources count as IPv4). */
  readonly fromCidrs?: readonly Cidr[];
  /** The original destination port of the inbound connection (normalised ranges). */
  readonly toPorts?: readonly PortRange[];
  // HTTP-only keys (HTTP_ONLY_AUTHORIZATION_KEYS): see the TCP rule in docs/authorization.md.
  /** Upper-case method tokens, compared exactly. */
  readonly methods?: readonly string[];
  /** The request path without its query string. Exact and prefix values start with "/". */
  readonly paths?: readonly StringMatch[];
  /** The request's host (:authority or Host) without its port, lower-case; patterns are lower-case. */
  readonly hosts?: readonly StringMatch[];
  /** Alternatives: the policy's header condition holds when ANY entry matches (unlike Istio, which ANDs names). */
  readonly headers?: readonly HeaderMatch[];
}

/** The config keys whose conditions need an HTTP request; on an opaque TCP connection see docs/authorization.md. */
export const HTTP_ONLY_AUTHORIZATION_KEYS = ['methods', 'paths', 'hosts', 'headers'] as const;
export type HttpOnlyAuthorizationKey = (typeof HTTP_ONLY_AUTHORIZATION_KEYS)[number];

/** The HTTP-only keys a policy uses (config key names, in HTTP_ONLY_AUTHORIZATION_KEYS order). */
export function httpOnlyKeysOf(spec: AuthorizationSpec): HttpOnlyAuthorizationKey[] {
  return HTTP_ONLY_AUTHORIZATION_KEYS.filter((k) => spec[k] !== undefined);
}
