// One HTTP/2 connection on a socket, server or client side (RFC 9113), without node:http2: remora's own framing,
// HPACK (hpack.ts), flow control and stream states, written for a proxy's two uses of it: the downstream engine
// (engine/h2-downstream.ts, server side) and the upstream pool (pool/h2-pool.ts, client side).
//
// - Reads: the socket's bytes come without node:stream when it is plain TCP (src/core/direct-reads.ts); complete
//   frames are handled in place, a partial one waits for the next read.
// - Writes: frames are queued and written once per turn of the event loop (a microtask), so that the responses of
//   several streams that complete together go out in one system call.
// - Settings we send: our stream receive window, SETTINGS_MAX_CONCURRENT_STREAMS (server) and
//   SETTINGS_MAX_HEADER_LIST_SIZE; push disabled (client). The connection receive window is raised with a
//   WINDOW_UPDATE right after. DATA is acknowledged as it is delivered to its stream's handler (half a window at a
//   time), so an unread stream holds at most its window.
// - Errors: a connection error sends GOAWAY with its code and closes; a stream error sends RST_STREAM. Every stream
//   still open when the connection ends hears onReset().
// - Abuse (each ends the connection with GOAWAY ENHANCE_YOUR_CALM): streams reset by the client for more than half of
//   those it opened once past 1,000 (the "rapid reset" attack); 1,000 empty DATA frames in a row; 10,000 control
//   frames answered (PING, SETTINGS) while the socket does not drain; a header block larger than 4 times the header
//   list limit (CONTINUATION flood).
import type { Socket } from 'node:net';
import { DirectReads } from '../../core/direct-reads.js';
import {
  CANCEL, CLIENT_PREFACE, CONTINUATION, DATA, DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW, ENHANCE_YOUR_CALM, FLAG_ACK,
  FLAG_END_HEADERS, FLAG_END_STREAM, FLAG_PADDED, FLAG_PRIORITY, FLOW_CONTROL_ERROR, FRAME_HEADER_BYTES,
  FRAME_SIZE_ERROR, GOAWAY, HEADERS, INTERNAL_ERROR, MAX_FRAME_SIZE_LIMIT, MAX_STREAM_ID, MAX_WINDOW, NO_ERROR, PING,
  PRIORITY, PROTOCOL_ERROR, PUSH_PROMISE, REFUSED_STREAM, RST_STREAM, SETTINGS, SETTINGS_ENABLE_PUSH,
  SETTINGS_HEADER_TABLE_SIZE, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_MAX_FRAME_SIZE,
  SETTINGS_MAX_HEADER_LIST_SIZE, STREAM_CLOSED, WINDOW_UPDATE, COMPRESSION_ERROR, emptyFrame, frameHeader,
  goawayFrame, headerFrames, settingsFrame, u32Frame, writeFrameHeader,
} from './frame.js';
import { HpackDecoder, HpackEncoder } from './hpack.js';
import { H2Stream } from './h2-stream.js';

export interface H2ConnectionOptions {
  readonly role: 'server' | 'client';
  /** Server: the most streams a client may have open (SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly maxConcurrentStreams: number;
  /** Our receive window per stream (SETTINGS_INITIAL_WINDOW_SIZE). */
  readonly streamWindow: number;
  /** Our receive window for the connection. */
  readonly connectionWindow: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: larger header blocks are refused. */
  readonly maxHeaderListSize: number;
}

export interface H2ConnectionOwner {
  /**
   * Server side: a client opened a stream with this request head (pseudo-headers first, as received). The owner
   * sets `stream.handler` before returning (or resets the stream). `tooLarge`: the block passed the header list limit
   * (`fields` is cut short).
   */
  onStream(stream: H2Stream, fields: string[], endStream: boolean, tooLarge: boolean): void;
  /** A stream closed: both sides ended, or it was reset. */
  onStreamClosed(stream: H2Stream): void;
  /** The peer's SETTINGS arrived or changed (client side: the concurrency limit). */
  onSettings(): void;
  /** The peer sent GOAWAY. */
  onGoaway(lastStreamId: number, code: number): void;
  /** A connection error we detected (the GOAWAY went out with `code`). */
  onError(reason: string, code: number): void;
  /** The socket closed; every stream has heard onReset already. */
  onClose(): void;
}

/** Streams reset by the peer before this many count as an attack only above half of those it opened. */
const RAPID_RESET_FLOOR = 1_000;
const EMPTY_DATA_LIMIT = 1_000;
const CONTROL_WHILE_CONGESTED_LIMIT = 10_000;
/** Pending output above which write() says the connection is full. */
const OUTPUT_HIGH_WATER = 64 * 1024;
/** A connection that failed gets this long to send its GOAWAY before the socket is destroyed. */
const CLOSE_LINGER_MS = 1_000;

function noop(): void {}

/** An HPACK dynamic table size update to 0 (RFC 7541 §6.3: 001 followed by the size as a 5-bit-prefix integer). */
const TABLE_SIZE_ZERO = Buffer.from([0x20]);


/** A header block arriving in HEADERS + CONTINUATION frames. */
interface PartialBlock {
  readonly id: number;
  readonly flags: number;
  readonly chunks: Buffer[];
  size: number;
}

export class H2Connection {
  readonly socket: Socket;
  readonly #owner: H2ConnectionOwner;
  readonly #server: boolean;
  readonly #opts: H2ConnectionOptions;
  readonly #decoder = new HpackDecoder();
  readonly #encoder = new HpackEncoder();
  readonly #streams = new Map<number, H2Stream>();
  readonly #reads: DirectReads | undefined;

  // peer settings
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  #peerMaxStreams = Infinity;
  #gotSettings = false;

  // windows
  #sendWindow = DEFAULT_WINDOW;
  #recvWindow = DEFAULT_WINDOW;
  #connUnacked = 0;

  // stream ids
  #lastPeerId = 0;
  #nextLocalId = 1;
  /** Streams opened by the peer that are still open (server side: the concurrency limit applies). */
  #activePeer = 0;
  #peerOpened = 0;
  #peerResets = 0;
  #emptyData = 0;
  #controlWhileCongested = 0;

  // input
  #prefaceLeft: number;
  #pending: Buffer | undefined;
  #block: PartialBlock | undefined;

  // output
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushQueued = false;
  #socketFull = false;
  readonly #blocked = new Set<H2Stream>();
  readonly #drainWaiters = new Set<H2Stream>();

  /** The dynamic table size update (to 0) went out with our first header block. */
  #tableSizeSent = false;

  // lifecycle
  #goawaySent = false;
  /** The peer sent GOAWAY. */
  #goawayReceived = false;
  #dead = false;
  #closeCode = INTERNAL_ERROR;

  constructor(socket: Socket, owner: H2ConnectionOwner, options: H2ConnectionOptions) {
    this.socket = socket;
    this.#owner = owner;
    this.#opts = options;
    this.#server = options.role === 'server';
    this.#prefaceLeft = this.#server ? CLIENT_PREFACE.length : 0;
    socket.on('error', noop);
    socket.on('close', this.#onSocketClose);
    socket.on('end', this.#onSocketEnd);
    socket.setNoDelay(true);
    this.#reads = DirectReads.adopt(socket);
    // Our settings (and, client side, the preface before them), then the connection window.
    if (!this.#server) this.#queue(CLIENT_PREFACE);
    const settings = [SETTINGS_INITIAL_WINDOW_SIZE, options.streamWindow, SETTINGS_MAX_HEADER_LIST_SIZE, options.maxHeaderListSize];
    if (this.#server) settings.push(SETTINGS_MAX_CONCURRENT_STREAMS, options.maxConcurrentStreams);
    else settings.push(SETTINGS_ENABLE_PUSH, 0);
    this.#queue(settingsFrame(settings));
    if (options.connectionWindow > DEFAULT_WINDOW) {
      this.#queue(u32Frame(WINDOW_UPDATE, 0, options.connectionWindow - DEFAULT_WINDOW));
      this.#recvWindow = options.connectionWindow;
    }
  }

  /** Start with bytes already read from the socket (server side: the sniffed preface). */
  start(initialBytes: Buffer): void {
    if (initialBytes.length > 0) this.#onRead(initialBytes);
    if (this.#dead) return;
    if (this.#reads !== undefined) this.#reads.attach(this.#onRead);
    else this.socket.on('data', this.#onRead);
    this.socket.resume();
  }

  /** SETTINGS_MAX_CONCURRENT_STREAMS of the peer (Infinity until it says). */
  get peerMaxStreams(): number {
    return this.#peerMaxStreams;
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  get closed(): boolean {
    return this.#dead;
  }

  /** Going away: a GOAWAY was sent or received, or the connection failed. */
  get closing(): boolean {
    return this.#dead || this.#goawaySent || this.#goawayReceived || this.socket.destroyed;
  }

  /** The output is full: stream writes say false until it drains. */
  get congested(): boolean {
    return this.#socketFull || this.#outBytes > OUTPUT_HIGH_WATER;
  }

  /** Client side: open a stream (the pool keeps within peerMaxStreams). */
  request(pseudo: readonly string[], fields: readonly string[], endStream: boolean): H2Stream {
    const id = this.#nextLocalId;
    if (id > MAX_STREAM_ID || this.closing) throw new Error('HTTP/2 connection cannot open more streams');
    this.#nextLocalId += 2;
    const s = new H2Stream(this, id, this.#peerInitialWindow, this.#opts.streamWindow, false);
    this.#streams.set(id, s);
    s.sendHeaders(pseudo, fields, endStream);
    return s;
  }

  /** GOAWAY NO_ERROR with the last stream the peer opened: no new stream is taken; closes when the last one ends. */
  goaway(): void {
    if (this.#dead || this.#goawaySent) return;
    this.#goawaySent = true;
    this.#queue(goawayFrame(this.#lastPeerId, NO_ERROR));
    if (this.#streams.size === 0) this.#finish();
  }

  /** Tear down now: every open stream hears onReset(CANCEL). */
  destroy(): void {
    this.#closeCode = CANCEL;
    this.socket.destroy();
  }

  // ---- called by streams ----

  sendHeaderBlock(s: H2Stream, pseudo: readonly string[], fields: readonly string[], endStream: boolean): void {
    let block = this.#encoder.encodeWith(pseudo, fields);
    if (!this.#tableSizeSent) {
      // Our encoder never indexes: its first block says so with a dynamic table size update to 0 (RFC 7541 §4.2,
      // §6.3), which also satisfies a peer that lowered SETTINGS_HEADER_TABLE_SIZE below the default 4,096 (nghttp2
      // refuses the first block without an update then).
      this.#tableSizeSent = true;
      block = Buffer.concat([TABLE_SIZE_ZERO, block]);
    }
    this.#queue(headerFrames(block, s.id, endStream, this.#peerMaxFrameSize));
  }

  /** Send DATA from chunk[from..] as far as the windows allow; returns the bytes sent. */
  sendData(s: H2Stream, chunk: Buffer, from: number, endStream: boolean): number {
    let at = from;
    const end = chunk.length;
    while (at < end) {
      const room = Math.min(s.sendWindow, this.#sendWindow, this.#peerMaxFrameSize);
      if (room <= 0) break;
      const n = Math.min(room, end - at);
      const last = at + n === end;
      const flags = endStream && last ? FLAG_END_STREAM : 0;
      if (n <= 1024) {
        // small: header and payload in one buffer
        const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + n);
        writeFrameHeader(b, 0, n, DATA, flags, s.id);
        chunk.copy(b, FRAME_HEADER_BYTES, at, at + n);
        this.#queue(b);
      } else {
        this.#queue(frameHeader(n, DATA, flags, s.id));
        this.#queue(at === 0 && last ? chunk : chunk.subarray(at, at + n));
      }
      s.sendWindow -= n;
      this.#sendWindow -= n;
      at += n;
    }
    return at - from;
  }

  sendEndStream(s: H2Stream): void {
    this.#queue(emptyFrame(DATA, FLAG_END_STREAM, s.id));
  }

  /** A stream has data waiting for window. */
  blocked(s: H2Stream): void {
    this.#blocked.add(s);
  }

  /** A stream wants onDrain() once the output drains. */
  waitDrain(s: H2Stream): void {
    this.#drainWaiters.add(s);
  }

  resetStream(s: H2Stream, code: number, clientFault: boolean): void {
    this.#sendReset(s.id, code, clientFault);
    this.#close(s);
  }

  /**
   * RST_STREAM: counted as a control frame (a client that provokes resets and does not read them is bounded), and,
   * server side, a reset for the client's fault counts towards the rapid-reset limit as the client's own resets do
   * (else one malformed stream per reset would keep a client under it).
   */
  #sendReset(id: number, code: number, clientFault: boolean): void {
    if (this.#dead) return;
    if (this.#server && clientFault && this.#tooManyResets()) return;
    this.#control(u32Frame(RST_STREAM, id, code));
  }

  /** One more stream reset for the client's doing: true when that ended the connection (rapid reset). */
  #tooManyResets(): boolean {
    if (++this.#peerResets > RAPID_RESET_FLOOR && this.#peerResets * 2 > this.#peerOpened) {
      this.#connectionError(ENHANCE_YOUR_CALM, 'the client resets, or makes us reset, most of the streams it opens (rapid reset)');
      return true;
    }
    return false;
  }

  localEnded(s: H2Stream): void {
    if (s.remoteEnded) {
      this.#close(s);
    } else if (this.#server && s.headSent && !s.tunnel) {
      // The response is complete before the request (RFC 9113 §8.1): the client may stop sending.
      this.#sendReset(s.id, NO_ERROR, false);
      this.#close(s);
    }
  }

  remoteEnded(s: H2Stream): void {
    if (s.localEnded) this.#close(s);
  }

  /** `n` bytes of DATA were delivered to the stream's handler: acknowledge them, half a window at a time. */
  consumed(s: H2Stream, n: number): void {
    if (this.#dead) return;
    this.#ackConnection(n);
    if (s.remoteEnded || s.closed) return;
    s.unacked += n;
    if (s.unacked >= this.#opts.streamWindow >>> 1) {
      this.#queue(u32Frame(WINDOW_UPDATE, s.id, s.unacked));
      s.recvWindow += s.unacked;
      s.unacked = 0;
    }
  }

  #close(s: H2Stream): void {
    if (s.closed && !this.#streams.has(s.id)) return;
    s.markClosed();
    if (!this.#streams.delete(s.id)) return;
    this.#blocked.delete(s);
    this.#drainWaiters.delete(s);
    if ((s.id & 1) === (this.#server ? 1 : 0)) this.#activePeer--;
    this.#owner.onStreamClosed(s);
    if (this.#streams.size === 0 && (this.#goawaySent || (this.#goawayReceived && !this.#server))) this.#finish();
  }

  // ---- output ----

  #queue(buf: Buffer): void {
    if (this.#dead) return;
    this.#out.push(buf);
    this.#outBytes += buf.length;
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#flushQueued = false;
    const out = this.#out;
    const bytes = this.#outBytes;
    if (out.length === 0) return;
    this.#out = [];
    this.#outBytes = 0;
    const sock = this.socket;
    if (sock.destroyed) return;
    let ok: boolean;
    if (out.length === 1) {
      ok = sock.write(out[0] as Buffer);
    } else if (bytes <= 64 * 1024) {
      ok = sock.write(Buffer.concat(out, bytes));
    } else {
      sock.cork();
      ok = true;
      for (const b of out) ok = sock.write(b);
      sock.uncork();
    }
    if (!ok) {
      if (!this.#socketFull) {
        this.#socketFull = true;
        sock.once('drain', this.#onSocketDrain);
      }
    } else if (this.#drainWaiters.size > 0) {
      this.#notifyDrain();
    }
  };

  readonly #onSocketDrain = (): void => {
    this.#socketFull = false;
    this.#controlWhileCongested = 0;
    this.#notifyDrain();
  };

  #notifyDrain(): void {
    if (this.congested) return;
    const waiters = [...this.#drainWaiters];
    this.#drainWaiters.clear();
    for (const s of waiters) s.drained();
  }

  /** Send what the windows allow for the streams waiting on them. */
  #flushBlocked(): void {
    if (this.#blocked.size === 0) return;
    for (const s of this.#blocked) {
      if (this.#sendWindow <= 0) break;
      if (s.sendWindow <= 0) continue;
      if (s.flushQueue()) {
        this.#blocked.delete(s);
        if (this.congested) this.#drainWaiters.add(s);
        else s.drained();
      }
    }
  }

  // ---- input ----

  readonly #onRead = (chunk: Buffer): boolean => {
    if (this.#dead) return false;
    let buf = chunk;
    const pending = this.#pending;
    if (pending !== undefined) {
      buf = Buffer.concat([pending, chunk]);
      this.#pending = undefined;
    }
    let off = 0;
    if (this.#prefaceLeft > 0) {
      const have = Math.min(this.#prefaceLeft, buf.length);
      const at = CLIENT_PREFACE.length - this.#prefaceLeft;
      if (buf.compare(CLIENT_PREFACE, at, at + have, 0, have) !== 0) {
        this.#connectionError(PROTOCOL_ERROR, 'not the HTTP/2 connection preface');
        return false;
      }
      this.#prefaceLeft -= have;
      off = have;
    }
    const len = buf.length;
    while (len - off >= FRAME_HEADER_BYTES) {
      const size = (buf[off] as number) << 16 | (buf[off + 1] as number) << 8 | (buf[off + 2] as number);
      if (size > DEFAULT_MAX_FRAME_SIZE) {
        this.#connectionError(FRAME_SIZE_ERROR, `frame of ${size} bytes above SETTINGS_MAX_FRAME_SIZE`);
        return false;
      }
      if (len - off - FRAME_HEADER_BYTES < size) break;
      const start = off + FRAME_HEADER_BYTES;
      this.#frame(buf[off + 3] as number, buf[off + 4] as number, buf.readUInt32BE(off + 5) & MAX_STREAM_ID, buf, start, start + size);
      if (this.#dead) return false;
      off = start + size;
    }
    if (off < len) this.#pending = off === 0 ? buf : buf.subarray(off);
    return true;
  };

  #frame(type: number, flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (this.#block !== undefined && type !== CONTINUATION) {
      this.#connectionError(PROTOCOL_ERROR, 'a frame inside a header block');
      return;
    }
    if (!this.#gotSettings && type !== SETTINGS) {
      this.#connectionError(PROTOCOL_ERROR, 'the first frame is not SETTINGS');
      return;
    }
    switch (type) {
      case DATA: this.#onData(flags, id, buf, start, end); return;
      case HEADERS: this.#onHeaders(flags, id, buf, start, end); return;
      case CONTINUATION: this.#onContinuation(flags, id, buf, start, end); return;
      case RST_STREAM: this.#onRstStream(id, buf, start, end); return;
      case SETTINGS: this.#onSettings(flags, id, buf, start, end); return;
      case PING: this.#onPing(flags, id, buf, start, end); return;
      case GOAWAY: this.#onGoaway(id, buf, start, end); return;
      case WINDOW_UPDATE: this.#onWindowUpdate(id, buf, start, end); return;
      case PRIORITY: this.#onPriority(id, start, end); return;
      case PUSH_PROMISE: this.#connectionError(PROTOCOL_ERROR, 'PUSH_PROMISE (push is disabled)'); return;
      default: return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  /** An id the peer has not used yet (the stream is idle): frames other than HEADERS on it are connection errors. */
  #idle(id: number): boolean {
    if ((id & 1) === (this.#server ? 1 : 0)) return id > this.#lastPeerId;
    return id >= this.#nextLocalId;
  }

  #onData(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id === 0) {
      this.#connectionError(PROTOCOL_ERROR, 'DATA on stream 0');
      return;
    }
    const flow = end - start;
    let e = end;
    let s0 = start;
    if ((flags & FLAG_PADDED) !== 0) {
      if (flow < 1) {
        this.#connectionError(FRAME_SIZE_ERROR, 'padded DATA without its pad length');
        return;
      }
      const pad = buf[start] as number;
      s0 = start + 1;
      if (pad > e - s0) {
        this.#connectionError(PROTOCOL_ERROR, 'DATA padding longer than the frame');
        return;
      }
      e -= pad;
    }
    this.#recvWindow -= flow;
    if (this.#recvWindow < 0) {
      this.#connectionError(FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
      return;
    }
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    if (e === s0 && !endStream) {
      if (++this.#emptyData > EMPTY_DATA_LIMIT) {
        this.#connectionError(ENHANCE_YOUR_CALM, 'a flood of empty DATA frames');
        return;
      }
    } else {
      this.#emptyData = 0;
    }
    const s = this.#streams.get(id);
    if (s === undefined || s.remoteEnded) {
      if (this.#idle(id)) {
        this.#connectionError(PROTOCOL_ERROR, 'DATA on an idle stream');
        return;
      }
      // A stream closed or reset: its window is given back (frames in flight when we reset it are not errors).
      this.#ackConnection(flow);
      if (s !== undefined) this.#streamError(s, STREAM_CLOSED);
      return;
    }
    s.recvWindow -= flow;
    if (s.recvWindow < 0) {
      this.#ackConnection(flow);
      this.#streamError(s, FLOW_CONTROL_ERROR);
      return;
    }
    // Padding is acknowledged at once; the payload when it is delivered.
    const padding = flow - (e - s0);
    if (padding > 0) {
      this.#ackConnection(padding);
      s.recvWindow += padding;
      if (!endStream) this.#queue(u32Frame(WINDOW_UPDATE, id, padding));
    }
    s.receiveData(e - s0 === flow ? (start === 0 && end === buf.length ? buf : buf.subarray(s0, e)) : buf.subarray(s0, e), endStream);
  }

  #ackConnection(n: number): void {
    this.#connUnacked += n;
    if (this.#connUnacked >= this.#opts.connectionWindow >>> 1) {
      this.#queue(u32Frame(WINDOW_UPDATE, 0, this.#connUnacked));
      this.#recvWindow += this.#connUnacked;
      this.#connUnacked = 0;
    }
  }

  #onHeaders(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id === 0) {
      this.#connectionError(PROTOCOL_ERROR, 'HEADERS on stream 0');
      return;
    }
    let s0 = start;
    let e = end;
    if ((flags & FLAG_PADDED) !== 0) {
      if (e - s0 < 1) {
        this.#connectionError(FRAME_SIZE_ERROR, 'padded HEADERS without its pad length');
        return;
      }
      const pad = buf[s0] as number;
      s0++;
      if (pad > e - s0) {
        this.#connectionError(PROTOCOL_ERROR, 'HEADERS padding longer than the frame');
        return;
      }
      e -= pad;
    }
    let selfDependent = false;
    if ((flags & FLAG_PRIORITY) !== 0) {
      if (e - s0 < 5) {
        this.#connectionError(FRAME_SIZE_ERROR, 'HEADERS too short for its priority');
        return;
      }
      selfDependent = (buf.readUInt32BE(s0) & MAX_STREAM_ID) === id;
      s0 += 5;
    }
    const fragment = buf.subarray(s0, e);
    if ((flags & FLAG_END_HEADERS) === 0) {
      this.#block = { id, flags: selfDependent ? flags | 0x100 : flags, chunks: [fragment], size: fragment.length };
      return;
    }
    this.#onHeaderBlock(id, flags | (selfDependent ? 0x100 : 0), fragment);
  }

  #onContinuation(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    const b = this.#block;
    if (b === undefined || b.id !== id) {
      this.#connectionError(PROTOCOL_ERROR, 'CONTINUATION without its HEADERS');
      return;
    }
    b.size += end - start;
    if (b.size > 4 * this.#opts.maxHeaderListSize) {
      this.#connectionError(ENHANCE_YOUR_CALM, 'a header block far above the header list limit');
      return;
    }
    b.chunks.push(buf.subarray(start, end));
    if ((flags & FLAG_END_HEADERS) === 0) return;
    this.#block = undefined;
    this.#onHeaderBlock(id, b.flags, Buffer.concat(b.chunks, b.size));
  }

  #onHeaderBlock(id: number, flags: number, block: Buffer): void {
    const fields: string[] = [];
    let size: number;
    try {
      size = this.#decoder.decode(block, 0, block.length, fields, this.#opts.maxHeaderListSize);
    } catch {
      this.#connectionError(COMPRESSION_ERROR, 'the header block cannot be decoded');
      return;
    }
    const tooLarge = size > this.#opts.maxHeaderListSize;
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    const s = this.#streams.get(id);
    if (s !== undefined) {
      if ((flags & 0x100) !== 0) {
        this.#streamError(s, PROTOCOL_ERROR);
        return;
      }
      if (s.remoteEnded) {
        this.#streamError(s, STREAM_CLOSED);
        return;
      }
      s.receiveHeaders(fields, endStream, tooLarge);
      return;
    }
    if (!this.#server || (id & 1) === 0) {
      // Client side: a HEADERS for a stream we did not open (or a closed one), or a server-side even id.
      if (this.#idle(id) || (id & 1) === 0) this.#connectionError(PROTOCOL_ERROR, 'HEADERS on a stream the peer may not open');
      return;
    }
    if (id <= this.#lastPeerId) {
      // A stream that is closed already (we reset it; frames in flight): ignored.
      return;
    }
    this.#lastPeerId = id;
    if (this.#goawaySent) return; // above our GOAWAY's last stream: never processed (the client may retry it)
    if ((flags & 0x100) !== 0) {
      this.#sendReset(id, PROTOCOL_ERROR, true);
      return;
    }
    if (this.#activePeer >= this.#opts.maxConcurrentStreams) {
      this.#sendReset(id, REFUSED_STREAM, true);
      return;
    }
    const stream = new H2Stream(this, id, this.#peerInitialWindow, this.#opts.streamWindow, true);
    this.#streams.set(id, stream);
    this.#activePeer++;
    this.#peerOpened++;
    if (endStream) stream.remoteEnded = true;
    this.#owner.onStream(stream, fields, endStream, tooLarge);
  }

  #onRstStream(id: number, buf: Buffer, start: number, end: number): void {
    if (end - start !== 4) {
      this.#connectionError(FRAME_SIZE_ERROR, 'RST_STREAM of the wrong length');
      return;
    }
    if (id === 0 || this.#idle(id)) {
      this.#connectionError(PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
      return;
    }
    const s = this.#streams.get(id);
    if (s === undefined) return;
    const code = buf.readUInt32BE(start);
    if (this.#server && this.#tooManyResets()) return;
    this.#close(s);
    s.peerReset(code, false);
  }

  #onSettings(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id !== 0) {
      this.#connectionError(PROTOCOL_ERROR, 'SETTINGS on a stream');
      return;
    }
    const len = end - start;
    if ((flags & FLAG_ACK) !== 0) {
      if (len !== 0) this.#connectionError(FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (len % 6 !== 0) {
      this.#connectionError(FRAME_SIZE_ERROR, 'SETTINGS of the wrong length');
      return;
    }
    this.#gotSettings = true;
    for (let at = start; at < end; at += 6) {
      const key = buf.readUInt16BE(at);
      const value = buf.readUInt32BE(at + 2);
      switch (key) {
        case SETTINGS_ENABLE_PUSH:
          if (value > 1) {
            this.#connectionError(PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH above 1');
            return;
          }
          break;
        case SETTINGS_MAX_CONCURRENT_STREAMS:
          this.#peerMaxStreams = value;
          break;
        case SETTINGS_INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) {
            this.#connectionError(FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1');
            return;
          }
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          for (const s of this.#streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) {
              this.#connectionError(FLOW_CONTROL_ERROR, 'a stream window above 2^31-1');
              return;
            }
          }
          break;
        }
        case SETTINGS_MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_FRAME_SIZE_LIMIT) {
            this.#connectionError(PROTOCOL_ERROR, 'SETTINGS_MAX_FRAME_SIZE out of range');
            return;
          }
          this.#peerMaxFrameSize = value;
          break;
        case SETTINGS_HEADER_TABLE_SIZE:
        case SETTINGS_MAX_HEADER_LIST_SIZE:
        default:
          // Our encoder never indexes (any table size suits it); the header list size is the peer's to enforce.
          break;
      }
    }
    this.#control(emptyFrame(SETTINGS, FLAG_ACK, 0));
    this.#flushBlocked();
    this.#owner.onSettings();
  }

  #onPing(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (end - start !== 8) {
      this.#connectionError(FRAME_SIZE_ERROR, 'PING of the wrong length');
      return;
    }
    if (id !== 0) {
      this.#connectionError(PROTOCOL_ERROR, 'PING on a stream');
      return;
    }
    if ((flags & FLAG_ACK) !== 0) return;
    const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 8);
    writeFrameHeader(b, 0, 8, PING, FLAG_ACK, 0);
    buf.copy(b, FRAME_HEADER_BYTES, start, end);
    this.#control(b);
  }

  /** A control frame answering the peer: counted while the socket does not drain (a peer that sends and never reads). */
  #control(b: Buffer): void {
    if (this.congested && ++this.#controlWhileCongested > CONTROL_WHILE_CONGESTED_LIMIT) {
      this.#connectionError(ENHANCE_YOUR_CALM, 'control frames keep coming while our answers are not read');
      return;
    }
    this.#queue(b);
  }

  #onGoaway(id: number, buf: Buffer, start: number, end: number): void {
    if (id !== 0) {
      this.#connectionError(PROTOCOL_ERROR, 'GOAWAY on a stream');
      return;
    }
    if (end - start < 8) {
      this.#connectionError(FRAME_SIZE_ERROR, 'GOAWAY too short');
      return;
    }
    const last = buf.readUInt32BE(start) & MAX_STREAM_ID;
    const code = buf.readUInt32BE(start + 4);
    this.#goawayReceived = true;
    if (code !== NO_ERROR) {
      // The peer gave up on the connection (RFC 9113 §6.8: an error GOAWAY precedes closing it): whatever is still open
      // on it fails now instead of waiting for a close the peer may never send.
      this.#closeCode = code;
      this.#owner.onGoaway(last, code);
      this.#finish();
      return;
    }
    if (!this.#server) {
      // Streams we opened above its last stream id were never processed: refused, safe to send again.
      for (const s of [...this.#streams.values()]) {
        if (s.id > last) {
          this.#close(s);
          s.peerReset(REFUSED_STREAM, true);
        }
      }
    }
    this.#owner.onGoaway(last, code);
    if (this.#streams.size === 0) this.#finish();
  }

  #onWindowUpdate(id: number, buf: Buffer, start: number, end: number): void {
    if (end - start !== 4) {
      this.#connectionError(FRAME_SIZE_ERROR, 'WINDOW_UPDATE of the wrong length');
      return;
    }
    const inc = buf.readUInt32BE(start) & MAX_WINDOW;
    if (id === 0) {
      if (inc === 0) {
        this.#connectionError(PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
        return;
      }
      this.#sendWindow += inc;
      if (this.#sendWindow > MAX_WINDOW) {
        this.#connectionError(FLOW_CONTROL_ERROR, 'the connection window above 2^31-1');
        return;
      }
      this.#flushBlocked();
      return;
    }
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (this.#idle(id)) this.#connectionError(PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
      return;
    }
    if (inc === 0) {
      this.#streamError(s, PROTOCOL_ERROR);
      return;
    }
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) {
      this.#streamError(s, FLOW_CONTROL_ERROR);
      return;
    }
    if (this.#blocked.has(s) && this.#sendWindow > 0 && s.flushQueue()) {
      this.#blocked.delete(s);
      if (this.congested) this.#drainWaiters.add(s);
      else s.drained();
    }
  }

  #onPriority(id: number, start: number, end: number): void {
    if (id === 0) {
      this.#connectionError(PROTOCOL_ERROR, 'PRIORITY on stream 0');
      return;
    }
    if (end - start !== 5) {
      // A stream error (RFC 9113 §6.3), but RST_STREAM may not be sent on an idle stream (§6.4): there, as nghttp2
      // does, a connection error; on a closed stream, nothing.
      const s = this.#streams.get(id);
      if (s !== undefined) this.#streamError(s, FRAME_SIZE_ERROR);
      else if (this.#idle(id)) this.#connectionError(FRAME_SIZE_ERROR, 'PRIORITY of the wrong length');
    }
    // Priorities are not used (RFC 9113 §5.3.2 deprecates the scheme).
  }

  /** A stream error: RST_STREAM with `code`; the stream's handler hears onReset. */
  #streamError(s: H2Stream, code: number): void {
    const h = s.handler;
    s.reset(code, true);
    h.onReset(code, false);
  }

  /** A connection error: GOAWAY with `code`, then close (the streams hear onReset(code)). */
  #connectionError(code: number, reason: string): void {
    if (this.#dead) return;
    this.#queue(goawayFrame(this.#lastPeerId, code));
    this.#closeCode = code;
    this.#owner.onError(reason, code);
    this.#finish();
  }

  /** Write what is queued, send FIN and stop reading; the socket is destroyed once the peer closes (or soon after). */
  #finish(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#flush();
    const sock = this.socket;
    if (sock.destroyed) return;
    sock.end();
    const t = setTimeout(() => sock.destroy(), CLOSE_LINGER_MS);
    t.unref();
    sock.once('close', () => clearTimeout(t));
    this.#failAll(this.#closeCode === INTERNAL_ERROR && this.#goawaySent ? NO_ERROR : this.#closeCode);
  }

  #failAll(code: number): void {
    if (this.#streams.size === 0) return;
    const streams = [...this.#streams.values()];
    for (const s of streams) {
      this.#close(s);
      s.peerReset(code, false);
    }
  }

  readonly #onSocketEnd = (): void => {
    // No half-close in HTTP/2: the peer's FIN ends the connection.
    this.socket.destroy();
  };

  readonly #onSocketClose = (): void => {
    this.#dead = true;
    this.#pending = undefined;
    this.#out = [];
    this.#failAll(this.#closeCode);
    this.#blocked.clear();
    this.#drainWaiters.clear();
    this.#owner.onClose();
  };
}
