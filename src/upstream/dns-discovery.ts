// DNS discovery of a service's endpoints: resolve A / AAAA / A+AAAA (port from config) or SRV (ports, weights and
// targets from the records; targets then resolved as A / AAAA / A+AAAA), publish the endpoint list whenever it
// changes, and resolve again when the records expire:
//   * next refresh = smallest TTL of the answer, clamped to [refreshMin, refreshMax]. Node does not expose the TTL
//     of SRV records, so an SRV answer is refreshed on the smallest TTL of its targets' address records (IP-literal
//     targets: refreshMax);
//   * on failure (timeout, SERVFAIL, refused, or an answer with no usable records) the last good endpoints are kept
//     and logged, and the next attempt backs off: refreshMin, 2x, 4x ... up to refreshMax;
//   * SRV: only the records of the lowest priority value are used (RFC 2782); weights 0-65535 are mapped to 1-1000
//     keeping their ratios.
// The resolver is injectable (tests); by default a node:dns/promises Resolver pointed at [registry] resolver.
import type { Resolver } from 'node:dns/promises';
import type { RecordWithTtl, SrvRecord } from 'node:dns';
import { formatHostPort, type HostPort } from '../core/addr.js';
import { nodeDnsPromises } from '../core/lazy-builtins.js';
import { errorCodeOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { canonicalAddress } from '../config/service-registry.js';
import { type DnsAddressType, type DnsDiscoverySpec, type RegistryOptions, type ServiceSpec } from '../config/service-spec.js';
import { endpointKey, sameSubsets, type EndpointSpec } from '../config/service-spec.js';

/** What discovery needs from a resolver; node:dns/promises Resolver has exactly this shape. */
export interface DnsResolverLike {
  resolve4(hostname: string, options: { ttl: true }): Promise<RecordWithTtl[]>;
  resolve6(hostname: string, options: { ttl: true }): Promise<RecordWithTtl[]>;
  resolveSrv(hostname: string): Promise<SrvRecord[]>;
}

/**
 * Timer functions, injectable so that tests see the delays chosen without waiting for them (same method names as
 * the upstream layer's Timers, so those can be passed too).
 */
export interface DiscoveryTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real timers, unref'd: discovery never keeps the process alive on its own. */
export const realTimers: DiscoveryTimers = {
  setTimeout: (fn, ms) => { const t = setTimeout(fn, ms); t.unref(); return t; },
  clearTimeout: (h) => { clearTimeout(h as ReturnType<typeof setTimeout>); },
};

export interface DnsUpdate {
  readonly service: string;
  readonly endpoints: readonly EndpointSpec[];
  /** Endpoints added and removed since the previous update (all of them are "added" in the first). */
  readonly added: readonly EndpointSpec[];
  readonly removed: readonly EndpointSpec[];
}

export interface DnsDiscoveryOptions {
  /** Service name (logs and updates). */
  readonly service: string;
  readonly dns: DnsDiscoverySpec;
  readonly resolver: DnsResolverLike;
  readonly log: Logger;
  /** Called with the complete endpoint list each time it changes (never with the same list twice in a row). */
  readonly onUpdate: (update: DnsUpdate) => void;
  readonly timers?: DiscoveryTimers;
  readonly now?: () => number;
}

export type DnsRefreshResult =
  | { readonly ok: true; readonly endpoints: readonly EndpointSpec[]; readonly changed: boolean; readonly ttlMs: number; readonly nextDelayMs: number }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly keptEndpoints: number; readonly nextDelayMs: number };

export interface DnsDiscoveryStatus {
  readonly service: string;
  readonly name: string;
  readonly type: DnsDiscoverySpec['type'];
  readonly endpoints: number;
  /** Time (ms since epoch) of the last successful resolution, undefined before the first. */
  readonly lastSuccessAt: number | undefined;
  readonly lastError: { readonly code: string; readonly message: string; readonly at: number } | undefined;
  readonly consecutiveFailures: number;
  readonly nextDelayMs: number | undefined;
}

class NoRecordsError extends Error {
  readonly code = 'ENODATA';
}

/** The TTL-driven refresh delay: ttlMs clamped to [minMs, maxMs]. */
export function clampRefresh(ttlMs: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, Math.max(minMs, ttlMs));
}

/** Delay after the n-th consecutive failure (n >= 1): minMs * 2^(n-1), at most maxMs. */
export function failureBackoff(n: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(30, Math.max(0, n - 1)));
}

/** SRV weights (0-65535) to endpoint weights (1-1000), keeping ratios when the largest exceeds 1000. */
export function srvWeights(weights: readonly number[]): number[] {
  const max = Math.max(0, ...weights);
  return weights.map((w) => Math.max(1, Math.min(1000, max > 1000 ? Math.round((w * 1000) / max) : w)));
}

function isNoData(err: unknown): boolean {
  const code = errorCodeOf(err);
  return code === 'ENODATA' || code === 'ENOTFOUND';
}

interface AddressAnswer {
  readonly addresses: readonly string[];
  /** Smallest TTL in seconds; undefined when nothing came from DNS (IP literal). */
  readonly ttl: number | undefined;
}

function sameEndpoints(a: readonly EndpointSpec[], b: readonly EndpointSpec[]): boolean {
  return a.length === b.length && a.every((e, i) => {
    const o = b[i];
    return o !== undefined && endpointKey(e) === endpointKey(o) && e.weight === o.weight && e.zone === o.zone && sameSubsets(e.subsets, o.subsets);
  });
}

export class DnsDiscovery {
  readonly #opts: DnsDiscoveryOptions;
  readonly #timers: DiscoveryTimers;
  readonly #now: () => number;
  #endpoints: readonly EndpointSpec[] = [];
  #lastSuccessAt: number | undefined;
  #lastError: DnsDiscoveryStatus['lastError'];
  #failures = 0;
  #nextDelayMs: number | undefined;
  #timer: unknown;
  #running = false;
  /** Bumped by start() and stop(): a round that finishes under an older generation schedules nothing. */
  #generation = 0;
  #stopped = false;
  #inFlight: Promise<DnsRefreshResult> | undefined;

  constructor(opts: DnsDiscoveryOptions) {
    this.#opts = opts;
    this.#timers = opts.timers ?? realTimers;
    this.#now = opts.now ?? Date.now;
  }

  /** Discovery for a service whose endpoints come from DNS; undefined for other services. */
  static forService(
    service: ServiceSpec,
    deps: { resolver: DnsResolverLike; log: Logger; onUpdate: (u: DnsUpdate) => void; timers?: DiscoveryTimers },
  ): DnsDiscovery | undefined {
    if (service.endpoints.kind !== 'dns') return undefined;
    return new DnsDiscovery({ service: service.name, dns: service.endpoints.dns, ...deps });
  }

  /** The last good endpoint list (empty before the first successful resolution). */
  get endpoints(): readonly EndpointSpec[] {
    return this.#endpoints;
  }

  get status(): DnsDiscoveryStatus {
    return {
      service: this.#opts.service, name: this.#opts.dns.name, type: this.#opts.dns.type, endpoints: this.#endpoints.length,
      lastSuccessAt: this.#lastSuccessAt, lastError: this.#lastError, consecutiveFailures: this.#failures,
      nextDelayMs: this.#nextDelayMs,
    };
  }

  /** Resolve now, then keep re-resolving on the TTL schedule until stop(). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#stopped = false;
    this.#generation += 1;
    void this.#cycle(this.#generation);
  }

  /** Stop re-resolving and publishing. A query already sent is left to finish (the resolver may be shared). */
  stop(): void {
    this.#running = false;
    this.#stopped = true;
    this.#generation += 1;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  get running(): boolean {
    return this.#running;
  }

  async #cycle(generation: number): Promise<void> {
    this.#timer = undefined;
    const r = await this.refresh();
    if (generation !== this.#generation) return;
    this.#timer = this.#timers.setTimeout(() => { void this.#cycle(generation); }, r.nextDelayMs);
  }

  /** One resolution round: updates the endpoints (publishing a change) or keeps them on failure. Never rejects. */
  refresh(): Promise<DnsRefreshResult> {
    // Overlapping calls share one round, so a slow resolver never piles up queries.
    this.#inFlight ??= this.#refresh().finally(() => { this.#inFlight = undefined; });
    return this.#inFlight;
  }

  async #refresh(): Promise<DnsRefreshResult> {
    const { dns, log, service } = this.#opts;
    try {
      const { endpoints, ttl } = dns.type === 'SRV' ? await this.#resolveSrv() : await this.#resolveAddressEndpoints();
      const ttlMs = ttl === undefined ? dns.refreshMaxMs : ttl * 1000;
      const nextDelayMs = clampRefresh(ttlMs, dns.refreshMinMs, dns.refreshMaxMs);
      const previous = this.#endpoints;
      const changed = !sameEndpoints(previous, endpoints) || this.#lastSuccessAt === undefined;
      if (this.#failures > 0) log.info({ service, dns: dns.name, failures: this.#failures }, 'dns discovery recovered');
      this.#failures = 0;
      this.#lastSuccessAt = this.#now();
      this.#nextDelayMs = nextDelayMs;
      if (changed) {
        this.#endpoints = endpoints;
        const keys = new Set(previous.map(endpointKey));
        const nextKeys = new Set(endpoints.map(endpointKey));
        const added = endpoints.filter((e) => !keys.has(endpointKey(e)));
        const removed = previous.filter((e) => !nextKeys.has(endpointKey(e)));
        log.info({ service, dns: dns.name, endpoints: endpoints.map(endpointKey), added: added.length, removed: removed.length }, 'dns discovery endpoints changed');
        try {
          if (!this.#stopped) this.#opts.onUpdate({ service, endpoints, added, removed });
        } catch (err) {
          log.error({ service, err }, 'dns discovery update handler failed');
        }
      } else {
        log.debug({ service, dns: dns.name, endpoints: endpoints.length, nextDelayMs }, 'dns discovery unchanged');
      }
      return { ok: true, endpoints, changed, ttlMs, nextDelayMs };
    } catch (err) {
      this.#failures += 1;
      const code = errorCodeOf(err);
      const message = err instanceof Error ? err.message : String(err);
      const nextDelayMs = failureBackoff(this.#failures, dns.refreshMinMs, dns.refreshMaxMs);
      this.#lastError = { code, message, at: this.#now() };
      this.#nextDelayMs = nextDelayMs;
      log.warn(
        { service, dns: dns.name, type: dns.type, code, failures: this.#failures, keptEndpoints: this.#endpoints.length, nextDelayMs },
        'dns discovery failed; keeping the last good endpoints',
      );
      return { ok: false, code, message, keptEndpoints: this.#endpoints.length, nextDelayMs };
    }
  }

  async #resolveAddressEndpoints(): Promise<{ endpoints: EndpointSpec[]; ttl: number | undefined }> {
    const { dns } = this.#opts;
    const answer = await this.#resolveAddresses(dns.name, dns.type as DnsAddressType);
    const port = dns.port ?? 0;
    const endpoints = answer.addresses.map((address) => ({ address, port, weight: 1 }));
    return { endpoints: sortEndpoints(endpoints), ttl: answer.ttl };
  }

  /** A, AAAA or both. "No such record" for one family is fine as long as the other answers; any other error fails. */
  async #resolveAddresses(name: string, type: DnsAddressType): Promise<AddressAnswer> {
    const literal = canonicalAddress(name);
    if (literal !== undefined) return { addresses: [literal], ttl: undefined };
    const { resolver } = this.#opts;
    const lookups: Promise<RecordWithTtl[]>[] = [];
    if (type !== 'AAAA') lookups.push(resolver.resolve4(name, { ttl: true }));
    if (type !== 'A') lookups.push(resolver.resolve6(name, { ttl: true }));
    const settled = await Promise.allSettled(lookups);
    const records: RecordWithTtl[] = [];
    let noData: unknown;
    for (const s of settled) {
      if (s.status === 'fulfilled') records.push(...s.value);
      else if (isNoData(s.reason)) noData = s.reason;
      else throw s.reason;
    }
    if (records.length === 0) throw noData ?? new NoRecordsError(`no ${type} records for ${name}`);
    const addresses = [...new Set(records.map((r) => canonicalAddress(r.address) ?? r.address))];
    return { addresses, ttl: Math.min(...records.map((r) => r.ttl)) };
  }

  async #resolveSrv(): Promise<{ endpoints: EndpointSpec[]; ttl: number | undefined }> {
    const { dns, log, service } = this.#opts;
    const all = await this.#opts.resolver.resolveSrv(dns.name);
    const usable = all.filter((r) => r.name !== '.' && r.name !== '' && r.port > 0);
    if (usable.length === 0) throw new NoRecordsError(`no usable SRV records for ${dns.name}`);
    const best = Math.min(...usable.map((r) => r.priority));
    const chosen = usable.filter((r) => r.priority === best);
    const weights = srvWeights(chosen.map((r) => r.weight));
    const targets = [...new Set(chosen.map((r) => r.name))];
    const answers = new Map<string, AddressAnswer>();
    await Promise.all(targets.map(async (target) => {
      try {
        answers.set(target, await this.#resolveAddresses(target, dns.targetType));
      } catch (err) {
        // A target without addresses is skipped; a resolver failure fails the round (keeps the last good list).
        if (!isNoData(err)) throw err;
        log.debug({ service, target, code: errorCodeOf(err) }, 'srv target has no addresses');
      }
    }));
    const byKey = new Map<string, EndpointSpec>();
    chosen.forEach((rec, i) => {
      for (const address of answers.get(rec.name)?.addresses ?? []) {
        const e: EndpointSpec = { address, port: rec.port, weight: weights[i] ?? 1 };
        const prior = byKey.get(endpointKey(e));
        // The same address:port named twice: keep the larger weight.
        if (prior === undefined || prior.weight < e.weight) byKey.set(endpointKey(e), e);
      }
    });
    if (byKey.size === 0) throw new NoRecordsError(`no addresses for the SRV targets of ${dns.name}`);
    const ttls = [...answers.values()].map((a) => a.ttl).filter((t): t is number => t !== undefined);
    return { endpoints: sortEndpoints([...byKey.values()]), ttl: ttls.length === 0 ? undefined : Math.min(...ttls) };
  }
}

function sortEndpoints(list: EndpointSpec[]): EndpointSpec[] {
  return list.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port));
}

/**
 * A Resolver for [registry]: its resolver (ip:port) or the system's, with the configured timeout and 2 tries.
 * node:dns/promises is loaded here, when the first DNS-discovered service needs it, not by every proxy.
 */
export function createDnsResolver(registry: Pick<RegistryOptions, 'resolver' | 'resolverTimeoutMs'>): Resolver {
  const resolver = new (nodeDnsPromises().Resolver)({ timeout: registry.resolverTimeoutMs, tries: 2 });
  const server: HostPort | undefined = registry.resolver;
  if (server !== undefined) resolver.setServers([formatHostPort(server.host, server.port)]);
  return resolver;
}
