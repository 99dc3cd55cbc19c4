// remora's own HTTP/2 codec (src/l7/h2/, http2_codec = remora) on the wire: raw frames written to the engine over
// loopback sockets, and the frames that come back parsed and checked field by field (frame type, error code, stream
// id, decoded :status), never log text.
//
// The frame client below speaks just enough HTTP/2 to drive the server side of the codec: it writes the client
// preface, SETTINGS and whatever frames a case needs (valid, malformed or random), and parses the server's output
// into frames, decoding header blocks (HEADERS + CONTINUATION) with one HpackDecoder per connection. Every wait is on
// the connection's state (a frame arrived, the socket closed) and bounded in time; no test sleeps.
//
// Backends: a node:http2 h2c server (the passthrough pool speaks HTTP/2 upstream to an HTTP/2 downstream, see
// src/l7/router/exchange.ts), an HTTP/1.1 server behind a routed service for the h2 -> h1 translation, and a TCP
// "sink" that accepts and never reads (an upstream that holds a request body). A plain node:http2 server (200 "ok" to
// every stream) is the reference of the differential case.
//
// A test marked `todo` shows a bug in src/ (its todo text says which): it runs, and its failure is reported without
// failing the suite; once the bug is fixed it passes and the mark can go.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import {
  CANCEL, CLIENT_PREFACE, COMPRESSION_ERROR, CONTINUATION, DATA, ENHANCE_YOUR_CALM, FLAG_ACK, FLAG_END_HEADERS,
  FLAG_END_STREAM, FLAG_PRIORITY, FLOW_CONTROL_ERROR, FRAME_HEADER_BYTES, FRAME_SIZE_ERROR, GOAWAY, HEADERS, NO_ERROR,
  PING, PRIORITY, PROTOCOL_ERROR, PUSH_PROMISE, REFUSED_STREAM, RST_STREAM, SETTINGS, SETTINGS_ENABLE_PUSH,
  SETTINGS_HEADER_TABLE_SIZE, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_MAX_FRAME_SIZE,
  SETTINGS_MAX_HEADER_LIST_SIZE, WINDOW_UPDATE,
} from '../../../src/l7/h2/frame.js';
import { HpackDecoder, HpackEncoder } from '../../../src/l7/h2/hpack.js';
import type { RouteDecision } from '../../../src/l7/request-types.js';
import { fakeCluster, listen, PASSTHROUGH_DECISION, rawExchange, startProxy, waitFor, type ProxyUnderTest } from './harness.js';
import { seededRandom } from '../../unit/helpers/seeded-random.js';

const WAIT_MS = 5_000;
const MAX_ID = 0x7fffffff;
const KiB = 1024;

const CODE_NAMES: Record<number, string> = {
  0: 'NO_ERROR', 1: 'PROTOCOL_ERROR', 2: 'INTERNAL_ERROR', 3: 'FLOW_CONTROL_ERROR', 4: 'SETTINGS_TIMEOUT',
  5: 'STREAM_CLOSED', 6: 'FRAME_SIZE_ERROR', 7: 'REFUSED_STREAM', 8: 'CANCEL', 9: 'COMPRESSION_ERROR',
  10: 'CONNECT_ERROR', 11: 'ENHANCE_YOUR_CALM', 12: 'INADEQUATE_SECURITY', 13: 'HTTP_1_1_REQUIRED',
};
const TYPE_NAMES: Record<number, string> = {
  0: 'DATA', 1: 'HEADERS', 2: 'PRIORITY', 3: 'RST_STREAM', 4: 'SETTINGS', 5: 'PUSH_PROMISE', 6: 'PING', 7: 'GOAWAY',
  8: 'WINDOW_UPDATE', 9: 'CONTINUATION',
};
const codeName = (c: number): string => CODE_NAMES[c] ?? `0x${c.toString(16)}`;

// ---------------------------------------------------------------------------------------------------------------
// Frames

/** A frame as it came off the wire. */
interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
  /** HEADERS: the decoded header block (with its CONTINUATIONs), set once END_HEADERS arrived. */
  fields?: string[];
}

/**
 * One frame's bytes, written by hand so that a case can lie: `length` other than the payload's, the reserved bit of
 * the stream id set, any type and flags.
 */
function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0), length = payload.length): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_BYTES + payload.length);
  b[0] = (length >>> 16) & 0xff;
  b[1] = (length >>> 8) & 0xff;
  b[2] = length & 0xff;
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(streamId >>> 0, 5);
  payload.copy(b, FRAME_HEADER_BYTES);
  return b;
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b;
}

function settingsPayload(pairs: readonly number[]): Buffer {
  const b = Buffer.alloc(3 * pairs.length);
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    b.writeUInt16BE(pairs[i] as number, 3 * i);
    b.writeUInt32BE((pairs[i + 1] as number) >>> 0, 3 * i + 2);
  }
  return b;
}

const settingsFrame = (pairs: readonly number[]): Buffer => frame(SETTINGS, 0, 0, settingsPayload(pairs));
const pingFrame = (payload: Buffer, flags = 0): Buffer => frame(PING, flags, 0, payload);
const windowUpdate = (streamId: number, increment: number): Buffer => frame(WINDOW_UPDATE, 0, streamId, u32(increment));
const rstStream = (streamId: number, code: number): Buffer => frame(RST_STREAM, 0, streamId, u32(code));
const dataFrame = (streamId: number, payload: Buffer, endStream = false): Buffer =>
  frame(DATA, endStream ? FLAG_END_STREAM : 0, streamId, payload);

/** A request head for `path` (pseudo-headers first, as RFC 9113 §8.3 wants), then `extra` fields. */
function requestFields(path: string, method = 'GET', extra: readonly string[] = []): string[] {
  return [':method', method, ':scheme', 'http', ':authority', 'localhost', ':path', path, ...extra];
}

/** A header block split into HEADERS + CONTINUATION frames of at most `maxFrame` bytes. */
function headerFrames(streamId: number, block: Buffer, endStream: boolean, maxFrame = 16_384): Buffer {
  const out: Buffer[] = [];
  for (let at = 0, first = true; first || at < block.length; at += maxFrame, first = false) {
    const part = block.subarray(at, Math.min(block.length, at + maxFrame));
    const last = at + maxFrame >= block.length;
    const flags = (first && endStream ? FLAG_END_STREAM : 0) | (last ? FLAG_END_HEADERS : 0);
    out.push(frame(first ? HEADERS : CONTINUATION, flags, streamId, part));
  }
  return Buffer.concat(out);
}

/** What the client knows of one stream from the server's frames. */
interface StreamState {
  status: number | undefined;
  fields: string[] | undefined;
  trailers: string[] | undefined;
  readonly body: Buffer[];
  bodyBytes: number;
  dataFrames: number;
  ended: boolean;
  rst: number | undefined;
  /** Sum of the server's WINDOW_UPDATE increments for this stream. */
  windowUpdates: number;
}

interface ConnectOptions {
  /** Replaces the client preface (bytes written first). */
  readonly preface?: Buffer;
  /** Our SETTINGS pairs; null: no SETTINGS frame after the preface. */
  readonly settings?: readonly number[] | null;
  /** Wait for the server's SETTINGS before resolving (default true). */
  readonly waitSettings?: boolean;
  /** Keep at most this many frames in `frames` (floods: the state is still tracked, and `counts`). */
  readonly keepFrames?: number;
}

/** Every frame client a test opens, destroyed after each test whatever its outcome. */
const openClients = new Set<WireClient>();

/**
 * A raw HTTP/2 client connection: writes frames, parses what comes back, and waits on it. The server's frames are
 * also checked for what a client would reject (an HPACK block it cannot decode, a frame above 16 KiB): those are
 * collected in `wireErrors`, which tests assert empty.
 */
class WireClient {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  /** Frames received, by type (all of them, kept or not). */
  readonly counts = new Map<number, number>();
  readonly wireErrors: string[] = [];
  keepFrames = Infinity;
  readonly encoder = new HpackEncoder();
  readonly #decoder = new HpackDecoder();
  readonly #streams = new Map<number, StreamState>();
  readonly #listeners = new Set<() => void>();
  #input: Buffer = Buffer.alloc(0);
  #block: { frame: Frame; chunks: Buffer[] } | undefined;
  closed = false;
  /** The server's first (non-ACK) SETTINGS, as a map. */
  serverSettings: Map<number, number> | undefined;
  settingsAcks = 0;
  goaway: { lastStreamId: number; code: number } | undefined;
  /** Connection-level WINDOW_UPDATE increments from the server, in order. */
  readonly connectionWindowUpdates: number[] = [];
  #pingSeq = 0;
  // Our send windows (what the server allows us), for uploads that respect flow control.
  #connSent = 0;
  readonly #streamSent = new Map<number, number>();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('close', () => {
      this.closed = true;
      this.#notify();
    });
  }

  static async connect(port: number, o: ConnectOptions = {}): Promise<WireClient> {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const c = new WireClient(socket);
    c.keepFrames = o.keepFrames ?? Infinity;
    openClients.add(c);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const settings = o.settings === undefined ? [] : o.settings;
    const first = [o.preface ?? CLIENT_PREFACE];
    if (settings !== null) first.push(settingsFrame(settings));
    c.send(...first);
    if (o.waitSettings ?? true) await c.until(() => c.serverSettings, "the server's SETTINGS");
    return c;
  }

  send(...bufs: Buffer[]): void {
    if (this.socket.destroyed) return;
    this.socket.write(bufs.length === 1 ? (bufs[0] as Buffer) : Buffer.concat(bufs));
  }

  /** HEADERS (+ CONTINUATION) with `fields` encoded by this connection's encoder. */
  request(streamId: number, fields: readonly string[], endStream = true): void {
    this.send(this.requestBytes(streamId, fields, endStream));
  }

  requestBytes(streamId: number, fields: readonly string[], endStream = true): Buffer {
    return headerFrames(streamId, this.encoder.encode(fields), endStream);
  }

  get(streamId: number, path: string, extra: readonly string[] = []): void {
    this.request(streamId, requestFields(path, 'GET', extra), true);
  }

  destroy(): void {
    this.socket.destroy();
    openClients.delete(this);
  }

  stream(id: number): StreamState {
    let s = this.#streams.get(id);
    if (s === undefined) {
      s = {
        status: undefined, fields: undefined, trailers: undefined, body: [], bodyBytes: 0, dataFrames: 0, ended: false,
        rst: undefined, windowUpdates: 0,
      };
      this.#streams.set(id, s);
    }
    return s;
  }

  /** Resolves with check()'s value once it is defined; rejects after timeoutMs, or when the socket closed first. */
  until<T>(check: () => T | undefined, what: string, timeoutMs = WAIT_MS, closeIsFailure = true): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const listener = (): void => {
        const v = check();
        if (v !== undefined) {
          finish();
          resolve(v);
        } else if (this.closed && closeIsFailure) {
          finish();
          reject(new Error(`connection closed before ${what}; frames: ${this.describe()}`));
        }
      };
      const finish = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        this.#listeners.delete(listener);
      };
      this.#listeners.add(listener);
      timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; frames: ${this.describe()}`));
      }, timeoutMs);
      listener();
    });
  }

  waitForFrame(pred: (f: Frame) => boolean, what: string, timeoutMs = WAIT_MS): Promise<Frame> {
    return this.until(() => this.frames.find(pred), what, timeoutMs);
  }

  waitClosed(timeoutMs = WAIT_MS): Promise<true> {
    return this.until(() => (this.closed ? true : undefined), 'the socket to close', timeoutMs, false);
  }

  /** PING round trip: every frame the server sent before answering this PING has arrived when it resolves. */
  async pingRoundTrip(timeoutMs = WAIT_MS): Promise<void> {
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(0x52454d4f); // "REMO"
    payload.writeUInt32BE(++this.#pingSeq, 4);
    this.send(pingFrame(payload));
    await this.waitForFrame((f) => f.type === PING && (f.flags & FLAG_ACK) !== 0 && f.payload.equals(payload), 'PING ACK', timeoutMs);
  }

  /** The stream's response once it ended (END_STREAM) or was reset. */
  response(id: number, timeoutMs = WAIT_MS): Promise<StreamState> {
    return this.until(() => {
      const s = this.#streams.get(id);
      return s !== undefined && (s.ended || s.rst !== undefined) ? s : undefined;
    }, `the end of stream ${id}`, timeoutMs);
  }

  async expectOk(id: number, path: string, body?: string): Promise<StreamState> {
    this.get(id, path);
    const r = await this.response(id);
    assert.equal(r.rst, undefined, `stream ${id} reset with ${codeName(r.rst ?? 0)}`);
    assert.equal(r.status, 200);
    if (body !== undefined) assert.equal(Buffer.concat(r.body).toString(), body);
    return r;
  }

  async expectRst(id: number, code: number): Promise<void> {
    const s = await this.until(() => {
      const st = this.#streams.get(id);
      return st !== undefined && (st.rst !== undefined || st.ended) ? st : undefined;
    }, `RST_STREAM on stream ${id}`);
    assert.equal(s.ended, false, `stream ${id} got a complete response (:status ${s.status}) instead of RST_STREAM`);
    assert.equal(codeName(s.rst ?? -1), codeName(code), `RST_STREAM code of stream ${id}`);
  }

  /** GOAWAY with `code` and `lastStreamId`, then the server closes the socket. */
  async expectGoaway(code: number, lastStreamId: number): Promise<void> {
    const g = await this.until(() => this.goaway, 'GOAWAY');
    assert.equal(codeName(g.code), codeName(code), 'GOAWAY error code');
    assert.equal(g.lastStreamId, lastStreamId, 'GOAWAY last-stream-id');
    await this.waitClosed();
  }

  /** Bytes we may still send on `id` (and on the connection) per the server's SETTINGS and WINDOW_UPDATEs. */
  sendWindow(id: number): number {
    const initial = this.serverSettings?.get(SETTINGS_INITIAL_WINDOW_SIZE) ?? 65_535;
    const stream = initial + this.stream(id).windowUpdates - (this.#streamSent.get(id) ?? 0);
    const conn = 65_535 + this.connectionWindowUpdates.reduce((a, b) => a + b, 0) - this.#connSent;
    return Math.min(stream, conn);
  }

  /** DATA on `id`, counted against our send windows (the caller decides whether to respect them). */
  sendData(id: number, payload: Buffer, endStream = false): void {
    this.#streamSent.set(id, (this.#streamSent.get(id) ?? 0) + payload.length);
    this.#connSent += payload.length;
    this.send(dataFrame(id, payload, endStream));
  }

  /** Upload `total` bytes on `id` within the server's windows, waiting for its WINDOW_UPDATEs as needed. */
  async upload(id: number, total: number, endStream: boolean): Promise<void> {
    let sent = 0;
    while (sent < total) {
      const room = await this.until(() => {
        const w = this.sendWindow(id);
        return w > 0 ? w : undefined;
      }, `window to send on stream ${id} (${sent} of ${total} sent)`);
      const n = Math.min(room, 16_384, total - sent);
      sent += n;
      this.sendData(id, Buffer.alloc(n, 0x75), endStream && sent === total);
    }
  }

  describe(): string {
    const parts = this.frames.slice(-12).map((f) => {
      let s = `${TYPE_NAMES[f.type] ?? f.type}(${f.streamId}, flags=0x${f.flags.toString(16)}, len=${f.payload.length}`;
      if (f.type === RST_STREAM && f.payload.length === 4) s += `, ${codeName(f.payload.readUInt32BE(0))}`;
      if (f.type === GOAWAY && f.payload.length >= 8) s += `, last=${f.payload.readUInt32BE(0)}, ${codeName(f.payload.readUInt32BE(4))}`;
      if (f.fields !== undefined) s += `, ${JSON.stringify(f.fields.slice(0, 4))}`;
      return `${s})`;
    });
    return `${this.frames.length} frames, last: [${parts.join(' ')}]${this.closed ? ' closed' : ''}`;
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l();
  }

  #onData(d: Buffer): void {
    this.#input = this.#input.length === 0 ? d : Buffer.concat([this.#input, d]);
    let off = 0;
    const buf = this.#input;
    while (buf.length - off >= FRAME_HEADER_BYTES) {
      const len = (buf[off] as number) << 16 | (buf[off + 1] as number) << 8 | (buf[off + 2] as number);
      if (buf.length - off - FRAME_HEADER_BYTES < len) break;
      const f: Frame = {
        type: buf[off + 3] as number,
        flags: buf[off + 4] as number,
        streamId: buf.readUInt32BE(off + 5) & MAX_ID,
        payload: Buffer.from(buf.subarray(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + len)),
      };
      off += FRAME_HEADER_BYTES + len;
      if (len > 16_384) this.wireErrors.push(`${TYPE_NAMES[f.type]} frame of ${len} bytes above our max frame size`);
      this.#onFrame(f);
    }
    this.#input = off === buf.length ? Buffer.alloc(0) : buf.subarray(off);
    this.#notify();
  }

  #onFrame(f: Frame): void {
    if (this.frames.length < this.keepFrames || f.type === GOAWAY) this.frames.push(f);
    this.counts.set(f.type, (this.counts.get(f.type) ?? 0) + 1);
    switch (f.type) {
      case HEADERS: {
        if (this.#block !== undefined) this.wireErrors.push('HEADERS inside a header block');
        // Our SETTINGS never ask for padding or priority, but the server may send them: strip both.
        let p = f.payload;
        if ((f.flags & 0x8) !== 0) p = p.subarray(1, p.length - (p[0] as number));
        if ((f.flags & FLAG_PRIORITY) !== 0) p = p.subarray(5);
        this.#block = { frame: f, chunks: [p] };
        if ((f.flags & FLAG_END_HEADERS) !== 0) this.#endBlock();
        return;
      }
      case CONTINUATION:
        if (this.#block === undefined || this.#block.frame.streamId !== f.streamId) {
          this.wireErrors.push('CONTINUATION without its HEADERS');
          return;
        }
        this.#block.chunks.push(f.payload);
        if ((f.flags & FLAG_END_HEADERS) !== 0) this.#endBlock();
        return;
      case DATA: {
        const s = this.stream(f.streamId);
        s.body.push(f.payload);
        s.bodyBytes += f.payload.length;
        s.dataFrames++;
        if ((f.flags & FLAG_END_STREAM) !== 0) s.ended = true;
        return;
      }
      case RST_STREAM:
        this.stream(f.streamId).rst = f.payload.readUInt32BE(0);
        return;
      case SETTINGS:
        if ((f.flags & FLAG_ACK) !== 0) {
          this.settingsAcks++;
        } else if (this.serverSettings === undefined) {
          const m = new Map<number, number>();
          for (let at = 0; at + 6 <= f.payload.length; at += 6) m.set(f.payload.readUInt16BE(at), f.payload.readUInt32BE(at + 2));
          this.serverSettings = m;
        }
        return;
      case GOAWAY:
        this.goaway ??= { lastStreamId: f.payload.readUInt32BE(0) & MAX_ID, code: f.payload.readUInt32BE(4) };
        return;
      case WINDOW_UPDATE: {
        const inc = f.payload.readUInt32BE(0) & MAX_ID;
        if (f.streamId === 0) this.connectionWindowUpdates.push(inc);
        else this.stream(f.streamId).windowUpdates += inc;
        return;
      }
      default:
        return;
    }
  }

  #endBlock(): void {
    const b = this.#block;
    if (b === undefined) return;
    this.#block = undefined;
    const block = Buffer.concat(b.chunks);
    const fields: string[] = [];
    try {
      this.#decoder.decode(block, 0, block.length, fields, Infinity);
    } catch (err) {
      this.wireErrors.push(`undecodable header block on stream ${b.frame.streamId}: ${String(err)}`);
      return;
    }
    b.frame.fields = fields;
    const s = this.stream(b.frame.streamId);
    const status = fields[0] === ':status' ? Number(fields[1]) : undefined;
    if (status !== undefined) {
      if (status >= 200) {
        s.status = status;
        s.fields = fields;
      }
    } else {
      s.trailers = fields;
    }
    if ((b.frame.flags & FLAG_END_STREAM) !== 0) s.ended = true;
  }
}

/**
 * The class of what a sequence led to on `streamId`: "goaway <code>" when the server sent GOAWAY at all, else
 * "rst <code>" when it reset the stream, else "response <status>" when the stream ended, else "closed" (the socket
 * closed without any of them). It is decided once the connection settled: after the first decisive frame, a PING
 * round trip collects whatever the same input made the server send after it (a GOAWAY following a response).
 */
async function outcomeOf(c: WireClient, streamId: number, timeoutMs = WAIT_MS): Promise<string> {
  const decisive = (f: Frame): boolean =>
    f.type === GOAWAY ||
    (f.streamId === streamId && f.type === RST_STREAM) ||
    (f.streamId === streamId && (f.type === DATA || f.type === HEADERS) && (f.flags & FLAG_END_STREAM) !== 0);
  await c.until(() => (c.frames.some(decisive) || c.closed ? true : undefined), `an outcome on stream ${streamId}`, timeoutMs, false);
  if (!c.closed && c.goaway === undefined) await c.pingRoundTrip(timeoutMs).catch(() => undefined);
  if (c.goaway !== undefined) return `goaway ${codeName(c.goaway.code)}`;
  const s = c.stream(streamId);
  if (s.rst !== undefined) return `rst ${codeName(s.rst)}`;
  if (s.ended) return `response ${s.status ?? '?'}`;
  return 'closed';
}

// ---------------------------------------------------------------------------------------------------------------
// Backends

interface Backend {
  readonly port: number;
  /** Streams of /hold/<tag>... paths, unanswered until released. */
  readonly held: Map<string, Set<http2.ServerHttp2Stream>>;
  /** Streams of /hold/<tag>... paths ever opened by the proxy, by tag. */
  readonly heldTotal: Map<string, number>;
  /** /size/ streams that closed on the backend (its whole response went out), by path. */
  readonly finished: Map<string, number>;
  /** Bytes received so far on /upload/ paths. */
  readonly uploaded: Map<string, number>;
  release(tag: string): void;
  close(): Promise<void>;
}

/**
 * The node:http2 backend of the passthrough path:
 *   /hold/<tag>/...   never answered until release(tag)
 *   /size/<n>[/...]   200 with n bytes (byte i is i % 251)
 *   /upload/...       counts the body, answers 200 with the count
 *   /refuse/...       RST_STREAM REFUSED_STREAM
 *   anything else     reads the body, answers 200 "ok"
 */
async function startBackend(): Promise<Backend> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  const held = new Map<string, Set<http2.ServerHttp2Stream>>();
  const heldTotal = new Map<string, number>();
  const finished = new Map<string, number>();
  const uploaded = new Map<string, number>();
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on('error', () => {});
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    stream.on('error', () => {});
    const path = String(headers[':path']);
    const hold = /^\/hold\/([^/]+)/.exec(path);
    if (hold !== null) {
      const tag = hold[1] as string;
      let set = held.get(tag);
      if (set === undefined) held.set(tag, (set = new Set()));
      set.add(stream);
      heldTotal.set(tag, (heldTotal.get(tag) ?? 0) + 1);
      stream.once('close', () => set.delete(stream));
      stream.resume();
      return;
    }
    if (path.startsWith('/refuse/')) {
      // Never processed: the proxy may retry it once, then passes REFUSED_STREAM on to its client.
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const size = /^\/size\/(\d+)/.exec(path);
    if (size !== null) {
      const n = Number(size[1]);
      const body = Buffer.alloc(n);
      for (let i = 0; i < n; i++) body[i] = i % 251;
      stream.once('close', () => finished.set(path, (finished.get(path) ?? 0) + 1));
      stream.resume();
      stream.respond({ ':status': 200, 'content-length': String(n) });
      stream.end(body);
      return;
    }
    if (path.startsWith('/upload/')) {
      uploaded.set(path, 0);
      stream.on('data', (d: Buffer) => uploaded.set(path, (uploaded.get(path) ?? 0) + d.length));
      stream.on('end', () => {
        // Node also ends the readable side of a stream the proxy reset: nothing to answer then.
        if (stream.destroyed || stream.closed) return;
        stream.respond({ ':status': 200 });
        stream.end(String(uploaded.get(path)));
      });
      return;
    }
    stream.resume();
    stream.on('end', () => {
      if (stream.destroyed || stream.closed) return;
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
  });
  const port = await listen(server as unknown as net.Server);
  return {
    port,
    held,
    heldTotal,
    finished,
    uploaded,
    release(tag) {
      for (const s of held.get(tag) ?? []) {
        if (s.closed || s.destroyed) continue;
        s.respond({ ':status': 200 });
        s.end('released');
      }
    },
    async close() {
      for (const s of sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The reference of the differential case: node:http2 answering 200 "ok" to every stream. */
async function startNodeReference(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on('error', () => {});
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream: http2.ServerHttp2Stream) => {
    stream.on('error', () => {});
    stream.respond({ ':status': 200 });
    stream.end('ok');
  });
  const port = await listen(server as unknown as net.Server);
  return {
    port,
    async close() {
      for (const s of sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A TCP upstream that accepts and never reads nor answers: a request body sent to it is held by flow control. */
async function startSink(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true }, (s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  return {
    port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The payload of the PINGs a case sends (fixed: easy to recognise in a failure message). */
const PING_PAYLOAD = Buffer.from('01234567', 'latin1');

afterEach(() => {
  for (const c of [...openClients]) c.destroy();
});

// ---------------------------------------------------------------------------------------------------------------

describe('HTTP/2 codec on the wire (http2_codec = remora)', () => {
  let backend: Backend;
  let proxy: ProxyUnderTest;
  /** The same engine's HTTP/2 side without the sniffer: every connection handed over as HTTP/2 (the ALPN h2 path). */
  let direct: net.Server;
  let directPort = 0;
  const directSockets = new Set<net.Socket>();

  before(async () => {
    backend = await startBackend();
    proxy = await startProxy({ address: '127.0.0.1', port: backend.port });
    direct = net.createServer({ pauseOnConnect: true }, (socket) => {
      directSockets.add(socket);
      socket.once('close', () => directSockets.delete(socket));
      proxy.engine.handleConnection(socket, Buffer.alloc(0), {
        protocol: 'http2', originalDst: { address: '127.0.0.1', port: backend.port }, sourceAddress: '127.0.0.1',
      });
    });
    directPort = await listen(direct);
  });

  after(async () => {
    direct.close();
    for (const s of directSockets) s.destroy();
    await proxy.close();
    await backend.close();
  });

  // 1.
  test('a GET on stream 1 gets :status 200 and the backend body; a second request on stream 3 works too', async () => {
    const c = await WireClient.connect(proxy.port);
    await c.expectOk(1, '/first', 'ok');
    await c.expectOk(3, '/size/1000');
    const body = Buffer.concat(c.stream(3).body);
    assert.equal(body.length, 1000);
    assert.equal(body[250], 250);
    assert.equal(body[251], 0);
    assert.equal(c.goaway, undefined);
    assert.deepEqual(c.wireErrors, []);
  });

  // 2.
  test('PING is answered with PING ACK and the same payload; SETTINGS is acknowledged; the server SETTINGS', async () => {
    const c = await WireClient.connect(proxy.port, { settings: [SETTINGS_HEADER_TABLE_SIZE, 4096, SETTINGS_ENABLE_PUSH, 0] });
    // The server preface is a SETTINGS frame: the first frame on the wire.
    assert.equal(c.frames[0]?.type, SETTINGS);
    assert.equal((c.frames[0]?.flags ?? 0) & FLAG_ACK, 0);
    const settings = c.serverSettings as Map<number, number>;
    assert.equal(settings.get(SETTINGS_INITIAL_WINDOW_SIZE), 262_144);
    assert.equal(settings.get(SETTINGS_MAX_CONCURRENT_STREAMS), 1000);
    assert.equal(settings.get(SETTINGS_MAX_HEADER_LIST_SIZE), 64 * KiB);
    await c.until(() => (c.settingsAcks >= 1 ? true : undefined), 'SETTINGS ACK');
    c.send(pingFrame(PING_PAYLOAD));
    const ack = await c.waitForFrame((f) => f.type === PING, 'PING ACK');
    assert.equal(ack.flags, FLAG_ACK);
    assert.equal(ack.streamId, 0);
    assert.deepEqual(ack.payload, PING_PAYLOAD);
    // The connection receive window is raised to 1 MiB right after the SETTINGS.
    assert.deepEqual(c.connectionWindowUpdates, [1024 * KiB - 65_535]);
    // A PING ACK from the client is not answered (no loop): the next answer is for the next PING.
    c.send(pingFrame(Buffer.from('ackackac'), FLAG_ACK));
    await c.pingRoundTrip();
    assert.equal(c.frames.filter((f) => f.type === PING).length, 2);
    assert.equal(c.goaway, undefined);
  });

  test('SETTINGS_HEADER_TABLE_SIZE 0: the next response head starts with a dynamic table size update (RFC 7541 §4.2)', async () => {
    const c = await WireClient.connect(proxy.port, { settings: [SETTINGS_HEADER_TABLE_SIZE, 0] });
    await c.until(() => (c.settingsAcks >= 1 ? true : undefined), 'SETTINGS ACK');
    c.get(1, '/table-size-0');
    const h = await c.waitForFrame((f) => f.type === HEADERS && f.streamId === 1, 'the response HEADERS');
    const first = h.payload[0] ?? 0;
    // 001xxxxx: a dynamic table size update; its 5-bit prefix value must be within the new limit (0).
    assert.equal(first & 0xe0, 0x20, `the block starts with 0x${first.toString(16)}, not a dynamic table size update`);
    assert.equal(first, 0x20);
  });

  test('a node:http2 (nghttp2) client with headerTableSize 0 gets its response', async () => {
    const client = http2.connect(`http://127.0.0.1:${proxy.port}`, { settings: { headerTableSize: 0 } });
    client.on('error', () => {});
    try {
      const status = await new Promise<number | string>((resolve) => {
        const req = client.request({ ':path': '/nghttp2-table-size-0' });
        const timer = setTimeout(() => resolve('no response within 3 s'), 3_000);
        req.on('response', (h) => {
          clearTimeout(timer);
          resolve(Number(h[':status']));
        });
        req.on('error', () => {});
        req.on('close', () => {
          clearTimeout(timer);
          resolve(`closed, rst ${req.rstCode}`);
        });
        req.resume();
      });
      assert.equal(status, 200);
    } finally {
      client.destroy();
    }
  });

  // 3. Connection errors.
  describe('connection errors: GOAWAY with the code and last-stream-id, then the socket closes', () => {
    test('bad preface through the sniffer: not HTTP/2, the HTTP/1.1 engine answers it with an error and closes', async () => {
      const r = await rawExchange(proxy.port, 'PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n', 3_000);
      assert.match(r.text, /^HTTP\/1\.1 [45]\d\d /);
      assert.ok(r.closed, 'closed');
    });

    test('bad preface handed over as HTTP/2 (no sniffer, as after ALPN h2): SETTINGS, then GOAWAY PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(directPort, { preface: Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'), settings: null, waitSettings: false });
      await c.expectGoaway(PROTOCOL_ERROR, 0);
      // The preface that must come from the server anyway (RFC 9113 §3.4) precedes the GOAWAY.
      assert.equal(c.frames[0]?.type, SETTINGS);
    });

    test('the valid preface handed over as HTTP/2 without the sniffer works', async () => {
      const c = await WireClient.connect(directPort);
      await c.expectOk(1, '/direct', 'ok');
    });

    test('first frame not SETTINGS: PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port, { settings: null });
      c.send(pingFrame(PING_PAYLOAD));
      await c.expectGoaway(PROTOCOL_ERROR, 0);
      assert.equal(c.frames.some((f) => f.type === PING), false, 'no PING ACK');
    });

    test('a frame above 16384 bytes (our SETTINGS_MAX_FRAME_SIZE): FRAME_SIZE_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      await c.expectOk(1, '/', 'ok');
      c.request(3, requestFields('/post', 'POST'), false);
      c.send(dataFrame(3, Buffer.alloc(16_385, 0x61)));
      await c.expectGoaway(FRAME_SIZE_ERROR, 3);
    });

    test('undecodable HPACK (indexed field 0): COMPRESSION_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.send(frame(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, 1, Buffer.from([0x80])));
      await c.expectGoaway(COMPRESSION_ERROR, 0);
    });

    test('DATA on an idle stream: PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      await c.expectOk(1, '/', 'ok');
      c.send(dataFrame(5, Buffer.from('x')));
      await c.expectGoaway(PROTOCOL_ERROR, 1);
    });

    test('HEADERS with an even stream id: PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.get(2, '/');
      await c.expectGoaway(PROTOCOL_ERROR, 0);
    });

    test('CONTINUATION without HEADERS: PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.send(frame(CONTINUATION, FLAG_END_HEADERS, 1, c.encoder.encode(requestFields('/'))));
      await c.expectGoaway(PROTOCOL_ERROR, 0);
    });

    test('a frame inside a header block (PING between HEADERS and CONTINUATION): PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      const block = c.encoder.encode(requestFields('/'));
      c.send(
        frame(HEADERS, FLAG_END_STREAM, 1, block.subarray(0, 4)),
        pingFrame(PING_PAYLOAD),
        frame(CONTINUATION, FLAG_END_HEADERS, 1, block.subarray(4)),
      );
      await c.expectGoaway(PROTOCOL_ERROR, 0);
      assert.equal(c.frames.some((f) => f.type === PING), false);
    });

    test('a CONTINUATION of another stream inside a header block: PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      const block = c.encoder.encode(requestFields('/'));
      c.send(frame(HEADERS, FLAG_END_STREAM, 1, block.subarray(0, 4)), frame(CONTINUATION, FLAG_END_HEADERS, 3, block.subarray(4)));
      await c.expectGoaway(PROTOCOL_ERROR, 0);
    });

    test('padded HEADERS whose pad length exceeds the frame: PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      const block = c.encoder.encode(requestFields('/'));
      c.send(frame(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM | 0x8, 1, Buffer.concat([Buffer.from([block.length + 1]), block])));
      await c.expectGoaway(PROTOCOL_ERROR, 0);
    });

    test('padded DATA whose pad length exceeds the frame: PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.request(1, requestFields('/hold/pad/', 'POST'), false);
      c.send(frame(DATA, 0x8, 1, Buffer.from([3, 0x61, 0x62])));
      await c.expectGoaway(PROTOCOL_ERROR, 1);
    });

    test('padded DATA within its frame is delivered without the padding', async () => {
      const c = await WireClient.connect(proxy.port);
      c.request(1, requestFields('/upload/padded', 'POST'), false);
      c.send(frame(DATA, 0x8 | FLAG_END_STREAM, 1, Buffer.concat([Buffer.from([4]), Buffer.from('abc'), Buffer.alloc(4)])));
      const r = await c.response(1);
      assert.equal(r.status, 200);
      assert.equal(Buffer.concat(r.body).toString(), '3');
    });

    test('WINDOW_UPDATE of 0 on stream 0: PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.send(windowUpdate(0, 0));
      await c.expectGoaway(PROTOCOL_ERROR, 0);
    });

    test('connection send window overflow (WINDOW_UPDATE 2^31-1 twice on stream 0): FLOW_CONTROL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.send(windowUpdate(0, MAX_ID), windowUpdate(0, MAX_ID));
      await c.expectGoaway(FLOW_CONTROL_ERROR, 0);
    });

    test('connection send window to exactly 2^31-1 is fine; one more byte overflows: FLOW_CONTROL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.send(windowUpdate(0, MAX_ID - 65_535));
      await c.pingRoundTrip();
      assert.equal(c.goaway, undefined);
      c.send(windowUpdate(0, 1));
      await c.expectGoaway(FLOW_CONTROL_ERROR, 0);
    });

    test('SETTINGS_ENABLE_PUSH = 2: PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.send(settingsFrame([SETTINGS_ENABLE_PUSH, 2]));
      await c.expectGoaway(PROTOCOL_ERROR, 0);
    });

    test('SETTINGS_INITIAL_WINDOW_SIZE = 2^31: FLOW_CONTROL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.send(settingsFrame([SETTINGS_INITIAL_WINDOW_SIZE, 2 ** 31]));
      await c.expectGoaway(FLOW_CONTROL_ERROR, 0);
    });

    test('SETTINGS_MAX_FRAME_SIZE below 16384: PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.send(settingsFrame([SETTINGS_MAX_FRAME_SIZE, 16_383]));
      await c.expectGoaway(PROTOCOL_ERROR, 0);
    });

    test('SETTINGS of a length not a multiple of 6: FRAME_SIZE_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.send(frame(SETTINGS, 0, 0, Buffer.alloc(5)));
      await c.expectGoaway(FRAME_SIZE_ERROR, 0);
    });

    test('PING of 7 bytes: FRAME_SIZE_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.send(frame(PING, 0, 0, Buffer.alloc(7)));
      await c.expectGoaway(FRAME_SIZE_ERROR, 0);
    });

    test('PUSH_PROMISE from the client: PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      await c.expectOk(1, '/', 'ok');
      c.send(frame(PUSH_PROMISE, FLAG_END_HEADERS, 1, Buffer.concat([u32(2), c.encoder.encode(requestFields('/'))])));
      await c.expectGoaway(PROTOCOL_ERROR, 1);
    });

    test('RST_STREAM on an idle stream: PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.send(rstStream(7, CANCEL));
      await c.expectGoaway(PROTOCOL_ERROR, 0);
    });

    test('WINDOW_UPDATE on an idle stream: PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      await c.expectOk(1, '/', 'ok');
      c.send(windowUpdate(9, 100));
      await c.expectGoaway(PROTOCOL_ERROR, 1);
    });

    test('HEADERS on a stream id lower than one already opened is ignored (as nghttp2 does); the connection goes on', async () => {
      const c = await WireClient.connect(proxy.port);
      await c.expectOk(5, '/', 'ok');
      c.get(3, '/');
      await c.pingRoundTrip();
      assert.equal(c.frames.some((f) => f.streamId === 3), false);
      await c.expectOk(7, '/', 'ok');
    });
  });

  // 4. Stream errors.
  describe('stream errors: RST_STREAM with the code, and the connection serves the next stream', () => {
    const malformedHeads: { name: string; fields: string[] }[] = [
      { name: 'an uppercase header name', fields: requestFields('/', 'GET', ['X-Upper', '1']) },
      { name: 'connection: keep-alive', fields: requestFields('/', 'GET', ['connection', 'keep-alive']) },
      { name: 'te: gzip', fields: requestFields('/', 'GET', ['te', 'gzip']) },
      { name: 'a missing :path', fields: [':method', 'GET', ':scheme', 'http', ':authority', 'localhost'] },
      { name: 'a pseudo-header after a regular header', fields: [':method', 'GET', ':scheme', 'http', 'x-a', '1', ':path', '/'] },
      { name: 'an unknown pseudo-header', fields: [':method', 'GET', ':scheme', 'http', ':path', '/', ':foo', 'bar'] },
      { name: 'a duplicate :path', fields: [':method', 'GET', ':scheme', 'http', ':path', '/', ':path', '/b'] },
      { name: 'a CR in a header value', fields: requestFields('/', 'GET', ['x-a', 'a\rb']) },
      { name: 'transfer-encoding: chunked', fields: requestFields('/', 'GET', ['transfer-encoding', 'chunked']) },
    ];

    for (const m of malformedHeads) {
      test(`request with ${m.name}: RST_STREAM PROTOCOL_ERROR`, async () => {
        const c = await WireClient.connect(proxy.port);
        c.request(1, m.fields, true);
        await c.expectRst(1, PROTOCOL_ERROR);
        await c.expectOk(3, '/', 'ok');
        assert.equal(c.goaway, undefined);
      });
    }

    test('content-length: 5 with 3 bytes of DATA then END_STREAM: RST_STREAM PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.request(1, requestFields('/cl', 'POST', ['content-length', '5']), false);
      c.send(dataFrame(1, Buffer.from('abc'), true));
      await c.expectRst(1, PROTOCOL_ERROR);
      await c.expectOk(3, '/', 'ok');
    });

    test('content-length: 2 with 5 bytes of DATA: RST_STREAM PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.request(1, requestFields('/cl', 'POST', ['content-length', '2']), false);
      c.send(dataFrame(1, Buffer.from('abcde'), true));
      await c.expectRst(1, PROTOCOL_ERROR);
      await c.expectOk(3, '/', 'ok');
    });

    test('content-length: 5 on HEADERS with END_STREAM (no DATA at all): RST_STREAM PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.request(1, requestFields('/cl-no-body', 'GET', ['content-length', '5']), true);
      await c.expectRst(1, PROTOCOL_ERROR);
      await c.expectOk(3, '/', 'ok');
    });

    test('a stream WINDOW_UPDATE of 0: RST_STREAM PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.get(1, '/hold/wu0/');
      c.send(windowUpdate(1, 0));
      await c.expectRst(1, PROTOCOL_ERROR);
      await c.expectOk(3, '/', 'ok');
    });

    test('a stream send window overflow (WINDOW_UPDATE 2^31-1 on a stream): RST_STREAM FLOW_CONTROL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.get(1, '/hold/wuover/');
      c.send(windowUpdate(1, MAX_ID));
      await c.expectRst(1, FLOW_CONTROL_ERROR);
      await c.expectOk(3, '/', 'ok');
    });

    test('trailers without END_STREAM: RST_STREAM PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      c.request(1, requestFields('/trailers', 'POST'), false);
      c.send(dataFrame(1, Buffer.from('body')));
      c.send(headerFrames(1, c.encoder.encode(['x-trailer', '1']), false));
      await c.expectRst(1, PROTOCOL_ERROR);
      await c.expectOk(3, '/', 'ok');
    });

    test('DATA after END_STREAM on a stream still open for the response: RST_STREAM STREAM_CLOSED', async () => {
      const c = await WireClient.connect(proxy.port);
      c.get(1, '/hold/afterend/');
      c.send(dataFrame(1, Buffer.from('late')));
      await c.expectRst(1, 5 /* STREAM_CLOSED */);
      await c.expectOk(3, '/', 'ok');
    });

    test('HEADERS that depend on their own stream (PRIORITY flag): RST_STREAM PROTOCOL_ERROR', async () => {
      const c = await WireClient.connect(proxy.port);
      const prio = Buffer.concat([u32(1), Buffer.from([15])]);
      c.send(frame(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM | FLAG_PRIORITY, 1, Buffer.concat([prio, c.encoder.encode(requestFields('/'))])));
      await c.expectRst(1, PROTOCOL_ERROR);
      await c.expectOk(3, '/', 'ok');
    });
  });

  // 5. Abuse limits.
  describe('abuse limits: GOAWAY ENHANCE_YOUR_CALM', () => {
    test('rapid reset: 1,200 streams opened and reset at once', async (t) => {
      const c = await WireClient.connect(proxy.port);
      const out: Buffer[] = [];
      for (let i = 0; i < 1200; i++) {
        const id = 2 * i + 1;
        out.push(c.requestBytes(id, requestFields(`/hold/rapid/${id}`)), rstStream(id, CANCEL));
      }
      c.send(...out);
      // The 1,001st reset trips it: stream 2,001, the last one the server had opened.
      await c.expectGoaway(ENHANCE_YOUR_CALM, 2001);
      t.diagnostic(`upstream streams opened for the reset requests: ${backend.heldTotal.get('rapid') ?? 0}`);
    });

    test('1,100 empty DATA frames without END_STREAM on an open POST stream', async () => {
      const c = await WireClient.connect(proxy.port);
      c.request(1, requestFields('/hold/empty/', 'POST'), false);
      const empty = dataFrame(1, Buffer.alloc(0));
      c.send(...Array.from({ length: 1100 }, () => empty));
      await c.expectGoaway(ENHANCE_YOUR_CALM, 1);
    });

    test('a CONTINUATION flood: a header block above 4 x 64 KiB', async () => {
      const c = await WireClient.connect(proxy.port);
      const out: Buffer[] = [frame(HEADERS, FLAG_END_STREAM, 1, c.encoder.encode(requestFields('/')))];
      const junk = Buffer.alloc(16_384, 0x41);
      for (let i = 0; i < 17; i++) out.push(frame(CONTINUATION, 0, 1, junk));
      c.send(...out);
      await c.expectGoaway(ENHANCE_YOUR_CALM, 0);
    });

    test('rapid reset padded with malformed requests (that the server resets itself) still trips it', async (t) => {
      const c = await WireClient.connect(proxy.port);
      let id = 1;
      // 12 rounds of 100: the valid requests reach the backend before they are reset, so each one cost an upstream
      // stream; each is paired with a malformed head the server resets by itself.
      for (let round = 0; round < 12 && c.goaway === undefined; round++) {
        const heads: Buffer[] = [];
        const resets: Buffer[] = [];
        for (let i = 0; i < 100; i++, id += 4) {
          heads.push(c.requestBytes(id, requestFields('/', 'GET', ['X-Malformed', '1'])));
          heads.push(c.requestBytes(id + 2, requestFields(`/hold/rapid-padded/${id + 2}`)));
          resets.push(rstStream(id + 2, CANCEL));
        }
        c.send(...heads);
        const held = (): number => backend.held.get('rapid-padded')?.size ?? 0;
        await waitFor(() => held() === 100 || c.goaway !== undefined || c.closed, `round ${round}: 100 requests at the backend`);
        c.send(...resets);
        await waitFor(() => held() === 0 || c.goaway !== undefined || c.closed, `round ${round}: the resets to reach the backend`);
      }
      await c.pingRoundTrip().catch(() => undefined);
      t.diagnostic(`upstream requests started and cancelled: ${backend.heldTotal.get('rapid-padded') ?? 0}`);
      assert.equal(c.goaway === undefined ? 'no GOAWAY' : codeName(c.goaway.code), 'ENHANCE_YOUR_CALM');
    });

    test('resets passed on from the upstream are not the client\'s doing: 1,200 refused requests, no GOAWAY', async () => {
      const c = await WireClient.connect(proxy.port);
      let id = 1;
      for (let batch = 0; batch < 12 && c.goaway === undefined; batch++) {
        const ids: number[] = [];
        const out: Buffer[] = [];
        for (let i = 0; i < 100; i++, id += 2) {
          ids.push(id);
          out.push(c.requestBytes(id, requestFields(`/refuse/${id}`)));
        }
        c.send(...out);
        await c.until(() => (ids.every((i) => c.stream(i).rst !== undefined || c.stream(i).ended) || c.goaway !== undefined ? true : undefined), `batch ${batch} answered`, 15_000);
      }
      assert.equal(c.goaway === undefined ? 'no GOAWAY' : `GOAWAY ${codeName(c.goaway.code)}`, 'no GOAWAY');
      assert.equal(c.stream(1).rst, REFUSED_STREAM, 'the upstream\'s refusal reaches the client');
      await c.expectOk(id, '/after-refusals', 'ok');
    });

    test('legitimate cancellation does not trip it: 1,200 complete streams, then 100 resets', async () => {
      const c = await WireClient.connect(proxy.port);
      let id = 1;
      for (let batch = 0; batch < 12; batch++) {
        const ids: number[] = [];
        const out: Buffer[] = [];
        for (let i = 0; i < 100; i++, id += 2) {
          ids.push(id);
          out.push(c.requestBytes(id, requestFields(`/batch/${id}`)));
        }
        c.send(...out);
        await c.until(() => (ids.every((i) => c.stream(i).ended) ? true : undefined), `batch ${batch} complete`, 15_000);
        assert.ok(ids.every((i) => c.stream(i).status === 200));
      }
      const out: Buffer[] = [];
      for (let i = 0; i < 100; i++, id += 2) out.push(c.requestBytes(id, requestFields(`/hold/cancel/${id}`)), rstStream(id, CANCEL));
      c.send(...out);
      await c.pingRoundTrip();
      assert.equal(c.goaway, undefined);
      await c.expectOk(id, '/after-cancels', 'ok');
      assert.equal(c.goaway, undefined);
    });
  });

  // 6. Limits that refuse one request and keep the connection.
  describe('limits that refuse without ending the connection', () => {
    let small: ProxyUnderTest;
    before(async () => {
      small = await startProxy({ address: '127.0.0.1', port: backend.port }, {}, { h2MaxConcurrentStreams: 2 });
    });
    after(async () => {
      await small.close();
    });

    test('SETTINGS_MAX_CONCURRENT_STREAMS 2: a third open stream gets RST_STREAM REFUSED_STREAM', async () => {
      const c = await WireClient.connect(small.port);
      assert.equal(c.serverSettings?.get(SETTINGS_MAX_CONCURRENT_STREAMS), 2);
      c.get(1, '/hold/limit/1');
      c.get(3, '/hold/limit/3');
      c.get(5, '/hold/limit/5');
      await c.expectRst(5, REFUSED_STREAM);
      await c.pingRoundTrip();
      assert.equal(c.goaway, undefined);
      // The two held streams are still served once the backend answers, then a new stream has room again.
      await waitFor(() => (backend.held.get('limit')?.size ?? 0) === 2, 'the backend to hold streams 1 and 3');
      backend.release('limit');
      const [r1, r3] = await Promise.all([c.response(1), c.response(3)]);
      assert.equal(r1.status, 200);
      assert.equal(r3.status, 200);
      await c.expectOk(7, '/', 'ok');
    });

    test('a request head above 64 KiB (70,000-byte value over HEADERS + CONTINUATION) gets :status 431', async () => {
      const c = await WireClient.connect(proxy.port);
      c.request(1, requestFields('/big', 'GET', ['x-big', 'v'.repeat(70_000)]), true);
      const r = await c.response(1);
      assert.equal(r.rst, undefined);
      assert.equal(r.status, 431);
      await c.expectOk(3, '/', 'ok');
      assert.equal(c.goaway, undefined);
    });
  });

  // 7. Flow control, the server's sending side.
  describe('flow control, send side', () => {
    test('INITIAL_WINDOW_SIZE = 100: exactly 100 bytes until the stream WINDOW_UPDATE, then the rest', async () => {
      const c = await WireClient.connect(proxy.port, { settings: [SETTINGS_INITIAL_WINDOW_SIZE, 100] });
      const path = '/size/1000/window-100';
      c.get(1, path);
      const s = c.stream(1);
      await c.until(() => (s.bodyBytes >= 100 ? true : undefined), '100 bytes of DATA');
      // The backend sent all of it: what the proxy holds back, it holds for the window.
      await waitFor(() => (backend.finished.get(path) ?? 0) === 1, 'the backend to finish its response');
      await c.pingRoundTrip();
      await c.pingRoundTrip();
      assert.equal(s.bodyBytes, 100);
      assert.equal(s.ended, false);
      c.send(windowUpdate(1, 400));
      await c.until(() => (s.bodyBytes >= 500 ? true : undefined), '500 bytes');
      await c.pingRoundTrip();
      assert.equal(s.bodyBytes, 500);
      assert.equal(s.ended, false);
      c.send(windowUpdate(1, 500));
      await c.response(1);
      assert.equal(s.bodyBytes, 1000);
      const body = Buffer.concat(s.body);
      for (let i = 0; i < 1000; i++) if (body[i] !== i % 251) assert.fail(`byte ${i} is ${body[i]}`);
      assert.deepEqual(c.wireErrors, []);
    });

    test('a response above 65,535 bytes: the connection window holds it until connection WINDOW_UPDATEs', async () => {
      // The stream window is as large as it can be; only the connection's 65,535 bytes limit the server.
      const c = await WireClient.connect(proxy.port, { settings: [SETTINGS_INITIAL_WINDOW_SIZE, MAX_ID] });
      const path = '/size/200000/conn-window';
      c.get(1, path);
      const s = c.stream(1);
      await c.until(() => (s.bodyBytes >= 65_535 ? true : undefined), 'the first 65,535 bytes');
      await waitFor(() => (backend.finished.get(path) ?? 0) === 1, 'the backend to finish its response');
      await c.pingRoundTrip();
      await c.pingRoundTrip();
      assert.equal(s.bodyBytes, 65_535);
      c.send(windowUpdate(0, 65_535));
      await c.until(() => (s.bodyBytes >= 131_070 ? true : undefined), '131,070 bytes');
      await c.pingRoundTrip();
      assert.equal(s.bodyBytes, 131_070);
      assert.equal(s.ended, false);
      c.send(windowUpdate(0, 100_000));
      await c.response(1);
      assert.equal(s.bodyBytes, 200_000);
      assert.deepEqual(c.wireErrors, []);
      assert.ok(c.frames.every((f) => f.type !== DATA || f.payload.length <= 16_384));
    });

    test('SETTINGS lowering INITIAL_WINDOW_SIZE mid-response makes the stream window negative; WINDOW_UPDATEs bring it back', async () => {
      const c = await WireClient.connect(proxy.port, { settings: [SETTINGS_INITIAL_WINDOW_SIZE, 1000] });
      const path = '/size/3000/negative';
      c.get(1, path);
      const s = c.stream(1);
      await c.until(() => (s.bodyBytes >= 1000 ? true : undefined), 'the first 1,000 bytes');
      // Window 1000 - 1000 = 0; lowering the initial window to 200 makes it -800 (RFC 9113 §6.9.2).
      c.send(settingsFrame([SETTINGS_INITIAL_WINDOW_SIZE, 200]));
      await c.until(() => (c.settingsAcks >= 2 ? true : undefined), 'the SETTINGS ACK');
      c.send(windowUpdate(1, 800));
      await waitFor(() => (backend.finished.get(path) ?? 0) === 1, 'the backend to finish its response');
      await c.pingRoundTrip();
      assert.equal(s.bodyBytes, 1000, 'a window of 0 after the update: nothing more');
      c.send(windowUpdate(1, 2000));
      await c.response(1);
      assert.equal(s.bodyBytes, 3000);
    });
  });

  // 8. Flow control, the server's receiving side.
  describe('flow control, receive side', () => {
    let sink: Awaited<ReturnType<typeof startSink>>;
    let sinkProxy: ProxyUnderTest;
    before(async () => {
      sink = await startSink();
      sinkProxy = await startProxy({ address: '127.0.0.1', port: sink.port });
    });
    after(async () => {
      await sinkProxy.close();
      await sink.close();
    });

    test('uploaded DATA is acknowledged half a window at a time (stream and connection) as the backend reads', async () => {
      const c = await WireClient.connect(proxy.port);
      const path = '/upload/acks';
      c.request(1, requestFields(path, 'POST'), false);
      // Half the stream window (131,072) less one byte: no stream WINDOW_UPDATE yet, even once the backend has it all.
      await c.upload(1, 131_071, false);
      await waitFor(() => backend.uploaded.get(path) === 131_071, 'the backend to read 131,071 bytes');
      await c.pingRoundTrip();
      assert.equal(c.stream(1).windowUpdates, 0, 'no stream WINDOW_UPDATE below half the window');
      c.sendData(1, Buffer.from('x'));
      await c.until(() => (c.stream(1).windowUpdates > 0 ? true : undefined), 'the stream WINDOW_UPDATE');
      assert.equal(c.stream(1).windowUpdates, 131_072);
      assert.deepEqual(c.connectionWindowUpdates, [1024 * KiB - 65_535], 'no connection WINDOW_UPDATE yet');
      // On to 600,000 bytes: past half the connection window (524,288), within the windows all along.
      await c.upload(1, 600_000 - 131_072, true);
      const r = await c.response(1);
      assert.equal(r.status, 200);
      assert.equal(Buffer.concat(r.body).toString(), '600000');
      const connUpdates = c.connectionWindowUpdates.slice(1);
      assert.ok(connUpdates.length >= 1, 'a connection WINDOW_UPDATE');
      assert.ok(connUpdates.every((n) => n >= 512 * KiB && n <= 1024 * KiB), `connection increments ${connUpdates}`);
      assert.ok(c.stream(1).windowUpdates >= 3 * 131_072, `stream increments total ${c.stream(1).windowUpdates}`);
    });

    test('more than the stream window (262,144 bytes) on a stream whose backend does not read: RST_STREAM FLOW_CONTROL_ERROR', async () => {
      const c = await WireClient.connect(sinkProxy.port);
      c.request(1, requestFields('/held-upload', 'POST'), false);
      const chunk = Buffer.alloc(16_384, 0x62);
      for (let i = 0; i < 17; i++) c.sendData(1, chunk);
      await c.expectRst(1, FLOW_CONTROL_ERROR);
      assert.equal(c.stream(1).windowUpdates, 0, 'the server never opened the stream window');
      await c.pingRoundTrip();
      assert.equal(c.goaway, undefined, 'a stream error only');
    });

    test('more than the connection window (1 MiB) over several held streams: GOAWAY FLOW_CONTROL_ERROR', async () => {
      const c = await WireClient.connect(sinkProxy.port);
      const chunk = Buffer.alloc(16_384, 0x63);
      // 5 streams x 240 KiB: each within its stream window, 1.2 MiB in all.
      for (let s = 0; s < 5; s++) {
        const id = 2 * s + 1;
        c.request(id, requestFields(`/held-upload/${id}`, 'POST'), false);
        for (let i = 0; i < 15; i++) c.sendData(id, chunk);
      }
      await c.expectGoaway(FLOW_CONTROL_ERROR, 9);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Malformed requests that an HTTP/2 upstream (nghttp2) would reject by itself, through a routed HTTP/1.1 upstream:
// there the proxy's own checks are all that stands between a client and the upstream's request parser.

describe('malformed requests must not reach an HTTP/1.1 upstream', () => {
  let h1: http.Server;
  let proxy: ProxyUnderTest;
  /** What the HTTP/1.1 backend parsed: method and target of each request, in order. */
  const seen: string[] = [];

  before(async () => {
    // A GET is answered at once, without waiting for a body (as many servers do): the connection stays reusable.
    // A POST is answered once its body (and trailer section) was read.
    h1 = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      if (req.method === 'POST') req.once('end', () => res.end(`${req.method} ${req.url}`));
      else res.end(`${req.method} ${req.url}`);
    });
    const port = await listen(h1);
    const decision: RouteDecision = { ...PASSTHROUGH_DECISION, route: 'svc', backend: { service: 'svc', weight: 1 } };
    const cluster = fakeCluster({ name: 'svc-h1', protocol: 'http1', pick: () => ({ address: '127.0.0.1', port }) });
    proxy = await startProxy({ address: '127.0.0.1', port: 1 }, { route: () => decision, cluster: () => cluster });
  });

  after(async () => {
    await proxy.close();
    h1.closeAllConnections();
    h1.close();
  });

  test('GET with content-length: 5 and END_STREAM (RFC 9113 §8.1.1): reset, and the next client is not desynchronised', async () => {
    const attacker = await WireClient.connect(proxy.port);
    attacker.request(1, requestFields('/attacker', 'GET', ['content-length', '5']), true);
    const a = await attacker.response(1);
    // A second client's request, on the pool's (reused) upstream connection.
    const victim = await WireClient.connect(proxy.port);
    victim.get(1, '/victim');
    const v = await victim.response(1);
    assert.equal(v.status, 200, `the victim's request got :status ${v.status}; the backend parsed ${JSON.stringify(seen)}`);
    assert.equal(Buffer.concat(v.body).toString(), 'GET /victim');
    assert.equal(a.rst, PROTOCOL_ERROR, `the attacker's stream was answered :status ${a.status}, not reset`);
    assert.ok(!seen.includes('GET /attacker'), `the backend parsed ${JSON.stringify(seen)}`);
  });

  test('request trailers with CR LF in a value (RFC 9113 §8.2.1): reset, never written to the upstream', async () => {
    const c = await WireClient.connect(proxy.port);
    c.request(1, requestFields('/upload-with-trailers', 'POST'), false);
    c.sendData(1, Buffer.from('abc'));
    const smuggle = 'a\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n';
    c.send(headerFrames(1, c.encoder.encode(['x-trailer', smuggle]), true));
    const r = await c.response(1);
    // The backend answers the POST after its trailer section: what follows on that connection is parsed at once, and
    // shows in `seen` by the time a second request went through.
    await expectOkOnNewConnection(proxy.port, '/after-trailers');
    assert.ok(!seen.includes('GET /smuggled'), `the backend parsed ${JSON.stringify(seen)}`);
    assert.equal(r.rst, PROTOCOL_ERROR, `stream answered :status ${r.status}, not reset`);
  });

  test(':path in absolute form (RFC 9113 §8.3.1: absolute-path or "*"): reset, never sent as the request target', async () => {
    const c = await WireClient.connect(proxy.port);
    c.request(1, [':method', 'GET', ':scheme', 'http', ':authority', 'localhost', ':path', 'http://evil.example/admin']);
    const r = await c.response(1);
    assert.ok(!seen.some((x) => x.includes('evil.example')), `the backend parsed ${JSON.stringify(seen)}`);
    assert.equal(r.rst, PROTOCOL_ERROR, `stream answered :status ${r.status}, not reset`);
  });

  test(':path without its leading slash: reset', async () => {
    const c = await WireClient.connect(proxy.port);
    c.request(1, [':method', 'GET', ':scheme', 'http', ':authority', 'localhost', ':path', 'admin']);
    await c.expectRst(1, PROTOCOL_ERROR);
  });
});

/** A GET on a fresh connection, which must be answered 200. */
async function expectOkOnNewConnection(port: number, path: string): Promise<void> {
  const c = await WireClient.connect(port);
  try {
    c.get(1, path);
    const r = await c.response(1);
    assert.equal(r.status, 200, `${path}: :status ${r.status}, reset ${r.rst}`);
  } finally {
    c.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The upstream side of the codec (pool/h2-pool.ts, client role): a backend that lowers SETTINGS_HEADER_TABLE_SIZE.

describe('upstream HTTP/2 backend with SETTINGS_HEADER_TABLE_SIZE 0', () => {
  let server: http2.Http2Server;
  const sessions = new Set<http2.ServerHttp2Session>();
  let proxy: ProxyUnderTest;

  before(async () => {
    server = http2.createServer({ settings: { headerTableSize: 0 } });
    server.on('session', (s: http2.ServerHttp2Session) => {
      sessions.add(s);
      s.on('error', () => {});
    });
    server.on('stream', (stream: http2.ServerHttp2Stream) => {
      stream.on('error', () => {});
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    const port = await listen(server as unknown as net.Server);
    proxy = await startProxy({ address: '127.0.0.1', port });
  });

  after(async () => {
    await proxy.close();
    for (const s of sessions) s.destroy();
    server.close();
  });

  test('requests after the backend\'s SETTINGS are still answered', async () => {
    const c = await WireClient.connect(proxy.port);
    // The first request may go out before the backend's SETTINGS; once it is answered, they have arrived.
    await c.expectOk(1, '/first', 'ok');
    c.get(3, '/second');
    const r = await c.response(3);
    assert.equal(r.status, 200, `stream 3: :status ${r.status}, reset ${r.rst}`);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 9. Differential: the same frame sequences against our engine and against a plain node:http2 server.

interface WireCase {
  readonly name: string;
  /** The stream whose outcome is compared. */
  readonly stream: number;
  /** Send the client SETTINGS after the preface (default true). */
  readonly settings?: boolean;
  send(c: WireClient): void;
}

const DIFFERENTIAL_CORPUS: readonly WireCase[] = [
  { name: 'valid GET', stream: 1, send: (c) => c.get(1, '/') },
  {
    name: 'valid POST with a body', stream: 1,
    send: (c) => c.send(c.requestBytes(1, requestFields('/', 'POST', ['content-length', '3']), false), dataFrame(1, Buffer.from('abc'), true)),
  },
  { name: 'first frame not SETTINGS', stream: 1, settings: false, send: (c) => c.send(pingFrame(PING_PAYLOAD)) },
  {
    name: 'DATA frame above 16384 bytes', stream: 1,
    send: (c) => c.send(c.requestBytes(1, requestFields('/', 'POST'), false), dataFrame(1, Buffer.alloc(16_385))),
  },
  { name: 'HPACK indexed field 0', stream: 1, send: (c) => c.send(frame(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, 1, Buffer.from([0x80]))) },
  { name: 'HPACK index beyond the tables', stream: 1, send: (c) => c.send(frame(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, 1, Buffer.from([0xff, 0x10]))) },
  { name: 'DATA on an idle stream', stream: 1, send: (c) => c.send(dataFrame(1, Buffer.from('x'))) },
  { name: 'HEADERS on an even stream id', stream: 2, send: (c) => c.get(2, '/') },
  { name: 'CONTINUATION without HEADERS', stream: 1, send: (c) => c.send(frame(CONTINUATION, FLAG_END_HEADERS, 1, c.encoder.encode(requestFields('/')))) },
  {
    name: 'PING inside a header block', stream: 1,
    send: (c) => {
      const block = c.encoder.encode(requestFields('/'));
      c.send(frame(HEADERS, FLAG_END_STREAM, 1, block.subarray(0, 4)), pingFrame(PING_PAYLOAD), frame(CONTINUATION, FLAG_END_HEADERS, 1, block.subarray(4)));
    },
  },
  { name: 'WINDOW_UPDATE 0 on stream 0', stream: 1, send: (c) => c.send(windowUpdate(0, 0)) },
  { name: 'connection window overflow', stream: 1, send: (c) => c.send(windowUpdate(0, MAX_ID), windowUpdate(0, MAX_ID)) },
  { name: 'SETTINGS_ENABLE_PUSH = 2', stream: 1, send: (c) => c.send(settingsFrame([SETTINGS_ENABLE_PUSH, 2])) },
  { name: 'SETTINGS_INITIAL_WINDOW_SIZE = 2^31', stream: 1, send: (c) => c.send(settingsFrame([SETTINGS_INITIAL_WINDOW_SIZE, 2 ** 31])) },
  { name: 'PING of 7 bytes', stream: 1, send: (c) => c.send(frame(PING, 0, 0, Buffer.alloc(7))) },
  {
    name: 'PUSH_PROMISE from the client', stream: 1,
    send: (c) => c.send(frame(PUSH_PROMISE, FLAG_END_HEADERS, 1, Buffer.concat([u32(2), c.encoder.encode(requestFields('/'))]))),
  },
  { name: 'RST_STREAM on an idle stream', stream: 1, send: (c) => c.send(rstStream(1, CANCEL)) },
  { name: 'PRIORITY of 4 bytes on an idle stream', stream: 1, send: (c) => c.send(frame(PRIORITY, 0, 1, Buffer.alloc(4))) },
  { name: 'uppercase header name', stream: 1, send: (c) => c.request(1, requestFields('/', 'GET', ['X-Upper', '1'])) },
  { name: 'connection: keep-alive', stream: 1, send: (c) => c.request(1, requestFields('/', 'GET', ['connection', 'keep-alive'])) },
  { name: 'te: gzip', stream: 1, send: (c) => c.request(1, requestFields('/', 'GET', ['te', 'gzip'])) },
  { name: 'missing :path', stream: 1, send: (c) => c.request(1, [':method', 'GET', ':scheme', 'http', ':authority', 'localhost']) },
  { name: 'pseudo-header after a regular header', stream: 1, send: (c) => c.request(1, [':method', 'GET', ':scheme', 'http', 'x-a', '1', ':path', '/']) },
  { name: 'unknown pseudo-header', stream: 1, send: (c) => c.request(1, [':method', 'GET', ':scheme', 'http', ':path', '/', ':foo', 'bar']) },
  {
    name: 'content-length 5 with 3 bytes of DATA', stream: 1,
    send: (c) => c.send(c.requestBytes(1, requestFields('/', 'POST', ['content-length', '5']), false), dataFrame(1, Buffer.from('abc'), true)),
  },
  {
    name: 'content-length 2 with 5 bytes of DATA', stream: 1,
    send: (c) => c.send(c.requestBytes(1, requestFields('/', 'POST', ['content-length', '2']), false), dataFrame(1, Buffer.from('abcde'), true)),
  },
  { name: 'content-length 5 on HEADERS with END_STREAM', stream: 1, send: (c) => c.request(1, requestFields('/', 'GET', ['content-length', '5'])) },
  {
    name: 'trailers without END_STREAM', stream: 1,
    send: (c) => c.send(c.requestBytes(1, requestFields('/', 'POST'), false), dataFrame(1, Buffer.from('x')), headerFrames(1, c.encoder.encode(['x-t', '1']), false)),
  },
  { name: ':path in absolute form', stream: 1, send: (c) => c.request(1, [':method', 'GET', ':scheme', 'http', ':authority', 'localhost', ':path', 'http://evil.example/x']) },
  { name: ':path without its leading slash', stream: 1, send: (c) => c.request(1, [':method', 'GET', ':scheme', 'http', ':authority', 'localhost', ':path', 'x']) },
  {
    name: 'extended CONNECT (:protocol) without SETTINGS_ENABLE_CONNECT_PROTOCOL', stream: 1,
    send: (c) => c.request(1, [':method', 'CONNECT', ':protocol', 'websocket', ':scheme', 'http', ':authority', 'localhost', ':path', '/chat']),
  },
  {
    name: 'trailers with CR LF in a value', stream: 1,
    send: (c) => c.send(c.requestBytes(1, requestFields('/', 'POST'), false), dataFrame(1, Buffer.from('x')), headerFrames(1, c.encoder.encode(['x-t', 'a\r\nb']), true)),
  },
  {
    name: 'trailers with a pseudo-header', stream: 1,
    send: (c) => c.send(c.requestBytes(1, requestFields('/', 'POST'), false), dataFrame(1, Buffer.from('x')), headerFrames(1, c.encoder.encode([':path', '/x']), true)),
  },
  {
    name: 'DATA after END_STREAM', stream: 1,
    send: (c) => c.send(c.requestBytes(1, requestFields('/', 'GET'), true), dataFrame(1, Buffer.from('late'))),
  },
  { name: 'request head of 70,000 bytes', stream: 1, send: (c) => c.request(1, requestFields('/', 'GET', ['x-big', 'v'.repeat(70_000)])) },
  {
    name: '1,100 empty DATA frames', stream: 1,
    send: (c) => {
      const empty = dataFrame(1, Buffer.alloc(0));
      c.send(c.requestBytes(1, requestFields('/', 'POST'), false), ...Array.from({ length: 1100 }, () => empty));
    },
  },
  {
    name: 'CONTINUATION flood (17 x 16 KiB)', stream: 1,
    send: (c) => {
      const junk = Buffer.alloc(16_384, 0x41);
      c.send(frame(HEADERS, FLAG_END_STREAM, 1, c.encoder.encode(requestFields('/'))), ...Array.from({ length: 17 }, () => frame(CONTINUATION, 0, 1, junk)));
    },
  },
];

/**
 * Where node:http2 (nghttp2) and remora's codec answer a sequence differently, and why that is acceptable (or, for a
 * bug, why not). The test asserts this table is exactly what happens, so a change in either shows up.
 */
const NODE_FATAL = 'node:http2 ends the session with GOAWAY INTERNAL_ERROR when nghttp2_session_mem_recv() fails, not with the code RFC 9113 names (which remora sends)';
const EXPECTED_DIFFERENCES: Record<string, { remora: string; node: string; reason: string }> = {
  'first frame not SETTINGS': { remora: 'goaway PROTOCOL_ERROR', node: 'goaway INTERNAL_ERROR', reason: NODE_FATAL },
  'HEADERS on an even stream id': { remora: 'goaway PROTOCOL_ERROR', node: 'goaway INTERNAL_ERROR', reason: NODE_FATAL },
  'WINDOW_UPDATE 0 on stream 0': { remora: 'goaway PROTOCOL_ERROR', node: 'goaway INTERNAL_ERROR', reason: NODE_FATAL },
  'connection window overflow': { remora: 'goaway FLOW_CONTROL_ERROR', node: 'goaway INTERNAL_ERROR', reason: NODE_FATAL },
  'SETTINGS_ENABLE_PUSH = 2': { remora: 'goaway PROTOCOL_ERROR', node: 'goaway INTERNAL_ERROR', reason: NODE_FATAL },
  'SETTINGS_INITIAL_WINDOW_SIZE = 2^31': { remora: 'goaway FLOW_CONTROL_ERROR', node: 'goaway INTERNAL_ERROR', reason: NODE_FATAL },
  'PUSH_PROMISE from the client': { remora: 'goaway PROTOCOL_ERROR', node: 'goaway INTERNAL_ERROR', reason: NODE_FATAL },
  'RST_STREAM on an idle stream': { remora: 'goaway PROTOCOL_ERROR', node: 'goaway INTERNAL_ERROR', reason: NODE_FATAL },
  'trailers with CR LF in a value': {
    remora: 'rst PROTOCOL_ERROR', node: 'response 200',
    reason: 'the reference answers at once and its stream is over before the trailers come; remora\'s is open and resets it (RFC 9113 §8.2.1)',
  },
  'DATA after END_STREAM': {
    remora: 'rst STREAM_CLOSED', node: 'goaway STREAM_CLOSED',
    reason: 'the reference already answered, so its stream is closed (a connection error); remora\'s still waits for the backend (half-closed remote: a stream error, §5.1)',
  },
  'request head of 70,000 bytes': {
    remora: 'response 431', node: 'goaway COMPRESSION_ERROR',
    reason: 'remora answers a head above the header list limit with 431 by design; nghttp2 fails the HPACK block past its maxHeaderListSize',
  },
  '1,100 empty DATA frames': {
    remora: 'goaway ENHANCE_YOUR_CALM', node: 'goaway INTERNAL_ERROR',
    reason: 'both end the connection: remora at 1,000 empty frames, node:http2 past maxSessionInvalidFrames (1,000), with INTERNAL_ERROR',
  },
  'CONTINUATION flood (17 x 16 KiB)': {
    remora: 'goaway ENHANCE_YOUR_CALM', node: 'goaway INTERNAL_ERROR',
    reason: 'remora ends the connection at 4 x 64 KiB of header block; nghttp2 resets the stream, then node:http2 ends the session (INTERNAL_ERROR)',
  },
};

async function runCase(port: number, k: WireCase): Promise<{ outcome: string; frames: string }> {
  const c = await WireClient.connect(port, { settings: k.settings === false ? null : [] });
  try {
    k.send(c);
    const outcome = await outcomeOf(c, k.stream);
    return { outcome, frames: c.describe() };
  } finally {
    c.destroy();
  }
}

describe('differential against node:http2', () => {
  let backend: Backend;
  let proxy: ProxyUnderTest;
  let reference: Awaited<ReturnType<typeof startNodeReference>>;

  before(async () => {
    backend = await startBackend();
    proxy = await startProxy({ address: '127.0.0.1', port: backend.port });
    reference = await startNodeReference();
  });

  after(async () => {
    await proxy.close();
    await backend.close();
    await reference.close();
  });

  test(`${DIFFERENTIAL_CORPUS.length} frame sequences: the class of outcome is node's, but for the expected differences`, async (t) => {
    const differences: Record<string, { remora: string; node: string }> = {};
    for (const k of DIFFERENTIAL_CORPUS) {
      const ours = await runCase(proxy.port, k);
      const node = await runCase(reference.port, k);
      t.diagnostic(`${k.name}: remora ${ours.outcome} / node ${node.outcome}`);
      if (ours.outcome !== node.outcome) {
        differences[k.name] = { remora: ours.outcome, node: node.outcome };
        t.diagnostic(`  remora: ${ours.frames}`);
        t.diagnostic(`  node: ${node.frames}`);
      }
    }
    const expected = Object.fromEntries(Object.entries(EXPECTED_DIFFERENCES).map(([k, v]) => [k, { remora: v.remora, node: v.node }]));
    assert.deepEqual(differences, expected);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Answers the server queues for a client that does not read (CVE-2019-9512 ping flood, CVE-2019-9514 reset flood):
// the codec promises GOAWAY ENHANCE_YOUR_CALM after 10,000 control frames answered while its socket does not drain.

describe('output floods against a client that does not read', () => {
  let backend: Backend;
  let proxy: ProxyUnderTest;
  /** Frames in one flood: 13-17 MB, several times what loopback's kernel buffers hold. */
  const FLOOD = 1_000_000;

  before(async () => {
    backend = await startBackend();
    proxy = await startProxy({ address: '127.0.0.1', port: backend.port });
  });

  after(async () => {
    await proxy.close();
    await backend.close();
  });

  /**
   * Write `unit` FLOOD times with our socket paused, wait until the server read all of it (or closed the
   * connection), then read: returns how many frames of `answerType` came back before the end.
   */
  async function flood(unit: Buffer, answerType: number): Promise<{ c: WireClient; answers: number }> {
    const c = await WireClient.connect(proxy.port, { keepFrames: 100 });
    await c.pingRoundTrip();
    const before = proxy.downstreamBytesRead();
    const baseline = c.counts.get(answerType) ?? 0;
    c.socket.pause();
    const all = Buffer.allocUnsafe(unit.length * FLOOD);
    for (let i = 0; i < FLOOD; i++) unit.copy(all, i * unit.length);
    c.send(all);
    await waitFor(
      () => proxy.downstreamBytesRead() - before >= all.length || proxy.engine.activeConnections === 0,
      'the server to read the flood or close the connection',
      30_000,
    );
    c.socket.resume();
    await c.until(
      () => (c.closed || c.goaway !== undefined || (c.counts.get(answerType) ?? 0) - baseline >= FLOOD ? true : undefined),
      'the end of the answers', 30_000, false,
    );
    return { c, answers: (c.counts.get(answerType) ?? 0) - baseline };
  }

  test('PING flood: the server stops answering and ends the connection', async (t) => {
    const errors = proxy.stats.get('http2.protocol_errors');
    const { c, answers } = await flood(pingFrame(PING_PAYLOAD), PING);
    t.diagnostic(`${answers} PING ACKs before the end`);
    assert.ok(answers < FLOOD, `${answers} PING ACKs for ${FLOOD} PINGs`);
    // The GOAWAY is queued behind the answers the client did not read, and may be lost when the socket is destroyed.
    if (c.goaway !== undefined) assert.equal(codeName(c.goaway.code), 'ENHANCE_YOUR_CALM');
    await c.waitClosed(10_000);
    assert.equal(proxy.stats.get('http2.protocol_errors'), errors + 1, 'the connection ended on a connection error');
  });

  test('a flood of 4-byte PRIORITY frames on an idle stream: bounded (the first is a connection error, RFC 9113 §6.4 forbids RST_STREAM there)', async () => {
    const { c, answers } = await flood(frame(PRIORITY, 0, 1, Buffer.alloc(4)), RST_STREAM);
    assert.ok(answers < FLOOD, `${answers} RST_STREAM answers for ${FLOOD} malformed PRIORITY frames`);
    await c.waitClosed(10_000);
  });

  test('reset flood (malformed request heads, each answered by RST_STREAM PROTOCOL_ERROR): bounded like the PING flood', async () => {
    // One HEADERS per new stream, the same malformed head each time: HPACK's static table makes it 3 bytes
    // (":method GET", ":path /", ":scheme http") plus a literal uppercase name.
    const c0 = new HpackEncoder();
    const block = c0.encode([':method', 'GET', ':scheme', 'http', ':path', '/', 'X', '1']);
    const frames = Buffer.allocUnsafe((FRAME_HEADER_BYTES + block.length) * 300_000);
    let off = 0;
    for (let i = 0; i < 300_000; i++) {
      frame(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, 2 * i + 1, block).copy(frames, off);
      off += FRAME_HEADER_BYTES + block.length;
    }
    const c = await WireClient.connect(proxy.port, { keepFrames: 100 });
    await c.pingRoundTrip();
    const before = proxy.downstreamBytesRead();
    c.socket.pause();
    c.send(frames);
    await waitFor(
      () => proxy.downstreamBytesRead() - before >= frames.length || proxy.engine.activeConnections === 0,
      'the server to read the flood or close the connection',
      30_000,
    );
    c.socket.resume();
    await c.until(
      () => (c.closed || c.goaway !== undefined || (c.counts.get(RST_STREAM) ?? 0) >= 300_000 ? true : undefined),
      'the end of the answers', 30_000, false,
    );
    const answers = c.counts.get(RST_STREAM) ?? 0;
    assert.ok(answers < 300_000, `${answers} RST_STREAM answers for 300,000 malformed requests, no GOAWAY`);
    await c.waitClosed(10_000);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 10. A seeded fuzz loop: random sequences of valid, mutated and random frames.

/** The unit tests' seeded PRNG (mulberry32), so that a failing connection can be replayed from its seed. */
function prng(seed: number): { next(): number; int(n: number): number; bytes(n: number): Buffer } {
  const next = seededRandom(seed);
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    bytes(n) {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = int(256);
      return b;
    },
  };
}

type Rng = ReturnType<typeof prng>;

/** One fuzz connection's client-side view: the streams it opened (small odd ids, so that a probe can follow). */
interface FuzzState {
  nextId: number;
  readonly opened: number[];
}

const FUZZ_PATHS = ['/', '/size/100', '/size/40000', '/hold/fuzz/'];

function pick<T>(r: Rng, items: readonly T[]): T {
  return items[r.int(items.length)] as T;
}

function validFuzzFrame(r: Rng, st: FuzzState, enc: HpackEncoder): Buffer {
  const someOpened = (): number => (st.opened.length > 0 ? pick(r, st.opened) : 1);
  switch (r.int(13)) {
    case 0: {
      const id = st.nextId;
      st.nextId += 2;
      st.opened.push(id);
      return headerFrames(id, enc.encode(requestFields(pick(r, FUZZ_PATHS))), true);
    }
    case 1: {
      const id = st.nextId;
      st.nextId += 2;
      st.opened.push(id);
      const extra = r.int(2) === 0 ? ['content-length', String(r.int(300))] : [];
      return headerFrames(id, enc.encode(requestFields('/', 'POST', extra)), false);
    }
    case 2:
      return dataFrame(someOpened(), r.bytes(r.int(300)), r.int(2) === 0);
    case 3:
      return pingFrame(r.bytes(8));
    case 4: {
      const all = [
        [SETTINGS_HEADER_TABLE_SIZE, r.int(8192)], [SETTINGS_ENABLE_PUSH, r.int(2)], [SETTINGS_MAX_CONCURRENT_STREAMS, r.int(200)],
        [SETTINGS_INITIAL_WINDOW_SIZE, r.int(2) === 0 ? r.int(100) : r.int(1 << 20)], [SETTINGS_MAX_FRAME_SIZE, 16_384 + r.int(100_000)],
        [SETTINGS_MAX_HEADER_LIST_SIZE, r.int(100_000)], [0x8, r.int(2)], [0x4242, r.int(1 << 30)],
      ];
      const pairs: number[] = [];
      for (let n = 1 + r.int(3); n > 0; n--) pairs.push(...(pick(r, all) as number[]));
      return settingsFrame(pairs);
    }
    case 5:
      return frame(SETTINGS, FLAG_ACK, 0);
    case 6:
      return windowUpdate(r.int(2) === 0 ? 0 : someOpened(), 1 + r.int(65_535));
    case 7:
      return rstStream(someOpened(), pick(r, [CANCEL, NO_ERROR, PROTOCOL_ERROR]));
    case 8: {
      const id = 1 + 2 * r.int(20);
      return frame(PRIORITY, 0, id, Buffer.concat([u32(id + 2), Buffer.from([r.int(256)])]));
    }
    case 9:
      return frame(0x0a + r.int(0xf5), r.int(256), r.int(10), r.bytes(r.int(40)));
    case 10: {
      // A head in HEADERS + CONTINUATION, one of its fields added to the dynamic table, and a second head that
      // refers to that entry (index 62).
      const id = st.nextId;
      st.nextId += 2;
      st.opened.push(id);
      const block = Buffer.concat([enc.encode(requestFields('/')), Buffer.from([0x40, 6]), Buffer.from('x-fuzz'), Buffer.from([1, 0x61])]);
      const cut = 1 + r.int(block.length - 1);
      return Buffer.concat([frame(HEADERS, FLAG_END_STREAM, id, block.subarray(0, cut)), frame(CONTINUATION, FLAG_END_HEADERS, id, block.subarray(cut))]);
    }
    case 11: {
      const id = st.nextId;
      st.nextId += 2;
      st.opened.push(id);
      return frame(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, id, Buffer.concat([enc.encode(requestFields('/')), Buffer.from([0xbe])]));
    }
    default:
      return r.int(4) === 0 ? frame(GOAWAY, 0, 0, Buffer.concat([u32(st.nextId), u32(NO_ERROR)])) : pingFrame(r.bytes(8));
  }
}

function mutate(r: Rng, valid: Buffer): Buffer {
  const m = Buffer.from(valid);
  switch (r.int(6)) {
    case 0:
      for (let n = 1 + r.int(3); n > 0; n--) {
        const i = r.int(m.length);
        m[i] = (m[i] as number) ^ (1 << r.int(8));
      }
      return m;
    case 1: {
      const len = r.int(m.length + 40);
      m[0] = (len >>> 16) & 0xff;
      m[1] = (len >>> 8) & 0xff;
      m[2] = len & 0xff;
      return m;
    }
    case 2:
      m[3] = r.int(16);
      return m;
    case 3:
      m[4] = r.int(256);
      return m;
    case 4:
      m.writeUInt32BE(pick(r, [0, 1, 2, 3, 4, 0x7fffffff, 0x80000001, r.int(30)]) >>> 0, 5);
      return m;
    default:
      return m.subarray(0, r.int(m.length));
  }
}

/**
 * Walk the frames the server will see in `bytes`: the most it can take as a new stream id (HEADERS), and the zero
 * bytes that complete a frame cut short at the end (so that a probe that follows is read as frames of its own).
 * `fatal`: a frame header above 16 KiB, which ends the connection whatever follows.
 */
function walkFrames(bytes: Buffer): { filler: Buffer; maxHeadersId: number; fatal: boolean; goaway: boolean } {
  let at = 0;
  let maxHeadersId = 0;
  let goaway = false;
  while (at < bytes.length) {
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    bytes.copy(header, 0, at, Math.min(bytes.length, at + FRAME_HEADER_BYTES));
    const len = (header[0] as number) << 16 | (header[1] as number) << 8 | (header[2] as number);
    if (len > 16_384) return { filler: Buffer.alloc(0), maxHeadersId, fatal: true, goaway };
    if (header[3] === HEADERS) maxHeadersId = Math.max(maxHeadersId, header.readUInt32BE(5) & MAX_ID);
    if (header[3] === GOAWAY) goaway = true;
    at += FRAME_HEADER_BYTES + len;
  }
  return { filler: Buffer.alloc(at - bytes.length), maxHeadersId, fatal: false, goaway };
}

describe('fuzz: seeded random frame sequences', () => {
  let backend: Backend;
  let proxy: ProxyUnderTest;
  const CONNECTIONS = 300;
  const SEED = 0x5eed2026;

  before(async () => {
    backend = await startBackend();
    proxy = await startProxy({ address: '127.0.0.1', port: backend.port });
  });

  after(async () => {
    await proxy.close();
    await backend.close();
  });

  test(`${CONNECTIONS} connections of 1-20 frames: each ends with GOAWAY / close or stays usable; nothing throws`, async (t) => {
    const thrown: unknown[] = [];
    const onThrow = (err: unknown): void => {
      thrown.push(err);
    };
    process.on('uncaughtException', onThrow);
    process.on('unhandledRejection', onThrow);
    const outcomes = new Map<string, number>();
    try {
      for (let i = 0; i < CONNECTIONS; i++) {
        const seed = SEED + i;
        const r = prng(seed);
        const c = await WireClient.connect(proxy.port);
        const st: FuzzState = { nextId: 1, opened: [] };
        // How hostile this connection is: from all valid frames to half of them mutated and some random bytes.
        const mutated = r.next() * 0.5;
        const random = r.next() * 0.15;
        const parts: Buffer[] = [];
        for (let n = 1 + r.int(20); n > 0; n--) {
          const p = r.next();
          if (p < random) parts.push(r.bytes(1 + r.int(64)));
          else if (p < random + mutated) parts.push(mutate(r, validFuzzFrame(r, st, c.encoder)));
          else parts.push(validFuzzFrame(r, st, c.encoder));
        }
        const bytes = Buffer.concat(parts);
        const walk = walkFrames(bytes);
        const replay = `seed ${seed}: ${bytes.toString('hex')}`;
        c.send(bytes, walk.filler);
        // The probe: a PING the server answers unless the sequence ended the connection (or left a header block
        // open, which makes the PING a connection error).
        const probe = Buffer.from('fuzzprob');
        c.send(pingFrame(probe));
        const acked = await c.until(
          () => (c.goaway !== undefined || c.closed ? false : c.frames.some((f) => f.type === PING && (f.flags & FLAG_ACK) !== 0 && f.payload.equals(probe)) ? true : undefined),
          `the probe PING's answer, GOAWAY or close (${replay})`, WAIT_MS, false,
        );
        let outcome: string;
        if (!acked) {
          outcome = c.goaway !== undefined ? `goaway ${codeName(c.goaway.code)}` : 'closed';
          // Closing without a GOAWAY of its own is the server's answer to the client's GOAWAY (no stream left).
          if (c.goaway === undefined) assert.ok(walk.goaway, `closed without GOAWAY (${replay})`);
          if (c.goaway !== undefined) {
            assert.notEqual(c.goaway.code, NO_ERROR, replay);
            await c.waitClosed();
          }
        } else {
          // Still usable: a new request is answered (when a stream id is left above what the sequence used).
          const used = Math.max(walk.maxHeadersId, st.nextId);
          const id = used % 2 === 0 ? used + 1 : used + 2; // odd, above every id the sequence may have opened
          if (walk.fatal) assert.fail(`the PING was answered after a frame above 16 KiB (${replay})`);
          if (id <= MAX_ID) {
            c.get(id, '/probe');
            const s = await c.until(() => {
              const x = c.stream(id);
              return x.status !== undefined || x.rst !== undefined || c.goaway !== undefined ? x : undefined;
            }, `the probe request on stream ${id} (${replay})`);
            assert.equal(s.rst, undefined, `probe stream reset with ${codeName(s.rst ?? 0)} (${replay})`);
            if (c.goaway === undefined) assert.equal(s.status, 200, replay);
          }
          outcome = c.goaway !== undefined ? `goaway ${codeName(c.goaway.code)} (after the probe)` : 'usable';
        }
        assert.deepEqual(c.wireErrors, [], replay);
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        c.destroy();
      }
      // Every connection is gone on the engine's side too, and a fresh one is served.
      await waitFor(() => proxy.engine.activeConnections === 0, 'the engine to drop every fuzz connection', 10_000);
      const fresh = await WireClient.connect(proxy.port);
      await fresh.expectOk(1, '/after-fuzz', 'ok');
    } finally {
      process.off('uncaughtException', onThrow);
      process.off('unhandledRejection', onThrow);
    }
    t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1])))}`);
    assert.deepEqual(thrown, []);
  });
});
