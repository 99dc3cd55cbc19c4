// Accept stage of a listener (after the capture listener recovered the original destination): every connection
// takes the listener runtime in force at that moment, gets its ConnectionContext, and runs through that runtime's
// connection chain (filters, then the terminal stage: src/l4/connection-pipeline.ts). A reload that swaps the
// runtime affects only connections accepted after it. Per-connection errors never propagate: a throw while setting
// up resets that connection only.
import { resetSocket } from '../core/reset-socket.js';
import type { Socket } from 'node:net';
import { formatHostPort, unmapIpv4 } from '../core/addr.js';
import { isSystemError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { ListenerCounters, Stats } from '../core/stats.js';
import type { CaptureHandlers, CaptureRejectCode } from '../interceptor/capture-listener.js';
import type { AcceptedAddresses } from '../interceptor/original-dst.js';
import type { Direction } from './accept-route.js';
import { type ConnectionContext, type ConnectionOutcome, type ListenerRuntime } from './connection-context.js';
import { connectionFields } from './filters/connection-stats.js';
import type { NativeAccepted } from './native-accepted.js';
import type { TcpHandle } from '../core/tcp-handle.js';

export interface ConnectionHandlerOptions {
  readonly direction: Direction;
  readonly counters: ListenerCounters;
  readonly stats: Stats;
  /** The runtime of this listener now (the current runtime's). */
  readonly runtime: () => ListenerRuntime;
  readonly log: Logger;
  /** Next connection id (shared by all listeners so ids are unique per process). */
  readonly nextId: () => number;
}

function noop(_outcome: ConnectionOutcome): void {}

export class ConnectionHandler implements CaptureHandlers {
  readonly #o: ConnectionHandlerOptions;

  constructor(opts: ConnectionHandlerOptions) {
    this.#o = opts;
  }

  // === hot path ===
  accepted(downstream: Socket, addresses: AcceptedAddresses): void {
    // The addon read the client with the original destination (one call); node:net's getpeername only without it.
    let peerAddress = addresses.peerAddress;
    let peerPort = addresses.peerPort;
    if (peerAddress === undefined) {
      const peer = downstream.remoteAddress;
      peerAddress = peer === undefined ? undefined : unmapIpv4(peer);
      peerPort = downstream.remotePort;
    }
    this.#run(downstream, undefined, undefined, addresses.originalDst, peerAddress, peerPort);
  }

  /** A connection accepted as a TCP handle (no socket yet), already checked by the capture stage. */
  acceptedHandle(handle: TcpHandle, addresses: AcceptedAddresses): void {
    this.#run(undefined, undefined, handle, addresses.originalDst, addresses.peerAddress, addresses.peerPort);
  }

  /** A connection the forwarding thread accepted (native accept), already checked by the capture stage. */
  acceptedNative(conn: NativeAccepted, addresses: AcceptedAddresses): void {
    this.#run(undefined, conn, undefined, addresses.originalDst, addresses.peerAddress, addresses.peerPort);
  }

  #run(socket: Socket | undefined, native: NativeAccepted | undefined, handle: TcpHandle | undefined,
    originalDst: AcceptedAddresses['originalDst'], peerAddress: string | undefined, peerPort: number | undefined): void {
    const o = this.#o;
    const conn: ConnectionContext = {
      id: o.nextId(),
      direction: o.direction,
      socket,
      native,
      handle,
      originalDst,
      peerAddress,
      peerPort,
      startedAt: Date.now(),
      runtime: o.runtime(),
      peerIdentity: undefined,
      peerCertificateHash: undefined,
      watch: undefined,
    };
    try {
      conn.runtime.chain(conn, noop);
    } catch (err) {
      // A bug or an unexpected synchronous throw from node:net: this connection fails, the proxy does not.
      o.stats.countError('REMORA_ERR_INTERNAL', isSystemError(err) ? err.code : undefined);
      o.log.error({ ...connectionFields(conn), err }, 'cannot set up forwarding; connection reset');
      if (socket !== undefined) resetSocket(socket);
      else if (native !== undefined) native.abort();
      else handle?.reset();
    }
  }

  rejected(socket: Socket, code: CaptureRejectCode, reason: string, err?: Error): void {
    const o = this.#o;
    o.counters.accepted++;
    o.counters.closed++;
    o.stats.countError(code, isSystemError(err) ? err.code : undefined);
    o.log.warn({
      listener: o.direction,
      peer: socket.remoteAddress === undefined ? undefined : formatHostPort(unmapIpv4(socket.remoteAddress), socket.remotePort ?? 0),
      local: socket.localAddress === undefined ? undefined : formatHostPort(unmapIpv4(socket.localAddress), socket.localPort ?? 0),
      code,
      err,
    }, `${reason}; connection reset`);
  }

  listenerError(err: Error): void {
    const code = (err as { code?: unknown }).code;
    this.#o.stats.countError(typeof code === 'string' ? code : 'REMORA_ERR_INTERNAL');
    this.#o.log.warn({ listener: this.#o.direction, err }, 'listener error');
  }
}
