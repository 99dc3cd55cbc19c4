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
// remembered (least recently used first).

export interface HttpDestinationMemoryOptions {
  /** Destinations remembered at most (least recently used dropped first). */
  readonly capacity: number;
  /** How long one HTTP connection vouches for its destination. */
  readonly ttlMs: number;
  readonly clock: { now(): number };
}

export const DEFAULT_HTTP_DESTINATION_CAPACITY = 4096;
export const DEFAULT_HTTP_DESTINATION_TTL_MS = 300_000;

/** The key of an original destination ("10.0.0.1|80"). */
export function destinationKey(address: string, port: number): string {
  return `${address}|${port}`;
}

export class HttpDestinationMemory {
  readonly #o: HttpDestinationMemoryOptions;
  /** Key -> time last seen as HTTP; Map order is the LRU order (oldest first). */
  readonly #seen = new Map<string, number>();

  constructor(o: HttpDestinationMemoryOptions) {
    this.#o = o;
  }

  /** True if the last connection to `key`, within ttlMs, was HTTP (then the pre-dial would be wasted). */
  isHttp(key: string): boolean {
    const at = this.#seen.get(key);
    if (at === undefined) return false;
    if (this.#o.clock.now() - at > this.#o.ttlMs) {
      this.#seen.delete(key);
      return false;
    }
    return true;
  }

  /** A connection to `key` was detected as HTTP and handed to the HTTP engine. */
  recordHttp(key: string): void {
    this.#seen.delete(key);
    this.#seen.set(key, this.#o.clock.now());
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
