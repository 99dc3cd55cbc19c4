// The proxy's counters. The hot path increments plain number fields on a ListenerCounters object it was handed once
// per connection (no Map lookup, no allocation per chunk); totals are summed only when a snapshot is taken for
// /stats. Error and sniff counters are keyed by a bounded set of codes (RemoraErrorCode or a system error code).

/** Counters of one capture listener. Fields are written directly by the data path. */
export class ListenerCounters {
  /** Connections accepted by the listener (including the ones closed at once, e.g. not redirected). */
  accepted = 0;
  /** Connections accepted and not yet fully closed. */
  active = 0;
  /** Connections fully closed (both sides). accepted = active + closed. */
  closed = 0;
  /** Bytes read from the downstream and handed to the upstream. */
  downstreamToUpstream = 0;
  /** Bytes read from the upstream and handed to the downstream. */
  upstreamToDownstream = 0;
  /** Connections closed by the idle timeout (not an error). */
  idleTimeouts = 0;
  /** Opaque forwards run by the native forwarding thread (tcp_forwarder = native): handed over, or accepted there. */
  nativeForwards = 0;
  /** Connections the native forwarding thread accepted (native accept), kept there or taken into Node as sockets. */
  nativeAccepts = 0;
  /** Opaque forwards that stayed in Node although tcp_forwarder = native (a socket that could not be handed over). */
  nativeFallbacks = 0;
  /** Where the listener is bound ("[::]:15001"); set once after binding. */
  address = '';
  /** True when "::" was asked for but the kernel has no IPv6 and 0.0.0.0 was bound (degraded: IPv4 only). */
  ipv4Only = false;
}

export interface ConnectionCountsJson {
  readonly accepted: number;
  readonly active: number;
  readonly closed: number;
}

export interface BytesJson {
  readonly downstreamToUpstream: number;
  readonly upstreamToDownstream: number;
}

export interface ListenerStatsJson {
  readonly address: string;
  readonly ipv4Only: boolean;
  readonly connections: ConnectionCountsJson;
  readonly bytes: BytesJson;
  readonly idleTimeouts: number;
  /**
   * tcp_forwarder = native: forwards run by the native thread, the ones that stayed in Node, and the connections the
   * thread accepted (native accept).
   */
  readonly forwarder: { readonly native: number; readonly nodeFallbacks: number; readonly accepts: number };
}

/** The proxy-wide part of GET /stats (src/admin/stats-json.ts adds services, the HTTP layer and the config). */
export interface CoreStatsJson {
  readonly state: string;
  readonly uptimeMs: number;
  readonly connections: ConnectionCountsJson;
  readonly bytes: BytesJson;
  readonly idleTimeouts: number;
  /** Failures by remora code (REMORA_ERR_UPSTREAM_CONNECT, ...) or, for listener errors, by system code. */
  readonly errors: Readonly<Record<string, number>>;
  /** The system error codes behind counted failures (ECONNREFUSED, ECONNRESET, EPIPE, ...). */
  readonly errorCauses: Readonly<Record<string, number>>;
  readonly listeners: Readonly<Record<string, ListenerStatsJson>>;
  /**
   * Protocol-detection outcomes: "tls", "http1", "http2", "opaque:<reason>" (unrecognized, server-first, timeout,
   * eof, too-large, tls-malformed), and "declared:<protocol>" for connections whose port or service declares the
   * protocol (no detection).
   */
  readonly sniff: Readonly<Record<string, number>>;
}

/** Named counters (the HTTP engines', the config reloads'), sorted by name in JSON. */
export class CounterMap {
  readonly #map = new Map<string, number>();

  increment(name: string, by = 1): void {
    this.#map.set(name, (this.#map.get(name) ?? 0) + by);
  }

  get(name: string): number {
    return this.#map.get(name) ?? 0;
  }

  json(): Record<string, number> {
    return sortedObject(this.#map);
  }
}

function sortedObject(m: ReadonlyMap<string, number>): Record<string, number> {
  return Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export class Stats {
  readonly #listeners = new Map<string, ListenerCounters>();
  readonly #errors = new Map<string, number>();
  readonly #causes = new Map<string, number>();
  readonly #sniff = new Map<string, number>();
  readonly #startedAt: number;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#startedAt = now();
  }

  /** The counters of a listener, created on first use. Call once per listener, keep the object. */
  listener(name: string): ListenerCounters {
    let c = this.#listeners.get(name);
    if (c === undefined) {
      c = new ListenerCounters();
      this.#listeners.set(name, c);
    }
    return c;
  }

  /** Count a failure under `code`, and its system error code (if any, and different) under errorCauses. */
  countError(code: string, cause?: string): void {
    this.#errors.set(code, (this.#errors.get(code) ?? 0) + 1);
    if (cause !== undefined && cause !== code) this.#causes.set(cause, (this.#causes.get(cause) ?? 0) + 1);
  }

  countSniff(outcome: string): void {
    this.#sniff.set(outcome, (this.#sniff.get(outcome) ?? 0) + 1);
  }

  errorCount(code: string): number {
    return this.#errors.get(code) ?? 0;
  }

  /** A plain JSON-ready copy of every counter; totals are sums over the listeners. */
  snapshot(state: string): CoreStatsJson {
    let accepted = 0;
    let active = 0;
    let closed = 0;
    let d2u = 0;
    let u2d = 0;
    let idle = 0;
    const listeners: Record<string, ListenerStatsJson> = {};
    for (const [name, c] of this.#listeners) {
      accepted += c.accepted;
      active += c.active;
      closed += c.closed;
      d2u += c.downstreamToUpstream;
      u2d += c.upstreamToDownstream;
      idle += c.idleTimeouts;
      listeners[name] = {
        address: c.address,
        ipv4Only: c.ipv4Only,
        connections: { accepted: c.accepted, active: c.active, closed: c.closed },
        bytes: { downstreamToUpstream: c.downstreamToUpstream, upstreamToDownstream: c.upstreamToDownstream },
        idleTimeouts: c.idleTimeouts,
        forwarder: { native: c.nativeForwards, nodeFallbacks: c.nativeFallbacks, accepts: c.nativeAccepts },
      };
    }
    return {
      state,
      uptimeMs: this.#now() - this.#startedAt,
      connections: { accepted, active, closed },
      bytes: { downstreamToUpstream: d2u, upstreamToDownstream: u2d },
      idleTimeouts: idle,
      errors: sortedObject(this.#errors),
      errorCauses: sortedObject(this.#causes),
      listeners,
      sniff: sortedObject(this.#sniff),
    };
  }
}
