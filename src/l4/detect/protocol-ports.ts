// Port-level protocol declarations: a port declared opaque/http/http2/tls skips detection entirely. Server-first
// protocols (SMTP, MySQL, PostgreSQL, Redis, memcached, ...) are opaque by default, as in Linkerd, so that even a
// proxy that waited for client bytes would not delay them. Pure.

/** What a port is declared to carry. 'detect' (only meaningful in declarations) undoes a default-opaque entry. */
export type PortProtocol = 'opaque' | 'http' | 'http2' | 'tls';
export type PortDeclarationProtocol = PortProtocol | 'detect';

/**
 * Ports treated as opaque unless declared otherwise (linkerd2's cluster default): 25 SMTP, 587 SMTP submission,
 * 3306 MySQL, 4444 Galera SST, 5432 PostgreSQL, 6379 Redis, 9300 Elasticsearch transport, 11211 memcached.
 */
export const DEFAULT_OPAQUE_PORTS: readonly number[] = Object.freeze([25, 587, 3306, 4444, 5432, 6379, 9300, 11211]);

/** A single port (first === last) or an inclusive range, declared as one protocol. */
export interface PortDeclaration {
  readonly first: number;
  readonly last: number;
  readonly protocol: PortDeclarationProtocol;
}

/**
 * The protocol declared for `port`, or 'detect' when it must be sniffed.
 * Precedence: an explicit declaration (the LAST one in the list whose range contains the port, so later layers of
 * configuration override earlier ones) wins; a declaration of 'detect' removes the port from `defaults`; otherwise
 * ports in `defaults` are 'opaque'. Pass `defaults: []` to switch the default list off. Ports outside 1-65535 or not
 * integers are never declared: 'detect'.
 */
export function declaredProtocol(
  port: number,
  declarations: readonly PortDeclaration[] = [],
  defaults: readonly number[] = DEFAULT_OPAQUE_PORTS,
): PortDeclarationProtocol {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return 'detect';
  for (let i = declarations.length - 1; i >= 0; i--) {
    const d = declarations[i];
    if (d !== undefined && d.first <= port && port <= d.last) return d.protocol;
  }
  return defaults.includes(port) ? 'opaque' : 'detect';
}
