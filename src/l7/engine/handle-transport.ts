// The HTTP/1.1 engine's downstream on the accepted TCP handle itself (src/core/tcp-handle.ts): no net.Socket, no
// stream. A tunnel (Upgrade, CONNECT) makes it a socket then (toSocket()). When the connection is over, `closed`
// hears its bytes each way (the L4 stage's accounting: src/l4/handle-connection.ts), the tunnel's included.
import type { Socket } from 'node:net';
import type { TcpHandle } from '../../core/tcp-handle.js';
import type { DownstreamTransport, TransportEvents } from './downstream-transport.js';

/** The connection is over: bytes read from and written to the client. */
export type TransportClosed = (bytesIn: number, bytesOut: number) => void;

export class HandleTransport implements DownstreamTransport {
  readonly kind = 'handle';
  readonly #h: TcpHandle;
  readonly #closed: TransportClosed;

  constructor(handle: TcpHandle, closed: TransportClosed) {
    this.#h = handle;
    this.#closed = closed;
  }

  get destroyed(): boolean { return this.#h.destroyed; }
  get readableEnded(): boolean { return this.#h.readableEnded; }
  get writableNeedDrain(): boolean { return this.#h.writableNeedDrain; }
  get directReads(): boolean { return true; }

  listen(events: TransportEvents): void {
    const h = this.#h;
    h.listen({
      data: events.data,
      end: events.end,
      close: () => {
        events.close();
        this.#closed(h.bytesRead, h.bytesWritten);
      },
    });
  }

  pause(): void { this.#h.pause(); }
  resume(): void { this.#h.resume(); }
  write(data: Buffer | string): boolean { return this.#h.write(data); }

  writev(pieces: readonly (Buffer | string)[]): boolean {
    return this.#h.writev(pieces.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
  }

  onceDrain(cb: () => void): void { this.#h.onceDrain(cb); }
  end(then?: () => void): void { this.#h.end(then); }
  destroy(): void { this.#h.destroy(); }

  toSocket(): Socket {
    const h = this.#h;
    const socket = h.toSocket();
    socket.once('close', () => { this.#closed(h.bytesRead, h.bytesWritten); });
    return socket;
  }
}
