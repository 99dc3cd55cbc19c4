// What the HTTP/1.1 engine needs of a downstream connection (Http1Downstream and its responders), on either of two
// transports:
//   - SocketTransport (this file): a net.Socket (TLS inside mesh mTLS, the capture listener without TcpHandle, every
//     connection detection took into a socket), read without its stream where it can (src/core/direct-reads.ts);
//   - HandleTransport (handle-transport.ts): the accepted TCP handle itself (src/core/tcp-handle.ts), no net.Socket.
// Both keep net.Socket's semantics where the engine relies on them: writes in order, end() after them, write() false
// when full and onceDrain(), the client's FIN as 'end' without a close (half-open), one close at the end.
import type { Socket } from 'node:net';
import { DirectReads } from '../../core/direct-reads.js';

/** What the engine hears of its connection. */
export interface TransportEvents {
  data(chunk: Buffer): void;
  /** The client's FIN. */
  end(): void;
  /** The connection closed (once). */
  close(): void;
}

export interface DownstreamTransport {
  /** A net.Socket, or the accepted TCP handle itself. */
  readonly kind: 'socket' | 'handle';
  readonly destroyed: boolean;
  /** The client's FIN was read (possibly before the engine took the connection). */
  readonly readableEnded: boolean;
  readonly writableNeedDrain: boolean;
  /** Reads arrive without node:stream (false: a TLS socket, read through 'data'). */
  readonly directReads: boolean;
  /** Start hearing the connection (once); reads begin with resume(). */
  listen(events: TransportEvents): void;
  pause(): void;
  resume(): void;
  /** A string is written as latin1. False: wait for onceDrain(). */
  write(data: Buffer | string): boolean;
  /** The pieces in order, as one write where the transport can (strings as latin1). */
  writev(pieces: readonly (Buffer | string)[]): boolean;
  onceDrain(cb: () => void): void;
  /** FIN after what is queued; then `then` runs (or, without it, the connection closes once both sides ended). */
  end(then?: () => void): void;
  destroy(): void;
  /**
   * The connection as a net.Socket from now on (a tunnel pipes it): the transport reports nothing more, and the
   * socket's own 'close' is the connection's end.
   */
  toSocket(): Socket;
}

export class SocketTransport implements DownstreamTransport {
  readonly kind = 'socket';
  readonly #socket: Socket;
  readonly #reads: DirectReads | undefined;
  #events: TransportEvents | undefined;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('error', ignore);
    this.#reads = DirectReads.adopt(socket);
    socket.setNoDelay(true);
  }

  get destroyed(): boolean { return this.#socket.destroyed; }
  get readableEnded(): boolean { return this.#socket.readableEnded; }
  get writableNeedDrain(): boolean { return this.#socket.writableNeedDrain; }
  get directReads(): boolean { return this.#reads !== undefined; }

  listen(events: TransportEvents): void {
    this.#events = events;
    const s = this.#socket;
    if (this.#reads === undefined) s.on('data', events.data);
    else this.#reads.attach(this.#onRead);
    s.on('end', events.end);
    s.on('close', events.close);
  }

  pause(): void { this.#socket.pause(); }
  resume(): void { this.#socket.resume(); }

  write(data: Buffer | string): boolean {
    return typeof data === 'string' ? this.#socket.write(data, 'latin1') : this.#socket.write(data);
  }

  writev(pieces: readonly (Buffer | string)[]): boolean {
    const s = this.#socket;
    s.cork();
    let ok = true;
    for (const p of pieces) ok = typeof p === 'string' ? s.write(p, 'latin1') : s.write(p);
    s.uncork();
    return ok;
  }

  onceDrain(cb: () => void): void { this.#socket.once('drain', cb); }

  end(then?: () => void): void {
    if (then === undefined) this.#socket.end();
    else this.#socket.end(then);
  }

  destroy(): void { this.#socket.destroy(); }

  toSocket(): Socket {
    const s = this.#socket;
    const events = this.#events;
    if (events !== undefined) {
      s.off('data', events.data);
      s.off('end', events.end);
      s.off('close', events.close);
    }
    this.#events = undefined;
    this.#reads?.detach(); // the tunnel reads the socket's stream
    return s;
  }

  /** A direct read: the engine pauses the socket itself, so the sink always takes the chunk. */
  readonly #onRead = (chunk: Buffer): boolean => {
    this.#events?.data(chunk);
    return true;
  };
}

function ignore(): void {}
