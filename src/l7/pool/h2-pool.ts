// The HTTP/2 connection pool of one upstream endpoint on remora's own codec (src/l7/h2/h2-connection.ts, client
// side); `http2_codec = node` uses http2-pool.ts instead. The policy (which connection takes a request, when one opens
// or retires, the queue and the breaker) is StreamPool's (stream-pool.ts); this file opens the streams.
//
// Flow control: a response the exchange cannot pass on pauses its stream, which then stops acknowledging DATA, so the
// upstream is held by the stream window (1 MiB; 8 MiB per connection). A stream the server refused (RST_STREAM
// REFUSED_STREAM before any response byte, or above its GOAWAY's last stream id) is reported with `refused: true`:
// never processed, safe to send again whatever its method.
import type { Socket } from 'node:net';
import type { BodySink } from '../http/request-body.js';
import { H2Connection, type H2ConnectionOwner } from '../h2/h2-connection.js';
import type { H2Stream, H2StreamHandler } from '../h2/h2-stream.js';
import { checkTrailerFields, parseResponseFields } from '../h2/h2-fields.js';
import { CANCEL, PROTOCOL_ERROR, REFUSED_STREAM } from '../h2/frame.js';
import { lowerCaseNames } from '../h2/lower-case-names.js';
import { poolFailure } from './pool-common.js';
import type {
  AttemptControl, PoolAdmission, UpstreamFailure, UpstreamHandler, UpstreamRequest,
} from './pool-types.js';
import { StreamPool, type PoolEntry, type QueuedAttempt } from './stream-pool.js';

const DEFAULT_MAX_STREAMS = 100;
/** Receive windows of the pool's connections (see http2-pool.ts for the reasoning): per stream, per connection. */
const H2_STREAM_WINDOW = 1024 * 1024;
const H2_CONNECTION_WINDOW = 8 * 1024 * 1024;
/** The largest response head the pool accepts (SETTINGS_MAX_HEADER_LIST_SIZE). */
const MAX_HEADER_LIST = 64 * 1024;

const EMPTY: readonly string[] = [];

class Entry implements H2ConnectionOwner, PoolEntry {
  readonly #pool: H2Pool;
  readonly conn: H2Connection;
  readonly #slot: () => void;
  /** The codec can send as soon as the socket is connected (the preface and SETTINGS go first). */
  ready = true;
  draining = false;
  active = 0;
  opened = 0;
  idleDeadline = Infinity;

  constructor(pool: H2Pool, socket: Socket, slot: () => void) {
    this.#pool = pool;
    this.#slot = slot;
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

  closeGracefully(): void {
    this.conn.goaway();
  }

  onStream(stream: H2Stream): void {
    stream.reset(PROTOCOL_ERROR);
  }

  onStreamClosed(): void {
    this.active--;
    this.#pool.streamEnded(this);
  }

  onSettings(): void {
    this.#pool.settingsChanged();
  }

  onGoaway(): void {
    this.#pool.goawayOn(this);
  }

  onError(): void {
    this.#pool.protocolError();
  }

  onClose(): void {
    this.#pool.closedOn(this, this.#slot);
  }
}

class H2Attempt implements AttemptControl, BodySink, H2StreamHandler, QueuedAttempt {
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
    h.onResponse({ statusCode: head.status, statusText: '', headers: head.headers, close: false, bodyless: endStream, hopByHop: false, readEnds: false });
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

export class H2Pool extends StreamPool<Entry, H2Attempt> {
  protected newAttempt(request: UpstreamRequest, handler: UpstreamHandler, admit: PoolAdmission | undefined): H2Attempt {
    return new H2Attempt(this, request, handler, admit);
  }

  protected attach(socket: Socket, slot: () => void): Entry {
    const e = new Entry(this, socket, slot);
    e.conn.start(Buffer.alloc(0));
    return e;
  }

  protected start(a: H2Attempt, e: Entry): void {
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
  streamEnded(e: Entry): void {
    this.afterStream(e);
  }

  /** @internal the peer's SETTINGS may have raised its concurrency limit */
  settingsChanged(): void {
    this.drainQueue();
  }

  /** @internal */
  goawayOn(e: Entry): void {
    this.entryGoaway(e);
  }

  /** @internal */
  closedOn(e: Entry, slot: () => void): void {
    this.entryClosed(e, slot);
  }

  /** @internal a connection error detected on one of the pool's connections */
  protocolError(): void {
    this.stats.increment('pool.http2.protocol_error');
  }
}
