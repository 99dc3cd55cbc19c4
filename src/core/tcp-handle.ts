// An accepted TCP connection served on its libuv handle, without a net.Socket and its streams (docs/performance-
// notes.md, "Issue 15, sixteenth part"). A capture listener with an HTTP engine takes its connections this way
// (TcpHandle.interceptAccepts): the HTTP/1.1 engine reads and writes the handle directly (src/l7/engine/
// handle-transport.ts), and every connection that needs more than that (detection other than HTTP/1.1, TLS, HTTP/2,
// opaque forwarding, tunnels, refusals) becomes a net.Socket on the same handle at that moment (toSocket()), as
// Node's own accept would have made it. TcpHandle.writeThrough() writes the same way on an existing net.Socket (the
// HTTP/1.1 pool's upstream connections: a request head without the socket's Writable).
//
// This is the one file that uses Node's internal stream handle classes: the listening handle's `onconnection` (and its
// `setNoDelay`, set once there: accepted connections inherit TCP_NODELAY on Linux), the
// accepted handle's `onread` / `readStart` / `readStop` / `writeBuffer` / `writeLatin1String` / `shutdown` / `close`
// / `reset`, and the request classes `WriteWrap` / `ShutdownWrap` with `streamBaseState` (from
// `process.binding('stream_wrap')`, on Node's allow-list for it). They are probed once; when any is missing (another
// Node release), TcpHandle.supported() is false, nothing is intercepted, and Node accepts net.Sockets as before.
// test/unit/core/tcp-handle fails loudly if they disappear (docs/discoveries.md, 12).
//
// Semantics kept from net.Socket where the engine relies on them: writes are queued by libuv in order and a
// shutdown (end()) goes out after them; write() says "full" while 16 KiB or more wait in the kernel's stead, and
// onceDrain() hears when they are out; the client's FIN is an 'end' and does not close (half-open); a read or write
// error destroys the connection and is reported with the close, once.
import { Socket, type Server } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { systemError } from './errors.js';

/** The accepted handle as Node's tcp_wrap makes it (the fields used here). */
interface RawHandle {
  onread: (arrayBuffer: ArrayBuffer | undefined) => void;
  readonly fd: number;
  readStart(): number;
  readStop(): number;
  setNoDelay(on: boolean): number;
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  writeLatin1String(req: WriteReq, data: string): number;
  writev(req: WriteReq, chunks: readonly Uint8Array[], allBuffers: true): number;
  shutdown(req: ShutdownReq): number;
  close(cb?: () => void): void;
  reset(cb?: () => void): number;
  getsockname(out: { address?: string; port?: number }): number;
}

interface WriteReq {
  handle: RawHandle | undefined;
  oncomplete: ((this: WriteReq, status: number) => void) | undefined;
  async: boolean;
  buffer: Uint8Array | string | readonly Uint8Array[] | undefined;
  /** The TcpHandle (or net.Socket) whose write this is, and its size (read by the completion of a write libuv kept). */
  owner: TcpHandle | Socket | undefined;
  bytes: number;
}

interface ShutdownReq {
  handle: RawHandle | undefined;
  oncomplete: ((status: number) => void) | undefined;
}

interface Bindings {
  readonly WriteWrap: new () => WriteReq;
  readonly ShutdownWrap: new () => ShutdownReq;
  readonly state: Int32Array;
  readonly kReadBytesOrError: number;
  readonly kArrayBufferOffset: number;
  readonly kLastWriteWasAsync: number;
  readonly eof: number;
}

/** Probed once: the bindings, or null when this Node release does not have them. */
let bindings: Bindings | null | undefined;

function probe(): Bindings | null {
  if (bindings !== undefined) return bindings;
  bindings = null;
  try {
    const binding = (process as unknown as { binding?: (name: string) => Record<string, unknown> }).binding;
    const stream = binding?.call(process, 'stream_wrap');
    const tcp = binding?.call(process, 'tcp_wrap');
    const state = stream?.['streamBaseState'];
    const proto = (tcp?.['TCP'] as { prototype?: Record<string, unknown> } | undefined)?.prototype;
    const eof = -4095;
    const fns = ['readStart', 'readStop', 'setNoDelay', 'writeBuffer', 'writeLatin1String', 'writev', 'shutdown', 'close', 'reset', 'getsockname'];
    if (stream === undefined || typeof stream['WriteWrap'] !== 'function' || typeof stream['ShutdownWrap'] !== 'function'
      || !(state instanceof Int32Array) || typeof stream['kReadBytesOrError'] !== 'number'
      || typeof stream['kArrayBufferOffset'] !== 'number' || typeof stream['kLastWriteWasAsync'] !== 'number'
      || proto === undefined || fns.some((f) => typeof proto[f] !== 'function') || getSystemErrorName(eof) !== 'EOF') {
      return null;
    }
    bindings = {
      WriteWrap: stream['WriteWrap'] as Bindings['WriteWrap'],
      ShutdownWrap: stream['ShutdownWrap'] as Bindings['ShutdownWrap'],
      state,
      kReadBytesOrError: stream['kReadBytesOrError'] as number,
      kArrayBufferOffset: stream['kArrayBufferOffset'] as number,
      kLastWriteWasAsync: stream['kLastWriteWasAsync'] as number,
      eof,
    };
  } catch {
    bindings = null;
  }
  return bindings;
}

/** What the owner of a TcpHandle hears. */
export interface TcpHandleEvents {
  /** A read (the owner's to keep). */
  data(chunk: Buffer): void;
  /** The client's FIN (reads are over; writing goes on). */
  end(): void;
  /** The handle is closed (once): `err` when a read or write failed, or destroy() was given one. */
  close(err: Error | undefined): void;
}

const EBADF = -9;

/**
 * The handle of a TcpHandle that became a socket: the socket owns the real one, and this object must not keep it (nor,
 * through the handle's owner, the socket) for as long as something holds the TcpHandle (an accept-time connection
 * context lives as long as its connection). Every method fails as on a closed descriptor; none is called once the
 * TcpHandle is closed.
 */
const DETACHED: RawHandle = {
  onread: () => undefined,
  fd: -1,
  readStart: () => EBADF,
  readStop: () => EBADF,
  setNoDelay: () => EBADF,
  writeBuffer: () => EBADF,
  writeLatin1String: () => EBADF,
  writev: () => EBADF,
  shutdown: () => EBADF,
  close: () => undefined,
  reset: () => EBADF,
  getsockname: () => EBADF,
};

/** net.Socket's default writable high-water mark on Node 20: write() says "full" from this many bytes queued. */
const HIGH_WATER_MARK = 16 * 1024;

/**
 * A WriteWrap that no write holds: the next write's request. libuv binds a request only when it keeps the write (the
 * kernel did not take it all at once); a write the kernel takes leaves it untouched, so the same object serves every
 * such write, and a new one is made only after a write libuv kept.
 */
let spareWrite: WriteReq | undefined;

/**
 * One write on `raw` with the spare request (made when there is none): 0 or a negative errno. When the kernel took it
 * all (b.state says libuv did not keep it), the request is the spare again; a kept or failed one is not reused.
 */
function writeRequest(b: Bindings, raw: RawHandle, data: Uint8Array | string | readonly Uint8Array[], owner: TcpHandle | Socket,
  bytes: number, done: (this: WriteReq, status: number) => void): number {
  const req = spareWrite ?? new b.WriteWrap();
  spareWrite = undefined;
  req.handle = raw;
  req.async = false;
  req.buffer = data; // kept until an asynchronous write completes (libuv reads its bytes later), as Node does
  req.owner = owner;
  req.bytes = bytes;
  req.oncomplete = done;
  const err = typeof data === 'string' ? raw.writeLatin1String(req, data)
    : data instanceof Uint8Array ? raw.writeBuffer(req, data) : raw.writev(req, data, true);
  if (err === 0 && b.state[b.kLastWriteWasAsync] === 0) {
    req.handle = undefined;
    req.buffer = undefined;
    req.owner = undefined;
    spareWrite = req;
  }
  return err;
}

/** The completion of a socket's write (TcpHandle.writeThrough) that libuv kept: a failure destroys the socket. */
function socketWriteDone(this: WriteReq, status: number): void {
  const socket = this.owner;
  this.owner = undefined;
  this.buffer = undefined;
  if (status < 0 && socket instanceof Socket) socket.destroy(systemError(status, 'write'));
}

function ignoreEvent(): void {}
const NO_EVENTS: TcpHandleEvents = { data: ignoreEvent, end: ignoreEvent, close: ignoreEvent };

export class TcpHandle {
  /** Whether this Node release has what TcpHandle uses (probed once). */
  static supported(): boolean {
    return probe() !== null;
  }

  /**
   * Take the accepted connections of a listening net.Server as TcpHandles from now on (`accept` gets each one; it
   * must take it: serve it or make it a socket). False, with nothing changed, when the server has no listening
   * handle or this Node release lacks the bindings. Accept errors still reach the server's 'error' listener.
   */
  static interceptAccepts(server: Server, accept: (conn: TcpHandle) => void): boolean {
    const b = probe();
    const listening = (server as unknown as { readonly _handle?: { onconnection?: unknown } | null })._handle;
    if (b === null || listening === null || listening === undefined || typeof listening.onconnection !== 'function') return false;
    const nodeOnConnection = listening.onconnection as (this: unknown, err: number, client: RawHandle | undefined) => void;
    // Nagle off once, on the listening socket: Linux copies TCP_NODELAY into every connection accept() returns, which
    // saves a setsockopt per connection. Where it cannot be set there, each accepted handle sets it.
    const setNoDelay = (listening as { setNoDelay?: unknown }).setNoDelay;
    const inherited = typeof setNoDelay === 'function' && (setNoDelay as (on: boolean) => number).call(listening, true) === 0;
    listening.onconnection = function onconnection(this: unknown, err: number, client: RawHandle | undefined): void {
      if (err !== 0 || client === undefined) {
        nodeOnConnection.call(this, err, client);
        return;
      }
      accept(new TcpHandle(b, client, inherited));
    };
    return true;
  }

  /**
   * Write `data` (a string is latin1) on a connected plain TCP net.Socket straight through its handle, as a TcpHandle
   * writes: without the socket's Writable (its write request, state and callbacks). Only when the stream holds no
   * byte, so that the order of the bytes is kept (libuv queues the writes of a handle in order; the stream's later
   * writes and its end() come after this one). False, with nothing written, when that is not the case or not possible
   * (TLS, connecting, corked, ended, another Node release): write through the socket then. A write libuv keeps
   * completes on its own; if it fails, the socket is destroyed with the error, as its stream would do. What is written
   * here is not in the socket's bytesWritten.
   */
  static writeThrough(socket: Socket, data: string | Uint8Array): boolean {
    const b = probe();
    const h = (socket as unknown as { readonly _handle?: Partial<RawHandle> | null })._handle;
    if (b === null || h === null || h === undefined || typeof h.writeLatin1String !== 'function'
      || (socket as { encrypted?: unknown }).encrypted === true || socket.connecting || socket.destroyed
      || !socket.writable || socket.writableLength !== 0 || socket.writableCorked !== 0) {
      return false;
    }
    const err = writeRequest(b, h as RawHandle, data, socket, data.length, socketWriteDone);
    if (err !== 0) socket.destroy(systemError(err, 'write'));
    return true;
  }

  readonly #b: Bindings;
  /** The accepted handle; DETACHED once a socket owns it. */
  #h: RawHandle;
  #events: TcpHandleEvents = NO_EVENTS;
  #reading = false;
  #ended = false;
  /** destroy() ran (or the handle left as a socket). */
  #closed = false;
  /** end() was called: later writes are dropped (net.Socket would fail them). */
  #ending = false;
  /** Our FIN is out (end() completed). */
  #finished = false;
  #afterEnd: (() => void)[] | undefined;
  /**
   * toSocket() made a socket of the handle: it owns it now (destroy, reset and the counts go to it). Dropped when the
   * socket closes (its counts copied first).
   */
  #successor: Socket | undefined;
  #error: Error | undefined;
  #pendingBytes = 0;
  #drainWaiters: (() => void)[] | undefined;
  #bytesRead = 0;
  #bytesWritten = 0;

  private constructor(b: Bindings, h: RawHandle, noDelayInherited: boolean) {
    this.#b = b;
    this.#h = h;
    h.onread = this.#onRead;
    if (!noDelayInherited) h.setNoDelay(true);
  }

  /** The file descriptor (for SO_ORIGINAL_DST); -1 once the handle is a socket's. */
  get fd(): number {
    return this.#h.fd;
  }

  get destroyed(): boolean {
    return this.#successor !== undefined ? this.#successor.destroyed : this.#closed;
  }

  /** Reads are on (resume() without a pause(), EOF or close since). */
  get reading(): boolean {
    return this.#reading;
  }

  /** The client's FIN was read. */
  get readableEnded(): boolean {
    return this.#ended;
  }

  /**
   * Bytes read from the client. Once the handle is a socket, the socket's count: Node counts on the handle itself, so
   * it includes what was read (and written) here before (test/unit/core/tcp-handle checks it).
   */
  get bytesRead(): number {
    return this.#successor !== undefined ? this.#successor.bytesRead : this.#bytesRead;
  }

  get bytesWritten(): number {
    return this.#successor !== undefined ? this.#successor.bytesWritten : this.#bytesWritten;
  }

  /** Bytes handed to libuv that are not yet written to the kernel. */
  get writableLength(): number {
    return this.#pendingBytes;
  }

  get writableNeedDrain(): boolean {
    return this.#pendingBytes >= HIGH_WATER_MARK;
  }

  /** The local address (the loop guard's last resort), or undefined; read from the kernel, as net.Socket's. */
  get localAddress(): string | undefined {
    const out: { address?: string } = {};
    return this.#h.getsockname(out) === 0 ? out.address : undefined;
  }

  /** Who hears the reads, the FIN and the close (replaces the previous listener). Reading starts with resume(). */
  listen(events: TcpHandleEvents): void {
    this.#events = events;
  }

  pause(): void {
    if (!this.#reading || this.#closed) return;
    this.#reading = false;
    this.#h.readStop();
  }

  resume(): void {
    if (this.#reading || this.#closed || this.#ended) return;
    this.#reading = true;
    const err = this.#h.readStart();
    if (err !== 0) this.destroy(systemError(err, 'read'));
  }

  /** Queue `data` (a string is latin1); false when the caller should wait for onceDrain(). */
  write(data: Uint8Array | string): boolean {
    return this.#write(data, data.length);
  }

  /** Queue `chunks` as one write (one system call where the kernel takes them all). */
  writev(chunks: readonly Uint8Array[]): boolean {
    let n = 0;
    for (const c of chunks) n += c.length;
    return this.#write(chunks, n);
  }

  #write(data: Uint8Array | string | readonly Uint8Array[], n: number): boolean {
    if (this.#closed || this.#ending) return true;
    const b = this.#b;
    const err = writeRequest(b, this.#h, data, this, n, TcpHandle.#writeDone);
    if (err !== 0) {
      this.destroy(systemError(err, 'write'));
      return true;
    }
    this.#bytesWritten += n;
    if (b.state[b.kLastWriteWasAsync] !== 0) this.#pendingBytes += n; // libuv holds the request until the write completes
    return this.#pendingBytes < HIGH_WATER_MARK;
  }

  /** The completion of a write libuv kept (`this` is its request). */
  static readonly #writeDone = function writeDone(this: WriteReq, status: number): void {
    const h = this.owner;
    this.owner = undefined;
    this.buffer = undefined;
    if (!(h instanceof TcpHandle)) return;
    h.#pendingBytes -= this.bytes;
    if (status < 0) {
      h.destroy(systemError(status, 'write'));
      return;
    }
    if (h.#pendingBytes === 0) h.#drained();
  };

  /** Call `cb` once when what is queued is written (at once, in the next tick, when nothing is). */
  onceDrain(cb: () => void): void {
    if (this.#pendingBytes === 0 || this.#closed) {
      process.nextTick(cb);
      return;
    }
    (this.#drainWaiters ??= []).push(cb);
  }

  /**
   * Send FIN after what is queued; `then` (if given) runs once it is out, else the handle closes as soon as the
   * client's FIN came too. A second end() only adds its `then`.
   */
  end(then?: () => void): void {
    if (this.#closed) return;
    if (then !== undefined) (this.#afterEnd ??= []).push(then);
    if (this.#ending) {
      if (this.#finished) this.#runAfterEnd();
      return;
    }
    this.#ending = true;
    const req = new this.#b.ShutdownWrap();
    req.handle = this.#h;
    req.oncomplete = (status: number): void => {
      if (this.#closed) return;
      this.#finished = true;
      if (status < 0) {
        this.destroy();
        return;
      }
      if (this.#afterEnd !== undefined) this.#runAfterEnd();
      else if (this.#ended) this.destroy();
    };
    const err = this.#h.shutdown(req);
    if (err !== 0) this.destroy();
  }

  #runAfterEnd(): void {
    const list = this.#afterEnd;
    this.#afterEnd = undefined;
    if (list !== undefined) for (const cb of list) cb();
  }

  /** Close now (queued writes are dropped); the close is reported once, with `err` if given. */
  destroy(err?: Error): void {
    if (this.#successor !== undefined) {
      this.#successor.destroy();
      return;
    }
    if (this.#closed) return;
    this.#closed = true;
    this.#reading = false;
    this.#error ??= err;
    this.#h.readStop();
    this.#h.close(this.#onClose);
  }

  /** Abort with a TCP reset (RST) instead of a FIN. */
  reset(): void {
    const s = this.#successor;
    if (s !== undefined) {
      if (s.destroyed) return;
      try {
        s.resetAndDestroy();
      } catch {
        s.destroy();
      }
      return;
    }
    if (this.#closed) return;
    this.#closed = true;
    this.#reading = false;
    this.#h.readStop();
    if (this.#h.reset(this.#onClose) !== 0) this.#h.close(this.#onClose);
  }

  /**
   * A net.Socket on this handle (as Node's accept makes one: half-open allowed, reading), which owns it from now on:
   * this object reports nothing more, and its destroy(), reset() and counts go to the socket (the counts stay here once
   * the socket closed; neither the socket nor Node's handle is kept). What was read through this object is not in the
   * socket (the caller puts it back). Throws when the handle is already closed.
   */
  toSocket(): Socket {
    if (this.#closed) throw systemError(EBADF, 'accept');
    this.#closed = true;
    this.#events = NO_EVENTS;
    this.#drainWaiters = undefined;
    const h = this.#h;
    this.#h = DETACHED;
    h.readStop(); // the socket sets its own onread (a function is required there) and reads again
    const socket = new Socket({ handle: h, allowHalfOpen: true, readable: true, writable: true } as ConstructorParameters<typeof Socket>[0]);
    // The client's FIN was read here already: libuv reports it again to the socket's first read (uv_read_start
    // clears the stream's EOF flag), so the socket ends as it would have.
    this.#successor = socket;
    // A closed socket is not kept: the counts it ended with stay here.
    socket.once('close', () => {
      this.#bytesRead = socket.bytesRead;
      this.#bytesWritten = socket.bytesWritten;
      this.#successor = undefined;
    });
    return socket;
  }

  #drained(): void {
    const waiters = this.#drainWaiters;
    if (waiters === undefined) return;
    this.#drainWaiters = undefined;
    for (const cb of waiters) cb();
  }

  readonly #onRead = (arrayBuffer: ArrayBuffer | undefined): void => {
    if (this.#closed) return;
    const b = this.#b;
    const n = b.state[b.kReadBytesOrError] ?? 0;
    if (n > 0 && arrayBuffer !== undefined) {
      this.#bytesRead += n;
      this.#events.data(Buffer.from(arrayBuffer, b.state[b.kArrayBufferOffset] ?? 0, n));
      return;
    }
    if (n === b.eof) {
      this.#ended = true;
      this.#reading = false;
      this.#events.end();
      // Both FINs are out (end() completed before this one came): the connection is over, as a half-open socket's.
      if (this.#finished && this.#afterEnd === undefined) this.destroy();
      return;
    }
    if (n < 0) this.destroy(systemError(n, 'read'));
  };

  readonly #onClose = (): void => {
    if (this.#successor !== undefined) return;
    const events = this.#events;
    this.#events = NO_EVENTS;
    this.#drainWaiters = undefined; // as a destroyed net.Socket: no 'drain' after the close
    events.close(this.#error);
  };
}
