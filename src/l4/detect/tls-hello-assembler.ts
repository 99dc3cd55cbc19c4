// Incremental TLS record-layer reader for the first flight of a connection: takes the stream bytes in whatever
// chunks TCP delivered them, walks the TLS record headers (RFC 8446 §5.1) and reassembles the first handshake message
// (the ClientHello) even when it is fragmented over several records and several chunks. It stops as soon as the
// message is complete; it never needs the rest of the record or anything after it.
//
// Total and bounded: every byte is checked as it arrives, bad input yields 'not-tls' / 'malformed' at the first byte
// that proves it, and nothing more than `maxWireBytes` of stream is ever examined or kept.

/** TLSPlaintext.length limit (RFC 8446 §5.1: MUST NOT exceed 2^14). */
export const MAX_RECORD_PAYLOAD = 16384;
export const RECORD_HEADER_BYTES = 5;
export const CONTENT_TYPE_HANDSHAKE = 0x16;
const HANDSHAKE_HEADER_BYTES = 4;

export type HelloAssembly =
  | { readonly kind: 'need-more' }
  /** `message`: the handshake message (4-byte header + body); `wireBytes`: stream offset just past its last byte. */
  | { readonly kind: 'complete'; readonly message: Buffer; readonly wireBytes: number }
  /** The first bytes are not a TLS handshake record carrying a ClientHello. */
  | { readonly kind: 'not-tls'; readonly detail: string }
  /** It started as a ClientHello, then broke a record-layer rule. */
  | { readonly kind: 'malformed'; readonly detail: string }
  /** The ClientHello does not end within `maxWireBytes` of stream. */
  | { readonly kind: 'too-large'; readonly detail: string };

const NEED_MORE: HelloAssembly = Object.freeze({ kind: 'need-more' });

export class TlsHelloAssembler {
  readonly #maxWireBytes: number;
  #state: HelloAssembly = NEED_MORE;
  /** Stream bytes consumed so far. */
  #wire = 0;
  /** Record header being read (valid bytes: #hdrLen). */
  readonly #hdr = new Uint8Array(RECORD_HEADER_BYTES);
  #hdrLen = 0;
  /** Payload bytes still to come in the current record (0 = a record header is next). */
  #recordLeft = 0;
  #records = 0;
  /** Handshake message header being read, then the message itself. */
  readonly #msgHdr = new Uint8Array(HANDSHAKE_HEADER_BYTES);
  #msgHdrLen = 0;
  #msg: Buffer | undefined;
  #msgLen = 0;

  constructor(maxWireBytes: number) {
    this.#maxWireBytes = maxWireBytes;
  }

  get state(): HelloAssembly {
    return this.#state;
  }

  /** Stream bytes examined so far. */
  get wireBytes(): number {
    return this.#wire;
  }

  /** How many handshake-message bytes are present and how many are expected (undefined until the length is known). */
  progress(): { readonly have: number; readonly expected: number | undefined } {
    return this.#msg === undefined
      ? { have: this.#msgHdrLen, expected: undefined }
      : { have: this.#msgLen, expected: this.#msg.length };
  }

  push(chunk: Uint8Array): HelloAssembly {
    let i = 0;
    while (this.#state.kind === 'need-more' && i < chunk.length) {
      if (this.#recordLeft === 0) {
        this.#headerByte(chunk[i] ?? 0);
        i++;
        this.#wire++;
      } else {
        const n = Math.min(this.#recordLeft, chunk.length - i);
        const used = this.#payload(chunk, i, n);
        this.#recordLeft -= used;
        this.#wire += used;
        i += used;
      }
      if (this.#state.kind === 'need-more' && this.#wire >= this.#maxWireBytes) {
        this.#state = {
          kind: 'too-large',
          detail: `no complete ClientHello within the first ${this.#maxWireBytes} bytes`,
        };
      }
    }
    return this.#state;
  }

  #fail(kind: 'not-tls' | 'malformed', detail: string): void {
    this.#state = { kind, detail };
  }

  #headerByte(b: number): void {
    const pos = this.#hdrLen;
    this.#hdr[pos] = b;
    this.#hdrLen++;
    const first = this.#records === 0;
    switch (pos) {
      case 0:
        if (b !== CONTENT_TYPE_HANDSHAKE) {
          if (first) this.#fail('not-tls', `first byte 0x${hex(b)} is not a TLS handshake record (0x16)`);
          else this.#fail('malformed', `record ${this.#records} has content type 0x${hex(b)} before the ClientHello ended`);
        }
        return;
      case 1:
        if (b !== 0x03) this.#fail(first ? 'not-tls' : 'malformed', `record version major byte 0x${hex(b)} is not 0x03`);
        return;
      case 2:
        if (b > 0x04) this.#fail(first ? 'not-tls' : 'malformed', `record version 0x03${hex(b)} is above TLS 1.3`);
        return;
      case 3:
        return;
      default: {
        const length = ((this.#hdr[3] ?? 0) << 8) | b;
        if (length === 0) this.#fail('malformed', `record ${this.#records} is a zero-length handshake record`);
        else if (length > MAX_RECORD_PAYLOAD) {
          this.#fail('malformed', `record ${this.#records} length ${length} exceeds 2^14`);
        } else {
          this.#recordLeft = length;
          this.#hdrLen = 0;
          this.#records++;
        }
      }
    }
  }

  /** Feeds up to n payload bytes from chunk[at]; returns how many were used (fewer only when the message ended). */
  #payload(chunk: Uint8Array, at: number, n: number): number {
    let used = 0;
    while (this.#msg === undefined && used < n) {
      const b = chunk[at + used] ?? 0;
      this.#msgHdr[this.#msgHdrLen++] = b;
      used++;
      if (this.#msgHdrLen === 1 && b !== 1) {
        this.#fail('not-tls', `first handshake message has type ${b}, not ClientHello (1)`);
        return used;
      }
      if (this.#msgHdrLen === HANDSHAKE_HEADER_BYTES) {
        const length = ((this.#msgHdr[1] ?? 0) << 16) | ((this.#msgHdr[2] ?? 0) << 8) | (this.#msgHdr[3] ?? 0);
        const total = HANDSHAKE_HEADER_BYTES + length;
        // Fewest stream bytes that could carry it: full-size records, one header per 2^14 payload bytes.
        const minWire = total + RECORD_HEADER_BYTES * Math.ceil(total / MAX_RECORD_PAYLOAD);
        if (minWire > this.#maxWireBytes) {
          this.#state = {
            kind: 'too-large',
            detail: `ClientHello of ${total} bytes needs at least ${minWire} stream bytes, over the ${this.#maxWireBytes}-byte cap`,
          };
          return used;
        }
        this.#msg = Buffer.allocUnsafe(total);
        this.#msg.set(this.#msgHdr, 0);
        this.#msgLen = HANDSHAKE_HEADER_BYTES;
      }
    }
    const msg = this.#msg;
    if (msg === undefined) return used;
    const take = Math.min(n - used, msg.length - this.#msgLen);
    if (take > 0) {
      msg.set(chunk.subarray(at + used, at + used + take), this.#msgLen);
      this.#msgLen += take;
      used += take;
    }
    if (this.#msgLen === msg.length) {
      const end = this.#wire + used;
      this.#state =
        end <= this.#maxWireBytes
          ? { kind: 'complete', message: msg, wireBytes: end }
          : { kind: 'too-large', detail: `ClientHello ends at stream byte ${end}, over the ${this.#maxWireBytes}-byte cap` };
    }
    return used;
  }
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
