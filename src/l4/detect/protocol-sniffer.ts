// Protocol detection from the client's first bytes: TLS ClientHello (with SNI and ALPN), the HTTP/2 prior-knowledge
// preface, an HTTP/1.x request line, or opaque. Pure: no sockets, no timers, no clock. The caller feeds every chunk
// it reads with push() and acts on the first result that is not 'need-more'; see docs/detection.md.
//
// The sniffer never consumes bytes. It copies only what it must (a ClientHello, at most maxTlsHelloBytes) and keeps
// no reference to the caller's chunks, so the caller keeps its own list and forwards it exactly once, in order.
// It never throws on input: anything it cannot make sense of is { kind: 'opaque', reason, detail }.
import { Http1RequestLineMatcher, isTchar } from './protocol-http1-request-line.js';
import { parseClientHello, type ClientHelloInfo } from './tls-client-hello.js';
import { CONTENT_TYPE_HANDSHAKE, TlsHelloAssembler } from './tls-hello-assembler.js';

/** The HTTP/2 connection preface a prior-knowledge client sends first (RFC 9113 §3.4). */
export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface SnifferOptions {
  /** Stream bytes the whole ClientHello (record headers included) must fit in; beyond: opaque 'too-large'. */
  readonly maxTlsHelloBytes?: number;
  /** Bytes the HTTP/1 request line (CRLF included) must fit in; beyond: opaque 'too-large'. */
  readonly maxHttpRequestLineBytes?: number;
}

export const DEFAULT_SNIFFER_OPTIONS: Readonly<Required<SnifferOptions>> = Object.freeze({
  maxTlsHelloBytes: 16 * 1024,
  maxHttpRequestLineBytes: 8 * 1024,
});

/** Caps must lie in this range (bytes). The lower bound still fits a minimal ClientHello and a short request line. */
export const MIN_SNIFF_CAP = 64;
export const MAX_SNIFF_CAP = 1024 * 1024;

/**
 * Why a connection is opaque:
 * - unrecognized: the bytes are none of TLS ClientHello / HTTP/2 preface / HTTP/1.x request line;
 * - tls-malformed: it started as a TLS ClientHello (0x16 0x03 0x0X, handshake type 1) but broke a rule later;
 * - too-large: still undecided at the configured cap;
 * - eof / timeout / server-first: the caller ended detection with finish() before the bytes decided it;
 * - internal-error: a bug in the sniffer (it is caught, so the connection still flows as opaque).
 */
export type OpaqueReason = 'unrecognized' | 'tls-malformed' | 'too-large' | 'eof' | 'timeout' | 'server-first' | 'internal-error';

/** Why the caller stops waiting for bytes: client half-closed, the detection deadline passed, the server spoke first. */
export type FinishReason = 'eof' | 'timeout' | 'server-first';

export interface SniffNeedMore {
  readonly kind: 'need-more';
}

export interface SniffTls {
  readonly kind: 'tls';
  /** server_name (ext 0), lower-cased; absent when the client sent none. */
  readonly sni?: string;
  /** ALPN protocol names (ext 16) in the client's order; [] when absent. */
  readonly alpn: readonly string[];
  /** Stream bytes from offset 0 through the last byte of the ClientHello (record headers included). */
  readonly helloBytes: number;
  /** The reassembled handshake message (type, uint24 length, body), without record headers. A private copy. */
  readonly clientHello: Buffer;
  /** Everything parsed from the hello (versions, cipher suites, extension order). */
  readonly hello: ClientHelloInfo;
  readonly decidedAt: number;
}

export interface SniffHttp1 {
  readonly kind: 'http1';
  /** The request method exactly as sent (case-sensitive token). */
  readonly method: string;
  /** "HTTP/1.1", "HTTP/1.0" (any "HTTP/1." DIGIT). */
  readonly version: string;
  readonly decidedAt: number;
}

export interface SniffHttp2 {
  readonly kind: 'http2';
  readonly decidedAt: number;
}

export interface SniffOpaque {
  readonly kind: 'opaque';
  readonly reason: OpaqueReason;
  /** Human-readable cause, for debug logs (not for metrics labels: use `reason`). */
  readonly detail: string;
  readonly decidedAt: number;
}

/**
 * The sniffer's verdict. Every final result carries `decidedAt`: how many stream bytes (from offset 0) were needed
 * to decide. 'need-more' is the only non-final result.
 */
export type SniffResult = SniffNeedMore | SniffTls | SniffHttp1 | SniffHttp2 | SniffOpaque;
export type SniffDecision = Exclude<SniffResult, SniffNeedMore>;

export interface Sniffer {
  /**
   * Examine the next chunk of the client stream. Returns 'need-more' until the bytes decide, then the decision.
   * After a decision, further chunks are ignored and the same decision is returned. Never throws on any input.
   */
  push(chunk: Uint8Array): SniffResult;
  /**
   * Stop detection: the client ended its side ('eof'), the detection deadline passed ('timeout'), or the server sent
   * bytes first ('server-first'). An undecided sniffer becomes opaque with that reason; a decided one is unchanged.
   */
  finish(reason: FinishReason): SniffDecision;
  /** The current result ('need-more' or the decision). */
  readonly result: SniffResult;
  /** Total bytes pushed before and including the chunk that decided (chunks pushed after a decision not counted). */
  readonly bytesSeen: number;
}

const NEED_MORE: SniffNeedMore = Object.freeze({ kind: 'need-more' });

type Mode = 'start' | 'tls' | 'text' | 'decided';

class ProtocolSniffer implements Sniffer {
  readonly #maxTls: number;
  readonly #maxLine: number;
  #result: SniffResult = NEED_MORE;
  #mode: Mode = 'start';
  #seen = 0;
  #tls: TlsHelloAssembler | undefined;
  #h1: Http1RequestLineMatcher | undefined;
  #h2Alive = true;

  constructor(maxTls: number, maxLine: number) {
    this.#maxTls = maxTls;
    this.#maxLine = maxLine;
  }

  get result(): SniffResult {
    return this.#result;
  }

  get bytesSeen(): number {
    return this.#seen;
  }

  push(chunk: Uint8Array): SniffResult {
    if (this.#mode === 'decided' || chunk.length === 0) return this.#result;
    const before = this.#seen;
    this.#seen += chunk.length;
    try {
      if (this.#mode === 'start') this.#start(chunk[0] ?? 0);
      if (this.#mode === 'tls') this.#pushTls(chunk);
      else if (this.#mode === 'text') this.#pushText(chunk, before);
    } catch (e) {
      this.#decide({
        kind: 'opaque',
        reason: 'internal-error',
        detail: `sniffer error: ${e instanceof Error ? e.message : String(e)}`,
        decidedAt: this.#seen,
      });
    }
    return this.#result;
  }

  finish(reason: FinishReason): SniffDecision {
    const current = this.#result;
    if (current.kind !== 'need-more') return current;
    return this.#decide({ kind: 'opaque', reason, detail: this.#waitingFor(), decidedAt: this.#seen });
  }

  #decide(result: SniffDecision): SniffDecision {
    this.#result = result;
    this.#mode = 'decided';
    // Release parser state (the TLS assembler may hold up to maxTlsHelloBytes).
    this.#tls = undefined;
    this.#h1 = undefined;
    return result;
  }

  #opaque(reason: OpaqueReason, detail: string, decidedAt: number): void {
    this.#decide({ kind: 'opaque', reason, detail, decidedAt });
  }

  #waitingFor(): string {
    const tls = this.#tls;
    if (tls !== undefined) {
      const p = tls.progress();
      const of = p.expected === undefined ? '' : ` of ${p.expected}`;
      return `undecided after ${this.#seen} byte(s): waiting for the rest of a TLS ClientHello (${p.have}${of} handshake bytes)`;
    }
    if (this.#h1 !== undefined) {
      const what = this.#h1.alive && this.#h2Alive ? 'an HTTP/2 preface or HTTP/1 request line' : this.#h2Alive ? 'an HTTP/2 preface' : 'an HTTP/1 request line';
      return `undecided after ${this.#seen} byte(s): waiting for the rest of ${what}`;
    }
    return 'no bytes received';
  }

  #start(first: number): void {
    if (first === CONTENT_TYPE_HANDSHAKE) {
      this.#mode = 'tls';
      this.#tls = new TlsHelloAssembler(this.#maxTls);
    } else if (isTchar(first)) {
      this.#mode = 'text';
      this.#h1 = new Http1RequestLineMatcher();
      this.#h2Alive = first === HTTP2_PREFACE[0];
    } else {
      this.#opaque(
        'unrecognized',
        `first byte 0x${first.toString(16).padStart(2, '0')} starts neither a TLS record, the HTTP/2 preface nor an HTTP/1 method`,
        1,
      );
    }
  }

  #pushTls(chunk: Uint8Array): void {
    const tls = this.#tls;
    if (tls === undefined) return;
    const s = tls.push(chunk);
    switch (s.kind) {
      case 'need-more':
        return;
      case 'not-tls':
        return this.#opaque('unrecognized', s.detail, tls.wireBytes);
      case 'malformed':
        return this.#opaque('tls-malformed', s.detail, tls.wireBytes);
      case 'too-large':
        return this.#opaque('too-large', s.detail, tls.wireBytes);
      case 'complete': {
        const parsed = parseClientHello(s.message);
        if (!parsed.ok) return this.#opaque('tls-malformed', parsed.detail, s.wireBytes);
        const h = parsed.hello;
        const base = { kind: 'tls', alpn: h.alpn, helloBytes: s.wireBytes, clientHello: s.message, hello: h, decidedAt: s.wireBytes } as const;
        this.#decide(h.sni === undefined ? base : { ...base, sni: h.sni });
        return;
      }
    }
  }

  #pushText(chunk: Uint8Array, streamOffset: number): void {
    const h1 = this.#h1;
    if (h1 === undefined) return;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i] ?? 0;
      const pos = streamOffset + i; // stream offset of b
      if (this.#h2Alive) {
        if (b !== HTTP2_PREFACE[pos]) this.#h2Alive = false;
        else if (pos + 1 === HTTP2_PREFACE.length) return void this.#decide({ kind: 'http2', decidedAt: pos + 1 });
      }
      if (h1.alive && h1.step(b) === 'done') {
        return void this.#decide({ kind: 'http1', method: h1.method, version: h1.version, decidedAt: pos + 1 });
      }
      if (!h1.alive && !this.#h2Alive) {
        return this.#opaque('unrecognized', `not HTTP: ${h1.failure}`, pos + 1);
      }
      if (!this.#h2Alive && pos + 1 >= this.#maxLine) {
        return this.#opaque('too-large', `no complete HTTP/1 request line within the first ${this.#maxLine} bytes`, pos + 1);
      }
    }
  }
}

function cap(name: keyof SnifferOptions, value: number | undefined): number {
  const v = value ?? DEFAULT_SNIFFER_OPTIONS[name];
  if (!Number.isInteger(v) || v < MIN_SNIFF_CAP || v > MAX_SNIFF_CAP) {
    throw new RangeError(`${name} must be an integer from ${MIN_SNIFF_CAP} to ${MAX_SNIFF_CAP}, got ${String(v)}`);
  }
  return v;
}

/**
 * A new incremental sniffer for one connection. Throws RangeError only for invalid options (a programming error);
 * never on input bytes.
 */
export function createSniffer(opts: SnifferOptions = {}): Sniffer {
  return new ProtocolSniffer(cap('maxTlsHelloBytes', opts.maxTlsHelloBytes), cap('maxHttpRequestLineBytes', opts.maxHttpRequestLineBytes));
}

/** One-shot form: the result for the bytes received so far (one buffer, or the caller's chunk list in order). */
export function sniff(bytes: Uint8Array | readonly Uint8Array[], opts: SnifferOptions = {}): SniffResult {
  const s = createSniffer(opts);
  const chunks = bytes instanceof Uint8Array ? [bytes] : bytes;
  for (const c of chunks) {
    if (s.push(c).kind !== 'need-more') break;
  }
  return s.result;
}
