// The tracing filter ([proxy] tracing = on): starts the sidecar's span of each request and rewrites the request's
// trace headers so that the upstream sees that span as its parent (the rule: src/l7/trace-context.ts). The
// span's context is kept on the RequestContext (req.trace): the telemetry's request observer ends the span when the
// request ends (one RequestObservation, the same that feeds metrics and the access log, whose trace_id it also
// gives) and hands it to the exporter when it is sampled. With tracing off the filter is not in the chain and
// trace headers pass through untouched.
import { formatsOf, incomingTrace, propagate, startSpan, type IdSource } from '../trace-context.js';
import type { HttpFilter } from '../request-types.js';

export interface TracingFilterOptions {
  /** tracing_sample_rate: for requests that bring no sampling decision. */
  readonly sampleRate: number;
  readonly random: () => number;
  readonly ids: IdSource;
}

export function tracingFilter(o: TracingFilterOptions): HttpFilter {
  const { sampleRate, random, ids } = o;
  return (next) => (req, res) => {
    const raw = req.downstream.headers;
    const formats = formatsOf(raw);
    const ctx = startSpan(incomingTrace(raw, formats), sampleRate, random, ids);
    propagate(raw, ctx, formats);
    req.trace = ctx;
    next(req, res);
  };
}
