// One downstream HTTP/2 connection on remora's own codec (src/l7/h2/h2-connection.ts, server side): each stream the
// client opens is checked against RFC 9113's field rules (h2-fields.ts), becomes a DownstreamRequest with a RequestContext,
// and runs through the runtime's request chain with an H2Responder (h2-responder.ts) answering on the stream.
//
// - A malformed request head (RFC 9113 §8.1.1) resets its stream with PROTOCOL_ERROR; a head above the header list
//   limit is answered 431 (header-too-large). Neither reaches the filters.
// - Drain: GOAWAY with the last stream id the client opened; the connection closes after its streams in flight. A
//   connection opened during the drain gets its GOAWAY right after its first stream, so that stream is served;
//   streams the client opens after the GOAWAY are not processed (the client may retry them elsewhere).
// - Idle: a connection without streams for the engine's idle timeout gets GOAWAY (the engine's sweep).
import type { Socket } from 'node:net';
import type { LiveEntry } from '../../core/live-set.js';
import type { Logger } from '../../core/log.js';
import { runRequestChain } from '../http-runtime.js';
import { RequestBody } from '../http/request-body.js';
import { localReply } from '../local-reply.js';
import { RequestContext } from '../request-context.js';
import type { DownstreamRequest, HttpConnectionContext } from '../request-types.js';
import { H2Connection, type H2ConnectionOwner } from '../h2/h2-connection.js';
import type { H2Stream } from '../h2/h2-stream.js';
import { parseRequestFields } from '../h2/h2-fields.js';
import { PROTOCOL_ERROR } from '../h2/frame.js';
import type { EngineCore } from './engine-core.js';
import { H2Responder } from './h2-responder.js';

/** Receive windows for clients (uploads): above HTTP/2's 64 KiB, bounded for clients that do not read. */
export const DOWNSTREAM_STREAM_WINDOW = 256 * 1024;
export const DOWNSTREAM_CONNECTION_WINDOW = 1024 * 1024;

/** What a connection needs from its engine. */
export interface H2DownstreamOwner {
  readonly core: EngineCore;
  readonly draining: boolean;
  opened(conn: H2Downstream): LiveEntry<H2Downstream>;
  closed(entry: LiveEntry<H2Downstream>): void;
}

export class H2Downstream implements H2ConnectionOwner {
  readonly #owner: H2DownstreamOwner;
  readonly #core: EngineCore;
  readonly #ctx: HttpConnectionContext;
  readonly #log: Logger;
  readonly #conn: H2Connection;
  readonly #entry: LiveEntry<H2Downstream>;
  #idleSince: number;
  #goaway = false;

  constructor(socket: Socket, owner: H2DownstreamOwner, ctx: HttpConnectionContext) {
    this.#owner = owner;
    this.#core = owner.core;
    this.#ctx = ctx;
    this.#log = ctx.log ?? owner.core.log;
    const o = owner.core.options;
    this.#conn = new H2Connection(socket, this, {
      role: 'server',
      maxConcurrentStreams: o.h2MaxConcurrentStreams,
      streamWindow: DOWNSTREAM_STREAM_WINDOW,
      connectionWindow: DOWNSTREAM_CONNECTION_WINDOW,
      maxHeaderListSize: o.maxHeaderBytes,
    });
    this.#idleSince = Date.now();
    this.#entry = owner.opened(this);
  }

  /** Without streams since (ms), for the idle timeout; 0 while streams are open. */
  get idleSince(): number {
    return this.#idleSince;
  }

  start(initialBytes: Buffer): void {
    this.#conn.start(initialBytes);
  }

  /** GOAWAY (the drain, or idle): no new streams; closes after those in flight. */
  goaway(why: 'drain' | 'idle' = 'drain'): void {
    if (this.#goaway) return;
    this.#goaway = true;
    this.#core.stats.increment(why === 'drain' ? 'http2.drain_goaway' : 'http2.idle_goaway');
    this.#conn.goaway();
  }

  destroy(): void {
    this.#conn.destroy();
  }

  get streams(): number {
    return this.#conn.streamCount;
  }

  // ---- H2ConnectionOwner ----

  onStream(stream: H2Stream, fields: string[], endStream: boolean, tooLarge: boolean): void {
    this.#idleSince = 0;
    const res = new H2Responder(stream);
    stream.handler = res;
    if (tooLarge) {
      this.#core.stats.increment('http2.header_too_large');
      res.localReply(localReply('header-too-large'), false);
      return;
    }
    const head = parseRequestFields(fields);
    if (typeof head === 'string') {
      this.#core.stats.increment('http2.malformed_requests');
      this.#log.debug({ reason: head, stream: stream.id }, 'malformed HTTP/2 request: stream reset');
      stream.reset(PROTOCOL_ERROR, true);
      return;
    }
    if (endStream && head.contentLength > 0) {
      // A declared body that never comes (RFC 9113 §8.1.1): malformed.
      this.#core.stats.increment('http2.malformed_requests');
      stream.reset(PROTOCOL_ERROR, true);
      return;
    }
    if (head.protocol !== '') {
      // Extended CONNECT (RFC 8441) needs SETTINGS_ENABLE_CONNECT_PROTOCOL, which this engine does not send.
      this.#core.stats.increment('http2.malformed_requests');
      stream.reset(PROTOCOL_ERROR, true);
      return;
    }
    const isConnect = head.method === 'CONNECT';
    let body: RequestBody | undefined;
    if (!endStream && !isConnect) {
      const cl = head.contentLength;
      if (cl >= 0) stream.expectLength(cl);
      body = new RequestBody(res, cl >= 0 ? cl : undefined, res.trailers, this.#core.options.replayBufferBytes, res.aborted);
    } else if (isConnect) {
      // The tunnel's bytes wait until the upstream accepted it.
      stream.pause();
    }
    let authority = head.authority;
    if (authority === '') authority = hostHeader(head.headers);
    const ct = contentType(head.headers);
    const dreq: DownstreamRequest = {
      protocol: 'h2',
      method: head.method,
      target: isConnect ? authority : head.path,
      authority,
      scheme: head.scheme === 'https' ? 'https' : 'http',
      headers: head.headers,
      body,
      tunnel: isConnect,
      grpc: ct !== undefined && ct.startsWith('application/grpc'),
      conn: this.#ctx,
      log: this.#log,
    };
    const ctx = new RequestContext(dreq, this.#core, this.#core.runtime());
    res.bind(ctx, body);
    try {
      runRequestChain(ctx, res);
    } catch {
      // a throw fails this stream only
      stream.reset(2 /* INTERNAL_ERROR */);
    }
    // Draining: a connection that came in during the drain gets its GOAWAY now, with this stream as its last one.
    if (this.#owner.draining) this.goaway();
  }

  onStreamClosed(): void {
    if (this.#conn.streamCount === 0) this.#idleSince = Date.now();
  }

  onSettings(): void {}

  onGoaway(): void {}

  onError(reason: string, code: number): void {
    this.#core.stats.increment('http2.protocol_errors');
    this.#log.debug({ reason, code }, 'HTTP/2 connection error: GOAWAY sent');
  }

  onClose(): void {
    this.#owner.closed(this.#entry);
  }
}

function hostHeader(headers: readonly string[]): string {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'host') return headers[i + 1] as string;
  return '';
}

function contentType(headers: readonly string[]): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'content-type') return headers[i + 1] as string;
  return undefined;
}
