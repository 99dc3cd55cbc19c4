// A strict, incremental HTTP/1.x response parser for the upstream side (RFC 9112). The downstream side parses
// requests with src/l7/http/http1-request-parser.ts; both share the token tables, field-line parsing and the chunked
// decoder of src/l7/http/http1-syntax.ts. Upstream responses are parsed here so the pool controls every byte of a
// pooled connection: header names keep their case, 1xx responses are surfaced, the framing decision is explicit, and bytes
// arriving outside a response (a desynchronised or misbehaving server) are detected by the connection.
//
// Framing (RFC 9112 §6.3): HEAD / 1xx / 204 / 304 -> no body; 101 (when an upgrade was requested) and 2xx to CONNECT
// -> tunnel; Transfer-Encoding ending in chunked -> chunked (Content-Length dropped); other Transfer-Encoding ->
// read until close; Content-Length (identical repeats allowed) -> length; nothing -> read until close.
// Rejected (ParseError): bad status line, bare LF / CR, obs-fold, invalid field names or values, conflicting or
// malformed Content-Length, Transfer-Encoding on HTTP/1.0, bad chunk sizes or chunk framing, oversized heads.

import { STATUS_CODES } from 'node:http';
import {
  ChunkedDecoder,
  ChunkedStatus,
  CRLFCRLF,
  decimalValue,
  Http1SyntaxError,
  Http1SyntaxError as ParseError,
  isFieldValue,
  parseFieldLines,
  trimOws,
} from '../http/http1-syntax.js';
import { isHopByHopName, nameIs } from '../http/headers.js';

export type ResponseFraming = 'none' | 'length' | 'chunked' | 'close' | 'tunnel';

export interface ResponseHead {
  readonly statusCode: number;
  readonly statusText: string;
  readonly versionMinor: number;
  /** Flat raw headers: [name, value, ...], case and order as received (Content-Length dropped for chunked). */
  readonly headers: string[];
  readonly framing: ResponseFraming;
  /** Body length for framing 'length'. */
  readonly contentLength: number;
  /** The connection may carry another request after this response (when it is read completely). */
  readonly keepAlive: boolean;
  /** The server's `Keep-Alive: timeout=N` hint, in ms. */
  readonly keepAliveHintMs: number | undefined;
  /** Some field is hop-by-hop (Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade, Proxy-Connection). */
  readonly hopByHop: boolean;
}

export interface ResponseParserEvents {
  /** Every head, interim (1xx) ones included. */
  onHead(head: ResponseHead): void;
  onBody(chunk: Buffer): void;
  /** The final response is complete (trailers: flat raw array, possibly empty). */
  onComplete(trailers: string[]): void;
}

const STATUS_PREFIX = Buffer.from('HTTP/1.', 'latin1');

/** Could data[i, n) be the beginning of a status line ("HTTP/1.")? */
function startsLikeStatusLine(data: Buffer, i: number, n: number): boolean {
  const m = Math.min(n - i, STATUS_PREFIX.length);
  for (let k = 0; k < m; k++) if (data[i + k] !== STATUS_PREFIX[k]) return false;
  return true;
}

/** A malformed response (the shared HTTP/1 syntax error). */
export { Http1SyntaxError as ParseError };

const enum State {
  Head,
  Length,
  Chunked,
  Close,
  Done,
  Tunnel,
}

/** `v` begins with "timeout=" in any case (the usual Keep-Alive value: "timeout=5"). */
function startsWithTimeout(v: string): boolean {
  if (v.length < 9) return false;
  const want = 'timeout=';
  for (let i = 0; i < 8; i++) if ((v.charCodeAt(i) | (i === 7 ? 0 : 0x20)) !== want.charCodeAt(i)) return false;
  return true;
}

function splitHead(text: string): void {
  // Every line ends with CRLF: a CR or LF elsewhere is a bare one (field values are checked again by parseFieldLines).
  let i = text.indexOf('\n');
  while (i >= 0) {
    if (text.charCodeAt(i - 1) !== 13) throw new ParseError('bare CR or LF in head');
    i = text.indexOf('\n', i + 1);
  }
  i = text.indexOf('\r');
  while (i >= 0) {
    if (text.charCodeAt(i + 1) !== 10) throw new ParseError('bare CR or LF in head');
    i = text.indexOf('\r', i + 1);
  }
}

export interface ResponseParserOptions {
  /** Largest head (status line + headers), and largest trailer section, in bytes. */
  readonly maxHeadBytes: number;
}

export class ResponseParser {
  readonly #events: ResponseParserEvents;
  readonly #maxHead: number;
  #state: State = State.Done;
  #pending: Buffer | undefined;
  #remaining = 0;
  readonly #chunked: ChunkedDecoder;
  #method = 'GET';
  #upgradeRequested = false;

  constructor(events: ResponseParserEvents, options: ResponseParserOptions) {
    this.#events = events;
    this.#maxHead = options.maxHeadBytes;
    this.#chunked = new ChunkedDecoder(options.maxHeadBytes);
  }

  /** Arm the parser for the response to a request with this method. */
  expect(method: string, upgradeRequested: boolean): void {
    this.#method = method;
    this.#upgradeRequested = upgradeRequested;
    this.#state = State.Head;
    this.#pending = undefined;
  }

  /** Waiting for a response (armed and nothing parsed yet, or inside one). */
  get busy(): boolean {
    return this.#state !== State.Done && this.#state !== State.Tunnel;
  }

  /** The final response was received completely (or the connection became a tunnel). */
  get done(): boolean {
    return this.#state === State.Done || this.#state === State.Tunnel;
  }

  /** True while reading a close-delimited body (EOF completes it). */
  get readingUntilClose(): boolean {
    return this.#state === State.Close;
  }

  /**
   * Feed bytes. Returns how many bytes of `buf` were consumed: all of them, or fewer when the response completed or
   * the connection switched to a tunnel (the rest belongs to whatever follows). Throws ParseError.
   */
  execute(buf: Buffer): number {
    let data = buf;
    let base = 0;
    if (this.#pending !== undefined) {
      base = this.#pending.length;
      data = Buffer.concat([this.#pending, buf]);
      this.#pending = undefined;
    }
    let i = 0;
    const n = data.length;
    while (i < n) {
      switch (this.#state) {
        case State.Head: {
          const end = data.indexOf(CRLFCRLF, i);
          if (end < 0) {
            if (n - i > this.#maxHead) throw new ParseError('response head too large');
            // An upstream that does not speak HTTP/1.x is known from its first bytes: fail now, not at the route's
            // timeout while waiting for a head that never ends.
            if (!startsLikeStatusLine(data, i, n)) throw new ParseError('the response does not begin with HTTP/1.');
            this.#pending = data.subarray(i);
            return buf.length;
          }
          if (end - i > this.#maxHead) throw new ParseError('response head too large');
          const head = this.#parseHead(data.toString('latin1', i, end));
          i = end + 4;
          this.#events.onHead(head);
          // The handler may have torn the connection down (state reset): stop.
          if (this.#state !== State.Head) return i - base;
          if (head.statusCode < 200 && head.statusCode !== 101) break; // interim: next head follows
          switch (head.framing) {
            case 'none':
              this.#finish([]);
              return i - base;
            case 'tunnel':
              this.#state = State.Tunnel;
              return i - base;
            case 'length':
              this.#remaining = head.contentLength;
              this.#state = State.Length;
              if (this.#remaining === 0) {
                this.#finish([]);
                return i - base;
              }
              break;
            case 'chunked':
              this.#chunked.reset();
              this.#state = State.Chunked;
              break;
            case 'close':
              this.#state = State.Close;
              break;
          }
          break;
        }
        case State.Length: {
          const take = Math.min(this.#remaining, n - i);
          this.#remaining -= take;
          const chunk = data.subarray(i, i + take);
          i += take;
          this.#events.onBody(chunk);
          if (this.#remaining === 0 && this.#state === State.Length) {
            this.#finish([]);
            return i - base;
          }
          break;
        }
        case State.Chunked: {
          const dec = this.#chunked;
          i = dec.decode(data, i);
          if (dec.chunk !== undefined && dec.chunk.length > 0) {
            this.#events.onBody(dec.chunk);
            if (this.#state !== State.Chunked) return i - base;
          }
          if (dec.status === ChunkedStatus.NeedMore) {
            this.#pending = data.subarray(i);
            return buf.length;
          }
          if (dec.status === ChunkedStatus.Done) {
            this.#finish(dec.trailers);
            return i - base;
          }
          break;
        }
        case State.Close: {
          this.#events.onBody(i === 0 ? data : data.subarray(i));
          return buf.length;
        }
        case State.Done:
        case State.Tunnel:
          return i - base;
      }
    }
    return buf.length;
  }

  /** The connection reached EOF. Completes a close-delimited body; throws ParseError if a response was cut short. */
  finish(): void {
    if (this.#state === State.Close) {
      this.#finish([]);
      return;
    }
    if (this.busy) throw new ParseError('connection closed before the response was complete');
  }

  /** Forget the current response (the connection is being discarded). */
  reset(): void {
    this.#state = State.Done;
    this.#pending = undefined;
  }

  #finish(trailers: string[]): void {
    this.#state = State.Done;
    this.#pending = undefined;
    this.#events.onComplete(trailers);
  }

  #parseHead(text: string): ResponseHead {
    splitHead(text);
    const eol = text.indexOf('\r\n');
    const lineEnd = eol < 0 ? text.length : eol;
    // HTTP/1.x SP 3DIGIT [SP reason], read in place (no copy of the status line)
    if (lineEnd < 12 || !text.startsWith('HTTP/1.') || text.charCodeAt(8) !== 0x20) {
      throw new ParseError('bad status line');
    }
    const minor = text.charCodeAt(7) - 48;
    if (minor !== 0 && minor !== 1) throw new ParseError('unsupported HTTP version');
    const d0 = text.charCodeAt(9) - 48;
    const d1 = text.charCodeAt(10) - 48;
    const d2 = text.charCodeAt(11) - 48;
    if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) throw new ParseError('bad status code');
    const statusCode = d0 * 100 + d1 * 10 + d2;
    let statusText = '';
    if (lineEnd > 12) {
      if (text.charCodeAt(12) !== 0x20) throw new ParseError('bad status line');
      // The standard reason phrase is the kept string (no copy); any other is checked.
      const known = STATUS_CODES[statusCode];
      if (known !== undefined && known.length === lineEnd - 13 && text.startsWith(known, 13)) {
        statusText = known;
      } else {
        statusText = text.slice(13, lineEnd);
        if (!isFieldValue(statusText)) throw new ParseError('bad reason phrase');
      }
    }
    const headers = eol >= 0 ? parseFieldLines(text, eol + 2) : [];

    let contentLength = -1;
    let te: string | undefined;
    let close = false;
    let keepAliveToken = false;
    let keepAliveHintMs: number | undefined;
    let hopByHop = false;
    for (let h = 0; h < headers.length; h += 2) {
      const name = headers[h] as string;
      const value = headers[h + 1] as string;
      switch (name.length) {
        case 14:
          if (nameIs(name, 'content-length')) {
            const len = decimalValue(value);
            if (len >= 0) {
              if (contentLength >= 0 && contentLength !== len) throw new ParseError('conflicting content-length');
              contentLength = len;
              break;
            }
            for (const part of value.split(',')) {
              const v = trimOws(part);
              if (!/^\d{1,15}$/.test(v)) throw new ParseError('bad content-length');
              const n = Number(v);
              if (contentLength >= 0 && contentLength !== n) throw new ParseError('conflicting content-length');
              contentLength = n;
            }
          }
          break;
        case 17:
          if (nameIs(name, 'transfer-encoding')) {
            te = te === undefined ? value : `${te}, ${value}`;
            hopByHop = true;
          }
          break;
        case 10:
          if (nameIs(name, 'connection')) {
            hopByHop = true;
            if (nameIs(value, 'keep-alive')) {
              keepAliveToken = true;
              break;
            }
            if (nameIs(value, 'close')) {
              close = true;
              break;
            }
            for (const t of value.split(',')) {
              const tok = trimOws(t).toLowerCase();
              if (tok === 'close') close = true;
              else if (tok === 'keep-alive') keepAliveToken = true;
            }
          } else if (nameIs(name, 'keep-alive')) {
            hopByHop = true;
            const simple = startsWithTimeout(value) ? decimalValue(value, 8) : -1;
            if (simple >= 0) {
              keepAliveHintMs = simple * 1000;
            } else {
              const m = /(?:^|[,\s])timeout\s*=\s*(\d+)/i.exec(value);
              if (m !== null) keepAliveHintMs = Number(m[1]) * 1000;
            }
          }
          break;
        case 2:
        case 7:
        case 16:
          if (isHopByHopName(name)) hopByHop = true;
          break;
      }
    }

    let framing: ResponseFraming;
    if (statusCode === 101) {
      if (!this.#upgradeRequested) throw new ParseError('101 without an upgrade request');
      framing = 'tunnel';
    } else if (statusCode < 200 || statusCode === 204 || statusCode === 304 || this.#method === 'HEAD') {
      framing = 'none';
    } else if (this.#method === 'CONNECT' && statusCode < 300) {
      framing = 'tunnel';
    } else if (te !== undefined) {
      if (minor === 0) throw new ParseError('transfer-encoding in an HTTP/1.0 response');
      const codings = te.split(',').map((t) => trimOws(t).toLowerCase()).filter((t) => t !== '');
      const last = codings[codings.length - 1];
      if (codings.indexOf('chunked') >= 0 && codings.indexOf('chunked') !== codings.length - 1) {
        throw new ParseError('chunked is not the final transfer coding');
      }
      framing = last === 'chunked' ? 'chunked' : 'close';
      if (contentLength >= 0) {
        // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; never forward both.
        for (let h = headers.length - 2; h >= 0; h -= 2) {
          if (nameIs(headers[h] as string, 'content-length')) headers.splice(h, 2);
        }
        close = true;
      }
    } else if (contentLength >= 0) {
      framing = 'length';
    } else {
      framing = 'close';
    }
    const keepAlive = framing !== 'close' && framing !== 'tunnel' && !close && (minor === 1 || keepAliveToken);
    return {
      statusCode,
      statusText,
      versionMinor: minor,
      headers,
      framing,
      contentLength: contentLength < 0 ? 0 : contentLength,
      keepAlive,
      keepAliveHintMs,
      hopByHop,
    };
  }
}
