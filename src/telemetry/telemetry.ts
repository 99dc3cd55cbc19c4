// The proxy's telemetry: Istio's standard metrics and the access log, fed by ONE observation per HTTP request (the
// request stats filter's RequestObservation, src/l7/filters/request-stats.ts) and per TCP connection (the connection
// stats filter's outcome, src/l4/filters/connection-stats.ts). Each observation is turned into response flags once
// (src/telemetry/response-flags.ts) and consumed by both the metrics (a few Map lookups and increments, synchronous)
// and the access log (queued; formatted and written in a batch on a later turn of the event loop, never on the
// request's path).
//
// With tracing on, the same observation ends the sidecar's span of the request (started by the tracing filter,
// src/l7/filters/tracing.ts): a sampled span is handed to the span exporter (src/telemetry/span-exporter.ts).
//
// Made once per process (src/proxy/proxy.ts); a new runtime (reload) applies its [proxy] settings (metrics on/off,
// caps, the access log target and sampling, the local workload's labels, the tracing collector and batching) through
// apply().
import type { Logger } from '../core/log.js';
import { LiveSet, type LiveEntry } from '../core/live-set.js';
import type { AccessLogSetting } from '../config/proxy-options.js';
import type { ConfigSnapshot, ProxySettings } from '../config/config-snapshot.js';
import type { ConnectionContext, ConnectionOutcome, ForwardBytes } from '../l4/connection-context.js';
import type { ConnectionObserver, ConnectionWatch } from '../l4/filters/connection-stats.js';
import type { RequestObservation, RequestObserver } from '../l7/filters/request-stats.js';
import type { ProxyStatsJson } from '../admin/stats-json.js';
import { AccessLogWriter, describeTarget, type AccessLogTarget } from './access-log-writer.js';
import { httpAccessLogLine, tcpAccessLogLine } from './access-log-format.js';
import { writeExposition, renderExposition, type ExpositionSource } from './exposition.js';
import { goldenSamples, type GoldenEdgeSample } from './golden-samples.js';
import { INBOUND, IstioMetrics, OUTBOUND, type LabelContext } from './istio-metrics.js';
import { remoraSource, type TelemetryCounters } from './remora-metrics.js';
import { connectionResponseFlags, httpFlags } from './response-flags.js';
import { requestSpan } from './request-span.js';
import { DEFAULT_EXPORT_TIMEOUT_MS, SpanExporter, type DropReason } from './span-exporter.js';
import { localWorkload, serviceLabels, type LocalWorkload, type ServiceLabels } from './workload-labels.js';

type Direction = 'outbound' | 'inbound';

/** Endpoint picks kept at most (service x endpoint); beyond, new pairs are not counted. */
export const MAX_PICK_PAIRS = 10_000;

/**
 * Requests (by the endpoint of their last attempt) and opaque TCP connections per endpoint of each [service]: what
 * the balancers picked. Passthrough traffic is not counted (its endpoints are whatever the apps dial).
 */
class EndpointPicks {
  readonly #m = new Map<string, Map<string, Float64Array>>();
  #pairs = 0;

  add(service: string, endpoint: string, layer: 0 | 1): void {
    let byEndpoint = this.#m.get(service);
    if (byEndpoint === undefined) {
      byEndpoint = new Map();
      this.#m.set(service, byEndpoint);
    }
    let c = byEndpoint.get(endpoint);
    if (c === undefined) {
      if (this.#pairs >= MAX_PICK_PAIRS) return;
      c = new Float64Array(2);
      byEndpoint.set(endpoint, c);
      this.#pairs++;
    }
    c[layer] = (c[layer] as number) + 1;
  }

  *rows(): Generator<readonly [string, string, number, number]> {
    for (const [service, byEndpoint] of this.#m) for (const [endpoint, c] of byEndpoint) yield [service, endpoint, c[0] as number, c[1] as number];
  }
}

/** Access log entries waiting for the next flush; beyond this many, new ones are dropped (and counted). */
export const ACCESS_LOG_QUEUE_LIMIT = 10_000;

type Entry =
  | { readonly kind: 'http'; readonly o: RequestObservation; readonly direction: Direction; readonly flags: number }
  | { readonly kind: 'tcp'; readonly conn: ConnectionContext; readonly r: ConnectionOutcome; readonly flags: number; readonly endedAt: number };

/** The label context of a snapshot: the local workload and what the outbound labels know of each service. */
export function labelContextOf(snapshot: Pick<ConfigSnapshot, 'proxy' | 'services'>, spiffeId: string | undefined): LabelContext {
  const services = new Map<string, ServiceLabels>();
  for (const s of snapshot.services) services.set(s.name, serviceLabels(s.name, s.hostnames.map((h) => h.pattern), s.mtls?.identities));
  return { local: localWorkload(snapshot.proxy, spiffeId), services };
}

function targetOf(s: AccessLogSetting): AccessLogTarget | undefined {
  return s.kind === 'off' ? undefined : s;
}

function sameTarget(a: AccessLogTarget | undefined, b: AccessLogTarget | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.kind === b.kind && (a.kind !== 'file' || (b.kind === 'file' && a.path === b.path));
}

/**
 * One connection under watch. Once it is forwarded as opaque TCP it is "opened" in istio_tcp_connections_opened_total
 * at once, and its bytes are added to istio_tcp_*_bytes_total at every scrape (and sweep) while it lasts, not only
 * when it closes: a long-lived connection shows up in rates (Envoy reports TCP metrics periodically for the same
 * reason).
 */
class TcpWatch implements ConnectionWatch {
  readonly #t: Telemetry;
  readonly conn: ConnectionContext;
  service = '';
  peer = '';
  bytes: ForwardBytes | undefined;
  countedIn = 0;
  countedOut = 0;
  /** Its place among the live forwarded connections, while it is one. */
  #live: LiveEntry<TcpWatch> | undefined;

  constructor(t: Telemetry, conn: ConnectionContext) {
    this.#t = t;
    this.conn = conn;
  }

  forwarding(conn: ConnectionContext, service: string | undefined, _endpoint: string | undefined, bytes: ForwardBytes): void {
    this.service = service ?? '';
    this.peer = conn.peerIdentity ?? '';
    this.bytes = bytes;
    if (this.#live === undefined) this.#live = this.#t.tcpForwarding(this);
  }

  closed(outcome: ConnectionOutcome): void {
    this.#t.tcpClosed(this, outcome, this.#live);
    this.#live = undefined;
  }
}

export interface TelemetryOptions {
  readonly log: Logger;
  readonly settings: ProxySettings;
  readonly context: LabelContext;
  /** The remora version (remora_build_info, istio_build). */
  readonly version: string;
  readonly random?: () => number;
}

export class Telemetry {
  readonly metrics: IstioMetrics;
  readonly #picks = new EndpointPicks();
  readonly #log: Logger;
  readonly #random: () => number;
  readonly #version: string;
  #metricsOn: boolean;
  #sample: number;
  #writer: AccessLogWriter | undefined;
  #exporter: SpanExporter | undefined;
  #exporterKey = '';
  /** Spans exported and dropped by exporters replaced since (a reload changed the collector or its batching). */
  #spansBefore = { exported: 0, queue_full: 0, export_failed: 0 };
  #tracingUsed = false;
  #queue: Entry[] = [];
  #flushScheduled = false;
  #sweepTimer: NodeJS.Timeout | undefined;
  #stats: (() => ProxyStatsJson) | undefined;
  /** Access log lines written (handed to the writer), left out by sampling, dropped (queue or writer full, write failed). */
  #logged = 0;
  #sampledOut = 0;
  #queueDropped = 0;
  /** Lines lost or refused by writers replaced since (a reload changed access_log). */
  #writerDroppedBefore = 0;
  #lostBefore = 0;
  readonly #observers: Readonly<Record<Direction, RequestObserver>>;

  /** Opens the access log file now: throws REMORA_ERR_CONFIG_INVALID naming it when it cannot be opened. */
  constructor(o: TelemetryOptions) {
    this.#log = o.log;
    this.#random = o.random ?? Math.random;
    this.#version = o.version;
    const s = o.settings;
    this.#metricsOn = s.metrics;
    this.#sample = s.accessLogSample;
    this.metrics = new IstioMetrics(o.context, { maxSeries: s.metricsMaxSeries, evictAfterMs: s.metricsEvictAfter });
    const target = targetOf(s.accessLog);
    this.#writer = target === undefined ? undefined : this.#open(target);
    this.#observers = { outbound: this.#observer('outbound'), inbound: this.#observer('inbound') };
    this.#schedule(s.metricsEvictAfter);
    this.#configureTracing(s, o.context.local);
  }

  /** Make, keep or replace the span exporter for these settings (tracing off: none). */
  #configureTracing(s: ProxySettings, local: LocalWorkload): void {
    const resource: [string, string][] = [
      ['service.name', `${local.canonicalService}.${local.namespace}`],
      ['service.namespace', local.namespace],
      ['service.version', local.canonicalRevision],
      ['service.instance.id', local.principal],
      ['telemetry.sdk.name', 'remora'],
      ['telemetry.sdk.version', this.#version],
    ];
    const on = s.tracing && s.tracingCollector !== '';
    const key = on ? JSON.stringify([s.tracingCollector, s.tracingBatchSize, s.tracingBatchInterval, s.tracingMaxQueue, resource]) : '';
    if (key === this.#exporterKey) return;
    const old = this.#exporter;
    this.#exporterKey = key;
    this.#exporter = on ? new SpanExporter({
      url: s.tracingCollector, resource, batchSize: s.tracingBatchSize, intervalMs: s.tracingBatchInterval,
      maxQueue: s.tracingMaxQueue, timeoutMs: DEFAULT_EXPORT_TIMEOUT_MS, log: this.#log,
    }) : undefined;
    if (on) this.#tracingUsed = true;
    if (old !== undefined) {
      // What the old exporter still holds is sent (one attempt); its counts carry over once it is done.
      void old.close().then(() => {
        this.#spansBefore.exported += old.exported;
        this.#spansBefore.queue_full += old.dropped.queue_full;
        this.#spansBefore.export_failed += old.dropped.export_failed;
      });
    }
  }

  /** Spans exported and dropped, by reason (undefined: tracing was never on). */
  spanCounts(): { readonly exported: number; readonly dropped: Readonly<Record<DropReason, number>> } | undefined {
    if (!this.#tracingUsed) return undefined;
    const e = this.#exporter;
    return {
      exported: this.#spansBefore.exported + (e?.exported ?? 0),
      dropped: {
        queue_full: this.#spansBefore.queue_full + (e?.dropped.queue_full ?? 0),
        export_failed: this.#spansBefore.export_failed + (e?.dropped.export_failed ?? 0),
      },
    };
  }

  /** Where /stats' counters come from (for remora_*). */
  setStatsSource(stats: () => ProxyStatsJson): void {
    this.#stats = stats;
  }

  #open(target: AccessLogTarget): AccessLogWriter {
    return new AccessLogWriter(target, {
      onError: (err) => {
        this.#log.error({ event: 'access-log.write-failed', err, accessLog: describeTarget(target) },
          'writing the access log failed: its lines are dropped until a reload sets access_log again');
      },
    });
  }

  #schedule(evictAfterMs: number): void {
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    if (evictAfterMs <= 0) return;
    this.#sweepTimer = setInterval(() => {
      this.#flushLive();
      this.metrics.sweep();
    }, Math.max(1_000, Math.floor(evictAfterMs / 2)));
    this.#sweepTimer.unref();
  }

  /** Whether a snapshot with these settings needs request observations at all. */
  static wanted(s: ProxySettings): boolean {
    return s.metrics || s.accessLog.kind !== 'off' || s.tracing;
  }

  /** The observer for a listener's request chain under `settings` (undefined: nothing to observe, the cheap chain). */
  requestObserver(direction: Direction, settings: ProxySettings): RequestObserver | undefined {
    return Telemetry.wanted(settings) ? this.#observers[direction] : undefined;
  }

  /** The connection stats filter's observer (connections: istio_tcp_*, TCP access log lines). */
  readonly connectionObserver: ConnectionObserver = {
    open: (conn) => (this.#metricsOn || this.#writer !== undefined ? new TcpWatch(this, conn) : undefined),
  };

  /**
   * Connections being forwarded now (their bytes are added up at scrapes). A LiveSet (src/core/live-set.ts): a Set
   * churned per connection keeps closed ones through young collections.
   */
  readonly #live = new LiveSet<TcpWatch>();

  /**
   * @internal TcpWatch: forwarding began (peer identity: the context's, set once mesh mTLS was terminated). Its entry
   * among the live connections (undefined with metrics off), for tcpClosed().
   */
  tcpForwarding(w: TcpWatch): LiveEntry<TcpWatch> | undefined {
    if (!this.#metricsOn) return undefined;
    const c = w.conn;
    this.metrics.recordTcp(c.direction === 'outbound' ? OUTBOUND : INBOUND, c.direction === 'outbound' ? w.service : '', w.peer, 0, 1, 0, 0, 0);
    return this.#live.add(w);
  }

  /** Add the bytes each live connection moved since it was last counted. */
  #flushLive(): void {
    for (const w of this.#live.items()) this.#countBytes(w, 0, 0);
  }

  #countBytes(w: TcpWatch, flags: number, closed: number): void {
    const b = w.bytes;
    const c = w.conn;
    const inBytes = b === undefined ? 0 : b.bytesDownstreamToUpstream - w.countedIn;
    const outBytes = b === undefined ? 0 : b.bytesUpstreamToDownstream - w.countedOut;
    w.countedIn += inBytes;
    w.countedOut += outBytes;
    // Recorded even with nothing new: the label set of a live connection stays (never evicted while it is open).
    this.metrics.recordTcp(c.direction === 'outbound' ? OUTBOUND : INBOUND, c.direction === 'outbound' ? w.service : '', w.peer, flags, 0, closed, outBytes, inBytes);
  }

  /** @internal TcpWatch: the connection ended. */
  tcpClosed(w: TcpWatch, r: ConnectionOutcome, entry: LiveEntry<TcpWatch> | undefined): void {
    const live = entry !== undefined && this.#live.delete(entry);
    if (r.http) return; // its requests are observed one by one
    const conn = w.conn;
    const flags = connectionResponseFlags(r.code);
    if (this.#metricsOn) {
      if (r.service !== undefined && r.endpoint !== undefined && conn.direction === 'outbound') this.#picks.add(r.service, r.endpoint, 1);
      if (live) {
        // Opened when forwarding began, under the labels known then (the flags, as in Istio, are those of each moment):
        // the rest of its bytes and its close.
        this.#countBytes(w, flags, 1);
      } else {
        // Never forwarded (it failed before, or metrics were off then): opened and closed at once, with its bytes.
        this.metrics.recordTcp(conn.direction === 'outbound' ? OUTBOUND : INBOUND, conn.direction === 'outbound' ? (r.service ?? '') : '',
          r.peerIdentity ?? '', flags, 1, 1, r.bytesOut, r.bytesIn);
      }
    }
    if (this.#writer !== undefined) {
      if (this.#sampled(r.code !== undefined || flags !== 0)) this.#enqueue({ kind: 'tcp', conn, r, flags, endedAt: Date.now() });
    }
  }

  #observer(direction: Direction): RequestObserver {
    const listener = direction === 'outbound' ? OUTBOUND : INBOUND;
    return (o) => {
      const req = o.req;
      const flags = httpFlags(o.localReplyReason, req.resetCause, o.downstreamAborted, req.attempts, req.route?.retry.maxAttempts ?? 1, o.status);
      if (this.#metricsOn) {
        const service = listener === OUTBOUND ? req.service : undefined;
        this.metrics.recordRequest(listener, service ?? '', req.downstream.conn.peerIdentity ?? '',
          req.downstream.grpc, o.status, o.grpcStatus, flags, o.endedAt - o.startedAt, o.requestBytes, o.responseBytes);
        const host = req.upstreamHost;
        if (service !== undefined && host !== undefined) this.#picks.add(service, host, 0);
      }
      if (this.#writer !== undefined && this.#sampled(o.status === 0 || o.status >= 400 || flags !== 0)) {
        this.#enqueue({ kind: 'http', o, direction, flags });
      }
      const trace = req.trace;
      if (trace !== undefined && trace.sampled && this.#exporter !== undefined) this.#exporter.add(requestSpan(o, direction, flags, trace));
    };
  }

  #sampled(failure: boolean): boolean {
    if (failure || this.#sample >= 1) return true;
    if (this.#sample > 0 && this.#random() < this.#sample) return true;
    this.#sampledOut++;
    return false;
  }

  #enqueue(e: Entry): void {
    if (this.#queue.length >= ACCESS_LOG_QUEUE_LIMIT) {
      this.#queueDropped++;
      return;
    }
    this.#queue.push(e);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
  }

  /** Format the queued entries and hand them to the writer as one batch. */
  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const q = this.#queue;
    this.#queue = [];
    const w = this.#writer;
    if (w === undefined || q.length === 0) return;
    let text = '';
    let n = 0;
    for (const e of q) {
      try {
        text += e.kind === 'http' ? httpAccessLogLine(e.o, e.direction, e.flags) : tcpAccessLogLine(e.conn, e.r, e.flags, e.endedAt);
        n++;
      } catch (err) {
        this.#log.error({ event: 'access-log.format-failed', err, code: 'REMORA_ERR_INTERNAL' }, 'an access log line could not be made');
      }
    }
    if (n > 0 && w.write(text, n)) this.#logged += n;
  };

  /** Apply a new runtime's settings and labels (called when it is committed). */
  apply(settings: ProxySettings, context: LabelContext): void {
    this.#configureTracing(settings, context.local);
    this.#metricsOn = settings.metrics;
    this.#sample = settings.accessLogSample;
    const evictChanged = settings.metricsEvictAfter !== this.metrics.evictAfterMs;
    this.metrics.configure({ maxSeries: settings.metricsMaxSeries, evictAfterMs: settings.metricsEvictAfter });
    if (evictChanged) this.#schedule(settings.metricsEvictAfter);
    if (this.metrics.setContext(context)) {
      this.#log.info({ event: 'metrics.labels-changed', workload: context.local }, 'metrics labels changed: the istio_* series start over');
    }
    const target = targetOf(settings.accessLog);
    const old = this.#writer;
    // The same target is kept, unless writing to it failed (a reload is the way to try again).
    if (sameTarget(old?.target, target) && old?.failed !== true) return;
    let next: AccessLogWriter | undefined;
    try {
      next = target === undefined ? undefined : this.#open(target);
    } catch (err) {
      this.#log.error({ event: 'access-log.open-failed', err, accessLog: target === undefined ? 'off' : describeTarget(target) },
        'the new access_log cannot be opened: the access log keeps going where it went');
      return;
    }
    this.#flush();
    this.#writer = next;
    if (old !== undefined) {
      this.#writerDroppedBefore += old.refusedLines + old.lostLines;
      this.#lostBefore += old.lostLines;
      void old.close();
    }
    this.#log.info({ event: 'access-log.reopened', from: old === undefined ? 'off' : describeTarget(old.target), to: target === undefined ? 'off' : describeTarget(target) },
      'access log target changed');
  }

  counters(): TelemetryCounters {
    const w = this.#writer;
    const lost = this.#lostBefore + (w?.lostLines ?? 0);
    const dropped = this.#queueDropped + this.#writerDroppedBefore + (w === undefined ? 0 : w.refusedLines + w.lostLines);
    const used = w !== undefined || this.#logged > 0 || this.#sampledOut > 0 || dropped > 0;
    return {
      series: this.metrics.series,
      maxSeries: this.metrics.maxSeries,
      seriesOverflow: this.metrics.overflow,
      seriesEvicted: this.metrics.evicted,
      accessLog: used ? { written: this.#logged - lost, sampledOut: this.#sampledOut, dropped } : undefined,
      picks: this.#picks.rows(),
      spans: this.spanCounts(),
    };
  }

  /** The exposition's parts: istio_build and istio_* (when metrics are on), then remora_*. */
  sources(): ExpositionSource[] {
    this.#flushLive();
    const out: ExpositionSource[] = [];
    if (this.#metricsOn) {
      const version = this.#version;
      out.push(function* (w) {
        w.family('istio_build', 'gauge', 'Istio component build info (remora: the proxy\'s version)');
        w.sample('istio_build', `component="proxy",tag="${version}"`, 1);
        yield;
      }, this.metrics.source);
    }
    const stats = this.#stats;
    if (stats !== undefined) out.push(remoraSource(this.#version, stats, () => this.counters()));
    return out;
  }

  /** The golden-metric edges reported to the control plane (none when metrics are off). */
  golden(): GoldenEdgeSample[] {
    if (!this.#metricsOn) return [];
    this.#flushLive();
    return goldenSamples(this.metrics);
  }

  /** The exposition in one string (tests). */
  render(): string {
    return renderExposition(this.sources());
  }

  /** Write the exposition in chunks without holding the event loop (see writeExposition). */
  write(out: (chunk: string) => void | Promise<void>): Promise<number> {
    return writeExposition(this.sources(), out);
  }

  /** Write what the access log has queued and close it; send the spans waiting (one attempt). */
  async close(): Promise<void> {
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    const e = this.#exporter;
    this.#exporter = undefined;
    this.#exporterKey = '';
    if (e !== undefined) await e.close();
    this.#flush();
    const w = this.#writer;
    this.#writer = undefined;
    if (w !== undefined) await w.close();
  }
}
