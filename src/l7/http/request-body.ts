// The request body of one downstream request, streamed to one upstream attempt at a time, with a bounded replay
// buffer so that a failed attempt can be repeated on another connection.
//
// Every chunk read from the downstream is kept until the total passes `replayLimit` (64 KiB by default); from then
// on nothing is kept and the body is no longer replayable. A new attempt gets a fresh reader that first replays the
// kept chunks and then continues with live data: the upstream sees exactly the bytes the client sent, so replaying
// a body that is still arriving is as safe as replaying a complete one, as long as nothing was dropped.
//
// Backpressure: the downstream source is read only while a reader is attached, caught up with the kept chunks, and
// its sink accepts writes (`write()` returning false pauses the source until `resume()`). Memory per request is
// bounded by replayLimit plus the chunk in flight.
//
// Two kinds of source: a Readable (the HTTP/2 engine's streams: 'data' / 'end' are listened to), or a BodySource
// driven by its owner (the HTTP/1.1 engine, which parses the body off the socket itself): the owner calls push() for
// every piece and pushEnd() at the end, and the body calls the source's pause() / resume(). No stream object per
// request.
import type { Readable } from 'node:stream';

/** A body source driven by its owner through RequestBody.push() / pushEnd(). */
export interface BodySource {
  /** Stop delivering (push() may still be called with what was already read). */
  pause(): void;
  /** Deliver again. */
  resume(): void;
}

function isReadable(s: Readable | BodySource): s is Readable {
  return typeof (s as Readable).on === 'function';
}

export interface BodySink {
  /** Write a chunk; false asks the body to stop until the reader's resume() is called. */
  write(chunk: Buffer): boolean;
  /** The body is complete; trailers is a flat [name, value, ...] array (possibly empty). */
  end(trailers: readonly string[]): void;
}

export interface BodyReader {
  /** Start delivering to `sink` (once). */
  start(sink: BodySink): void;
  /** The sink drained: continue delivering. */
  resume(): void;
  /** Stop delivering; the reader is dead afterwards. */
  stop(): void;
}

export const DEFAULT_REPLAY_LIMIT = 64 * 1024;

export class RequestBody {
  readonly #source: Readable | BodySource;
  readonly #limit: number;
  readonly #trailers: () => readonly string[];
  readonly #aborted: () => boolean;
  /** Declared length (Content-Length), or undefined for a body of unknown length (chunked / h2 stream). */
  readonly length: number | undefined;
  #chunks: Buffer[] = [];
  #kept = 0;
  #bytes = 0;
  #replayable = true;
  #ended = false;
  #reader: Reader | undefined;
  #disposed = false;

  /**
   * `aborted` is asked when the source ends: an HTTP/2 stream reset by the client also ends its readable side, and
   * such a body must never be forwarded as complete.
   */
  constructor(
    source: Readable | BodySource,
    length: number | undefined,
    trailers: () => readonly string[],
    replayLimit = DEFAULT_REPLAY_LIMIT,
    aborted: () => boolean = () => false,
  ) {
    this.#source = source;
    this.#aborted = aborted;
    this.length = length;
    this.#trailers = trailers;
    this.#limit = replayLimit;
    if (isReadable(source)) {
      source.on('data', (chunk: Buffer) => this.#onData(chunk));
      source.on('end', () => this.#onEnd());
    }
    source.pause();
  }

  /** A BodySource's owner: the next piece of the body. */
  push(chunk: Buffer): void {
    this.#onData(chunk);
  }

  /** A BodySource's owner: the body is complete (trailers are read through the constructor's `trailers`). */
  pushEnd(): void {
    this.#onEnd();
  }

  /** Every byte read so far is still kept: a new reader can replay the body from its start. */
  get replayable(): boolean {
    return this.#replayable;
  }

  /** The whole body has been read from the downstream. */
  get complete(): boolean {
    return this.#ended;
  }

  /** Bytes read from the downstream so far. */
  get bytesRead(): number {
    return this.#bytes;
  }

  /** A reader starting at byte 0, or undefined when that is impossible (bytes were dropped). Detaches the previous one. */
  reader(): BodyReader | undefined {
    this.#reader?.stop();
    if (!this.#replayable) return undefined;
    const r = new Reader(this);
    this.#reader = r;
    return r;
  }

  /**
   * The exchange is over: keep nothing, and read (discard) whatever the downstream still sends, so that an HTTP/1.1
   * connection can parse its next request.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#reader?.stop();
    this.#reader = undefined;
    this.#chunks = [];
    this.#kept = 0;
    this.#replayable = false;
    if (!this.#ended) this.#source.resume();
  }

  // ---- used by Reader ----

  /** @internal */ chunkAt(i: number): Buffer | undefined {
    return this.#chunks[i];
  }

  /** @internal */ get keptCount(): number {
    return this.#chunks.length;
  }

  /** @internal */ get ended(): boolean {
    return this.#ended;
  }

  /** @internal */ trailers(): readonly string[] {
    return this.#trailers();
  }

  /** @internal */ detach(r: Reader): void {
    if (this.#reader === r) {
      this.#reader = undefined;
      if (!this.#ended && !this.#disposed) this.#source.pause();
    }
  }

  /** @internal the reader has caught up and wants live data */
  wantLive(): void {
    if (!this.#ended) this.#source.resume();
  }

  /** @internal the reader's sink is full */
  pauseLive(): void {
    this.#source.pause();
  }

  #onData(chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.#disposed) return;
    if (this.#replayable) {
      this.#kept += chunk.length;
      if (this.#kept > this.#limit) {
        this.#replayable = false;
        this.#chunks = [];
        this.#kept = 0;
      } else {
        this.#chunks.push(chunk);
      }
    }
    const r = this.#reader;
    if (r === undefined) {
      // Between attempts (backoff): hold the source; a non-replayable chunk is useless anyway.
      this.#source.pause();
      return;
    }
    r.live(chunk);
  }

  #onEnd(): void {
    if (this.#aborted()) {
      // Truncated: the exchange learns of the reset from the source's 'close' and aborts the attempt.
      this.#replayable = false;
      return;
    }
    this.#ended = true;
    this.#reader?.sourceEnded();
  }
}

class Reader implements BodyReader {
  readonly #body: RequestBody;
  #sink: BodySink | undefined;
  #next = 0;
  #caughtUp = false;
  #waiting = false;
  #done = false;

  constructor(body: RequestBody) {
    this.#body = body;
  }

  start(sink: BodySink): void {
    if (this.#sink !== undefined || this.#done) return;
    this.#sink = sink;
    this.#pump();
  }

  resume(): void {
    if (!this.#waiting || this.#done) return;
    this.#waiting = false;
    this.#pump();
  }

  stop(): void {
    if (this.#done) return;
    this.#done = true;
    this.#sink = undefined;
    this.#body.detach(this);
  }

  /** A chunk arrived from the source while this reader is attached (and therefore caught up). */
  live(chunk: Buffer): void {
    if (this.#done || this.#sink === undefined) return;
    this.#next = this.#body.keptCount; // kept chunks (if any) include this one: it counts as consumed
    if (!this.#sink.write(chunk)) {
      this.#waiting = true;
      this.#body.pauseLive();
    }
  }

  sourceEnded(): void {
    if (this.#done || this.#sink === undefined || !this.#caughtUp || this.#waiting) return;
    this.#finish();
  }

  #pump(): void {
    const sink = this.#sink;
    if (sink === undefined) return;
    while (this.#next < this.#body.keptCount) {
      const chunk = this.#body.chunkAt(this.#next++) as Buffer;
      if (!sink.write(chunk)) {
        if (this.#done) return;
        this.#waiting = true;
        return;
      }
      if (this.#done) return;
    }
    this.#caughtUp = true;
    if (this.#body.ended) {
      this.#finish();
      return;
    }
    this.#body.wantLive();
  }

  #finish(): void {
    const sink = this.#sink;
    this.#done = true;
    this.#sink = undefined;
    this.#body.detach(this);
    sink?.end(this.#body.trailers());
  }
}
