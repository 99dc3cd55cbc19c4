// The Huffman decoder of HPACK string literals (RFC 7541 §5.2, code table in Appendix B), and HpackError, the error
// every HPACK decoding failure throws (it lives here, the lowest module of the codec, so that hpack.ts can re-export it
// without an import cycle).
//
// The code is canonical (Appendix B: codes of one length are consecutive, in symbol order, after the codes of every
// shorter length), so the table below holds only the 257 code lengths and the codes are derived from them. At module
// load the code tree becomes a state machine, as in nghttp2: the states are the 256 internal nodes of the tree
// (0 = root). It is first built for 4 bits at a time (a code is at least 5 bits long, so a nibble completes at most
// one symbol), then composed into a byte-at-a-time table (64 Ki entries, 256 KiB, ~7 ms at load; one table load per
// input byte instead of two: about a fifth off the decoding of a typical request block). For every state and input
// byte an entry gives the next state, the 0, 1 or 2 symbols completed on the way, and two flags:
//   ACCEPT: the bits read since the last completed symbol are all 1s and at most 7 of them, i.e. a valid end of the
//           string (§5.2: padding is the most significant bits of EOS, strictly shorter than 8 bits);
//   FAIL:   the byte completed EOS, which a string must not contain (§5.2).

/** Malformed HPACK input; the session answers it with a connection error COMPRESSION_ERROR (RFC 9113 §4.3). */
export class HpackError extends Error {
  override readonly name = 'HpackError';
}

/** Code length in bits of symbols 0-255 and EOS (256), RFC 7541 Appendix B. */
const CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //   0-15
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //  16-31
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //          32-47  ' ' to '/'
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //               48-63  '0' to '?'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //                 64-79  '@' to 'O'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //              80-95  'P' to '_'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //                 96-111 '`' to 'o'
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //            112-127 'p' to DEL
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128-143
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144-159
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160-175
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176-191
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192-207
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208-223
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224-239
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240-255
  30, //                                                                 EOS
];

const EOS = 256;

// Entries of the byte table: next state in bits 0-7, first symbol in bits 8-15, second in 16-23, then:
const ONE_SYMBOL = 1 << 24;
const TWO_SYMBOLS = 2 << 24;
const SYMBOL_COUNT = 3 << 24;
const ACCEPT = 1 << 26;
const FAIL = 1 << 27;

/**
 * [state << 8 | byte] -> entry: 256 KiB, built at the first Huffman-coded string (about 7 ms), so that a proxy that
 * never sees HTTP/2 does not carry it.
 */
let decodeTable: Uint32Array | undefined;

/**
 * The code tree: internal node n has children tree[2n] (bit 0) and tree[2n + 1] (bit 1); a child >= 0 is an internal
 * node, a child < 0 is the leaf of symbol -child - 1.
 */
function buildTree(): Int16Array {
  // Canonical code assignment: ordered by (length, symbol), each code is the previous one plus 1, shifted left by the
  // growth in length (codes are at most 30 bits: int32 arithmetic is exact).
  const order = CODE_LENGTHS.map((_, sym) => sym).sort((a, b) => CODE_LENGTHS[a]! - CODE_LENGTHS[b]! || a - b);
  const codes = new Int32Array(order.length);
  let code = 0;
  let prevLen = CODE_LENGTHS[order[0]!]!;
  for (const sym of order) {
    const len = CODE_LENGTHS[sym]!;
    code <<= len - prevLen;
    codes[sym] = code;
    code++;
    prevLen = len;
  }
  if (code !== 2 ** prevLen) throw new Error('HPACK Huffman code lengths do not form a complete code');

  const UNSET = 0x7fff;
  const tree = new Int16Array(512).fill(UNSET);
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const len = CODE_LENGTHS[sym]!;
    const c = codes[sym]!;
    let node = 0;
    for (let bit = len - 1; bit > 0; bit--) {
      const slot = 2 * node + ((c >>> bit) & 1);
      if (tree[slot] === UNSET) tree[slot] = nodes++;
      node = tree[slot]!;
    }
    tree[2 * node + (c & 1)] = -sym - 1;
  }
  if (nodes !== 256) throw new Error('HPACK Huffman tree is not the expected shape');
  return tree;
}

function buildByteTable(tree: Int16Array): Uint32Array {
  // Accepting states: the root (the string ended on a symbol boundary) and the all-1s path up to depth 7.
  const accepting = new Uint8Array(256);
  accepting[0] = 1;
  for (let node = 0, depth = 1; depth <= 7; depth++) {
    node = tree[2 * node + 1]!;
    accepting[node] = 1;
  }

  // The nibble machine: [state << 4 | nibble] -> next state, and symbol + 1 (0 for none, -1 for EOS).
  const nibbleNext = new Uint8Array(256 * 16);
  const nibbleSymbol = new Int16Array(256 * 16);
  for (let i = 0; i < 256 * 16; i++) {
    let node = i >> 4;
    let symbol = 0;
    for (let bit = 3; bit >= 0; bit--) {
      const next = tree[2 * node + ((i >> bit) & 1)]!;
      if (next >= 0) {
        node = next;
      } else if (next === -EOS - 1) {
        symbol = -1;
        break;
      } else {
        symbol = -next;
        node = 0;
      }
    }
    nibbleNext[i] = node;
    nibbleSymbol[i] = symbol;
  }

  // Two nibbles make a byte.
  const table = new Uint32Array(256 * 256);
  for (let i = 0; i < 256 * 256; i++) {
    const high = i >> 4;
    const low = (nibbleNext[high]! << 4) | (i & 0xf);
    const s1 = nibbleSymbol[high]!;
    const s2 = nibbleSymbol[low]!;
    if (s1 < 0 || s2 < 0) {
      table[i] = FAIL;
      continue;
    }
    const next = nibbleNext[low]!;
    let entry = next | (accepting[next] === 1 ? ACCEPT : 0);
    if (s1 > 0 && s2 > 0) entry |= TWO_SYMBOLS | ((s1 - 1) << 8) | ((s2 - 1) << 16);
    else if (s1 > 0 || s2 > 0) entry |= ONE_SYMBOL | ((s1 + s2 - 1) << 8);
    table[i] = entry;
  }
  return table;
}

/** Buffer methods Node has on every Buffer but @types/node does not declare (the fast paths of toString/write). */
interface Latin1Buffer extends Buffer {
  latin1Slice(start: number, end: number): string;
}

// Decoded bytes go here before becoming one string; grown (never shrunk) when a longer string comes.
let scratch: Latin1Buffer = Buffer.allocUnsafeSlow(256) as Latin1Buffer;

/**
 * Decode the Huffman-coded string buf[start, end) (RFC 7541 §5.2) to a latin1 string. Throws HpackError when it
 * contains EOS, or ends in padding that is longer than 7 bits or not all 1s.
 */
export function huffmanDecode(buf: Buffer, start: number, end: number): string {
  // Every code is at least 5 bits long: that bounds the decoded length.
  const max = Math.floor(((end - start) * 8) / 5);
  if (scratch.length < max) scratch = Buffer.allocUnsafeSlow(Math.max(max, scratch.length * 2)) as Latin1Buffer;
  const out = scratch;
  const table = (decodeTable ??= buildByteTable(buildTree()));
  let o = 0;
  let entry = ACCEPT;
  for (let i = start; i < end; i++) {
    entry = table[((entry & 0xff) << 8) | buf[i]!]!;
    // One compare for the common case of a byte in the middle of a code (no symbol, no flag).
    if (entry >= ONE_SYMBOL) {
      if (entry >= FAIL) throw new HpackError('EOS in a Huffman-coded string');
      const count = entry & SYMBOL_COUNT;
      if (count !== 0) {
        out[o++] = (entry >> 8) & 0xff;
        if (count === TWO_SYMBOLS) out[o++] = (entry >> 16) & 0xff;
      }
    }
  }
  if ((entry & ACCEPT) === 0) throw new HpackError('invalid padding of a Huffman-coded string');
  return out.latin1Slice(0, o);
}
