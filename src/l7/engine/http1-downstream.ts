// One downstream HTTP/1.1 connection on its transport (a net.Socket or the accepted TCP handle itself:
// downstream-transport.ts): bytes are parsed by RequestParser (src/l7/http/
// http1-request-parser.ts), each request head becomes a RequestContext run through the runtime's request chain with
// an Http1Responder, and responses go out in request order (pipelining: requests are read and proxied ahead, at
// most MAX_PIPELINED at a time; later responses wait in their responders).
//
// Reading stops (the transport is paused) while a request body's consumer is full (RequestBody pauses its source), while
// MAX_PIPELINED requests wait for their answers, and for good once the connection is ending (a request or response
// said close, a parse error, the client's FIN). Upgrade / CONNECT requests leave HTTP: the connection becomes a
// socket (toSocket()) and goes to a RawResponder (http1-tunnel.ts) once every earlier response is out.
//
// Failures: a malformed head is answered in its turn with the local reply of its kind (400 bad-request /
// request-smuggling, 431) and the connection closes; a framing error inside a body aborts that request's exchange
// (its upstream connection is destroyed, never reused) and is answered 400 request-smuggling when no response has
// started; a head not complete within the headers timeout gets 408 (the engine's sweep calls checkTimers()).
import type { Logger } from '../../core/log.js';
import type { LiveEntry } from '../../core/live-set.js';
import { runRequestChain } from '../http-runtime.js';
import { headerValue, listTokens, removeHeader, stripHopByHop } from '../http/headers.js';
import { Http1SyntaxError } from '../http/http1-syntax.js';
import { RequestEvent, RequestParser, type ParsedRequestHead } from '../http/http1-request-parser.js';
import { RequestBody, type BodySource } from '../http/request-body.js';
import { localReply } from '../local-reply.js';
import { RequestContext } from '../request-context.js';
import type { DownstreamRequest, HttpConnectionContext, LocalReplyReason } from '../request-types.js';
import type { DownstreamTransport } from './downstream-transport.js';
import type { EngineCore } from './engine-core.js';
import { Http1Responder, type ResponderOwner } from './http1-responder.js';
import { RawResponder } from './http1-tunnel.js';

/** Requests read ahead of their answers on one connection. */
const MAX_PIPELINED = 32;
/** A refused connection's answer must be read within this long. */
const REFUSAL_LINGER_MS = 5_000;

function noop(): void {}

/** What a connection needs from its engine. */
export interface DownstreamOwner {
  readonly core: EngineCore;
  /** Draining: every response closes its connection. */
  readonly closing: boolean;
  /** The end of the drain grace: close idle connections. */
  readonly closingIdle: boolean;
  /** The connection became idle (its last response ended). */
  becameIdle(conn: Http1Downstream): void;
  /** A new connection (from its constructor): the owner keeps it among its live ones until closed(). */
  opened(conn: Http1Downstream): LiveEntry<Http1Downstream>;
  /** The connection closed: the entry opened() returned. */
  closed(entry: LiveEntry<Http1Downstream>): void;
}

/** The body source of one request: the connection feeds it; it pauses / resumes the connection while current. */
class BodyFeed implements BodySource {
  readonly #conn: Http1Downstream;
  live = true;
  trailers: readonly string[] = [];
  readonly getTrailers = (): readonly string[] => this.trailers;

  constructor(conn: Http1Downstream) {
    this.#conn = conn;
  }

  pause(): void {
    if (this.live) this.#conn.bodyPaused(true);
  }

  resume(): void {
    if (this.live) this.#conn.bodyPaused(false);
  }
}

export class Http1Downstream implements ResponderOwner {
  readonly transport: DownstreamTransport;
  readonly #owner: DownstreamOwner;
  readonly #entry: LiveEntry<Http1Downstream>;
  readonly #ctx: HttpConnectionContext;
  readonly #log: Logger;
  readonly #parser: RequestParser;
  /** Responses in request order; [0] writes to the transport. */
  readonly #queue: Http1Responder[] = [];
  #body: RequestBody | undefined;
  #feed: BodyFeed | undefined;
  /** The responder of the request whose body is being read. */
  #bodyResponder: Http1Responder | undefined;
  #bodyHeld = false;
  #readsPaused = true;
  /** No more requests are parsed (closing, failed, tunnel). */
  #halted = false;
  /** The client sent FIN. */
  #eof = false;
  /** Became a tunnel (or a raw answer): no longer an HTTP connection. */
  #raw = false;
  /** An Upgrade / CONNECT head waiting for the earlier responses. */
  #pendingTunnel: ParsedRequestHead | undefined;
  /** Had a response complete with nothing left in flight at least once. */
  #everIdle = false;
  /** When the head being read began (ms, 0: not reading a head). */
  #headStart = 0;
  /** When the connection last became idle (ms). */
  #idleSince: number;
  #gone = false;
  /** The request whose body is being read does not allow keep-alive: stop after its body. */
  #lastAfterBody = false;
  #pumping = false;
  /** A request was refused (parse error, timeout): its answer is the last thing sent. */
  #refused = false;
  /** A refused connection's deadline for reading its answer. */
  #linger: NodeJS.Timeout | undefined;

  constructor(transport: DownstreamTransport, owner: DownstreamOwner, ctx: HttpConnectionContext) {
    this.transport = transport;
    this.#owner = owner;
    this.#ctx = ctx;
    this.#log = ctx.log ?? owner.core.log;
    this.#parser = new RequestParser({ maxHeadBytes: owner.core.options.maxHeaderBytes });
    this.#idleSince = Date.now();
    transport.listen({ data: this.#onData, end: this.#onEnd, close: this.#onClose });
    this.#entry = owner.opened(this);
  }

  get closing(): boolean {
    return this.#owner.closing;
  }

  /** Start with the bytes the sniffer read. */
  start(initialBytes: Buffer): void {
    if (initialBytes.length > 0) this.#parser.push(initialBytes);
    this.#pump();
    // Detection may have left the handle reading: a connection that is to stay paused stops reading at the handle.
    // (Node's stream pause() did not stop it; with direct reads pause() does.) Usually the pump has resumed it.
    if (this.#readsPaused && this.transport.directReads && !this.#gone) this.transport.pause();
    // The client's FIN may have been read before the hand-over ('end' already emitted): handle it as if it came now.
    if (this.transport.readableEnded && !this.#eof && !this.#gone) this.#onEnd();
  }

  /**
   * No request in flight, no byte of a next request read, not a tunnel, and at least one response completed:
   * closing it loses nothing the proxy has read.
   */
  get idle(): boolean {
    return this.#everIdle && this.#queue.length === 0 && !this.#raw && this.#pendingTunnel === undefined && this.#parser.idle;
  }

  destroy(): void {
    this.transport.destroy();
  }

  onTransportDrain(cb: () => void): void {
    this.transport.onceDrain(cb);
  }

  /** The current body's consumer is full (true) or wants more (false). */
  bodyPaused(paused: boolean): void {
    this.#bodyHeld = paused;
    if (!paused) this.#pump();
  }

  /** The engine's sweep: the headers timeout and the idle timeout. */
  checkTimers(now: number, headersTimeoutMs: number, idleTimeoutMs: number): void {
    if (this.#gone || this.#raw) return;
    if (this.#headStart > 0 && headersTimeoutMs > 0 && now - this.#headStart >= headersTimeoutMs && !this.#halted) {
      this.#headStart = 0;
      this.#refuse('request-timeout', 'ERR_HTTP_HEADERS_TIMEOUT', 'request head not received in time');
      return;
    }
    if (idleTimeoutMs > 0 && this.#queue.length === 0 && this.#parser.idle && this.#pendingTunnel === undefined
      && now - this.#idleSince >= idleTimeoutMs) {
      this.transport.destroy();
    }
  }

  // ---- ResponderOwner ----

  responseDone(r: Http1Responder): void {
    if (r === this.#bodyResponder && this.#body !== undefined) {
      // Answered before its body was read (a filter's local reply, an early upstream answer): the rest of the body is
      // read and dropped so that the next request can be parsed (Node's server did the same). Not re-entered here:
      // the pump below continues.
      const pumping = this.#pumping;
      this.#pumping = true;
      try {
        this.#body.dispose();
      } finally {
        this.#pumping = pumping;
      }
    }
    const q = this.#queue;
    if (q[0] !== r) return; // kept until its turn
    for (;;) {
      const head = q[0];
      if (head === undefined || !head.ended) break;
      q.shift();
      if (head.closesConnection) {
        this.#closeAfterResponses();
        return;
      }
      const next = q[0];
      if (next === undefined) break;
      next.activate();
    }
    if (q.length > 0) {
      this.#pump();
      return;
    }
    this.#idleSince = Date.now();
    this.#everIdle = true;
    if (this.#pendingTunnel !== undefined) {
      const head = this.#pendingTunnel;
      this.#pendingTunnel = undefined;
      this.#startTunnel(head);
      return;
    }
    if (this.#eof && !this.#parser.midMessage) {
      this.#closeAfterResponses();
      return;
    }
    this.#pump();
    if (this.#queue.length === 0) this.#owner.becameIdle(this);
  }

  // ---- reading ----

  readonly #onData = (chunk: Buffer): void => {
    if (this.#halted) return; // a closing connection: later bytes are not read as requests
    this.#parser.push(chunk);
    this.#pump();
  };

  #pump(): void {
    if (this.#pumping) return; // re-entered from a handler: the running loop re-checks everything
    this.#pumping = true;
    try {
      this.#pumpLoop();
    } finally {
      this.#pumping = false;
    }
  }

  #pumpLoop(): void {
    const parser = this.#parser;
    while (!this.#halted) {
      if (parser.inBody && this.#bodyHeld) {
        this.#pause();
        return;
      }
      if (!parser.inBody && this.#queue.length >= MAX_PIPELINED) {
        this.#pause();
        return;
      }
      let ev: RequestEvent;
      try {
        ev = parser.next();
      } catch (err) {
        this.#onParseError(err as Error);
        return;
      }
      switch (ev) {
        case RequestEvent.NeedMore:
          if (parser.inHead) {
            if (this.#headStart === 0) this.#headStart = Date.now();
          }
          if (this.#eof) {
            this.#onEofMidMessage();
            return;
          }
          this.#resume();
          return;
        case RequestEvent.Head:
          this.#headStart = 0;
          this.#onHead(parser.head as ParsedRequestHead);
          break;
        case RequestEvent.Body:
          this.#body?.push(parser.chunk as Buffer);
          break;
        case RequestEvent.End:
          this.#onBodyEnd(parser.trailers);
          break;
        case RequestEvent.Tunnel:
          this.#halted = true;
          this.#pause();
          if (this.#queue.length === 0) this.#startTunnel(parser.head as ParsedRequestHead);
          else this.#pendingTunnel = parser.head;
          return;
      }
    }
  }

  #pause(): void {
    if (!this.#readsPaused) {
      this.#readsPaused = true;
      this.transport.pause();
    }
  }

  #resume(): void {
    if (this.#readsPaused && !this.#gone) {
      this.#readsPaused = false;
      this.transport.resume();
    }
  }

  #onHead(head: ParsedRequestHead): void {
    if (head.upgrade) return; // Event.Tunnel follows
    const core = this.#owner.core;
    const responder = new Http1Responder(this, head.method, head.versionMinor, head.keepAlive);
    const q = this.#queue;
    q.push(responder);
    if (q.length === 1) responder.activate();
    // A request that does not allow keep-alive is the last one read (its body still is).
    if (!head.keepAlive) {
      if (head.framing === 'none') this.#halted = true;
      else this.#lastAfterBody = true;
    }
    const headers = head.hopByHop ? stripHopByHop(head.headers, false) : head.headers;
    let body: RequestBody | undefined;
    if (head.framing !== 'none') {
      const feed = new BodyFeed(this);
      this.#feed = feed;
      this.#bodyResponder = responder;
      this.#bodyHeld = true;
      body = new RequestBody(
        feed,
        head.framing === 'length' ? head.contentLength : undefined,
        feed.getTrailers,
        core.options.replayBufferBytes,
      );
      this.#body = body;
    }
    const ctx = new RequestContext(this.#request(head, headers, body, false), core, core.runtime());
    responder.bind(ctx);
    runRequestChain(ctx, responder);
  }

  /** The request the chain sees: a head read on this connection (a tunnel's has no body). */
  #request(head: ParsedRequestHead, headers: DownstreamRequest['headers'], body: DownstreamRequest['body'], tunnel: boolean): DownstreamRequest {
    return {
      protocol: 'http/1.1', method: head.method, target: head.target, authority: head.host ?? '', scheme: 'http',
      headers, body, tunnel, grpc: false, conn: this.#ctx, log: this.#log,
    };
  }

  #onBodyEnd(trailers: string[]): void {
    const feed = this.#feed;
    const body = this.#body;
    this.#feed = undefined;
    this.#body = undefined;
    this.#bodyResponder = undefined;
    this.#bodyHeld = false;
    if (feed !== undefined) {
      feed.trailers = trailers;
      feed.live = false;
    }
    body?.pushEnd();
    if (this.#lastAfterBody) this.#halted = true;
  }

  // ---- tunnels ----

  #startTunnel(head: ParsedRequestHead): void {
    const core = this.#owner.core;
    this.#raw = true;
    const held = this.#parser.rest();
    this.#pause();
    // The tunnel pipes a socket: the connection is one from now on (the handle's becomes one here), and its close is
    // this connection's.
    const socket = this.transport.toSocket();
    socket.pause();
    socket.on('error', noop);
    socket.once('close', this.#onClose);
    const opts = core.options;
    const responder = new RawResponder(socket, held, {
      idleTimeoutMs: opts.tunnelIdleTimeoutMs,
      halfCloseTimeoutMs: opts.halfCloseTimeoutMs,
    }, noop);
    const isConnect = head.method === 'CONNECT';
    const upgrade = listTokens(headerValue(head.headers, 'upgrade') ?? '');
    const h2cOnly = !isConnect && upgrade.length > 0 && upgrade.every((t) => t === 'h2c');
    const tunnel = !h2cOnly;
    const headers = stripHopByHop(head.headers, !isConnect && tunnel);
    if (h2cOnly) {
      removeHeader(headers, 'http2-settings');
      core.stats.increment('http1.h2c_upgrades_refused');
    }
    responder.setBodyless(head.method === 'HEAD');
    const ctx = new RequestContext(this.#request(head, headers, undefined, tunnel), core, core.runtime());
    socket.once('close', () => { ctx.downstreamAborted(); });
    runRequestChain(ctx, responder);
  }

  // ---- failures and the end ----

  #onParseError(err: Error): void {
    const e = err instanceof Http1SyntaxError ? err : new Http1SyntaxError(err.message);
    const reason: LocalReplyReason = e.tooLarge ? 'header-too-large' : e.smuggling ? 'request-smuggling' : 'bad-request';
    this.#refuse(reason, e.tooLarge ? 'HPE_HEADER_OVERFLOW' : e.smuggling ? 'HPE_INVALID_FRAMING' : 'HPE_INVALID', e.message);
  }

  /** Refuse what is being read with a local reply in its turn, then close. */
  #refuse(reason: LocalReplyReason, code: string, message: string): void {
    this.#halted = true;
    this.#refused = true;
    this.#pause();
    const core = this.#owner.core;
    const inBody = this.#bodyResponder;
    this.#bodyResponder = undefined;
    if (this.#feed !== undefined) this.#feed.live = false;
    this.#feed = undefined;
    this.#body = undefined;
    let responder: Http1Responder;
    if (inBody !== undefined && !inBody.ended) {
      // The head is already being proxied: abort that exchange (its upstream connection is destroyed).
      if (inBody.headersSent) {
        this.transport.destroy();
        return;
      }
      inBody.aborted();
      responder = new Http1Responder(this, 'GET', 1, false);
      const i = this.#queue.indexOf(inBody);
      if (i >= 0) this.#queue[i] = responder;
      else this.#queue.push(responder);
    } else {
      responder = new Http1Responder(this, 'GET', 1, false);
      this.#queue.push(responder);
    }
    if (this.#queue[0] === responder) responder.activate();
    core.stats.increment(`http.local_replies.${reason}`);
    this.#log.info({ event: 'http.request-refused', reason, code, message }, 'request refused');
    responder.localReply({ ...localReply(reason), close: true }, false);
  }

  /** The client's FIN came inside a request. */
  #onEofMidMessage(): void {
    if (this.#halted) return;
    this.#refuse('bad-request', 'HPE_INVALID_EOF_STATE', 'connection ended inside a request');
  }

  /** After the responses in flight: no more requests; close the connection once they are written. */
  #closeAfterResponses(): void {
    this.#halted = true;
    this.#pause();
    const q = this.#queue;
    for (const r of q) r.aborted(); // requests after a closing response are not answered
    q.length = 0;
    const t = this.transport;
    if (t.destroyed) return;
    // Reading has stopped, so the client's FIN may never be seen: destroy once our FIN is out.
    t.end(() => t.destroy());
    if (this.#refused && this.#linger === undefined) {
      // A client that does not read the refusal must not keep the connection.
      this.#linger = setTimeout(() => t.destroy(), REFUSAL_LINGER_MS);
      this.#linger.unref();
    }
  }

  readonly #onEnd = (): void => {
    this.#eof = true;
    if (this.#raw) return;
    if (this.#halted) {
      if (this.#queue.length === 0 && !this.transport.destroyed) this.transport.end();
      return;
    }
    if (this.#parser.midMessage) {
      // Bytes of a request are buffered: parse them (a complete head may be waiting behind a held body), then decide.
      this.#pump();
      return;
    }
    if (this.#queue.length === 0) this.#closeAfterResponses();
  };

  readonly #onClose = (): void => {
    if (this.#gone) return;
    this.#gone = true;
    if (this.#linger !== undefined) clearTimeout(this.#linger);
    this.#linger = undefined;
    const q = this.#queue.splice(0);
    for (const r of q) if (!r.ended) r.aborted();
    if (this.#feed !== undefined) this.#feed.live = false;
    this.#owner.closed(this.#entry);
  };
}
