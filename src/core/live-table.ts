// Things live right now looked up by a key (the native forwarder's connections by the thread's id, mesh mTLS
// handshakes by the client's address): set at the start, get and delete at the end. Like LiveSet (live-set.ts, which
// says why a Set or Map churned per connection keeps closed connections through scavenges), it holds no Map: a
// dictionary object, whose hash table reuses a deleted key's slot and is copied only when the number of members grows
// or falls a lot, not every few dozen additions as a Map's is.

export class LiveTable<V> {
  readonly #byKey: Record<string, V | undefined> = Object.create(null) as Record<string, V | undefined>;
  #size = 0;

  get size(): number { return this.#size; }

  get(key: string | number): V | undefined {
    return this.#byKey[key];
  }

  /** Set (or replace) the member under `key`. */
  set(key: string | number, value: V): void {
    if (this.#byKey[key] === undefined) this.#size++;
    this.#byKey[key] = value;
  }

  /** Remove the member under `key`; false when there is none. */
  delete(key: string | number): boolean {
    if (this.#byKey[key] === undefined) return false;
    delete this.#byKey[key];
    this.#size--;
    return true;
  }

  /** The keys now (as strings), as a new array. */
  keys(): string[] {
    return Object.keys(this.#byKey);
  }
}
