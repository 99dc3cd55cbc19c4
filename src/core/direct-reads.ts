// Reads of a plain TCP socket without node:stream's Readable on the way, as Node's `onread` socket option gives them:
// libuv reads into one process-wide buffer and hands the bytes to a callback, with no Buffer made per read, no push /
// 'data' event, and no `maybeReadMore` tick after each read. The HTTP/1.1 pool's upstream connections
// (docs/performance-notes.md, "Issue 15, ninth part") and the HTTP/1.1 engine's downstream connections ("tenth part")
// read this way.
//
// Node takes `onread` only in the Socket constructor, and net.Server constructs accepted sockets itself, so
// `DirectReads.adopt(socket)` sets up the same reads on a socket that already exists (accepted, or connected), as the
// constructor does for `onread`: the handle gets the shared buffer (`useUserBuffer`) and the socket the two fields
// Node's read callback looks at (the symbols described 'kBuffer' and 'kBufferCb'). Those are Node internals, looked
// up once by description; when any of them is missing (another Node release), or the socket is a TLS socket or has no
// TCP handle, adopt() changes nothing and returns undefined, and the caller reads through the stream as before.
// test/unit/core/direct-reads fails loudly if they disappear (docs/discoveries.md, 10).
//
// The callback copies the bytes out of the shared buffer at once (into Node's buffer pool for small reads), so what
// the owner receives is its own to keep, queue or write elsewhere; the shared buffer is only ever read synchronously.
// Until an owner attaches a sink, and again after it detaches one (a socket handed to a tunnel, which pipes it),
// every read is pushed into the socket's own Readable as Node would have done: 'data', pipe() and backpressure work
// as on any socket. pause() / resume() stop and restart the reads at the handle in both modes (Node's handling of
// `onread`).
//
// While a sink is attached, only its owner starts and stops the handle's reads. Node's Socket.read() starts them
// whenever the handle is not reading, and the stream calls read() on its own: a read through the stream before the
// hand-over (detection's) leaves a `maybeReadMore` tick that would restart a socket its new owner has just paused,
// and the owner, believing it paused, would then take every byte the client sends. So the attached socket's read()
// is the Readable's own (which still delivers 'end') and its _read() does nothing; detach() gives Node's back.
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';

/** Where libuv reads every direct-read socket's bytes; copied out before the callback returns. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** Gets each read (a copy); returning false pauses the socket (it resumes with socket.resume()). */
export type ReadSink = (chunk: Buffer) => boolean;

/** What an attached socket has for read() and _read() (own properties over net.Socket's). */
interface ReadOverrides {
  read: (n?: number) => unknown;
  _read: (n: number) => void;
}

const readableRead = Readable.prototype.read;

function readNothing(): void {
  // The owner resumes the handle itself (socket.resume()); the stream must not.
}

/** The socket fields Node's read callback uses for `onread` (lib/net.js, lib/internal/stream_base_commons.js). */
interface UserBufferSlots {
  readonly buffer: symbol;
  readonly callback: symbol;
  readonly generator: symbol;
}

/** Probed on the first adopt(): the slots, or null when this Node release does not have them. */
let slots: UserBufferSlots | null | undefined;

function userBufferSlots(socket: Socket): UserBufferSlots | null {
  if (slots !== undefined) return slots;
  const own = Object.getOwnPropertySymbols(socket);
  const find = (description: string): symbol | undefined => own.find((s) => s.description === description);
  const buffer = find('kBuffer');
  const callback = find('kBufferCb');
  const generator = find('kBufferGen');
  slots = buffer !== undefined && callback !== undefined && generator !== undefined ? { buffer, callback, generator } : null;
  return slots;
}

interface UserBufferHandle {
  useUserBuffer(buffer: Uint8Array): void;
}

export class DirectReads {
  /**
   * Read an existing plain TCP socket (an accepted one) directly from now on: reads go to the stream until a sink
   * attaches. Undefined, with nothing changed, when the socket cannot (TLS, no TCP handle, already reading into a
   * buffer of its own, a Node release without the fields; see the file's comment).
   */
  static adopt(socket: Socket): DirectReads | undefined {
    if ((socket as { encrypted?: unknown }).encrypted === true || socket.destroyed) return undefined;
    const handle = (socket as unknown as { readonly _handle?: Partial<UserBufferHandle> | null })._handle;
    if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return undefined;
    const s = userBufferSlots(socket);
    if (s === null) return undefined;
    const fields = socket as unknown as Record<symbol, unknown>;
    if (fields[s.buffer] !== null || fields[s.callback] !== null || fields[s.generator] !== null) return undefined;
    const reads = new DirectReads(socket);
    fields[s.buffer] = READ_BUFFER;
    fields[s.callback] = reads.#onRead;
    (handle as UserBufferHandle).useUserBuffer(READ_BUFFER);
    return reads;
  }

  readonly #socket: Socket;
  #sink: ReadSink | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** From now on every read goes to `sink`; what the socket's stream already holds goes first. */
  attach(sink: ReadSink): void {
    this.#sink = sink;
    const s = this.#socket;
    if (s.readableLength !== 0) {
      for (let chunk: unknown = s.read(); chunk !== null; chunk = s.read()) sink(chunk as Buffer);
    }
    const own = s as unknown as ReadOverrides;
    own.read = readableRead;
    own._read = readNothing;
  }

  /** Back to the socket's stream ('data' events, pipe()). */
  detach(): void {
    this.#sink = undefined;
    const own = this.#socket as unknown as Partial<ReadOverrides>;
    delete own.read;
    delete own._read;
  }

  /** Node's read callback (`kBufferCb`): `n` bytes are in `buf`, which is READ_BUFFER. */
  readonly #onRead = (n: number, buf: Uint8Array): boolean => {
    const chunk = Buffer.allocUnsafe(n);
    (buf as Buffer).copy(chunk, 0, 0, n);
    const sink = this.#sink;
    return sink !== undefined ? sink(chunk) : this.#socket.push(chunk);
  };
}
