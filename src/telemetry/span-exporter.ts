// The span exporter: finished spans wait in a bounded queue and are POSTed to an OpenTelemetry collector as OTLP/HTTP
// JSON (POST {collector}/v1/traces, Content-Type application/json, one resourceSpans with one scopeSpans per batch), a
// batch when `batchSize` spans wait or `intervalMs` after the first one waiting, one request at a time.
//
// Never on a request's path and never failing one: add() only pushes to the queue; past `maxQueue` waiting spans a
// new one is dropped (reason queue_full). A batch the collector does not take (connection refused, no answer within
// `timeoutMs`, a non-2xx status) is dropped (reason export_failed): no retries, so a collector that is down costs
// spans, not memory. The counts are remora_tracing_spans_exported_total and remora_tracing_spans_dropped_total{reason}.
import { request as httpRequest } from 'node:http';
import type { Logger } from '../core/log.js';

export type SpanKind = 'server' | 'client';

/** A finished span, as the telemetry makes it (turned into OTLP JSON only when its batch is sent). */
export interface FinishedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly name: string;
  readonly kind: SpanKind;
  /** Unix epoch, nanoseconds, as a decimal string (OTLP JSON's form of a fixed64). */
  readonly startTimeUnixNano: string;
  readonly endTimeUnixNano: string;
  /** [key, value] pairs (strings or integers). */
  readonly attributes: readonly (readonly [string, string | number])[];
  /** The span failed (5xx, no response, a reset): OTLP status code ERROR. */
  readonly error: boolean;
}

export type DropReason = 'queue_full' | 'export_failed';

export interface SpanExporterOptions {
  /** http://HOST:PORT/v1/traces */
  readonly url: string;
  /** Resource attributes (service.name, ...). */
  readonly resource: readonly (readonly [string, string])[];
  readonly batchSize: number;
  readonly intervalMs: number;
  readonly maxQueue: number;
  /** A POST not answered within this long is abandoned (its spans dropped, export_failed). */
  readonly timeoutMs: number;
  readonly log: Logger;
}

export const DEFAULT_EXPORT_TIMEOUT_MS = 10_000;
/** The longest close() waits for the last batches (at the proxy's exit). */
export const CLOSE_WAIT_MS = 2_000;
const SCOPE = { name: 'remora', version: '' };

/** OTLP JSON AnyValue of a string or an integer. */
function anyValue(v: string | number): { stringValue: string } | { intValue: string } {
  return typeof v === 'number' ? { intValue: String(Math.trunc(v)) } : { stringValue: v };
}

function kv(pairs: readonly (readonly [string, string | number])[]): { key: string; value: ReturnType<typeof anyValue> }[] {
  return pairs.map(([key, v]) => ({ key, value: anyValue(v) }));
}

/** The OTLP/HTTP JSON body (ExportTraceServiceRequest) of one batch. */
export function otlpBody(resource: readonly (readonly [string, string])[], spans: readonly FinishedSpan[], scopeVersion = ''): string {
  return JSON.stringify({
    resourceSpans: [{
      resource: { attributes: kv(resource) },
      scopeSpans: [{
        scope: { ...SCOPE, version: scopeVersion },
        spans: spans.map((s) => ({
          traceId: s.traceId,
          spanId: s.spanId,
          ...(s.parentSpanId === undefined ? {} : { parentSpanId: s.parentSpanId }),
          name: s.name,
          kind: s.kind === 'server' ? 2 : 3, // SPAN_KIND_SERVER, SPAN_KIND_CLIENT
          startTimeUnixNano: s.startTimeUnixNano,
          endTimeUnixNano: s.endTimeUnixNano,
          attributes: kv(s.attributes),
          status: s.error ? { code: 2 } : {}, // STATUS_CODE_ERROR, else unset
        })),
      }],
    }],
  });
}

export class SpanExporter {
  readonly url: string;
  readonly #o: SpanExporterOptions;
  readonly #target: URL;
  #queue: FinishedSpan[] = [];
  #timer: NodeJS.Timeout | undefined;
  #sending = false;
  #closed = false;
  #idle: (() => void) | undefined;
  #lastErrorLog = 0;
  exported = 0;
  readonly dropped: Record<DropReason, number> = { queue_full: 0, export_failed: 0 };

  /** `url` must be an http:// URL (checked by the config parser). */
  constructor(o: SpanExporterOptions) {
    this.#o = o;
    this.url = o.url;
    this.#target = new URL(o.url);
  }

  /** Spans waiting to be sent. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Queue a finished span (never throws, never waits). */
  add(span: FinishedSpan): void {
    if (this.#closed || this.#queue.length >= this.#o.maxQueue) {
      this.dropped.queue_full++;
      return;
    }
    this.#queue.push(span);
    if (this.#sending) return;
    if (this.#queue.length >= this.#o.batchSize) this.#send();
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => { this.#timer = undefined; if (!this.#sending) this.#send(); }, this.#o.intervalMs);
      this.#timer.unref();
    }
  }

  #send(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#queue.length === 0) {
      this.#idle?.();
      return;
    }
    const batch = this.#queue.splice(0, this.#o.batchSize);
    this.#sending = true;
    let body: string;
    try {
      body = otlpBody(this.#o.resource, batch);
    } catch (err) {
      this.#failed(batch.length, err);
      this.#sent();
      return;
    }
    let settled = false;
    const settle = (ok: boolean, err?: unknown): void => {
      if (settled) return;
      settled = true;
      if (ok) this.exported += batch.length;
      else this.#failed(batch.length, err);
      this.#sent();
    };
    const t = this.#target;
    const req = httpRequest({
      host: t.hostname.replace(/^\[|\]$/g, ''), port: t.port === '' ? 80 : Number(t.port), path: `${t.pathname}${t.search}`, method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      timeout: this.#o.timeoutMs, agent: false,
    }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      res.once('end', () => settle(status >= 200 && status < 300, new Error(`the collector answered ${status}`)));
      res.once('error', (err) => settle(false, err));
    });
    req.once('timeout', () => { req.destroy(new Error(`no answer within ${this.#o.timeoutMs} ms`)); });
    req.once('error', (err) => settle(false, err));
    req.once('close', () => settle(false, new Error('the collector closed the connection')));
    req.end(body);
  }

  #failed(n: number, err: unknown): void {
    this.dropped.export_failed += n;
    const now = Date.now();
    if (now - this.#lastErrorLog >= 60_000) { // at most one line a minute
      this.#lastErrorLog = now;
      this.#o.log.warn({ event: 'tracing.export-failed', collector: this.url, spans: n, err, code: 'REMORA_ERR_TRACE_EXPORT' },
        'spans could not be exported to the collector: dropped (counted in remora_tracing_spans_dropped_total)');
    }
  }

  #sent(): void {
    this.#sending = false;
    if (this.#queue.length >= this.#o.batchSize || (this.#closed && this.#queue.length > 0)) {
      this.#send();
    } else if (this.#queue.length > 0 && this.#timer === undefined) {
      this.#timer = setTimeout(() => { this.#timer = undefined; if (!this.#sending) this.#send(); }, this.#o.intervalMs);
      this.#timer.unref();
    } else if (this.#queue.length === 0) {
      this.#idle?.();
    }
  }

  /**
   * Stop taking spans and send what waits (one attempt each batch). Resolves when done, or after `waitMs` at most (a
   * silent collector must not hold the proxy's exit): what is still unsent then is lost, not counted.
   */
  close(waitMs = CLOSE_WAIT_MS): Promise<void> {
    this.#closed = true;
    return new Promise((resolve) => {
      const t = setTimeout(resolve, Math.min(waitMs, this.#o.timeoutMs));
      t.unref();
      this.#idle = () => { clearTimeout(t); resolve(); };
      if (!this.#sending) this.#send();
    });
  }
}
