// The HTTP/2 session pool of one upstream endpoint on node:http2 (`http2_codec = node`; remora's codec is h2-pool.ts).
// The policy (which session takes a request, when one opens or retires, the queue and the breaker) is StreamPool's
// (stream-pool.ts); this file opens the streams on node:http2's sessions.
//
// Flow control is nghttp2's: a paused stream stops acknowledging DATA, so the upstream is held by its window.
// A stream the server refused (RST_STREAM REFUSED_STREAM, or above GOAWAY's last stream id) is reported with
// `refused: true`: it was not processed and can be sent again whatever its method.
import type * as http2 from 'node:http2';
import { nodeHttp2 } from '../../core/lazy-builtins.js';
import {
  HTTP2_HEADER_STATUS, NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM,
} from '../http/http2-codes.js';
import type { Socket } from 'node:net';
import type { BodySink } from '../http/request-body.js';
import { resetStream } from '../http/http2-reset.js';
import { poolFailure } from './pool-common.js';
import { StreamPool, type PoolEntry, type QueuedAttempt, type StreamPoolOptions } from './stream-pool.js';
import type {
  AttemptControl,
  MultiplexPool,
  PoolAdmission,
  PoolStatsSink,
  UpstreamConnector,
  UpstreamFailure,
  UpstreamHandler,
  UpstreamRequest,
  UpstreamTarget,
} from './pool-types.js';

export interface Http2PoolOptions extends StreamPoolOptions {
  /** Node's maxSessionMemory (MB) for upstream sessions. */
  readonly maxSessionMemoryMb: number;
  readonly maxHeaderListPairs: number;
}

const DEFAULT_MAX_STREAMS = 100;

/**
 * Receive windows of the pool's sessions, sized for a proxy: the stream window we advertise
 * (SETTINGS_INITIAL_WINDOW_SIZE; RFC 9113's default is 64 KiB - 1) and the connection window (set with
 * setLocalWindowSize once a session is up). One 64 KiB connection window shared by every stream of a pooled session
 * would make a WINDOW_UPDATE round trip per 64 KiB of all the responses in flight. A stream that is not read stops
 * being acknowledged, so what an upstream can make us hold stays bounded: per stream by the stream window, per session
 * by the connection window. (The downstream engine's windows are smaller: its peers are clients.)
 */
const H2_STREAM_WINDOW = 1024 * 1024;
const H2_CONNECTION_WINDOW = 8 * 1024 * 1024;

/** session.request() options (Node copies them): a request without a body is one HEADERS frame with END_STREAM. */
const NO_BODY: http2.ClientSessionRequestOptions = { endStream: true };
/** With a body, the request's trailers (or an empty DATA frame with END_STREAM) follow it. */
const WITH_BODY: http2.ClientSessionRequestOptions = { endStream: false, waitForTrailers: true };

function noop(): void {}

/** Flat [name, value, ...] -> the object form node:http2 takes (duplicates as arrays, order of first appearance). */
export function headersObject(flat: readonly string[], into: http2.OutgoingHttpHeaders = {}): http2.OutgoingHttpHeaders {
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i] as string;
    const value = flat[i + 1] as string;
    const prev = into[name];
    if (prev === undefined) into[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else into[name] = [String(prev), value];
  }
  return into;
}

/** node:http2 raw headers (flat) without pseudo-headers. */
export function withoutPseudo(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.charCodeAt(0) !== 58) out.push(name, raw[i + 1] as string);
  }
  return out;
}

/** Incoming headers object -> flat array without pseudo-headers. */
export function flattenIncoming(h: http2.IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name of Object.keys(h)) {
    if (name.charCodeAt(0) === 58) continue;
    const v = h[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.push(name, x);
    else out.push(name, String(v));
  }
  return out;
}

class Entry implements PoolEntry {
  readonly session: http2.ClientHttp2Session;
  readonly socket: Socket;
  ready = false;
  draining = false;
  active = 0;
  /** Streams ever opened: > 0 means a request on this session rides a reused connection. */
  opened = 0;
  /** Without streams since: when the pool retires it (monotonic ms); Infinity while it has streams. */
  idleDeadline = Infinity;

  constructor(session: http2.ClientHttp2Session, socket: Socket) {
    this.session = session;
    this.socket = socket;
  }

  /**
   * Tear the session down with its socket. Node's destroy() of a session that is already closing (it got GOAWAY)
   * only half-closes the socket and waits for the peer, which may never come.
   */
  retire(): void {
    this.session.destroy();
    this.socket.destroy();
  }

  get maxStreams(): number {
    const m = this.ready ? this.session.remoteSettings.maxConcurrentStreams : undefined;
    return m === undefined || m <= 0 ? DEFAULT_MAX_STREAMS : Math.min(m, 10_000);
  }

  get hasRoom(): boolean {
    return this.ready && !this.draining && !this.session.destroyed && !this.session.closed && this.active < this.maxStreams;
  }

  closeGracefully(): void {
    if (!this.session.closed) this.session.close();
  }
}

class StreamAttempt implements AttemptControl, BodySink, QueuedAttempt {
  readonly pool: Http2Pool;
  readonly request: UpstreamRequest;
  handler: UpstreamHandler | undefined;
  stream: http2.ClientHttp2Stream | undefined;
  entry: Entry | undefined;
  reused = false;
  responseStarted = false;
  responseBytes = false;
  requestSent = false;
  ended = false;
  trailers: string[] = [];
  requestTrailers: readonly string[] | undefined;
  abortCode: number | undefined;
  cancelled = false;
  readonly admit: PoolAdmission | undefined;
  /** Held while the attempt is queued. */
  releasePending: (() => void) | undefined;

  constructor(pool: Http2Pool, request: UpstreamRequest, handler: UpstreamHandler, admit: PoolAdmission | undefined) {
    this.pool = pool;
    this.admit = admit;
    this.request = request;
    this.handler = handler;
  }

  // BodySink
  write(chunk: Buffer): boolean {
    const s = this.stream;
    if (s === undefined || s.destroyed) return true;
    return s.write(chunk);
  }

  end(trailers: readonly string[]): void {
    const s = this.stream;
    if (s === undefined || s.destroyed) return;
    this.requestTrailers = trailers;
    s.end();
  }

  // AttemptControl
  pause(): void {
    this.stream?.pause();
  }

  resume(): void {
    this.stream?.resume();
  }

  abort(h2Code?: number): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.handler = undefined;
    this.request.body?.stop();
    const s = this.stream;
    if (s === undefined) {
      this.pool.cancel(this);
      return;
    }
    if (!this.ended) resetStream(s, h2Code ?? NGHTTP2_CANCEL);
  }

  fail(f: UpstreamFailure): void {
    const h = this.handler;
    this.handler = undefined;
    this.request.body?.stop();
    h?.onError(f);
  }
}

export class Http2Pool extends StreamPool<Entry, StreamAttempt> {
  readonly #options: Http2PoolOptions;

  constructor(target: UpstreamTarget, connector: UpstreamConnector, options: Http2PoolOptions, stats: PoolStatsSink, onEmpty: (pool: MultiplexPool) => void) {
    super(target, connector, options, stats, onEmpty);
    this.#options = options;
  }

  protected newAttempt(request: UpstreamRequest, handler: UpstreamHandler, admit: PoolAdmission | undefined): StreamAttempt {
    return new StreamAttempt(this, request, handler, admit);
  }

  protected attach(socket: Socket, slot: () => void): Entry {
    const authority = this.target.address.includes(':') ? `[${this.target.address}]:${this.target.port}` : `${this.target.address}:${this.target.port}`;
    const session = nodeHttp2().connect(`http://${authority}`, {
      createConnection: () => socket,
      maxSessionMemory: this.#options.maxSessionMemoryMb,
      maxHeaderListPairs: this.#options.maxHeaderListPairs,
      settings: { enablePush: false, initialWindowSize: H2_STREAM_WINDOW },
    });
    const e = new Entry(session, socket);
    session.on('error', noop);
    session.once('connect', () => {
      try {
        session.setLocalWindowSize(H2_CONNECTION_WINDOW);
      } catch {
        // destroyed meanwhile: its 'close' cleans up
      }
      this.entryReady(e);
    });
    session.on('remoteSettings', () => this.drainQueue());
    session.on('goaway', () => this.entryGoaway(e));
    session.once('close', () => this.entryClosed(e, slot));
    return e;
  }

  protected start(a: StreamAttempt, e: Entry): void {
    const req = a.request;
    // One literal per shape (no `delete` for CONNECT, which would turn the object into a slow dictionary).
    const headers: http2.OutgoingHttpHeaders = req.method === 'CONNECT'
      ? { ':method': req.method, ':authority': req.authority }
      : { ':method': req.method, ':scheme': req.scheme, ':authority': req.authority, ':path': req.target };
    headersObject(req.headers, headers);
    const hasBody = req.body !== undefined;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = e.session.request(headers, hasBody ? WITH_BODY : NO_BODY);
    } catch (err) {
      a.fail(poolFailure('reset', err as Error, { refused: true }));
      return;
    }
    a.stream = stream;
    a.entry = e;
    a.reused = e.opened > 0;
    a.requestSent = true;
    e.opened++;
    e.active++;
    e.idleDeadline = Infinity;
    // Header blocks are taken in node:http2's raw form (a flat array, the third argument of 'headers', 'response'
    // and 'trailers'), not re-read from the object it also builds.
    stream.on('error', noop);
    stream.on('headers', (h: http2.IncomingHttpHeaders, _flags: number, raw?: string[]) => {
      a.responseBytes = true;
      const status = Number(h[HTTP2_HEADER_STATUS]);
      if (status >= 100 && status < 200) a.handler?.onInformational(status, raw !== undefined ? withoutPseudo(raw) : flattenIncoming(h));
    });
    stream.on('response', (h: http2.IncomingHttpHeaders, flags: number, raw?: string[]) => {
      a.responseBytes = true;
      a.responseStarted = true;
      a.handler?.onResponse({
        statusCode: Number(h[HTTP2_HEADER_STATUS]),
        statusText: '',
        headers: raw !== undefined ? withoutPseudo(raw) : flattenIncoming(h),
        close: false,
        bodyless: (flags & NGHTTP2_FLAG_END_STREAM) !== 0,
        hopByHop: false,
        readEnds: false,
      });
    });
    stream.on('data', (chunk: Buffer) => {
      const h = a.handler;
      if (h !== undefined && !h.onData(chunk)) stream.pause();
    });
    stream.on('trailers', (h: http2.IncomingHttpHeaders, _flags: number, raw?: string[]) => {
      a.trailers = raw !== undefined ? withoutPseudo(raw) : flattenIncoming(h);
    });
    stream.on('end', () => {
      // A reset also ends the readable side: only an END_STREAM (no error code) completes the response.
      const code = stream.rstCode;
      if (code !== undefined && code !== NGHTTP2_NO_ERROR) return;
      a.ended = true;
      const h = a.handler;
      a.handler = undefined;
      h?.onEnd(a.trailers);
    });
    // 'close' is emitted once: `on` spares once()'s wrapper.
    stream.on('close', () => {
      e.active--;
      if (!a.ended && a.handler !== undefined) {
        const code = stream.rstCode ?? NGHTTP2_NO_ERROR;
        const refused = code === NGHTTP2_REFUSED_STREAM || (stream.id === undefined && !a.responseBytes);
        a.fail(
          poolFailure('reset', Object.assign(new Error(`upstream stream closed (code ${code})`), { code: 'ERR_HTTP2_STREAM_ERROR' }), {
            responseStarted: a.responseStarted,
            responseBytes: a.responseBytes,
            reusedConnection: a.reused,
            requestSent: !refused,
            refused,
            h2Code: code,
          }),
        );
      }
      this.afterStream(e);
    });
    if (!hasBody) return;
    // Only a request with a body writes (drain) and ends with trailers (wantTrailers).
    stream.on('wantTrailers', () => {
      const t = a.requestTrailers;
      stream.sendTrailers(t !== undefined && t.length > 0 ? headersObject(t) : {});
    });
    stream.on('drain', () => req.body?.resume());
    req.body?.start(a);
  }
}
