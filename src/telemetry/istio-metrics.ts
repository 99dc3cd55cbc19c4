// Istio's standard metrics (names, types, labels in Istio's order, Envoy's default buckets), stored for a cheap hot
// path and a cheap scrape:
//
//   * series are interned: a Group per (listener, service, peer identity) holds the escaped text of its 20 peer labels,
//     made once; in a group, a series set per (protocol, status, gRPC status, flags) is found by one Map lookup on a
//     small integer (no string is built per request) and holds its whole label text, made once;
//   * an HTTP series set is one counter and three histograms (Float64Array buckets); a TCP set is four counters;
//   * cardinality is bounded: at most `maxSeries` sets per process (each is one label set of every family it feeds);
//     an observation that would need a new set beyond that is dropped from these metrics and counted
//     (remora_metrics_series_overflow_total); a set not updated for `evictAfterMs` is evicted (sweep());
//   * a label-context change (the local workload's labels, a service's identity) starts the series over.
import { Histogram } from './histogram.js';
import { labelPairs, type ExpositionSource, type ExpositionWriter } from './exposition.js';
import { formatResponseFlags, RESPONSE_FLAG_BITS } from './response-flags.js';
import {
  inboundPeerValues, outboundPeerValues, PEER_LABEL_NAMES, securityPolicy, type LocalWorkload, type ServiceLabels,
} from './workload-labels.js';

export type ListenerIndex = 0 | 1;
export const OUTBOUND: ListenerIndex = 0;
export const INBOUND: ListenerIndex = 1;

/** What the label values are made from; a new one (different text) starts the series over. */
export interface LabelContext {
  readonly local: LocalWorkload;
  readonly services: ReadonlyMap<string, ServiceLabels>;
}

class HttpSeries {
  readonly labels: string;
  /** response_code (0: no response). */
  status = 0;
  requests = 0;
  readonly duration = new Histogram();
  readonly requestBytes = new Histogram();
  readonly responseBytes = new Histogram();
  seen: number;

  constructor(labels: string, gen: number) {
    this.labels = labels;
    this.seen = gen;
  }
}

class TcpSeries {
  readonly labels: string;
  opened = 0;
  closed = 0;
  sent = 0;
  received = 0;
  seen: number;

  constructor(labels: string, gen: number) {
    this.labels = labels;
    this.seen = gen;
  }
}

class Group {
  /** The 20 peer labels, escaped, without braces. */
  readonly prefix: string;
  /** The same 20 values, unescaped (PEER_LABEL_NAMES' order), for readers (goldenSeries). */
  readonly values: readonly string[];
  readonly security: string;
  readonly http = new Map<number, HttpSeries>();
  readonly tcp = new Map<number, TcpSeries>();

  constructor(prefix: string, values: readonly string[], security: string) {
    this.prefix = prefix;
    this.values = values;
    this.security = security;
  }
}

/** What goldenSeries() yields for one group (listener, service, peer): a read-only view, valid until the next call. */
export interface GoldenSeriesView {
  /** The 20 peer label values in PEER_LABEL_NAMES' order (reporter first). */
  readonly peer: readonly string[];
  /** connection_security_policy: unknown (at the source), mutual_tls or none. */
  readonly security: string;
  /** Each HTTP set: its response code (0: none), its request count and its duration bucket counts (non-cumulative). */
  readonly http: Iterable<{ readonly status: number; readonly requests: number; readonly durationCounts: Float64Array }>;
  /** Each TCP set's counters. */
  readonly tcp: Iterable<{ readonly opened: number; readonly closed: number; readonly sent: number; readonly received: number }>;
}

const FLAG_SPACE = 1 << RESPONSE_FLAG_BITS;
const MAX_GRPC = 62;

/** The key of an HTTP series set in its group: a small integer (a V8 Smi, no allocation). */
export function httpSeriesKey(grpc: boolean, status: number, grpcStatus: number, flags: number): number {
  const s = status < 0 ? 0 : status > 999 ? 999 : status;
  const g = grpcStatus < 0 ? 0 : (grpcStatus > MAX_GRPC ? MAX_GRPC : grpcStatus) + 1;
  return ((s * 64 + g) * 2 + (grpc ? 1 : 0)) * FLAG_SPACE + flags;
}

const HTTP_FAMILIES = {
  requests: 'istio_requests_total',
  duration: 'istio_request_duration_milliseconds',
  requestBytes: 'istio_request_bytes',
  responseBytes: 'istio_response_bytes',
} as const;

const TCP_FAMILIES = {
  sent: 'istio_tcp_sent_bytes_total',
  received: 'istio_tcp_received_bytes_total',
  opened: 'istio_tcp_connections_opened_total',
  closed: 'istio_tcp_connections_closed_total',
} as const;

/** Every istio_* family, with its type and HELP text (docs/observability.md lists the same). */
export const ISTIO_FAMILIES: readonly { readonly name: string; readonly type: 'counter' | 'histogram'; readonly help: string }[] = [
  { name: HTTP_FAMILIES.requests, type: 'counter', help: 'HTTP and gRPC requests, by their peers and their response' },
  { name: HTTP_FAMILIES.duration, type: 'histogram', help: 'Duration of HTTP and gRPC requests, head received to response end, in milliseconds' },
  { name: HTTP_FAMILIES.requestBytes, type: 'histogram', help: 'Body sizes of HTTP and gRPC requests, in bytes' },
  { name: HTTP_FAMILIES.responseBytes, type: 'histogram', help: 'Body sizes of HTTP and gRPC responses, in bytes' },
  { name: TCP_FAMILIES.sent, type: 'counter', help: 'Bytes sent to the downstream of TCP connections (the response direction)' },
  { name: TCP_FAMILIES.received, type: 'counter', help: 'Bytes received from the downstream of TCP connections (the request direction)' },
  { name: TCP_FAMILIES.opened, type: 'counter', help: 'TCP connections opened' },
  { name: TCP_FAMILIES.closed, type: 'counter', help: 'TCP connections closed' },
];

const HELP = new Map(ISTIO_FAMILIES.map((f) => [f.name, f.help]));

/** Histogram lines' fixed parts: `,le="0.5"} ` per bound, then +Inf. */
function leSuffixes(h: Histogram): string[] {
  const out: string[] = [];
  for (const b of h.bounds) out.push(`,le="${String(b)}"} `);
  out.push(',le="+Inf"} ');
  return out;
}

const LE = leSuffixes(new Histogram());
/** Yield to the exposition writer after this many series sets. */
const YIELD_EVERY = 2;

export interface IstioMetricsOptions {
  readonly maxSeries: number;
  /** Sets not updated for this long are evicted (0: never). */
  readonly evictAfterMs: number;
}

export class IstioMetrics {
  #context: LabelContext;
  #contextKey: string;
  /** [listener] -> service ('' inbound / passthrough) -> peer identity ('' none) -> group. */
  #groups: [Map<string, Map<string, Group>>, Map<string, Map<string, Group>>] = [new Map(), new Map()];
  #series = 0;
  #maxSeries: number;
  #evictAfterMs: number;
  /** The eviction clock: incremented by each sweep; a set records the value it was last updated at. */
  #gen = 0;
  /** Observations dropped because the cap was reached. */
  overflow = 0;
  evicted = 0;

  constructor(context: LabelContext, o: IstioMetricsOptions) {
    this.#context = context;
    this.#contextKey = contextKey(context);
    this.#maxSeries = o.maxSeries;
    this.#evictAfterMs = o.evictAfterMs;
  }

  /** Series sets held now. */
  get series(): number {
    return this.#series;
  }

  get maxSeries(): number {
    return this.#maxSeries;
  }

  get evictAfterMs(): number {
    return this.#evictAfterMs;
  }

  configure(o: IstioMetricsOptions): void {
    this.#maxSeries = o.maxSeries;
    this.#evictAfterMs = o.evictAfterMs;
  }

  /** A new label context: when its values differ, every series starts over (old label sets are gone). */
  setContext(context: LabelContext): boolean {
    const key = contextKey(context);
    this.#context = context;
    if (key === this.#contextKey) return false;
    this.#contextKey = key;
    this.#groups = [new Map(), new Map()];
    this.#series = 0;
    return true;
  }

  #group(listener: ListenerIndex, service: string, peer: string): Group {
    const byService = this.#groups[listener];
    let byPeer = byService.get(service);
    if (byPeer === undefined) {
      byPeer = new Map();
      byService.set(service, byPeer);
    }
    let g = byPeer.get(peer);
    if (g === undefined) {
      const ctx = this.#context;
      const peerId = peer === '' ? undefined : peer;
      const values = listener === OUTBOUND
        ? outboundPeerValues(ctx.local, service === '' ? undefined : service, service === '' ? undefined : ctx.services.get(service))
        : inboundPeerValues(ctx.local, peerId);
      g = new Group(labelPairs(PEER_LABEL_NAMES, values), values, securityPolicy(listener === OUTBOUND ? 'outbound' : 'inbound', peerId));
      byPeer.set(peer, g);
    }
    return g;
  }

  /** One HTTP/gRPC request. `service`: '' for inbound or passthrough; `peer`: the client's SPIFFE ID or ''. */
  recordRequest(
    listener: ListenerIndex, service: string, peer: string, grpc: boolean, status: number, grpcStatus: number, flags: number,
    durationMs: number, requestBytes: number, responseBytes: number,
  ): void {
    const g = this.#group(listener, service, peer);
    const key = httpSeriesKey(grpc, status, grpcStatus, flags);
    let s = g.http.get(key);
    if (s === undefined) {
      if (this.#series >= this.#maxSeries) {
        this.overflow++;
        return;
      }
      const labels = `${g.prefix},request_protocol="${grpc ? 'grpc' : 'http'}",response_flags="${formatResponseFlags(flags)}",`
        + `connection_security_policy="${g.security}",response_code="${status}",grpc_response_status="${grpcStatus < 0 ? '' : String(grpcStatus)}"`;
      s = new HttpSeries(labels, this.#gen);
      s.status = status;
      g.http.set(key, s);
      this.#series++;
    }
    s.seen = this.#gen;
    s.requests++;
    s.duration.observe(durationMs);
    s.requestBytes.observe(requestBytes);
    s.responseBytes.observe(responseBytes);
  }

  /** TCP: connections opened / closed and bytes each way, added to the set of (listener, service, peer, flags). */
  recordTcp(listener: ListenerIndex, service: string, peer: string, flags: number, opened: number, closed: number, sent: number, received: number): void {
    const g = this.#group(listener, service, peer);
    let s = g.tcp.get(flags);
    if (s === undefined) {
      if (this.#series >= this.#maxSeries) {
        this.overflow++;
        return;
      }
      s = new TcpSeries(`${g.prefix},request_protocol="tcp",response_flags="${formatResponseFlags(flags)}",connection_security_policy="${g.security}"`, this.#gen);
      g.tcp.set(flags, s);
      this.#series++;
    }
    s.seen = this.#gen;
    s.opened += opened;
    s.closed += closed;
    s.sent += sent;
    s.received += received;
  }

  /**
   * Evict the sets not updated during the last two sweep periods. Called every evictAfterMs / 2 (the period P), a
   * set goes once it has been idle for between 2P and 3P: between evictAfterMs and 1.5 x evictAfterMs.
   */
  sweep(): number {
    const gen = ++this.#gen;
    let n = 0;
    for (const byService of this.#groups) {
      for (const [service, byPeer] of byService) {
        for (const [peer, g] of byPeer) {
          for (const [k, s] of g.http) if (gen - s.seen > 2) { g.http.delete(k); n++; }
          for (const [k, s] of g.tcp) if (gen - s.seen > 2) { g.tcp.delete(k); n++; }
          if (g.http.size === 0 && g.tcp.size === 0) byPeer.delete(peer);
        }
        if (byPeer.size === 0) byService.delete(service);
      }
    }
    this.#series -= n;
    this.evicted += n;
    return n;
  }

  /** Every group's peer labels and counters (read-only; the golden-metrics report to the control plane reads these). */
  *goldenSeries(): Generator<GoldenSeriesView> {
    for (const byService of this.#groups) {
      for (const byPeer of byService.values()) {
        for (const g of byPeer.values()) {
          yield {
            peer: g.values, security: g.security,
            http: [...g.http.values()].map((s) => ({ status: s.status, requests: s.requests, durationCounts: s.duration.counts })),
            tcp: [...g.tcp.values()].map((s) => ({ opened: s.opened, closed: s.closed, sent: s.sent, received: s.received })),
          };
        }
      }
    }
  }

  /** Each set, by kind, for rendering. */
  *#sets<K extends 'http' | 'tcp'>(kind: K): Generator<K extends 'http' ? HttpSeries : TcpSeries> {
    for (const byService of this.#groups) {
      for (const byPeer of byService.values()) {
        for (const g of byPeer.values()) yield* (g[kind].values() as Iterable<K extends 'http' ? HttpSeries : TcpSeries>);
      }
    }
  }

  #count(kind: 'http' | 'tcp'): number {
    let n = 0;
    for (const byService of this.#groups) for (const byPeer of byService.values()) for (const g of byPeer.values()) n += g[kind].size;
    return n;
  }

  /** The exposition of every istio_* family (families without a series are left out). */
  readonly source: ExpositionSource = (w) => this.#render(w);

  *#render(w: ExpositionWriter): Generator<void> {
    if (this.#count('http') > 0) {
      yield* this.#counterFamily(w, HTTP_FAMILIES.requests, this.#sets('http'), (s) => s.requests);
      for (const key of ['duration', 'requestBytes', 'responseBytes'] as const) {
        const name = HTTP_FAMILIES[key];
        w.family(name, 'histogram', HELP.get(name) ?? '');
        const bucket = `${name}_bucket{`;
        const sum = `${name}_sum{`;
        const count = `${name}_count{`;
        let n = 0;
        for (const s of this.#sets('http')) {
          const h = s[key];
          const c = h.counts;
          let cum = 0;
          let text = '';
          for (let i = 0; i < c.length; i++) {
            cum += c[i] as number;
            text += `${bucket}${s.labels}${LE[i] as string}${cum}\n`;
          }
          text += `${sum}${s.labels}} ${h.sum}\n${count}${s.labels}} ${h.count}\n`;
          w.line(text);
          if (++n % YIELD_EVERY === 0) yield;
        }
      }
    }
    if (this.#count('tcp') > 0) {
      yield* this.#counterFamily(w, TCP_FAMILIES.sent, this.#sets('tcp'), (s) => s.sent);
      yield* this.#counterFamily(w, TCP_FAMILIES.received, this.#sets('tcp'), (s) => s.received);
      yield* this.#counterFamily(w, TCP_FAMILIES.opened, this.#sets('tcp'), (s) => s.opened);
      yield* this.#counterFamily(w, TCP_FAMILIES.closed, this.#sets('tcp'), (s) => s.closed);
    }
  }

  *#counterFamily<S extends { readonly labels: string }>(w: ExpositionWriter, name: string, sets: Iterable<S>, value: (s: S) => number): Generator<void> {
    w.family(name, 'counter', HELP.get(name) ?? '');
    let n = 0;
    for (const s of sets) {
      w.line(`${name}{${s.labels}} ${value(s)}\n`);
      if (++n % (YIELD_EVERY * 16) === 0) yield;
    }
  }
}

function contextKey(c: LabelContext): string {
  return JSON.stringify([c.local, [...c.services].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}
