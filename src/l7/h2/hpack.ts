// HPACK (RFC 7541): the decoder of header blocks received (with its dynamic table, §2.3.2, §4) and the encoder of the
// header blocks we send.
//
// Strings are latin1 throughout: a field byte 0-255 is the char code of the same value (RFC 9113 §8.2.1 leaves field
// values as octets; node:http2 does the same), so a string's length is its size in octets.
//
// The encoder never inserts into the dynamic table (static-table indexes and literals without indexing only, and
// never-indexed literals for credentials, §7.1.3) and never Huffman-codes: it costs a few bytes per field and saves
// the CPU, the encoder state, and any dynamic table size update when the peer shrinks SETTINGS_HEADER_TABLE_SIZE.
//
// Hot path rules: no per-field allocation other than the strings decoded, no regexes, no TextDecoder.

import { HpackError, huffmanDecode } from './hpack-huffman.js';
import { STATIC_NAMES, STATIC_TABLE_LENGTH, STATIC_VALUES, staticLookup } from './hpack-static-table.js';

export { HpackError } from './hpack-huffman.js';

/** Buffer methods Node has on every Buffer but @types/node does not declare (the fast paths of toString/write). */
interface Latin1Buffer extends Buffer {
  latin1Slice(start: number, end: number): string;
  latin1Write(s: string, offset: number, length?: number): number;
}

/** Added to name and value lengths: the size of a table entry (§4.1), of a field in a list (RFC 9113 §6.5.2). */
const ENTRY_OVERHEAD = 32;
/** Largest integer accepted (§5.1 leaves the limit to the implementation). */
const MAX_INT = 0x7fffffff;
/** An integer up to MAX_INT needs at most 5 bytes after its prefix; more is an overlong encoding. */
const MAX_INT_CONTINUATION_BYTES = 5;
/** Default SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2). */
const DEFAULT_TABLE_SIZE = 4096;

export class HpackDecoder {
  /** Our SETTINGS_HEADER_TABLE_SIZE: the largest size a dynamic table size update may set (§4.2, §6.3). */
  readonly #maxTableSize: number;
  /** The current table size limit, as last set by a size update (initially the maximum). */
  #limit: number;
  /** Sum of the entry sizes (§4.1). */
  #size = 0;
  // The dynamic table: a ring of capacity #mask + 1 (a power of 2, grown on demand), newest entry at #newest,
  // dynamic index 1 is the newest (§2.3.3).
  #names: string[];
  #values: string[];
  #mask: number;
  #newest: number;
  #count = 0;
  /** Where the last #integer/#string call stopped reading (a field, to return two values without allocating). */
  #pos = 0;

  constructor(maxTableSize: number = DEFAULT_TABLE_SIZE) {
    this.#maxTableSize = maxTableSize;
    this.#limit = maxTableSize;
    this.#names = new Array<string>(16).fill('');
    this.#values = new Array<string>(16).fill('');
    this.#mask = 15;
    this.#newest = 15;
  }

  /** Current dynamic table size in octets (§4.1). */
  get tableSize(): number {
    return this.#size;
  }

  /**
   * Decode the complete header block buf[start, end), appending name, value, ... to `out` while the list size (sum of
   * name + value + 32 per field) stays within maxListSize, and decoding to the end regardless so that the dynamic
   * table follows the encoder's. Returns the list size. Throws HpackError on any malformed input.
   */
  decode(buf: Buffer, start: number, end: number, out: string[], maxListSize: number): number {
    const lbuf = buf as Latin1Buffer;
    let pos = start;
    let listSize = 0;
    let fieldSeen = false;
    while (pos < end) {
      const b = lbuf[pos]!;
      let name: string;
      let value: string;
      if (b >= 0x80) {
        // Indexed field (§6.1).
        const index = this.#integer(lbuf, pos, end, 0x7f);
        pos = this.#pos;
        if (index === 0) throw new HpackError('index 0');
        if (index <= STATIC_TABLE_LENGTH) {
          name = STATIC_NAMES[index]!;
          value = STATIC_VALUES[index]!;
        } else {
          const slot = this.#slot(index);
          name = this.#names[slot]!;
          value = this.#values[slot]!;
        }
      } else if (b >= 0x20 && b < 0x40) {
        // Dynamic table size update (§6.3), only before the first field of a block (§4.2).
        if (fieldSeen) throw new HpackError('dynamic table size update after a field');
        const size = this.#integer(lbuf, pos, end, 0x1f);
        pos = this.#pos;
        if (size > this.#maxTableSize) throw new HpackError(`dynamic table size update above ${this.#maxTableSize}`);
        this.#limit = size;
        this.#evictTo(size);
        continue;
      } else {
        // Literal field: with incremental indexing (01, §6.2.1), without indexing (0000, §6.2.2) or never indexed
        // (0001, §6.2.3); the name is an index (> 0) or a literal.
        const indexing = b >= 0x40;
        const nameIndex = this.#integer(lbuf, pos, end, indexing ? 0x3f : 0x0f);
        pos = this.#pos;
        if (nameIndex === 0) {
          name = this.#string(lbuf, pos, end);
          pos = this.#pos;
        } else if (nameIndex <= STATIC_TABLE_LENGTH) {
          name = STATIC_NAMES[nameIndex]!;
        } else {
          name = this.#names[this.#slot(nameIndex)]!;
        }
        value = this.#string(lbuf, pos, end);
        pos = this.#pos;
        if (indexing) this.#insert(name, value);
      }
      fieldSeen = true;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize <= maxListSize) out.push(name, value);
    }
    return listSize;
  }

  /** The ring slot of dynamic table index `index` (> 61), or throw if there is no such entry. */
  #slot(index: number): number {
    const d = index - STATIC_TABLE_LENGTH;
    if (d > this.#count) throw new HpackError(`index ${index} beyond the tables`);
    return (this.#newest - d + 1) & this.#mask;
  }

  /** Add an entry (§4.4): evict from the oldest until it fits; an entry larger than the limit empties the table. */
  #insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.#limit) {
      this.#evictTo(0);
      return;
    }
    this.#evictTo(this.#limit - size);
    if (this.#count > this.#mask) this.#grow();
    const slot = (this.#newest + 1) & this.#mask;
    this.#names[slot] = name;
    this.#values[slot] = value;
    this.#newest = slot;
    this.#count++;
    this.#size += size;
  }

  /** Evict oldest entries until the table size is at most `size`. */
  #evictTo(size: number): void {
    while (this.#size > size) {
      const slot = (this.#newest - this.#count + 1) & this.#mask;
      this.#size -= this.#names[slot]!.length + this.#values[slot]!.length + ENTRY_OVERHEAD;
      // Drop the references so that evicted strings can be collected.
      this.#names[slot] = '';
      this.#values[slot] = '';
      this.#count--;
    }
  }

  /** Double the ring (it is full), oldest entry moved to slot 0. */
  #grow(): void {
    const cap = this.#mask + 1;
    const names = new Array<string>(cap * 2).fill('');
    const values = new Array<string>(cap * 2).fill('');
    for (let i = 0; i < this.#count; i++) {
      const slot = (this.#newest - this.#count + 1 + i) & this.#mask;
      names[i] = this.#names[slot]!;
      values[i] = this.#values[slot]!;
    }
    this.#names = names;
    this.#values = values;
    this.#mask = cap * 2 - 1;
    this.#newest = this.#count - 1;
  }

  /** Decode the integer with a `mask`-bit prefix at buf[pos] (§5.1), pos < end; sets #pos after it. */
  #integer(buf: Buffer, pos: number, end: number, mask: number): number {
    let value = buf[pos++]! & mask;
    if (value === mask) {
      let factor = 1;
      for (let n = 0; ; n++) {
        if (pos >= end) throw new HpackError('truncated integer');
        if (n === MAX_INT_CONTINUATION_BYTES) throw new HpackError('integer encoding too long');
        const b = buf[pos++]!;
        value += (b & 0x7f) * factor;
        if (b < 0x80) break;
        factor *= 128;
      }
      if (value > MAX_INT) throw new HpackError('integer too large');
    }
    this.#pos = pos;
    return value;
  }

  /** Decode the string literal at buf[pos] (§5.2); sets #pos after it. */
  #string(buf: Latin1Buffer, pos: number, end: number): string {
    if (pos >= end) throw new HpackError('truncated field');
    const huffman = buf[pos]! >= 0x80;
    const length = this.#integer(buf, pos, end, 0x7f);
    pos = this.#pos;
    if (length > end - pos) throw new HpackError('string runs past the end of the block');
    this.#pos = pos + length;
    return huffman ? huffmanDecode(buf, pos, pos + length) : buf.latin1Slice(pos, pos + length);
  }
}

/** Static-table indexes of the credentials sent as never-indexed literals (§7.1.3). */
const AUTHORIZATION = 23;
const COOKIE = 32;
const PROXY_AUTHORIZATION = 49;
const SET_COOKIE = 55;

const NO_FIELDS: readonly string[] = [];

/**
 * Below this length a string is copied by a JS loop (~1.5 ns a char): cheaper than the ~80 ns native call of
 * latin1Write (Node 20).
 */
const SHORT_STRING = 64;

export class HpackEncoder {
  /** Per field of the block being encoded: staticLookup's result, so the write pass does not look up again. */
  #plan = new Int32Array(32);

  /**
   * Encode the flat list [name, value, ...] (lower-case names, pseudo-headers first) into one header block. Strings
   * must be latin1 (char codes 0-255; a higher code is written modulo 256): validating fields is the caller's job.
   */
  encode(fields: readonly string[]): Buffer {
    return this.#encode(NO_FIELDS, fields);
  }

  /** Encode `pseudo` then `fields`, as if they were one list. */
  encodeWith(pseudo: readonly string[], fields: readonly string[]): Buffer {
    return this.#encode(pseudo, fields);
  }

  #encode(pseudo: readonly string[], fields: readonly string[]): Buffer {
    const pairs = (pseudo.length >> 1) + (fields.length >> 1);
    if (this.#plan.length < pairs) this.#plan = new Int32Array(Math.max(pairs, this.#plan.length * 2));
    const plan = this.#plan;
    // Size pass.
    let size = 0;
    let k = 0;
    for (let list = pseudo; ; list = fields) {
      for (let i = 0; i + 1 < list.length; i += 2) {
        const name = list[i]!;
        const value = list[i + 1]!;
        const found = staticLookup(name, value);
        plan[k++] = found;
        if (found > 0) {
          size += integerLength(found, 0x7f);
        } else {
          size +=
            (found < 0 ? integerLength(-found, 0x0f) : 1 + integerLength(name.length, 0x7f) + name.length) +
            integerLength(value.length, 0x7f) +
            value.length;
        }
      }
      if (list === fields) break;
    }
    // Write pass.
    const buf = Buffer.allocUnsafe(size) as Latin1Buffer;
    let pos = 0;
    k = 0;
    for (let list = pseudo; ; list = fields) {
      for (let i = 0; i + 1 < list.length; i += 2) {
        const found = plan[k++]!;
        if (found > 0) {
          // Indexed field (§6.1).
          pos = writeInteger(buf, pos, found, 0x7f, 0x80);
          continue;
        }
        if (found < 0) {
          // Literal with indexed name (§6.2.2 / §6.2.3).
          const index = -found;
          const sensitive =
            index === AUTHORIZATION || index === COOKIE || index === PROXY_AUTHORIZATION || index === SET_COOKIE;
          pos = writeInteger(buf, pos, index, 0x0f, sensitive ? 0x10 : 0x00);
        } else {
          // Literal with literal name, without indexing (every sensitive name is in the static table).
          buf[pos++] = 0x00;
          pos = writeString(buf, pos, list[i]!);
        }
        pos = writeString(buf, pos, list[i + 1]!);
      }
      if (list === fields) break;
    }
    return buf;
  }
}

/** Octets taken by `value` encoded with a `mask`-bit prefix (§5.1). */
function integerLength(value: number, mask: number): number {
  if (value < mask) return 1;
  let n = 2;
  for (value -= mask; value >= 0x80; value = Math.floor(value / 128)) n++;
  return n;
}

/** Write `value` with a `mask`-bit prefix whose other bits are `flags` (§5.1). Returns the position after it. */
function writeInteger(buf: Buffer, pos: number, value: number, mask: number, flags: number): number {
  if (value < mask) {
    buf[pos++] = flags | value;
    return pos;
  }
  buf[pos++] = flags | mask;
  for (value -= mask; value >= 0x80; value = Math.floor(value / 128)) buf[pos++] = (value % 128) | 0x80;
  buf[pos++] = value;
  return pos;
}

/** Write a raw (H = 0) string literal (§5.2). Returns the position after it. */
function writeString(buf: Latin1Buffer, pos: number, s: string): number {
  const n = s.length;
  pos = writeInteger(buf, pos, n, 0x7f, 0x00);
  if (n < SHORT_STRING) {
    for (let i = 0; i < n; i++) buf[pos + i] = s.charCodeAt(i);
  } else {
    buf.latin1Write(s, pos, n);
  }
  return pos + n;
}
