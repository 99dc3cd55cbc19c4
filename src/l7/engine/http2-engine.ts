// HTTP/2 downstream engine (h2c with prior knowledge; over TLS once the integrator terminates it). One shared
// http2 server is fed with `server.emit('connection', socket)` after the sniffed preface bytes are unshifted (Node
// hands already-read bytes to nghttp2). Each stream becomes an Exchange with an Http2Responder.
//
// - Trailers: responses are sent with waitForTrailers, so upstream trailers (gRPC's grpc-status) follow the body;
//   a response without trailers ends with an empty DATA frame carrying END_STREAM.
// - Flow control is nghttp2's: a paused stream withholds WINDOW_UPDATE; writes respect stream.write()'s answer.
// - Resets: a client RST_STREAM cancels the upstream attempt (same code to an HTTP/2 upstream); an upstream reset
//   after the response started resets the client's stream with the upstream's code (INTERNAL_ERROR when the
//   upstream was HTTP/1.1); REFUSED_STREAM before any response is passed on so the client may retry.
// - Local replies are proper responses with x-remora-error; for gRPC requests a trailers-only response with
//   grpc-status (UNAVAILABLE, DEADLINE_EXCEEDED, ...) so gRPC clients see a gRPC error.
// - CONNECT (RFC 9113 §8.5) is carried as an HTTP/1.1 CONNECT upstream and bridged to the stream on 2xx.
// - Drain: every session gets GOAWAY (session.close(): the last stream id it processed, NO_ERROR) and closes after its
//   streams in flight; a session opened during the drain gets it right after its first stream, so that stream is
//   served. A stream the client sent after the GOAWAY left is refused by the client's stack (REFUSED_STREAM, never
//   processed: safe to retry). nghttp2 ignores every new stream once a GOAWAY was sent, so no "shutdown notice" with
//   the largest stream id is sent: the crossing streams would hang instead of being refused.
import type * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from '../../core/log.js';
import { renderLocalReply } from '../local-reply.js';
import { runRequestChain } from '../http-runtime.js';
import { RequestContext } from '../request-context.js';
import type { DownstreamRequest, DownstreamResponder, HttpConnectionContext, LocalReply } from '../request-types.js';
import type { EngineCore } from './engine-core.js';
import { RequestBody } from '../http/request-body.js';
import { toH2Headers } from '../http/headers.js';
import { flattenIncoming, headersObject, withoutPseudo } from '../pool/http2-pool.js';
import { resetStream } from '../http/http2-reset.js';
import { EmptyWaiters, shutdownEngine } from './drain-wait.js';
import { nodeHttp2 } from '../../core/lazy-builtins.js';
import { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } from '../http/http2-codes.js';

interface SessionState {
  readonly ctx: HttpConnectionContext;
  readonly log: Logger;
}

function noop(): void {}

/**
 * Receive windows of downstream sessions (what a client may send before the proxy acknowledges it: uploads). Larger
 * than HTTP/2's 64 KiB so that an upload is not held to one 64 KiB window per round trip, but kept to what a client
 * that is not read can make the proxy hold per connection (Envoy's recommendation for untrusted downstreams is
 * 64 KiB / 1 MiB). The upstream pool's windows are larger (http2-pool.ts): its peers are endpoints the proxy chose.
 */
const DOWNSTREAM_STREAM_WINDOW = 256 * 1024;
const DOWNSTREAM_CONNECTION_WINDOW = 1024 * 1024;

// `sendDate: false` (honoured by Node's respond(), absent from its types): the upstream's Date, or none, passes as is.
const END_STREAM = { endStream: true, sendDate: false } as http2.ServerStreamResponseOptions;
const WITH_TRAILERS = { waitForTrailers: true, sendDate: false } as http2.ServerStreamResponseOptions;
const PLAIN = { sendDate: false } as http2.ServerStreamResponseOptions;

class Http2Responder implements DownstreamResponder {
  readonly #stream: http2.ServerHttp2Stream;
  #started = false;
  #trailers: readonly string[] = [];

  constructor(stream: http2.ServerHttp2Stream) {
    this.#stream = stream;
  }

  get headersSent(): boolean {
    return this.#started;
  }

  informational(statusCode: number, headers: readonly string[]): void {
    const s = this.#stream;
    if (this.#started || s.destroyed || s.headersSent) return;
    try {
      s.additionalHeaders(headersObject(toH2Headers(headers), { ':status': statusCode }));
    } catch {
      // dropped
    }
  }

  start(statusCode: number, _statusText: string, headers: string[], _close: boolean, bodyless: boolean): boolean {
    const s = this.#stream;
    if (s.destroyed || s.closed) {
      this.#started = true;
      return true;
    }
    try {
      // A bodyless upstream response (gRPC trailers-only, 204, HEAD) stays one HEADERS frame with END_STREAM.
      s.respond(headersObject(headers, { ':status': statusCode }), bodyless ? END_STREAM : WITH_TRAILERS);
    } catch {
      return false;
    }
    this.#started = true;
    if (bodyless) return true;
    // 'wantTrailers' is emitted once: `on` spares once()'s wrapper.
    s.on('wantTrailers', () => {
      const t = this.#trailers;
      try {
        s.sendTrailers(t.length > 0 ? headersObject(t) : {});
      } catch {
        resetStream(s, NGHTTP2_INTERNAL_ERROR);
      }
    });
    return true;
  }

  write(chunk: Buffer): boolean {
    const s = this.#stream;
    if (s.destroyed || s.writableEnded) return true;
    return s.write(chunk);
  }

  /** node:http2 sends the head itself: nothing is held back. */
  flush(): void {}

  onDrain(cb: () => void): void {
    this.#stream.once('drain', cb);
  }

  end(trailers: readonly string[]): void {
    const s = this.#stream;
    this.#trailers = trailers;
    if (!s.destroyed && !s.writableEnded) s.end();
  }

  localReply(reply: LocalReply, grpc: boolean): void {
    const s = this.#stream;
    this.#started = true;
    if (s.destroyed || s.closed || s.headersSent) {
      if (!s.destroyed) resetStream(s, NGHTTP2_INTERNAL_ERROR);
      return;
    }
    const r = renderLocalReply(reply, 'h2', grpc);
    try {
      if (r.body === '') {
        s.respond(headersObject(r.headers as string[], { ':status': r.status }), END_STREAM);
        return;
      }
      s.respond(headersObject(r.headers as string[], { ':status': r.status }), PLAIN);
      s.end(r.body);
    } catch {
      resetStream(s, NGHTTP2_INTERNAL_ERROR);
    }
  }

  reset(h2Code: number): void {
    resetStream(this.#stream, h2Code);
  }

  tunnel(statusCode: number, _statusText: string, headers: string[], upstream: Socket, rest: Buffer): void {
    const s = this.#stream;
    this.#started = true;
    if (s.destroyed || s.closed) {
      upstream.destroy();
      return;
    }
    try {
      s.respond(headersObject(toH2Headers(headers), { ':status': statusCode }), PLAIN);
    } catch {
      upstream.destroy();
      resetStream(s, NGHTTP2_INTERNAL_ERROR);
      return;
    }
    upstream.on('error', () => {
      if (!s.destroyed) resetStream(s, NGHTTP2_INTERNAL_ERROR);
    });
    upstream.once('close', () => {
      if (!s.destroyed && !s.writableEnded) resetStream(s, NGHTTP2_CANCEL);
    });
    s.once('close', () => {
      if (s.rstCode !== undefined && s.rstCode !== 0) upstream.destroy();
    });
    if (rest.length > 0) s.write(rest);
    s.pipe(upstream);
    upstream.pipe(s);
    upstream.resume();
  }
}

export class Http2Engine {
  readonly #core: EngineCore;
  /** Made at the first HTTP/2 connection: node:http2 is not loaded before (src/core/lazy-builtins.ts). */
  #server: http2.Http2Server | undefined;
  readonly #sessions = new Map<http2.ServerHttp2Session, SessionState>();
  #pending: SessionState | undefined;
  /** Draining: sessions get GOAWAY (new ones after their first stream). */
  #draining = false;
  /** Stopped (the drain deadline): connections handed over now are destroyed. */
  #stopped = false;
  readonly #empty = new EmptyWaiters(() => this.#sessions.size);

  constructor(core: EngineCore) {
    this.#core = core;
  }

  #makeServer(): http2.Http2Server {
    const opts = this.#core.options;
    const server = nodeHttp2().createServer({
      maxSessionMemory: opts.h2MaxSessionMemoryMb,
      maxHeaderListPairs: opts.h2MaxHeaderListPairs,
      settings: {
        maxConcurrentStreams: opts.h2MaxConcurrentStreams,
        maxHeaderListSize: opts.maxHeaderBytes,
        initialWindowSize: DOWNSTREAM_STREAM_WINDOW,
      },
    });
    // Streams are taken from each session's own 'stream' event (see #onSession), not from the server's re-emit.
    server.on('session', this.#onSession);
    server.on('sessionError', noop);
    return server;
  }

  get activeConnections(): number {
    return this.#sessions.size;
  }

  handle(socket: Socket, initialBytes: Buffer, ctx: HttpConnectionContext): void {
    socket.on('error', noop);
    if (this.#stopped) {
      socket.destroy();
      return;
    }
    this.#core.stats.increment('http2.connections');
    if (initialBytes.length > 0) socket.unshift(initialBytes);
    this.#pending = { ctx, log: ctx.log ?? this.#core.log };
    try {
      // The 'session' event fires synchronously inside this call.
      (this.#server ??= this.#makeServer()).emit('connection', socket);
    } finally {
      this.#pending = undefined;
    }
  }

  /** Begin the drain: GOAWAY to every session (each closes after its streams in flight). */
  drain(): void {
    this.#draining = true;
    for (const s of this.#sessions.keys()) this.#goaway(s);
  }

  /** End of the drain grace: every session has had its GOAWAY already; the same call, for symmetry with HTTP/1.1. */
  closeIdle(): void {
    this.drain();
  }

  whenEmpty(): Promise<void> {
    return this.#empty.wait();
  }

  destroyAll(): void {
    this.#stopped = true;
    for (const s of this.#sessions.keys()) s.destroy();
  }

  shutdown(graceMs: number): Promise<void> {
    return shutdownEngine(this, graceMs);
  }

  #goaway(session: http2.ServerHttp2Session): void {
    if (session.closed || session.destroyed) return;
    this.#core.stats.increment('http2.drain_goaway');
    session.close();
  }

  readonly #onSession = (session: http2.ServerHttp2Session): void => {
    const state = this.#pending ?? { ctx: { protocol: 'http2', originalDst: { address: '', port: 0 }, sourceAddress: '' }, log: this.#core.log };
    this.#sessions.set(session, state);
    session.on('error', (err: Error) => {
      state.log.debug({ err }, 'http2 session error');
    });
    // One listener per session serves all its streams: the state is at hand (no lookup by session), and the server's
    // own re-emit of 'stream' has no listener.
    session.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, raw?: string[]) => {
      try {
        this.#onStream(state, session, stream, headers, flags, raw);
      } catch {
        // a throw fails this stream only
        resetStream(stream, NGHTTP2_INTERNAL_ERROR);
      }
    });
    // The connection window (the stream window is in the server's SETTINGS): uploads in flight together are not
    // throttled by one 64 KiB window; what an unread client can make us hold stays bounded by it.
    try {
      session.setLocalWindowSize(DOWNSTREAM_CONNECTION_WINDOW);
    } catch {
      // destroyed already: its 'close' cleans up
    }
    const idle = this.#core.options.downstreamIdleTimeoutMs;
    if (idle > 0) {
      session.setTimeout(idle, () => {
        if (!session.closed) session.close();
      });
    }
    session.once('close', () => {
      this.#sessions.delete(session);
      this.#empty.closed();
    });
    // Opened during the drain: served, then told to go away once its first stream is in (see #onStream).
  };

  #onStream(
    state: SessionState,
    session: http2.ServerHttp2Session,
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    flags: number,
    rawHeaders?: string[],
  ): void {
    stream.on('error', noop);
    const method = String(headers[':method'] ?? 'GET');
    const isConnect = method === 'CONNECT';
    const authority = String(headers[':authority'] ?? headers.host ?? '');
    const target = isConnect ? authority : String(headers[':path'] ?? '/');
    const scheme = headers[':scheme'] === 'https' ? 'https' : 'http';
    const flat = rawHeaders !== undefined ? withoutPseudo(rawHeaders) : flattenIncoming(headers);
    const contentType = headers['content-type'];
    const grpc = typeof contentType === 'string' && contentType.startsWith('application/grpc');
    let body: RequestBody | undefined;
    if ((flags & NGHTTP2_FLAG_END_STREAM) === 0 && !isConnect) {
      let trailers: readonly string[] = [];
      stream.on('trailers', (t: http2.IncomingHttpHeaders, _flags: number, raw?: string[]) => {
        trailers = raw !== undefined ? withoutPseudo(raw) : flattenIncoming(t);
      });
      const cl = headers['content-length'];
      const length = cl === undefined ? undefined : Number(cl);
      body = new RequestBody(
        stream,
        length !== undefined && Number.isFinite(length) ? length : undefined,
        () => trailers,
        this.#core.options.replayBufferBytes,
        () => stream.rstCode !== undefined && stream.rstCode !== NGHTTP2_NO_ERROR,
      );
    }
    const dreq: DownstreamRequest = {
      protocol: 'h2',
      method,
      target,
      authority,
      scheme,
      headers: flat,
      body,
      tunnel: isConnect,
      grpc,
      conn: state.ctx,
      log: state.log,
    };
    const ctx = new RequestContext(dreq, this.#core, this.#core.runtime());
    // 'close' is emitted once: `on` spares once()'s wrapper.
    stream.on('close', () => { ctx.downstreamAborted(stream.rstCode); });
    runRequestChain(ctx, new Http2Responder(stream));
    // Draining: a session that came in during the drain (or a stream that crossed the GOAWAY) gets it now, with this
    // stream as its last one, so this stream is served.
    if (this.#draining) this.#goaway(session);
  }
}
