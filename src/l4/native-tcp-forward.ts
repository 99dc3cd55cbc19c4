// One opaque TCP forward run by the native forwarding thread (native/src/tcp_forwarder.cc, through
// src/l4/native-forwarder.ts): the same surface as TcpForward (OpaqueForward), so the staged connection, the
// connection stats, the access log, the TCP metrics, the drain and /debug/connections see no difference. It holds no
// socket: both were handed over (their fds dup'd into the thread) and closed in Node. The policy (backpressure,
// half-close both ways, RST propagation, idle timeout, abort) is TcpForward's, applied by the thread.
//
// Bytes: the getters read the thread's counters now (exact while live, final once ended). The listener's byte
// counters move by the forwarder's sweep (once a second, the deltas of every live connection) and by the rest at the
// end. The end is reported by the thread, once; onEnd then runs once.
import { constants as osConstants } from 'node:os';
import { RemoraError, systemError, type RemoraErrorCode } from '../core/errors.js';
import type { ListenerCounters } from '../core/stats.js';
import type { SideState } from './live-connection.js';
import type { OpaqueForward } from './tcp-forward.js';

/** How the thread says a connection ended (the end kind of native/src/tcp_forwarder.cc). */
export const NativeEnd = { clean: 0, downstreamError: 1, upstreamError: 2, idle: 3, aborted: 4 } as const;

/** What a NativeTcpForward asks of the forwarder that runs it. */
export interface NativeForwardPort {
  /** Reset both sides. */
  abort(id: number): void;
  /**
   * Live counters into out: [down->up, up->down, downstream flags, upstream flags, and with a fifth slot the thread's
   * state of the connection (0 forwarding, 1 accepted, 2 connecting)]; false once not live.
   */
  read(id: number, out: Float64Array): boolean;
}

export interface NativeTcpForwardOptions {
  readonly counters: ListenerCounters;
  readonly onEnd: (forward: NativeTcpForward) => void;
  /** What the handed-over upstream socket's 'close' listeners were (the endpoint's load release): run at the end. */
  readonly onClosed?: (() => void) | undefined;
}

const ERRNO = osConstants.errno;
const FIN_READ = 1;
const FIN_SENT = 2;

function stateOf(flags: number, ended: boolean): SideState {
  if (ended) return 'closed';
  const got = (flags & FIN_READ) !== 0;
  const sent = (flags & FIN_SENT) !== 0;
  if (got && sent) return 'closed';
  if (got) return 'fin-received';
  if (sent) return 'fin-sent';
  return 'open';
}

/** One scratch array for reads of the live counters (the JS thread is single). */
const SCRATCH = new Float64Array(5);
/** The thread's state of a connection that is forwarded (native/src/tcp_forwarder.cc ConnState). */
const FORWARDING = 0;

export class NativeTcpForward implements OpaqueForward {
  readonly #id: number;
  readonly #port: NativeForwardPort;
  readonly #counters: ListenerCounters;
  readonly #onEnd: (forward: NativeTcpForward) => void;
  readonly #onClosed: (() => void) | undefined;
  #in = 0;
  #out = 0;
  /** What the listener counters got so far (deltas of the sweep). */
  #countedIn = 0;
  #countedOut = 0;
  #downFlags = 0;
  #upFlags = 0;
  #state = FORWARDING;
  #ended = false;
  #idleTimedOut = false;
  #errorCode: RemoraErrorCode | undefined;
  #error: Error | undefined;

  constructor(id: number, port: NativeForwardPort, opts: NativeTcpForwardOptions) {
    this.#id = id;
    this.#port = port;
    this.#counters = opts.counters;
    this.#onEnd = opts.onEnd;
    this.#onClosed = opts.onClosed;
  }

  /** The forwarder's id of this connection. */
  get id(): number { return this.#id; }

  #refresh(): void {
    if (this.#ended || !this.#port.read(this.#id, SCRATCH)) return;
    this.#in = SCRATCH[0] ?? this.#in;
    this.#out = SCRATCH[1] ?? this.#out;
    this.#downFlags = SCRATCH[2] ?? 0;
    this.#upFlags = SCRATCH[3] ?? 0;
    this.#state = SCRATCH[4] ?? FORWARDING;
  }

  get bytesDownstreamToUpstream(): number {
    this.#refresh();
    return this.#in;
  }

  get bytesUpstreamToDownstream(): number {
    this.#refresh();
    return this.#out;
  }

  /** Whether the upstream is connected: always for a hand-over; for a native accept, once the thread connected it. */
  get upstreamConnected(): boolean {
    this.#refresh();
    return this.#state === FORWARDING;
  }
  get idleTimedOut(): boolean { return this.#idleTimedOut; }
  get errorCode(): RemoraErrorCode | undefined { return this.#errorCode; }
  get error(): Error | undefined { return this.#error; }
  get ended(): boolean { return this.#ended; }

  get downstreamState(): SideState {
    this.#refresh();
    return stateOf(this.#downFlags, this.#ended);
  }

  get upstreamState(): SideState {
    this.#refresh();
    return stateOf(this.#upFlags, this.#ended);
  }

  abort(code: RemoraErrorCode): void {
    if (this.#ended) return;
    this.#record(code, new RemoraError(code, 'the connection was aborted'));
    this.#port.abort(this.#id);
  }

  #record(code: RemoraErrorCode, err: Error): void {
    if (this.#errorCode !== undefined) return;
    this.#errorCode = code;
    this.#error = err;
  }

  /** @internal The forwarder's sweep: bytes moved since its last visit, added to the listener counters. */
  count(dIn: number, dOut: number): void {
    if (this.#ended) return;
    this.#countedIn += dIn;
    this.#countedOut += dOut;
    this.#counters.downstreamToUpstream += dIn;
    this.#counters.upstreamToDownstream += dOut;
  }

  /** @internal The thread reported the end: final bytes, how, and the errno of an error. */
  end(bytesIn: number, bytesOut: number, kind: number, errno: number): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#in = bytesIn;
    this.#out = bytesOut;
    this.#counters.downstreamToUpstream += bytesIn - this.#countedIn;
    this.#counters.upstreamToDownstream += bytesOut - this.#countedOut;
    this.#countedIn = bytesIn;
    this.#countedOut = bytesOut;
    if (kind === NativeEnd.idle) {
      this.#idleTimedOut = true;
      this.#counters.idleTimeouts++;
    } else if (kind === NativeEnd.downstreamError) {
      this.#record('REMORA_ERR_DOWNSTREAM_RESET', systemErrorOf(errno));
    } else if (kind === NativeEnd.upstreamError) {
      this.#record('REMORA_ERR_UPSTREAM_RESET', systemErrorOf(errno));
    } else if (kind === NativeEnd.aborted) {
      // Only abort() asks the thread to abort, and it recorded its code first; kept for a bug's sake.
      this.#record('REMORA_ERR_DRAIN_TIMEOUT', new RemoraError('REMORA_ERR_DRAIN_TIMEOUT', 'the connection was aborted'));
    }
    this.#onClosed?.();
    this.#onEnd(this);
  }
}

/** A Node-style SystemError for an errno the thread saw (EPIPE on a write, anything else on a read). */
function systemErrorOf(errno: number): Error {
  const e = errno > 0 ? errno : ERRNO.ECONNRESET;
  return systemError(-e, e === ERRNO.EPIPE ? 'write' : 'read');
}
