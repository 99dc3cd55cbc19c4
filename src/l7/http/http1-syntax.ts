// What the HTTP/1.1 request parser (downstream, src/l7/http/http1-request-parser.ts) and the response parser
// (upstream, src/l7/pool/http1-response-parser.ts) share (RFC 9110 §5.5-5.6, RFC 9112 §5, §7.1): the token and
// field-value character tables, field-line parsing (no obs-fold, no whitespace before the colon, no bare CR/LF), the
// strict chunk-size line, and the incremental decoder of a chunked body with its trailer section.
//
// Every syntax error is an Http1SyntaxError whose `smuggling` flag tells a framing error (chunked framing, the
// transfer coding or the length: the connection's message boundaries can no longer be trusted) from a plain
// malformed message.
import { fieldNameSlot, fieldValue, keepName, keptName } from './field-strings.js';

export class Http1SyntaxError extends Error {
  /** A framing error (chunked body, lengths): possible request smuggling. */
  readonly smuggling: boolean;
  /** The head (or trailer section) is larger than allowed. */
  readonly tooLarge: boolean;

  constructor(message: string, smuggling = false, tooLarge = false) {
    super(message);
    this.name = 'Http1SyntaxError';
    this.smuggling = smuggling;
    this.tooLarge = tooLarge;
  }
}

/** tchar (RFC 9110 §5.6.2): 1 for every byte allowed in a token. */
export const TOKEN: Uint8Array = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TOKEN[c] = 1;
for (let c = 65; c <= 90; c++) TOKEN[c] = 1;
for (let c = 97; c <= 122; c++) TOKEN[c] = 1;

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255 || TOKEN[c] !== 1) return false;
  }
  return true;
}

/** field-value characters: HTAB, SP, VCHAR, obs-text (no other CTL, no DEL). */
export function isFieldValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

/** Strip optional whitespace (SP / HTAB) at both ends. */
export function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/**
 * `s` from `from` to its end as a number when that is 1 to 15 ASCII digits and nothing else (a Content-Length, a
 * Keep-Alive timeout), else -1.
 */
export function decimalValue(s: string, from = 0): number {
  const n = s.length;
  if (n === from || n - from > 15) return -1;
  let v = 0;
  for (let i = from; i < n; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

export const CRLFCRLF: Buffer = Buffer.from('\r\n\r\n', 'latin1');
/** Longest chunk-size line (size, extensions, CRLF). */
export const MAX_CHUNK_LINE = 4096;

/**
 * Parse the field lines of `text` (a head or trailer section without its final empty line, CRLF-separated) from
 * offset `from` into a new flat array ([name, value, ...], names as received; the strings of names and values seen
 * before are kept ones: src/l7/http/field-strings.ts), made once at its size with room for `room` more fields (the
 * ones the proxy adds, such as x-request-id, go in without growing it). Throws Http1SyntaxError on obs-fold, a line
 * without a name, an invalid name (whitespace before the colon included) or value (CTL: a bare CR or LF too).
 */
export function parseFieldLines(text: string, from: number, room = 0): string[] {
  const n = text.length;
  let lines = 0;
  for (let at = from; at < n; lines++) {
    const eol = text.indexOf('\r\n', at);
    at = eol < 0 ? n : eol + 2;
  }
  const out = new Array<string>(2 * (lines + room));
  out.length = 2 * lines; // the room stays as capacity
  let k = 0;
  let at = from;
  while (at < n) {
    let eol = text.indexOf('\r\n', at);
    if (eol < 0) eol = n;
    const c0 = text.charCodeAt(at);
    if (c0 === 0x20 || c0 === 0x09) throw new Http1SyntaxError('obs-fold in header');
    const colon = text.indexOf(':', at);
    if (colon <= at || colon > eol) throw new Http1SyntaxError('header line without a name');
    const slot = fieldNameSlot(text, at, colon);
    let name = keptName(slot, text, at, colon);
    if (name === undefined) {
      for (let i = at; i < colon; i++) {
        const c = text.charCodeAt(i);
        if (TOKEN[c] !== 1) throw new Http1SyntaxError('invalid header name');
      }
    }
    // value: OWS field-value OWS
    let a = colon + 1;
    let b = eol;
    while (a < b && (text.charCodeAt(a) === 0x20 || text.charCodeAt(a) === 0x09)) a++;
    while (b > a && (text.charCodeAt(b - 1) === 0x20 || text.charCodeAt(b - 1) === 0x09)) b--;
    for (let i = a; i < b; i++) {
      const c = text.charCodeAt(i);
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) throw new Http1SyntaxError('invalid header value');
    }
    out[k++] = name ?? keepName(slot, text, at, colon);
    out[k++] = fieldValue(slot, text, a, b);
    at = eol + 2;
  }
  return out;
}

/** Parse a chunk-size line (without its CRLF): 1-13 hex digits, optionally `;` extensions. Throws (smuggling). */
export function parseChunkSize(line: string): number {
  let end = line.indexOf(';');
  if (end < 0) end = line.length;
  if (end === 0 || end > 13) throw new Http1SyntaxError('bad chunk size', true);
  let size = 0;
  for (let i = 0; i < end; i++) {
    const c = line.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else throw new Http1SyntaxError('bad chunk size', true);
    size = size * 16 + d;
  }
  if (end < line.length && !isChunkExtensions(line, end)) throw new Http1SyntaxError('bad chunk extension', true);
  return size;
}

/**
 * chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ) (RFC 9112 §7.1.1), value a token or a
 * quoted-string; `s[from]` is the first ';'.
 */
function isChunkExtensions(s: string, from: number): boolean {
  let i = from;
  const n = s.length;
  const ws = (): void => {
    while (i < n && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
  };
  const token = (): boolean => {
    const start = i;
    while (i < n && TOKEN[s.charCodeAt(i)] === 1) i++;
    return i > start;
  };
  while (i < n) {
    ws();
    if (s.charCodeAt(i) !== 0x3b /* ; */) return false;
    i++;
    ws();
    if (!token()) return false;
    ws();
    if (i < n && s.charCodeAt(i) === 0x3d /* = */) {
      i++;
      ws();
      if (s.charCodeAt(i) === 0x22 /* " */) {
        i++;
        for (;;) {
          if (i >= n) return false;
          const c = s.charCodeAt(i);
          if (c === 0x22) {
            i++;
            break;
          }
          if (c === 0x5c /* \ */) {
            i++;
            if (i >= n) return false;
            const q = s.charCodeAt(i);
            if ((q < 0x20 && q !== 0x09) || q === 0x7f || q > 0xff) return false;
            i++;
            continue;
          }
          if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
          i++;
        }
      } else if (!token()) {
        return false;
      }
    }
  }
  return true;
}

const enum Chunk {
  Size,
  Data,
  DataEnd,
  Trailers,
  Done,
}

/** What ChunkedDecoder.decode() reached. */
export const enum ChunkedStatus {
  /** Progressed (a body chunk may have been produced: `chunk`). */
  Progress,
  /** An incomplete line: keep the bytes from the returned index and call again with more. */
  NeedMore,
  /** The last chunk and the trailer section were read: `trailers`. */
  Done,
}

/**
 * Incremental decoder of a chunked body (RFC 9112 §7.1): strict sizes (hex only, no whitespace, at most 13 digits),
 * CRLF everywhere, the trailer section bounded. One call produces at most one body chunk (a view of the input, not a
 * copy) so that the caller can stop between chunks.
 */
export class ChunkedDecoder {
  readonly #maxTrailerBytes: number;
  #state = Chunk.Size;
  #remaining = 0;
  #crlfSeen = 0;
  /** After decode(): the status. */
  status: ChunkedStatus = ChunkedStatus.Progress;
  /** After decode() with a body chunk: the chunk (else undefined). */
  chunk: Buffer | undefined;
  /** After ChunkedStatus.Done: the trailer fields (flat, possibly empty). */
  trailers: string[] = [];

  constructor(maxTrailerBytes: number) {
    this.#maxTrailerBytes = maxTrailerBytes;
  }

  reset(): void {
    this.#state = Chunk.Size;
    this.#remaining = 0;
    this.#crlfSeen = 0;
    this.status = ChunkedStatus.Progress;
    this.chunk = undefined;
    this.trailers = [];
  }

  /** Decode from data[i]; returns the index reached. Throws Http1SyntaxError (smuggling) on bad framing. */
  decode(data: Buffer, i: number): number {
    const n = data.length;
    this.chunk = undefined;
    this.status = ChunkedStatus.Progress;
    while (i < n) {
      switch (this.#state) {
        case Chunk.Size: {
          const lf = data.indexOf(10, i);
          if (lf < 0) {
            if (n - i > MAX_CHUNK_LINE) throw new Http1SyntaxError('chunk size line too long', true);
            this.status = ChunkedStatus.NeedMore;
            return i;
          }
          if (lf - i > MAX_CHUNK_LINE) throw new Http1SyntaxError('chunk size line too long', true);
          if (lf === i || data[lf - 1] !== 13) throw new Http1SyntaxError('chunk size line without CRLF', true);
          const size = parseChunkSize(data.toString('latin1', i, lf - 1));
          i = lf + 1;
          if (size === 0) {
            this.#state = Chunk.Trailers;
          } else {
            this.#remaining = size;
            this.#state = Chunk.Data;
          }
          break;
        }
        case Chunk.Data: {
          const take = Math.min(this.#remaining, n - i);
          this.#remaining -= take;
          this.chunk = data.subarray(i, i + take);
          i += take;
          if (this.#remaining === 0) {
            this.#state = Chunk.DataEnd;
            this.#crlfSeen = 0;
          }
          return i;
        }
        case Chunk.DataEnd: {
          const expected = this.#crlfSeen === 0 ? 13 : 10;
          if (data[i] !== expected) throw new Http1SyntaxError('chunk data not followed by CRLF', true);
          i++;
          if (++this.#crlfSeen === 2) this.#state = Chunk.Size;
          break;
        }
        case Chunk.Trailers: {
          // Either "\r\n" at once (no trailers) or field lines ending with "\r\n\r\n".
          if (n - i < 2) {
            this.status = ChunkedStatus.NeedMore;
            return i;
          }
          if (data[i] === 13 && data[i + 1] === 10) {
            this.#state = Chunk.Done;
            this.status = ChunkedStatus.Done;
            this.trailers = [];
            return i + 2;
          }
          const end = data.indexOf(CRLFCRLF, i);
          if (end < 0) {
            if (n - i > this.#maxTrailerBytes) throw new Http1SyntaxError('trailer section too large', true);
            assertLineEnds(data, i, n);
            this.status = ChunkedStatus.NeedMore;
            return i;
          }
          if (end - i > this.#maxTrailerBytes) throw new Http1SyntaxError('trailer section too large', true);
          let trailers: string[];
          try {
            trailers = parseFieldLines(data.toString('latin1', i, end), 0);
          } catch (err) {
            throw new Http1SyntaxError((err as Error).message, true);
          }
          this.#state = Chunk.Done;
          this.status = ChunkedStatus.Done;
          this.trailers = trailers;
          return end + 4;
        }
        case Chunk.Done:
          this.status = ChunkedStatus.Done;
          return i;
      }
    }
    if (this.#state === Chunk.Done) this.status = ChunkedStatus.Done;
    else if (this.#state === Chunk.Size || this.#state === Chunk.Trailers) this.status = ChunkedStatus.NeedMore;
    return i;
  }
}

/**
 * Every line end in data[from, to) is CRLF: a LF without CR before it, or a CR followed by anything but LF, throws
 * (a CR as the last byte may still be followed by its LF).
 */
export function assertLineEnds(data: Buffer, from: number, to: number): void {
  let i = data.indexOf(10, from);
  while (i >= 0 && i < to) {
    if (i === 0 || data[i - 1] !== 13) throw new Http1SyntaxError('bare LF');
    i = data.indexOf(10, i + 1);
  }
  i = data.indexOf(13, from);
  while (i >= 0 && i < to - 1) {
    if (data[i + 1] !== 10) throw new Http1SyntaxError('bare CR');
    i = data.indexOf(13, i + 1);
  }
}
