// RFC 7541: the HPACK decoder (every example of Appendix C, the errors of §5-§6, the list size limit of RFC 9113
// §6.5.2, a fuzz loop) and the encoder (representations chosen, round trips through the decoder), and both against
// node:http2 (nghttp2) on a real connection in each direction.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { HpackDecoder, HpackEncoder, HpackError } from '../../../../src/l7/h2/hpack.js';
import { seededRandom } from '../../helpers/seeded-random.js';

/** A hex dump as printed in the RFC (spaces and line breaks allowed) to bytes. */
function hex(dump: string): Buffer {
  return Buffer.from(dump.replace(/\s+/g, ''), 'hex');
}

/** Decode a whole block; returns the [name, value] pairs. */
function decodePairs(decoder: HpackDecoder, block: Buffer, maxListSize = Infinity): [string, string][] {
  const out: string[] = [];
  decoder.decode(block, 0, block.length, out, maxListSize);
  return toPairs(out);
}

function toPairs(flat: readonly string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([flat[i]!, flat[i + 1]!]);
  return pairs;
}

/** The dynamic table, newest first, read through indexed representations (which do not change it). */
function dynamicTable(decoder: HpackDecoder): [string, string][] {
  const entries: [string, string][] = [];
  for (let index = 62; ; index++) {
    const block = encodeIndexed(index);
    try {
      entries.push(...decodePairs(decoder, block));
    } catch (err) {
      assert.ok(err instanceof HpackError);
      return entries;
    }
  }
}

/** An indexed field representation (§6.1) of `index`. */
function encodeIndexed(index: number): Buffer {
  return Buffer.from(integer(index, 7, 0x80));
}

/** The bytes of `value` as an integer with an n-bit prefix under `flags` (§5.1). */
function integer(value: number, n: number, flags: number): number[] {
  const max = 2 ** n - 1;
  if (value < max) return [flags | value];
  const bytes = [flags | max];
  value -= max;
  while (value >= 128) {
    bytes.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  bytes.push(value);
  return bytes;
}

const prng = seededRandom;

// ---------------------------------------------------------------------------------------------------------------
// RFC 7541 Appendix C

test('C.2.1 literal field with indexing', () => {
  const d = new HpackDecoder();
  const block = hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572');
  assert.deepEqual(decodePairs(d, block), [['custom-key', 'custom-header']]);
  assert.deepEqual(dynamicTable(d), [['custom-key', 'custom-header']]);
  assert.equal(d.tableSize, 55);
});

test('C.2.2 literal field without indexing', () => {
  const d = new HpackDecoder();
  assert.deepEqual(decodePairs(d, hex('040c 2f73 616d 706c 652f 7061 7468')), [[':path', '/sample/path']]);
  assert.deepEqual(dynamicTable(d), []);
  assert.equal(d.tableSize, 0);
});

test('C.2.3 literal field never indexed', () => {
  const d = new HpackDecoder();
  assert.deepEqual(decodePairs(d, hex('1008 7061 7373 776f 7264 0673 6563 7265 74')), [['password', 'secret']]);
  assert.equal(d.tableSize, 0);
});

test('C.2.4 indexed field', () => {
  const d = new HpackDecoder();
  assert.deepEqual(decodePairs(d, hex('82')), [[':method', 'GET']]);
  assert.equal(d.tableSize, 0);
});

const REQUEST_1: [string, string][] = [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', '/'],
  [':authority', 'www.example.com'],
];
const REQUEST_2: [string, string][] = [...REQUEST_1, ['cache-control', 'no-cache']];
const REQUEST_3: [string, string][] = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', '/index.html'],
  [':authority', 'www.example.com'],
  ['custom-key', 'custom-value'],
];

function checkRequests(blocks: readonly Buffer[]): void {
  const d = new HpackDecoder();
  assert.deepEqual(decodePairs(d, blocks[0]!), REQUEST_1);
  assert.deepEqual(dynamicTable(d), [[':authority', 'www.example.com']]);
  assert.equal(d.tableSize, 57);
  assert.deepEqual(decodePairs(d, blocks[1]!), REQUEST_2);
  assert.deepEqual(dynamicTable(d), [
    ['cache-control', 'no-cache'],
    [':authority', 'www.example.com'],
  ]);
  assert.equal(d.tableSize, 110);
  assert.deepEqual(decodePairs(d, blocks[2]!), REQUEST_3);
  assert.deepEqual(dynamicTable(d), [
    ['custom-key', 'custom-value'],
    ['cache-control', 'no-cache'],
    [':authority', 'www.example.com'],
  ]);
  assert.equal(d.tableSize, 164);
}

const C3 = [
  hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'),
  hex('8286 84be 5808 6e6f 2d63 6163 6865'),
  hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'),
];
const C4 = [
  hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'),
  hex('8286 84be 5886 a8eb 1064 9cbf'),
  hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'),
];

test('C.3 requests without Huffman coding (one decoder)', () => {
  checkRequests(C3);
});

test('C.4 requests with Huffman coding (one decoder)', () => {
  checkRequests(C4);
});

const DATE_1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE_2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOCATION = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RESPONSE_1: [string, string][] = [
  [':status', '302'],
  ['cache-control', 'private'],
  ['date', DATE_1],
  ['location', LOCATION],
];
const RESPONSE_2: [string, string][] = [
  [':status', '307'],
  ['cache-control', 'private'],
  ['date', DATE_1],
  ['location', LOCATION],
];
const RESPONSE_3: [string, string][] = [
  [':status', '200'],
  ['cache-control', 'private'],
  ['date', DATE_2],
  ['location', LOCATION],
  ['content-encoding', 'gzip'],
  ['set-cookie', COOKIE],
];

function checkResponses(blocks: readonly Buffer[]): void {
  // SETTINGS_HEADER_TABLE_SIZE = 256: evictions.
  const d = new HpackDecoder(256);
  assert.deepEqual(decodePairs(d, blocks[0]!), RESPONSE_1);
  assert.deepEqual(dynamicTable(d), [
    ['location', LOCATION],
    ['date', DATE_1],
    ['cache-control', 'private'],
    [':status', '302'],
  ]);
  assert.equal(d.tableSize, 222);
  assert.deepEqual(decodePairs(d, blocks[1]!), RESPONSE_2);
  assert.deepEqual(dynamicTable(d), [
    [':status', '307'],
    ['location', LOCATION],
    ['date', DATE_1],
    ['cache-control', 'private'],
  ]);
  assert.equal(d.tableSize, 222);
  assert.deepEqual(decodePairs(d, blocks[2]!), RESPONSE_3);
  assert.deepEqual(dynamicTable(d), [
    ['set-cookie', COOKIE],
    ['content-encoding', 'gzip'],
    ['date', DATE_2],
  ]);
  assert.equal(d.tableSize, 215);
}

const C5 = [
  hex(`4803 3330 3258 0770 7269 7661 7465 611d
       4d6f 6e2c 2032 3120 4f63 7420 3230 3133
       2032 303a 3133 3a32 3120 474d 546e 1768
       7474 7073 3a2f 2f77 7777 2e65 7861 6d70
       6c65 2e63 6f6d`),
  hex('4803 3330 37c1 c0bf'),
  hex(`88c1 611d 4d6f 6e2c 2032 3120 4f63 7420
       3230 3133 2032 303a 3133 3a32 3220 474d
       54c0 5a04 677a 6970 7738 666f 6f3d 4153
       444a 4b48 514b 425a 584f 5157 454f 5049
       5541 5851 5745 4f49 553b 206d 6178 2d61
       6765 3d33 3630 303b 2076 6572 7369 6f6e
       3d31`),
];
const C6 = [
  hex(`4882 6402 5885 aec3 771a 4b61 96d0 7abe
       9410 54d4 44a8 2005 9504 0b81 66e0 82a6
       2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8
       e9ae 82ae 43d3`),
  hex('4883 640e ffc1 c0bf'),
  hex(`88c1 6196 d07a be94 1054 d444 a820 0595
       040b 8166 e084 a62d 1bff c05a 839b d9ab
       77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b
       3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
       9587 3160 65c0 03ed 4ee5 b106 3d50 07`),
];

test('C.5 responses without Huffman coding (table size 256, evictions)', () => {
  checkResponses(C5);
});

test('C.6 responses with Huffman coding (table size 256, evictions)', () => {
  checkResponses(C6);
});

test('decode: a block inside a larger buffer, and an empty block', () => {
  const d = new HpackDecoder();
  const block = C4[0]!;
  const buf = Buffer.concat([Buffer.from([0xff, 0x40]), block, Buffer.from([0x80, 0x3f])]);
  const out: string[] = [];
  assert.equal(d.decode(buf, 2, 2 + block.length, out, 1 << 16), 4 * 32 + 7 + 3 + 7 + 4 + 5 + 1 + 10 + 15);
  assert.deepEqual(toPairs(out), REQUEST_1);
  assert.equal(d.decode(buf, 2, 2, out, 1 << 16), 0);
});

// ---------------------------------------------------------------------------------------------------------------
// Dynamic table

test('dynamic table size update: at the start of a block, evicts, and may be raised again up to the maximum', () => {
  const d = new HpackDecoder();
  for (const block of C3) decodePairs(d, block);
  assert.equal(d.tableSize, 164);
  // Two updates at the start of one block (§4.2): down to 100 (evicts the two oldest), then back to 4096.
  assert.deepEqual(decodePairs(d, Buffer.from([...integer(100, 5, 0x20), ...integer(4096, 5, 0x20), 0x82])), [
    [':method', 'GET'],
  ]);
  assert.deepEqual(dynamicTable(d), [['custom-key', 'custom-value']]);
  assert.equal(d.tableSize, 54);
  // Down to 0 empties it.
  decodePairs(d, Buffer.from([0x20]));
  assert.equal(d.tableSize, 0);
  assert.deepEqual(dynamicTable(d), []);
  // Nothing fits in a 0-size table: the field is decoded, not kept.
  assert.deepEqual(decodePairs(d, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')), [
    ['custom-key', 'custom-header'],
  ]);
  assert.equal(d.tableSize, 0);
  // Back to 4096: insertions work again.
  decodePairs(d, Buffer.from(integer(4096, 5, 0x20)));
  decodePairs(d, C3[0]!);
  assert.deepEqual(dynamicTable(d), [[':authority', 'www.example.com']]);
});

test('an entry larger than the table empties it (§4.4), and the field is still decoded', () => {
  const d = new HpackDecoder(256);
  for (const block of C5.slice(0, 2)) decodePairs(d, block);
  assert.equal(d.tableSize, 222);
  const big = 'x'.repeat(230);
  assert.deepEqual(decodePairs(d, Buffer.from([0x40, 0x01, 0x61, ...integer(big.length, 7, 0), ...Buffer.from(big)])), [
    ['a', big],
  ]);
  assert.equal(d.tableSize, 0);
  assert.deepEqual(dynamicTable(d), []);
  // Exactly the table size fits: 1 + 223 + 32 = 256.
  const fits = 'y'.repeat(223);
  decodePairs(d, Buffer.from([0x40, 0x01, 0x62, ...integer(fits.length, 7, 0), ...Buffer.from(fits)]));
  assert.equal(d.tableSize, 256);
  assert.deepEqual(dynamicTable(d), [['b', fits]]);
});

test('many small entries: the table grows past its initial capacity and evicts in order', () => {
  const d = new HpackDecoder(65536);
  // 1000 entries of 32 + 4 + 4 = 40 bytes: 1000 * 40 = 40000 fit.
  const names: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const name = `n${String(i).padStart(3, '0')}`;
    names.push(name);
    decodePairs(d, Buffer.from([0x40, 0x04, ...Buffer.from(name), 0x04, ...Buffer.from('vvvv')]));
  }
  assert.equal(d.tableSize, 40_000);
  assert.deepEqual(decodePairs(d, encodeIndexed(62)), [['n999', 'vvvv']]);
  assert.deepEqual(decodePairs(d, encodeIndexed(61 + 1000)), [['n000', 'vvvv']]);
  assert.throws(() => decodePairs(d, encodeIndexed(62 + 1000)), HpackError);
  // Shrink to 400 bytes: the 10 newest remain.
  decodePairs(d, Buffer.from(integer(400, 5, 0x20)));
  assert.equal(d.tableSize, 400);
  assert.deepEqual(
    dynamicTable(d).map((e) => e[0]),
    names.slice(990).reverse(),
  );
});

// ---------------------------------------------------------------------------------------------------------------
// Errors

function assertHpackError(block: Buffer | readonly number[], message?: RegExp, decoder = new HpackDecoder()): void {
  const buf = Buffer.isBuffer(block) ? block : Buffer.from(block);
  assert.throws(
    () => decoder.decode(buf, 0, buf.length, [], Infinity),
    (err: unknown) => err instanceof HpackError && (message === undefined || message.test(err.message)),
    `${buf.toString('hex')} should fail${message ? ` with ${message}` : ''}`,
  );
}

test('error: index 0', () => {
  assertHpackError([0x80], /index 0/);
  assertHpackError([0x82, 0x80], /index 0/);
});

test('error: index beyond the static and dynamic tables', () => {
  assertHpackError([0xbe], /beyond/); // 62, empty dynamic table
  assertHpackError([0xff, 0x00], /beyond/); // 127
  assertHpackError([0x7e, 0x01, 0x61], /beyond/); // literal with indexing, name index 62
  assertHpackError([0x0f, 0x2f, 0x01, 0x61], /beyond/); // literal without indexing, name index 62
  assertHpackError([0x1f, 0x2f, 0x01, 0x61], /beyond/); // never indexed, name index 62
  const d = new HpackDecoder();
  decodePairs(d, C3[0]!);
  assert.deepEqual(decodePairs(d, Buffer.from([0xbe])), [[':authority', 'www.example.com']]);
  assertHpackError([0xbf], /beyond/, d);
});

test('error: truncated integer', () => {
  assertHpackError([0xff], /truncated integer/);
  assertHpackError([0xff, 0x80], /truncated integer/);
  assertHpackError([0x3f, 0xe1], /truncated integer/); // size update
  assertHpackError([0x7f], /truncated integer/); // literal name index
  assertHpackError([0x40, 0x7f], /truncated integer/); // string length
  assertHpackError([0x0f, 0x80, 0x80], /truncated integer/);
});

test('error: oversized or overlong integer', () => {
  // 2^31 - 1 is a valid integer (so this is an index error), 2^31 is not.
  assertHpackError(integer(2 ** 31 - 1, 7, 0x80), /beyond/);
  assertHpackError(integer(2 ** 31, 7, 0x80), /too large/);
  assertHpackError([0xff, 0xff, 0xff, 0xff, 0xff, 0x0f], /too large/);
  // More than 5 continuation bytes, even of zeros.
  assertHpackError([0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], /too long/);
  assertHpackError([0x40, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], /too long/);
  assert.equal(integer(2 ** 31 - 1, 7, 0x80).length, 6);
});

test('error: truncated string or representation', () => {
  assertHpackError([0x40], /truncated field/); // no name
  assertHpackError([0x41], /truncated field/); // no value
  assertHpackError([0x40, 0x01, 0x61], /truncated field/); // name, no value
  assertHpackError([0x00, 0x01, 0x61], /truncated field/);
  assertHpackError([0x40, 0x05, 0x61, 0x62], /past the end/);
  assertHpackError([0x04, 0x03, 0x61], /past the end/);
  assertHpackError([0x04, 0x83, 0x61], /past the end/); // Huffman
  // Each proper prefix of a valid block that ends inside a representation.
  const block = C4[2]!;
  for (let end = 5; end < block.length; end++) {
    assert.throws(() => new HpackDecoder().decode(block, 0, end, [], Infinity), HpackError, `prefix ${end}`);
  }
});

test('error: Huffman string with EOS or bad padding', () => {
  assertHpackError([0x04, 0x81, 0xff], /padding/); // 8 bits of padding
  assertHpackError([0x04, 0x81, 0x1e], /padding/); // 'a' (00011) + 110
  assertHpackError([0x04, 0x84, 0xff, 0xff, 0xff, 0xff], /EOS/);
});

test('error: dynamic table size update above the maximum', () => {
  assertHpackError(integer(4097, 5, 0x20), /size update above 4096/);
  assert.equal(new HpackDecoder().decode(Buffer.from(integer(4096, 5, 0x20)), 0, 3, [], 100), 0);
  const small = new HpackDecoder(256);
  small.decode(Buffer.from(integer(256, 5, 0x20)), 0, 3, [], 100);
  assertHpackError(integer(257, 5, 0x20), /size update above 256/, small);
  assertHpackError([0x21], /above 0/, new HpackDecoder(0));
});

test('error: dynamic table size update after a field', () => {
  assertHpackError([0x82, 0x20], /after a field/);
  assertHpackError([0x20, 0x82, 0x3f, 0xe1, 0x1f], /after a field/);
  assertHpackError([...C3[0]!, 0x20], /after a field/);
});

test('fuzz: random and mutated blocks either decode or throw HpackError', () => {
  const rand = prng(0x7541);
  const seeds = [...C3, ...C4, ...C5, ...C6, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')];
  const sizes = [0, 64, 256, 4096];
  // Representation types and integer prefixes at their limits.
  const special = [0x80, 0xbe, 0xff, 0x40, 0x7f, 0x20, 0x3f, 0x00, 0x0f, 0x10];
  let maxTable = 4096;
  let d = new HpackDecoder(maxTable);
  let decoded = 0;
  let failed = 0;
  for (let n = 0; n < 20_000; n++) {
    let block: Buffer;
    if (rand() < 0.4) {
      const len = Math.floor(rand() * 40);
      block = Buffer.alloc(len);
      for (let i = 0; i < len; i++) {
        block[i] = rand() < 0.5 ? Math.floor(rand() * 256) : special[Math.floor(rand() * special.length)]!;
      }
    } else {
      block = Buffer.from(seeds[Math.floor(rand() * seeds.length)]!);
      const mutations = 1 + Math.floor(rand() * 4);
      for (let m = 0; m < mutations && block.length > 0; m++) {
        const at = Math.floor(rand() * block.length);
        const kind = Math.floor(rand() * 5);
        if (kind === 0) block[at] = block[at]! ^ (1 << Math.floor(rand() * 8));
        else if (kind === 1) block[at] = Math.floor(rand() * 256);
        else if (kind === 2) block = block.subarray(0, at);
        else if (kind === 3) {
          block = Buffer.concat([block.subarray(0, at), Buffer.from([Math.floor(rand() * 256)]), block.subarray(at)]);
        }
        else block = Buffer.concat([block, block.subarray(at, at + 8)]);
      }
    }
    const out: string[] = [];
    const limit = rand() < 0.2 ? 64 : 1 << 16;
    try {
      const size = d.decode(block, 0, block.length, out, limit);
      decoded++;
      assert.equal(out.length % 2, 0);
      assert.ok(size >= 0 && size >= (out.length / 2) * 32);
      assert.ok(out.every((s) => typeof s === 'string'));
    } catch (err) {
      if (!(err instanceof HpackError)) throw err;
      failed++;
      // A session dies with its first compression error: start a new one.
      maxTable = sizes[Math.floor(rand() * sizes.length)]!;
      d = new HpackDecoder(maxTable);
    }
    assert.ok(d.tableSize <= maxTable);
  }
  // Both outcomes are exercised.
  assert.ok(decoded > 1000 && failed > 1000, `decoded ${decoded}, failed ${failed}`);
});

// ---------------------------------------------------------------------------------------------------------------
// List size limit (RFC 9113 §6.5.2)

test('list size limit: out stops growing, decoding goes on, and the table stays in step', () => {
  const d = new HpackDecoder();
  const big = 'v'.repeat(1000);
  const insert = Buffer.from([0x40, 0x05, ...Buffer.from('x-big'), ...integer(big.length, 7, 0), ...Buffer.from(big)]);
  assert.deepEqual(decodePairs(d, insert), [['x-big', big]]);
  const fieldSize = 5 + 1000 + 32;
  assert.equal(d.tableSize, fieldSize);

  // 100 references to it, then a new insertion (still made, although past the limit).
  const refs = Buffer.concat([
    Buffer.alloc(100, 0xbe),
    Buffer.from([0x40, 0x03, ...Buffer.from('new'), 0x01, ...Buffer.from('1')]),
  ]);
  const out: string[] = [];
  const limit = 16 * 1024;
  const size = d.decode(refs, 0, refs.length, out, limit);
  assert.equal(size, 100 * fieldSize + 3 + 1 + 32);
  assert.ok(size > limit);
  assert.equal(out.length, 2 * Math.floor(limit / fieldSize));
  assert.ok(out.length < 200);

  // The next block: the table has the entry inserted past the limit, at index 62, and the big one at 63.
  assert.deepEqual(decodePairs(d, Buffer.from([0x82, 0xbe, 0xbf])), [
    [':method', 'GET'],
    ['new', '1'],
    ['x-big', big],
  ]);
  // A limit of 0 appends nothing, but still returns the size.
  const none: string[] = [];
  assert.equal(d.decode(Buffer.from([0x82]), 0, 1, none, 0), 7 + 3 + 32);
  assert.deepEqual(none, []);
});

// ---------------------------------------------------------------------------------------------------------------
// Encoder

test('encoder: exact static matches are one byte (§6.1)', () => {
  const e = new HpackEncoder();
  assert.deepEqual(e.encode([':method', 'GET']), Buffer.from([0x82]));
  assert.deepEqual(e.encode([':method', 'POST']), Buffer.from([0x83]));
  assert.deepEqual(e.encode([':path', '/']), Buffer.from([0x84]));
  assert.deepEqual(e.encode([':scheme', 'https']), Buffer.from([0x87]));
  assert.deepEqual(e.encode([':status', '200']), Buffer.from([0x88]));
  assert.deepEqual(e.encode([':status', '500']), Buffer.from([0x8e]));
  assert.deepEqual(e.encode(['accept-encoding', 'gzip, deflate']), Buffer.from([0x90]));
  assert.deepEqual(e.encode(['www-authenticate', '']), Buffer.from([0xbd]));
  assert.deepEqual(e.encode([':status', '200', ':method', 'GET']), Buffer.from([0x88, 0x82]));
});

test('encoder: static name with another value is a literal without indexing with an indexed name (§6.2.2)', () => {
  const e = new HpackEncoder();
  assert.deepEqual(e.encode([':status', '302']), Buffer.from([0x08, 0x03, ...Buffer.from('302')]));
  // Index 31 does not fit in the 4-bit prefix: 15 + 16.
  assert.deepEqual(
    e.encode(['content-type', 'text/plain']),
    Buffer.from([0x0f, 0x10, 0x0a, ...Buffer.from('text/plain')]),
  );
  // The lowest index of the name is used.
  assert.deepEqual(e.encode([':path', '/x']), Buffer.from([0x04, 0x02, ...Buffer.from('/x')]));
});

test('encoder: unknown names are literals without indexing with a literal name', () => {
  const e = new HpackEncoder();
  assert.deepEqual(e.encode(['x-custom', 'v']), Buffer.from([0x00, 0x08, ...Buffer.from('x-custom'), 0x01, 0x76]));
  assert.deepEqual(e.encode(['x-empty', '']), Buffer.from([0x00, 0x07, ...Buffer.from('x-empty'), 0x00]));
});

test('encoder: credentials are never indexed (§6.2.3, §7.1.3)', () => {
  const e = new HpackEncoder();
  const cases: [string, number][] = [
    ['authorization', 23],
    ['cookie', 32],
    ['proxy-authorization', 49],
    ['set-cookie', 55],
  ];
  for (const [name, index] of cases) {
    const block = e.encode([name, 'secret']);
    assert.deepEqual(block, Buffer.from([0x1f, index - 15, 0x06, ...Buffer.from('secret')]), name);
    assert.equal(block[0]! & 0xf0, 0x10);
    assert.deepEqual(decodePairs(new HpackDecoder(), block), [[name, 'secret']]);
  }
  // Other names: the 0000 pattern.
  assert.equal(e.encode(['content-type', 'x'])[0]! & 0xf0, 0x00);
  assert.equal(e.encode(['x-authorization', 'x'])[0]! & 0xf0, 0x00);
});

test('encoder: long strings (multi-byte lengths) and latin1 bytes 0x80-0xff', () => {
  const e = new HpackEncoder();
  const d = new HpackDecoder();
  let all = '';
  for (let c = 0; c < 256; c++) all += String.fromCharCode(c);
  const fields = ['x-all', all, 'x-long-name-'.repeat(20), 'é'.repeat(5000), 'user-agent', 'ü', ':path', '/ä?ö=ß'];
  const block = e.encode(fields);
  assert.deepEqual(decodePairs(d, block), toPairs(fields));
  assert.equal(d.tableSize, 0);
  // The lengths: 256 = 127 + 129 -> 0x7f 0x81 0x01.
  assert.deepEqual([...block.subarray(7, 10)], [0x7f, 0x81, 0x01]);
});

test('encoder: encodeWith(pseudo, fields) is encode(pseudo ++ fields)', () => {
  const e = new HpackEncoder();
  const pseudo = [':status', '404'];
  const fields = ['content-type', 'text/html', 'x-a', 'b', 'set-cookie', 'id=1'];
  assert.deepEqual(e.encodeWith(pseudo, fields), e.encode([...pseudo, ...fields]));
  assert.deepEqual(e.encodeWith([], fields), e.encode(fields));
  assert.deepEqual(e.encodeWith(pseudo, []), e.encode(pseudo));
  assert.equal(e.encode([]).length, 0);
});

test('encoder: random field lists round-trip through the decoder, which never gets a table entry', () => {
  const rand = prng(42);
  const e = new HpackEncoder();
  const d = new HpackDecoder();
  const staticPairs: [string, string][] = [
    [':method', 'GET'],
    [':method', 'PUT'],
    [':status', '200'],
    [':status', '418'],
    [':path', '/'],
    [':authority', 'example.com'],
    ['accept-encoding', 'gzip, deflate'],
    ['accept-encoding', 'br'],
    ['cookie', 'a=b'],
    ['set-cookie', ''],
    ['content-length', '0'],
    ['via', ''],
  ];
  const randomString = (max: number, wide: boolean): string => {
    const len = Math.floor(rand() * max);
    let s = '';
    for (let i = 0; i < len; i++) {
      s += String.fromCharCode(wide ? Math.floor(rand() * 256) : 0x61 + Math.floor(rand() * 26));
    }
    return s;
  };
  for (let n = 0; n < 2000; n++) {
    const fields: string[] = [];
    const count = Math.floor(rand() * 40);
    for (let i = 0; i < count; i++) {
      const r = rand();
      if (r < 0.4) {
        const p = staticPairs[Math.floor(rand() * staticPairs.length)]!;
        fields.push(p[0], p[1]);
      } else if (r < 0.7) {
        const name = staticPairs[Math.floor(rand() * staticPairs.length)]![0];
        fields.push(name, randomString(rand() < 0.1 ? 300 : 20, true));
      } else {
        fields.push(`x-${randomString(rand() < 0.1 ? 200 : 12, false)}`, randomString(rand() < 0.1 ? 300 : 20, true));
      }
    }
    const split = 2 * Math.floor((rand() * fields.length) / 2);
    const block = rand() < 0.5 ? e.encode(fields) : e.encodeWith(fields.slice(0, split), fields.slice(split));
    const out: string[] = [];
    d.decode(block, 0, block.length, out, Infinity);
    assert.deepEqual(out, fields);
    assert.equal(d.tableSize, 0);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Against node:http2 (nghttp2)

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const TYPE_HEADERS = 0x1;
const TYPE_SETTINGS = 0x4;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

test('node:http2 server decodes a HEADERS block from HpackEncoder', async () => {
  const server = http2.createServer();
  server.on('sessionError', () => {});
  const seen = new Promise<http2.IncomingHttpHeaders>((resolve) => {
    server.on('stream', (stream, headers) => {
      resolve(headers);
      stream.respond({ ':status': 204 }, { endStream: true });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  try {
    await once(socket, 'connect');
    const block = new HpackEncoder().encode([
      ':method', 'GET',
      ':scheme', 'http',
      ':path', '/x?y=1',
      ':authority', 'a.test',
      'x-custom', 'h\u00e9llo',
      'authorization', 'secret',
    ]);
    socket.write(
      Buffer.concat([
        PREFACE,
        frame(TYPE_SETTINGS, 0, 0, Buffer.alloc(0)),
        frame(TYPE_HEADERS, FLAG_END_STREAM | FLAG_END_HEADERS, 1, block),
      ]),
    );
    const headers = await seen;
    assert.equal(headers[':method'], 'GET');
    assert.equal(headers[':scheme'], 'http');
    assert.equal(headers[':path'], '/x?y=1');
    assert.equal(headers[':authority'], 'a.test');
    // node:http2 hands field values over as latin1, like we do.
    assert.equal(headers['x-custom'], 'h\u00e9llo');
    assert.equal(headers['authorization'], 'secret');
    // nghttp2 saw the never-indexed flag.
    assert.deepEqual((headers as Record<symbol, unknown>)[http2.sensitiveHeaders], ['authorization']);
  } finally {
    socket.destroy();
    server.close();
  }
});

/** Run node:http2's client against a raw TCP server; returns the header blocks of its requests by stream id. */
async function captureClientBlocks(
  requests: readonly http2.OutgoingHttpHeaders[],
): Promise<Map<number, Buffer>> {
  const blocks = new Map<number, Buffer>();
  const sockets = new Set<net.Socket>();
  let done: () => void = () => {};
  const allSeen = new Promise<void>((resolve) => (done = resolve));
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    // Our server preface: empty SETTINGS (so the client's encoder table is the default 4096).
    socket.write(frame(TYPE_SETTINGS, 0, 0, Buffer.alloc(0)));
    let pending = Buffer.alloc(0);
    let prefaceSeen = false;
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (!prefaceSeen) {
        if (pending.length < PREFACE.length) return;
        assert.deepEqual(pending.subarray(0, PREFACE.length), PREFACE);
        pending = pending.subarray(PREFACE.length);
        prefaceSeen = true;
      }
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < 9 + length) break;
        const type = pending[3]!;
        const flags = pending[4]!;
        const streamId = pending.readUInt32BE(5) & 0x7fffffff;
        let payload = pending.subarray(9, 9 + length);
        pending = pending.subarray(9 + length);
        if (type === TYPE_SETTINGS && (flags & FLAG_ACK) === 0) {
          socket.write(frame(TYPE_SETTINGS, FLAG_ACK, 0, Buffer.alloc(0)));
        } else if (type === TYPE_HEADERS) {
          assert.ok((flags & FLAG_END_HEADERS) !== 0, 'small requests fit in one HEADERS frame');
          if ((flags & FLAG_PADDED) !== 0) payload = payload.subarray(1, payload.length - payload[0]!);
          if ((flags & FLAG_PRIORITY) !== 0) payload = payload.subarray(5);
          blocks.set(streamId, Buffer.from(payload));
          if (blocks.size === requests.length) done();
        }
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on('error', () => {});
  try {
    for (const headers of requests) {
      const req = client.request(headers, { endStream: true });
      req.on('error', () => {});
    }
    await allSeen;
    return blocks;
  } finally {
    client.destroy();
    for (const s of sockets) s.destroy();
    server.close();
  }
}

test('HpackDecoder decodes node:http2 client requests (Huffman and dynamic table)', async () => {
  const request = (path: string, id: string): http2.OutgoingHttpHeaders => ({
    ':method': 'POST',
    ':path': path,
    'user-agent': 'remora-test/1.0',
    accept: 'application/json',
    'accept-encoding': 'gzip, deflate, br',
    'x-request-id': id,
  });
  const blocks = await captureClientBlocks([
    request('/api/v1/items?page=2', '0f8fad5b-d9cb-469f-a165-70867728950e'),
    request('/api/v1/items?page=3', '7c9e6679-7425-40de-944b-e07fc1f90ae7'),
  ]);
  const first = blocks.get(1);
  const second = blocks.get(3);
  assert.ok(first !== undefined && second !== undefined);
  const d = new HpackDecoder();
  const fields1 = new Map(decodePairs(d, first));
  assert.ok(d.tableSize > 0, 'nghttp2 indexes fields');
  const fields2 = new Map(decodePairs(d, second));
  for (const [fields, path, id] of [
    [fields1, '/api/v1/items?page=2', '0f8fad5b-d9cb-469f-a165-70867728950e'],
    [fields2, '/api/v1/items?page=3', '7c9e6679-7425-40de-944b-e07fc1f90ae7'],
  ] as const) {
    assert.equal(fields.size, 8);
    assert.equal(fields.get(':method'), 'POST');
    assert.equal(fields.get(':scheme'), 'http');
    assert.match(fields.get(':authority') ?? '', /^127\.0\.0\.1:\d+$/);
    assert.equal(fields.get(':path'), path);
    assert.equal(fields.get('user-agent'), 'remora-test/1.0');
    assert.equal(fields.get('accept'), 'application/json');
    assert.equal(fields.get('accept-encoding'), 'gzip, deflate, br');
    assert.equal(fields.get('x-request-id'), id);
  }
  // Huffman: the literal is not in the block as plain text; dynamic table: the second block is much smaller.
  assert.ok(!first.includes('remora-test'));
  assert.ok(second.length < first.length / 2, `${second.length} vs ${first.length}`);
});
