// remora's own metrics (remora_*), made at scrape time from the counters the proxy already keeps for GET /stats
// (src/admin/stats-json.ts ProxyStatsJson: listeners, detection, errors, clusters with their breakers and outlier
// detection, the HTTP layer's counters, config reloads, mesh mTLS / identity / authorization) and from the telemetry's
// own counters. Nothing here runs per request: the hot path keeps incrementing the plain counters it had.
// Label values are bounded by what they come from: error codes, detection outcomes and counter names are fixed sets,
// services, endpoints and policy names come from the configuration (or DNS), listener names are two.
import type { ProxyStatsJson } from '../admin/stats-json.js';
import { labelPairs, type ExpositionSource, type ExpositionWriter } from './exposition.js';

type Row = readonly [labels: string, value: number];

function family(w: ExpositionWriter, name: string, type: 'counter' | 'gauge', help: string, rows: readonly Row[]): void {
  if (rows.length === 0) return;
  w.family(name, type, help);
  for (const [labels, value] of rows) w.sample(name, labels, value);
}

const l = (names: readonly string[], ...values: string[]): string => labelPairs(names, values);

/** The telemetry's own counters. */
export interface TelemetryCounters {
  readonly series: number;
  readonly maxSeries: number;
  readonly seriesOverflow: number;
  readonly seriesEvicted: number;
  readonly accessLog: { readonly written: number; readonly sampledOut: number; readonly dropped: number } | undefined;
  /** [service, endpoint, HTTP requests, TCP connections]. */
  readonly picks: Iterable<readonly [string, string, number, number]>;
  /** Spans exported and dropped by reason (undefined: tracing was never on). */
  readonly spans?: { readonly exported: number; readonly dropped: Readonly<Record<'queue_full' | 'export_failed', number>> } | undefined;
}

/** Every remora_* family name with its type (docs/observability.md lists them with their labels). */
export const REMORA_FAMILIES: readonly string[] = [
  'remora_build_info', 'remora_connections_accepted_total', 'remora_connections_active', 'remora_bytes_total',
  'remora_idle_timeouts_total', 'remora_errors_total', 'remora_error_causes_total', 'remora_detections_total',
  'remora_upstream_connect_failures_total', 'remora_endpoint_ejections_total', 'remora_endpoints_ejected',
  'remora_endpoint_active', 'remora_endpoint_in_rotation', 'remora_endpoint_picks_total', 'remora_breaker_rejections_total',
  'remora_http_retries_total', 'remora_http_retries_refused_total', 'remora_http_local_replies_total',
  'remora_http_responses_total', 'remora_http_events_total', 'remora_config_reloads_total', 'remora_config_version',
  'remora_mtls_handshakes_total', 'remora_mtls_refused_total', 'remora_mtls_plaintext_accepted_total',
  'remora_identity_events_total', 'remora_authz_decisions_total', 'remora_authz_policy_decisions_total',
  'remora_metrics_series', 'remora_metrics_series_limit', 'remora_metrics_series_overflow_total',
  'remora_metrics_series_evicted_total', 'remora_access_log_lines_total', 'remora_ready', 'remora_redirect_probes_total',
  'remora_redirect_probe_up',
];

function renderStats(w: ExpositionWriter, s: ProxyStatsJson): void {
  const listeners = Object.entries(s.listeners);
  family(w, 'remora_connections_accepted_total', 'counter', 'Connections accepted by a capture listener',
    listeners.map(([n, c]) => [l(['listener'], n), c.connections.accepted]));
  family(w, 'remora_connections_active', 'gauge', 'Connections open on a capture listener',
    listeners.map(([n, c]) => [l(['listener'], n), c.connections.active]));
  family(w, 'remora_bytes_total', 'counter', 'Bytes forwarded by a capture listener, by direction', listeners.flatMap(([n, c]) => [
    [l(['listener', 'direction'], n, 'downstream_to_upstream'), c.bytes.downstreamToUpstream] as Row,
    [l(['listener', 'direction'], n, 'upstream_to_downstream'), c.bytes.upstreamToDownstream] as Row,
  ]));
  family(w, 'remora_idle_timeouts_total', 'counter', 'Connections closed by the idle timeout',
    listeners.map(([n, c]) => [l(['listener'], n), c.idleTimeouts]));
  family(w, 'remora_errors_total', 'counter', 'Failed connections and requests by remora error code (docs/errors.md)',
    Object.entries(s.errors).map(([k, v]) => [l(['code'], k), v]));
  family(w, 'remora_error_causes_total', 'counter', 'The system error codes behind counted failures',
    Object.entries(s.errorCauses).map(([k, v]) => [l(['cause'], k), v]));
  family(w, 'remora_detections_total', 'counter', 'Protocol detection outcomes (tls, http1, http2, opaque:<reason>, declared:<protocol>, mtls)',
    Object.entries(s.sniff).map(([k, v]) => [l(['outcome'], k), v]));

  const services = Object.entries(s.services ?? {});
  family(w, 'remora_upstream_connect_failures_total', 'counter', 'Connect attempts to a service\'s endpoints that failed',
    services.map(([n, c]) => [l(['service'], n), c.connectFailures]));
  family(w, 'remora_endpoint_ejections_total', 'counter', 'Endpoint ejections by outlier detection',
    services.map(([n, c]) => [l(['service'], n), c.ejections]));
  family(w, 'remora_endpoints_ejected', 'gauge', 'Endpoints of a service ejected now',
    services.map(([n, c]) => [l(['service'], n), c.outlier?.ejected ?? c.endpoints.filter((e) => e.ejected).length]));
  family(w, 'remora_endpoint_active', 'gauge', 'Connections and request attempts in flight to an endpoint (what balancers pick by)',
    services.flatMap(([n, c]) => c.endpoints.map((e): Row => [l(['service', 'endpoint'], n, e.endpoint), e.active])));
  family(w, 'remora_endpoint_in_rotation', 'gauge', '1 when the endpoint can be picked (a member, healthy, not ejected)',
    services.flatMap(([n, c]) => c.endpoints.map((e): Row => [l(['service', 'endpoint'], n, e.endpoint), e.inRotation ? 1 : 0])));
  family(w, 'remora_breaker_rejections_total', 'counter', 'Admissions refused by a service\'s circuit breaker, by resource (retry_budget: the retry budget)',
    services.flatMap(([n, c]) => [
      ...Object.entries(c.breaker?.overflow ?? {}).map(([r, v]): Row => [l(['service', 'resource'], n, r), v]),
      ...(c.breaker === undefined ? [] : [[l(['service', 'resource'], n, 'retry_budget'), c.breaker.retryBudgetOverflow] as Row]),
    ]));

  const retries: Row[] = [];
  const refused: Row[] = [];
  const replies: Row[] = [];
  const responses: Row[] = [];
  const events: Row[] = [];
  for (const listener of ['outbound', 'inbound'] as const) {
    for (const [name, v] of Object.entries(s.http?.[listener] ?? {})) {
      if (name === 'http.retries') retries.push([l(['listener', 'reason'], listener, 'policy'), v]);
      else if (name === 'http.retries.stale_connection' || name === 'http.retries.refused_stream') retries.push([l(['listener', 'reason'], listener, name.slice(13)), v]);
      else if (name === 'http.retries.budget_exhausted' || name === 'http.retries.breaker_denied') refused.push([l(['listener', 'reason'], listener, name.slice(13)), v]);
      else if (name.startsWith('http.local_replies.')) replies.push([l(['listener', 'reason'], listener, name.slice(19)), v]);
      else if (name.startsWith('http.responses.')) responses.push([l(['listener', 'class'], listener, name.slice(15)), v]);
      else events.push([l(['listener', 'event'], listener, name), v]);
    }
  }
  family(w, 'remora_http_retries_total', 'counter', 'Request retries: policy retries, and the transparent retry of a stale connection or refused stream', retries);
  family(w, 'remora_http_retries_refused_total', 'counter', 'Retries the policy wanted and the retry budget or breaker refused', refused);
  family(w, 'remora_http_local_replies_total', 'counter', 'Responses the proxy generated itself, by reason (x-remora-error)', replies);
  family(w, 'remora_http_responses_total', 'counter', 'Responses started downstream, by status class', responses);
  family(w, 'remora_http_events_total', 'counter', 'The HTTP layer\'s other counters (docs/l7-engines.md), by name', events);

  family(w, 'remora_config_reloads_total', 'counter', 'Configuration reloads by result (ok, rejected, unchanged)',
    Object.entries(s.config.reloads).map(([k, v]) => [l(['result'], k), v]));
  family(w, 'remora_config_version', 'gauge', 'The version of the configuration snapshot in force', [['', s.config.version]]);

  const handshakes: Row[] = [];
  for (const direction of ['outbound', 'inbound'] as const) {
    for (const [k, v] of Object.entries(s.mtls[direction])) {
      if (k === 'handshakes') handshakes.push([l(['direction', 'result', 'reason'], direction, 'ok', ''), v]);
      else if (k.startsWith('failures.')) handshakes.push([l(['direction', 'result', 'reason'], direction, 'failed', k.slice(9)), v]);
    }
  }
  family(w, 'remora_mtls_handshakes_total', 'counter', 'Mesh mTLS handshakes (TLS handshakes between sidecars), by result and failure reason', handshakes);
  family(w, 'remora_mtls_refused_total', 'counter', 'Inbound connections refused by strict mTLS (plaintext, foreign-tls)',
    Object.entries(s.mtls.inbound).filter(([k]) => k.startsWith('refused.')).map(([k, v]) => [l(['reason'], k.slice(8)), v]));
  family(w, 'remora_mtls_plaintext_accepted_total', 'counter', 'Inbound plaintext connections accepted by permissive mTLS',
    Object.entries(s.mtls.inbound).filter(([k]) => k === 'plaintext').map(([, v]) => ['', v]));
  family(w, 'remora_identity_events_total', 'counter', 'Workload identity events (rotations, rejected, expiring, expired)',
    Object.entries(s.identity).map(([k, v]) => [l(['event'], k), v]));
  const decisions: Row[] = [];
  const policies: Row[] = [];
  for (const [k, v] of Object.entries(s.authz)) {
    const dot = k.lastIndexOf('.');
    if (k.startsWith('policy.')) policies.push([l(['policy', 'decision'], k.slice(7, dot), k.slice(dot + 1)), v]);
    else decisions.push([l(['scope', 'decision'], k.slice(0, dot), k.slice(dot + 1)), v]);
  }
  family(w, 'remora_authz_decisions_total', 'counter', 'Authorization decisions (allowed, denied, audited), by scope', decisions);
  family(w, 'remora_authz_policy_decisions_total', 'counter', 'Authorization decisions by the policy that decided', policies);

  const r = s.readiness;
  if (r !== undefined) {
    family(w, 'remora_ready', 'gauge', 'Whether /ready answers 200 (listeners up, config loaded, redirect probes passing, not draining)', [['', r.ready ? 1 : 0]]);
    const probes = Object.entries(r.probes);
    family(w, 'remora_redirect_probes_total', 'counter', 'Redirect self-probe rounds through the pod\'s nat rules, by probe and result', probes.flatMap(([n, p]) => [
      [l(['probe', 'result'], n, 'passed'), p.passed] as Row, [l(['probe', 'result'], n, 'failed'), p.failed] as Row,
    ]));
    family(w, 'remora_redirect_probe_up', 'gauge', 'Whether the last round of a redirect self-probe passed (1) or not (0)',
      probes.map(([n, p]) => [l(['probe'], n), p.state === 'ok' ? 1 : 0]));
  }
}

function renderTelemetry(w: ExpositionWriter, t: TelemetryCounters): void {
  const picks: Row[] = [];
  for (const [service, endpoint, http, tcp] of t.picks) {
    if (http > 0) picks.push([l(['service', 'endpoint', 'layer'], service, endpoint, 'http'), http]);
    if (tcp > 0) picks.push([l(['service', 'endpoint', 'layer'], service, endpoint, 'tcp'), tcp]);
  }
  family(w, 'remora_endpoint_picks_total', 'counter', 'Requests (by the endpoint of their last attempt) and opaque TCP connections sent to each endpoint of a service', picks);
  family(w, 'remora_metrics_series', 'gauge', 'Istio label sets held (each feeds every istio_* family of its kind)', [['', t.series]]);
  family(w, 'remora_metrics_series_limit', 'gauge', 'The cap on Istio label sets (metrics_max_series)', [['', t.maxSeries]]);
  family(w, 'remora_metrics_series_overflow_total', 'counter', 'Observations left out of the istio_* metrics because the label-set cap was reached', [['', t.seriesOverflow]]);
  family(w, 'remora_metrics_series_evicted_total', 'counter', 'Istio label sets evicted after metrics_evict_after without an update', [['', t.seriesEvicted]]);
  const a = t.accessLog;
  if (a !== undefined) {
    family(w, 'remora_access_log_lines_total', 'counter', 'Access log lines by result (written, sampled_out, dropped: buffer full or write failed)', [
      [l(['result'], 'written'), a.written], [l(['result'], 'sampled_out'), a.sampledOut], [l(['result'], 'dropped'), a.dropped],
    ]);
  }
  const sp = t.spans;
  if (sp !== undefined) {
    family(w, 'remora_tracing_spans_exported_total', 'counter', 'Spans the collector accepted (OTLP/HTTP 2xx)', [['', sp.exported]]);
    family(w, 'remora_tracing_spans_dropped_total', 'counter', 'Spans dropped: queue_full (tracing_max_queue reached), export_failed (the collector refused, failed or did not answer)', [
      [l(['reason'], 'queue_full'), sp.dropped.queue_full], [l(['reason'], 'export_failed'), sp.dropped.export_failed],
    ]);
  }
}

/** The remora_* part of the exposition. */
export function remoraSource(version: string, stats: () => ProxyStatsJson, counters: () => TelemetryCounters): ExpositionSource {
  return function* (w) {
    family(w, 'remora_build_info', 'gauge', 'The remora build (always 1)', [[l(['version'], version), 1]]);
    renderStats(w, stats());
    yield;
    renderTelemetry(w, counters());
  };
}
