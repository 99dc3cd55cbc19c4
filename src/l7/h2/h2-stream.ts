// One HTTP/2 stream of an H2Connection (h2-connection.ts), either side: the frames it sends (HEADERS, DATA with
// flow control, trailers, RST_STREAM) and what it receives, handed to its H2StreamHandler.
//
// Send side: write() sends as much of a chunk as the stream's and the connection's send windows allow and queues the
// rest; it returns false while something is queued or the connection's socket is congested, and the handler's
// onDrain() follows when both are clear. end() sends the trailers (HEADERS with END_STREAM) or an empty DATA frame
// with END_STREAM once the queue is out.
//
// Receive side: DATA is handed to onData() and acknowledged (WINDOW_UPDATE) as it is delivered; pause() holds what
// arrives (bounded by the receive window the peer must respect) and withholds the acknowledgement until resume().
// A declared content-length (expectLength) is enforced: more DATA, or END_STREAM short of it, resets the stream with
// PROTOCOL_ERROR (RFC 9113 §8.1.1).
import type { H2Connection } from './h2-connection.js';

export interface H2StreamHandler {
  /**
   * A header block that is not trailers: on the client side the response heads (interim 1xx ones, then the final
   * one). The server side's request head comes to the connection owner's onStream instead.
   */
  onHeaders(fields: string[], endStream: boolean): void;
  /** A DATA payload (never empty). */
  onData(chunk: Buffer): void;
  /** END_STREAM from the peer, with the trailers (empty when the stream ended with DATA). */
  onEnd(trailers: string[]): void;
  /**
   * The stream ended without completing: RST_STREAM from the peer (its code), the connection lost or failed (the
   * connection's error code), or, client side, refused by the peer's GOAWAY (REFUSED_STREAM, `refused` true: never
   * processed). Nothing is called after it.
   */
  onReset(code: number, refused: boolean): void;
  /** After write() returned false: the stream can take more. */
  onWritable(): void;
}

const NOOP_HANDLER: H2StreamHandler = {
  onHeaders() {},
  onData() {},
  onEnd() {},
  onReset() {},
  onWritable() {},
};

export class H2Stream {
  readonly id: number;
  readonly #conn: H2Connection;
  handler: H2StreamHandler = NOOP_HANDLER;
  /** What this side may still send (the peer's window for this stream). */
  sendWindow: number;
  /** What the peer may still send before we acknowledge. */
  recvWindow: number;
  /** Delivered but not yet acknowledged. */
  unacked = 0;
  /** We sent END_STREAM (or reset). */
  localEnded = false;
  /** The peer sent END_STREAM (or reset). */
  remoteEnded = false;
  closed = false;
  /** Client side: the final response head arrived. Server side: always true (the request head opened it). */
  headReceived: boolean;
  /** The head went out (HEADERS sent, not 1xx). */
  headSent = false;
  /**
   * A CONNECT tunnel: each side ends on its own (a TCP half-close), so the server side does not reset the client's
   * side once its own has ended, as it does for a response complete before its request.
   */
  tunnel = false;
  /** Data waiting for window, in order. */
  #queue: Buffer[] = [];
  #queued = 0;
  /** end() was called while data was queued: the trailers to send after it. */
  #endPending: readonly string[] | undefined;
  #wantDrain = false;
  #paused = false;
  /** Data held while paused, and whether END_STREAM (with trailers) came after it. */
  #inbox: Buffer[] | undefined;
  #inboxEnd: string[] | undefined;
  #expected = -1;
  #received = 0;

  constructor(conn: H2Connection, id: number, sendWindow: number, recvWindow: number, headReceived: boolean) {
    this.#conn = conn;
    this.id = id;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
    this.headReceived = headReceived;
  }

  /** Bytes queued for the send window. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** The body must be exactly `n` bytes (content-length). */
  expectLength(n: number): void {
    this.#expected = n;
  }

  // ---- sending ----

  /** Send a header block: [':status', '200'] or the request's pseudo-headers, then `fields`. */
  sendHeaders(pseudo: readonly string[], fields: readonly string[], endStream: boolean): void {
    if (this.localEnded || this.closed) return;
    const informational = pseudo[0] === ':status' && (pseudo[1] as string).charCodeAt(0) === 49;
    if (!informational) this.headSent = true;
    this.#conn.sendHeaderBlock(this, pseudo, fields, endStream);
    if (endStream) this.#localEnd();
  }

  write(chunk: Buffer): boolean {
    if (this.localEnded || this.closed) return true;
    if (chunk.length === 0) return this.#queue.length === 0 && !this.#conn.congested;
    if (this.#queue.length > 0) {
      this.#queue.push(chunk);
      this.#queued += chunk.length;
      this.#wantDrain = true;
      return false;
    }
    const sent = this.#conn.sendData(this, chunk, 0, false);
    if (sent < chunk.length) {
      const rest = sent === 0 ? chunk : chunk.subarray(sent);
      this.#queue.push(rest);
      this.#queued += rest.length;
      this.#conn.blocked(this);
      this.#wantDrain = true;
      return false;
    }
    if (this.#conn.congested) {
      this.#wantDrain = true;
      this.#conn.waitDrain(this);
      return false;
    }
    return true;
  }

  /** End the stream: trailers (HEADERS with END_STREAM) when there are any, else END_STREAM on an empty DATA frame. */
  end(trailers: readonly string[] = []): void {
    if (this.localEnded || this.closed || this.#endPending !== undefined) return;
    if (this.#queue.length > 0) {
      this.#endPending = trailers;
      return;
    }
    this.#finish(trailers);
  }

  #finish(trailers: readonly string[]): void {
    if (trailers.length > 0) this.#conn.sendHeaderBlock(this, [], trailers, true);
    else this.#conn.sendEndStream(this);
    this.#localEnd();
  }

  #localEnd(): void {
    this.localEnded = true;
    this.#conn.localEnded(this);
  }

  /**
   * Send RST_STREAM and close; the handler hears nothing more. `clientFault`: the peer broke the protocol on this
   * stream (a malformed message): server side, it counts towards the rapid-reset limit as the peer's own resets do.
   */
  reset(code: number, clientFault = false): void {
    if (this.closed) return;
    this.handler = NOOP_HANDLER;
    this.#conn.resetStream(this, code, clientFault);
  }

  /** The connection: send what the windows now allow. Returns true when the queue is empty. */
  flushQueue(): boolean {
    while (this.#queue.length > 0) {
      const head = this.#queue[0] as Buffer;
      const sent = this.#conn.sendData(this, head, 0, false);
      this.#queued -= sent;
      if (sent < head.length) {
        if (sent > 0) this.#queue[0] = head.subarray(sent);
        return false;
      }
      this.#queue.shift();
    }
    const t = this.#endPending;
    if (t !== undefined) {
      this.#endPending = undefined;
      this.#finish(t);
    }
    return true;
  }

  /** The connection: the queue is out and the socket can take more. */
  drained(): void {
    if (!this.#wantDrain || this.closed || this.#queue.length > 0) return;
    this.#wantDrain = false;
    this.handler.onWritable();
  }

  // ---- receiving ----

  /** Stop delivering DATA (and acknowledging it) until resume(). */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    const inbox = this.#inbox;
    if (inbox !== undefined) {
      this.#inbox = undefined;
      for (let i = 0; i < inbox.length; i++) {
        const chunk = inbox[i] as Buffer;
        this.handler.onData(chunk);
        this.#conn.consumed(this, chunk.length);
        if (this.#paused) {
          // paused again inside onData: keep the rest for the next resume()
          if (i + 1 < inbox.length) this.#inbox = inbox.slice(i + 1);
          return;
        }
      }
    }
    const end = this.#inboxEnd;
    if (end !== undefined) {
      this.#inboxEnd = undefined;
      this.handler.onEnd(end);
    }
  }

  /** The connection: a DATA payload for this stream (`flow` bytes counted against the windows, padding included). */
  receiveData(chunk: Buffer, endStream: boolean): void {
    if (this.#expected >= 0) {
      this.#received += chunk.length;
      if (this.#received > this.#expected || (endStream && this.#received !== this.#expected)) {
        this.#malformed();
        return;
      }
    }
    if (endStream) this.remoteEnded = true;
    if (this.#paused) {
      if (chunk.length > 0) (this.#inbox ??= []).push(chunk);
      if (endStream) this.#inboxEnd = [];
    } else {
      if (chunk.length > 0) {
        this.handler.onData(chunk);
        this.#conn.consumed(this, chunk.length);
      }
      if (endStream && !this.closed) {
        if (this.#paused) this.#inboxEnd = [];
        else this.handler.onEnd([]);
      }
    }
    if (endStream) this.#conn.remoteEnded(this);
  }

  /** The connection: a header block on this open stream (after the head: trailers; client side: response heads). */
  receiveHeaders(fields: string[], endStream: boolean, tooLarge: boolean): void {
    if (tooLarge) {
      this.#fail(1 /* PROTOCOL_ERROR */);
      return;
    }
    if (!this.headReceived) {
      // Client side: an interim (1xx) head, or the final one.
      const status = fields[0] === ':status' ? (fields[1] as string) : '';
      if (status.charCodeAt(0) === 49 && status.length === 3) {
        if (endStream) {
          this.#fail(1);
          return;
        }
        this.handler.onHeaders(fields, false);
        return;
      }
      this.headReceived = true;
      if (endStream) {
        if (this.#expected > 0) {
          this.#malformed();
          return;
        }
        this.remoteEnded = true;
      }
      this.handler.onHeaders(fields, endStream);
      if (endStream) this.#conn.remoteEnded(this);
      return;
    }
    // Trailers: they end the stream (RFC 9113 §8.1).
    if (!endStream || (this.#expected >= 0 && this.#received !== this.#expected)) {
      this.#malformed();
      return;
    }
    this.remoteEnded = true;
    if (this.#paused) this.#inboxEnd = fields;
    else this.handler.onEnd(fields);
    this.#conn.remoteEnded(this);
  }

  /** A malformed message (RFC 9113 §8.1.1): a stream error of type PROTOCOL_ERROR; the handler hears of it. */
  #malformed(): void {
    this.#fail(1);
  }

  #fail(code: number): void {
    if (this.closed) return;
    const h = this.handler;
    this.reset(code, true);
    h.onReset(code, false);
  }

  /** The connection: the peer reset the stream, or the connection ended under it. */
  peerReset(code: number, refused: boolean): void {
    const h = this.handler;
    this.handler = NOOP_HANDLER;
    this.markClosed();
    h.onReset(code, refused);
  }

  /** The connection closed the stream (both sides ended, or reset). */
  markClosed(): void {
    this.closed = true;
    this.#queue = [];
    this.#queued = 0;
  }
}
