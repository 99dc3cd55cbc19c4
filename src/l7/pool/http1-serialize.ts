// Serialising HTTP/1.1 heads and chunked framing for raw sockets. Header values are latin1 byte strings end to end
// (what our parsers decode is written back byte for byte); a request head is written into one buffer
// (src/l7/http/head-bytes.ts), the other heads are built as one latin1 string.
// Names and values were validated when they were parsed (RequestParser downstream, ResponseParser upstream) or come from
// HTTP/2 (nghttp2 validates), so no re-validation happens here.
import { fieldsSize, writeHead } from '../http/head-bytes.js';

/** The request head as the bytes to write (one buffer, no intermediate strings). */
export function requestHead(method: string, target: string, headers: readonly string[]): Buffer {
  const line = `${method} ${target} HTTP/1.1\r\n`;
  const buf = Buffer.allocUnsafe(line.length + fieldsSize(headers) + 2);
  writeHead(buf, 0, line, headers, '\r\n');
  return buf;
}

export function responseHead(statusCode: number, statusText: string, headers: readonly string[]): string {
  let s = `HTTP/1.1 ${statusCode} ${statusText}\r\n`;
  for (let i = 0; i < headers.length; i += 2) s += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`;
  return `${s}\r\n`;
}

/** "<hex size>\r\n" before a chunk of `length` bytes (length > 0). */
export function chunkHeader(length: number): string {
  return `${length.toString(16)}\r\n`;
}

/** The last chunk with its trailer section. */
export function lastChunk(trailers: readonly string[]): string {
  let s = '0\r\n';
  for (let i = 0; i < trailers.length; i += 2) s += `${trailers[i] as string}: ${trailers[i + 1] as string}\r\n`;
  return `${s}\r\n`;
}
