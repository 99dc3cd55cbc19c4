// The one place that builds loggers. Modules receive a Logger; none imports a global one.
//
// A small JSON-lines logger with the subset of pino's interface remora uses (levels, child bindings,
// isLevelEnabled, a settable level) and pino's line format: {"level":"info","time":"<ISO>","pid":N,"name":"...",
// ...bindings, ...fields, "msg":"..."}, an `err` field serialized like pino's standard serializer (type, message and
// stack with their causes, every enumerable property). It replaced pino itself, whose import alone cost ~8 MB of RSS
// in an idle proxy (docs/performance-notes.md); tests may still hand a pino logger to any module (same interface).
//
// Nothing is formatted for a level that is off: callers that build costly fields check isLevelEnabled() first.
// Lines are buffered and written once per turn of the event loop (one write() for all lines of a turn), and
// synchronously at process exit; `sync: true` writes each line at once (remora init, on stderr).
import { writeSync } from 'node:fs';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LogFn {
  (fields: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  /** The level in force (a level name); setting it changes what this logger writes from now on. */
  level: string;
  isLevelEnabled(level: string): boolean;
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  /** A logger whose lines carry `bindings` too (after the base fields, before each line's own). */
  child(bindings: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level: LogLevel;
  name: string;
  /** 1 = stdout (the proxy), 2 = stderr (init: stdout is kept for dry-run output). */
  fd?: 1 | 2;
}

const VALUES: Readonly<Record<string, number>> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

function levelValue(level: string): number {
  const v = VALUES[level];
  if (v === undefined) throw new Error(`unknown log level "${level}"`);
  return v;
}

// === the `err` field, as pino-std-serializers renders it ===
interface ErrorLike { message: string; stack?: unknown; cause?: unknown; errors?: unknown; constructor?: unknown; name?: unknown }

function isErrorLike(v: unknown): v is ErrorLike {
  return typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string';
}

function causeOf(e: ErrorLike): ErrorLike | undefined {
  const c = typeof e.cause === 'function' ? (e.cause as () => unknown)() : e.cause;
  return isErrorLike(c) ? c : undefined;
}

function messageWithCauses(e: ErrorLike, seen = new Set<ErrorLike>()): string {
  seen.add(e);
  const cause = causeOf(e);
  if (cause === undefined || seen.has(cause)) return e.message;
  const inner = messageWithCauses(cause, seen);
  return e.message === '' ? inner : `${e.message}: ${inner}`;
}

function stackWithCauses(e: ErrorLike, seen = new Set<ErrorLike>()): string {
  seen.add(e);
  const stack = typeof e.stack === 'string' ? e.stack : '';
  const cause = causeOf(e);
  if (cause === undefined) return stack;
  if (seen.has(cause)) return `${stack}\ncauses have become circular...`;
  return `${stack}\ncaused by: ${stackWithCauses(cause, seen)}`;
}

function serializeError(e: unknown, seen = new Set<unknown>()): unknown {
  if (!isErrorLike(e)) return e;
  seen.add(e);
  const ctor = e.constructor;
  const out: Record<string, unknown> = {
    type: typeof ctor === 'function' ? ctor.name : e.name,
    message: messageWithCauses(e),
    stack: stackWithCauses(e),
  };
  if (Array.isArray(e.errors)) out.aggregateErrors = e.errors.map((x) => serializeError(x, seen));
  for (const key in e) {
    if (out[key] !== undefined) continue;
    const val = (e as unknown as Record<string, unknown>)[key];
    if (isErrorLike(val)) {
      if (key !== 'cause' && !seen.has(val)) out[key] = serializeError(val, seen);
    } else {
      out[key] = val;
    }
  }
  return out;
}

function replacer(this: unknown, key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  return key === 'err' ? serializeError(value) : value;
}

/** JSON of one value; an object met again inside itself is written "[Circular]" (as pino does), never a throw. */
function stringify(v: unknown): string {
  try {
    return JSON.stringify(v, replacer) ?? 'null';
  } catch {
    const seen = new WeakSet<object>();
    try {
      return JSON.stringify(v, function (this: unknown, key: string, value: unknown): unknown {
        const x = replacer.call(this, key, value);
        if (typeof x !== 'object' || x === null) return x;
        if (seen.has(x)) return '[Circular]';
        seen.add(x);
        return x;
      }) ?? 'null';
    } catch {
      return '"[unserializable]"';
    }
  }
}

// === output ===
class LineSink {
  readonly #fd: number;
  readonly #sync: boolean;
  #pending = '';
  #scheduled = false;

  constructor(fd: number, sync: boolean) {
    this.#fd = fd;
    this.#sync = sync;
    if (!sync) process.once('exit', () => { this.flush(); });
  }

  write(line: string): void {
    if (this.#sync) {
      this.#writeOut(line);
      return;
    }
    this.#pending += line;
    if (this.#pending.length >= 65_536) {
      this.flush();
      return;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#onTurn).unref();
    }
  }

  readonly #onTurn = (): void => {
    this.#scheduled = false;
    this.flush();
  };

  flush(): void {
    const text = this.#pending;
    if (text === '') return;
    this.#pending = '';
    this.#writeOut(text);
  }

  #writeOut(text: string): void {
    let buf = Buffer.from(text, 'utf8');
    // A full pipe (EAGAIN) is retried a bounded number of times; a closed one (EPIPE, EBADF) drops the lines.
    for (let tries = 0; buf.length > 0 && tries < 1_000; tries++) {
      try {
        const n = writeSync(this.#fd, buf);
        buf = buf.subarray(n);
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'EAGAIN') return;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      }
    }
  }
}

class JsonLogger implements Logger {
  readonly #sink: LineSink;
  /** `"pid":N,"name":"...",` and the bindings of each ancestor, rendered once (this logger's own: at its first line). */
  #prefix: string;
  /** A child's own bindings, not rendered yet: most per-connection children never write a line. */
  #bindings: Record<string, unknown> | undefined;
  #level: string;
  #min: number;

  constructor(sink: LineSink, prefix: string, level: string, bindings?: Record<string, unknown>) {
    this.#sink = sink;
    this.#prefix = prefix;
    this.#bindings = bindings;
    this.#level = level;
    this.#min = levelValue(level);
  }

  get level(): string { return this.#level; }
  set level(level: string) {
    this.#min = levelValue(level);
    this.#level = level;
  }

  isLevelEnabled(level: string): boolean {
    const v = VALUES[level];
    return v !== undefined && v >= this.#min;
  }

  // Methods on the prototype, not a closure per logger: a child is made for every HTTP connection.
  fatal(a: object | string, msg?: string): void { if (this.#min <= 60) this.#line('fatal', a, msg); }
  error(a: object | string, msg?: string): void { if (this.#min <= 50) this.#line('error', a, msg); }
  warn(a: object | string, msg?: string): void { if (this.#min <= 40) this.#line('warn', a, msg); }
  info(a: object | string, msg?: string): void { if (this.#min <= 30) this.#line('info', a, msg); }
  debug(a: object | string, msg?: string): void { if (this.#min <= 20) this.#line('debug', a, msg); }
  trace(a: object | string, msg?: string): void { if (this.#min <= 10) this.#line('trace', a, msg); }

  /** The bindings are rendered when the child writes its first line: they must not be changed after this call. */
  child(bindings: Record<string, unknown>): Logger {
    return new JsonLogger(this.#sink, this.#fullPrefix(), this.#level, bindings);
  }

  #fullPrefix(): string {
    const b = this.#bindings;
    if (b !== undefined) {
      this.#bindings = undefined;
      this.#prefix += fieldsOf(b);
    }
    return this.#prefix;
  }

  #line(level: string, a: object | string, msg: string | undefined): void {
    let fields = '';
    let message = msg;
    if (typeof a === 'string') {
      message = a;
    } else if (isErrorLike(a) && a instanceof Error) {
      // pino's log.error(err, msg): the error becomes the `err` field, its message the default message.
      fields = `"err":${stringify(serializeError(a))},`;
      message ??= a.message;
    } else {
      fields = fieldsOf(a as Record<string, unknown>);
    }
    let body = `"level":"${level}","time":"${new Date().toISOString()}",${this.#fullPrefix()}${fields}`;
    if (message !== undefined) body += `"msg":${JSON.stringify(message)}`;
    else body = body.slice(0, -1);
    this.#sink.write(`{${body}}\n`);
  }
}

/** `"k":v,` for every field whose value JSON renders (undefined and functions are left out, as JSON.stringify does). */
function fieldsOf(o: Record<string, unknown>): string {
  let out = '';
  for (const key in o) {
    const v = o[key];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    out += `${JSON.stringify(key)}:${key === 'err' ? stringify(serializeError(v)) : stringify(v)},`;
  }
  return out;
}

export function createLogger(opts: LoggerOptions): Logger {
  const sink = new LineSink(opts.fd ?? 1, opts.fd === 2);
  return new JsonLogger(sink, `"pid":${process.pid},"name":${JSON.stringify(opts.name)},`, opts.level);
}

/** A logger that writes nothing: for tests and pure callers. */
export function silentLogger(): Logger {
  return new JsonLogger(new LineSink(1, true), '', 'silent');
}
