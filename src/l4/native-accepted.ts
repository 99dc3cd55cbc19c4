// A connection accepted by the forwarding thread (native accept: native/src/tcp_forwarder.cc, through
// src/l4/native-forwarder.ts), before and while it is forwarded there. JavaScript holds no socket for it: it routes
// it from its addresses and then either
//   * connects it in the thread (connect(): the thread connects, then forwards), after which one owner
//     (src/l4/native-connection.ts) hears its events: connected, connect failed (connect() again to another endpoint,
//     or abort()), the first bytes each way while detection watches, and its end (a NativeTcpForward);
//   * or takes it into Node (toSocket(): a net.Socket on its fd), for every stage that needs more than bytes
//     (detection that can change the route, the HTTP engine, mesh mTLS, TLS origination, probes, refusals).
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { systemError } from '../core/errors.js';
import type { ListenerCounters } from '../core/stats.js';
import { NativeTcpForward, type NativeForwardPort } from './native-tcp-forward.js';

/** What the thread says about an accepted connection while detection watches it (the event kinds it reports). */
export const NativeDetectEvent = { clientData: 4, clientFin: 5, serverData: 6, serverFin: 7, timeout: 8 } as const;
export type NativeDetectEvent = (typeof NativeDetectEvent)[keyof typeof NativeDetectEvent];

/** The owner of a connected (or connecting) accepted connection. */
export interface NativeAcceptedOwner {
  connected(): void;
  /** errno of the failed connect (ETIMEDOUT: the connect timeout); the connection waits for connect() or abort(). */
  connectFailed(errno: number): void;
  /** Detection: the client's bytes (several times, until watchDone()), its FIN, the upstream's first bytes or FIN, or the deadline. */
  detect(event: NativeDetectEvent, bytes: Buffer | undefined): void;
  /** The connection is over (the forward's final counters and how it ended). */
  ended(forward: NativeTcpForward): void;
  /** One of the calls above threw (a bug): the owner fails the connection with it. */
  broken(err: Error): void;
}

export interface NativeConnectRequest {
  readonly address: string;
  readonly port: number;
  readonly localAddress: string | undefined;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Report the first bytes each way until this deadline (from accept) or watchDone(); 0 = no detection. */
  readonly detectTimeoutMs: number;
  /** Tell connected() (a member endpoint's health). */
  readonly notifyConnected: boolean;
}

/** What a NativeAccepted asks of the forwarder. */
export interface NativeAcceptPort extends NativeForwardPort {
  connect(id: number, r: NativeConnectRequest): number;
  /** The fd, or -errno; the connection leaves the forwarder's tables. */
  release(id: number): number;
  watchDone(id: number): void;
}

export class NativeAccepted {
  readonly #id: number;
  readonly #port: NativeAcceptPort;
  #owner: NativeAcceptedOwner | undefined;
  #forward: NativeTcpForward | undefined;
  #released = false;

  constructor(id: number, port: NativeAcceptPort) {
    this.#id = id;
    this.#port = port;
  }

  get id(): number { return this.#id; }

  /** The forward's view (bytes, end, side states) once an owner took the connection. */
  get forward(): NativeTcpForward | undefined { return this.#forward; }

  /** Take the connection into Node: a net.Socket on its fd. Throws a SystemError when the thread no longer has it. */
  toSocket(): Socket {
    if (this.#released || this.#owner !== undefined) throw systemError(-osConstants.errno.EBADF, 'forwarderRelease');
    const fd = this.#port.release(this.#id);
    if (fd < 0) throw systemError(fd, 'forwarderRelease');
    this.#released = true;
    return new Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
  }

  /** Become the connection's owner (once): its events and its end go to `owner`, its bytes to `counters`. */
  own(owner: NativeAcceptedOwner, counters: ListenerCounters): NativeTcpForward {
    if (this.#forward !== undefined) return this.#forward;
    this.#owner = owner;
    const forward = new NativeTcpForward(this.#id, this.#port, { counters, onEnd: (f) => { owner.ended(f); } });
    this.#forward = forward;
    return forward;
  }

  /** Connect (again); 0, or -errno when the request is refused at once (a bad address: nothing was started). */
  connect(r: NativeConnectRequest): number {
    return this.#port.connect(this.#id, r);
  }

  /** Reset the client (and the upstream, if any); the end is reported as usual. */
  abort(): void {
    this.#port.abort(this.#id);
  }

  watchDone(): void {
    this.#port.watchDone(this.#id);
  }

  /** @internal The forwarder: an event of this connection. */
  event(kind: number, a: number, extra: Buffer | undefined): void {
    const owner = this.#owner;
    if (owner === undefined) return;
    try {
      if (kind === 2) owner.connected();
      else if (kind === 3) owner.connectFailed(a);
      else if (kind >= NativeDetectEvent.clientData && kind <= NativeDetectEvent.timeout) owner.detect(kind as NativeDetectEvent, extra);
    } catch (err) {
      owner.broken(err as Error);
    }
  }

  /** @internal The forwarder's sweep. */
  count(dIn: number, dOut: number): void {
    this.#forward?.count(dIn, dOut);
  }

  /** @internal The thread reported the end. */
  end(bytesIn: number, bytesOut: number, kind: number, errno: number): void {
    this.#forward?.end(bytesIn, bytesOut, kind, errno);
  }
}
