// HTTP/1.x downstream engine. Requests are parsed by Node's llhttp (one shared http.Server, fed with
// `server.emit('connection', socket)` after the sniffed bytes are unshifted): strict parsing (no lenient flags),
// 64 KiB heads, raw header arrays so names keep their case and order, keep-alive and pipelining (responses in
// order) handled by Node. The engine fills llhttp's gaps (Host count, Transfer-Encoding on HTTP/1.0, version) and
// answers every parse error itself with `x-remora-error`.
//
// Each request becomes a RequestContext run through the runtime's request chain (src/l7/http-runtime.ts) with an
// Http1Responder on the ServerResponse; Upgrade and CONNECT requests use a RawResponder on the detached socket
// (http1-tunnel.ts).
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../../core/log.js';
import { localReply, rawHttp1LocalReply, renderLocalReply } from '../local-reply.js';
import { runRequestChain } from '../http-runtime.js';
import { RequestContext } from '../request-context.js';
import type { DownstreamRequest, DownstreamResponder, HttpConnectionContext, LocalReply, LocalReplyReason } from '../request-types.js';
import type { EngineCore } from './engine-core.js';
import { RequestBody } from '../http/request-body.js';
import { RawResponder } from './http1-tunnel.js';
import { headerCount, headerValue, listTokens, removeHeader, stripHopByHop } from '../http/headers.js';
import { EmptyWaiters, emptyWithin } from './drain-wait.js';

interface ConnState {
  readonly ctx: HttpConnectionContext;
  readonly log: Logger;
  /** Requests received and not answered yet. */
  inflight: number;
  /** Became a tunnel (or a raw answer): no longer an HTTP connection. */
  raw: boolean;
  /**
   * socket.bytesRead when the connection last became idle (its last response finished and no request was in flight);
   * -1 before its first response. The connection is idle only while bytesRead is still this: a byte read since then
   * belongs to a request that must be answered, so the connection is not closed under it.
   */
  idleMark: number;
}

function noop(): void {}

/** Run a request handler so that a throw destroys that connection only. */
function guard<T extends unknown[]>(fn: (req: IncomingMessage, ...rest: T) => void): (req: IncomingMessage, ...rest: T) => void {
  return (req, ...rest) => {
    try {
      fn(req, ...rest);
    } catch {
      req.socket.destroy();
    }
  };
}

/** llhttp error codes that mean the message framing is ambiguous or broken (possible smuggling). */
const SMUGGLING_CODES = new Set([
  'HPE_INVALID_TRANSFER_ENCODING',
  'HPE_INVALID_CONTENT_LENGTH',
  'HPE_UNEXPECTED_CONTENT_LENGTH',
  'HPE_INVALID_CHUNK_SIZE',
  'HPE_CHUNK_EXTENSIONS_OVERFLOW',
  'HPE_CR_EXPECTED',
  'HPE_LF_EXPECTED',
  'HPE_STRICT',
]);

function reasonForParseError(code: string): LocalReplyReason | undefined {
  if (code === 'HPE_HEADER_OVERFLOW') return 'header-too-large';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT') return 'request-timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECANCELED' || code === 'ETIMEDOUT') return undefined;
  if (SMUGGLING_CODES.has(code)) return 'request-smuggling';
  return 'bad-request';
}

/** Checks llhttp leaves to the application (RFC 9112 §3.2, §6.1). */
function validateRequest(req: IncomingMessage): LocalReplyReason | undefined {
  if (req.httpVersionMajor !== 1) return 'bad-request';
  const raw = req.rawHeaders;
  const hosts = headerCount(raw, 'host');
  if (hosts > 1 || (hosts === 0 && req.httpVersionMinor === 1)) return 'bad-request';
  const te = headerValue(raw, 'transfer-encoding');
  if (te !== undefined) {
    if (req.httpVersionMinor === 0) return 'request-smuggling';
    // A request's final transfer coding must be chunked (RFC 9112 §6.3); llhttp reports this only after the head.
    const codings = listTokens(te);
    if (codings[codings.length - 1] !== 'chunked') return 'request-smuggling';
  }
  return undefined;
}

/** The Exchange's view of a request: `headers` already without hop-by-hop fields. */
function downstreamRequest(
  req: IncomingMessage, state: ConnState, headers: string[], body: RequestBody | undefined, tunnel: boolean,
): DownstreamRequest {
  return {
    protocol: 'http/1.1',
    method: req.method ?? 'GET',
    target: req.url ?? '/',
    authority: headerValue(req.rawHeaders, 'host') ?? '',
    scheme: 'http',
    headers,
    body,
    tunnel,
    grpc: false,
    conn: state.ctx,
    log: state.log,
  };
}

class Http1Responder implements DownstreamResponder {
  readonly #res: ServerResponse;
  readonly #engine: Http1Engine;
  #started = false;

  constructor(res: ServerResponse, engine: Http1Engine) {
    this.#res = res;
    this.#engine = engine;
    // A write racing a closed connection must never become an unhandled 'error'.
    res.on('error', noop);
  }

  get headersSent(): boolean {
    return this.#started;
  }

  informational(statusCode: number, headers: readonly string[]): void {
    const res = this.#res;
    if (this.#started || res.destroyed) return;
    try {
      if (statusCode === 100) res.writeContinue();
      else if (statusCode === 102) res.writeProcessing();
      else if (statusCode === 103) {
        const hints: Record<string, string | string[]> = {};
        for (let i = 0; i < headers.length; i += 2) {
          const k = (headers[i] as string).toLowerCase();
          const prev = hints[k];
          const v = headers[i + 1] as string;
          hints[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
        }
        res.writeEarlyHints(hints);
      }
    } catch {
      // an interim response that cannot be written is dropped
    }
  }

  start(statusCode: number, statusText: string, headers: string[], close: boolean, _bodyless: boolean): boolean {
    const res = this.#res;
    try {
      if (close || this.#engine.closing) res.shouldKeepAlive = false;
      res.writeHead(statusCode, statusText === '' ? (http.STATUS_CODES[statusCode] ?? '') : statusText, headers);
    } catch {
      return false;
    }
    this.#started = true;
    // Send the head with the first body chunk when it is already here (same socket read); otherwise on its own, so
    // that slow or streaming responses reach the client at once.
    process.nextTick(() => {
      if (!res.headersSent && !res.writableEnded && !res.destroyed) res.flushHeaders();
    });
    return true;
  }

  write(chunk: Buffer): boolean {
    return this.#res.write(chunk);
  }

  onDrain(cb: () => void): void {
    this.#res.once('drain', cb);
  }

  end(trailers: readonly string[]): void {
    const res = this.#res;
    if (trailers.length > 0) {
      const t: [string, string][] = [];
      for (let i = 0; i < trailers.length; i += 2) t.push([trailers[i] as string, trailers[i + 1] as string]);
      try {
        res.addTrailers(t);
      } catch {
        // invalid trailer: dropped
      }
    }
    res.end();
  }

  localReply(reply: LocalReply, _grpc: boolean): void {
    const res = this.#res;
    if (res.destroyed) return;
    this.#started = true;
    const closing = this.#engine.closing;
    if (reply.close || closing) res.shouldKeepAlive = false;
    const r = renderLocalReply(reply, 'http/1.1', false);
    try {
      // Node adds `Connection: close` itself when shouldKeepAlive is false; the rendered one is dropped to avoid a duplicate.
      const headers = [...r.headers];
      const i = headers.indexOf('connection');
      if (i >= 0) headers.splice(i, 2);
      res.writeHead(r.status, headers);
      res.end(r.body);
    } catch {
      res.destroy();
    }
  }

  reset(_h2Code: number): void {
    this.#res.destroy();
  }

  tunnel(_s: number, _t: string, _h: string[], upstream: Socket): void {
    upstream.destroy();
    this.#res.destroy();
  }
}

/** What node:http's server parser tells about its connection (an internal object: read defensively). */
interface ParserView {
  /** ms since the message being parsed began; 0 when no message is in progress (node's ConnectionsList idle check). */
  duration?: () => number;
}

/**
 * The parser holds part of a message: a pipelined request head read in the same chunk as the previous request (so
 * before the last response ended, and not caught by idleMark). node:http's own closeIdleConnections() uses the same
 * state. Absent (another Node version): false, and idleMark alone decides.
 */
function parserMidMessage(socket: Socket): boolean {
  const parser = (socket as Socket & { parser?: ParserView | null }).parser;
  if (parser === null || parser === undefined || typeof parser.duration !== 'function') return false;
  return parser.duration() > 0;
}

/**
 * No request in flight, no byte read since the last response, and no partial request in the parser: closing it loses
 * nothing the proxy has read.
 */
function isIdle(state: ConnState, socket: Socket): boolean {
  return state.inflight === 0 && !state.raw && state.idleMark >= 0 && socket.bytesRead === state.idleMark
    && !parserMidMessage(socket);
}

export class Http1Engine {
  readonly #core: EngineCore;
  readonly #server: http.Server;
  readonly #conns = new WeakMap<Socket, ConnState>();
  readonly #sockets = new Set<Socket>();
  /** Draining: every response says Connection: close; connections are still taken and served. */
  #draining = false;
  /** End of the drain grace: idle connections are closed, and each one as soon as it becomes idle. */
  #closingIdle = false;
  /** Stopped (the drain deadline): connections handed over now are destroyed. */
  #stopped = false;
  readonly #empty = new EmptyWaiters(() => this.#sockets.size);

  constructor(core: EngineCore) {
    this.#core = core;
    const opts = core.options;
    const server = http.createServer({
      maxHeaderSize: opts.maxHeaderBytes,
      insecureHTTPParser: false,
      joinDuplicateHeaders: false,
      requireHostHeader: false, // checked here, to answer with x-remora-error
      keepAliveTimeout: opts.downstreamIdleTimeoutMs,
      headersTimeout: opts.headersTimeoutMs,
      requestTimeout: 0, // long uploads and streams are bounded by route timeouts, not by the server
    });
    // Let half-closed clients get their answers (RFC 9112 §9.6); Node's default aborts them.
    (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    server.maxHeadersCount = 0;
    const onRequest = guard(this.#onRequest);
    const onRaw = guard(this.#onRawRequest);
    server.on('request', onRequest);
    server.on('checkContinue', onRequest); // forward the expectation; the upstream's 100 is relayed
    server.on('checkExpectation', onRequest);
    server.on('upgrade', onRaw);
    server.on('connect', onRaw);
    server.on('clientError', this.#onClientError);
    this.#server = server;
  }

  get activeConnections(): number {
    return this.#sockets.size;
  }

  /** Responses say Connection: close (the drain has begun). */
  get closing(): boolean {
    return this.#draining;
  }

  handle(socket: Socket, initialBytes: Buffer, ctx: HttpConnectionContext): void {
    socket.on('error', noop);
    const state: ConnState = { ctx, log: ctx.log ?? this.#core.log, inflight: 0, raw: false, idleMark: -1 };
    this.#conns.set(socket, state);
    this.#sockets.add(socket);
    this.#core.stats.increment('http1.connections');
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#empty.closed();
    });
    // Draining, a connection is still served (its request gets Connection: close): its bytes were read by detection,
    // and a well-behaved client that was told to reconnect must not find the door shut. Only the deadline refuses.
    if (this.#stopped) {
      socket.destroy();
      return;
    }
    if (initialBytes.length > 0) socket.unshift(initialBytes);
    this.#server.emit('connection', socket);
    socket.resume();
  }

  /** Begin the drain: every response from now on carries Connection: close and ends its connection. */
  drain(): void {
    this.#draining = true;
  }

  /**
   * End of the drain grace: close the idle connections now (no request in flight, no byte read since the last
   * response), and every other one as soon as it becomes idle (its response in flight carries Connection: close).
   * A connection holding unanswered bytes is never closed under them.
   */
  closeIdle(): void {
    this.#draining = true;
    this.#closingIdle = true;
    for (const s of this.#sockets) this.#closeIfIdle(s);
  }

  /** Resolves when no connection is left. */
  whenEmpty(): Promise<void> {
    return this.#empty.wait();
  }

  /** Destroy every connection left (the drain deadline); connections handed over afterwards are destroyed. */
  destroyAll(): void {
    this.#stopped = true;
    for (const s of this.#sockets) s.destroy();
  }

  async shutdown(graceMs: number): Promise<void> {
    this.closeIdle();
    await emptyWithin(this.whenEmpty(), graceMs);
    this.destroyAll();
  }

  #closeIfIdle(socket: Socket): void {
    const st = this.#conns.get(socket);
    // destroy(), not end(): after end() the server would still read (and never answer) a request arriving late.
    // With the socket closed, a late request meets a reset the client can retry.
    if (st !== undefined && !socket.destroyed && isIdle(st, socket)) {
      this.#core.stats.increment('http1.drain_idle_closed');
      socket.destroy();
    }
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket;
    const state = this.#conns.get(socket);
    if (state === undefined) {
      res.destroy();
      return;
    }
    res.sendDate = false;
    req.on('error', noop);
    state.inflight++;
    let counted = true;
    // Called on the response's 'close' (after 'finish', or when it was aborted).
    const done = (): void => {
      if (!counted) return;
      counted = false;
      state.inflight--;
      if (state.inflight > 0) return;
      state.idleMark = socket.bytesRead;
      // A response that began before the drain kept the connection alive: close it now if it stays idle.
      if (this.#closingIdle) this.#closeIfIdle(socket);
    };
    const responder = new Http1Responder(res, this);
    const invalid = validateRequest(req);
    if (invalid !== undefined) {
      this.#core.stats.increment(`http.local_replies.${invalid}`);
      state.log.info({ event: 'http.request-refused', reason: invalid, method: req.method }, 'request refused');
      res.once('close', done);
      responder.localReply({ ...localReply(invalid), close: true }, false);
      req.resume();
      return;
    }
    const raw = req.rawHeaders;
    const headers = stripHopByHop(raw, false);
    let body: RequestBody | undefined;
    if (headerValue(raw, 'transfer-encoding') !== undefined) {
      body = new RequestBody(req, undefined, () => req.rawTrailers, this.#core.options.replayBufferBytes);
    } else {
      const cl = headerValue(raw, 'content-length');
      if (cl !== undefined && cl !== '0') {
        body = new RequestBody(req, Number(cl), () => req.rawTrailers, this.#core.options.replayBufferBytes);
      }
    }
    const ctx = new RequestContext(downstreamRequest(req, state, headers, body, false), this.#core, this.#core.runtime());
    res.once('close', () => {
      done();
      ctx.downstreamAborted();
    });
    runRequestChain(ctx, responder);
  };

  readonly #onRawRequest = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    const state = this.#conns.get(socket);
    if (state === undefined) {
      socket.destroy();
      return;
    }
    state.raw = true;
    state.inflight++;
    const opts = this.#core.options;
    const responder = new RawResponder(socket, head, {
      idleTimeoutMs: opts.tunnelIdleTimeoutMs,
      halfCloseTimeoutMs: opts.halfCloseTimeoutMs,
    }, noop);
    const invalid = validateRequest(req);
    if (invalid !== undefined) {
      this.#core.stats.increment(`http.local_replies.${invalid}`);
      responder.localReply({ ...localReply(invalid), close: true }, false);
      return;
    }
    const raw = req.rawHeaders;
    const isConnect = req.method === 'CONNECT';
    const upgrade = listTokens(headerValue(raw, 'upgrade') ?? '');
    const h2cOnly = !isConnect && upgrade.length > 0 && upgrade.every((t) => t === 'h2c');
    const tunnel = !h2cOnly;
    const headers = stripHopByHop(raw, !isConnect && tunnel);
    if (h2cOnly) {
      removeHeader(headers, 'http2-settings');
      this.#core.stats.increment('http1.h2c_upgrades_refused');
    }
    responder.setBodyless(req.method === 'HEAD');
    // The client's bytes after the head are held and sent once the tunnel is up (a body is not expected before).
    const ctx = new RequestContext(downstreamRequest(req, state, headers, undefined, tunnel), this.#core, this.#core.runtime());
    socket.once('close', () => { ctx.downstreamAborted(); });
    runRequestChain(ctx, responder);
  };

  readonly #onClientError = (err: Error & { code?: string }, socket: Socket): void => {
    const state = this.#conns.get(socket);
    const code = err.code ?? 'UNKNOWN';
    const reason = reasonForParseError(code);
    const pending = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (reason === undefined || !socket.writable) {
      socket.destroy();
      return;
    }
    if (pending != null && pending.headersSent) {
      // A response is already on the wire (e.g. the reply to a request refused at its head): let it flush, then close.
      socket.end(() => socket.destroy());
      const t = setTimeout(() => socket.destroy(), 5_000);
      t.unref();
      socket.once('close', () => clearTimeout(t));
      return;
    }
    this.#core.stats.increment(`http.local_replies.${reason}`);
    (state?.log ?? this.#core.log).info({ event: 'http.request-refused', reason, code, message: err.message }, 'request refused');
    socket.end(rawHttp1LocalReply(localReply(reason)), () => socket.destroy());
    // A client that does not read its answer must not keep the socket.
    const timer = setTimeout(() => socket.destroy(), 5_000);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  };
}
