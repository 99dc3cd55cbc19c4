// The answer to one HTTP/1.1 request, written straight to the downstream connection's transport (a socket or the
// TCP handle: downstream-transport.ts; no ServerResponse). Responses of a connection go out in request order: only
// the responder at the head of the connection's queue writes;
// the others keep what they are given (bounded: write() says "full" past 64 KiB) until their turn.
//
// The head (status line and fields) is serialized once, byte by byte into the buffer that is written
// (src/l7/http/head-bytes.ts), and sent with the first body chunk or the end when they come before flush() (one
// write), else on its own at flush(): the router calls it once the upstream read that brought the head is processed,
// so that slow responses still reach the client at once. Framing toward the client: none for HEAD / 1xx / 204 / 304; the upstream's Content-Length when it
// gave one; chunked (with trailers) for an HTTP/1.1 client otherwise; close-delimited for an HTTP/1.0 client.
// The hop's own fields are the only ones added: `Connection: close` when the connection ends after this response,
// `Connection: keep-alive` to an HTTP/1.0 client that asked for it, `Transfer-Encoding: chunked` when chunking.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { DownstreamTransport } from './downstream-transport.js';
import { fieldsSize, latin1Into, writeHead } from '../http/head-bytes.js';
import { nameIs } from '../http/headers.js';
import { renderLocalReply } from '../local-reply.js';
import type { DownstreamResponder, LocalReply } from '../request-types.js';
import type { RequestContext } from '../request-context.js';

/** What a responder needs from its connection (src/l7/engine/http1-downstream.ts). */
export interface ResponderOwner {
  readonly transport: DownstreamTransport;
  /** The engine is draining: every response closes its connection. */
  readonly closing: boolean;
  /** The response of `r` is complete (its last byte was handed to the transport or buffered). */
  responseDone(r: Http1Responder): void;
  /** Tear the connection down (a response cut short). */
  destroy(): void;
  /** Call `cb` once when the transport drains. */
  onTransportDrain(cb: () => void): void;
}

const enum Framing {
  None,
  Length,
  Chunked,
  Close,
}

/** A responder not at the head of the queue says "full" beyond this much kept output. */
const MAX_QUEUED_BYTES = 64 * 1024;
/** A first body chunk up to this size is copied behind the head into one buffer (one write). */
const COALESCE_BYTES = 16 * 1024;

const NO_FIELDS: readonly string[] = [];

/**
 * The end of a head: the hop's own fields and the empty line, by (chunked ? 4 : 0) + (close ? 1 : HTTP/1.0
 * keep-alive ? 2 : 0).
 */
const HEAD_TAILS: readonly string[] = [
  '\r\n', 'Connection: close\r\n\r\n', 'Connection: keep-alive\r\n\r\n', '',
  'Transfer-Encoding: chunked\r\n\r\n', 'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
  'Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n',
];

/** Status lines with the standard reason phrase, made once per code. */
const STATUS_LINES = new Map<number, string>();

function statusLine(code: number, reason: string): string {
  let line = STATUS_LINES.get(code);
  if (line === undefined) {
    line = `HTTP/1.1 ${code} ${reason}\r\n`;
    if (code >= 100 && code <= 999) STATUS_LINES.set(code, line);
  }
  return line;
}

export class Http1Responder implements DownstreamResponder {
  readonly #owner: ResponderOwner;
  readonly #headRequest: boolean;
  readonly #minor: 0 | 1;
  readonly #keepAlive: boolean;
  #ctx: RequestContext | undefined;
  #active = false;
  #started = false;
  #ended = false;
  #framing = Framing.None;
  /** The connection ends after this response. */
  #close = false;
  /** The head not written yet (#headBytes > 0): its status line, the fields as given, the hop's own fields. */
  #headLine = '';
  #headFields: readonly string[] = NO_FIELDS;
  #headTail = '';
  /** Bytes of the pending head; 0: none pending (not started, or written). */
  #headBytes = 0;
  /** Output kept while not at the head of the queue. */
  #out: (Buffer | string)[] | undefined;
  #outBytes = 0;
  #drainCb: (() => void) | undefined;

  constructor(owner: ResponderOwner, method: string, versionMinor: 0 | 1, keepAlive: boolean) {
    this.#owner = owner;
    this.#headRequest = method === 'HEAD';
    this.#minor = versionMinor;
    this.#keepAlive = keepAlive;
  }

  /** The request's context (aborted when the connection goes away first). */
  bind(ctx: RequestContext): void {
    this.#ctx = ctx;
  }

  get headersSent(): boolean {
    return this.#started;
  }

  /** The whole response was given (end() or a local reply). */
  get ended(): boolean {
    return this.#ended;
  }

  /** The connection closes after this response. */
  get closesConnection(): boolean {
    return this.#close;
  }

  /** The connection went away before this response ended. */
  aborted(): void {
    this.#ended = true;
    this.#ctx?.downstreamAborted();
  }

  /** Now at the head of the queue: write what was kept. */
  activate(): void {
    this.#active = true;
    const out = this.#out;
    this.#out = undefined;
    this.#outBytes = 0;
    if (out !== undefined) {
      const t = this.#owner.transport;
      if (out.length > 1) t.writev(out);
      else t.write(out[0] as Buffer | string);
    }
    const cb = this.#drainCb;
    if (cb !== undefined) {
      this.#drainCb = undefined;
      if (this.#owner.transport.writableNeedDrain) this.#owner.onTransportDrain(cb);
      else process.nextTick(cb);
    }
  }

  informational(statusCode: number, headers: readonly string[]): void {
    if (this.#started || this.#ended) return;
    let s = `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? ''}\r\n`;
    // 100 and 102 carry no fields (as Node's writeContinue / writeProcessing); 103 carries its Link hints.
    if (statusCode === 103) {
      for (let i = 0; i < headers.length; i += 2) s += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`;
    }
    this.#emit(`${s}\r\n`);
  }

  start(statusCode: number, statusText: string, headers: string[], close: boolean, _bodyless: boolean): boolean {
    if (this.#started || this.#ended) return false;
    const known = STATUS_CODES[statusCode] ?? '';
    const line = statusText === '' || statusText === known ? statusLine(statusCode, known) : `HTTP/1.1 ${statusCode} ${statusText}\r\n`;
    let size = line.length;
    let hasLength = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      const value = headers[i + 1] as string;
      if (name.length === 14 && !hasLength && nameIs(name, 'content-length')) hasLength = true;
      // A CR or LF would split the response (header edits and HTTP/2 values reach here too).
      if (value.includes('\n') || value.includes('\r') || name.includes('\n') || name.includes('\r')) return false;
    }
    size += fieldsSize(headers);
    let closeConn = close || !this.#keepAlive || this.#owner.closing;
    let chunked = false;
    if (this.#headRequest || statusCode === 204 || statusCode === 304 || statusCode < 200) {
      this.#framing = Framing.None;
    } else if (hasLength) {
      this.#framing = Framing.Length;
    } else if (this.#minor === 1) {
      this.#framing = Framing.Chunked;
      chunked = true;
    } else {
      this.#framing = Framing.Close;
      closeConn = true;
    }
    const tail = HEAD_TAILS[(chunked ? 4 : 0) + (closeConn ? 1 : this.#minor === 0 ? 2 : 0)] as string;
    this.#close = closeConn;
    this.#started = true;
    this.#headLine = line;
    this.#headFields = headers;
    this.#headTail = tail;
    this.#headBytes = size + tail.length;
    return true;
  }

  /** Send the head now if no body chunk or end took it along. */
  flush(): void {
    if (this.#headBytes === 0) return;
    this.#emit(this.#takeHead(0));
  }

  /**
   * The pending head serialized into a new buffer with `room` bytes left after it (for what goes in the same write),
   * written byte by byte: no intermediate strings.
   */
  #takeHead(room: number): Buffer {
    const buf = Buffer.allocUnsafe(this.#headBytes + room);
    writeHead(buf, 0, this.#headLine, this.#headFields, this.#headTail);
    this.#headBytes = 0;
    this.#headFields = NO_FIELDS;
    return buf;
  }

  write(chunk: Buffer): boolean {
    if (this.#ended || !this.#started || chunk.length === 0) return true;
    const f = this.#framing;
    if (f === Framing.None) return true;
    const headBytes = this.#headBytes;
    if (f === Framing.Chunked) {
      const size = `${chunk.length.toString(16)}\r\n`;
      if (chunk.length <= COALESCE_BYTES) {
        const buf = headBytes === 0 ? Buffer.allocUnsafe(size.length + chunk.length + 2) : this.#takeHead(size.length + chunk.length + 2);
        const off = latin1Into(buf, headBytes, size);
        chunk.copy(buf, off);
        buf[buf.length - 2] = 13;
        buf[buf.length - 1] = 10;
        return this.#emit(buf);
      }
      if (headBytes === 0) return this.#emitMany(size, chunk, '\r\n');
      const head = this.#takeHead(size.length);
      latin1Into(head, headBytes, size);
      return this.#emitMany(head, chunk, '\r\n');
    }
    if (headBytes === 0) return this.#emit(chunk);
    if (chunk.length <= COALESCE_BYTES) {
      const buf = this.#takeHead(chunk.length);
      chunk.copy(buf, headBytes);
      return this.#emit(buf);
    }
    return this.#emitMany(this.#takeHead(0), chunk, undefined);
  }

  onDrain(cb: () => void): void {
    if (this.#active) this.#owner.onTransportDrain(cb);
    else this.#drainCb = cb;
  }

  end(trailers: readonly string[]): void {
    if (this.#ended || !this.#started) return;
    if (this.#framing === Framing.Chunked) {
      let s = '0\r\n';
      for (let i = 0; i < trailers.length; i += 2) {
        const name = trailers[i] as string;
        const value = trailers[i + 1] as string;
        if (value.includes('\n') || value.includes('\r') || name.includes('\n') || name.includes('\r')) continue;
        s += `${name}: ${value}\r\n`;
      }
      s += '\r\n';
      if (this.#headBytes === 0) {
        this.#emit(s);
      } else {
        const at = this.#headBytes;
        const buf = this.#takeHead(s.length);
        latin1Into(buf, at, s);
        this.#emit(buf);
      }
    } else if (this.#headBytes !== 0) {
      this.#emit(this.#takeHead(0));
    }
    this.#ended = true;
    this.#owner.responseDone(this);
  }

  localReply(reply: LocalReply, _grpc: boolean): void {
    if (this.#ended) return;
    if (this.#started) {
      // A head already went out: the reply cannot be sent; the client sees the connection end.
      this.#ended = true;
      this.#owner.destroy();
      return;
    }
    this.#started = true;
    const close = reply.close || !this.#keepAlive || this.#owner.closing;
    this.#close = close;
    const r = renderLocalReply(reply, 'http/1.1', false, close);
    let s = `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? ''}\r\n`;
    for (let i = 0; i < r.headers.length; i += 2) s += `${r.headers[i] as string}: ${r.headers[i + 1] as string}\r\n`;
    this.#emit(this.#headRequest ? `${s}\r\n` : `${s}\r\n${r.body}`);
    this.#ended = true;
    this.#owner.responseDone(this);
  }

  reset(_h2Code: number): void {
    this.#ended = true;
    this.#owner.destroy();
  }

  tunnel(_s: number, _t: string, _h: string[], upstream: Socket): void {
    upstream.destroy();
    this.#ended = true;
    this.#owner.destroy();
  }

  #emit(piece: Buffer | string): boolean {
    if (this.#active) {
      const t = this.#owner.transport;
      if (t.destroyed) return true;
      return t.write(piece);
    }
    (this.#out ??= []).push(piece);
    this.#outBytes += piece.length;
    return this.#outBytes < MAX_QUEUED_BYTES;
  }

  /** `a`, `b` and `c` in one corked write (a large first chunk behind its head, a chunk between its framing). */
  #emitMany(a: Buffer | string, b: Buffer, c: string | undefined): boolean {
    if (!this.#active) {
      this.#emit(a);
      this.#emit(b);
      return c === undefined ? this.#outBytes < MAX_QUEUED_BYTES : this.#emit(c);
    }
    const t = this.#owner.transport;
    if (t.destroyed) return true;
    return t.writev(c === undefined ? [a, b] : [a, b, c]);
  }
}
