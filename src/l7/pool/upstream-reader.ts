// The read side of one pooled HTTP/1.1 upstream connection on a plain TCP socket: net's documented `onread` option
// (ConnectReadInto) instead of the stream machinery. Every read of every such socket lands in one process-wide
// 64 KiB buffer and is handed, as a view, to the connection's sink during the callback: no Buffer allocated per read
// (Node's default path allocates 64 KiB, shrinks it to the bytes read and wraps it in an ArrayBuffer and a Buffer),
// no Readable push/emit. Whatever must outlive the callback (body chunks handed on, a partial head) is copied by the
// connection and the parser.
//
// The reader exists before its connection (the socket is created with it); bytes that arrive before a sink is
// attached are kept (copied) and returned by attach(). After a hand-over to a tunnel, `pushToStream` makes the socket
// an ordinary Readable again: each read is copied and pushed, so 'data', pipe() and backpressure work as for any
// socket (push() returning false stops reading until the consumer reads on).
import type { Socket } from 'node:net';
import type { ConnectReadInto } from '../../upstream/transport/connect.js';

/** Receives the bytes of one read (a view valid only during the call); false = stop reading (pause). */
export type ReadSink = (bytes: Buffer) => boolean;

const READ_BUFFER_BYTES = 64 * 1024;
let sharedReadBuffer: Buffer | undefined;

export class UpstreamReader {
  readonly readInto: ConnectReadInto;
  #sink: ReadSink | undefined;
  #early: Buffer[] | undefined;

  constructor() {
    sharedReadBuffer ??= Buffer.allocUnsafe(READ_BUFFER_BYTES);
    this.readInto = { buffer: sharedReadBuffer, callback: this.#onRead };
  }

  /** Route reads to `sink`; returns the bytes that arrived before (copies), if any. */
  attach(sink: ReadSink): Buffer[] | undefined {
    this.#sink = sink;
    const early = this.#early;
    this.#early = undefined;
    return early;
  }

  /** From now on every read is copied and pushed into `socket`'s Readable side (a tunnel reads it as a stream). */
  pushToStream(socket: Socket): void {
    this.#sink = (bytes) => socket.push(Buffer.from(bytes));
  }

  readonly #onRead = (n: number, buffer: Buffer): boolean => {
    const bytes = buffer.subarray(0, n);
    const sink = this.#sink;
    if (sink !== undefined) return sink(bytes);
    (this.#early ??= []).push(Buffer.from(bytes));
    return true;
  };
}
