// Which original destinations have recently been HTTP. A connection that needs protocol detection pre-dials its
// destination while the client's first bytes are awaited, so that a server that speaks first (MySQL, SMTP, ...) is
// heard at once. When the bytes turn out to be HTTP and the HTTP engine takes the connection, that pre-dialed
// upstream connection is wasted (the engine sends requests over its own pools): a connect, an accept and a close on
// the upstream for every downstream connection. This memory lets the pipeline delay the pre-dial to destinations
// whose last connections were handed to the HTTP engine (HTTP_DESTINATION_PREDIAL_DELAY_MS in
// proxied-connection.ts: the client speaks first, or the dial happens after all). Pure: a clock in, no sockets,
// no timers.
//
// A destination is forgotten (pre-dialed at once again) when a connection to it was not HTTP (a server-first
// greeting, opaque client bytes, a silent client), after `ttlMs`, or when more than `capacity` destinations are
// remembered (least recently used first). It also tells which HTTP the last connection was: a destination whose
// last connection was HTTP/1.x is sniffed on the accepted TCP handle (src/l4/handle-connection.ts), one that was h2c
// is not (an HTTP/2 connection needs a socket).
//
// A destination seen again within `refreshMs` with the same protocol is not re-inserted: under connection-per-request
// traffic every connection would otherwise delete and re-add its key, and a Map churned per connection keeps its
// dead keys through scavenges (docs/discoveries.md, 11). Its LRU order is then exact to `refreshMs`.

export interface HttpDestinationMemoryOptions {
  /** Destinations remembered at most (least recently used dropped first). */
  readonly capacity: number;
  /** How long one HTTP connection vouches for its destination. */
  readonly ttlMs: number;
  /** A destination recorded again within this long (same protocol) is left as it is (default 1 s). */
  readonly refreshMs?: number;
  readonly clock: { now(): number };
}

export const DEFAULT_HTTP_DESTINATION_CAPACITY = 4096;
export const DEFAULT_HTTP_DESTINATION_TTL_MS = 300_000;
export const DEFAULT_HTTP_DESTINATION_REFRESH_MS = 1_000;

/** Which HTTP a destination's last connection spoke. */
export type HttpKind = 'http1' | 'http2';

interface Seen {
  readonly at: number;
  readonly kind: HttpKind;
}

/** The key of an original destination ("10.0.0.1|80"). */
export function destinationKey(address: string, port: number): string {
  return `${address}|${port}`;
}

export class HttpDestinationMemory {
  readonly #o: HttpDestinationMemoryOptions;
  readonly #refreshMs: number;
  /** Key -> when and what it was last seen as; Map order is the LRU order (oldest first). */
  readonly #seen = new Map<string, Seen>();

  constructor(o: HttpDestinationMemoryOptions) {
    this.#o = o;
    this.#refreshMs = o.refreshMs ?? DEFAULT_HTTP_DESTINATION_REFRESH_MS;
  }

  /** True if the last connection to `key`, within ttlMs, was HTTP (then the pre-dial would be wasted). */
  isHttp(key: string): boolean {
    return this.lastHttp(key) !== undefined;
  }

  /** The HTTP of the last connection to `key` within ttlMs; undefined when it was not HTTP (or is not known). */
  lastHttp(key: string): HttpKind | undefined {
    const seen = this.#seen.get(key);
    if (seen === undefined) return undefined;
    if (this.#o.clock.now() - seen.at > this.#o.ttlMs) {
      this.#seen.delete(key);
      return undefined;
    }
    return seen.kind;
  }

  /** A connection to `key` was detected as HTTP (`kind`) and handed to the HTTP engine. */
  recordHttp(key: string, kind: HttpKind = 'http1'): void {
    const now = this.#o.clock.now();
    const seen = this.#seen.get(key);
    if (seen !== undefined && seen.kind === kind && now - seen.at < this.#refreshMs) return;
    this.#seen.delete(key);
    this.#seen.set(key, { at: now, kind });
    if (this.#seen.size > this.#o.capacity) {
      const oldest = this.#seen.keys().next();
      if (oldest.done !== true) this.#seen.delete(oldest.value);
    }
  }

  /** A connection to `key` was not HTTP (or its client stayed silent): pre-dial it again. Returns whether it was known. */
  forget(key: string): boolean {
    return this.#seen.delete(key);
  }

  get size(): number {
    return this.#seen.size;
  }
}
