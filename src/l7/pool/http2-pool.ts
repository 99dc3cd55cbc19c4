// The HTTP/2 session pool of one upstream endpoint.
//
// Requests are multiplexed on as few sessions as possible: a request goes to the first ready session that is not
// draining and has a free stream slot (the peer's SETTINGS_MAX_CONCURRENT_STREAMS, 100 until it is known); a new
// session is opened only when none has room, up to `maxSessions`; beyond that requests wait in a FIFO queue of at most
// `maxPending`. A session that receives GOAWAY takes no new stream and closes when its last stream ends; a session
// without streams for `idleTimeoutMs` is closed (one timer per pool, armed for the earliest such deadline).
// The service's circuit breaker (the request's PoolAdmission) is asked too: 'pending' before a request is queued
// (held until it leaves the queue), 'connection' before a session is opened (held until it closes). A request the
// breaker refuses, or that waits in a pool with no session and no session allowed, fails with kind 'overflow'.
//
// Flow control is nghttp2's: a paused stream stops acknowledging DATA, so the upstream is held by its window.
// A stream the server refused (RST_STREAM REFUSED_STREAM, or above GOAWAY's last stream id) is reported with
// `refused: true`: it was not processed and can be sent again whatever its method.
import type * as http2 from 'node:http2';
import { EarliestDeadlineTimer } from '../../core/earliest-deadline-timer.js';
import { nodeHttp2 } from '../../core/lazy-builtins.js';
import { monotonicMs } from '../../core/monotonic-clock.js';
import {
  HTTP2_HEADER_STATUS, NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM,
} from '../http/http2-codes.js';
import type { Socket } from 'node:net';
import type { BodySink } from '../http/request-body.js';
import { resetStream } from '../http/http2-reset.js';
import { connectUpstream, poolFailure } from './pool-common.js';
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

export interface Http2PoolOptions {
  readonly maxSessions: number;
  readonly maxPending: number;
  /** Close a session that has carried no stream for this long. */
  readonly idleTimeoutMs: number;
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

class Entry {
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
}

class StreamAttempt implements AttemptControl, BodySink {
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

function noSlot(): void {}
const NO_SLOT: () => void = noSlot;

function leftQueue(a: StreamAttempt): void {
  const r = a.releasePending;
  if (r !== undefined) {
    a.releasePending = undefined;
    r();
  }
}

export class Http2Pool implements MultiplexPool {
  readonly target: UpstreamTarget;
  readonly #connector: UpstreamConnector;
  readonly #options: Http2PoolOptions;
  readonly #stats: PoolStatsSink;
  readonly #onEmpty: (pool: MultiplexPool) => void;
  readonly #entries = new Set<Entry>();
  #connecting = 0;
  readonly #queue: StreamAttempt[] = [];
  #closed = false;
  /** Armed for the earliest idle deadline of the sessions: closes those without streams since then. */
  readonly #retire = new EarliestDeadlineTimer(() => { this.#retireDue(); });

  constructor(
    target: UpstreamTarget,
    connector: UpstreamConnector,
    options: Http2PoolOptions,
    stats: PoolStatsSink,
    onEmpty: (pool: MultiplexPool) => void,
  ) {
    this.target = target;
    this.#connector = connector;
    this.#options = options;
    this.#stats = stats;
    this.#onEmpty = onEmpty;
  }

  get sessions(): number {
    return this.#entries.size + this.#connecting;
  }

  get pending(): number {
    return this.#queue.length;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler, admit?: PoolAdmission): AttemptControl {
    const a = new StreamAttempt(this, request, handler, admit);
    if (this.#closed) {
      handler.onError(poolFailure('connect-failure', new Error('pool closed')));
      return a;
    }
    const e = this.#pickEntry();
    if (e !== undefined) {
      this.#start(a, e);
      return a;
    }
    if (this.#queue.length >= this.#options.maxPending) {
      this.#stats.increment('pool.http2.overflow');
      handler.onError(poolFailure('overflow', new Error('upstream pool queue is full')));
      return a;
    }
    if (admit !== undefined) {
      const release = admit.admit('pending');
      if (release === undefined) {
        this.#stats.increment('pool.http2.circuit_open');
        handler.onError(poolFailure('overflow', new Error('circuit breaker open (pending requests)')));
        this.#checkEmpty();
        return a;
      }
      a.releasePending = release;
    }
    this.#queue.push(a);
    if (this.#connecting === 0 && this.sessions < this.#options.maxSessions) this.#open();
    return a;
  }

  /** @internal */
  cancel(a: StreamAttempt): void {
    const i = this.#queue.indexOf(a);
    if (i >= 0) {
      this.#queue.splice(i, 1);
      leftQueue(a);
    }
    this.#checkEmpty();
  }

  /** GOAWAY every session (streams in flight finish); refuse new requests. */
  close(): void {
    this.#closed = true;
    this.#retire.disarm();
    this.#failQueue(poolFailure('connect-failure', new Error('pool closed')));
    for (const e of this.#entries) {
      e.draining = true;
      if (e.active === 0) e.retire();
      else if (!e.session.closed) e.session.close();
    }
    this.#checkEmpty();
  }

  destroy(): void {
    this.close();
    for (const e of [...this.#entries]) e.retire();
  }

  #pickEntry(): Entry | undefined {
    for (const e of this.#entries) if (e.hasRoom) return e;
    return undefined;
  }

  #failQueue(f: UpstreamFailure): void {
    for (const a of this.#queue.splice(0)) {
      leftQueue(a);
      a.fail(f);
    }
  }

  /** Open a session for the queue, under the breaker of the oldest queued request. */
  #open(): void {
    const head = this.#queue[0];
    const slot = head?.admit === undefined ? NO_SLOT : head.admit.admit('connection');
    if (slot === undefined) {
      // The breaker refused a session: the queue waits for a session of this pool, or fails when there is none.
      if (this.#entries.size === 0 && this.#connecting === 0) {
        this.#stats.increment('pool.http2.circuit_open');
        this.#failQueue(poolFailure('overflow', new Error('circuit breaker open (upstream connections)')));
        this.#checkEmpty();
      }
      return;
    }
    this.#connecting++;
    this.#stats.increment('pool.http2.connect');
    connectUpstream(this.#connector, this.target, (err, socket) => {
      if (err !== undefined || socket === undefined) {
        slot();
        this.#connecting--;
        this.#stats.increment('pool.http2.connect_failure');
        // Everything waiting for this endpoint fails: the next request will try again.
        this.#failQueue(poolFailure('connect-failure', err ?? new Error('connect failed')));
        this.#checkEmpty();
        return;
      }
      if (this.#closed) {
        slot();
        this.#connecting--;
        socket.destroy();
        this.#checkEmpty();
        return;
      }
      this.#attach(socket, slot);
    });
  }

  #attach(socket: Socket, slot: () => void): void {
    const authority = this.target.address.includes(':') ? `[${this.target.address}]:${this.target.port}` : `${this.target.address}:${this.target.port}`;
    // HTTP/2 has no half-close: a FIN from the server must close the connection (and the session with it).
    socket.allowHalfOpen = false;
    const session = nodeHttp2().connect(`http://${authority}`, {
      createConnection: () => socket,
      maxSessionMemory: this.#options.maxSessionMemoryMb,
      maxHeaderListPairs: this.#options.maxHeaderListPairs,
      settings: { enablePush: false, initialWindowSize: H2_STREAM_WINDOW },
    });
    const e = new Entry(session, socket);
    this.#entries.add(e);
    session.on('error', noop);
    session.once('connect', () => {
      this.#connecting--;
      e.ready = true;
      try {
        session.setLocalWindowSize(H2_CONNECTION_WINDOW);
      } catch {
        // destroyed meanwhile: its 'close' cleans up
      }
      this.#drainQueue();
    });
    session.on('remoteSettings', () => this.#drainQueue());
    session.on('goaway', () => {
      e.draining = true;
      this.#stats.increment('pool.http2.goaway');
      if (e.active === 0) e.retire();
      // Requests still waiting need another session.
      if (this.#queue.length > 0 && this.#connecting === 0 && !this.#closed) this.#open();
    });
    session.once('close', () => {
      slot();
      if (!e.ready) this.#connecting--;
      this.#entries.delete(e);
      if (!e.ready) {
        this.#failQueue(poolFailure('connect-failure', new Error('upstream session closed during setup')));
      } else if (this.#queue.length > 0 && !this.#closed && this.#connecting === 0) {
        this.#open();
      }
      this.#checkEmpty();
    });
  }

  #drainQueue(): void {
    while (this.#queue.length > 0) {
      const e = this.#pickEntry();
      if (e === undefined) break;
      const a = this.#queue.shift() as StreamAttempt;
      leftQueue(a);
      this.#start(a, e);
    }
    if (this.#queue.length > 0 && this.#connecting === 0 && this.sessions < this.#options.maxSessions && !this.#closed) this.#open();
  }

  #start(a: StreamAttempt, e: Entry): void {
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
      this.#afterStream(e);
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

  #afterStream(e: Entry): void {
    if (e.active > 0) {
      this.#drainQueue();
      return;
    }
    if (e.draining || this.#closed) {
      // Node's session.close() leaves a session that got GOAWAY open after its last stream: destroy it (nothing is
      // in flight any more).
      e.retire();
      return;
    }
    if (this.#queue.length > 0) {
      this.#drainQueue();
      return;
    }
    const now = monotonicMs();
    e.idleDeadline = now + this.#options.idleTimeoutMs;
    this.#retire.arm(e.idleDeadline, now);
  }

  /** Close the sessions without streams whose idle deadline passed; arm for the earliest one left. */
  #retireDue(): void {
    const now = monotonicMs();
    let next = Infinity;
    for (const e of this.#entries) {
      if (e.active > 0 || e.draining) continue;
      if (e.idleDeadline <= now) {
        this.#stats.increment('pool.http2.idle_retired');
        e.draining = true;
        e.retire();
      } else if (e.idleDeadline < next) {
        next = e.idleDeadline;
      }
    }
    if (next !== Infinity && !this.#closed) this.#retire.arm(next, now);
  }

  #checkEmpty(): void {
    if (this.#entries.size === 0 && this.#connecting === 0 && this.#queue.length === 0) {
      this.#retire.disarm();
      this.#onEmpty(this);
    }
  }
}
