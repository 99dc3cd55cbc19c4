// Paired A/B ratios for the quick benches. On this VM the CPU a request costs drifts by up to 2× over tens of seconds
// for every subject alike, HAProxy included, with the proxy pinned to its own core or not (docs/performance-notes.md,
// "Issue 15, seventh part"). The median of each subject's rounds then mixes that drift into the comparison. The two
// subjects of one round ran back to back, so the ratio of one to the other within a round cancels most of it. This
// reduces each round to that ratio and summarizes the rounds.
import { median } from './proc.js';

/** One round of one subject under one load. */
export interface RoundSample {
  readonly rps: number;
  /** Proxy CPU (user + system) in cores during the load. */
  readonly cores: number;
}

export interface RatioSummary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export interface PairedRatios {
  /** Rounds where both subjects served requests. */
  readonly rounds: number;
  /** The subject's rps ÷ the base's, round by round. */
  readonly rps: RatioSummary;
  /** The subject's CPU per request ÷ the base's, round by round (below 1: cheaper). */
  readonly cpuPerRequest: RatioSummary;
  /** Rounds in which the subject's CPU per request was below the base's. */
  readonly cheaperRounds: number;
}

function summarize(xs: readonly number[]): RatioSummary {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

/**
 * Round i of `subject` against round i of `base` (both lists in round order). Rounds where either served no request
 * are left out; undefined when none is left.
 */
export function pairedRatios(base: readonly RoundSample[], subject: readonly RoundSample[]): PairedRatios | undefined {
  const rps: number[] = [];
  const cpu: number[] = [];
  const n = Math.min(base.length, subject.length);
  for (let i = 0; i < n; i++) {
    const b = base[i] as RoundSample;
    const s = subject[i] as RoundSample;
    if (b.rps <= 0 || s.rps <= 0) continue;
    rps.push(s.rps / b.rps);
    if (b.cores > 0 && s.cores > 0) cpu.push((s.cores / s.rps) / (b.cores / b.rps));
  }
  if (rps.length === 0) return undefined;
  return {
    rounds: rps.length,
    rps: summarize(rps),
    cpuPerRequest: cpu.length === 0 ? { median: Number.NaN, min: Number.NaN, max: Number.NaN } : summarize(cpu),
    cheaperRounds: cpu.filter((r) => r < 1).length,
  };
}

/** "rps 1.04× (0.91–1.12), CPU/req 0.95× (0.88–1.03), cheaper in 5 of 6 rounds". */
export function formatPairedRatios(p: PairedRatios): string {
  const r = (s: RatioSummary): string => `${s.median.toFixed(2)}× (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
  const cpu = Number.isNaN(p.cpuPerRequest.median) ? 'CPU/req not measured' : `CPU/req ${r(p.cpuPerRequest)}, cheaper in ${p.cheaperRounds} of ${p.rounds} rounds`;
  return `rps ${r(p.rps)}, ${cpu}`;
}
