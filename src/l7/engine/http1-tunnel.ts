// Upgrade (WebSocket) and CONNECT on an HTTP/1.1 downstream connection.
//
// Node's server hands such a request over with the raw socket ('upgrade' / 'connect') and stops parsing it. The
// request is forwarded like any other (route, pick, pool) with the client's bytes after the head held back; then:
// - 101 to an Upgrade, 2xx to CONNECT: the response head is written to the client and the two sockets are spliced
//   into a byte tunnel (spliceTunnel) with half-close carried each way;
// - any other answer (or a local reply): it is written to the client with `Connection: close` and the connection
//   closes after it (the downstream parser was detached, so this connection cannot carry another request).
// A request whose only Upgrade token is h2c is not upgraded (h2c smuggling): it is forwarded without the Upgrade
// and HTTP2-Settings fields and answered through this same raw path.
import { resetSocket } from '../../core/reset-socket.js';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { rawHttp1LocalReply } from '../local-reply.js';
import type { DownstreamResponder, LocalReply } from '../request-types.js';
import { responseHead } from '../pool/http1-serialize.js';

function noop(): void {}

export interface TunnelOptions {
  /** No byte in either direction for this long: close both sides. */
  readonly idleTimeoutMs: number;
  /** After the first FIN, the other direction has this long to finish. */
  readonly halfCloseTimeoutMs: number;
}

/**
 * Splice two sockets into a bidirectional byte tunnel: backpressure through pipe(), a FIN from one side becomes a
 * FIN (end()) to the other, an error or reset on either side destroys both. Both sockets must allow half-open.
 * `onClose` runs once when both are closed.
 */
export function spliceTunnel(down: Socket, up: Socket, options: TunnelOptions, onClose: () => void): void {
  let halfCloseTimer: NodeJS.Timeout | undefined;
  let closed = 0;
  const clearHalfClose = (): void => {
    if (halfCloseTimer !== undefined) clearTimeout(halfCloseTimer);
    halfCloseTimer = undefined;
  };
  const destroyBoth = (): void => {
    clearHalfClose();
    down.destroy();
    up.destroy();
  };
  const onEnd = (): void => {
    if (halfCloseTimer === undefined && options.halfCloseTimeoutMs > 0) {
      halfCloseTimer = setTimeout(destroyBoth, options.halfCloseTimeoutMs);
      halfCloseTimer.unref();
    }
  };
  const wire = (s: Socket, other: Socket): void => {
    s.on('error', () => {
      // A reset (or any failure) on one side is passed on as a reset on the other.
      clearHalfClose();
      resetSocket(other);
    });
    s.on('end', onEnd);
    s.once('close', () => {
      // Clean close after both FINs: the other side finishes flushing and closes by itself. Anything else (a side
      // destroyed before its peer's FIN reached it) leaves nothing to carry the other side's bytes.
      if (!other.destroyed && !(other.readableEnded && other.writableEnded)) other.destroy();
      if (++closed === 2) {
        clearHalfClose();
        onClose();
      }
    });
  };
  wire(down, up);
  wire(up, down);
  if (options.idleTimeoutMs > 0) {
    down.setTimeout(options.idleTimeoutMs, destroyBoth);
  }
  down.pipe(up);
  up.pipe(down);
  down.resume();
  up.resume();
}

/**
 * Answers an Upgrade / CONNECT request on the raw socket. Everything but a tunnel ends with the connection closing.
 */
export class RawResponder implements DownstreamResponder {
  readonly #socket: Socket;
  /** Bytes the client sent after the request head (held until the tunnel is up). */
  readonly #held: Buffer;
  readonly #tunnelOptions: TunnelOptions;
  readonly #onTunnelClosed: () => void;
  #started = false;
  #bodyless = false;

  constructor(socket: Socket, held: Buffer, tunnelOptions: TunnelOptions, onTunnelClosed: () => void) {
    this.#socket = socket;
    this.#held = held;
    this.#tunnelOptions = tunnelOptions;
    this.#onTunnelClosed = onTunnelClosed;
  }

  /** The request had no body (HEAD semantics for the raw answer are set by the caller). */
  setBodyless(bodyless: boolean): void {
    this.#bodyless = bodyless;
  }

  get headersSent(): boolean {
    return this.#started;
  }

  informational(statusCode: number, headers: readonly string[]): void {
    if (this.#started || this.#socket.destroyed) return;
    this.#socket.write(responseHead(statusCode, STATUS_CODES[statusCode] ?? '', headers), 'latin1');
  }

  start(statusCode: number, statusText: string, headers: string[], _close: boolean, _bodyless: boolean): boolean {
    if (this.#socket.destroyed) return true;
    this.#started = true;
    // No Transfer-Encoding here: the body (if any) is delimited by the close that follows.
    this.#socket.write(responseHead(statusCode, statusText, [...headers, 'Connection', 'close']), 'latin1');
    return true;
  }

  write(chunk: Buffer): boolean {
    if (this.#bodyless || this.#socket.destroyed) return true;
    return this.#socket.write(chunk);
  }

  /** The head went out at start(): nothing is held back. */
  flush(): void {}

  onDrain(cb: () => void): void {
    this.#socket.once('drain', cb);
  }

  end(_trailers: readonly string[]): void {
    this.#closeAfterWrite();
  }

  localReply(reply: LocalReply, _grpc: boolean): void {
    if (this.#socket.destroyed) return;
    this.#started = true;
    this.#socket.write(rawHttp1LocalReply(reply), 'latin1');
    this.#closeAfterWrite();
  }

  reset(_h2Code: number): void {
    this.#socket.destroy();
  }

  tunnel(statusCode: number, statusText: string, headers: string[], upstream: Socket, rest: Buffer): void {
    const down = this.#socket;
    this.#started = true;
    if (down.destroyed) {
      upstream.destroy();
      return;
    }
    down.write(responseHead(statusCode, statusText, headers), 'latin1');
    if (rest.length > 0) down.write(rest);
    if (this.#held.length > 0) upstream.write(this.#held);
    spliceTunnel(down, upstream, this.#tunnelOptions, this.#onTunnelClosed);
  }

  #closeAfterWrite(): void {
    const s = this.#socket;
    if (s.destroyed) return;
    s.on('error', noop);
    s.end(() => s.destroy());
    // A client that never reads would keep the socket: the engine's idle timeout on it still applies.
  }
}
