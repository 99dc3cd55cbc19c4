// Accept stage: a capture listener (outbound 15001 / inbound 15006) that takes connections redirected by the
// iptables rules of `remora init`, recovers each one's original destination synchronously in the 'connection'
// handler and hands it on. Connections that cannot be forwarded are reset here, with a reason:
//   - no NAT entry (ENOENT: not redirected, e.g. a direct connection to the capture port) -> REMORA_ERR_NOT_REDIRECTED
//   - original destination = one of remora's own listeners at a local address (loop guard) -> REMORA_ERR_NOT_REDIRECTED
//   - getsockopt failed otherwise                                                          -> REMORA_ERR_ORIGINAL_DST
// "::" listens dual-stack (IPv4 clients arrive as ::ffff:a.b.c.d); without IPv6 in the kernel it falls back to 0.0.0.0.
// With the native accept (handAcceptTo), the forwarding thread accepts on the bound socket instead of Node: the
// thread's connections come back here (adopt) only when they need a socket and a check of this stage. With
// acceptHandles() (a listener with an HTTP engine), Node accepts but makes no net.Socket: each connection is handed on
// as its TCP handle (src/core/tcp-handle.ts) after the same checks, and becomes a socket only where a later stage
// needs one.
import cluster from 'node:cluster';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { networkInterfaces, constants as osConstants } from 'node:os';
import { canonicalIp, unmapIpv4 } from '../core/addr.js';
import { isSystemError, RemoraError, systemError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { TcpHandle } from '../core/tcp-handle.js';
import type { AcceptedAddresses, OriginalDstReader } from './original-dst.js';
import { socketFd } from './socket-fd.js';

export type CaptureRejectCode = 'REMORA_ERR_NOT_REDIRECTED' | 'REMORA_ERR_ORIGINAL_DST';

export interface CaptureHandlers {
  /**
   * A redirected connection, called synchronously inside the 'connection' event. The socket already has a safety
   * 'error' listener (it destroys the socket); the handler adds its own before returning.
   */
  accepted(socket: Socket, addresses: AcceptedAddresses): void;
  /**
   * A redirected connection accepted as a TCP handle (acceptHandles()), checked as accepted() ones are. The handler
   * owns it: it serves it or makes it a socket (handle.toSocket()).
   */
  acceptedHandle?(handle: TcpHandle, addresses: AcceptedAddresses): void;
  /** A connection that cannot be forwarded; it is reset right after this returns. */
  rejected(socket: Socket, code: CaptureRejectCode, reason: string, err?: Error): void;
  /** The listening socket reported an error after it was bound (e.g. accept() failing with EMFILE). */
  listenerError(err: Error): void;
}

export interface CaptureListenerOptions {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly readOriginalDst: OriginalDstReader;
  /**
   * Ports of remora's own capture listeners (this one's is always included): an original destination on one of them
   * at a local address is a loop.
   */
  readonly selfPorts: readonly number[];
  readonly handlers: CaptureHandlers;
  readonly log: Logger;
}

export interface BoundAddress {
  readonly address: string;
  readonly port: number;
  readonly family: string;
  /** True when "::" was asked for but the kernel has no IPv6 and 0.0.0.0 was bound instead. */
  readonly ipv4Fallback: boolean;
}

/** Errors of listen("::") that mean "this kernel has no IPv6". */
const NO_IPV6_CODES: ReadonlySet<string> = new Set(['EAFNOSUPPORT', 'EPROTONOSUPPORT', 'EADDRNOTAVAIL']);
const EBADF = -osConstants.errno.EBADF;

/** A socket or a TCP handle, for its local address (read only when the loop guard needs it). */
interface LocalEnd {
  readonly localAddress?: string | undefined;
}

/** The outcome of the capture checks. */
type Checked =
  | { readonly rejected: undefined; readonly addresses: AcceptedAddresses }
  | { readonly rejected: CaptureRejectCode; readonly reason: string; readonly err?: Error };

/** The first 'error' listener of every accepted socket: never let an error go unhandled, never keep the socket. */
function destroyOnError(this: Socket): void {
  this.destroy();
}

function localAddressSet(): Set<string> {
  const out = new Set<string>(['0.0.0.0', '::', '::1']);
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.add(canonicalIp(a.address) ?? a.address);
  }
  return out;
}

/**
 * Node stops accepting on a listener another accept loop took over: its handle is closed. In a cluster worker, not
 * through server.close(): that tells the primary, which closes the shared socket once no worker holds it, and a
 * worker started later (or restarted) would then get a new socket that cannot bind the port the other workers'
 * threads keep. The handle's own close (the one the cluster wraps) closes this process's copy only.
 */
function stopNodeAccepting(server: Server): void {
  const handle = (server as unknown as { readonly _handle?: object | null })._handle;
  const ownClose: unknown = handle === null || handle === undefined ? undefined : (Object.getPrototypeOf(handle) as { close?: unknown } | null)?.close;
  if (cluster.isWorker && typeof ownClose === 'function') {
    (ownClose as (this: object) => void).call(handle as object);
    return;
  }
  server.close();
}

export class CaptureListener {
  readonly name: string;
  readonly #opts: CaptureListenerOptions;
  readonly #selfPorts: Set<number>;
  #server: Server | undefined;
  #bound: BoundAddress | undefined;
  #localAddresses: Set<string> = new Set();
  /** Stops the accept loop that took the socket over (handAcceptTo). */
  #stopExternal: (() => void) | undefined;

  constructor(opts: CaptureListenerOptions) {
    this.name = opts.name;
    this.#opts = opts;
    this.#selfPorts = new Set(opts.selfPorts);
  }

  get bound(): BoundAddress | undefined {
    return this.#bound;
  }

  /** Bind and start accepting. REMORA_ERR_LISTEN when the port cannot be bound. */
  async listen(): Promise<BoundAddress> {
    const { host, log } = this.#opts;
    this.#localAddresses = localAddressSet();
    let ipv4Fallback = false;
    try {
      this.#server = await this.#listenOn(host);
    } catch (err) {
      if (host === '::' && isSystemError(err) && NO_IPV6_CODES.has(err.code)) {
        log.warn({ listener: this.name, err }, 'no IPv6 in this kernel: listening on 0.0.0.0 (IPv4 only)');
        ipv4Fallback = true;
        try {
          this.#server = await this.#listenOn('0.0.0.0');
        } catch (err2) {
          throw this.#listenError('0.0.0.0', err2);
        }
      } else {
        throw this.#listenError(host, err);
      }
    }
    const a = this.#server.address() as AddressInfo;
    this.#bound = { address: a.address, port: a.port, family: a.family, ipv4Fallback };
    this.#selfPorts.add(a.port);
    return this.#bound;
  }

  /** Stop accepting (the port is closed at once); connections already accepted are not touched. */
  close(): void {
    const stop = this.#stopExternal;
    this.#stopExternal = undefined;
    if (stop !== undefined) {
      stop();
      return;
    }
    this.#server?.close();
  }

  /**
   * Let another accept loop take the bound socket (the native accept): `take(fd)` starts it on its own duplicate of
   * the socket and returns how to stop it; Node then stops accepting (its handle is closed: the duplicate keeps the
   * port bound). False, with nothing changed, when the socket is not there or `take` throws.
   */
  handAcceptTo(take: (fd: number) => () => void): boolean {
    const server = this.#server;
    const fd = server === undefined ? undefined : socketFd(server);
    if (server === undefined || fd === undefined || this.#stopExternal !== undefined) return false;
    let stop: () => void;
    try {
      stop = take(fd);
    } catch (err) {
      this.#opts.log.warn({ listener: this.name, err }, 'the native accept cannot take the listener; Node accepts');
      return false;
    }
    this.#stopExternal = stop;
    stopNodeAccepting(server);
    return true;
  }

  /**
   * Take connections as TCP handles (handlers.acceptedHandle) instead of net.Sockets from now on. False, with nothing
   * changed, when the handler has no acceptedHandle, the listener is not Node's (handAcceptTo), or this Node release
   * lacks what TcpHandle uses.
   */
  acceptHandles(): boolean {
    const server = this.#server;
    if (server === undefined || this.#stopExternal !== undefined || this.#opts.handlers.acceptedHandle === undefined) return false;
    return TcpHandle.interceptAccepts(server, this.#onHandle);
  }

  /** Could this original destination port be remora's own (the loop guard of adopt() then applies)? */
  isSelfPort(port: number): boolean {
    return this.#selfPorts.has(port);
  }

  /** A connection accepted elsewhere (the native accept), now a socket: the checks and hand-on of a Node accept. */
  adopt(socket: Socket): void {
    this.#onConnection(socket);
  }

  #listenError(host: string, err: unknown): RemoraError {
    const code = isSystemError(err) ? err.code : 'unknown';
    return new RemoraError('REMORA_ERR_LISTEN', `the ${this.name} listener cannot bind ${host}:${this.#opts.port} (${code})`,
      { cause: err, details: { listener: this.name, host, port: this.#opts.port } });
  }

  #listenOn(host: string): Promise<Server> {
    return new Promise((resolve, reject) => {
      const server = createServer({ allowHalfOpen: true, noDelay: true }, this.#onConnection);
      const onError = (err: Error): void => {
        server.close();
        reject(err);
      };
      server.once('error', onError);
      server.listen({ host, port: this.#opts.port, ipv6Only: false, backlog: 1024 }, () => {
        server.off('error', onError);
        server.on('error', (err: Error) => this.#opts.handlers.listenerError(err));
        resolve(server);
      });
    });
  }

  // === hot path: one call per accepted connection ===
  readonly #onConnection = (socket: Socket): void => {
    socket.on('error', destroyOnError);
    const checked = this.#check(socketFd(socket), socket);
    if (checked.rejected !== undefined) {
      this.#reject(socket, checked.rejected, checked.reason, checked.err);
      return;
    }
    try {
      this.#opts.handlers.accepted(socket, checked.addresses);
    } catch (err) {
      // Last line of defence: a bad connection must never take the listener (or the process) down.
      this.#opts.handlers.listenerError(err as Error);
      if (!socket.destroyed) socket.destroy();
    }
  };

  /**
   * The same for a connection accepted as a TCP handle; a rejected one becomes a socket to be reset. Called from
   * libuv's accept callback with no 'connection' event around it: anything thrown is caught here (the connection is
   * reset, the listener keeps accepting).
   */
  readonly #onHandle = (handle: TcpHandle): void => {
    try {
      const checked = this.#check(handle.fd, handle);
      if (checked.rejected !== undefined) {
        this.#rejectHandle(handle, checked.rejected, checked.reason, checked.err);
        return;
      }
      this.#opts.handlers.acceptedHandle?.(handle, checked.addresses);
    } catch (err) {
      // Last line of defence: a bad connection must never take the listener (or the process) down.
      this.#opts.handlers.listenerError(err as Error);
      handle.reset();
    }
  };

  /** The capture checks of one accepted connection: its addresses, or why it is refused. */
  #check(fd: number | undefined, conn: LocalEnd): Checked {
    let addresses: AcceptedAddresses | null;
    try {
      if (fd === undefined) throw systemError(EBADF, 'getsockopt');
      addresses = this.#opts.readOriginalDst(fd);
    } catch (err) {
      return { rejected: 'REMORA_ERR_ORIGINAL_DST', reason: 'the original destination cannot be read', err: err as Error };
    }
    if (addresses === null) {
      return { rejected: 'REMORA_ERR_NOT_REDIRECTED', reason: 'no NAT entry: the connection was not redirected to this listener' };
    }
    const origDst = addresses.originalDst;
    if (this.#selfPorts.has(origDst.port) && this.#isLocal(origDst.address, conn)) {
      return { rejected: 'REMORA_ERR_NOT_REDIRECTED', reason: 'the original destination is remora itself (loop guard)' };
    }
    return { rejected: undefined, addresses };
  }

  #rejectHandle(handle: TcpHandle, code: CaptureRejectCode, reason: string, err?: Error): void {
    let socket: Socket;
    try {
      socket = handle.toSocket();
    } catch {
      handle.reset();
      return;
    }
    socket.on('error', destroyOnError);
    this.#reject(socket, code, reason, err);
  }

  #isLocal(address: string, conn: LocalEnd): boolean {
    const a = canonicalIp(address) ?? address;
    if (a.startsWith('127.') || this.#localAddresses.has(a)) return true;
    const local = conn.localAddress;
    return local !== undefined && (canonicalIp(unmapIpv4(local)) ?? local) === a;
  }

  #reject(socket: Socket, code: CaptureRejectCode, reason: string, err?: Error): void {
    try {
      this.#opts.handlers.rejected(socket, code, reason, err);
    } finally {
      if (!socket.destroyed) socket.resetAndDestroy();
    }
  }
}
