// One upstream HTTP/1.1 connection: writes one request at a time (no upstream pipelining), parses the response with
// ResponseParser and tells its pool when it is reusable. It is the only owner of its socket's listeners until it
// hands the socket to a tunnel.
//
// Reuse rules: the connection goes back to the pool only when the request was written completely, the response was
// read completely, the response allowed keep-alive (HTTP/1.1 without `Connection: close`, not close-delimited), and
// no stray byte followed the response. While idle, any byte or FIN from the server discards it (the server closed
// it, or it is out of sync).
import type { Socket } from 'node:net';
import { DirectReads } from '../../core/direct-reads.js';
import { TcpHandle } from '../../core/tcp-handle.js';
import type { BodySink } from '../http/request-body.js';
import { lastChunk, chunkHeader, requestHead } from './http1-serialize.js';
import { ParseError, ResponseParser, type ResponseHead } from './http1-response-parser.js';
import type {
  AttemptControl,
  UpstreamFailure,
  UpstreamFailureKind,
  UpstreamHandler,
  UpstreamRequest,
  UpstreamResponse,
} from './pool-types.js';

export interface Http1ConnectionOwner {
  /** The exchange finished and the connection can carry another request. */
  onReusable(conn: Http1Connection): void;
  /** The connection is gone (closed, destroyed, or handed to a tunnel). Called once. */
  onGone(conn: Http1Connection): void;
}

const CRLF = '\r\n';

function noop(): void {}

class Exchange implements BodySink, AttemptControl {
  readonly conn: Http1Connection;
  handler: UpstreamHandler | undefined;
  readonly request: UpstreamRequest;
  readonly chunked: boolean;
  requestDone = false;
  requestSent = false;
  responseDone = false;
  responseStarted = false;
  responseBytes = false;
  keepAlive = false;
  head: ResponseHead | undefined;
  paused = false;

  constructor(conn: Http1Connection, request: UpstreamRequest, handler: UpstreamHandler) {
    this.conn = conn;
    this.request = request;
    this.handler = handler;
    this.chunked = request.body !== undefined && request.bodyLength === undefined;
  }

  // BodySink
  write(chunk: Buffer): boolean {
    if (this.conn.current !== this || chunk.length === 0) return true;
    return this.conn.writeBody(chunk, this.chunked);
  }

  end(trailers: readonly string[]): void {
    if (this.conn.current !== this) return;
    if (this.chunked) this.conn.writeRaw(lastChunk(trailers));
    this.requestDone = true;
    this.conn.maybeRelease();
  }

  // AttemptControl
  pause(): void {
    if (this.conn.current !== this) return;
    this.paused = true;
    this.conn.socket.pause();
  }

  resume(): void {
    if (this.conn.current !== this || !this.paused) return;
    this.paused = false;
    this.conn.socket.resume();
  }

  abort(): void {
    if (this.conn.current !== this) return;
    this.handler = undefined;
    this.request.body?.stop();
    this.conn.abortCurrent();
  }
}

export class Http1Connection {
  readonly socket: Socket;
  readonly #owner: Http1ConnectionOwner;
  readonly #parser: ResponseParser;
  /** Complete exchanges carried so far. */
  #served = 0;
  #gone = false;
  #error: Error | undefined;
  #inData = false;
  /** The socket's direct reads (plain TCP), detached again when a tunnel takes the socket. */
  readonly #reads: DirectReads | undefined;
  #tunnelHead: ResponseHead | undefined;
  current: Exchange | undefined;
  /** The server's last keep-alive hint (ms). */
  keepAliveHintMs: number | undefined;
  /** Set by the pool when the connection goes idle: when it is to be retired (monotonic ms). */
  idleDeadline = 0;

  constructor(socket: Socket, owner: Http1ConnectionOwner, maxHeadBytes: number) {
    this.socket = socket;
    const reads = DirectReads.adopt(socket);
    this.#reads = reads;
    this.#owner = owner;
    this.#parser = new ResponseParser(
      {
        onHead: (head) => this.#onHead(head),
        onBody: (chunk) => this.#onBody(chunk),
        onComplete: (trailers) => this.#onComplete(trailers),
      },
      { maxHeadBytes },
    );
    socket.on('error', this.#onError);
    // A plain TCP socket reads directly (no Readable on the way); a TLS-originated or mesh mTLS one through 'data'.
    if (reads === undefined) socket.on('data', this.#onData);
    else reads.attach(this.#onDirectRead);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onClose);
    socket.on('drain', this.#onDrain);
    socket.setNoDelay?.(true);
    // Reads start here, whatever the stream's state: once direct reads are attached only pause() / resume() start and
    // stop them (src/core/direct-reads.ts), not the read(0) Node makes after 'connect'.
    socket.resume();
  }

  /** The connection carried at least one complete exchange before. */
  get reused(): boolean {
    return this.#served > 0;
  }

  get gone(): boolean {
    return this.#gone;
  }

  /** Usable for a new request right now. */
  get alive(): boolean {
    return !this.#gone && this.current === undefined && !this.socket.destroyed && this.socket.writable && this.socket.readable;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): AttemptControl {
    const ex = new Exchange(this, request, handler);
    this.current = ex;
    this.#parser.expect(request.method, request.tunnel);
    let headers = request.headers;
    if (ex.chunked) headers = [...headers, 'Transfer-Encoding', 'chunked'];
    ex.requestSent = true;
    // Straight through the handle when the socket's stream holds nothing (src/core/tcp-handle.ts), else the stream.
    const head = requestHead(request.method, request.target, headers);
    if (!TcpHandle.writeThrough(this.socket, head)) this.socket.write(head);
    if (request.body === undefined) {
      ex.requestDone = true;
    } else {
      request.body.start(ex);
    }
    return ex;
  }

  /** @internal */ writeBody(chunk: Buffer, chunked: boolean): boolean {
    if (!chunked) return this.socket.write(chunk);
    this.socket.cork();
    this.socket.write(chunkHeader(chunk.length), 'latin1');
    this.socket.write(chunk);
    const ok = this.socket.write(CRLF, 'latin1');
    this.socket.uncork();
    return ok;
  }

  /** @internal */ writeRaw(s: string): void {
    this.socket.write(s, 'latin1');
  }

  /** @internal the exchange may be over: release or close. */
  maybeRelease(): void {
    const ex = this.current;
    if (ex === undefined || !ex.responseDone || !ex.requestDone || this.#inData) return;
    this.current = undefined;
    this.#served++;
    if (ex.paused) this.socket.resume();
    if (ex.keepAlive && !this.#gone && !this.socket.destroyed) {
      this.#owner.onReusable(this);
    } else {
      this.destroy();
    }
  }

  /** @internal the current exchange was abandoned mid-way: the connection cannot be reused. */
  abortCurrent(): void {
    this.current = undefined;
    this.#parser.reset();
    this.destroy();
  }

  destroy(): void {
    if (!this.socket.destroyed) this.socket.destroy();
    this.#goneOnce();
  }

  #goneOnce(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#owner.onGone(this);
  }

  readonly #onData = (chunk: Buffer): void => {
    const ex = this.current;
    if (ex === undefined || !this.#parser.busy) {
      // Bytes outside a response: the server is out of sync with us. Never reuse this connection.
      if (ex !== undefined && ex.responseDone) ex.keepAlive = false;
      else this.destroy();
      return;
    }
    ex.responseBytes = true;
    this.#inData = true;
    let consumed: number;
    try {
      consumed = this.#parser.execute(chunk);
    } catch (err) {
      this.#inData = false;
      this.#fail(err instanceof ParseError ? 'protocol-error' : 'reset', err as Error);
      this.destroy();
      return;
    }
    this.#inData = false;
    // The response's handler hears that this read is processed (it is undefined once the response is complete).
    ex.handler?.onReadEnd();
    if (this.current !== ex) return; // aborted from a callback
    const tunnelHead = this.#tunnelHead;
    if (tunnelHead !== undefined) {
      this.#tunnelHead = undefined;
      this.#handOver(ex, tunnelHead, consumed < chunk.length ? chunk.subarray(consumed) : Buffer.alloc(0));
      return;
    }
    if (consumed < chunk.length) ex.keepAlive = false; // stray bytes after the response
    this.maybeRelease();
  };

  readonly #onDirectRead = (chunk: Buffer): boolean => {
    this.#onData(chunk);
    return true; // #onData pauses the socket itself when the response's consumer pushes back
  };

  readonly #onDrain = (): void => {
    const ex = this.current;
    if (ex !== undefined && !ex.requestDone) ex.request.body?.resume();
  };

  readonly #onEnd = (): void => {
    const ex = this.current;
    if (ex !== undefined && this.#parser.readingUntilClose) {
      try {
        this.#parser.finish();
      } catch {
        // finish() only throws when busy with a framed body; not the case here
      }
      ex.keepAlive = false;
      this.maybeRelease();
      this.destroy();
      return;
    }
    if (ex !== undefined && !ex.responseDone) {
      this.#fail('reset', this.#error ?? Object.assign(new Error('upstream closed the connection before the response was complete'), { code: 'ECONNRESET' }));
    }
    this.destroy();
  };

  readonly #onError = (err: Error): void => {
    this.#error ??= err;
  };

  readonly #onClose = (): void => {
    const ex = this.current;
    if (ex !== undefined && !ex.responseDone) {
      this.#fail('reset', this.#error ?? Object.assign(new Error('upstream connection closed'), { code: 'ECONNRESET' }));
    }
    this.#goneOnce();
  };

  #onHead(head: ResponseHead): void {
    const ex = this.current;
    if (ex === undefined) return;
    if (head.statusCode < 200 && head.statusCode !== 101) {
      ex.handler?.onInformational(head.statusCode, head.headers);
      return;
    }
    ex.head = head;
    ex.keepAlive = head.keepAlive;
    if (head.keepAliveHintMs !== undefined) this.keepAliveHintMs = head.keepAliveHintMs;
    if (head.framing === 'tunnel') {
      this.#tunnelHead = head;
      return;
    }
    ex.responseStarted = true;
    ex.handler?.onResponse(toResponse(head));
  }

  #onBody(chunk: Buffer): void {
    const ex = this.current;
    const h = ex?.handler;
    if (ex === undefined || h === undefined) return;
    if (!h.onData(chunk) && this.current === ex) {
      ex.paused = true;
      this.socket.pause();
    }
  }

  #onComplete(trailers: string[]): void {
    const ex = this.current;
    if (ex === undefined) return;
    ex.responseDone = true;
    const h = ex.handler;
    ex.handler = undefined;
    if (!ex.requestDone) {
      // The server answered before taking the whole body (e.g. 413, or a final answer to Expect: 100-continue).
      // The connection cannot be reused: the rest of the body would be read as the next request.
      ex.keepAlive = false;
      ex.request.body?.stop();
      ex.requestDone = true;
    }
    h?.onEnd(trailers);
  }

  #handOver(ex: Exchange, head: ResponseHead, rest: Buffer): void {
    const socket = this.socket;
    const h = ex.handler;
    ex.handler = undefined;
    ex.responseStarted = true;
    this.current = undefined;
    socket.pause();
    // Keep an error listener attached at all times: the tunnel adds its own before ours goes.
    socket.on('error', noop);
    socket.off('error', this.#onError);
    if (this.#reads === undefined) socket.off('data', this.#onData);
    else this.#reads.detach(); // the tunnel pipes the socket: reads go back into its stream
    socket.off('end', this.#onEnd);
    socket.off('close', this.#onClose);
    socket.off('drain', this.#onDrain);
    this.#gone = true;
    this.#owner.onGone(this);
    if (h === undefined) {
      socket.destroy();
      return;
    }
    h.onTunnel(toResponse(head), socket, rest);
    socket.off('error', noop);
  }

  #fail(kind: UpstreamFailureKind, error: Error): void {
    const ex = this.current;
    if (ex === undefined) return;
    this.current = undefined;
    ex.request.body?.stop();
    this.#parser.reset();
    const h = ex.handler;
    ex.handler = undefined;
    if (h === undefined) return;
    const failure: UpstreamFailure = {
      kind,
      error,
      responseStarted: ex.responseStarted,
      responseBytes: ex.responseBytes,
      reusedConnection: this.#served > 0,
      requestSent: ex.requestSent,
      refused: false,
    };
    h.onError(failure);
  }
}

function toResponse(head: ResponseHead): UpstreamResponse {
  return {
    statusCode: head.statusCode,
    statusText: head.statusText,
    headers: head.headers,
    close: !head.keepAlive,
    bodyless: head.framing === 'none',
    hopByHop: head.hopByHop,
    readEnds: true,
  };
}
