// How a sidecar's periodic reports of cumulative counters follow each other (golden metrics, metrics-aggregator.ts;
// status, status-aggregator.ts): one rule for both.
//   * `epoch` is random per sidecar process, `seq` starts at 1 and grows once a report is accepted.
//   * The first report seen from a sidecar with seq > 1 (the control plane restarted, or forgot the sidecar) is only a
//     baseline: what it counted before is not new traffic. With seq = 1 it is the process's first: counted from zero.
//   * Another epoch: the sidecar restarted, its counters started over (counted from zero).
//   * A seq not above the last accepted one is a replay: ignored.
//   * Within an epoch, a counter lower than in the previous report was reset (a series evicted and made again, changed
//     labels): it counts from zero, as Prometheus's rate() does.

export interface SequenceState {
  readonly epoch: string;
  readonly seq: number;
}

/** first: counted from zero; baseline: remembered, not counted; restart: a new process, from zero; next; duplicate. */
export type SequenceStep = 'first' | 'baseline' | 'restart' | 'next' | 'duplicate';

export function sequenceStep(prev: SequenceState | undefined, report: SequenceState): SequenceStep {
  if (prev === undefined) return report.seq > 1 ? 'baseline' : 'first';
  if (prev.epoch !== report.epoch) return 'restart';
  if (report.seq <= prev.seq) return 'duplicate';
  return 'next';
}

/** What was counted between two cumulative readings of one counter (from zero when it went down: a reset). */
export function counterDelta(prev: number | undefined, cur: number): number {
  return prev === undefined || cur < prev ? cur : cur - prev;
}

/** counterDelta for counters read together (one series): all from zero when any went down. */
export function counterDeltas(prev: readonly number[] | undefined, cur: readonly number[]): number[] {
  if (prev === undefined || cur.some((v, i) => v < (prev[i] ?? 0))) return [...cur];
  return cur.map((v, i) => v - (prev[i] ?? 0));
}
