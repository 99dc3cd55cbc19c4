// A service's live endpoints: membership (from config or discovery), load (active connections), passive health
// (ejections) and optional active health. Whenever the set of usable endpoints changes it builds and publishes a
// new immutable Picker; `pick()` is synchronous and never awaits. Pickers read the live load counters, so load
// changes need no rebuild. An old picker keeps working after a change (it still picks from its own snapshot), so
// a connection in the middle of a pick/connect/retry sequence is never left without a picker.
//
// Integrator's loop (see docs/balancing.md):
//   const tried = new Set<string>();
//   for (let attempt = 0; attempt < maxAttempts; attempt++) {
//     const r = set.pick({ sourceAddress, exclude: tried });
//     if (r.kind === 'none') break;                        // r.reason: 'no-endpoints' | 'no-healthy-endpoint' | ...
//     const release = set.acquire(r.endpoint.key);         // count the connection attempt as load
//     try { await connect(r.endpoint); set.reportConnectSuccess(r.endpoint.key); ... } // release() on close
//     catch { release(); set.reportConnectFailure(r.endpoint.key); tried.add(r.endpoint.key); }
//   }
import { ActiveHealthChecker, type ActiveHealthOptions } from './health/active-health.js';
import { pickerBuilderFor, DEFAULT_BALANCER, type BalancerOptions } from './balancer-factory.js';
import type { Clock, TimerHandle, Timers } from './clock.js';
import { systemClock, systemTimers } from './clock.js';
import type { BalancerKind, EndpointSpec } from '../config/service-spec.js';
import { endpointKey, sameSubsets } from '../config/service-spec.js';
import { PassiveHealth, type FailureOutcome, type PassiveHealthOptions } from './health/passive-health.js';
import type {
  EndpointLoad, Picker, PickerBuilder, PickContext, PickerEndpoint, PickResult, RandomSource, UpstreamEndpoint,
} from './picker.js';
import { toUpstreamEndpoint, UnavailablePicker } from './picker.js';

/**
 * The locality hook: narrows the usable endpoints before a picker is built (e.g. to the local zone when enough of
 * it is healthy). The default keeps them all; endpoints carry their `zone` label for it.
 */
export type LocalityPolicy = (
  usable: readonly PickerEndpoint[], localZone: string | undefined,
) => readonly PickerEndpoint[];

export interface EndpointSetOptions {
  /** A config name (BALANCER_KINDS) or a custom builder. Default DEFAULT_BALANCER ('p2c'). */
  readonly balancer?: BalancerKind | PickerBuilder;
  readonly balancerOptions?: BalancerOptions;
  /** Passive health (connect-failure ejection); `false` turns it off. Default on with DEFAULT_PASSIVE_HEALTH. */
  readonly passiveHealth?: PassiveHealthOptions | false;
  /** Active health checks; off unless given. Timers and randomness come from this set's options. */
  readonly activeHealth?: Omit<ActiveHealthOptions, 'onChange' | 'timers' | 'random'>;
  readonly localZone?: string;
  readonly locality?: LocalityPolicy;
  readonly clock?: Clock;
  readonly timers?: Timers;
  readonly random?: RandomSource;
}

export interface EndpointStatus extends UpstreamEndpoint {
  readonly activeConnections: number;
  /** Active health (true when active checks are off). */
  readonly healthy: boolean;
  readonly ejected: boolean;
  readonly ejectedUntil: number | undefined;
  readonly consecutiveFailures: number;
  readonly totalEjections: number;
  /** In the current picker. */
  readonly inRotation: boolean;
}

export type PickerListener = (picker: Picker, version: number) => void;

class Member implements EndpointLoad {
  active = 0;
  healthy: boolean;
  entry: PickerEndpoint;

  constructor(endpoint: UpstreamEndpoint, healthy: boolean) {
    this.healthy = healthy;
    this.entry = Object.freeze({ endpoint, load: this });
  }
}

const noop = (): void => {};

export class EndpointSet {
  readonly #builder: PickerBuilder;
  readonly #passive: PassiveHealth;
  readonly #active: ActiveHealthChecker | null;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #random: RandomSource;
  readonly #localZone: string | undefined;
  readonly #locality: LocalityPolicy | undefined;
  readonly #listeners = new Set<PickerListener>();
  /** Members sorted by key (every picker sees endpoints in key order, so hashing is order-independent). */
  #members: Member[] = [];
  #byKey = new Map<string, Member>();
  #picker: Picker = new UnavailablePicker('no-endpoints');
  #inRotation: ReadonlySet<string> = new Set();
  #version = 0;
  #nextReturnAt = Infinity;
  #timer: TimerHandle | null = null;
  #timerAt = Infinity;
  #closed = false;

  constructor(endpoints: readonly EndpointSpec[] = [], options: EndpointSetOptions = {}) {
    const balancer = options.balancer ?? DEFAULT_BALANCER;
    this.#builder = typeof balancer === 'function' ? balancer : pickerBuilderFor(balancer, options.balancerOptions);
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? systemTimers;
    this.#random = options.random ?? Math.random;
    this.#localZone = options.localZone;
    this.#locality = options.locality;
    this.#passive = new PassiveHealth(
      options.passiveHealth === false ? { consecutiveFailures: 0 } : options.passiveHealth, this.#clock,
    );
    this.#active = options.activeHealth === undefined ? null : new ActiveHealthChecker({
      ...options.activeHealth,
      timers: this.#timers,
      random: this.#random,
      onChange: (key, healthy) => this.setHealth(key, healthy),
    });
    this.#applyMembership(endpoints);
    this.#publish();
  }

  /** The current picker snapshot. Prefer `pick()`, which also brings back endpoints whose ejection ended. */
  get picker(): Picker {
    return this.#picker;
  }

  /** Increments with every published picker. */
  get version(): number {
    return this.#version;
  }

  get size(): number {
    return this.#members.length;
  }

  pick(ctx?: PickContext): PickResult {
    if (this.#nextReturnAt !== Infinity && this.#clock.now() >= this.#nextReturnAt) this.refresh();
    return this.#picker.pick(ctx);
  }

  /**
   * Replaces the membership. Endpoints whose key stays keep their load and health state (a weight or zone change
   * takes effect in the next picker). Duplicate keys: the first wins. Publishes only if something changed.
   */
  update(endpoints: readonly EndpointSpec[]): void {
    if (this.#closed) return;
    if (this.#applyMembership(endpoints)) this.#publish();
  }

  /** Counts a connection (or attempt) to `key` as load; call the returned function once when it ends. */
  acquire(key: string): () => void {
    const m = this.#byKey.get(key);
    if (m === undefined) return noop;
    m.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      m.active--;
    };
  }

  /** Reports a failed connect (refused, unreachable, timed out). May eject the endpoint and publish a picker. */
  reportConnectFailure(key: string): FailureOutcome | undefined {
    if (this.#closed || !this.#byKey.has(key) || !this.#passive.enabled) return undefined;
    const outcome = this.#passive.recordFailure(key, this.#members.length);
    if (outcome.kind === 'ejected') this.#publish();
    return outcome;
  }

  /** Reports a completed connect: resets the endpoint's failure run and ends its probation. */
  reportConnectSuccess(key: string): void {
    if (this.#byKey.has(key)) this.#passive.recordSuccess(key);
  }

  /** Sets an endpoint's health from an outside source (the active checker uses it). Unhealthy = not picked. */
  setHealth(key: string, healthy: boolean): void {
    const m = this.#byKey.get(key);
    if (this.#closed || m === undefined || m.healthy === healthy) return;
    m.healthy = healthy;
    this.#publish();
  }

  /** Brings back endpoints whose ejection time is over (also done lazily by pick() and by a timer). */
  refresh(): void {
    if (this.#closed) return;
    if (this.#passive.sweep().length > 0) this.#publish();
    else this.#armTimer();
  }

  /** Calls `listener` with every newly published picker; returns the unsubscribe function. */
  subscribe(listener: PickerListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  status(): EndpointStatus[] {
    return this.#members.map((m) => {
      const p = this.#passive.status(m.entry.endpoint.key);
      return {
        ...m.entry.endpoint,
        activeConnections: m.active,
        healthy: m.healthy,
        ejected: p.ejected,
        ejectedUntil: p.ejectedUntil,
        consecutiveFailures: p.consecutiveFailures,
        totalEjections: p.totalEjections,
        inRotation: this.#inRotation.has(m.entry.endpoint.key),
      };
    });
  }

  /** Stops timers and active checks. The last picker keeps working. */
  close(): void {
    this.#closed = true;
    this.#active?.close();
    if (this.#timer !== null) this.#timers.clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Infinity;
    this.#nextReturnAt = Infinity;
    this.#listeners.clear();
  }

  /** Returns true if the membership (keys, weights, zones or subsets) changed. */
  #applyMembership(specs: readonly EndpointSpec[]): boolean {
    const next = new Map<string, Member>();
    const fresh: Member[] = [];
    let changed = false;
    for (const spec of specs) {
      const key = endpointKey(spec);
      if (next.has(key)) continue;
      const old = this.#byKey.get(key);
      if (old === undefined) {
        const m = new Member(toUpstreamEndpoint(spec), true);
        next.set(key, m);
        fresh.push(m);
        changed = true;
        continue;
      }
      const e = old.entry.endpoint;
      if (e.weight !== spec.weight || e.zone !== spec.zone || !sameSubsets(e.subsets, spec.subsets)) {
        old.entry = Object.freeze({ endpoint: toUpstreamEndpoint(spec), load: old });
        changed = true;
      }
      next.set(key, old);
    }
    if (next.size !== this.#byKey.size) changed = true;
    if (!changed) return false;
    this.#byKey = next;
    this.#members = [...next.values()].sort((a, b) => (a.entry.endpoint.key < b.entry.endpoint.key ? -1 : 1));
    this.#passive.retain(new Set(next.keys()));
    if (this.#active !== null) {
      this.#active.setEndpoints(this.#members.map((m) => m.entry.endpoint));
      for (const m of fresh) m.healthy = this.#active.isHealthy(m.entry.endpoint.key) ?? true;
    }
    return true;
  }

  #publish(): void {
    this.#passive.sweep();
    // Membership may have shrunk under existing ejections: keep the ejected share within bounds by returning the
    // endpoints closest to the end of their ejection.
    const ejected = this.#passive.ejectedKeys();
    const allowed = this.#passive.maxEjected(this.#members.length);
    for (let i = 0; i < ejected.length - allowed; i++) this.#passive.release(ejected[i] as string);

    let usable: readonly PickerEndpoint[] = this.#members
      .filter((m) => m.healthy && !this.#passive.isEjected(m.entry.endpoint.key))
      .map((m) => m.entry);
    if (this.#locality !== undefined) usable = this.#locality(usable, this.#localZone);
    const deps = this.#localZone === undefined
      ? { random: this.#random }
      : { random: this.#random, localZone: this.#localZone };
    this.#picker = this.#members.length === 0
      ? new UnavailablePicker('no-endpoints')
      : usable.length === 0 ? new UnavailablePicker('no-healthy-endpoint') : this.#builder(usable, deps);
    this.#inRotation = new Set(this.#picker.endpoints.map((e) => e.key));
    this.#version++;
    this.#armTimer();
    for (const listener of [...this.#listeners]) listener(this.#picker, this.#version);
  }

  /** Keeps one timer at the earliest pending return from ejection. */
  #armTimer(): void {
    const at = this.#passive.nextReturnAt();
    this.#nextReturnAt = at;
    if (at === this.#timerAt || this.#closed) return;
    if (this.#timer !== null) this.#timers.clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = at;
    if (at === Infinity) return;
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = null;
      this.#timerAt = Infinity;
      this.refresh();
    }, at - this.#clock.now());
  }
}
