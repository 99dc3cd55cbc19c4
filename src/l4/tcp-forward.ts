// Forward stage: copies bytes both ways between the downstream (the side that connected to us) and the upstream
// (the side we connected to), for opaque TCP. The policy, also in docs/proxy.md:
//
//   data       read from one side -> written to the other; when write() says the other side's buffer is full, the
//              reading side is paused until the other side emits 'drain' (backpressure; no buffering of our own).
//   FIN        'end' from one side -> end() on the other: its write side is shut down once everything queued is
//              written (FIN). The reverse direction keeps flowing until it ends too (half-close, both ways).
//              Both sockets are allowHalfOpen; each closes when it has both received and sent a FIN.
//   error/RST  an error on one side (ECONNRESET, EPIPE, ETIMEDOUT, a failed or timed-out connect) resets the other
//              side (resetAndDestroy: RST, so the peer sees an abort rather than a clean end of stream).
//   idle       no byte either way for idleTimeoutMs (0 = never) -> both sides are closed (FIN); not an error. Checked
//              by one process-wide sweep (src/core/periodic-sweep.ts, a quarter of the timeout, at most 1 s) that
//              compares the byte counts, not by a timer per socket re-armed on every chunk: it fires between
//              idleTimeoutMs and 1.25 x idleTimeoutMs (at most +1 s) after the last byte.
//   abort()    the owner (drain deadline) resets both sides.
// The forward is over when both sockets have emitted 'close'; then onEnd runs once. Listeners are created once per
// connection; nothing is allocated per chunk except what Node itself allocates.
// With `tcp_forwarder = native` (the default), a staged connection's plain TCP forward runs in the native addon's
// forwarding thread instead, with the same policy and the same surface (OpaqueForward): src/l4/native-tcp-forward.ts.
import type { Socket } from 'node:net';
import { RemoraError, type RemoraErrorCode } from '../core/errors.js';
import type { LiveEntry } from '../core/live-set.js';
import { PeriodicSweep, periodFor, type SweepMember } from '../core/periodic-sweep.js';
import { resetSocket } from '../core/reset-socket.js';
import type { ListenerCounters } from '../core/stats.js';
import { sideState, type SideState } from './live-connection.js';

/** What the owner of a forward (Node's TcpForward or the native NativeTcpForward) reads and does. */
export interface OpaqueForward {
  readonly bytesDownstreamToUpstream: number;
  readonly bytesUpstreamToDownstream: number;
  /** Whether the upstream connection was ever established. */
  readonly upstreamConnected: boolean;
  readonly idleTimedOut: boolean;
  /** Why the forward ended abnormally, or undefined for a clean end (both sides FIN'd, or idle timeout). */
  readonly errorCode: RemoraErrorCode | undefined;
  /** The underlying error (a SystemError such as ECONNRESET/ECONNREFUSED, or a RemoraError). */
  readonly error: Error | undefined;
  readonly ended: boolean;
  /** Each side's half-close state, for /debug/connections. */
  readonly downstreamState: SideState;
  readonly upstreamState: SideState;
  /** Reset both sides now (drain deadline); recorded under `code` unless an error was already recorded. */
  abort(code: RemoraErrorCode): void;
}

export interface TcpForwardOptions {
  /** Close after this long without a byte in either direction; 0 = never. */
  readonly idleTimeoutMs: number;
  /** Live byte counters of the listener the connection came from. */
  readonly counters: ListenerCounters;
  /** Called once, after both sockets have closed. */
  readonly onEnd: (forward: TcpForward) => void;
  /**
   * Bytes already read from the downstream (by protocol detection), written to the upstream before anything else.
   * Counted like forwarded bytes.
   */
  readonly head?: Buffer | undefined;
  /** The downstream's FIN was already read (detection ended on it): the upstream is ended after `head`. */
  readonly downstreamEnded?: boolean;
  /** The upstream is already connected (the dialer waited for it); its errors are then resets, not connect failures. */
  readonly upstreamConnected?: boolean;
  /** The sweep that checks idleness (default: the process-wide one). */
  readonly idleSweep?: PeriodicSweep | undefined;
}

/** The idle timeouts of every forward of the process. */
const IDLE_SWEEP = new PeriodicSweep();

export class TcpForward implements SweepMember, OpaqueForward {
  readonly #down: Socket;
  readonly #up: Socket;
  readonly #counters: ListenerCounters;
  readonly #onEnd: (forward: TcpForward) => void;
  readonly #idleTimeoutMs: number;
  #bytesDownToUp = 0;
  #bytesUpToDown = 0;
  #upConnected = false;
  #downClosed = false;
  #upClosed = false;
  #ended = false;
  #idleTimedOut = false;
  /** Idle sweep: the bytes both ways at the last visit, and when they last changed. */
  #sweptBytes = 0;
  #activeAt = 0;
  readonly #sweep: PeriodicSweep | undefined;
  readonly #sweepEntry: LiveEntry<SweepMember> | undefined;
  #errorCode: RemoraErrorCode | undefined;
  #error: Error | undefined;

  /** Wires both sockets at once; the upstream may still be connecting (writes are queued until it connects). */
  constructor(downstream: Socket, upstream: Socket, opts: TcpForwardOptions) {
    this.#down = downstream;
    this.#up = upstream;
    this.#counters = opts.counters;
    this.#onEnd = opts.onEnd;
    this.#idleTimeoutMs = opts.idleTimeoutMs;

    downstream.on('error', this.#onDownError);
    upstream.on('error', this.#onUpError);
    downstream.on('close', this.#onDownClose);
    upstream.on('close', this.#onUpClose);
    if (opts.upstreamConnected === true) this.#upConnected = true;
    else upstream.once('connect', this.#onUpConnect);

    downstream.on('data', this.#onDownData);
    upstream.on('data', this.#onUpData);
    downstream.on('end', this.#onDownEnd);
    upstream.on('end', this.#onUpEnd);
    downstream.on('drain', this.#onDownDrain);
    upstream.on('drain', this.#onUpDrain);

    if (opts.idleTimeoutMs > 0) {
      const sweep = opts.idleSweep ?? IDLE_SWEEP;
      this.#sweep = sweep;
      this.#activeAt = sweep.now();
      this.#sweepEntry = sweep.add(this, periodFor(opts.idleTimeoutMs));
    }
    if (opts.head !== undefined || opts.downstreamEnded === true) this.#takeOver(opts.head, opts.downstreamEnded === true);
  }

  /**
   * After detection: both sockets may have been paused (explicitly, so 'data' listeners alone do not restart them),
   * and either may already have emitted 'end'. The head goes first; the downstream resumes unless the upstream's
   * buffer is already full ('drain' resumes it).
   */
  #takeOver(head: Buffer | undefined, downEndedSeen: boolean): void {
    // A paused socket still emits 'end' when nothing is buffered: it may have ended while nobody listened.
    const downEnded = downEndedSeen || this.#down.readableEnded;
    if (this.#up.readableEnded) this.#down.end();
    let room = true;
    if (head !== undefined && head.length > 0) {
      this.#bytesDownToUp += head.length;
      this.#counters.downstreamToUpstream += head.length;
      room = this.#up.write(head);
    }
    if (downEnded) this.#up.end();
    else if (room) this.#down.resume();
    this.#up.resume();
  }

  /** The two sockets, for /debug/connections (read only there). */
  get downstreamSocket(): Socket { return this.#down; }
  get upstreamSocket(): Socket { return this.#up; }
  get downstreamState(): SideState { return sideState(this.#down); }
  get upstreamState(): SideState { return sideState(this.#up); }

  get bytesDownstreamToUpstream(): number { return this.#bytesDownToUp; }
  get bytesUpstreamToDownstream(): number { return this.#bytesUpToDown; }
  /** Whether the upstream connection was ever established. */
  get upstreamConnected(): boolean { return this.#upConnected; }
  get idleTimedOut(): boolean { return this.#idleTimedOut; }
  /** Why the forward ended abnormally, or undefined for a clean end (both sides FIN'd, or idle timeout). */
  get errorCode(): RemoraErrorCode | undefined { return this.#errorCode; }
  /** The underlying error (a SystemError such as ECONNRESET/ECONNREFUSED, or a RemoraError). */
  get error(): Error | undefined { return this.#error; }
  get ended(): boolean { return this.#ended; }

  /** Reset both sides now (drain deadline); recorded under `code` unless an error was already recorded. */
  abort(code: RemoraErrorCode): void {
    if (this.#ended) return;
    this.#record(code, new RemoraError(code, 'the connection was aborted'));
    resetSocket(this.#down);
    resetSocket(this.#up);
  }

  #record(code: RemoraErrorCode, err: Error): void {
    if (this.#errorCode !== undefined) return;
    this.#errorCode = code;
    this.#error = err;
  }

  // === data: backpressure via pause/resume ===
  readonly #onDownData = (chunk: Buffer): void => {
    const n = chunk.length;
    this.#bytesDownToUp += n;
    this.#counters.downstreamToUpstream += n;
    if (!this.#up.write(chunk)) this.#down.pause();
  };

  readonly #onUpData = (chunk: Buffer): void => {
    const n = chunk.length;
    this.#bytesUpToDown += n;
    this.#counters.upstreamToDownstream += n;
    if (!this.#down.write(chunk)) this.#up.pause();
  };

  readonly #onUpDrain = (): void => { this.#down.resume(); };
  readonly #onDownDrain = (): void => { this.#up.resume(); };

  // === half-close: a FIN from one side shuts down the write side of the other ===
  readonly #onDownEnd = (): void => { this.#up.end(); };
  readonly #onUpEnd = (): void => { this.#down.end(); };

  readonly #onUpConnect = (): void => { this.#upConnected = true; };

  // === errors: RST the other side ===
  readonly #onDownError = (err: Error): void => {
    this.#record('REMORA_ERR_DOWNSTREAM_RESET', err);
    resetSocket(this.#up);
    this.#down.destroy();
  };

  readonly #onUpError = (err: Error): void => {
    let code: RemoraErrorCode = 'REMORA_ERR_UPSTREAM_RESET';
    if (!this.#upConnected) {
      code = err instanceof RemoraError && err.code === 'REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT'
        ? 'REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT' : 'REMORA_ERR_UPSTREAM_CONNECT';
    }
    this.#record(code, err);
    resetSocket(this.#down);
    this.#up.destroy();
  };

  /** @internal SweepMember: close both sides once no byte moved either way for idleTimeoutMs. */
  sweep(now: number): boolean {
    if (this.#ended || this.#idleTimedOut) return false;
    const bytes = this.#bytesDownToUp + this.#bytesUpToDown;
    if (bytes !== this.#sweptBytes) {
      this.#sweptBytes = bytes;
      this.#activeAt = now;
      return true;
    }
    if (now - this.#activeAt < this.#idleTimeoutMs) return true;
    this.#onIdle();
    return false;
  }

  #onIdle(): void {
    if (this.#ended || this.#idleTimedOut) return;
    this.#idleTimedOut = true;
    this.#counters.idleTimeouts++;
    this.#down.destroy();
    this.#up.destroy();
  }

  // === close: the forward ends when both sockets are closed ===
  readonly #onDownClose = (): void => {
    this.#downClosed = true;
    this.#closeOtherIfAbandoned(this.#down, this.#up);
    this.#maybeEnd();
  };

  readonly #onUpClose = (): void => {
    this.#upClosed = true;
    this.#closeOtherIfAbandoned(this.#up, this.#down);
    this.#maybeEnd();
  };

  /**
   * A socket that closed after a FIN both ways leaves the other one to finish on its own (it may still be flushing
   * bytes the closed side sent). One that closed any other way (destroyed) must not leave its peer open forever.
   */
  #closeOtherIfAbandoned(closed: Socket, other: Socket): void {
    if (other.destroyed) return;
    // After a FIN both ways the other side may still be flushing; the idle sweep still watches it until it closes.
    if (closed.readableEnded && closed.writableFinished) return;
    other.destroy();
  }

  #maybeEnd(): void {
    if (this.#ended || !this.#downClosed || !this.#upClosed) return;
    this.#ended = true;
    if (this.#sweepEntry !== undefined) this.#sweep?.delete(this.#sweepEntry);
    this.#onEnd(this);
  }
}
