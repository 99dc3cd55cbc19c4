// Several rounds of one scenario × mode, reduced to one cell: the median of each field (rps, p50, p99, Gbit/s, CPU
// per process), errors and redirected connections summed, every round kept for paired comparisons (the modes of a
// round ran back to back, so a ratio within a round sees the same background load). Pure.
import { median } from './proc.js';
import type { Cell, Measurement } from './types.js';

function med(xs: readonly (number | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined);
  return v.length === 0 ? undefined : median(v);
}

export function combineRounds(rounds: readonly Cell[]): Cell {
  const first = rounds[0];
  if (first === undefined) throw new Error('combineRounds: no rounds');
  if (rounds.length === 1) return first;
  const ok = rounds.filter((c) => c.measurement !== undefined);
  if (ok.length === 0) return { ...first, failure: `every round failed; first: ${first.failure ?? 'unknown'}`, rounds };
  const ms = ok.map((c) => c.measurement as Measurement);
  const notes = rounds.map((c, k) => (c.measurement === undefined ? `round ${k + 1} failed: ${c.failure ?? 'unknown'}`
    : c.measurement.note === undefined || c.measurement.note === '' ? undefined : `round ${k + 1}: ${c.measurement.note}`))
    .filter((n): n is string => n !== undefined);
  const rps = med(ms.map((m) => m.rps));
  const p50Ms = med(ms.map((m) => m.p50Ms));
  const p99Ms = med(ms.map((m) => m.p99Ms));
  const gbps = med(ms.map((m) => m.gbps));
  const measurement: Measurement = {
    ...(rps === undefined ? {} : { rps }),
    ...(p50Ms === undefined ? {} : { p50Ms }),
    ...(p99Ms === undefined ? {} : { p99Ms }),
    ...(gbps === undefined ? {} : { gbps }),
    errors: ms.reduce((a, m) => a + m.errors, 0),
    note: [`median of ${ok.length} rounds${ok.length < rounds.length ? ` (of ${rounds.length})` : ''}`, ...notes].join('; '),
  };
  const redirected = ok.every((c) => c.redirected !== undefined) ? ok.reduce((a, c) => a + (c.redirected ?? 0), 0) : undefined;
  const proxyCores = med(ok.map((c) => c.proxyCores));
  const roles = [...new Set(ok.flatMap((c) => Object.keys(c.coresByRole ?? {})))];
  const coresByRole = roles.length === 0 ? undefined
    : Object.fromEntries(roles.map((r) => [r, med(ok.map((c) => c.coresByRole?.[r])) ?? 0]));
  return {
    scenario: first.scenario, mode: first.mode, measurement,
    ...(redirected === undefined ? {} : { redirected }),
    ...(proxyCores === undefined ? {} : { proxyCores }),
    ...(coresByRole === undefined ? {} : { coresByRole }),
    rounds,
  };
}
