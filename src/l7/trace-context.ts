// Trace context: parsing and formatting of the W3C Trace Context headers (traceparent, tracestate) and of B3 (the
// multi-header X-B3-TraceId / X-B3-SpanId / X-B3-ParentSpanId / X-B3-Sampled / X-B3-Flags, and the single `b3`
// header), and the propagation rule of a tracing sidecar. Pure functions over a request's flat header array
// ([name, value, ...], any name case), unit-tested in test/unit/l7/trace-context.test.ts.
//
// The rule (src/l7/filters/tracing.ts applies it to every request when [proxy] tracing = on):
//   1. the incoming context is the first VALID one of: traceparent, b3, X-B3-*; an invalid header is as if absent
//      (a new trace is started), as the W3C spec asks;
//   2. the sidecar's span: the incoming trace id (or a new one), a NEW span id, the incoming span id as its parent;
//   3. sampled: the incoming decision when there is one (traceparent's flag, b3's 1/d/0, X-B3-Sampled, X-B3-Flags: 1),
//      else random() < sample rate;
//   4. the headers sent upstream carry the sidecar's span id as the parent: every trace header format the request
//      came with is rewritten to it (W3C and B3 alike); a request without one gets both traceparent and X-B3-*;
//      tracestate goes on untouched (remora adds no entry of its own).
// Trace ids are 32 lowercase hex characters everywhere (a 64-bit B3 trace id is left-padded with zeros, as OTLP
// and the W3C format need 16 bytes); span ids 16.
import { randomFillSync } from 'node:crypto';

/** What a request brought. */
export interface IncomingTrace {
  /** 32 lowercase hex; undefined: none (e.g. `b3: 0` carries only a decision). */
  readonly traceId: string | undefined;
  /** The caller's span id (16 lowercase hex): the parent of the sidecar's span. */
  readonly spanId: string | undefined;
  /** The caller's sampling decision; undefined: none (the sidecar decides). */
  readonly sampled: boolean | undefined;
}

/** The sidecar's span for one request. */
export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  /** undefined: the sidecar's span is a root span. */
  readonly parentSpanId: string | undefined;
  readonly sampled: boolean;
}

/** Which formats a request carried (each rewritten on the way out). */
export interface TraceFormats {
  readonly w3c: boolean;
  readonly b3Single: boolean;
  readonly b3Multi: boolean;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const HEX2 = /^[0-9a-f]{2}$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);

/**
 * A traceparent value: `{version}-{trace-id}-{parent-id}-{flags}`. Rejected: version ff, a version 00 value that is
 * not exactly 55 characters, a higher version shorter than 55 or not followed by "-", upper-case hex, all-zero ids.
 */
export function parseTraceparent(value: string): IncomingTrace | undefined {
  const v = value.trim();
  if (v.length < 55) return undefined;
  const version = v.slice(0, 2);
  if (!HEX2.test(version) || version === 'ff') return undefined;
  if (version === '00' ? v.length !== 55 : v.length > 55 && v[55] !== '-') return undefined;
  if (v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return undefined;
  const traceId = v.slice(3, 35);
  const spanId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!HEX32.test(traceId) || traceId === ZERO32 || !HEX16.test(spanId) || spanId === ZERO16 || !HEX2.test(flags)) return undefined;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

export function formatTraceparent(c: TraceContext): string {
  return `00-${c.traceId}-${c.spanId}-${c.sampled ? '01' : '00'}`;
}

/** A B3 trace id (16 or 32 hex, any case) as 32 lowercase hex; undefined when invalid or all zeros. */
export function b3TraceId(value: string): string | undefined {
  const v = value.trim().toLowerCase();
  const id = v.length === 16 ? `${ZERO16}${v}` : v;
  return HEX32.test(id) && id !== ZERO32 ? id : undefined;
}

function b3SpanId(value: string): string | undefined {
  const v = value.trim().toLowerCase();
  return HEX16.test(v) && v !== ZERO16 ? v : undefined;
}

function b3Sampling(value: string): boolean | undefined | null {
  switch (value.trim().toLowerCase()) {
    case '1': case 'd': case 'true': return true;
    case '0': case 'false': return false;
    default: return null; // invalid
  }
}

/**
 * The single b3 header: `{TraceId}-{SpanId}`, `{TraceId}-{SpanId}-{SamplingState}`,
 * `{TraceId}-{SpanId}-{SamplingState}-{ParentSpanId}`, or a lone `{SamplingState}` (0, 1, d).
 */
export function parseB3Single(value: string): IncomingTrace | undefined {
  const parts = value.trim().split('-');
  if (parts.length === 1) {
    const s = b3Sampling(parts[0] ?? '');
    return s === null ? undefined : { traceId: undefined, spanId: undefined, sampled: s };
  }
  if (parts.length > 4) return undefined;
  const traceId = b3TraceId(parts[0] ?? '');
  const spanId = b3SpanId(parts[1] ?? '');
  if (traceId === undefined || spanId === undefined) return undefined;
  let sampled: boolean | undefined;
  if (parts.length >= 3) {
    const s = b3Sampling(parts[2] ?? '');
    if (s === null) return undefined;
    sampled = s;
  }
  if (parts.length === 4 && b3SpanId(parts[3] ?? '') === undefined) return undefined;
  return { traceId, spanId, sampled };
}

export function formatB3Single(c: TraceContext): string {
  return `${c.traceId}-${c.spanId}-${c.sampled ? '1' : '0'}${c.parentSpanId === undefined ? '' : `-${c.parentSpanId}`}`;
}

/** The first value of header `lower` (a lower-case name) in a flat header array. */
function first(raw: readonly string[], lower: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === lower.length && name.toLowerCase() === lower) return raw[i + 1] as string;
  }
  return undefined;
}

/** The X-B3-* headers (X-B3-TraceId and X-B3-SpanId together, or only a sampling decision). */
export function parseB3Multi(raw: readonly string[]): IncomingTrace | undefined {
  const t = first(raw, 'x-b3-traceid');
  const s = first(raw, 'x-b3-spanid');
  const sampledText = first(raw, 'x-b3-sampled');
  const flags = first(raw, 'x-b3-flags');
  let sampled: boolean | undefined;
  if (flags?.trim() === '1') sampled = true; // debug implies sampled
  else if (sampledText !== undefined) {
    const d = b3Sampling(sampledText);
    if (d !== null) sampled = d;
  }
  if (t === undefined && s === undefined) return sampled === undefined ? undefined : { traceId: undefined, spanId: undefined, sampled };
  const traceId = t === undefined ? undefined : b3TraceId(t);
  const spanId = s === undefined ? undefined : b3SpanId(s);
  if (traceId === undefined || spanId === undefined) return undefined;
  return { traceId, spanId, sampled };
}

/** Which trace header formats are present in `raw` (valid or not). */
export function formatsOf(raw: readonly string[]): TraceFormats {
  let w3c = false;
  let b3Single = false;
  let b3Multi = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (name === 'traceparent') w3c = true;
    else if (name === 'b3') b3Single = true;
    else if (name.startsWith('x-b3-')) b3Multi = true;
  }
  return { w3c, b3Single, b3Multi };
}

/** The incoming context: the first valid of traceparent, b3, X-B3-* (undefined: none valid). */
export function incomingTrace(raw: readonly string[], formats: TraceFormats = formatsOf(raw)): IncomingTrace | undefined {
  if (formats.w3c) {
    const tp = first(raw, 'traceparent');
    const c = tp === undefined ? undefined : parseTraceparent(tp);
    if (c !== undefined) return c;
  }
  if (formats.b3Single) {
    const b3 = first(raw, 'b3');
    const c = b3 === undefined ? undefined : parseB3Single(b3);
    if (c !== undefined) return c;
  }
  return formats.b3Multi ? parseB3Multi(raw) : undefined;
}

/** Random ids (non-zero), from a pool refilled from the CSPRNG 4 KiB at a time. */
export class IdSource {
  readonly #pool = Buffer.alloc(4096);
  #at = 4096;

  #hex(bytes: number): string {
    for (;;) {
      if (this.#at + bytes > this.#pool.length) {
        randomFillSync(this.#pool);
        this.#at = 0;
      }
      const s = this.#pool.toString('hex', this.#at, this.#at + bytes);
      this.#at += bytes;
      if (!/^0+$/.test(s)) return s;
    }
  }

  traceId(): string { return this.#hex(16); }
  spanId(): string { return this.#hex(8); }
}

/**
 * The sidecar's span for a request that brought `incoming`: the incoming trace (or a new one), a new span id, the
 * incoming span as parent; sampled as the caller decided, else by `rate` (0: never, 1: always).
 */
export function startSpan(incoming: IncomingTrace | undefined, rate: number, random: () => number, ids: { traceId(): string; spanId(): string }): TraceContext {
  const sampled = incoming?.sampled ?? (rate >= 1 || (rate > 0 && random() < rate));
  const traceId = incoming?.traceId ?? ids.traceId();
  const parentSpanId = incoming?.traceId === undefined ? undefined : incoming.spanId;
  return { traceId, spanId: ids.spanId(), parentSpanId, sampled };
}

const B3_MULTI = ['x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags'];

/**
 * Rewrite the trace headers of `raw` (in place) to carry `c` upstream: each format present is replaced (all its
 * headers removed, the new ones appended); none present: traceparent and X-B3-* are added. tracestate is kept.
 */
export function propagate(raw: string[], c: TraceContext, formats: TraceFormats): void {
  const none = !formats.w3c && !formats.b3Single && !formats.b3Multi;
  const w3c = formats.w3c || none;
  const multi = formats.b3Multi || none;
  let j = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const drop = (w3c && name === 'traceparent') || (formats.b3Single && name === 'b3') || (multi && B3_MULTI.includes(name));
    if (drop) continue;
    if (j !== i) {
      raw[j] = raw[i] as string;
      raw[j + 1] = raw[i + 1] as string;
    }
    j += 2;
  }
  raw.length = j;
  if (w3c) raw.push('traceparent', formatTraceparent(c));
  if (formats.b3Single) raw.push('b3', formatB3Single(c));
  if (multi) {
    raw.push('x-b3-traceid', c.traceId, 'x-b3-spanid', c.spanId);
    if (c.parentSpanId !== undefined) raw.push('x-b3-parentspanid', c.parentSpanId);
    raw.push('x-b3-sampled', c.sampled ? '1' : '0');
  }
}
