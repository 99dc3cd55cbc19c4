// Shared fakes for the upstream unit tests: a seeded RNG, a fake clock with timers, endpoint and service builders.
import type { Clock, TimerHandle, Timers } from '../../../src/upstream/clock.js';
import type { EndpointSpec, PassiveHealthSpec, ServiceSpec } from '../../../src/config/service-spec.js';
import type { PickerEndpoint, PickResult } from '../../../src/upstream/picker.js';
import { toUpstreamEndpoint } from '../../../src/upstream/picker.js';

export { seededRandom } from '../helpers/seeded-random.js';

interface FakeTimer { at: number; seq: number; fn: () => void; cancelled: boolean }

/** A clock that only moves when told, and timers that fire as it moves. */
export class FakeTime implements Clock, Timers {
  #now = 1_000;
  #seq = 0;
  #timers: FakeTimer[] = [];

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t: FakeTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(t);
    return t as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    (handle as unknown as FakeTimer).cancelled = true;
  }

  /** Timers scheduled and not yet fired or cancelled. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /** Moves the clock forward, firing due timers in order (bounded). */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      const due = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.#timers.splice(this.#timers.indexOf(due), 1);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = end;
  }
}

/** Lets pending promise callbacks run (bounded number of turns). */
export async function flushMicrotasks(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

export function spec(i: number, weight = 1, zone?: string): EndpointSpec {
  const s = { address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`, port: 8080, weight };
  return zone === undefined ? s : { ...s, zone };
}

export function specs(weights: readonly number[]): EndpointSpec[] {
  return weights.map((w, i) => spec(i, w));
}

/** A load the test controls: in-flight count and a fixed peak-EWMA cost. */
export interface TestLoad {
  active: number;
  rttMs: number;
  cost(): number;
}

function testLoad(): TestLoad {
  return { active: 0, rttMs: 30, cost() { return this.rttMs * (this.active + 1); } };
}

/** Picker inputs with mutable load counters the test controls. */
export function pickerEndpoints(weights: readonly number[]): { endpoints: PickerEndpoint[]; loads: TestLoad[] } {
  const loads = weights.map(() => testLoad());
  const endpoints = specs(weights)
    .map((s, i) => ({ endpoint: toUpstreamEndpoint(s), load: loads[i] as TestLoad, weight: s.weight }))
    .sort((a, b) => (a.endpoint.key < b.endpoint.key ? -1 : 1));
  // Re-align loads with the sorted order.
  return { endpoints, loads: endpoints.map((e) => e.load as TestLoad) };
}

export function keyOf(r: PickResult): string {
  if (r.kind !== 'endpoint') throw new Error(`expected an endpoint, got none (${r.reason})`);
  return r.endpoint.key;
}

export function countPicks(pick: () => PickResult, n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const k = keyOf(pick());
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

/** 10.x.y.z source addresses, deterministic. */
export function sourceAddresses(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`172.${16 + ((i >> 16) & 15)}.${(i >> 8) & 255}.${i & 255}`);
  return out;
}

export interface ServiceOptions {
  readonly name?: string;
  readonly balancer?: ServiceSpec['balancer'];
  /** A static list, or any endpoint source. Default: three static endpoints of weight 1 (spec(0..2)). */
  readonly endpoints?: readonly EndpointSpec[] | ServiceSpec['endpoints'];
  readonly passive?: Partial<PassiveHealthSpec>;
  readonly activeHealth?: ServiceSpec['activeHealth'];
  readonly connectTimeoutMs?: number;
}

/** A [service NAME] as the registry parser produces it, with its defaults unless given. */
export function serviceSpec(o: ServiceOptions = {}): ServiceSpec {
  const endpoints = o.endpoints ?? specs([1, 1, 1]);
  return {
    name: o.name ?? 'web',
    source: 'test.ini:1',
    addresses: [],
    hostnames: [],
    protocol: 'http',
    balancer: o.balancer ?? 'round-robin',
    endpoints: Array.isArray(endpoints) ? { kind: 'static', endpoints } : (endpoints as ServiceSpec['endpoints']),
    connectTimeoutMs: o.connectTimeoutMs,
    connectAttempts: 3,
    passiveHealth: { ejectAfterFailures: 5, ejectBaseTimeMs: 30_000, ejectMaxTimeMs: 300_000, maxEjectedPercent: 50, ...o.passive },
    activeHealth: o.activeHealth ?? { kind: 'none' },
    tls: undefined,
    mtls: undefined,
  };
}
