// The protocol sniffer against real first-flight captures (test/fixtures/captures, made by
// scripts/capture-first-bytes.mjs), fed whole, one byte at a time and in seeded random chunkings, plus hand-made
// edge cases and a seeded mutation fuzz. Every loop is bounded in count.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  createSniffer,
  DEFAULT_SNIFFER_OPTIONS,
  HTTP2_PREFACE,
  sniff,
  type SniffDecision,
  type SniffResult,
  type SnifferOptions,
} from '../../../src/l4/detect/protocol-sniffer.js';

const CAPTURES = new URL('../../../../test/fixtures/captures/', import.meta.url);
function capture(name: string): Buffer {
  return readFileSync(new URL(`${name}.bin`, CAPTURES));
}

/** mulberry32: a tiny deterministic PRNG so every run sees the same chunkings and mutations. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

function chunkings(bytes: Buffer, seed: number, count: number): Buffer[][] {
  const out: Buffer[][] = [[bytes], [...bytes].map((b) => Buffer.of(b))];
  const rnd = prng(seed);
  for (let k = 0; k < count; k++) {
    const chunks: Buffer[] = [];
    let at = 0;
    // Mix tiny and large pieces: segment sizes from 1 to 64, sometimes up to 1500.
    while (at < bytes.length) {
      const n = 1 + (rnd(4) === 0 ? rnd(1500) : rnd(64));
      chunks.push(bytes.subarray(at, at + n));
      at += n;
    }
    out.push(chunks);
  }
  return out;
}

/**
 * Feeds the chunks in order and checks the sniffer's contract on the way: 'need-more' until a decision, the decision
 * is sticky, bytesSeen counts exactly the bytes up to and including the deciding chunk, decidedAt lies in that chunk.
 */
function feed(chunks: readonly Buffer[], opts?: SnifferOptions): SniffResult {
  const s = createSniffer(opts);
  let total = 0;
  let decided: SniffResult | undefined;
  for (const c of chunks) {
    const before = total;
    total += c.length;
    const r = s.push(c);
    if (decided !== undefined) {
      assert.equal(r, decided, 'a decision never changes');
      continue;
    }
    if (r.kind !== 'need-more') {
      decided = r;
      assert.equal(s.bytesSeen, total);
      if (c.length > 0) {
        assert.ok(r.decidedAt > before && r.decidedAt <= total, `decidedAt ${r.decidedAt} within the deciding chunk (${before}, ${total}]`);
      }
    }
  }
  if (decided === undefined) assert.equal(s.bytesSeen, total);
  return s.result;
}

/** Everything but the Buffer, for deep comparison across chunkings. */
function summary(r: SniffResult): unknown {
  if (r.kind === 'tls') {
    const { clientHello, ...rest } = r;
    return { ...rest, clientHelloHex: clientHello.toString('hex') };
  }
  return r;
}

function assertSameEverywhere(bytes: Buffer, seed: number, opts?: SnifferOptions): SniffResult {
  const whole = feed([bytes], opts);
  for (const chunks of chunkings(bytes, seed, 20)) {
    assert.deepEqual(summary(feed(chunks, opts)), summary(whole));
  }
  return whole;
}

interface TlsExpect {
  sni: string | undefined;
  alpn: string[];
  maxVersion: number;
}

const TLS_CAPTURES: Record<string, TlsExpect> = {
  'openssl-tls12-sni-alpn': { sni: 'api.example.test', alpn: ['h2', 'http/1.1'], maxVersion: 0x0303 },
  'openssl-tls13-sni-alpn': { sni: 'api.example.test', alpn: ['h2', 'http/1.1'], maxVersion: 0x0304 },
  'openssl-tls13-no-sni': { sni: undefined, alpn: [], maxVersion: 0x0304 },
  'curl-https-resolve': { sni: 'web.example.test', alpn: ['h2', 'http/1.1'], maxVersion: 0x0304 },
  'node-tls-sni-alpn': { sni: 'svc.example.test', alpn: ['h2', 'http/1.1'], maxVersion: 0x0304 },
};

function asTls(r: SniffResult): Extract<SniffResult, { kind: 'tls' }> {
  assert.equal(r.kind, 'tls', JSON.stringify(summary(r)));
  return r as Extract<SniffResult, { kind: 'tls' }>;
}

function asOpaque(r: SniffResult): Extract<SniffResult, { kind: 'opaque' }> {
  assert.equal(r.kind, 'opaque', JSON.stringify(summary(r)));
  return r as Extract<SniffResult, { kind: 'opaque' }>;
}

/** Re-frames a single-record ClientHello capture into records of the given payload sizes (the last takes the rest). */
function refragment(capture: Buffer, sizes: readonly number[]): Buffer {
  const recordLength = capture.readUInt16BE(3);
  const message = capture.subarray(5, 5 + recordLength);
  const version = capture.subarray(1, 3);
  const parts: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < message.length; i++) {
    const n = Math.min(sizes[i] ?? message.length, message.length - at);
    parts.push(Buffer.from([0x16, version[0] ?? 3, version[1] ?? 1, n >> 8, n & 0xff]), message.subarray(at, at + n));
    at += n;
  }
  return Buffer.concat(parts);
}

describe('protocol sniffer: TLS ClientHello captures', () => {
  let seed = 1;
  for (const [name, want] of Object.entries(TLS_CAPTURES)) {
    it(`${name}: SNI ${want.sni ?? '(none)'}, ALPN [${want.alpn.join(',')}], whole/bytewise/random chunks`, () => {
      const bytes = capture(name);
      const r = asTls(assertSameEverywhere(bytes, seed++));
      assert.equal(r.sni, want.sni);
      assert.deepEqual(r.alpn, want.alpn);
      assert.equal(r.hello.maxVersion, want.maxVersion);
      assert.equal(r.helloBytes, bytes.length, 'these captures are exactly one ClientHello');
      assert.equal(r.decidedAt, bytes.length);
      assert.ok(r.clientHello.equals(bytes.subarray(5)), 'clientHello is the handshake message without the record header');
      if (want.sni === undefined) assert.ok(!('sni' in r), 'no sni property without a server_name extension');
    });
  }

  it('node-tls-large-hello: a 2 KB hello (post-quantum sized) is read to the end, whatever the segmentation', () => {
    const bytes = capture('node-tls-large-hello');
    assert.ok(bytes.length > 2000);
    const r = asTls(assertSameEverywhere(bytes, 77));
    assert.equal(r.sni, 'big.example.test');
    assert.equal(r.alpn.length, 14);
    assert.deepEqual(r.alpn.slice(-2), ['h2', 'http/1.1']);
  });

  it('a hello spread over several TLS records (and several chunks) gives the same SNI/ALPN', () => {
    const rnd = prng(4242);
    for (const [name, want] of Object.entries(TLS_CAPTURES)) {
      const original = capture(name);
      const layouts: number[][] = [[1], [1, 1, 1, 1], [3, 100], [4], [40, 40, 40, 40, 40]];
      for (let k = 0; k < 10; k++) layouts.push(Array.from({ length: 12 }, () => 1 + rnd(80)));
      for (const sizes of layouts) {
        const bytes = refragment(original, sizes);
        const r = asTls(assertSameEverywhere(bytes, 900 + sizes.length));
        assert.equal(r.sni, want.sni);
        assert.deepEqual(r.alpn, want.alpn);
        assert.equal(r.helloBytes, bytes.length);
        assert.ok(r.clientHello.equals(original.subarray(5)));
      }
    }
  });

  it('decides at the end of the hello: bytes after it (next record, early data) are not needed nor examined', () => {
    const hello = capture('openssl-tls13-sni-alpn');
    const after = Buffer.from([0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5]);
    const r = asTls(assertSameEverywhere(Buffer.concat([hello, after]), 5));
    assert.equal(r.helloBytes, hello.length);
    assert.equal(r.decidedAt, hello.length);
    // The record carrying the hello may hold more bytes after it; the hello still ends where its length says.
    const padded = Buffer.concat([hello, Buffer.alloc(7)]);
    padded.writeUInt16BE(hello.readUInt16BE(3) + 7, 3);
    const r2 = asTls(feed([padded]));
    assert.equal(r2.helloBytes, hello.length);
  });

  it('the sniffer keeps private copies: mutating pushed chunks afterwards does not change the result', () => {
    const bytes = Buffer.from(capture('curl-https-resolve'));
    const s = createSniffer();
    const first = bytes.subarray(0, 200);
    s.push(first);
    first.fill(0);
    const r = asTls(s.push(bytes.subarray(200)));
    bytes.fill(0xff);
    assert.equal(r.sni, 'web.example.test');
    assert.ok(r.clientHello.subarray(0, 4).equals(Buffer.from([1, 0, 1, 0xfc])));
  });

  it('too-large: a hello longer than the cap is opaque as soon as its length is known', () => {
    const bytes = capture('node-tls-large-hello');
    const r = asOpaque(assertSameEverywhere(bytes, 3, { maxTlsHelloBytes: 1024 }));
    assert.equal(r.reason, 'too-large');
    assert.equal(r.decidedAt, 9, 'record header (5) + handshake header (4)');
    // Within the default cap it is fine; a cap equal to its size is enough.
    assert.equal(feed([bytes], { maxTlsHelloBytes: bytes.length }).kind, 'tls');
    assert.equal(asOpaque(feed([bytes], { maxTlsHelloBytes: bytes.length - 1 })).reason, 'too-large');
  });

  it('too-large: tiny records inflating the wire size hit the cap (bounded work, no stall)', () => {
    const original = capture('node-tls-sni-alpn');
    const bytes = refragment(original, new Array<number>(original.length).fill(1)); // 1-byte records: 6x the size
    const r = asOpaque(feed([...bytes].map((b) => Buffer.of(b)), { maxTlsHelloBytes: 1024 }));
    assert.equal(r.reason, 'too-large');
    assert.equal(r.decidedAt, 1024);
    assert.equal(feed([bytes]).kind, 'tls', 'under the default 16 KiB cap it parses');
  });
});

describe('protocol sniffer: HTTP captures', () => {
  const cases: [string, string, string, number][] = [
    ['curl-http11-get', 'GET', 'HTTP/1.1', 'GET /hello?x=1 HTTP/1.1\r\n'.length],
    ['curl-http10-get', 'GET', 'HTTP/1.0', 'GET /old HTTP/1.0\r\n'.length],
    ['curl-http11-post', 'POST', 'HTTP/1.1', 'POST /items HTTP/1.1\r\n'.length],
    ['curl-http11-upgrade-h2c', 'GET', 'HTTP/1.1', 'GET /up HTTP/1.1\r\n'.length],
  ];
  let seed = 100;
  for (const [name, method, version, lineLength] of cases) {
    it(`${name}: http1 ${method} ${version}, decided at the end of the request line (${lineLength} bytes)`, () => {
      const r = assertSameEverywhere(capture(name), seed++);
      assert.deepEqual(r, { kind: 'http1', method, version, decidedAt: lineLength });
    });
  }

  for (const name of ['curl-h2-prior-knowledge', 'nghttp-h2-prior-knowledge']) {
    it(`${name}: http2 after exactly the 24-byte preface`, () => {
      const bytes = capture(name);
      assert.ok(bytes.subarray(0, 24).equals(HTTP2_PREFACE));
      assert.deepEqual(assertSameEverywhere(bytes, seed++), { kind: 'http2', decidedAt: 24 });
      assert.equal(feed([bytes.subarray(0, 23)]).kind, 'need-more');
    });
  }

  it('curl-http11-long-url (10 KB request line): too-large at the default 8 KiB cap, http1 with a 16 KiB cap; never stalls', () => {
    const bytes = capture('curl-http11-long-url');
    const capped = asOpaque(assertSameEverywhere(bytes, 7));
    assert.equal(capped.reason, 'too-large');
    assert.equal(capped.decidedAt, DEFAULT_SNIFFER_OPTIONS.maxHttpRequestLineBytes);
    const lineEnd = bytes.indexOf('\r\n') + 2;
    assert.deepEqual(assertSameEverywhere(bytes, 8, { maxHttpRequestLineBytes: 16384 }), {
      kind: 'http1',
      method: 'GET',
      version: 'HTTP/1.1',
      decidedAt: lineEnd,
    });
  });

  it('redis-cli PING (RESP) is opaque after 3 bytes', () => {
    const bytes = capture('redis-cli-ping');
    assert.equal(bytes.toString('latin1'), '*1\r\n$4\r\nPING\r\n');
    const r = asOpaque(assertSameEverywhere(bytes, 9));
    assert.equal(r.reason, 'unrecognized');
    assert.equal(r.decidedAt, 3);
  });
});

describe('protocol sniffer: decision rules on hand-made input', () => {
  function text(s: string, opts?: SnifferOptions): SniffResult {
    const bytes = Buffer.from(s, 'latin1');
    return assertSameEverywhere(bytes, s.length, opts);
  }

  it('HTTP/1: any token method, any HTTP/1.x minor, CRLF or bare LF', () => {
    assert.deepEqual(text('PROPFIND /d HTTP/1.1\r\n'), { kind: 'http1', method: 'PROPFIND', version: 'HTTP/1.1', decidedAt: 22 });
    assert.deepEqual(text('CONNECT db:5432 HTTP/1.1\r\nHost: db\r\n'), { kind: 'http1', method: 'CONNECT', version: 'HTTP/1.1', decidedAt: 26 });
    assert.deepEqual(text('OPTIONS * HTTP/1.0\n'), { kind: 'http1', method: 'OPTIONS', version: 'HTTP/1.0', decidedAt: 19 });
    assert.deepEqual(text('GET http://x/ HTTP/1.9\r\n'), { kind: 'http1', method: 'GET', version: 'HTTP/1.9', decidedAt: 24 });
    assert.deepEqual(text('PRI / HTTP/1.1\r\n'), { kind: 'http1', method: 'PRI', version: 'HTTP/1.1', decidedAt: 16 });
    assert.equal(text('GET /caf\xe9 HTTP/1.1\r\n').kind, 'http1', 'obs-text in the target is left to the HTTP parser');
  });

  it('HTTP/1: need-more while the request line is incomplete, at every prefix', () => {
    const line = 'GET /a/b?c=d HTTP/1.1\r';
    for (let n = 1; n <= line.length; n++) assert.equal(sniff(Buffer.from(line.slice(0, n))).kind, 'need-more', line.slice(0, n));
  });

  it('not HTTP/1: opaque at the first byte that rules it out', () => {
    const cases: [string, number][] = [
      ['get foo\r\n', 8], // memcached text protocol: a token and a target, but no HTTP version
      ['EHLO example.org\r\n', 17], // SMTP client
      ['GET /\r\n', 6], // HTTP/0.9
      ['GET / HTTP/2.0\r\n', 12],
      ['GET / http/1.1\r\n', 7],
      ['GET  / HTTP/1.1\r\n', 5], // two spaces
      ['GET /\tx HTTP/1.1\r\n', 6],
      ['GET / HTTP/1.1\rX', 16],
      ['GET / HTTP/1.1 \r\n', 15],
      ['\r\nGET / HTTP/1.1\r\n', 1], // leading empty line: not accepted (documented)
      ['SSH-2.0-OpenSSH_9.2p1\r\n', 22],
      [' GET', 1],
      ['GET\r\n', 4],
      ['A'.repeat(33), 33], // method token longer than 32
    ];
    for (const [s, at] of cases) {
      const r = asOpaque(text(s));
      assert.equal(r.reason, 'unrecognized', s);
      assert.equal(r.decidedAt, at, `${JSON.stringify(s)}: ${r.detail}`);
    }
  });

  it('HTTP/2 preface: opaque as soon as a byte diverges (after the HTTP/1 reading is also ruled out)', () => {
    const preface = HTTP2_PREFACE.toString('latin1');
    for (let i = 13; i < 24; i++) {
      const bad = preface.slice(0, i) + '#';
      const r = asOpaque(text(bad));
      assert.equal(r.decidedAt, i + 1, `diverging at byte ${i}`);
    }
    // 'PRI * HTTP/2.0' is not an HTTP/1 request line, so from byte 13 on only the preface is alive.
    assert.equal(sniff(Buffer.from(preface.slice(0, 23))).kind, 'need-more');
  });

  it('binary first bytes are opaque after one byte', () => {
    for (const b of [0x00, 0x01, 0x15, 0x17, 0x80, 0xff, 0x20, 0x0d, 0x22, 0x28]) {
      const r = asOpaque(feed([Buffer.of(b, 0x03, 0x01)]));
      assert.equal(r.reason, 'unrecognized');
      assert.equal(r.decidedAt, 1);
    }
    // PostgreSQL StartupMessage / SSLRequest start with a length: 0x00.
    assert.equal(asOpaque(feed([Buffer.from('0000000804d2162f', 'hex')])).decidedAt, 1);
  });

  it('TLS record header checks: version, zero-length and oversized records, non-ClientHello handshakes', () => {
    const cases: [string, 'unrecognized' | 'tls-malformed', number][] = [
      ['1602', 'unrecognized', 2],
      ['160305', 'unrecognized', 3],
      ['1603010000', 'tls-malformed', 5],
      ['1603014001', 'tls-malformed', 5], // 16385 > 2^14
      ['160301000402000000', 'unrecognized', 6], // ServerHello
      ['16030100040b000000', 'unrecognized', 6], // Certificate
      ['160303000401000000', 'tls-malformed', 9], // ClientHello of length 0
    ];
    for (const [hex, reason, at] of cases) {
      const r = asOpaque(assertSameEverywhere(Buffer.from(hex, 'hex'), at));
      assert.equal(r.reason, reason, hex);
      assert.equal(r.decidedAt, at, `${hex}: ${r.detail}`);
    }
  });

  it('TLS: a record of another content type before the hello ends is tls-malformed', () => {
    const bytes = refragment(capture('openssl-tls12-sni-alpn'), [50]);
    bytes[55] = 0x17; // second record header: application_data instead of handshake
    const r = asOpaque(assertSameEverywhere(bytes, 11));
    assert.equal(r.reason, 'tls-malformed');
    assert.equal(r.decidedAt, 56);
    const zero = Buffer.concat([bytes.subarray(0, 55), Buffer.from('1603010000', 'hex')]);
    assert.equal(asOpaque(feed([zero])).reason, 'tls-malformed');
  });
});

describe('protocol sniffer: finish() and the caller contract', () => {
  it('eof / timeout / server-first turn an undecided sniffer opaque; a decided one is unchanged', () => {
    const hello = capture('curl-https-resolve');
    for (const reason of ['eof', 'timeout', 'server-first'] as const) {
      const s = createSniffer();
      assert.equal(s.push(hello.subarray(0, 100)).kind, 'need-more');
      const r = s.finish(reason);
      assert.equal(r.kind, 'opaque');
      assert.equal(r.kind === 'opaque' && r.reason, reason);
      assert.equal(r.decidedAt, 100);
      assert.match(r.kind === 'opaque' ? r.detail : '', /TLS ClientHello \(95 of 512 handshake bytes\)/);
      assert.equal(s.push(hello.subarray(100)), r, 'pushes after finish() are ignored');
      assert.equal(s.bytesSeen, 100);
    }
    const quiet = createSniffer().finish('server-first');
    assert.deepEqual(quiet, { kind: 'opaque', reason: 'server-first', detail: 'no bytes received', decidedAt: 0 });
    const decided = createSniffer();
    const d = decided.push(hello);
    assert.equal(decided.finish('timeout'), d);
  });

  it('empty chunks change nothing', () => {
    const s = createSniffer();
    assert.equal(s.push(Buffer.alloc(0)).kind, 'need-more');
    assert.equal(s.bytesSeen, 0);
    assert.equal(s.push(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'http1');
  });

  it('bytesSeen counts the whole deciding chunk; later chunks are not counted', () => {
    const s = createSniffer();
    const a = Buffer.from('GET / HT');
    const b = Buffer.from('TP/1.1\r\nHost: a\r\n\r\n');
    s.push(a);
    const r = s.push(b);
    assert.equal(r.kind === 'http1' && r.decidedAt, 16);
    assert.equal(s.bytesSeen, a.length + b.length);
    s.push(Buffer.from('more'));
    assert.equal(s.bytesSeen, a.length + b.length);
  });

  it('sniff() accepts one buffer or the caller-owned chunk list', () => {
    const bytes = capture('node-tls-sni-alpn');
    const list = [bytes.subarray(0, 10), bytes.subarray(10, 300), bytes.subarray(300)];
    assert.deepEqual(summary(sniff(list)), summary(sniff(bytes)));
    assert.equal(sniff([]).kind, 'need-more');
  });

  it('invalid caps are a programming error (RangeError); input never throws', () => {
    assert.throws(() => createSniffer({ maxTlsHelloBytes: 10 }), RangeError);
    assert.throws(() => createSniffer({ maxHttpRequestLineBytes: 1.5 }), RangeError);
    assert.throws(() => createSniffer({ maxHttpRequestLineBytes: 2 ** 21 }), RangeError);
    assert.doesNotThrow(() => createSniffer({ maxTlsHelloBytes: 64, maxHttpRequestLineBytes: 1024 * 1024 }));
  });
});

describe('protocol sniffer: seeded fuzz (never throws, segmentation-independent)', () => {
  const KINDS = new Set(['need-more', 'tls', 'http1', 'http2', 'opaque']);

  function mutate(src: Buffer, rnd: (n: number) => number): Buffer {
    const b = Buffer.from(src);
    const op = rnd(7);
    switch (op) {
      case 0: // flip a bit anywhere
        for (let k = 0, n = 1 + rnd(4); k < n; k++) {
          const i = rnd(b.length);
          b[i] = (b[i] ?? 0) ^ (1 << rnd(8));
        }
        return b;
      case 1: // truncate
        return b.subarray(0, rnd(b.length));
      case 2: // overwrite a likely length field (16-bit) in the first 120 bytes with an extreme value
      {
        const i = rnd(Math.min(120, b.length - 1));
        b.writeUInt16BE([0, 1, 0xffff, 0x7fff, 0x4001, rnd(0x10000)][rnd(6)] ?? 0, i);
        return b;
      }
      case 3: // insert random bytes
      {
        const i = rnd(b.length);
        const ins = Buffer.from(Array.from({ length: 1 + rnd(16) }, () => rnd(256)));
        return Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]);
      }
      case 4: // delete a range
      {
        const i = rnd(b.length);
        return Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + rnd(32))]);
      }
      case 5: // duplicate a range (duplicate extensions, nested lengths now lying)
      {
        const i = rnd(b.length);
        const n = 1 + rnd(64);
        return Buffer.concat([b.subarray(0, i + n), b.subarray(i, i + n), b.subarray(i + n)]);
      }
      default: // random byte at a random place within the headers
        b[rnd(Math.min(b.length, 60))] = rnd(256);
        return b;
    }
  }

  const sources = [
    'openssl-tls12-sni-alpn',
    'openssl-tls13-sni-alpn',
    'openssl-tls13-no-sni',
    'curl-https-resolve',
    'node-tls-sni-alpn',
    'node-tls-large-hello',
    'curl-http11-get',
    'nghttp-h2-prior-knowledge',
  ];
  for (const [idx, name] of sources.entries()) {
    it(`${name}: 300 mutations, whole and chunked`, () => {
      const rnd = prng(0xc0ffee + idx);
      const src = capture(name);
      const counts: Record<string, number> = {};
      for (let k = 0; k < 300; k++) {
        const bytes = mutate(src, rnd);
        let whole: SniffResult;
        try {
          whole = feed([bytes]);
          const r2 = feed(chunkings(bytes, k, 1)[2] ?? [bytes]);
          const r3 = feed(chunkings(bytes, k, 0)[1] ?? [bytes]);
          assert.deepEqual(summary(r2), summary(whole), 'same result in random chunks');
          assert.deepEqual(summary(r3), summary(whole), 'same result byte by byte');
        } catch (e) {
          throw new Error(`mutation ${k} of ${name} (${bytes.toString('hex').slice(0, 200)}): ${String(e)}`, { cause: e });
        }
        assert.ok(KINDS.has(whole.kind));
        counts[whole.kind === 'opaque' ? whole.reason : whole.kind] = (counts[whole.kind === 'opaque' ? whole.reason : whole.kind] ?? 0) + 1;
        if (whole.kind === 'opaque') assert.notEqual(whole.reason, 'internal-error', whole.detail);
        if (whole.kind !== 'need-more') assert.ok(whole.decidedAt <= bytes.length);
        else {
          const s = createSniffer();
          s.push(bytes);
          const fin: SniffDecision = s.finish('eof');
          assert.equal(fin.kind === 'opaque' && fin.reason, 'eof');
        }
      }
      // The mutations exercise more than one outcome (a fuzz that only ever hits one branch proves little).
      assert.ok(Object.keys(counts).length >= 2, JSON.stringify(counts));
    });
  }

  it('2000 random byte strings (with TLS/HTTP-looking prefixes) never throw', () => {
    const rnd = prng(31337);
    const prefixes = [Buffer.alloc(0), Buffer.from('160301', 'hex'), Buffer.from('1603010200010001fc0303', 'hex'), Buffer.from('GET /'), Buffer.from('PRI * HTTP/2.0\r\n')];
    for (let k = 0; k < 2000; k++) {
      const body = Buffer.from(Array.from({ length: rnd(300) }, () => rnd(256)));
      const bytes = Buffer.concat([prefixes[rnd(prefixes.length)] ?? Buffer.alloc(0), body]);
      const r = feed(chunkings(bytes, k, 1)[2] ?? [bytes], { maxTlsHelloBytes: 64 + rnd(4096) });
      if (r.kind === 'opaque') assert.notEqual(r.reason, 'internal-error', r.detail);
    }
  });
});
