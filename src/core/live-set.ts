// The set of things live right now (connections, forwards, deadlines) in a long-lived owner: add at the start, delete
// at the end, count, walk now and then. Many come and go every second, so it keeps them in a dense array (a member's
// entry knows its index; delete moves the last member into the hole) instead of a Set.
//
// Why not a Set: V8 grows or compacts a Set's (or Map's) hash table by copying its entries into a new table; the old
// table keeps its entries, plus a link to the new one for iterators still walking it. Once the Set's table is in the
// old generation, the new tables are allocated there too, and every obsolete table keeps each member it ever held
// (also those deleted since from the live table) until the next full collection. A scavenge treats those old-to-new
// references as roots, so nearly every connection that passed through the Set survived the scavenges of its second:
// with a Set of connections churned by 5,000 connections a second, about a third of what the proxy allocated
// survived each scavenge, scavenges took 7-10 ms instead of 1, and a full collection ran every second
// (docs/performance-notes.md, "Issue 15, eleventh part"). An array's backing store keeps no such copies, and a
// deleted member's slot is cleared.

/** A member's place in its LiveSet, returned by add() and given back to delete(). */
export interface LiveEntry<T> {
  readonly item: T;
}

class Entry<T> implements LiveEntry<T> {
  readonly item: T;
  /** Index in the owner's array; -1 once deleted. Only LiveSet writes it. */
  index: number;

  constructor(item: T, index: number) {
    this.item = item;
    this.index = index;
  }
}

export class LiveSet<T> {
  readonly #entries: Entry<T>[] = [];

  get size(): number { return this.#entries.length; }

  add(item: T): LiveEntry<T> {
    const e = new Entry(item, this.#entries.length);
    this.#entries.push(e);
    return e;
  }

  /** Remove a member; false when the entry is not (or no longer) in this set. */
  delete(entry: LiveEntry<T>): boolean {
    const e = entry as Entry<T>;
    const all = this.#entries;
    const i = e.index;
    if (i < 0 || all[i] !== e) return false;
    const last = all.pop() as Entry<T>;
    if (last !== e) {
      all[i] = last;
      last.index = i;
    }
    e.index = -1;
    return true;
  }

  /** Whether the entry is in this set now. */
  has(entry: LiveEntry<T>): boolean {
    const e = entry as Entry<T>;
    return e.index >= 0 && this.#entries[e.index] === e;
  }

  /** The members now, as a new array: the set may change while the caller walks it. */
  items(): T[] {
    const all = this.#entries;
    const out = new Array<T>(all.length);
    for (let i = 0; i < all.length; i++) out[i] = (all[i] as Entry<T>).item;
    return out;
  }

  /** The entries now, as a new array (for a walk that deletes some of them). */
  entries(): LiveEntry<T>[] {
    return this.#entries.slice();
  }
}
