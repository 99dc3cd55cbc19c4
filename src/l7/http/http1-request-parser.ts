// A strict, incremental HTTP/1.x request parser (RFC 9112), pure: bytes in, events out, no sockets. The downstream
// HTTP/1.1 engine (src/l7/engine/http1-engine.ts) drives it; the upstream response parser shares its syntax pieces
// (src/l7/http/http1-syntax.ts).
//
// Pull interface, so the engine decides when to stop (body backpressure, a tunnel, a closing connection):
//   parser.push(bytes);
//   for (;;) { const ev = parser.next(); ... }   // Event.Head: parser.head; Event.Body: parser.chunk;
//                                                // Event.End: parser.trailers; Event.NeedMore; Event.Tunnel
// next() throws Http1SyntaxError; `smuggling` (framing), `tooLarge` (head beyond the limit) tell the local reply.
//
// Accepted: `method SP request-target SP HTTP/1.0|HTTP/1.1 CRLF`, then field lines, each `token ":" OWS value OWS
// CRLF`, then CRLF; empty lines before a request line are skipped (RFC 9112 §2.2). Refused:
//   bad-request: bad request line or version, bare CR/LF, obs-fold, an invalid name (whitespace before the colon
//     included) or value, no Host on HTTP/1.1, more than one Host;
//   request-smuggling: Transfer-Encoding with Content-Length, Transfer-Encoding on HTTP/1.0, any Transfer-Encoding
//     but a single `chunked` (the proxy re-frames the body and could not carry another coding), Content-Length not
//     1-15 digits or repeated (even identical), bad chunk sizes / extensions / framing, bad trailers;
//   header-too-large: a head (request line and fields) over maxHeadBytes.
// Framing (RFC 9112 §6.3): chunked, else Content-Length, else no body (a request is never close-delimited).
// An Upgrade request (Upgrade with `Connection: upgrade`) and CONNECT end the HTTP part of the connection after
// their head (Event.Tunnel follows Event.Head; rest() returns the bytes after the head).
import {
  assertLineEnds,
  ChunkedDecoder,
  ChunkedStatus,
  CRLFCRLF,
  decimalValue,
  Http1SyntaxError,
  parseFieldLines,
  TOKEN,
} from './http1-syntax.js';
import { methodString } from './field-strings.js';
import { isHopByHopName, nameIs } from './headers.js';

export const enum RequestEvent {
  /** No complete event in the bytes pushed so far. */
  NeedMore,
  /** A request head: `head`. */
  Head,
  /** A piece of the body: `chunk` (a view of the pushed bytes). */
  Body,
  /** The request is complete: `trailers` (flat, possibly empty). */
  End,
  /** After the head of an Upgrade / CONNECT request: the rest of the connection is not HTTP (`rest()`). */
  Tunnel,
}

export type RequestFraming = 'none' | 'length' | 'chunked';

export interface ParsedRequestHead {
  readonly method: string;
  /** The request-target as sent. */
  readonly target: string;
  readonly versionMinor: 0 | 1;
  /** Flat raw fields: [name, value, ...], case and order as received. */
  readonly headers: string[];
  /** The Host value (undefined: none, allowed on HTTP/1.0). */
  readonly host: string | undefined;
  readonly framing: RequestFraming;
  /** Body length for framing 'length'. */
  readonly contentLength: number;
  /** The client allows another request on this connection (HTTP/1.1 without close, HTTP/1.0 with keep-alive). */
  readonly keepAlive: boolean;
  /** An Upgrade (with Connection: upgrade) or CONNECT request: a tunnel follows its head. */
  readonly upgrade: boolean;
  /** The head has fields a proxy removes (Connection, the fields it lists, Keep-Alive, TE, Upgrade, ...). */
  readonly hopByHop: boolean;
}

const enum State {
  Head,
  Length,
  Chunked,
  Tunnel,
  Dead,
}

/** Empty lines skipped before a request line (RFC 9112 §2.2 asks for at least one). */
const MAX_LEADING_EMPTY_LINES = 8;

/** request-target bytes: visible ASCII (no SP, no CTL, no DEL, no obs-text). */
function isTargetByte(c: number): boolean {
  return c > 0x20 && c < 0x7f;
}

export interface RequestParserOptions {
  /** Largest head (request line + fields + CRLFs), also the largest trailer section, in bytes. */
  readonly maxHeadBytes: number;
}

export class RequestParser {
  readonly #maxHead: number;
  /** Made on the first chunked body (most connections never carry one). */
  #chunked: ChunkedDecoder | undefined;
  #state = State.Head;
  #buf: Buffer | undefined;
  #pos = 0;
  /** Head bytes already checked for bare CR/LF (relative to #pos) while waiting for the end of the head. */
  #checked = 0;
  #remaining = 0;
  #emptyLines = 0;
  /**
   * After Event.Head, until Event.End (then undefined: an idle keep-alive connection keeps no request of its own, nor
   * a view of a read buffer).
   */
  head: ParsedRequestHead | undefined;
  /** After Event.Body, until Event.End. */
  chunk: Buffer | undefined;
  /** After Event.End. */
  trailers: string[] = [];

  constructor(options: RequestParserOptions) {
    this.#maxHead = options.maxHeadBytes;
  }

  /** Append bytes read from the connection. */
  push(data: Buffer): void {
    if (this.#buf === undefined || this.#pos >= this.#buf.length) {
      this.#buf = data;
      this.#pos = 0;
      return;
    }
    this.#buf = Buffer.concat([this.#buf.subarray(this.#pos), data]);
    this.#pos = 0;
  }

  /** Bytes pushed and not consumed yet. */
  get buffered(): number {
    return this.#buf === undefined ? 0 : this.#buf.length - this.#pos;
  }

  /** Between messages with nothing buffered: no part of a request has been read. */
  get idle(): boolean {
    return this.#state === State.Head && this.buffered === 0;
  }

  /** Inside a head (some of its bytes read) or a body. */
  get midMessage(): boolean {
    return this.#state === State.Length || this.#state === State.Chunked || (this.#state === State.Head && this.buffered > 0);
  }

  /** Waiting for the rest of a request head (bytes of it buffered). */
  get inHead(): boolean {
    return this.#state === State.Head && this.buffered > 0;
  }

  /** Reading a body. */
  get inBody(): boolean {
    return this.#state === State.Length || this.#state === State.Chunked;
  }

  /** After Event.Tunnel: the bytes that followed the head (consumed). */
  rest(): Buffer {
    const b = this.#buf;
    const out = b === undefined || this.#pos >= b.length ? Buffer.alloc(0) : b.subarray(this.#pos);
    this.#buf = undefined;
    this.#pos = 0;
    return out;
  }

  /** The next event. Throws Http1SyntaxError; the parser is dead afterwards (every later call throws again). */
  next(): RequestEvent {
    try {
      return this.#next();
    } catch (err) {
      this.#state = State.Dead;
      this.#buf = undefined;
      throw err;
    }
  }

  #next(): RequestEvent {
    const data = this.#buf;
    switch (this.#state) {
      case State.Head: {
        if (data === undefined) return RequestEvent.NeedMore;
        let i = this.#pos;
        const n = data.length;
        // Empty lines before the request line.
        while (i + 1 < n && data[i] === 13 && data[i + 1] === 10) {
          if (++this.#emptyLines > MAX_LEADING_EMPTY_LINES) throw new Http1SyntaxError('too many empty lines');
          i += 2;
          this.#pos = i;
        }
        if (i >= n) return RequestEvent.NeedMore;
        const end = data.indexOf(CRLFCRLF, i);
        if (end < 0) {
          if (n - i > this.#maxHead) throw new Http1SyntaxError('request head too large', false, true);
          // Refuse a bare LF / CR now: a client using bare LF line ends would otherwise wait forever for CRLFCRLF.
          const from = Math.max(i, i + this.#checked - 1);
          assertLineEnds(data, from, n);
          this.#checked = n - i;
          return RequestEvent.NeedMore;
        }
        if (end + 4 - i > this.#maxHead) throw new Http1SyntaxError('request head too large', false, true);
        const head = parseHead(data.toString('latin1', i, end));
        this.#pos = end + 4;
        this.#checked = 0;
        this.#emptyLines = 0;
        this.head = head;
        if (head.upgrade) {
          this.#state = State.Tunnel;
        } else if (head.framing === 'chunked') {
          (this.#chunked ??= new ChunkedDecoder(this.#maxHead)).reset();
          this.#state = State.Chunked;
        } else if (head.framing === 'length') {
          this.#remaining = head.contentLength;
          this.#state = State.Length;
        } else {
          this.#state = State.Length;
          this.#remaining = 0;
        }
        if (this.#pos >= n) {
          this.#buf = undefined;
          this.#pos = 0;
        }
        return RequestEvent.Head;
      }
      case State.Length: {
        if (this.#remaining === 0) {
          this.#state = State.Head;
          this.trailers = [];
          this.#ended();
          return RequestEvent.End;
        }
        if (data === undefined) return RequestEvent.NeedMore;
        const i = this.#pos;
        const take = Math.min(this.#remaining, data.length - i);
        if (take === 0) return RequestEvent.NeedMore;
        this.#remaining -= take;
        this.chunk = i === 0 && take === data.length ? data : data.subarray(i, i + take);
        this.#advance(i + take);
        return RequestEvent.Body;
      }
      case State.Chunked: {
        if (data === undefined) return RequestEvent.NeedMore;
        const dec = this.#chunked as ChunkedDecoder;
        for (;;) {
          const i = dec.decode(data, this.#pos);
          this.#pos = i;
          if (dec.chunk !== undefined && dec.chunk.length > 0) {
            this.chunk = dec.chunk;
            this.#advance(i);
            return RequestEvent.Body;
          }
          if (dec.status === ChunkedStatus.Done) {
            this.trailers = dec.trailers;
            this.#state = State.Head;
            this.#advance(i);
            this.#ended();
            return RequestEvent.End;
          }
          if (dec.status === ChunkedStatus.NeedMore || i >= data.length) {
            this.#advance(i);
            return RequestEvent.NeedMore;
          }
        }
      }
      case State.Tunnel:
        return RequestEvent.Tunnel;
      case State.Dead:
        throw new Http1SyntaxError('the connection failed to parse before');
    }
  }

  /** The request is complete: its head and last body piece are not kept. */
  #ended(): void {
    this.head = undefined;
    this.chunk = undefined;
  }

  #advance(i: number): void {
    const data = this.#buf;
    if (data !== undefined && i >= data.length) {
      this.#buf = undefined;
      this.#pos = 0;
    } else {
      this.#pos = i;
    }
  }
}

/** Fields the proxy may add to a request (x-request-id, a trace context): the headers array has room for them. */
const ADDED_FIELDS_ROOM = 2;

/** Parse a complete head (without its final CRLFCRLF). */
export function parseHead(text: string): ParsedRequestHead {
  // request-line = method SP request-target SP HTTP-version
  let eol = text.indexOf('\r\n');
  if (eol < 0) eol = text.length;
  const sp1 = text.indexOf(' ');
  if (sp1 <= 0 || sp1 > eol) throw new Http1SyntaxError('bad request line');
  for (let i = 0; i < sp1; i++) {
    if (TOKEN[text.charCodeAt(i)] !== 1) throw new Http1SyntaxError('bad method');
  }
  const sp2 = text.indexOf(' ', sp1 + 1);
  if (sp2 < 0 || sp2 > eol || sp2 === sp1 + 1) throw new Http1SyntaxError('bad request line');
  for (let i = sp1 + 1; i < sp2; i++) {
    if (!isTargetByte(text.charCodeAt(i))) throw new Http1SyntaxError('bad request-target');
  }
  if (eol - sp2 !== 9 || !text.startsWith('HTTP/1.', sp2 + 1)) throw new Http1SyntaxError('bad HTTP version');
  const minorChar = text.charCodeAt(sp2 + 8);
  if (minorChar !== 48 && minorChar !== 49) throw new Http1SyntaxError('unsupported HTTP version');
  const versionMinor = minorChar === 49 ? 1 : 0;
  const method = methodString(text, 0, sp1);
  const target = text.slice(sp1 + 1, sp2);

  const headers = eol < text.length ? parseFieldLines(text, eol + 2, ADDED_FIELDS_ROOM) : [];

  let host: string | undefined;
  let hosts = 0;
  let contentLength = -1;
  let te: string | undefined;
  let close = false;
  let keepAliveToken = false;
  let upgradeToken = false;
  let upgradeField = false;
  let hopByHop = false;
  let clCount = 0;
  let teCount = 0;
  for (let h = 0; h < headers.length; h += 2) {
    const name = headers[h] as string;
    const value = headers[h + 1] as string;
    switch (name.length) {
      case 4:
        if (nameIs(name, 'host')) {
          hosts++;
          host = value;
        }
        break;
      case 14:
        if (nameIs(name, 'content-length')) {
          clCount++;
          const len = decimalValue(value);
          contentLength = len < 0 ? -2 : len;
        }
        break;
      case 17:
        if (nameIs(name, 'transfer-encoding')) {
          teCount++;
          te = value;
          hopByHop = true;
        }
        break;
      case 10:
        if (nameIs(name, 'connection')) {
          hopByHop = true;
          for (const t of value.split(',')) {
            const tok = t.trim().toLowerCase();
            if (tok === 'close') close = true;
            else if (tok === 'keep-alive') keepAliveToken = true;
            else if (tok === 'upgrade') upgradeToken = true;
          }
        } else if (nameIs(name, 'keep-alive')) {
          hopByHop = true;
        }
        break;
      case 7:
        if (nameIs(name, 'upgrade')) {
          upgradeField = true;
          hopByHop = true;
        }
        break;
      case 2:
      case 16:
        if (isHopByHopName(name)) hopByHop = true;
        break;
    }
  }
  if (hosts > 1) throw new Http1SyntaxError('more than one host');
  if (hosts === 0 && versionMinor === 1) throw new Http1SyntaxError('no host');

  if (contentLength === -2 || clCount > 1) throw new Http1SyntaxError(clCount > 1 ? 'more than one content-length' : 'bad content-length', true);
  if (teCount > 1) throw new Http1SyntaxError('more than one transfer-encoding', true);
  let framing: RequestFraming = 'none';
  if (te !== undefined) {
    if (contentLength >= 0) throw new Http1SyntaxError('transfer-encoding with content-length', true);
    if (versionMinor === 0) throw new Http1SyntaxError('transfer-encoding in an HTTP/1.0 request', true);
    if (te.length !== 7 || te.toLowerCase() !== 'chunked') throw new Http1SyntaxError('transfer coding other than chunked', true);
    framing = 'chunked';
  } else if (contentLength > 0) {
    framing = 'length';
  }
  const isConnect = method === 'CONNECT';
  return {
    method,
    target,
    versionMinor,
    headers,
    host,
    framing,
    contentLength: contentLength < 0 ? 0 : contentLength,
    keepAlive: !close && (versionMinor === 1 || keepAliveToken),
    upgrade: isConnect || (upgradeField && upgradeToken),
    hopByHop,
  };
}
