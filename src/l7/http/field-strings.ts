// The strings of received HTTP/1.x heads that repeat from one message to the next, made once instead of once per
// message (docs/performance-notes.md, "Issue 15, seventeenth part"): the request methods of RFC 9110 (and PATCH), the
// field names received (a table of NAME_SLOTS slots by a hash of the name's characters), and for each kept name the
// last value received under it. A parser asks with the head's text and the offsets of the piece; the answer is equal
// to text.slice(from, to) in every case, and is the kept string when the piece has the same characters (compared in
// place), so a steady stream of similar messages (one client, one server: the same Host, User-Agent, Server,
// Content-Type, the same Date for a second) allocates no string for them.
//
// Bounds: NAME_SLOTS names of at most MAX_KEPT_NAME characters, each with one value of at most MAX_KEPT_VALUE
// characters; every kept string is a copy of its own (a slice of the head would keep the whole head alive). Names that
// share a slot replace each other, and a value that changes on every message (a request id, a Content-Length) only
// costs the comparison with the last one: hostile or varied traffic gets the plain slices, never unbounded memory.

const METHODS: readonly string[] = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];

/** Slots of the table of names (a power of two): the names of a busy proxy's peers fit many times over. */
export const NAME_SLOTS = 512;
/** A name is kept when at most this long; a longer one is returned and not kept. */
export const MAX_KEPT_NAME = 64;
/** A kept value is at most this long; a longer one is returned and not kept. */
export const MAX_KEPT_VALUE = 256;

/** Bucket of a method: its length and first character (the methods are ASCII, shorter than 64). */
function bucketOf(length: number, first: number): number {
  return length * 128 + (first & 0x7f);
}

const METHOD_BUCKETS: (number[] | undefined)[] = [];
METHODS.forEach((m, i) => { (METHOD_BUCKETS[bucketOf(m.length, m.charCodeAt(0))] ??= []).push(i); });

/**
 * The names received, by a hash of their characters (case-sensitive: a name is kept as received), each with the last
 * value received under it. A slot holds the name seen last with its hash: a new name replaces an older one.
 */
const names: (string | undefined)[] = new Array<string | undefined>(NAME_SLOTS).fill(undefined);
const lastValues: (string | undefined)[] = new Array<string | undefined>(NAME_SLOTS).fill(undefined);

/** A string of its own equal to text.slice(from, to): a slice of 13 characters or more is a view keeping `text` alive. */
function ownCopy(text: string, from: number, to: number): string {
  return to - from < 13 ? text.slice(from, to) : Buffer.from(text.slice(from, to), 'latin1').toString('latin1');
}

/** text.slice(from, to) for a request method: the kept string for the methods of RFC 9110 and PATCH. */
export function methodString(text: string, from: number, to: number): string {
  const len = to - from;
  const bucket = len > 0 && len < 64 ? METHOD_BUCKETS[bucketOf(len, text.charCodeAt(from))] : undefined;
  if (bucket !== undefined) {
    for (let i = 0; i < bucket.length; i++) {
      const m = METHODS[bucket[i] as number] as string;
      if (text.startsWith(m, from)) return m;
    }
  }
  return text.slice(from, to);
}

/**
 * The slot of the name text[from, to) (an argument for keptName, keepName and fieldValue), or -1 for a name too long
 * to keep. The name may or may not be the one kept there: keptName() tells.
 */
export function fieldNameSlot(text: string, from: number, to: number): number {
  if (to - from > MAX_KEPT_NAME) return -1;
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0) & (NAME_SLOTS - 1);
}

/** The name kept in `slot` when it is text[from, to) (a name seen before, and checked then), else undefined. */
export function keptName(slot: number, text: string, from: number, to: number): string | undefined {
  if (slot < 0) return undefined;
  const kept = names[slot];
  return kept !== undefined && kept.length === to - from && text.startsWith(kept, from) ? kept : undefined;
}

/**
 * text.slice(from, to) for a field name that keptName() did not have, kept in `slot` from now on in place of the one
 * before (call it for a name already checked: only valid names are kept).
 */
export function keepName(slot: number, text: string, from: number, to: number): string {
  if (slot < 0) return text.slice(from, to);
  const own = ownCopy(text, from, to);
  names[slot] = own;
  lastValues[slot] = undefined;
  return own;
}

/** text.slice(from, to) for the value of a field whose name is in `slot` (kept there, or just now by keepName()). */
export function fieldValue(slot: number, text: string, from: number, to: number): string {
  if (slot < 0) return text.slice(from, to);
  const len = to - from;
  const last = lastValues[slot];
  if (last !== undefined && last.length === len && text.startsWith(last, from)) return last;
  if (len > MAX_KEPT_VALUE) return text.slice(from, to);
  const own = ownCopy(text, from, to);
  lastValues[slot] = own;
  return own;
}
