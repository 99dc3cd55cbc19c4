// The connect stage: the one place where remora opens an upstream socket. Every upstream connection — an opaque TCP
// forward, an HTTP pool's connection, a TLS-originated one, an active health probe — is opened here, through a
// cluster (src/upstream/cluster.ts) that supplies the transport (plain TCP or TLS origination), the connect
// timeout and, for inbound delivery, the source address.
//
// `openConnection` returns the socket at once, still connecting: the owner may wire it right away (writes are
// queued by Node until it connects). With a `ConnectHandler`, exactly one of onUpstreamReady (TCP connected and, with
// TLS, the handshake verified) or onUpstreamFailed is called, unless the owner destroys the socket first; without
// one (the opaque fast path), the owner reads the socket's own 'connect'/'error' events. The connect timeout covers
// the TCP connect and the TLS handshake; it is checked by one process-wide sweep (src/core/periodic-sweep.ts, a
// quarter of the timeout, at most 1 s), not by a timer on each socket (which Node keeps, and touches on every read and
// write, for the socket's whole life even once cleared): a connect times out up to 25 % (at most 1 s) after the timeout.
// Outcomes are classified by when they happen: before TCP is up it is a connect failure of the endpoint (reported
// to `observer`, retried on another endpoint by L4 dialing, passive health counts it); after it, a TLS failure
// (REMORA_ERR_UPSTREAM_TLS: a CA or name mismatch fails on every endpoint alike; not retried, not counted).
import { Socket } from 'node:net';
import { RemoraError } from '../../core/errors.js';
import type { LiveEntry } from '../../core/live-set.js';
import { PeriodicSweep, periodFor, type SweepMember } from '../../core/periodic-sweep.js';
import type { HandshakeFailureCode, UpstreamTransport } from './upstream-transport.js';

export interface ConnectTarget {
  readonly address: string;
  readonly port: number;
}

export type ConnectFailureCode = 'REMORA_ERR_UPSTREAM_CONNECT' | 'REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT' | HandshakeFailureCode;

export interface ConnectFailure {
  readonly code: ConnectFailureCode;
  readonly error: Error;
  /** For a handshake failure: OpenSSL's / Node's reason (UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED, ...). */
  readonly tlsCode: string | undefined;
}

/** A failure after TCP was up: the handshake (not retried by L4 dialing for TLS origination; see UpstreamDial). */
export function isHandshakeFailure(code: ConnectFailureCode): code is HandshakeFailureCode {
  return code === 'REMORA_ERR_UPSTREAM_TLS' || code === 'REMORA_ERR_MTLS_HANDSHAKE' || code === 'REMORA_ERR_PEER_IDENTITY';
}

/** The owner of a connection being opened. */
export interface ConnectHandler {
  onUpstreamReady(socket: Socket): void;
  onUpstreamFailed(socket: Socket, failure: ConnectFailure): void;
}

/** Hears whether the TCP connect to an endpoint succeeded (passive health). */
export interface ConnectObserver {
  onConnectResult(endpointKey: string, ok: boolean): void;
}

export interface ConnectOptions {
  /** TCP connect plus TLS handshake; 0 = none. */
  readonly timeoutMs: number;
  /** Source address to bind (inbound delivery: 127.0.0.6 / ::6). */
  readonly localAddress?: string | undefined;
  /** TLS origination or mesh mTLS; undefined = plain TCP. */
  readonly tls?: UpstreamTransport | undefined;
  readonly handler?: ConnectHandler | undefined;
  readonly observer?: ConnectObserver | undefined;
  /** The endpoint's key for the observer. */
  readonly endpointKey?: string | undefined;
}

/** Placeholder 'error' listener: an error is never unhandled; the owner adds the one that acts on it. */
function ignoreHandledByOwner(): void {}

/** The connect timeouts of every upstream socket of the process. */
const CONNECT_SWEEP = new PeriodicSweep();

/** Connect deadlines in the sweep now (tests: a settled connection leaves at once, not at the next visit). */
export function pendingConnectDeadlines(): number {
  return CONNECT_SWEEP.size;
}

/**
 * The opaque fast path's deadline: the socket is destroyed if still connecting at `deadline`. It leaves the sweep as
 * soon as the socket connects (`settled`, a 'connect' listener): left to the sweep's next visit (up to a second), the
 * set would keep the socket, closed by then at connection-per-request rates, alive through the young-generation
 * collections of that second (quick lab: ~10 µs of GC per connection).
 */
class RawConnectDeadline implements SweepMember {
  readonly #socket: Socket;
  readonly #deadline: number;
  readonly #entry: LiveEntry<SweepMember>;

  constructor(socket: Socket, timeoutMs: number) {
    this.#socket = socket;
    this.#deadline = CONNECT_SWEEP.now() + timeoutMs;
    this.#entry = CONNECT_SWEEP.add(this, periodFor(timeoutMs));
  }

  readonly settled = (): void => { CONNECT_SWEEP.delete(this.#entry); };

  sweep(now: number): boolean {
    const s = this.#socket;
    if (!s.connecting || s.destroyed) return false;
    if (now < this.#deadline) return true;
    s.destroy(new RemoraError('REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT', 'connecting to the upstream timed out'));
    return false;
  }
}

/** A TCP socket, half-open allowed, Nagle off, connecting to `target`. */
function tcpSocket(target: ConnectTarget, localAddress: string | undefined): Socket {
  const socket = new Socket({ allowHalfOpen: true });
  // Nagle off. socket.connect() ignores a noDelay option (Node 20); before the handle exists this only records the
  // setting, applied once connected.
  socket.setNoDelay(true);
  socket.on('error', ignoreHandledByOwner);
  if (localAddress === undefined) socket.connect({ host: target.address, port: target.port });
  else socket.connect({ host: target.address, port: target.port, localAddress });
  return socket;
}

/** One connection on its way up: the timeout, the classification and the single callback. */
class Connecting implements SweepMember {
  readonly #tcp: Socket;
  readonly #socket: Socket;
  readonly #o: ConnectOptions;
  #tcpUp = false;
  #settled = false;
  #deadline = Infinity;
  #entry: LiveEntry<SweepMember> | undefined;

  constructor(tcp: Socket, socket: Socket, o: ConnectOptions) {
    this.#tcp = tcp;
    this.#socket = socket;
    this.#o = o;
    tcp.once('connect', this.#onTcp);
    if (socket !== tcp) socket.once('secureConnect', this.#onReady);
    socket.on('error', this.#onError);
    socket.once('close', this.#onClose);
    if (o.timeoutMs > 0) {
      this.#deadline = CONNECT_SWEEP.now() + o.timeoutMs;
      this.#entry = CONNECT_SWEEP.add(this, periodFor(o.timeoutMs));
    }
  }

  /** @internal SweepMember: the connect timeout (TCP and TLS handshake). */
  sweep(now: number): boolean {
    if (this.#settled) return false;
    if (now < this.#deadline) return true;
    this.#onTimeout();
    return false;
  }

  readonly #onTcp = (): void => {
    this.#tcpUp = true;
    const key = this.#o.endpointKey;
    if (key !== undefined) this.#o.observer?.onConnectResult(key, true);
    if (this.#socket === this.#tcp) this.#onReady();
  };

  readonly #onReady = (): void => {
    if (this.#settled) return;
    this.#settled = true;
    this.#detach();
    this.#o.handler?.onUpstreamReady(this.#socket);
  };

  #onTimeout(): void {
    if (this.#settled) return;
    this.#socket.destroy(this.#tcpUp
      ? Object.assign(new Error('the TLS handshake with the upstream timed out'), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' })
      : new RemoraError('REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT', 'connecting to the upstream timed out'));
  }

  readonly #onError = (err: Error): void => {
    if (this.#settled) return;
    this.#settled = true;
    this.#detach();
    let failure: ConnectFailure;
    const transport = this.#o.tls;
    if (this.#tcpUp && transport !== undefined) {
      const c = transport.classify(err);
      failure = { code: c.code, error: err, tlsCode: c.reason };
    } else {
      const key = this.#o.endpointKey;
      if (key !== undefined) this.#o.observer?.onConnectResult(key, false);
      const timedOut = err instanceof RemoraError && err.code === 'REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT';
      failure = { code: timedOut ? 'REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT' : 'REMORA_ERR_UPSTREAM_CONNECT', error: err, tlsCode: undefined };
    }
    this.#socket.destroy();
    this.#o.handler?.onUpstreamFailed(this.#socket, failure);
  };

  /** Closed without an error before it was ready: the owner destroyed it (cancelled). Nothing to report. */
  readonly #onClose = (): void => {
    if (this.#settled) return;
    this.#settled = true;
    this.#detach();
  };

  /**
   * Settled: out of the sweep now, not at its next visit (up to a second later). Until then the sweep's set would keep
   * this object and, through it, the socket alive, also after it closed: at thousands of connections per second,
   * thousands of dead sockets surviving each young-generation collection (copied, then promoted).
   */
  #detach(): void {
    if (this.#entry !== undefined) CONNECT_SWEEP.delete(this.#entry);
    const s = this.#socket;
    s.off('error', this.#onError);
    s.off('close', this.#onClose);
    s.off('secureConnect', this.#onReady);
    this.#tcp.off('connect', this.#onTcp);
    s.on('error', ignoreHandledByOwner);
  }
}

/** Open a connection to `target` (see the file comment). Never throws for a bad address: it fails on the socket. */
export function openConnection(target: ConnectTarget, o: ConnectOptions): Socket {
  const tcp = tcpSocket(target, o.localAddress);
  if (o.tls === undefined && o.handler === undefined && o.observer === undefined) {
    // The opaque fast path: the owner handles 'connect' and 'error'; the deadline only listens for 'connect' to leave
    // the sweep (a failed or cancelled connect leaves it at the sweep's next visit).
    if (o.timeoutMs > 0) {
      const deadline = new RawConnectDeadline(tcp, o.timeoutMs);
      tcp.once('connect', deadline.settled);
    }
    return tcp;
  }
  const socket = o.tls === undefined ? tcp : o.tls.wrap(tcp, target.address);
  new Connecting(tcp, socket, o); // eslint-disable-line no-new -- it lives on the socket's listeners
  return socket;
}

/**
 * An active health probe: a TCP connection to the endpoint, closed at once (a FIN, no data). Healthy = the handshake
 * completed. `signal` aborts it (the checker's timeout or shutdown).
 */
export function probeConnection(target: ConnectTarget, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(false);
      return;
    }
    let settled = false;
    const settle = (healthy: boolean): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(healthy);
    };
    const onAbort = (): void => { settle(false); };
    signal.addEventListener('abort', onAbort, { once: true });
    const socket = tcpSocket(target, undefined);
    socket.once('connect', () => { settle(true); });
    socket.on('error', () => { settle(false); });
  });
}
