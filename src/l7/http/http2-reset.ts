// Resetting an HTTP/2 stream so that the peer sees RST_STREAM, not a complete message.
//
// Node's `Http2Stream.close(code)` first ends the writable side (queueing END_STREAM) and flushes pending data before
// it submits RST_STREAM (src/node_http2.cc, Http2Stream::SubmitRstStream). When the peer has already finished its
// own side (a server answering a GET, a client whose response is complete), that END_STREAM closes the stream, the
// RST_STREAM is dropped, and the peer takes a truncated body for a complete one. Marking the writable side as ending
// beforehand skips that end(): only RST_STREAM goes out. Verified on Node 20 (test/integration/l7/http2.test.ts).
import type { Http2Stream } from 'node:http2';

export function resetStream(stream: Http2Stream, code: number): void {
  if (stream.destroyed || stream.closed) return;
  const ws = (stream as unknown as { _writableState?: { ending: boolean } })._writableState;
  if (ws !== undefined && !ws.ending) ws.ending = true;
  stream.close(code);
}
