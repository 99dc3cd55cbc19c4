// ClientHello parsing: hand-built messages for every rule, the real captures, and every truncation of them with the
// handshake length re-written to match (so the nested vectors, not the outer length, must catch the truncation).
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isGrease, parseClientHello, type ClientHelloInfo } from '../../../src/l4/detect/tls-client-hello.js';
import { TlsHelloAssembler } from '../../../src/l4/detect/tls-hello-assembler.js';

const CAPTURES = new URL('../../../../test/fixtures/captures/', import.meta.url);
function captureMessage(name: string): Buffer {
  const rec = readFileSync(new URL(`${name}.bin`, CAPTURES));
  return rec.subarray(5, 5 + rec.readUInt16BE(3));
}

const u8 = (n: number): Buffer => Buffer.of(n);
const u16 = (n: number): Buffer => Buffer.of(n >> 8, n & 0xff);
const vec8 = (b: Buffer): Buffer => Buffer.concat([u8(b.length), b]);
const vec16 = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);
const ext = (type: number, data: Buffer): Buffer => Buffer.concat([u16(type), vec16(data)]);
const sniExt = (...names: string[]): Buffer =>
  ext(0, vec16(Buffer.concat(names.map((n) => Buffer.concat([u8(0), vec16(Buffer.from(n, 'latin1'))])))));
const alpnExt = (...names: string[]): Buffer => ext(16, vec16(Buffer.concat(names.map((n) => vec8(Buffer.from(n, 'latin1'))))));
const versionsExt = (...v: number[]): Buffer => ext(43, vec8(Buffer.concat(v.map(u16))));

interface HelloSpec {
  version?: number;
  sessionId?: Buffer;
  suites?: Buffer;
  compression?: Buffer;
  /** undefined: no extensions block at all (TLS 1.2 and earlier allow that). */
  extensions?: Buffer[];
  /** Raw bytes appended after the extensions block. */
  trailing?: Buffer;
}

function helloBody(spec: HelloSpec): Buffer {
  const parts = [
    u16(spec.version ?? 0x0303),
    Buffer.alloc(32, 0xab),
    vec8(spec.sessionId ?? Buffer.alloc(32, 1)),
    spec.suites ?? vec16(Buffer.concat([u16(0x1301), u16(0xc02f)])),
    spec.compression ?? vec8(u8(0)),
  ];
  if (spec.extensions !== undefined) parts.push(vec16(Buffer.concat(spec.extensions)));
  if (spec.trailing !== undefined) parts.push(spec.trailing);
  return Buffer.concat(parts);
}

function message(body: Buffer, type = 1): Buffer {
  return Buffer.concat([u8(type), u8(body.length >> 16), u16(body.length & 0xffff), body]);
}

function ok(spec: HelloSpec): ClientHelloInfo {
  const r = parseClientHello(message(helloBody(spec)));
  assert.ok(r.ok, r.ok ? '' : r.detail);
  return r.hello;
}

function bad(msg: Buffer, detail: RegExp): void {
  const r = parseClientHello(msg);
  assert.equal(r.ok, false, 'expected a parse failure');
  if (!r.ok) assert.match(r.detail, detail);
}

const badSpec = (spec: HelloSpec, detail: RegExp): void => bad(message(helloBody(spec)), detail);

describe('parseClientHello: valid hellos', () => {
  it('no extensions block (TLS 1.2-style): no SNI, no ALPN, version from legacy_version', () => {
    const h = ok({});
    assert.equal(h.sni, undefined);
    assert.deepEqual(h.alpn, []);
    assert.equal(h.maxVersion, 0x0303);
    assert.deepEqual(h.cipherSuites, [0x1301, 0xc02f]);
    assert.deepEqual(h.extensionTypes, []);
  });

  it('SNI lower-cased, ALPN in order, supported_versions without GREASE, extension order kept (GREASE included)', () => {
    const h = ok({
      extensions: [ext(0x1a1a, Buffer.alloc(0)), sniExt('API.Example.TEST'), alpnExt('h2', 'http/1.1'), versionsExt(0x7a7a, 0x0304, 0x0303), ext(0xfafa, u8(0))],
    });
    assert.equal(h.sni, 'api.example.test');
    assert.deepEqual(h.alpn, ['h2', 'http/1.1']);
    assert.deepEqual(h.supportedVersions, [0x0304, 0x0303]);
    assert.equal(h.maxVersion, 0x0304);
    assert.deepEqual(h.extensionTypes, [0x1a1a, 0, 16, 43, 0xfafa]);
  });

  it('accepts underscores, digits, single-label names, 63-byte labels and 253-byte names', () => {
    assert.equal(ok({ extensions: [sniExt('_svc._tcp.x-1.example')] }).sni, '_svc._tcp.x-1.example');
    assert.equal(ok({ extensions: [sniExt('localhost')] }).sni, 'localhost');
    const label = 'a'.repeat(63);
    assert.equal(ok({ extensions: [sniExt(`${label}.b`)] }).sni, `${label}.b`);
    const long = [label, label, label, 'a'.repeat(61)].join('.');
    assert.equal(long.length, 253);
    assert.equal(ok({ extensions: [sniExt(long)] }).sni, long);
  });

  it('empty session id, many suites, several compression methods', () => {
    const suites = vec16(Buffer.concat(Array.from({ length: 100 }, (_, i) => u16(i))));
    const h = ok({ sessionId: Buffer.alloc(0), suites, compression: vec8(Buffer.of(1, 0)), extensions: [] });
    assert.equal(h.cipherSuites.length, 100);
  });

  it('isGrease', () => {
    for (let i = 0; i < 16; i++) assert.ok(isGrease(((i << 4) | 0xa) * 0x101));
    for (const v of [0x0a1a, 0x0000, 0x0304, 0x1a0a, 0x0a0b]) assert.equal(isGrease(v), false, v.toString(16));
  });
});

describe('parseClientHello: malformed and hostile hellos never throw', () => {
  it('handshake header: type, length mismatch, too short', () => {
    bad(message(helloBody({}), 2), /type 2 is not ClientHello/);
    const m = message(helloBody({}));
    bad(m.subarray(0, m.length - 1), /does not match/);
    bad(Buffer.concat([m, u8(0)]), /does not match/);
    bad(message(Buffer.alloc(40)), /shorter than the minimum/);
    bad(Buffer.alloc(0), /handshake type/);
    bad(Buffer.of(1, 0, 0), /handshake length/);
  });

  it('fixed fields: legacy_version, session id > 32, cipher suites empty/odd/overflowing, compression empty', () => {
    badSpec({ version: 0x0200 }, /legacy_version/);
    badSpec({ sessionId: Buffer.alloc(33) }, /exceeds 32/);
    badSpec({ suites: u16(0), extensions: [] }, /cipher_suites length 0/);
    badSpec({ suites: Buffer.concat([u16(3), Buffer.alloc(3)]), extensions: [] }, /cipher_suites length 3/);
    badSpec({ suites: Buffer.concat([u16(0xfffe), Buffer.alloc(4)]) }, /cipher_suites: needs 65534/);
    badSpec({ compression: vec8(Buffer.alloc(0)), extensions: [] }, /compression_methods is empty/);
  });

  it('nested length overflows: extension longer than the block, block longer than the body, truncated header', () => {
    const sni = sniExt('a.example');
    const lying = Buffer.from(sni);
    lying.writeUInt16BE(500, 2); // extension data length beyond the extensions block
    badSpec({ extensions: [lying] }, /extension 0 data: needs 500/);
    badSpec({ trailing: Buffer.concat([u16(200), Buffer.alloc(10)]) }, /extensions: needs 200/);
    badSpec({ extensions: [sni, Buffer.of(0, 16, 0)] }, /extension 16 length/);
    badSpec({ extensions: [Buffer.of(0)] }, /extension type/);
    // server_name list longer than its extension.
    badSpec({ extensions: [ext(0, Buffer.concat([u16(100), u8(0), vec16(Buffer.from('a.b'))]))] }, /server_name list: needs 100/);
    // host_name longer than its list.
    badSpec({ extensions: [ext(0, vec16(Buffer.concat([u8(0), u16(60), Buffer.from('a.b')])))] }, /host_name: needs 60/);
    // ALPN name longer than its list; list longer than the extension.
    badSpec({ extensions: [ext(16, vec16(Buffer.concat([u8(9), Buffer.from('h2')])))] }, /ALPN protocol name: needs 9/);
    badSpec({ extensions: [ext(16, Buffer.concat([u16(40), vec8(Buffer.from('h2'))]))] }, /ALPN list: needs 40/);
  });

  it('trailing bytes after extensions, or inside an extension, are rejected', () => {
    badSpec({ extensions: [], trailing: u8(0) }, /ClientHello body: 1 unexpected trailing/);
    badSpec({ extensions: [ext(0, Buffer.concat([vec16(Buffer.concat([u8(0), vec16(Buffer.from('a.b'))])), u8(7)]))] }, /server_name extension: 1 unexpected/);
    badSpec({ extensions: [ext(16, Buffer.concat([vec16(vec8(Buffer.from('h2'))), u8(7)]))] }, /ALPN extension: 1 unexpected/);
  });

  it('duplicate extensions (SNI confusion) are rejected', () => {
    badSpec({ extensions: [sniExt('a.example'), sniExt('b.example')] }, /extension 0 appears more than once/);
    badSpec({ extensions: [alpnExt('h2'), alpnExt('http/1.1')] }, /extension 16 appears more than once/);
  });

  it('server_name: empty list, two host names, unknown name type, empty name, bad characters', () => {
    badSpec({ extensions: [ext(0, Buffer.alloc(0))] }, /server_name list length/);
    badSpec({ extensions: [ext(0, u16(0))] }, /server_name list is empty/);
    badSpec({ extensions: [sniExt('a.example', 'b.example')] }, /more than one host_name/);
    badSpec({ extensions: [ext(0, vec16(Buffer.concat([u8(1), vec16(Buffer.from('a.b'))])))] }, /name_type 1/);
    badSpec({ extensions: [sniExt('')] }, /host_name is empty/);
    for (const name of ['a\0.example', 'a b.example', 'example.com.', '.example.com', 'a..b', 'caf\xe9.example', 'a/b', 'a:443', 'a'.repeat(64) + '.b']) {
      badSpec({ extensions: [sniExt(name)] }, /host_name/);
    }
    badSpec({ extensions: [sniExt(['a'.repeat(63), 'a'.repeat(63), 'a'.repeat(63), 'a'.repeat(62)].join('.'))] }, /exceeds 253/);
  });

  it('ALPN: short list, empty protocol name; supported_versions: odd or empty', () => {
    badSpec({ extensions: [ext(16, u16(0))] }, /ALPN list length 0/);
    badSpec({ extensions: [ext(16, vec16(Buffer.concat([u8(0), vec8(Buffer.from('h2'))])))] }, /ALPN protocol name is empty/);
    badSpec({ extensions: [ext(43, vec8(Buffer.of(3, 4, 3)))] }, /supported_versions length 3/);
    badSpec({ extensions: [ext(43, u8(0))] }, /supported_versions length 0/);
  });
});

describe('parseClientHello: real captures', () => {
  const names = ['openssl-tls12-sni-alpn', 'openssl-tls13-sni-alpn', 'openssl-tls13-no-sni', 'curl-https-resolve', 'node-tls-sni-alpn', 'node-tls-large-hello'];

  it('all parse; TLS 1.3 hellos offer 0x0304 and a key_share (51)', () => {
    for (const name of names) {
      const r = parseClientHello(captureMessage(name));
      assert.ok(r.ok, `${name}: ${r.ok ? '' : r.detail}`);
      if (name !== 'openssl-tls12-sni-alpn') {
        assert.equal(r.hello.maxVersion, 0x0304, name);
        assert.ok(r.hello.extensionTypes.includes(51), name);
      }
    }
  });

  it('every truncation (outer length fixed up to match) fails cleanly, except a cut right after compression_methods', () => {
    for (const name of names) {
      const full = captureMessage(name);
      let accepted = 0;
      for (let len = 4; len < full.length; len++) {
        const m = Buffer.from(full.subarray(0, len));
        const bodyLen = len - 4;
        m[1] = (bodyLen >> 16) & 0xff;
        m.writeUInt16BE(bodyLen & 0xffff, 2);
        const r = parseClientHello(m);
        if (r.ok) {
          accepted++;
          assert.deepEqual(r.hello.extensionTypes, [], `${name} cut at ${len} accepted only as an extension-less hello`);
        }
      }
      assert.equal(accepted, 1, name);
    }
  });
});

describe('TlsHelloAssembler', () => {
  it('reports need-more, then complete with the stream offset; ignores bytes after the hello', () => {
    const msg = message(helloBody({ extensions: [sniExt('a.example')] }));
    const rec = Buffer.concat([Buffer.of(0x16, 3, 1), u16(msg.length), msg, Buffer.of(0x17, 3, 3, 0, 1, 0)]);
    const a = new TlsHelloAssembler(16384);
    assert.equal(a.push(rec.subarray(0, 20)).kind, 'need-more');
    assert.deepEqual(a.progress(), { have: 15, expected: msg.length });
    const s = a.push(rec.subarray(20));
    assert.equal(s.kind, 'complete');
    if (s.kind === 'complete') {
      assert.equal(s.wireBytes, 5 + msg.length);
      assert.ok(s.message.equals(msg));
    }
  });

  it('a hello whose handshake header itself is split over records', () => {
    const msg = message(helloBody({ extensions: [alpnExt('h2')] }));
    const recs = Buffer.concat([
      Buffer.of(0x16, 3, 1, 0, 2), msg.subarray(0, 2),
      Buffer.of(0x16, 3, 3, 0, 1), msg.subarray(2, 3),
      Buffer.of(0x16, 3, 3), u16(msg.length - 3), msg.subarray(3),
    ]);
    const s = new TlsHelloAssembler(16384).push(recs);
    assert.equal(s.kind, 'complete');
    if (s.kind === 'complete') assert.equal(s.wireBytes, recs.length);
  });
});
