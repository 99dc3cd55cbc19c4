// The Prometheus text exposition format 0.0.4 (prometheus/docs exposition_formats.md), hand-written: label strings are
// escaped once when a series is made and kept; a scrape concatenates the cached strings and numbers.
//
// A scrape must not stall the event loop (prom-client's registry.metrics() serializes everything in one go: ~1 s of
// event-loop lag for an 8 MB exposition, prometheus/client_js#543). Sources render as generators that yield every
// few series; writeExposition() runs them in slices of about `sliceMs`, hands the text out in chunks, and gives the
// event loop a turn (setImmediate) between slices, so requests keep flowing while a large exposition is written.
import { monotonicMs } from '../core/monotonic-clock.js';

/** A turn of the event loop (setImmediate), without loading node:timers/promises into every proxy. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => { setImmediate(resolve); });
}

export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Backslash, double quote and line feed escaped, as label values need. */
export function escapeLabelValue(v: string): string {
  if (!/[\\"\n]/.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Backslash and line feed escaped, as HELP text needs. */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value: Go's ParseFloat spellings for the special values. */
export function formatValue(n: number): string {
  if (Number.isFinite(n)) return String(n);
  if (Number.isNaN(n)) return 'NaN';
  return n > 0 ? '+Inf' : '-Inf';
}

/** `a="x",b="y"` (no braces), values escaped. */
export function labelPairs(names: readonly string[], values: readonly string[]): string {
  let s = '';
  for (let i = 0; i < names.length; i++) {
    if (i > 0) s += ',';
    s += `${names[i] as string}="${escapeLabelValue(values[i] ?? '')}"`;
  }
  return s;
}

/** Collects exposition text and hands it to `sink` in chunks of about `chunkChars`. */
export class ExpositionWriter {
  readonly #sink: (chunk: string) => void;
  readonly #chunkChars: number;
  #text = '';

  constructor(sink: (chunk: string) => void, chunkChars = 256 * 1024) {
    this.#sink = sink;
    this.#chunkChars = chunkChars;
  }

  /** `# HELP` and `# TYPE` of a family. */
  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
    this.line(`# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`);
  }

  /** One sample: `name{labels} value` (labels without braces; '' for none). */
  sample(name: string, labels: string, value: number): void {
    this.line(labels === '' ? `${name} ${formatValue(value)}\n` : `${name}{${labels}} ${formatValue(value)}\n`);
  }

  /** Raw text ending with a line feed. */
  line(text: string): void {
    this.#text += text;
    if (this.#text.length >= this.#chunkChars) this.flush();
  }

  flush(): void {
    if (this.#text === '') return;
    const t = this.#text;
    this.#text = '';
    this.#sink(t);
  }
}

/** One part of the exposition: writes its families, yielding every few series so the writer can pause. */
export type ExpositionSource = (w: ExpositionWriter) => Iterable<void>;

/** The whole exposition in one string (tests, small outputs). */
export function renderExposition(sources: readonly ExpositionSource[]): string {
  const parts: string[] = [];
  const w = new ExpositionWriter((c) => { parts.push(c); });
  for (const s of sources) for (const _ of s(w)) { /* run to the end */ }
  w.flush();
  return parts.join('');
}

export interface WriteExpositionOptions {
  /** Work this long before giving the event loop a turn (default 5 ms). */
  readonly sliceMs?: number;
  readonly chunkChars?: number;
}

/**
 * Write the exposition to `write` in chunks, giving the event loop a turn every `sliceMs`. `write` returns a promise
 * when the destination wants the writer to wait (backpressure). Resolves with the characters written.
 */
export async function writeExposition(
  sources: readonly ExpositionSource[], write: (chunk: string) => void | Promise<void>, opts: WriteExpositionOptions = {},
): Promise<number> {
  const sliceMs = opts.sliceMs ?? 5;
  const pending: string[] = [];
  let total = 0;
  const w = new ExpositionWriter((c) => { pending.push(c); total += c.length; }, opts.chunkChars);
  const drain = async (): Promise<void> => {
    while (pending.length > 0) {
      const r = write(pending.shift() as string);
      if (r !== undefined) await r;
    }
  };
  let sliceStart = monotonicMs();
  for (const s of sources) {
    for (const _ of s(w)) {
      if (monotonicMs() - sliceStart < sliceMs) continue;
      await drain();
      await nextTurn();
      sliceStart = monotonicMs();
    }
  }
  w.flush();
  await drain();
  return total;
}
