// Parses one complete TLS ClientHello handshake message (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2) without a TLS library:
// the sniffer needs SNI and ALPN before deciding whether to pass the connection through, terminate it or route it.
// Pure and total: every length is checked against its enclosing vector, and any inconsistency yields
// { ok: false, detail } instead of an exception. Strict where lenience would let two parsers disagree about the
// same bytes (duplicate extensions, two host names, trailing bytes), because routing decisions depend on the result.

/** Handshake type of a ClientHello. */
export const HANDSHAKE_CLIENT_HELLO = 1;
/** Extension numbers read here (IANA TLS ExtensionType registry). */
export const EXT_SERVER_NAME = 0;
export const EXT_ALPN = 16;
export const EXT_SUPPORTED_VERSIONS = 43;

/** Smallest possible ClientHello body: version 2 + random 32 + session id 1 + suites 2+2 + compression 1+1. */
export const MIN_CLIENT_HELLO_BODY = 41;

export interface ClientHelloInfo {
  /** legacy_version (0x0303 for TLS 1.2 and 1.3 hellos). */
  readonly legacyVersion: number;
  /** Versions from supported_versions (ext 43), in offered order, GREASE values removed; [] when absent. */
  readonly supportedVersions: readonly number[];
  /** Highest offered version: max(supportedVersions) or legacyVersion when the extension is absent. */
  readonly maxVersion: number;
  /** server_name host_name, lower-cased; undefined when the extension is absent. */
  readonly sni: string | undefined;
  /** ALPN protocol names (ext 16) in offered order (bytes decoded as latin1); [] when absent. */
  readonly alpn: readonly string[];
  /** Cipher suite values in offered order (GREASE included), for fingerprinting. */
  readonly cipherSuites: readonly number[];
  /** Extension types in the order sent (GREASE included), for fingerprinting. */
  readonly extensionTypes: readonly number[];
}

export type ClientHelloParse =
  | { readonly ok: true; readonly hello: ClientHelloInfo }
  | { readonly ok: false; readonly detail: string };

/** GREASE values (RFC 8701): 0x0A0A, 0x1A1A, ... 0xFAFA. */
export function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && (v >> 8) === (v & 0xff);
}

class Malformed {
  readonly detail: string;
  constructor(detail: string) {
    this.detail = detail;
  }
}

/** A bounded cursor over bytes[start, end); every read past `end` throws Malformed (caught in parseClientHello). */
class Reader {
  readonly #bytes: Uint8Array;
  #pos: number;
  readonly #end: number;

  constructor(bytes: Uint8Array, start: number, end: number) {
    this.#bytes = bytes;
    this.#pos = start;
    this.#end = end;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  #need(n: number, what: string): void {
    if (n > this.#end - this.#pos) {
      throw new Malformed(`${what}: needs ${n} byte(s), only ${this.#end - this.#pos} left in its enclosing field`);
    }
  }

  u8(what: string): number {
    this.#need(1, what);
    return this.#bytes[this.#pos++] ?? 0;
  }

  u16(what: string): number {
    this.#need(2, what);
    const v = ((this.#bytes[this.#pos] ?? 0) << 8) | (this.#bytes[this.#pos + 1] ?? 0);
    this.#pos += 2;
    return v;
  }

  u24(what: string): number {
    this.#need(3, what);
    const b = this.#bytes;
    const p = this.#pos;
    this.#pos += 3;
    return ((b[p] ?? 0) << 16) | ((b[p + 1] ?? 0) << 8) | (b[p + 2] ?? 0);
  }

  skip(n: number, what: string): void {
    this.#need(n, what);
    this.#pos += n;
  }

  bytes(n: number, what: string): Uint8Array {
    this.#need(n, what);
    const out = this.#bytes.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  /** A reader over the next n bytes (a length-prefixed vector body); this reader moves past them. */
  sub(n: number, what: string): Reader {
    this.#need(n, what);
    const r = new Reader(this.#bytes, this.#pos, this.#pos + n);
    this.#pos += n;
    return r;
  }

  expectEnd(what: string): void {
    if (this.#pos !== this.#end) throw new Malformed(`${what}: ${this.#end - this.#pos} unexpected trailing byte(s)`);
  }
}

/**
 * Parses a complete handshake message (4-byte header: type 1 + uint24 length, then the body). The message must be
 * exactly header + length bytes long.
 */
export function parseClientHello(message: Uint8Array): ClientHelloParse {
  try {
    return { ok: true, hello: parse(message) };
  } catch (e) {
    if (e instanceof Malformed) return { ok: false, detail: e.detail };
    // Not reachable by construction; kept so that this function is total even if a bug slips in.
    return { ok: false, detail: `internal parser error: ${e instanceof Error ? e.message : String(e)}` };
  }
}

function parse(message: Uint8Array): ClientHelloInfo {
  const msg = new Reader(message, 0, message.length);
  const type = msg.u8('handshake type');
  if (type !== HANDSHAKE_CLIENT_HELLO) throw new Malformed(`handshake type ${type} is not ClientHello (1)`);
  const length = msg.u24('handshake length');
  if (length !== msg.remaining) {
    throw new Malformed(`handshake length ${length} does not match the ${msg.remaining} byte(s) given`);
  }
  if (length < MIN_CLIENT_HELLO_BODY) {
    throw new Malformed(`ClientHello body of ${length} byte(s) is shorter than the minimum ${MIN_CLIENT_HELLO_BODY}`);
  }
  const body = msg.sub(length, 'ClientHello body');

  const legacyVersion = body.u16('legacy_version');
  if (legacyVersion >> 8 !== 3) throw new Malformed(`legacy_version 0x${hex16(legacyVersion)} is not 0x03xx`);
  body.skip(32, 'random');
  const sessionIdLength = body.u8('legacy_session_id length');
  if (sessionIdLength > 32) throw new Malformed(`legacy_session_id length ${sessionIdLength} exceeds 32`);
  body.skip(sessionIdLength, 'legacy_session_id');

  const suitesLength = body.u16('cipher_suites length');
  if (suitesLength < 2 || suitesLength % 2 !== 0) {
    throw new Malformed(`cipher_suites length ${suitesLength} is not a non-zero even number`);
  }
  const suites = body.sub(suitesLength, 'cipher_suites');
  const cipherSuites: number[] = [];
  while (suites.remaining > 0) cipherSuites.push(suites.u16('cipher suite'));

  const compressionLength = body.u8('legacy_compression_methods length');
  if (compressionLength < 1) throw new Malformed('legacy_compression_methods is empty');
  body.skip(compressionLength, 'legacy_compression_methods');

  let sni: string | undefined;
  let alpn: string[] = [];
  let supportedVersions: number[] = [];
  const extensionTypes: number[] = [];

  // Extensions are optional before TLS 1.3 (RFC 5246 §7.4.1.2: the body may end after compression_methods).
  if (body.remaining > 0) {
    const extsLength = body.u16('extensions length');
    const exts = body.sub(extsLength, 'extensions');
    body.expectEnd('ClientHello body');
    const seen = new Set<number>();
    while (exts.remaining > 0) {
      const extType = exts.u16('extension type');
      const extLength = exts.u16(`extension ${extType} length`);
      const ext = exts.sub(extLength, `extension ${extType} data`);
      if (seen.has(extType)) throw new Malformed(`extension ${extType} appears more than once`);
      seen.add(extType);
      extensionTypes.push(extType);
      if (extType === EXT_SERVER_NAME) sni = parseServerName(ext);
      else if (extType === EXT_ALPN) alpn = parseAlpn(ext);
      else if (extType === EXT_SUPPORTED_VERSIONS) supportedVersions = parseSupportedVersions(ext);
    }
  }

  const maxVersion = supportedVersions.length > 0 ? Math.max(...supportedVersions) : legacyVersion;
  return { legacyVersion, supportedVersions, maxVersion, sni, alpn, cipherSuites, extensionTypes };
}

/** RFC 6066 §3: ServerNameList <1..2^16-1> of { NameType name_type; HostName host_name<1..2^16-1> }. */
function parseServerName(ext: Reader): string {
  const listLength = ext.u16('server_name list length');
  if (listLength < 1) throw new Malformed('server_name list is empty');
  const list = ext.sub(listLength, 'server_name list');
  ext.expectEnd('server_name extension');
  let host: string | undefined;
  while (list.remaining > 0) {
    const nameType = list.u8('server_name name_type');
    // host_name (0) is the only type ever defined; the list cannot be walked past an unknown type's encoding.
    if (nameType !== 0) throw new Malformed(`server_name name_type ${nameType} is unknown`);
    const nameLength = list.u16('host_name length');
    if (nameLength < 1) throw new Malformed('host_name is empty');
    const name = list.bytes(nameLength, 'host_name');
    if (host !== undefined) throw new Malformed('server_name carries more than one host_name');
    host = validHostName(name);
  }
  if (host === undefined) throw new Malformed('server_name list has no host_name');
  return host;
}

/**
 * A DNS host name as RFC 6066 requires it (ASCII, no trailing dot), lower-cased. Underscores are accepted (seen in
 * the wild); NUL, spaces, non-ASCII, empty labels, labels over 63 and names over 253 bytes are rejected so that a
 * hostile SNI cannot confuse a route lookup or a log line.
 */
function validHostName(name: Uint8Array): string {
  if (name.length > 253) throw new Malformed(`host_name of ${name.length} bytes exceeds 253`);
  let label = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name[i] ?? 0;
    if (c === 0x2e) {
      if (label === 0) throw new Malformed('host_name has an empty label or a leading/trailing dot');
      label = 0;
      continue;
    }
    const ok =
      (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x5f;
    if (!ok) throw new Malformed(`host_name contains byte 0x${c.toString(16).padStart(2, '0')}`);
    if (++label > 63) throw new Malformed('host_name has a label longer than 63 bytes');
  }
  if (label === 0) throw new Malformed('host_name has an empty label or a leading/trailing dot');
  return Buffer.from(name.buffer, name.byteOffset, name.length).toString('latin1').toLowerCase();
}

/** RFC 7301 §3.1: ProtocolNameList <2..2^16-1> of ProtocolName <1..2^8-1>. */
function parseAlpn(ext: Reader): string[] {
  const listLength = ext.u16('ALPN list length');
  if (listLength < 2) throw new Malformed(`ALPN list length ${listLength} is below the minimum 2`);
  const list = ext.sub(listLength, 'ALPN list');
  ext.expectEnd('ALPN extension');
  const names: string[] = [];
  while (list.remaining > 0) {
    const n = list.u8('ALPN protocol name length');
    if (n < 1) throw new Malformed('ALPN protocol name is empty');
    const name = list.bytes(n, 'ALPN protocol name');
    names.push(Buffer.from(name.buffer, name.byteOffset, name.length).toString('latin1'));
  }
  return names;
}

/** RFC 8446 §4.2.1 (ClientHello form): ProtocolVersion versions <2..254>. GREASE values are dropped. */
function parseSupportedVersions(ext: Reader): number[] {
  const listLength = ext.u8('supported_versions length');
  if (listLength < 2 || listLength % 2 !== 0) {
    throw new Malformed(`supported_versions length ${listLength} is not a non-zero even number`);
  }
  const list = ext.sub(listLength, 'supported_versions');
  ext.expectEnd('supported_versions extension');
  const versions: number[] = [];
  while (list.remaining > 0) {
    const v = list.u16('supported version');
    if (!isGrease(v)) versions.push(v);
  }
  return versions;
}

function hex16(v: number): string {
  return v.toString(16).padStart(4, '0');
}
