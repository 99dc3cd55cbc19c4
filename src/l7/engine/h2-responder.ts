// One request of a downstream HTTP/2 connection (h2-downstream.ts) on remora's own codec (src/l7/h2/): the stream's
// handler (what the client sends after the head: body, trailers, reset), the source of its RequestBody, and the
// DownstreamResponder the request chain answers through. One object per stream.
//
// - Body: DATA goes to the RequestBody as it arrives; the body pauses the stream (no WINDOW_UPDATE) while its reader
//   is full, so what a client can make the proxy hold is the stream window.
// - Responses: the head as HEADERS (with END_STREAM when bodyless), DATA under flow control (write() returns false
//   while the stream's window or the connection's output is full; onDrain() follows), then the trailers or an empty
//   DATA with END_STREAM.
// - A client RST_STREAM or a lost connection aborts the exchange (ctx.downstreamAborted(code)); an upstream failure
//   after the head resets the stream with the code the exchange chooses.
// - CONNECT (RFC 9113 §8.5): on the upstream's 2xx, the stream's DATA and the upstream socket are bridged both ways with
//   backpressure; END_STREAM half-closes the upstream and the upstream's FIN ends the stream.
import type { Socket } from 'node:net';
import { renderLocalReply } from '../local-reply.js';
import type { RequestContext } from '../request-context.js';
import type { DownstreamResponder, LocalReply } from '../request-types.js';
import type { RequestBody, BodySource } from '../http/request-body.js';
import { toH2Headers } from '../http/headers.js';
import type { H2Stream, H2StreamHandler } from '../h2/h2-stream.js';
import { CANCEL, INTERNAL_ERROR, PROTOCOL_ERROR } from '../h2/frame.js';
import { checkTrailerFields } from '../h2/h2-fields.js';
import { lowerCaseNames } from '../h2/lower-case-names.js';

export class H2Responder implements DownstreamResponder, H2StreamHandler, BodySource {
  readonly #stream: H2Stream;
  #ctx: RequestContext | undefined;
  #body: RequestBody | undefined;
  #trailers: readonly string[] = [];
  #started = false;
  #drain: (() => void) | undefined;
  /** The client reset the stream (its code): the body must never look complete. */
  resetCode: number | undefined;
  #tunnel: Socket | undefined;

  constructor(stream: H2Stream) {
    this.#stream = stream;
  }

  /** The request's context and body, once made (the stream's handler before then is this object too). */
  bind(ctx: RequestContext, body: RequestBody | undefined): void {
    this.#ctx = ctx;
    this.#body = body;
  }

  readonly trailers = (): readonly string[] => this.#trailers;
  readonly aborted = (): boolean => this.resetCode !== undefined;

  // ---- H2StreamHandler ----

  onHeaders(): void {
    // the server side's stream gets no header block but its head and trailers
  }

  onData(chunk: Buffer): void {
    const t = this.#tunnel;
    if (t !== undefined) {
      if (!t.write(chunk)) this.#stream.pause();
      return;
    }
    this.#body?.push(chunk);
  }

  onEnd(trailers: string[]): void {
    const t = this.#tunnel;
    if (t !== undefined) {
      t.end();
      return;
    }
    if (trailers.length > 0 && typeof checkTrailerFields(trailers) === 'string') {
      // Malformed trailers (RFC 9113 §8.1.1; a CR/LF in a value would end up in an HTTP/1.1 upstream's chunked
      // trailer section): the stream is reset and the body never completes.
      this.#stream.reset(PROTOCOL_ERROR, true);
      this.onReset(PROTOCOL_ERROR);
      return;
    }
    this.#trailers = trailers;
    this.#body?.pushEnd();
  }

  onReset(code: number): void {
    this.resetCode = code;
    this.#tunnel?.destroy();
    this.#ctx?.downstreamAborted(code);
  }

  onWritable(): void {
    const cb = this.#drain;
    if (cb === undefined) return;
    this.#drain = undefined;
    cb();
  }

  // ---- BodySource ----

  pause(): void {
    this.#stream.pause();
  }

  resume(): void {
    this.#stream.resume();
  }

  // ---- DownstreamResponder ----

  get headersSent(): boolean {
    return this.#started;
  }

  informational(statusCode: number, headers: readonly string[]): void {
    if (this.#started || this.#stream.closed) return;
    this.#stream.sendHeaders([':status', String(statusCode)], toH2Headers(headers), false);
  }

  start(statusCode: number, _statusText: string, headers: string[], _close: boolean, bodyless: boolean): boolean {
    this.#started = true;
    const s = this.#stream;
    if (s.closed) return true;
    s.sendHeaders([':status', String(statusCode)], lowerCaseNames(headers), bodyless);
    return true;
  }

  write(chunk: Buffer): boolean {
    return this.#stream.write(chunk);
  }

  /** The head went out at start(): nothing is held back. */
  flush(): void {}

  onDrain(cb: () => void): void {
    this.#drain = cb;
  }

  end(trailers: readonly string[]): void {
    this.#stream.end(trailers.length > 0 ? lowerCaseNames(trailers) : trailers);
  }

  localReply(reply: LocalReply, grpc: boolean): void {
    const s = this.#stream;
    const started = this.#started;
    this.#started = true;
    if (s.closed) return;
    if (started || s.headSent) {
      s.reset(INTERNAL_ERROR);
      return;
    }
    const r = renderLocalReply(reply, 'h2', grpc);
    if (r.body === '') {
      s.sendHeaders([':status', String(r.status)], r.headers, true);
      return;
    }
    s.sendHeaders([':status', String(r.status)], r.headers, false);
    s.write(Buffer.from(r.body));
    s.end();
  }

  reset(h2Code: number): void {
    this.#stream.reset(h2Code);
  }

  tunnel(statusCode: number, _statusText: string, headers: string[], upstream: Socket, rest: Buffer): void {
    const s = this.#stream;
    this.#started = true;
    if (s.closed) {
      upstream.destroy();
      return;
    }
    s.tunnel = true;
    s.sendHeaders([':status', String(statusCode)], toH2Headers(headers), false);
    this.#tunnel = upstream;
    let ended = false;
    upstream.on('error', () => { s.reset(INTERNAL_ERROR); });
    upstream.once('close', () => { if (!ended) s.reset(CANCEL); });
    upstream.on('drain', () => { s.resume(); });
    upstream.on('data', (chunk: Buffer) => {
      if (!s.write(chunk)) {
        upstream.pause();
        this.#drain = () => { upstream.resume(); };
      }
    });
    upstream.on('end', () => {
      ended = true;
      s.end();
    });
    if (rest.length > 0 && !s.write(rest)) {
      upstream.pause();
      this.#drain = () => { upstream.resume(); };
    }
    upstream.resume();
    s.resume();
  }
}
