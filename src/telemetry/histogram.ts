// A fixed-bucket histogram as Prometheus exposes it (`_bucket{le=...}` cumulative, `_sum`, `_count`), stored as
// per-bucket counts in a Float64Array (non-cumulative: one increment per observation; the cumulative counts are made
// at scrape time). The buckets are Envoy's defaults, which Istio's standard histograms use (Istio sets none of its
// own): the duration in milliseconds and, with the same numbers, the request and response sizes in bytes.

/** Envoy's default histogram buckets (source/common/stats/histogram_impl.cc defaultBuckets()); +Inf is implied. */
export const ENVOY_DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
]);

const BOUNDS = Float64Array.from(ENVOY_DEFAULT_BUCKETS);

/** The index of the bucket `v` falls in: the first bound >= v, or bounds.length for +Inf. */
export function bucketIndex(bounds: Float64Array, v: number): number {
  // Linear: most observations are small and stop within the first few bounds.
  let i = 0;
  const n = bounds.length;
  while (i < n && v > (bounds[i] as number)) i++;
  return i;
}

export class Histogram {
  readonly bounds: Float64Array;
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; counts[bounds.length]: above the last bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: Float64Array = BOUNDS) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const c = this.counts;
    const i = bucketIndex(this.bounds, v);
    c[i] = (c[i] as number) + 1;
    this.sum += v;
    this.count++;
  }
}
