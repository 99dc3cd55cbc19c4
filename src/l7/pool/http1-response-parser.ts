// A strict, incremental HTTP/1.x response parser for the upstream side (RFC 9112). The downstream side parses
// requests with Node's llhttp; upstream responses are parsed here so the pool controls every byte of a pooled
// connection: header names keep their case, 1xx responses are surfaced, the framing decision is explicit, and bytes
// arriving outside a response (a desynchronised or misbehaving server) are detected by the connection.
//
// Framing (RFC 9112 §6.3): HEAD / 1xx / 204 / 304 -> no body; 101 (when an upgrade was requested) and 2xx to CONNECT
// -> tunnel; Transfer-Encoding ending in chunked -> chunked (Content-Length dropped); other Transfer-Encoding ->
// read until close; Content-Length (identical repeats allowed) -> length; nothing -> read until close.
// Rejected (ParseError): bad status line, bare LF / CR, obs-fold, invalid field names or values, conflicting or
// malformed Content-Length, Transfer-Encoding on HTTP/1.0, bad chunk sizes or chunk framing, oversized heads.

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
}

export interface ResponseParserEvents {
  /** Every head, interim (1xx) ones included. */
  onHead(head: ResponseHead): void;
  onBody(chunk: Buffer): void;
  /** The final response is complete (trailers: flat raw array, possibly empty). */
  onComplete(trailers: string[]): void;
}

export class ParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParseError';
  }
}

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  Close,
  Done,
  Tunnel,
}

// tchar (RFC 9110 §5.6.2)
const TOKEN = new Uint8Array(256);
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

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const MAX_CHUNK_LINE = 4096;

/** Parse header lines (already split, no empty lines) into a flat array; throws ParseError. */
function parseFieldLines(lines: readonly string[], from: number, out: string[]): void {
  for (let i = from; i < lines.length; i++) {
    const line = lines[i] as string;
    const c0 = line.charCodeAt(0);
    if (c0 === 0x20 || c0 === 0x09) throw new ParseError('obs-fold in header');
    const colon = line.indexOf(':');
    if (colon <= 0) throw new ParseError('header line without a name');
    const name = line.slice(0, colon);
    if (!isToken(name)) throw new ParseError('invalid header name');
    const value = trimOws(line.slice(colon + 1));
    if (!isFieldValue(value)) throw new ParseError('invalid header value');
    out.push(name, value);
  }
}

function splitHead(text: string): string[] {
  const lines = text.split('\r\n');
  for (const line of lines) {
    if (line.includes('\n') || line.includes('\r')) throw new ParseError('bare CR or LF in head');
  }
  return lines;
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
  #crlfSeen = 0;
  #method = 'GET';
  #upgradeRequested = false;

  constructor(events: ResponseParserEvents, options: ResponseParserOptions) {
    this.#events = events;
    this.#maxHead = options.maxHeadBytes;
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
              this.#state = State.ChunkSize;
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
        case State.ChunkSize: {
          const lf = data.indexOf(10, i);
          if (lf < 0) {
            if (n - i > MAX_CHUNK_LINE) throw new ParseError('chunk size line too long');
            this.#pending = data.subarray(i);
            return buf.length;
          }
          if (lf - i > MAX_CHUNK_LINE) throw new ParseError('chunk size line too long');
          if (lf === i || data[lf - 1] !== 13) throw new ParseError('chunk size line without CRLF');
          const size = parseChunkSize(data.toString('latin1', i, lf - 1));
          i = lf + 1;
          if (size === 0) {
            this.#state = State.Trailers;
          } else {
            this.#remaining = size;
            this.#state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData: {
          const take = Math.min(this.#remaining, n - i);
          this.#remaining -= take;
          const chunk = data.subarray(i, i + take);
          i += take;
          if (this.#remaining === 0) {
            this.#state = State.ChunkDataEnd;
            this.#crlfSeen = 0;
          }
          this.#events.onBody(chunk);
          break;
        }
        case State.ChunkDataEnd: {
          const expected = this.#crlfSeen === 0 ? 13 : 10;
          if (data[i] !== expected) throw new ParseError('chunk data not followed by CRLF');
          i++;
          if (++this.#crlfSeen === 2) this.#state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          // Either "\r\n" at once (no trailers) or field lines ending with "\r\n\r\n".
          if (n - i < 2) {
            this.#pending = data.subarray(i);
            return buf.length;
          }
          if (data[i] === 13 && data[i + 1] === 10) {
            this.#finish([]);
            return i + 2 - base;
          }
          const end = data.indexOf(CRLFCRLF, i);
          if (end < 0) {
            if (n - i > this.#maxHead) throw new ParseError('trailer section too large');
            this.#pending = data.subarray(i);
            return buf.length;
          }
          if (end - i > this.#maxHead) throw new ParseError('trailer section too large');
          const trailers: string[] = [];
          parseFieldLines(splitHead(data.toString('latin1', i, end)), 0, trailers);
          this.#finish(trailers);
          return end + 4 - base;
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
    const lines = splitHead(text);
    const statusLine = lines[0] as string;
    // HTTP/1.x SP 3DIGIT [SP reason]
    if (statusLine.length < 12 || !statusLine.startsWith('HTTP/1.') || statusLine.charCodeAt(8) !== 0x20) {
      throw new ParseError('bad status line');
    }
    const minor = statusLine.charCodeAt(7) - 48;
    if (minor !== 0 && minor !== 1) throw new ParseError('unsupported HTTP version');
    const statusCode = Number(statusLine.slice(9, 12));
    if (!/^[1-9]\d\d$/.test(statusLine.slice(9, 12))) throw new ParseError('bad status code');
    let statusText = '';
    if (statusLine.length > 12) {
      if (statusLine.charCodeAt(12) !== 0x20) throw new ParseError('bad status line');
      statusText = statusLine.slice(13);
      if (!isFieldValue(statusText)) throw new ParseError('bad reason phrase');
    }
    const headers: string[] = [];
    parseFieldLines(lines, 1, headers);

    let contentLength = -1;
    let te: string | undefined;
    let close = false;
    let keepAliveToken = false;
    let keepAliveHintMs: number | undefined;
    for (let h = 0; h < headers.length; h += 2) {
      const name = headers[h] as string;
      const value = headers[h + 1] as string;
      switch (name.length) {
        case 14:
          if (name.toLowerCase() === 'content-length') {
            for (const part of value.split(',')) {
              const v = trimOws(part);
              if (!/^\d{1,15}$/.test(v)) throw new ParseError('bad content-length');
              const len = Number(v);
              if (contentLength >= 0 && contentLength !== len) throw new ParseError('conflicting content-length');
              contentLength = len;
            }
          }
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') te = te === undefined ? value : `${te}, ${value}`;
          break;
        case 10:
          if (name.toLowerCase() === 'connection') {
            for (const t of value.split(',')) {
              const tok = trimOws(t).toLowerCase();
              if (tok === 'close') close = true;
              else if (tok === 'keep-alive') keepAliveToken = true;
            }
          } else if (name.toLowerCase() === 'keep-alive') {
            const m = /(?:^|[,\s])timeout\s*=\s*(\d+)/i.exec(value);
            if (m !== null) keepAliveHintMs = Number(m[1]) * 1000;
          }
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
          if ((headers[h] as string).toLowerCase() === 'content-length') headers.splice(h, 2);
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
    };
  }
}

function parseChunkSize(line: string): number {
  let end = line.indexOf(';');
  if (end < 0) end = line.length;
  const hex = line.slice(0, end);
  if (!/^[0-9a-fA-F]{1,13}$/.test(hex)) throw new ParseError('bad chunk size');
  if (end < line.length && !isFieldValue(line.slice(end))) throw new ParseError('bad chunk extension');
  return parseInt(hex, 16);
}
