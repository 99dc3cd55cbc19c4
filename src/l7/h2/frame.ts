// The HTTP/2 wire vocabulary (RFC 9113 §4, §6, §7): frame types, flags, error codes, settings, and the writers of the
// frames remora sends. Parsing is in h2-connection.ts, which reads frame headers in place.

export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER_BYTES = 9;

/** Frame types (RFC 9113 §6). */
export const DATA = 0x0;
export const HEADERS = 0x1;
export const PRIORITY = 0x2;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PUSH_PROMISE = 0x5;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const WINDOW_UPDATE = 0x8;
export const CONTINUATION = 0x9;

/** Flags. */
export const FLAG_END_STREAM = 0x1;
export const FLAG_ACK = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_PADDED = 0x8;
export const FLAG_PRIORITY = 0x20;

/** Error codes (RFC 9113 §7). */
export const NO_ERROR = 0x0;
export const PROTOCOL_ERROR = 0x1;
export const INTERNAL_ERROR = 0x2;
export const FLOW_CONTROL_ERROR = 0x3;
export const STREAM_CLOSED = 0x5;
export const FRAME_SIZE_ERROR = 0x6;
export const REFUSED_STREAM = 0x7;
export const CANCEL = 0x8;
export const COMPRESSION_ERROR = 0x9;
export const CONNECT_ERROR = 0xa;
export const ENHANCE_YOUR_CALM = 0xb;

/** Settings identifiers (RFC 9113 §6.5.2; RFC 8441 §3). */
export const SETTINGS_HEADER_TABLE_SIZE = 0x1;
export const SETTINGS_ENABLE_PUSH = 0x2;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
export const SETTINGS_MAX_FRAME_SIZE = 0x5;
export const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

export const DEFAULT_WINDOW = 65_535;
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const MAX_FRAME_SIZE_LIMIT = 16_777_215;
export const MAX_WINDOW = 2 ** 31 - 1;
export const MAX_STREAM_ID = 2 ** 31 - 1;

/** Writes a frame header at `off` of `buf`. */
export function writeFrameHeader(buf: Buffer, off: number, length: number, type: number, flags: number, streamId: number): void {
  buf[off] = (length >>> 16) & 0xff;
  buf[off + 1] = (length >>> 8) & 0xff;
  buf[off + 2] = length & 0xff;
  buf[off + 3] = type;
  buf[off + 4] = flags;
  buf.writeUInt32BE(streamId & MAX_STREAM_ID, off + 5);
}

/** A frame with no payload (an empty DATA with END_STREAM, a SETTINGS ACK). */
export function emptyFrame(type: number, flags: number, streamId: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  writeFrameHeader(b, 0, 0, type, flags, streamId);
  return b;
}

/** A frame header for a payload written separately (DATA with the caller's buffer). */
export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  writeFrameHeader(b, 0, length, type, flags, streamId);
  return b;
}

/** A frame whose payload is one 32-bit value (RST_STREAM's code, WINDOW_UPDATE's increment). */
export function u32Frame(type: number, streamId: number, value: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(b, 0, 4, type, 0, streamId);
  b.writeUInt32BE(value >>> 0, FRAME_HEADER_BYTES);
  return b;
}

/** SETTINGS with [id, value, id, value, ...]. */
export function settingsFrame(pairs: readonly number[]): Buffer {
  const n = pairs.length / 2;
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 6 * n);
  writeFrameHeader(b, 0, 6 * n, SETTINGS, 0, 0);
  for (let i = 0; i < n; i++) {
    b.writeUInt16BE(pairs[2 * i] as number, FRAME_HEADER_BYTES + 6 * i);
    b.writeUInt32BE((pairs[2 * i + 1] as number) >>> 0, FRAME_HEADER_BYTES + 6 * i + 2);
  }
  return b;
}

export function goawayFrame(lastStreamId: number, code: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 8);
  writeFrameHeader(b, 0, 8, GOAWAY, 0, 0);
  b.writeUInt32BE(lastStreamId & MAX_STREAM_ID, FRAME_HEADER_BYTES);
  b.writeUInt32BE(code >>> 0, FRAME_HEADER_BYTES + 4);
  return b;
}

/**
 * A header block as HEADERS plus as many CONTINUATION frames as the peer's SETTINGS_MAX_FRAME_SIZE needs, in one
 * buffer (one write).
 */
export function headerFrames(block: Buffer, streamId: number, endStream: boolean, maxFrameSize: number): Buffer {
  const first = FLAG_END_STREAM & (endStream ? 1 : 0);
  if (block.length <= maxFrameSize) {
    const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + block.length);
    writeFrameHeader(b, 0, block.length, HEADERS, first | FLAG_END_HEADERS, streamId);
    block.copy(b, FRAME_HEADER_BYTES);
    return b;
  }
  const frames = Math.ceil(block.length / maxFrameSize);
  const b = Buffer.allocUnsafe(frames * FRAME_HEADER_BYTES + block.length);
  let off = 0;
  for (let i = 0, at = 0; i < frames; i++, at += maxFrameSize) {
    const len = Math.min(maxFrameSize, block.length - at);
    const last = i === frames - 1 ? FLAG_END_HEADERS : 0;
    writeFrameHeader(b, off, len, i === 0 ? HEADERS : CONTINUATION, (i === 0 ? first : 0) | last, streamId);
    block.copy(b, off + FRAME_HEADER_BYTES, at, at + len);
    off += FRAME_HEADER_BYTES + len;
  }
  return b;
}
