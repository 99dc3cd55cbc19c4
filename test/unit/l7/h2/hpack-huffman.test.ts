// RFC 7541 §5.2 / Appendix B: the Huffman decoder. The encoder here is test-only, built from the code table of
// Appendix B as printed (code as hex aligned to LSB, and length), transcribed independently of the code lengths in
// src/l7/h2/hpack-huffman.ts: a round trip of every byte checks the decoder's tree against the RFC.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HpackError, huffmanDecode } from '../../../../src/l7/h2/hpack-huffman.js';
import { seededRandom } from '../../helpers/seeded-random.js';

const CODES: readonly (readonly [number, number])[] = [
  [0x1ff8, 13], [0x7fffd8, 23], [0xfffffe2, 28], [0xfffffe3, 28],
  [0xfffffe4, 28], [0xfffffe5, 28], [0xfffffe6, 28], [0xfffffe7, 28],
  [0xfffffe8, 28], [0xffffea, 24], [0x3ffffffc, 30], [0xfffffe9, 28],
  [0xfffffea, 28], [0x3ffffffd, 30], [0xfffffeb, 28], [0xfffffec, 28],
  [0xfffffed, 28], [0xfffffee, 28], [0xfffffef, 28], [0xffffff0, 28],
  [0xffffff1, 28], [0xffffff2, 28], [0x3ffffffe, 30], [0xffffff3, 28],
  [0xffffff4, 28], [0xffffff5, 28], [0xffffff6, 28], [0xffffff7, 28],
  [0xffffff8, 28], [0xffffff9, 28], [0xffffffa, 28], [0xffffffb, 28],
  [0x14, 6], [0x3f8, 10], [0x3f9, 10], [0xffa, 12], [0x1ff9, 13], [0x15, 6], [0xf8, 8], [0x7fa, 11],
  [0x3fa, 10], [0x3fb, 10], [0xf9, 8], [0x7fb, 11], [0xfa, 8], [0x16, 6], [0x17, 6], [0x18, 6],
  [0x0, 5], [0x1, 5], [0x2, 5], [0x19, 6], [0x1a, 6], [0x1b, 6], [0x1c, 6], [0x1d, 6],
  [0x1e, 6], [0x1f, 6], [0x5c, 7], [0xfb, 8], [0x7ffc, 15], [0x20, 6], [0xffb, 12], [0x3fc, 10],
  [0x1ffa, 13], [0x21, 6], [0x5d, 7], [0x5e, 7], [0x5f, 7], [0x60, 7], [0x61, 7], [0x62, 7],
  [0x63, 7], [0x64, 7], [0x65, 7], [0x66, 7], [0x67, 7], [0x68, 7], [0x69, 7], [0x6a, 7],
  [0x6b, 7], [0x6c, 7], [0x6d, 7], [0x6e, 7], [0x6f, 7], [0x70, 7], [0x71, 7], [0x72, 7],
  [0xfc, 8], [0x73, 7], [0xfd, 8], [0x1ffb, 13], [0x7fff0, 19], [0x1ffc, 13], [0x3ffc, 14], [0x22, 6],
  [0x7ffd, 15], [0x3, 5], [0x23, 6], [0x4, 5], [0x24, 6], [0x5, 5], [0x25, 6], [0x26, 6],
  [0x27, 6], [0x6, 5], [0x74, 7], [0x75, 7], [0x28, 6], [0x29, 6], [0x2a, 6], [0x7, 5],
  [0x2b, 6], [0x76, 7], [0x2c, 6], [0x8, 5], [0x9, 5], [0x2d, 6], [0x77, 7], [0x78, 7],
  [0x79, 7], [0x7a, 7], [0x7b, 7], [0x7ffe, 15], [0x7fc, 11], [0x3ffd, 14], [0x1ffd, 13], [0xffffffc, 28],
  [0xfffe6, 20], [0x3fffd2, 22], [0xfffe7, 20], [0xfffe8, 20],
  [0x3fffd3, 22], [0x3fffd4, 22], [0x3fffd5, 22], [0x7fffd9, 23],
  [0x3fffd6, 22], [0x7fffda, 23], [0x7fffdb, 23], [0x7fffdc, 23],
  [0x7fffdd, 23], [0x7fffde, 23], [0xffffeb, 24], [0x7fffdf, 23],
  [0xffffec, 24], [0xffffed, 24], [0x3fffd7, 22], [0x7fffe0, 23],
  [0xffffee, 24], [0x7fffe1, 23], [0x7fffe2, 23], [0x7fffe3, 23],
  [0x7fffe4, 23], [0x1fffdc, 21], [0x3fffd8, 22], [0x7fffe5, 23],
  [0x3fffd9, 22], [0x7fffe6, 23], [0x7fffe7, 23], [0xffffef, 24],
  [0x3fffda, 22], [0x1fffdd, 21], [0xfffe9, 20], [0x3fffdb, 22],
  [0x3fffdc, 22], [0x7fffe8, 23], [0x7fffe9, 23], [0x1fffde, 21],
  [0x7fffea, 23], [0x3fffdd, 22], [0x3fffde, 22], [0xfffff0, 24],
  [0x1fffdf, 21], [0x3fffdf, 22], [0x7fffeb, 23], [0x7fffec, 23],
  [0x1fffe0, 21], [0x1fffe1, 21], [0x3fffe0, 22], [0x1fffe2, 21],
  [0x7fffed, 23], [0x3fffe1, 22], [0x7fffee, 23], [0x7fffef, 23],
  [0xfffea, 20], [0x3fffe2, 22], [0x3fffe3, 22], [0x3fffe4, 22],
  [0x7ffff0, 23], [0x3fffe5, 22], [0x3fffe6, 22], [0x7ffff1, 23],
  [0x3ffffe0, 26], [0x3ffffe1, 26], [0xfffeb, 20], [0x7fff1, 19],
  [0x3fffe7, 22], [0x7ffff2, 23], [0x3fffe8, 22], [0x1ffffec, 25],
  [0x3ffffe2, 26], [0x3ffffe3, 26], [0x3ffffe4, 26], [0x7ffffde, 27],
  [0x7ffffdf, 27], [0x3ffffe5, 26], [0xfffff1, 24], [0x1ffffed, 25],
  [0x7fff2, 19], [0x1fffe3, 21], [0x3ffffe6, 26], [0x7ffffe0, 27],
  [0x7ffffe1, 27], [0x3ffffe7, 26], [0x7ffffe2, 27], [0xfffff2, 24],
  [0x1fffe4, 21], [0x1fffe5, 21], [0x3ffffe8, 26], [0x3ffffe9, 26],
  [0xffffffd, 28], [0x7ffffe3, 27], [0x7ffffe4, 27], [0x7ffffe5, 27],
  [0xfffec, 20], [0xfffff3, 24], [0xfffed, 20], [0x1fffe6, 21],
  [0x3fffe9, 22], [0x1fffe7, 21], [0x1fffe8, 21], [0x7ffff3, 23],
  [0x3fffea, 22], [0x3fffeb, 22], [0x1ffffee, 25], [0x1ffffef, 25],
  [0xfffff4, 24], [0xfffff5, 24], [0x3ffffea, 26], [0x7ffff4, 23],
  [0x3ffffeb, 26], [0x7ffffe6, 27], [0x3ffffec, 26], [0x3ffffed, 26],
  [0x7ffffe7, 27], [0x7ffffe8, 27], [0x7ffffe9, 27], [0x7ffffea, 27],
  [0x7ffffeb, 27], [0xffffffe, 28], [0x7ffffec, 27], [0x7ffffed, 27],
  [0x7ffffee, 27], [0x7ffffef, 27], [0x7fffff0, 27], [0x3ffffee, 26],
  [0x3fffffff, 30], // EOS
];

const EOS = 256;

/**
 * Huffman-encode the symbols (0-255, or EOS = 256 to produce invalid input) and pad with `padBits` bits (default:
 * enough 1s to reach a byte boundary; a number forces that many, `padValue` gives their value).
 */
function huffmanEncodeSymbols(symbols: readonly number[], padBits?: number, padValue?: number): Buffer {
  const bytes: number[] = [];
  let acc = 0n;
  let bits = 0;
  for (const s of symbols) {
    const entry = CODES[s];
    if (entry === undefined) throw new Error(`no symbol ${s}`);
    acc = (acc << BigInt(entry[1])) | BigInt(entry[0]);
    bits += entry[1];
  }
  const pad = padBits ?? (8 - (bits % 8)) % 8;
  const value = padValue ?? 2 ** pad - 1;
  acc = (acc << BigInt(pad)) | BigInt(value);
  bits += pad;
  if (bits % 8 !== 0) throw new Error('not a whole number of bytes');
  for (let i = bits / 8 - 1; i >= 0; i--) bytes.push(Number((acc >> BigInt(i * 8)) & 0xffn));
  return Buffer.from(bytes);
}

/** Huffman-encode a latin1 string. */
function huffmanEncode(s: string): Buffer {
  const symbols: number[] = [];
  for (let i = 0; i < s.length; i++) symbols.push(s.charCodeAt(i));
  return huffmanEncodeSymbols(symbols);
}

/** Length in bits of the code of a symbol. */
function codeLength(symbol: number): number {
  return CODES[symbol]![1];
}

function decode(buf: Buffer): string {
  return huffmanDecode(buf, 0, buf.length);
}

function latin1(bytes: readonly number[]): string {
  return Buffer.from(bytes).toString('latin1');
}

const prng = seededRandom;

// The Huffman-coded strings of RFC 7541 Appendix C.4 and C.6.
const RFC_STRINGS: readonly (readonly [string, string])[] = [
  ['f1e3c2e5f23a6ba0ab90f4ff', 'www.example.com'],
  ['a8eb10649cbf', 'no-cache'],
  ['25a849e95ba97d7f', 'custom-key'],
  ['25a849e95bb8e8b4bf', 'custom-value'],
  ['6402', '302'],
  ['aec3771a4b', 'private'],
  ['d07abe941054d444a8200595040b8166e082a62d1bff', 'Mon, 21 Oct 2013 20:13:21 GMT'],
  ['9d29ad171863c78f0b97c8e9ae82ae43d3', 'https://www.example.com'],
  ['640eff', '307'],
  ['d07abe941054d444a8200595040b8166e084a62d1bff', 'Mon, 21 Oct 2013 20:13:22 GMT'],
  ['9bd9ab', 'gzip'],
  [
    '94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007',
    'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1',
  ],
];

test('huffman: the strings of RFC 7541 Appendix C.4 and C.6', () => {
  for (const [hex, text] of RFC_STRINGS) {
    assert.equal(decode(Buffer.from(hex, 'hex')), text);
    // And the test encoder agrees with the RFC, so the round trips below test against the RFC's table.
    assert.equal(huffmanEncode(text).toString('hex'), hex);
  }
});

test('huffman: the empty string', () => {
  assert.equal(decode(Buffer.alloc(0)), '');
});

test('huffman: every byte 0-255 round-trips, alone and in one string', () => {
  const all: number[] = [];
  for (let b = 0; b < 256; b++) {
    assert.equal(decode(huffmanEncode(latin1([b]))), latin1([b]), `byte ${b}`);
    all.push(b);
  }
  assert.equal(decode(huffmanEncode(latin1(all))), latin1(all));
  assert.equal(decode(huffmanEncode(latin1(all.reverse()))), latin1(all));
});

test('huffman: every pair of bytes round-trips (every code after every other code)', () => {
  for (let a = 0; a < 256; a++) {
    const symbols: number[] = [];
    for (let b = 0; b < 256; b++) symbols.push(a, b);
    assert.equal(decode(huffmanEncodeSymbols(symbols)), latin1(symbols), `after byte ${a}`);
  }
});

test('huffman: random strings round-trip, at an offset inside a larger buffer', () => {
  const rand = prng(7541);
  for (let n = 0; n < 500; n++) {
    const bytes: number[] = [];
    const len = Math.floor(rand() * 64);
    // Mostly header-like text, sometimes any byte.
    const wide = rand() < 0.3;
    for (let i = 0; i < len; i++) bytes.push(wide ? Math.floor(rand() * 256) : 0x20 + Math.floor(rand() * 95));
    const coded = huffmanEncode(latin1(bytes));
    const buf = Buffer.concat([Buffer.from([0x00, 0xff, 0x12]), coded, Buffer.from([0xff, 0x00])]);
    assert.equal(huffmanDecode(buf, 3, 3 + coded.length), latin1(bytes));
  }
});

test('huffman: a long string (the scratch buffer grows) and earlier results are not overwritten', () => {
  const rand = prng(1);
  const bytes: number[] = [];
  for (let i = 0; i < 20_000; i++) bytes.push(Math.floor(rand() * 256));
  const first = decode(huffmanEncode('first-string'));
  assert.equal(decode(huffmanEncode(latin1(bytes))), latin1(bytes));
  assert.equal(decode(huffmanEncode('second')), 'second');
  assert.equal(first, 'first-string');
});

test('huffman: padding of up to 7 bits of 1s is accepted', () => {
  // 'a' is 5 bits: 5 x 'a' = 25 bits, 7 bits of padding.
  assert.equal(codeLength(0x61), 5);
  assert.equal(decode(huffmanEncodeSymbols([0x61, 0x61, 0x61, 0x61, 0x61], 7)), 'aaaaa');
  // No padding at all: '&' is 8 bits.
  assert.equal(decode(huffmanEncodeSymbols([0x26], 0)), '&');
});

test('huffman: padding of 8 bits or more is an HpackError', () => {
  assert.throws(() => decode(Buffer.from([0xff])), HpackError);
  assert.throws(() => decode(Buffer.from([0xff, 0xff])), HpackError);
  // 'a' (5 bits) + 11 bits of 1s.
  assert.throws(() => decode(huffmanEncodeSymbols([0x61], 11)), HpackError);
  // '&' (8 bits) + 8 bits of 1s.
  assert.throws(() => decode(huffmanEncodeSymbols([0x26], 8)), HpackError);
});

test('huffman: padding that is not all 1s is an HpackError', () => {
  // 'a' + 3 bits of padding: 011, 101, 110, 000.
  for (const pad of [0b011, 0b101, 0b110, 0b000]) {
    assert.throws(() => decode(huffmanEncodeSymbols([0x61], 3, pad)), HpackError, `padding ${pad.toString(2)}`);
  }
  // A truncated long code is not padding either: the first 16 bits of the 28-bit code of byte 2.
  assert.throws(() => decode(huffmanEncodeSymbols([2], 4).subarray(0, 2)), HpackError);
});

test('huffman: EOS in the string is an HpackError', () => {
  assert.throws(() => decode(huffmanEncodeSymbols([EOS])), HpackError);
  assert.throws(() => decode(huffmanEncodeSymbols([0x61, EOS])), HpackError);
  assert.throws(() => decode(huffmanEncodeSymbols([0x61, EOS, 0x62])), HpackError);
  // 32 bits of 1s: EOS then 2 bits of padding.
  assert.throws(() => decode(Buffer.from([0xff, 0xff, 0xff, 0xff])), HpackError);
});

test('huffman: random input either decodes or throws HpackError', () => {
  const rand = prng(99);
  for (let n = 0; n < 20_000; n++) {
    const len = Math.floor(rand() * 16);
    const buf = Buffer.alloc(len);
    // Bias towards 1 bits, where the long codes and EOS are.
    for (let i = 0; i < len; i++) buf[i] = rand() < 0.5 ? 0xff - Math.floor(rand() * 16) : Math.floor(rand() * 256);
    try {
      const s = decode(buf);
      assert.ok(s.length <= (len * 8) / 5);
      // What decodes re-encodes to the same bytes (a prefix code has one coding per string with 1s padding).
      assert.deepEqual(huffmanEncode(s), buf);
    } catch (err) {
      assert.ok(err instanceof HpackError, String(err));
    }
  }
});
