// The hand-over of opaque TCP to the native forwarding thread (native/src/tcp_forwarder.cc; `tcp_forwarder =
// native`). One NativeForwarder per process (the thread is per process; `processForwarder()` starts it on first use).
//
// handOver(down, up, ...) is called once both sockets are plain TCP and connected, before any JS listener reads them
// again, all in one synchronous turn:
//   1. checks both sockets can be handed over: a TCP handle with an fd (not TLS, not the plaintext side of mesh mTLS),
//      not destroyed or connecting, nothing queued for writing (writableLength 0), not ended for writing;
//   2. takes out what Node already read and nobody forwarded: the detection head (given), and whatever is in each
//      socket's readable buffer (read() while paused); these go first, to the other side;
//   3. the addon dup()s both fds and the thread owns the dups from now on;
//   4. both sockets are destroyed (uv_close removes the fd from libuv's epoll with EPOLL_CTL_DEL before close(), so
//      the shared file description never fires there). The upstream's 'close' listeners (the endpoint's load
//      release) are kept and run when the native forward ends; the downstream's hear its socket close.
// When any check fails it returns the reason and nothing was changed: the caller forwards in Node (TcpForward) and
// counts it. A sweep (once a second, unref'd, while connections are live) moves the listener byte counters.
//
// Native accept: listen(fd, sink) makes the thread accept on a capture listener's socket; each accepted connection
// reaches the sink as a NativeAccepted (src/l4/native-accepted.ts) with its addresses, and its later events (connected,
// connect failed, detection's first bytes) and its end reach it by its id.
import type { Socket } from 'node:net';
import type { OriginalDst } from '../core/addr.js';
import { systemError } from '../core/errors.js';
import { hasForwarder, loadNativeAddon, type ForwarderBinding } from '../core/native-addon.js';
import { socketFd } from '../core/socket-fd.js';
import { LiveTable } from '../core/live-table.js';
import type { ListenerCounters } from '../core/stats.js';
import { NativeAccepted, type NativeAcceptPort } from './native-accepted.js';
import { NativeTcpForward, type NativeForwardPort } from './native-tcp-forward.js';

/** Why a forward stayed in Node. */
export type NativeFallback = 'tls' | 'no-fd' | 'socket-state' | 'addon';

export interface NativeHandOver {
  /** Close after this long without a byte in either direction; 0 = never. */
  readonly idleTimeoutMs: number;
  readonly counters: ListenerCounters;
  readonly onEnd: (forward: NativeTcpForward) => void;
  /** Bytes already read from the downstream (detection), written to the upstream first. */
  readonly head?: Buffer | undefined;
}

/** What the thread says of a connection it accepted: its original destination (or the -errno of reading it), its client. */
export interface NativeAcceptedAddresses {
  /** 0, or -errno of SO_ORIGINAL_DST (-ENOENT: not redirected). */
  readonly status: number;
  readonly originalDst: OriginalDst | undefined;
  readonly peerAddress: string | undefined;
  readonly peerPort: number | undefined;
}

/** Hears a listener's connections accepted by the thread. */
export interface NativeAcceptSink {
  accepted(conn: NativeAccepted, addresses: NativeAcceptedAddresses): void;
  /** accept() failed for want of resources (the listener rests 100 ms), or the listener cannot be polled. */
  listenerError(err: Error): void;
}

/** A live entry of the thread: a handed-over forward, or an accepted connection. */
interface NativeLive {
  count(dIn: number, dOut: number): void;
  end(bytesIn: number, bytesOut: number, kind: number, errno: number): void;
  event?(kind: number, a: number, extra: Buffer | undefined): void;
}

const EV_ACCEPTED = 1;
const EV_LISTEN_ERROR = 9;
const EV_CLIENT_DATA = 4;
const EV_SERVER_DATA = 6;

/** How often the listener byte counters are brought up to date for live connections. */
export const NATIVE_SWEEP_MS = 1_000;

/** The fd of a plain TCP socket's handle, or undefined (TLS, a JS stream, no handle). */
function fdOf(socket: Socket): number | undefined {
  if ((socket as { encrypted?: unknown }).encrypted === true) return undefined;
  return socketFd(socket);
}

function canHandOver(s: Socket): boolean {
  return !s.destroyed && !s.connecting && !s.writableEnded && s.writableLength === 0 && (s as { pending?: boolean }).pending !== true;
}

/** Everything in a socket's readable buffer, without starting the flow. */
function drain(s: Socket): Buffer[] {
  const out: Buffer[] = [];
  if (s.readableLength === 0) return out;
  s.pause();
  for (let i = 0; i < 1_000 && s.readableLength > 0; i++) {
    const chunk: unknown = s.read();
    if (chunk === null) break;
    out.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk as Buffer);
  }
  return out;
}

function joined(parts: Buffer[]): Buffer | undefined {
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

export class NativeForwarder {
  readonly #b: ForwarderBinding;
  /** The live forwards by the thread's id (a LiveTable: no Map churned per connection, see src/core/live-table.ts). */
  readonly #live = new LiveTable<NativeLive>();
  readonly #fields: number;
  readonly #eventFields: number;
  /** The sinks of the listeners the thread accepts on, by handle (one per capture listener). */
  readonly #sinks = new Map<number, NativeAcceptSink>();
  readonly #acceptPort: NativeAcceptPort;
  #timer: NodeJS.Timeout | undefined;
  readonly #port: NativeForwardPort;

  /** Starts the thread's JS side (the thread itself starts now too). Throws a SystemError when the addon cannot. */
  constructor(binding: ForwarderBinding) {
    this.#b = binding;
    this.#fields = binding.FORWARDER_ENDED_FIELDS;
    this.#eventFields = binding.FORWARDER_EVENT_FIELDS;
    const rc = binding.forwarderInit(this.#onReport);
    if (rc < 0) throw systemError(rc, 'forwarderInit');
    this.#port = {
      abort: (id) => { binding.forwarderAbort(id); },
      read: (id, out) => binding.forwarderBytes(id, out) === 0,
    };
    this.#acceptPort = {
      ...this.#port,
      connect: (id, r) => binding.forwarderConnect(id, r.address, r.port, r.localAddress, r.connectTimeoutMs, r.idleTimeoutMs,
        r.detectTimeoutMs, r.notifyConnected),
      release: (id) => {
        const fd = binding.forwarderRelease(id);
        if (fd >= 0) this.#live.delete(id);
        return fd;
      },
      watchDone: (id) => { binding.forwarderWatchDone(id); },
    };
  }

  /** Accept on the listening socket `fd` (a dup of it) from now on: the handle for unlisten(). Throws a SystemError. */
  listen(fd: number, sink: NativeAcceptSink): number {
    const handle = this.#b.forwarderListen(fd);
    if (handle < 0) throw systemError(handle, 'forwarderListen');
    this.#sinks.set(handle, sink);
    return handle;
  }

  /** Stop accepting on a listener (its dup is closed by the thread); connections already accepted go on. */
  unlisten(handle: number): void {
    if (!this.#sinks.delete(handle)) return;
    this.#b.forwarderUnlisten(handle);
  }

  /** Connections handed over and not yet ended. */
  get size(): number { return this.#live.size; }

  /** Hand both sockets to the thread (see the file comment); the reason when it cannot be done. */
  handOver(down: Socket, up: Socket, opts: NativeHandOver): NativeTcpForward | NativeFallback {
    const fdDown = fdOf(down);
    const fdUp = fdOf(up);
    if ((down as { encrypted?: unknown }).encrypted === true || (up as { encrypted?: unknown }).encrypted === true) return 'tls';
    if (fdDown === undefined || fdUp === undefined) return 'no-fd';
    if (!canHandOver(down) || !canHandOver(up)) return 'socket-state';
    const fromDown = drain(down);
    const fromUp = drain(up);
    const head = opts.head !== undefined && opts.head.length > 0 ? [opts.head, ...fromDown] : fromDown;
    const id = this.#b.forwarderAdd(fdDown, fdUp, opts.idleTimeoutMs, joined(head), joined(fromUp));
    if (id <= 0) {
      // Nothing was handed over: what was read goes back where it was.
      const backDown = joined(fromDown);
      if (backDown !== undefined) down.unshift(backDown);
      const backUp = joined(fromUp);
      if (backUp !== undefined) up.unshift(backUp);
      return 'addon';
    }
    // The upstream's 'close' listeners (its endpoint's load release) must hear the end of the connection, not of this
    // socket; the downstream's hear its socket close now (the bookkeeping of the TCP handle it was accepted as).
    const closers = up.listeners('close') as ((hadError: boolean) => void)[];
    up.removeAllListeners('close');
    down.destroy();
    up.destroy();
    const forward = new NativeTcpForward(id, this.#port, {
      counters: opts.counters,
      onEnd: opts.onEnd,
      onClosed: closers.length === 0 ? undefined : () => { for (const c of closers) c(false); },
    });
    this.#track(id, forward);
    return forward;
  }

  #track(id: number, entry: NativeLive): void {
    this.#live.set(id, entry);
    if (this.#timer === undefined) {
      this.#timer = setInterval(this.#sweep, NATIVE_SWEEP_MS);
      this.#timer.unref();
    }
  }

  /** Reset every live connection (each reports its end as usual). */
  abortAll(): void {
    for (const id of this.#live.keys()) this.#b.forwarderAbort(Number(id));
  }

  readonly #sweep = (): void => {
    const d = this.#b.forwarderDeltas();
    for (let i = 0; i + 2 < d.length; i += 3) {
      this.#live.get(d[i] ?? 0)?.count(d[i + 1] ?? 0, d[i + 2] ?? 0);
    }
  };

  /** The events of a report: an accepted connection goes to its listener's sink, any other event to its connection. */
  #onEvents(events: Float64Array, extras: readonly (string | Buffer)[]): void {
    const n = this.#eventFields;
    let x = 0;
    for (let i = 0; i + n - 1 < events.length; i += n) {
      const kind = events[i] ?? 0;
      const id = events[i + 1] ?? 0;
      const a = events[i + 2] ?? 0;
      if (kind === EV_ACCEPTED) {
        const dst = extras[x++] as string;
        const peer = extras[x++] as string;
        const status = events[i + 3] ?? 0;
        const conn = new NativeAccepted(id, this.#acceptPort);
        const sink = this.#sinks.get(a);
        this.#track(id, conn);
        if (sink === undefined) {
          // Its listener was closed in the meantime: the connection is refused as a closed port would.
          conn.abort();
          continue;
        }
        try {
          sink.accepted(conn, {
            status,
            originalDst: status === 0 ? { address: dst, port: events[i + 4] ?? 0, family: dst.includes(':') ? 6 : 4 } : undefined,
            peerAddress: peer === '' ? undefined : peer,
            peerPort: peer === '' ? undefined : events[i + 5] ?? 0,
          });
        } catch (err) {
          // Last line of defence (the sink guards its own stages): this connection is reset, the batch goes on.
          conn.abort();
          sink.listenerError(err as Error);
        }
        continue;
      }
      if (kind === EV_LISTEN_ERROR) {
        this.#sinks.get(a)?.listenerError(systemError(-(events[i + 3] ?? 0), 'accept'));
        continue;
      }
      const extra = kind === EV_CLIENT_DATA || kind === EV_SERVER_DATA ? extras[x++] as Buffer : undefined;
      this.#live.get(id)?.event?.(kind, a, extra);
    }
  }

  readonly #onReport = (ended: Float64Array, events: Float64Array, extras: readonly (string | Buffer)[]): void => {
    if (events.length > 0) this.#onEvents(events, extras);
    const n = this.#fields;
    for (let i = 0; i + n - 1 < ended.length; i += n) {
      const id = ended[i] ?? 0;
      const f = this.#live.get(id);
      if (f === undefined) continue;
      this.#live.delete(id);
      f.end(ended[i + 1] ?? 0, ended[i + 2] ?? 0, ended[i + 3] ?? 0, ended[i + 4] ?? 0);
    }
    if (this.#live.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  };
}

let shared: NativeForwarder | null | undefined;

/**
 * The process's forwarder, started on first use; null when the addon has no forwarder (an old build) or cannot start
 * one: the forwards then stay in Node (counted as 'addon' fallbacks).
 */
export function processForwarder(): NativeForwarder | null {
  if (shared !== undefined) return shared;
  try {
    const addon = loadNativeAddon();
    shared = hasForwarder(addon) ? new NativeForwarder(addon) : null;
  } catch {
    shared = null;
  }
  return shared;
}
