// Shared checks for the consistent-hashing pickers (ring-hash, maglev).
import assert from 'node:assert/strict';
import type { Picker, PickerDeps, PickerEndpoint } from '../../../src/upstream/picker.js';
import { keyOf, pickerEndpoints, seededRandom, sourceAddresses } from './helpers.js';

export type HashPickerCtor = new (endpoints: readonly PickerEndpoint[], deps: PickerDeps) => Picker;

export const KEYS = sourceAddresses(10_000);

export function mapping(picker: Picker, keys: readonly string[] = KEYS): string[] {
  return keys.map((k) => keyOf(picker.pick({ sourceAddress: k })));
}

export function shares(assigned: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of assigned) m.set(k, (m.get(k) ?? 0) + 1 / assigned.length);
  return m;
}

/**
 * Removes and adds one of N endpoints; checks the fraction of keys that move is about 1/N (remove) and 1/(N+1)
 * (add), within `tolerance` relative, and that keys move only to/from the endpoint concerned when `strict`.
 */
export function checkMovement(Ctor: HashPickerCtor, n: number, tolerance: number, strict: boolean): void {
  const { endpoints } = pickerEndpoints(Array<number>(n + 1).fill(1));
  const deps = { random: seededRandom(n) };
  const withAll = mapping(new Ctor(endpoints, deps));
  const changed = endpoints[n]?.endpoint.key as string;
  const without = mapping(new Ctor(endpoints.slice(0, n), deps));
  // Going from N+1 to N endpoints = removing one of N+1; going back = adding one to N.
  let moved = 0;
  for (let i = 0; i < KEYS.length; i++) {
    if (withAll[i] === without[i]) continue;
    moved++;
    if (strict) assert.equal(withAll[i], changed, 'only keys of the removed endpoint may move');
  }
  const fraction = moved / KEYS.length;
  const expected = 1 / (n + 1);
  assert.ok(Math.abs(fraction - expected) <= tolerance * expected, `N=${n + 1}: moved ${fraction}, expected ~${expected}`);
  // Remove one of N (a middle one this time) from the N-endpoint set.
  const base = endpoints.slice(0, n);
  const removed = base[Math.floor(n / 2)]?.endpoint.key as string;
  const before = mapping(new Ctor(base, deps));
  const after = mapping(new Ctor(base.filter((e) => e.endpoint.key !== removed), deps));
  let moved2 = 0;
  for (let i = 0; i < KEYS.length; i++) {
    if (before[i] === after[i]) continue;
    moved2++;
    if (strict) assert.equal(before[i], removed);
  }
  const f2 = moved2 / KEYS.length;
  assert.ok(Math.abs(f2 - 1 / n) <= tolerance / n, `N=${n}: moved ${f2} removing one, expected ~${1 / n}`);
}

export function checkBalanced(Ctor: HashPickerCtor, n: number, tolerance: number): void {
  const { endpoints } = pickerEndpoints(Array<number>(n).fill(1));
  const s = shares(mapping(new Ctor(endpoints, { random: seededRandom(1) })));
  assert.equal(s.size, n);
  for (const [k, v] of s) assert.ok(Math.abs(v * n - 1) <= tolerance, `N=${n} ${k}: share ${v}`);
}

export function checkWeighted(Ctor: HashPickerCtor, weights: readonly number[], tolerance: number): void {
  const { endpoints } = pickerEndpoints(weights);
  const total = weights.reduce((a, b) => a + b, 0);
  const s = shares(mapping(new Ctor(endpoints, { random: seededRandom(1) })));
  for (const e of endpoints) {
    const want = e.endpoint.weight / total;
    const got = s.get(e.endpoint.key) ?? 0;
    assert.ok(Math.abs(got - want) <= tolerance, `${e.endpoint.key} (w=${e.endpoint.weight}): ${got} vs ${want}`);
  }
}

/** Same key -> same endpoint, from repeated picks and from independently built pickers. */
export function checkSticky(Ctor: HashPickerCtor): void {
  const { endpoints } = pickerEndpoints([1, 2, 3, 1, 1]);
  const p1 = new Ctor(endpoints, { random: seededRandom(1) });
  const p2 = new Ctor(endpoints, { random: seededRandom(2) });
  const keys = KEYS.slice(0, 500);
  assert.deepEqual(mapping(p1, keys), mapping(p1, keys));
  assert.deepEqual(mapping(p1, keys), mapping(p2, keys));
  // hashKey takes precedence over the source address.
  const a = keyOf(p1.pick({ hashKey: 'session-42', sourceAddress: '172.16.0.1' }));
  for (const src of keys.slice(0, 50)) assert.equal(keyOf(p1.pick({ hashKey: 'session-42', sourceAddress: src })), a);
}

/** Excluding the endpoint a key maps to gives another endpoint, deterministically; all excluded -> none. */
export function checkExclude(Ctor: HashPickerCtor): void {
  const { endpoints } = pickerEndpoints([1, 1, 1, 1]);
  const p = new Ctor(endpoints, { random: seededRandom(1) });
  for (const k of KEYS.slice(0, 200)) {
    const first = keyOf(p.pick({ sourceAddress: k }));
    const ex = new Set([first]);
    const second = keyOf(p.pick({ sourceAddress: k, exclude: ex }));
    assert.notEqual(second, first);
    assert.equal(keyOf(p.pick({ sourceAddress: k, exclude: ex })), second);
  }
  assert.deepEqual(p.pick({ sourceAddress: 'x', exclude: new Set(endpoints.map((e) => e.endpoint.key)) }),
    { kind: 'none', reason: 'all-excluded' });
}

/** Without any hash input the pick is random (spread over all endpoints). */
export function checkNoKeyIsRandom(Ctor: HashPickerCtor): void {
  const { endpoints } = pickerEndpoints([1, 1, 1, 1]);
  const p = new Ctor(endpoints, { random: seededRandom(5) });
  const s = shares(Array.from({ length: 4000 }, () => keyOf(p.pick())));
  assert.equal(s.size, 4);
  for (const v of s.values()) assert.ok(Math.abs(v - 0.25) < 0.05);
}
