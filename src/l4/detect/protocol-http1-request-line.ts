// Byte-at-a-time recogniser for an HTTP/1.x request line (RFC 9112 §3):
//   method SP request-target SP "HTTP/1." DIGIT CRLF        (a bare LF is accepted as the line end, RFC 9112 §2.2)
// It keeps no buffer besides the method (at most MAX_METHOD_LENGTH bytes), so a long request-target costs nothing but
// a counter, and it rejects at the first byte that cannot belong to such a line.

/** Longest method token accepted (the longest registered method, UPDATEREDIRECTREF, has 17). */
export const MAX_METHOD_LENGTH = 32;

/** RFC 9110 §5.6.2 tchar: "!#$%&'*+-.^_`|~" DIGIT ALPHA. */
const TCHAR = new Uint8Array(256);
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;
for (const ch of "!#$%&'*+-.^_`|~") TCHAR[ch.charCodeAt(0)] = 1;

export function isTchar(b: number): boolean {
  return TCHAR[b] === 1;
}

/** request-target bytes: visible ASCII, plus obs-text (0x80-0xFF) which lenient servers accept and reject later. */
function isTargetByte(b: number): boolean {
  return (b >= 0x21 && b <= 0x7e) || b >= 0x80;
}

const VERSION_PREFIX = 'HTTP/1.';

export type RequestLineStep = 'continue' | 'done' | 'fail';

type Stage = 'method' | 'target-first' | 'target' | 'version' | 'minor' | 'cr' | 'lf' | 'done' | 'fail';

export class Http1RequestLineMatcher {
  #stage: Stage = 'method';
  #method = '';
  #versionPos = 0;
  #minor = '';
  #offset = 0;
  #failure = '';
  #lastByte = 0;

  get method(): string {
    return this.#method;
  }

  /** "HTTP/1.0" or "HTTP/1.1" (any "HTTP/1." DIGIT) once done. */
  get version(): string {
    return `${VERSION_PREFIX}${this.#minor}`;
  }

  /** Why the bytes are not a request line (after 'fail'). */
  get failure(): string {
    return this.#failure;
  }

  /** Bytes accepted so far (the request line length, line end included, once done). */
  get length(): number {
    return this.#offset;
  }

  get alive(): boolean {
    return this.#stage !== 'fail' && this.#stage !== 'done';
  }

  step(b: number): RequestLineStep {
    const result = this.#step(b);
    if (result !== 'fail') this.#offset++;
    return result;
  }

  #fail(why: string): RequestLineStep {
    this.#stage = 'fail';
    this.#failure = `${why} (byte 0x${b2h(this.#lastByte)} at offset ${this.#offset})`;
    return 'fail';
  }

  #step(b: number): RequestLineStep {
    this.#lastByte = b;
    switch (this.#stage) {
      case 'method':
        if (isTchar(b)) {
          if (this.#method.length >= MAX_METHOD_LENGTH) return this.#fail(`method token longer than ${MAX_METHOD_LENGTH}`);
          this.#method += String.fromCharCode(b);
          return 'continue';
        }
        if (b === 0x20 && this.#method.length > 0) {
          this.#stage = 'target-first';
          return 'continue';
        }
        return this.#fail(this.#method.length === 0 ? 'not a method token' : 'method token not followed by SP');
      case 'target-first':
        if (!isTargetByte(b)) return this.#fail('request-target missing');
        this.#stage = 'target';
        return 'continue';
      case 'target':
        if (b === 0x20) {
          this.#stage = 'version';
          return 'continue';
        }
        if (!isTargetByte(b)) return this.#fail('control byte in request-target');
        return 'continue';
      case 'version':
        if (b !== VERSION_PREFIX.charCodeAt(this.#versionPos)) return this.#fail('request line does not end in HTTP/1.x');
        if (++this.#versionPos === VERSION_PREFIX.length) this.#stage = 'minor';
        return 'continue';
      case 'minor':
        if (b < 0x30 || b > 0x39) return this.#fail('HTTP version minor is not a digit');
        this.#minor = String.fromCharCode(b);
        this.#stage = 'cr';
        return 'continue';
      case 'cr':
        if (b === 0x0d) {
          this.#stage = 'lf';
          return 'continue';
        }
        if (b === 0x0a) {
          this.#stage = 'done';
          return 'done';
        }
        return this.#fail('HTTP version not followed by CRLF');
      case 'lf':
        if (b !== 0x0a) return this.#fail('CR not followed by LF');
        this.#stage = 'done';
        return 'done';
      case 'done':
        return 'done';
      case 'fail':
        return 'fail';
    }
  }
}

function b2h(b: number): string {
  return b.toString(16).padStart(2, '0');
}
