// The HTTP/2 connection pool of one upstream endpoint on remora's own codec (src/l7/h2/h2-connection.ts, client
// side); `http2_codec = node` uses http2-pool.ts, the same policy on node:http2.
//
// Requests are multiplexed on as few connections as possible: a request goes to the first connection that is not
// going away and has a free stream slot (the peer's SETTINGS_MAX_CONCURRENT_STREAMS, 100 until it is known); a new
// connection is opened only when none has room, up to `maxSessions`; beyond that requests wait in a FIFO queue of at
// most `maxPending`. A connection that receives GOAWAY takes no new stream and closes after its last stream; one
// without streams for `idleTimeoutMs` is closed (one timer per pool, armed for the earliest such deadline). The
// service's circuit breaker is asked as in the other pools: 'pending' before a request is queued, 'connection' before
// a connection is opened.
//
// Flow control: a response the exchange cannot pass on pauses its stream, which then stops acknowledging DATA, so the
// upstream is held by the stream window (1 MiB; 8 MiB per connection). A stream the server refused (RST_STREAM
// REFUSED_STREAM, or above its GOAWAY's last stream id) is reported with `refused: true`: never processed, safe to
// send again whatever its method.
import type { Socket } from 'node:net';
import { EarliestDeadlineTimer } from '../../core/earliest-deadline-timer.js';
import { monotonicMs } from '../../core/monotonic-clock.js';
import type { BodySink } from '../http/request-body.js';
import { H2Connection, type H2ConnectionOwner } from '../h2/h2-connection.js';
import type { H2Stream, H2StreamHandler } from '../h2/h2-stream.js';
import { checkTrailerFields, parseResponseFields } from '../h2/h2-fields.js';
import { CANCEL, PROTOCOL_ERROR, REFUSED_STREAM } from '../h2/frame.js';
import { lowerCaseNames } from '../h2/lower-case-names.js';
import { connectUpstream, poolFailure } from './pool-common.js';
import type { Http2PoolOptions } from './http2-pool.js';
import type {
  AttemptControl, MultiplexPool, PoolAdmission, PoolStatsSink, UpstreamConnector, UpstreamFailure, UpstreamHandler,
  UpstreamRequest, UpstreamTarget,
} from './pool-types.js';

const DEFAULT_MAX_STREAMS = 100;
/** Receive windows of the pool's connections (see http2-pool.ts for the reasoning): per stream, per connection. */
const H2_STREAM_WINDOW = 1024 * 1024;
const H2_CONNECTION_WINDOW = 8 * 1024 * 1024;
/** The largest response head the pool accepts (SETTINGS_MAX_HEADER_LIST_SIZE). */
const MAX_HEADER_LIST = 64 * 1024;

const EMPTY: readonly string[] = [];

class Entry implements H2ConnectionOwner {
  readonly #pool: H2Pool;
  readonly conn: H2Connection;
  draining = false;
  active = 0;
  /** Streams ever opened: > 0 means a request on this connection rides a reused connection. */
  opened = 0;
  idleDeadline = Infinity;
  readonly slot: () => void;

  constructor(pool: H2Pool, socket: Socket, slot: () => void) {
    this.#pool = pool;
    this.slot = slot;
    this.conn = new H2Connection(socket, this, {
      role: 'client',
      maxConcurrentStreams: 0,
      streamWindow: H2_STREAM_WINDOW,
      connectionWindow: H2_CONNECTION_WINDOW,
      maxHeaderListSize: MAX_HEADER_LIST,
    });
  }

  get maxStreams(): number {
    const m = this.conn.peerMaxStreams;
    return m === Infinity ? DEFAULT_MAX_STREAMS : Math.min(m, 10_000);
  }

  get hasRoom(): boolean {
    return !this.draining && !this.conn.closing && this.active < this.maxStreams;
  }

  retire(): void {
    this.conn.destroy();
  }

  onStream(stream: H2Stream): void {
    stream.reset(PROTOCOL_ERROR);
  }

  onStreamClosed(): void {
    this.active--;
    this.#pool.afterStream(this);
  }

  onSettings(): void {
    this.#pool.drainQueue();
  }

  onGoaway(): void {
    this.#pool.goaway(this);
  }

  onError(): void {
    this.#pool.protocolError();
  }

  onClose(): void {
    this.#pool.connectionClosed(this);
  }
}

class H2Attempt implements AttemptControl, BodySink, H2StreamHandler {
  readonly #pool: H2Pool;
  readonly request: UpstreamRequest;
  handler: UpstreamHandler | undefined;
  stream: H2Stream | undefined;
  reused = false;
  responseStarted = false;
  responseBytes = false;
  ended = false;
  cancelled = false;
  readonly admit: PoolAdmission | undefined;
  releasePending: (() => void) | undefined;

  constructor(pool: H2Pool, request: UpstreamRequest, handler: UpstreamHandler, admit: PoolAdmission | undefined) {
    this.#pool = pool;
    this.request = request;
    this.handler = handler;
    this.admit = admit;
  }

  // ---- BodySink ----

  write(chunk: Buffer): boolean {
    const s = this.stream;
    if (s === undefined || s.closed) return true;
    return s.write(chunk);
  }

  end(trailers: readonly string[]): void {
    this.stream?.end(trailers.length > 0 ? lowerCaseNames(trailers) : EMPTY);
  }

  // ---- AttemptControl ----

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
      this.#pool.cancel(this);
      return;
    }
    if (!this.ended) s.reset(h2Code ?? CANCEL);
  }

  fail(f: UpstreamFailure): void {
    const h = this.handler;
    this.handler = undefined;
    this.request.body?.stop();
    h?.onError(f);
  }

  // ---- H2StreamHandler ----

  onHeaders(fields: string[], endStream: boolean): void {
    this.responseBytes = true;
    const head = parseResponseFields(fields);
    if (typeof head === 'string') {
      this.stream?.reset(PROTOCOL_ERROR);
      this.fail(poolFailure('protocol-error', new Error(`malformed HTTP/2 response: ${head}`), this.#flags()));
      return;
    }
    const h = this.handler;
    if (h === undefined) return;
    if (head.status < 200) {
      h.onInformational(head.status, head.headers);
      return;
    }
    this.responseStarted = true;
    h.onResponse({ statusCode: head.status, statusText: '', headers: head.headers, close: false, bodyless: endStream, hopByHop: false });
    if (endStream) this.#complete([]);
  }

  onData(chunk: Buffer): void {
    const h = this.handler;
    if (h !== undefined && !h.onData(chunk)) this.stream?.pause();
  }

  onEnd(trailers: string[]): void {
    if (trailers.length > 0) {
      const t = checkTrailerFields(trailers);
      if (typeof t === 'string') {
        this.fail(poolFailure('protocol-error', new Error(`malformed HTTP/2 trailers: ${t}`), this.#flags()));
        return;
      }
    }
    this.#complete(trailers);
  }

  #complete(trailers: string[]): void {
    this.ended = true;
    const h = this.handler;
    this.handler = undefined;
    h?.onEnd(trailers);
  }

  onReset(code: number, refused: boolean): void {
    if (this.ended || this.handler === undefined) return;
    const isRefused = refused || (code === REFUSED_STREAM && !this.responseBytes);
    this.fail(poolFailure('reset', Object.assign(new Error(`upstream stream closed (code ${code})`), { code: 'ERR_HTTP2_STREAM_ERROR' }), {
      ...this.#flags(),
      requestSent: !isRefused,
      refused: isRefused,
      h2Code: code,
    }));
  }

  onWritable(): void {
    this.request.body?.resume();
  }

  #flags(): Partial<UpstreamFailure> {
    return { responseStarted: this.responseStarted, responseBytes: this.responseBytes, reusedConnection: this.reused, requestSent: true };
  }
}

function noSlot(): void {}

function leftQueue(a: H2Attempt): void {
  const r = a.releasePending;
  if (r !== undefined) {
    a.releasePending = undefined;
    r();
  }
}

export class H2Pool implements MultiplexPool {
  readonly target: UpstreamTarget;
  readonly #connector: UpstreamConnector;
  readonly #options: Http2PoolOptions;
  readonly #stats: PoolStatsSink;
  readonly #onEmpty: (pool: MultiplexPool) => void;
  readonly #entries: Entry[] = [];
  #connecting = 0;
  readonly #queue: H2Attempt[] = [];
  #closed = false;
  readonly #retire = new EarliestDeadlineTimer(() => { this.#retireDue(); });

  constructor(target: UpstreamTarget, connector: UpstreamConnector, options: Http2PoolOptions, stats: PoolStatsSink, onEmpty: (pool: MultiplexPool) => void) {
    this.target = target;
    this.#connector = connector;
    this.#options = options;
    this.#stats = stats;
    this.#onEmpty = onEmpty;
  }

  get sessions(): number {
    return this.#entries.length + this.#connecting;
  }

  get pending(): number {
    return this.#queue.length;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler, admit?: PoolAdmission): AttemptControl {
    const a = new H2Attempt(this, request, handler, admit);
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

  /** @internal a queued attempt was aborted */
  cancel(a: H2Attempt): void {
    const i = this.#queue.indexOf(a);
    if (i >= 0) {
      this.#queue.splice(i, 1);
      leftQueue(a);
    }
    this.#checkEmpty();
  }

  close(): void {
    this.#closed = true;
    this.#retire.disarm();
    this.#failQueue(poolFailure('connect-failure', new Error('pool closed')));
    for (const e of [...this.#entries]) {
      e.draining = true;
      if (e.active === 0) e.retire();
      else e.conn.goaway();
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

  #open(): void {
    const head = this.#queue[0];
    const slot = head?.admit === undefined ? noSlot : head.admit.admit('connection');
    if (slot === undefined) {
      if (this.#entries.length === 0 && this.#connecting === 0) {
        this.#stats.increment('pool.http2.circuit_open');
        this.#failQueue(poolFailure('overflow', new Error('circuit breaker open (upstream connections)')));
        this.#checkEmpty();
      }
      return;
    }
    this.#connecting++;
    this.#stats.increment('pool.http2.connect');
    connectUpstream(this.#connector, this.target, (err, socket) => {
      this.#connecting--;
      if (err !== undefined || socket === undefined) {
        slot();
        this.#stats.increment('pool.http2.connect_failure');
        this.#failQueue(poolFailure('connect-failure', err ?? new Error('connect failed')));
        this.#checkEmpty();
        return;
      }
      if (this.#closed) {
        slot();
        socket.destroy();
        this.#checkEmpty();
        return;
      }
      // HTTP/2 has no half-close: a FIN from the server closes the connection.
      socket.allowHalfOpen = false;
      const e = new Entry(this, socket, slot);
      this.#entries.push(e);
      e.conn.start(Buffer.alloc(0));
      this.drainQueue();
    });
  }

  /** @internal requests waiting go to connections with room; a new connection is opened when none has. */
  drainQueue(): void {
    while (this.#queue.length > 0) {
      const e = this.#pickEntry();
      if (e === undefined) break;
      const a = this.#queue.shift() as H2Attempt;
      leftQueue(a);
      this.#start(a, e);
    }
    if (this.#queue.length > 0 && this.#connecting === 0 && this.sessions < this.#options.maxSessions && !this.#closed) this.#open();
  }

  #start(a: H2Attempt, e: Entry): void {
    const req = a.request;
    const pseudo = req.method === 'CONNECT'
      ? [':method', req.method, ':authority', req.authority]
      : [':method', req.method, ':scheme', req.scheme, ':authority', req.authority, ':path', req.target];
    const hasBody = req.body !== undefined;
    let stream: H2Stream;
    try {
      stream = e.conn.request(pseudo, lowerCaseNames(req.headers), !hasBody);
    } catch (err) {
      a.fail(poolFailure('reset', err as Error, { refused: true }));
      return;
    }
    a.stream = stream;
    a.reused = e.opened > 0;
    e.opened++;
    e.active++;
    e.idleDeadline = Infinity;
    stream.handler = a;
    if (hasBody) req.body?.start(a);
  }

  /** @internal a stream of `e` closed */
  afterStream(e: Entry): void {
    if (e.active > 0) {
      this.drainQueue();
      return;
    }
    if (e.draining || this.#closed) {
      e.retire();
      return;
    }
    if (this.#queue.length > 0) {
      this.drainQueue();
      return;
    }
    const now = monotonicMs();
    e.idleDeadline = now + this.#options.idleTimeoutMs;
    this.#retire.arm(e.idleDeadline, now);
  }

  /** @internal the server sent GOAWAY on `e` */
  goaway(e: Entry): void {
    e.draining = true;
    this.#stats.increment('pool.http2.goaway');
    if (e.active === 0) e.retire();
    if (this.#queue.length > 0 && this.#connecting === 0 && !this.#closed) this.#open();
  }

  /** @internal */
  protocolError(): void {
    this.#stats.increment('pool.http2.protocol_error');
  }

  /** @internal the connection of `e` closed */
  connectionClosed(e: Entry): void {
    e.slot();
    const i = this.#entries.indexOf(e);
    if (i >= 0) this.#entries.splice(i, 1);
    if (this.#queue.length > 0 && !this.#closed && this.#connecting === 0) this.#open();
    this.#checkEmpty();
  }

  #retireDue(): void {
    const now = monotonicMs();
    let next = Infinity;
    for (const e of [...this.#entries]) {
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
    if (this.#entries.length === 0 && this.#connecting === 0 && this.#queue.length === 0) {
      this.#retire.disarm();
      this.#onEmpty(this);
    }
  }
}
