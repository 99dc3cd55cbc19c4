// What happened to one attempt of a request on one endpoint, as the L7 router reports it to the cluster (outlier
// detection, load-aware balancing) and to the retry policy. Local-origin connect failures are reported by the
// cluster's connect path itself.
/** The outcome of one attempt. */
export type AttemptOutcome =
  | { readonly kind: 'response'; readonly status: number; readonly grpcStatus?: number; readonly latencyMs: number }
  | { readonly kind: 'connect-failure' }
  /** bytesSent=false means the request provably never reached the upstream application: no byte was written, or
   *  an h2 stream was refused (REFUSED_STREAM) or lay above a GOAWAY's last-stream-id. Such failures are retried
   *  for every method; bytesSent=true only for idempotent ones. */
  | { readonly kind: 'reset'; readonly bytesSent: boolean }
  | { readonly kind: 'timeout' };
