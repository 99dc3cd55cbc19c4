// Detect stage: reads the client's first bytes, keeps every one of them (they are forwarded later, exactly once, in
// order, by whoever takes the connection) and decides what the connection carries with the sniffer
// (src/l4/detect/protocol-sniffer.ts). It ends at the first of:
//   * the sniffer decides (TLS ClientHello complete, HTTP/2 preface, HTTP/1 request line, or opaque);
//   * the pre-dialed upstream has something to say first (data or its FIN): server-first -> opaque, at once; except an
//     HTTP/2 server's preface (SETTINGS, sent at once by every h2c server), after which the client still decides;
//   * the client half-closes (FIN) -> opaque 'eof';
//   * the deadline (detect_timeout) -> opaque 'timeout'. Not a close: the connection goes on as opaque TCP.
// With `wantHost`, an HTTP/1 decision is followed by reading the rest of the request head (bounded) for its Host,
// so that a destination known only by name can be routed at L4.
// In hold mode (`sniff: false`) the stage only keeps the client's bytes and its FIN while the upstream is dialed;
// the owner ends it with stop(). The client is paused once HOLD_LIMIT bytes are held (TCP backpressure).
// When the stage ends, the client socket is paused and every listener of the stage is removed.
import type { Socket } from 'node:net';
import { scanHttp1Host } from './http1-host.js';
import { createSniffer, type SniffDecision, type Sniffer, type SnifferOptions } from './protocol-sniffer.js';

export interface DetectStageOptions {
  /** Sniff the client's bytes; false = hold them only (the owner calls stop()). */
  readonly sniff: boolean;
  /** Deadline for a decision in ms (sniff mode); 0 = none. */
  readonly timeoutMs: number;
  /** After an HTTP/1 request line, read the rest of the request head for its Host. */
  readonly wantHost: boolean;
  readonly sniffer?: SnifferOptions | undefined;
}

export interface DetectResult {
  /** The sniffer's decision; undefined in hold mode. */
  readonly decision: SniffDecision | undefined;
  /** Every byte read from the client so far, in order (may be empty). */
  readonly head: Buffer;
  /** The client's FIN has been read: forward it after `head`. */
  readonly clientEnded: boolean;
  /** TLS SNI, or HTTP/1 Host (with wantHost), when the client sent one. */
  readonly hostname: string | undefined;
}

/** Hold mode: stop reading the client beyond this many bytes until the upstream is there. */
export const HOLD_LIMIT = 64 * 1024;
/** Longest HTTP/1 request head read for its Host. */
export const HOST_SCAN_LIMIT = 16 * 1024;
const EMPTY = Buffer.alloc(0);

/** The first bytes of an HTTP/2 server: a SETTINGS frame (type 4) on stream 0, without ACK, of whole settings. */
export function isHttp2ServerPreface(b: Buffer): boolean {
  if (b.length < 9) return false;
  const length = b.readUIntBE(0, 3);
  return b[3] === 0x04 && ((b[4] ?? 0) & 0x01) === 0 && (b.readUInt32BE(5) & 0x7fffffff) === 0 && length % 6 === 0;
}

export class DetectStage {
  readonly #down: Socket;
  readonly #opts: DetectStageOptions;
  readonly #onDone: (result: DetectResult) => void;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #clientEnded = false;
  #sniffer: Sniffer | undefined;
  #decision: SniffDecision | undefined;
  #scanningHost = false;
  #hostname: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #deadlineAt = Infinity;
  #upstream: Socket | undefined;
  #finished = false;

  constructor(downstream: Socket, opts: DetectStageOptions, onDone: (result: DetectResult) => void) {
    this.#down = downstream;
    this.#opts = opts;
    this.#onDone = onDone;
    downstream.on('data', this.#onData);
    downstream.on('end', this.#onEnd);
    if (opts.sniff && opts.timeoutMs > 0) {
      this.#deadlineAt = Date.now() + opts.timeoutMs;
      this.#timer = setTimeout(this.#onTimeout, opts.timeoutMs);
    }
  }

  /** Bring the deadline forward to at most `ms` from now (e.g. the pre-dialed upstream failed: nobody will speak first). */
  shortenDeadline(ms: number): void {
    if (this.#finished || !this.#opts.sniff || this.#scanningHost) return;
    const at = Date.now() + ms;
    if (at >= this.#deadlineAt) return;
    this.#deadlineAt = at;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(this.#onTimeout, ms);
  }

  get finished(): boolean { return this.#finished; }
  get heldBytes(): number { return this.#heldBytes; }
  get clientEnded(): boolean { return this.#clientEnded; }

  /** The pre-dialed upstream is connected: if it speaks (or closes) before the client decides, it is server-first. */
  watchUpstream(upstream: Socket): void {
    if (this.#finished || !this.#opts.sniff || this.#scanningHost) return;
    this.#upstream = upstream;
    upstream.once('readable', this.#onServerFirst);
  }

  /** End the stage now (hold mode, or the owner no longer waits) and return what was read. */
  stop(): DetectResult {
    this.#cleanup();
    return this.#result();
  }

  /** Abandon the stage (the connection is being torn down). */
  cancel(): void {
    this.#cleanup();
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    if (!this.#opts.sniff) {
      if (this.#heldBytes >= HOLD_LIMIT) this.#down.pause();
      return;
    }
    if (this.#scanningHost) {
      this.#scanHost();
      return;
    }
    this.#sniffer ??= createSniffer(this.#opts.sniffer);
    const r = this.#sniffer.push(chunk);
    if (r.kind === 'need-more') return;
    this.#decided(r);
  };

  readonly #onEnd = (): void => {
    this.#clientEnded = true;
    if (!this.#opts.sniff) return;
    if (this.#scanningHost) {
      this.#finish();
      return;
    }
    this.#decided((this.#sniffer ??= createSniffer(this.#opts.sniffer)).finish('eof'));
  };

  readonly #onTimeout = (): void => {
    this.#timer = undefined;
    if (this.#scanningHost) {
      this.#finish();
      return;
    }
    this.#decided((this.#sniffer ??= createSniffer(this.#opts.sniffer)).finish('timeout'));
  };

  readonly #onServerFirst = (): void => {
    const upstream = this.#upstream;
    this.#upstream = undefined;
    if (this.#finished || this.#scanningHost) return;
    // An HTTP/2 server sends its connection preface (a SETTINGS frame) as soon as the connection is up, without
    // waiting for the client: that is not a server-first protocol. Put the bytes back and keep listening to the client.
    const chunk = upstream?.read() as Buffer | null | undefined;
    if (chunk !== null && chunk !== undefined) {
      upstream?.unshift(chunk);
      if (isHttp2ServerPreface(chunk)) return;
    }
    this.#decided((this.#sniffer ??= createSniffer(this.#opts.sniffer)).finish('server-first'));
  };

  #decided(d: SniffDecision): void {
    if (this.#finished || this.#decision !== undefined) return;
    this.#decision = d;
    if (d.kind === 'tls') {
      this.#hostname = d.sni;
    } else if (d.kind === 'http1' && this.#opts.wantHost && !this.#clientEnded) {
      // Keep reading the head; the upstream can no longer be "first" (the client spoke).
      this.#scanningHost = true;
      this.#upstream?.off('readable', this.#onServerFirst);
      this.#upstream = undefined;
      this.#scanHost();
      return;
    }
    this.#finish();
  }

  #scanHost(): void {
    const head = this.#joined();
    const scan = scanHttp1Host(head, HOST_SCAN_LIMIT);
    if (!scan.done) return;
    this.#hostname = scan.host;
    this.#finish();
  }

  #joined(): Buffer {
    if (this.#held.length === 0) return EMPTY;
    if (this.#held.length === 1) return this.#held[0] as Buffer;
    const all = Buffer.concat(this.#held, this.#heldBytes);
    this.#held = [all];
    return all;
  }

  #finish(): void {
    if (this.#finished) return;
    this.#cleanup();
    this.#onDone(this.#result());
  }

  #result(): DetectResult {
    return { decision: this.#decision, head: this.#joined(), clientEnded: this.#clientEnded, hostname: this.#hostname };
  }

  #cleanup(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#down.off('data', this.#onData);
    this.#down.off('end', this.#onEnd);
    if (!this.#clientEnded) this.#down.pause();
    this.#upstream?.off('readable', this.#onServerFirst);
    this.#upstream = undefined;
    this.#sniffer = undefined;
  }
}
