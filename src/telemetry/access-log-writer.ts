// Where access log lines go: stdout, stderr or a file opened for appending. Writes are asynchronous (fs.write on the
// thread pool, one at a time) and never on a request's path: lines wait in a bounded buffer; past its bound they are
// dropped and counted (a slow disk or a blocked pipe costs lines, not memory or latency). Like Envoy's access log
// (64 KiB buffer, flushed every second), the buffer is written once it holds FLUSH_CHARS or FLUSH_INTERVAL_MS after
// its first line, so that a busy proxy makes one write per many lines (writing each event-loop turn's lines, about
// one write per request under load, cost +41 us of proxy CPU per request over off against +11 us batched, in the
// A/B of bench/observability-ab.ts: docs/observability.md#costs). On stdout/stderr, which the proxy's own log also
// writes to, each write(2) is at most PIPE_BUF bytes of whole lines, so that lines of the two
// writers never interleave inside a line.
import { closeSync, openSync, write as fsWrite } from 'node:fs';
import { RemoraError } from '../core/errors.js';

export type AccessLogTarget = { readonly kind: 'stdout' } | { readonly kind: 'stderr' } | { readonly kind: 'file'; readonly path: string };

/** Atomic pipe write size on Linux. */
const PIPE_BUF = 4096;
const FILE_CHUNK = 64 * 1024;
export const DEFAULT_ACCESS_LOG_BUFFER_CHARS = 4 * 1024 * 1024;
/** Write once this much is buffered ... */
export const FLUSH_CHARS = 64 * 1024;
/** ... or this long after the first line waiting. */
export const FLUSH_INTERVAL_MS = 500;

export function describeTarget(t: AccessLogTarget): string {
  return t.kind === 'file' ? t.path : t.kind;
}

export class AccessLogWriter {
  readonly target: AccessLogTarget;
  readonly #fd: number;
  readonly #maxChars: number;
  readonly #onError: (err: Error) => void;
  #pending: string[] = [];
  #pendingChars = 0;
  #writing = false;
  #failed = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #flushChars: number;
  readonly #intervalMs: number;
  #closing: (() => void) | undefined;
  /** Lines refused by write(): the buffer was full, or the destination had failed. */
  refusedLines = 0;
  /** Lines accepted by write() and then lost because writing failed. */
  lostLines = 0;
  writtenBytes = 0;
  writeErrors = 0;

  /** Opens a file target now (throws REMORA_ERR_CONFIG_INVALID naming the file when it cannot be opened). */
  constructor(target: AccessLogTarget, opts: {
    readonly maxBufferChars?: number; readonly onError?: (err: Error) => void; readonly flushChars?: number; readonly flushIntervalMs?: number;
  } = {}) {
    this.target = target;
    this.#maxChars = opts.maxBufferChars ?? DEFAULT_ACCESS_LOG_BUFFER_CHARS;
    this.#flushChars = opts.flushChars ?? FLUSH_CHARS;
    this.#intervalMs = opts.flushIntervalMs ?? FLUSH_INTERVAL_MS;
    this.#onError = opts.onError ?? (() => undefined);
    if (target.kind === 'file') {
      try {
        this.#fd = openSync(target.path, 'a', 0o640);
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'EIO';
        throw new RemoraError('REMORA_ERR_CONFIG_INVALID', `access_log = ${target.path}: the file cannot be opened for appending (${code})`, { cause: err });
      }
    } else {
      this.#fd = target.kind === 'stdout' ? 1 : 2;
    }
  }

  /** A write failed: lines are refused from then on. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Characters waiting to be written. */
  get buffered(): number {
    return this.#pendingChars;
  }

  /** Queue whole lines (`lines` ends with "\n"; `count` of them). False: dropped (buffer full, or closed/failed). */
  write(lines: string, count: number): boolean {
    if (this.#failed || this.#closing !== undefined || this.#pendingChars + lines.length > this.#maxChars) {
      this.refusedLines += count;
      return false;
    }
    this.#pending.push(lines);
    this.#pendingChars += lines.length;
    this.#maybeStart();
    return true;
  }

  /** Start a write when enough is buffered (or closing); else make sure the interval will. */
  #maybeStart(): void {
    if (this.#writing) return;
    if (this.#pending.length === 0) {
      this.#closing?.();
      return;
    }
    if (this.#pendingChars >= this.#flushChars || this.#closing !== undefined) {
      this.#next();
      return;
    }
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        if (!this.#writing && this.#pending.length > 0) this.#next();
      }, this.#intervalMs);
      this.#timer.unref();
    }
  }

  /** Write the next chunk of what is buffered. */
  #next(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#writing = true;
    const limit = this.target.kind === 'file' ? FILE_CHUNK : PIPE_BUF;
    let chunk = this.#pending.shift() as string;
    // Join small batches up to the limit; split a large one at line ends.
    while (this.#pending.length > 0 && chunk.length + (this.#pending[0] as string).length <= limit) chunk += this.#pending.shift() as string;
    if (Buffer.byteLength(chunk) > limit) {
      let cut = chunk.lastIndexOf('\n', limit - 1);
      // A single line longer than the limit goes alone.
      if (cut < 0) cut = chunk.indexOf('\n');
      if (cut >= 0 && cut + 1 < chunk.length) {
        this.#pending.unshift(chunk.slice(cut + 1));
        chunk = chunk.slice(0, cut + 1);
      }
    }
    this.#pendingChars -= chunk.length;
    this.#writeOut(Buffer.from(chunk));
  }

  #writeOut(buf: Buffer): void {
    fsWrite(this.#fd, buf, 0, buf.length, null, (err, written) => {
      if (err !== null) {
        if (err.code === 'EAGAIN') {
          // A non-blocking pipe is full: try again shortly (the buffer bound still applies to new lines).
          setTimeout(() => { this.#writeOut(buf); }, 10).unref();
          return;
        }
        this.writeErrors++;
        this.#failed = true;
        let lost = 0;
        for (const p of this.#pending) for (let i = p.indexOf('\n'); i >= 0; i = p.indexOf('\n', i + 1)) lost++;
        for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) lost++;
        this.lostLines += lost;
        this.#pending = [];
        this.#pendingChars = 0;
        this.#writing = false;
        this.#onError(err);
        this.#closing?.();
        return;
      }
      this.writtenBytes += written;
      if (written < buf.length) {
        this.#writeOut(buf.subarray(written));
        return;
      }
      this.#writing = false;
      this.#maybeStart();
    });
  }

  /** Write what is buffered, then close a file target. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        if (this.target.kind === 'file') {
          try { closeSync(this.#fd); } catch { /* already closed */ }
        }
        resolve();
      };
      if (!this.#writing && this.#pending.length === 0) {
        this.#closing = () => undefined;
        if (this.#timer !== undefined) clearTimeout(this.#timer);
        done();
        return;
      }
      this.#closing = () => { this.#closing = () => undefined; done(); };
      this.#maybeStart();
    });
  }
}
