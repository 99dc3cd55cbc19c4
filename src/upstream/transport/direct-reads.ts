// Reads of a plain TCP upstream socket without node:stream's Readable on the way: the socket is created with Node's
// `onread` option, so libuv reads into one process-wide buffer and hands the bytes to a callback, with no Buffer made
// per read, no push / 'data' event, and no `maybeReadMore` tick after each read. The HTTP/1.1 pool's connections
// read this way (docs/performance-notes.md, "Issue 15, ninth part").
//
// The callback copies the bytes out of the shared buffer at once (into Node's buffer pool for small reads), so what
// the owner receives is its own to keep, queue or write elsewhere; the shared buffer is only ever read synchronously.
// Until an owner attaches a sink, and again after it detaches one (a socket handed to a tunnel, which pipes it),
// every read is pushed into the socket's own Readable as Node would have done: 'data', pipe() and backpressure work
// as on any socket. pause() / resume() stop and restart the reads in both modes (Node's handling of `onread`).
import type { OnReadOpts, Socket } from 'node:net';

/** Where libuv reads every direct-read socket's bytes; copied out before the callback returns. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** Gets each read (a copy); returning false pauses the socket (it resumes with socket.resume()). */
export type ReadSink = (chunk: Buffer) => boolean;

export class DirectReads {
  #socket: Socket | undefined;
  #sink: ReadSink | undefined;
  /** Node's `onread` option, for the socket's constructor. */
  readonly onread: OnReadOpts = { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array): boolean => this.#onRead(n, buf) };

  /** The socket created with `onread` (reads before a sink attaches are pushed into it). */
  bind(socket: Socket): void {
    this.#socket = socket;
  }

  /** From now on every read goes to `sink`; what the socket's stream already holds goes first. */
  attach(sink: ReadSink): void {
    this.#sink = sink;
    const s = this.#socket;
    if (s === undefined || s.readableLength === 0) return;
    for (let chunk: unknown = s.read(); chunk !== null; chunk = s.read()) sink(chunk as Buffer);
  }

  /** Back to the socket's stream ('data' events, pipe()). */
  detach(): void {
    this.#sink = undefined;
  }

  #onRead(n: number, buf: Uint8Array): boolean {
    const chunk = Buffer.allocUnsafe(n);
    (buf as Buffer).copy(chunk, 0, 0, n); // buf is READ_BUFFER, the Buffer given as `onread.buffer`
    const sink = this.#sink;
    if (sink !== undefined) return sink(chunk);
    return this.#socket === undefined ? false : this.#socket.push(chunk);
  }
}
