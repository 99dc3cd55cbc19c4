// The rules of HTTP/2 field sections (RFC 9113 §8.2, §8.3): what makes a decoded request head, response head or
// trailer section malformed (a stream error PROTOCOL_ERROR, §8.1.1), and the request/response control data taken from
// the pseudo-header fields. Input is the flat [name, value, ...] list the HPACK decoder produces (latin1 strings).
//
// Checked: field names (§8.2: non-empty, tchar of RFC 9110 §5.6.2, no uppercase; §8.3: pseudo-headers only ':' plus a
// known name), field values (§8.2.1: no NUL/CR/LF, no leading or trailing SP/HTAB), connection-specific fields
// (§8.2.2: connection, proxy-connection, keep-alive, transfer-encoding, upgrade; te other than "trailers"),
// pseudo-headers (§8.3: all before regular fields, each at most once, the request or response set only, the required
// ones present, :protocol only with CONNECT per RFC 8441 §4), and content-length (RFC 9110 §8.6: digits, all values
// equal). Two checks go beyond the letter of §8.3.1, because a proxy forwards these to HTTP/1.1 where they become the
// request line: :method must be a token (RFC 9110 §9.1), and :path must not contain SP, other controls or DEL.
//
// Errors are returned as short strings for the logs (no exceptions: malformed requests are routine input).

export interface H2RequestHead {
  readonly method: string;
  /** "" for CONNECT. */
  readonly scheme: string;
  /** :authority, "" when absent. */
  readonly authority: string;
  /** "" for CONNECT. */
  readonly path: string;
  /** :protocol (RFC 8441 extended CONNECT), "" when absent. */
  readonly protocol: string;
  /** Regular fields in order as received (no pseudo-headers). */
  readonly headers: string[];
  /** content-length when present (all values equal, digits only), else -1. */
  readonly contentLength: number;
}

export interface H2ResponseHead {
  readonly status: number;
  readonly headers: string[];
}

// Name character classes: tchar minus uppercase is valid, uppercase gets its own message, anything else is invalid.
const NAME_OK = 1;
const NAME_UPPER = 2;
const NAME_CLASS = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") NAME_CLASS[c.charCodeAt(0)] = NAME_OK;
for (let c = 0x30; c <= 0x39; c++) NAME_CLASS[c] = NAME_OK;
for (let c = 0x61; c <= 0x7a; c++) NAME_CLASS[c] = NAME_OK;
for (let c = 0x41; c <= 0x5a; c++) NAME_CLASS[c] = NAME_UPPER;

const COLON = 0x3a;

/** Pseudo-header bits, for "at most once" and "required" checks. */
const METHOD = 1;
const SCHEME = 2;
const AUTHORITY = 4;
const PATH = 8;
const PROTOCOL = 16;

/** Return values of checkRegularField for content-length, which the caller parses. */
const OK = '';
const CONTENT_LENGTH = '\0';

/**
 * Check a request's field section. Returns the head, or a string naming what is malformed (for logs, e.g. "uppercase
 * field name", "connection-specific field: connection").
 */
export function parseRequestFields(fields: readonly string[]): H2RequestHead | string {
  let seen = 0;
  let method = '';
  let scheme = '';
  let authority = '';
  let path = '';
  let protocol = '';
  let contentLength = -1;
  let i = 0;
  const n = fields.length - 1;
  // Pseudo-headers: a prefix of the list.
  for (; i < n; i += 2) {
    const name = fields[i]!;
    if (name.charCodeAt(0) !== COLON) break;
    const value = fields[i + 1]!;
    let bit: number;
    switch (name) {
      case ':method':
        bit = METHOD;
        method = value;
        break;
      case ':scheme':
        bit = SCHEME;
        scheme = value;
        break;
      case ':authority':
        bit = AUTHORITY;
        authority = value;
        break;
      case ':path':
        bit = PATH;
        path = value;
        break;
      case ':protocol':
        bit = PROTOCOL;
        protocol = value;
        break;
      default:
        return `invalid pseudo-header: ${printable(name)}`;
    }
    if ((seen & bit) !== 0) return `duplicate pseudo-header: ${name}`;
    seen |= bit;
    const valueError = checkValue(value);
    if (valueError !== OK) return `${valueError}: ${name}`;
  }
  const firstRegular = i;
  for (; i < n; i += 2) {
    const error = checkRegularField(fields[i]!, fields[i + 1]!);
    if (error === OK) continue;
    if (error !== CONTENT_LENGTH) return error;
    const length = parseContentLength(fields[i + 1]!, contentLength);
    if (typeof length === 'string') return length;
    contentLength = length;
  }
  if ((seen & METHOD) === 0) return 'missing :method';
  if (!isToken(method)) return 'invalid :method';
  if (method === 'CONNECT' && (seen & PROTOCOL) === 0) {
    // Plain CONNECT (§8.5): :authority only.
    if (authority.length === 0) return 'CONNECT without :authority';
    if ((seen & (SCHEME | PATH)) !== 0) return 'CONNECT with :scheme or :path';
  } else {
    if ((seen & PROTOCOL) !== 0 && method !== 'CONNECT') return ':protocol without CONNECT';
    if ((seen & SCHEME) === 0) return 'missing :scheme';
    if ((seen & PATH) === 0) return 'missing :path';
    if (path.length === 0) return 'empty :path';
    if (!isPath(path)) return 'invalid :path';
    // RFC 9113 §8.3.1: an absolute path ("/..."), or "*" for a server-wide OPTIONS; never an absolute URI, which an
    // HTTP/1.1 upstream would read as a target (host and all) that the route filter never saw.
    if (path.charCodeAt(0) !== 47 /* / */ && !(path === '*' && method === 'OPTIONS')) return ':path not an absolute path';
  }
  return {
    method,
    scheme,
    authority,
    path,
    protocol,
    headers: fields.slice(firstRegular, i),
    contentLength,
  };
}

/** Check a response's field section (including 1xx heads). Returns the head or what is malformed. */
export function parseResponseFields(fields: readonly string[]): H2ResponseHead | string {
  let status = -1;
  let i = 0;
  const n = fields.length - 1;
  for (; i < n; i += 2) {
    const name = fields[i]!;
    if (name.charCodeAt(0) !== COLON) break;
    if (name !== ':status') return `invalid pseudo-header: ${printable(name)}`;
    if (status !== -1) return 'duplicate pseudo-header: :status';
    status = parseStatus(fields[i + 1]!);
    if (status < 0) return 'invalid :status';
  }
  if (status === -1) return 'missing :status';
  const firstRegular = i;
  let contentLength = -1;
  for (; i < n; i += 2) {
    const error = checkRegularField(fields[i]!, fields[i + 1]!);
    if (error === OK) continue;
    if (error !== CONTENT_LENGTH) return error;
    const length = parseContentLength(fields[i + 1]!, contentLength);
    if (typeof length === 'string') return length;
    contentLength = length;
  }
  return { status, headers: fields.slice(firstRegular, i) };
}

/** Check a trailer section: regular fields only, same rules. Returns `fields` or what is malformed. */
export function checkTrailerFields(fields: readonly string[]): readonly string[] | string {
  const n = fields.length - 1;
  for (let i = 0; i < n; i += 2) {
    const name = fields[i]!;
    if (name.charCodeAt(0) === COLON) return `pseudo-header in trailers: ${printable(name)}`;
    const error = checkRegularField(name, fields[i + 1]!);
    // content-length in trailers has no meaning for the framing; only its syntax is checked, like any value.
    if (error !== OK && error !== CONTENT_LENGTH) return error;
  }
  return fields;
}

/**
 * Check one regular (non-pseudo) field. Returns OK, CONTENT_LENGTH for a well-formed content-length field (whose
 * value the caller parses), or the error.
 */
function checkRegularField(name: string, value: string): string {
  const len = name.length;
  if (len === 0) return 'empty field name';
  for (let i = 0; i < len; i++) {
    const c = name.charCodeAt(i);
    const cls = c < 256 ? NAME_CLASS[c]! : 0;
    if (cls === NAME_OK) continue;
    if (c === COLON && i === 0) return `pseudo-header after regular fields: ${printable(name)}`;
    return cls === NAME_UPPER ? 'uppercase field name' : 'invalid character in field name';
  }
  const valueError = checkValue(value);
  if (valueError !== OK) return `${valueError}: ${name}`;
  // The names that need a second look, sorted out by length before any string compare.
  switch (len) {
    case 2:
      if (name === 'te' && value !== 'trailers') return 'te other than trailers';
      break;
    case 7:
      if (name === 'upgrade') return 'connection-specific field: upgrade';
      break;
    case 10:
      if (name === 'connection' || name === 'keep-alive') return `connection-specific field: ${name}`;
      break;
    case 14:
      if (name === 'content-length') return CONTENT_LENGTH;
      break;
    case 16:
      if (name === 'proxy-connection') return 'connection-specific field: proxy-connection';
      break;
    case 17:
      if (name === 'transfer-encoding') return 'connection-specific field: transfer-encoding';
      break;
  }
  return OK;
}

/** §8.2.1: no NUL, CR or LF; no SP or HTAB at either end. Returns OK or the error. */
function checkValue(value: string): string {
  const len = value.length;
  if (len === 0) return OK;
  let c = value.charCodeAt(0);
  if (c === 0x20 || c === 0x09) return 'whitespace at the start of a field value';
  c = value.charCodeAt(len - 1);
  if (c === 0x20 || c === 0x09) return 'whitespace at the end of a field value';
  for (let i = 0; i < len; i++) {
    c = value.charCodeAt(i);
    if (c <= 0x0d && (c === 0x00 || c === 0x0a || c === 0x0d)) return 'NUL, CR or LF in a field value';
  }
  return OK;
}

/** content-length (RFC 9110 §8.6): digits only, and equal to the previous value (`previous`, -1 for none). */
function parseContentLength(value: string, previous: number): number | string {
  const len = value.length;
  if (len === 0) return 'invalid content-length';
  let n = 0;
  for (let i = 0; i < len; i++) {
    const d = value.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return 'invalid content-length';
    n = n * 10 + d;
    if (n > Number.MAX_SAFE_INTEGER) return 'invalid content-length';
  }
  if (previous !== -1 && n !== previous) return 'conflicting content-length values';
  return n;
}

/** :status: exactly 3 digits, 100-999 (RFC 9110 §15). Returns the code, or -1. */
function parseStatus(value: string): number {
  if (value.length !== 3) return -1;
  const a = value.charCodeAt(0) - 0x30;
  const b = value.charCodeAt(1) - 0x30;
  const c = value.charCodeAt(2) - 0x30;
  if (a < 1 || a > 9 || b < 0 || b > 9 || c < 0 || c > 9) return -1;
  return a * 100 + b * 10 + c;
}

/** A method token (RFC 9110 §9.1), any case. */
function isToken(s: string): boolean {
  const len = s.length;
  if (len === 0) return false;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 256 || NAME_CLASS[c] === 0) return false;
  }
  return true;
}

/** :path as it can appear in an HTTP/1.1 request line: no SP, no other controls, no DEL. */
function isPath(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return false;
  }
  return true;
}

/** A name for an error message: cut short, control characters replaced, so that logs stay one line. */
function printable(name: string): string {
  let s = name.length > 64 ? name.slice(0, 64) : name;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) {
      s = s.slice(0, i) + '?' + s.slice(i + 1);
    }
  }
  return s;
}
