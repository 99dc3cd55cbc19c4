// Options of `remora proxy` (section [proxy] of the config file).
import type { OptionSpec } from './option-set.js';
import * as v from './value-parsers.js';
import { MTLS_MODES, mtlsPortModes, type MtlsMode, type MtlsPortMode } from './mtls-settings.js';
import type { HostPort } from '../core/addr.js';
import type { LogLevel } from '../core/log.js';
import { LOG_LEVELS } from '../core/log.js';
import { parseSpiffeId } from '../core/spiffe.js';
import { DEFAULT_INBOUND_PORT, DEFAULT_OUTBOUND_PORT, DEFAULT_PROXY_UID } from './init-options.js';

const spec = <T>(s: OptionSpec<T>): OptionSpec<T> => s;

/** access_log: where the access log goes (off: nowhere). */
export type AccessLogSetting =
  | { readonly kind: 'off' } | { readonly kind: 'stdout' } | { readonly kind: 'stderr' } | { readonly kind: 'file'; readonly path: string };

const accessLog: v.ValueParser<AccessLogSetting> = (text) => {
  const t = text.trim();
  if (t === 'off' || t === 'stdout' || t === 'stderr') return { ok: true, value: { kind: t } };
  if (t === '' || t.includes('\0') || !t.startsWith('/')) {
    return { ok: false, expected: 'off, stdout, stderr or the absolute path of a file to append to' };
  }
  return { ok: true, value: { kind: 'file', path: t } };
};

/** tracing_collector: "" or an http:// URL with a host (OTLP/HTTP JSON, e.g. http://otel-collector:4318/v1/traces). */
const collectorUrl: v.ValueParser<string> = (text) => {
  const t = text.trim();
  if (t === '') return { ok: true, value: '' };
  let u: URL | undefined;
  try {
    u = new URL(t);
  } catch {
    u = undefined;
  }
  if (u === undefined || u.protocol !== 'http:' || u.hostname === '' || u.username !== '' || u.hash !== '') {
    return { ok: false, expected: 'an http:// URL of an OTLP/HTTP JSON endpoint, e.g. http://127.0.0.1:4318/v1/traces, or "" for none' };
  }
  // No path (http://collector:4318): OTLP/HTTP's traces path, as OpenTelemetry SDKs add to a bare endpoint.
  if (u.pathname === '/' && u.search === '') u.pathname = '/v1/traces';
  return { ok: true, value: u.href };
};

/** tcp_forwarder: native (native/src/tcp_forwarder.cc, src/l4/native-forwarder.ts) or node (src/l4/tcp-forward.ts). */
export const TCP_FORWARDERS = ['native', 'node'] as const;
export type TcpForwarderKind = (typeof TCP_FORWARDERS)[number];

/** http2_codec: remora (src/l7/h2/: our own framing, HPACK and flow control) or node (node:http2). */
export const HTTP2_CODECS = ['remora', 'node'] as const;
export type Http2CodecKind = (typeof HTTP2_CODECS)[number];

/**
 * The most worker processes `workers` may ask for. A fixed bound, not one relative to the CPUs: the same config must
 * validate the same on every machine (the control plane validates the state it pushes with this validator), and
 * each worker is a whole Node.js process (~70 MB idle), so 64 is already ~4.5 GB.
 */
export const MAX_WORKERS = 64;

/**
 * workers: 1-64 proxy processes, or "auto" / 0 (0: one per CPU, resolved at start: src/cli/proxy-command.ts). Plain
 * decimal digits only: no sign ("-0", "+2"), fraction, exponent or hex.
 */
const workerCount: v.ValueParser<number> = (text) => {
  const t = text.trim();
  if (t === 'auto') return { ok: true, value: 0 };
  const n = /^\d{1,3}$/.test(t) ? Number(t) : Number.NaN;
  return n >= 0 && n <= MAX_WORKERS ? { ok: true, value: n } : { ok: false, expected: `an integer 1-${MAX_WORKERS}, or "auto" (or 0) for one per CPU` };
};

/** control: "" or https://HOST[:PORT] (all control traffic is TLS; no path, no credentials in the URL). */
export const controlUrl: v.ValueParser<string> = (text) => {
  const t = text.trim();
  if (t === '') return { ok: true, value: '' };
  const expected = 'https://HOST:PORT of the control plane (e.g. https://10.0.0.2:15012; TLS only, no path), or "" for none';
  let u: URL | undefined;
  try {
    u = new URL(t);
  } catch {
    u = undefined;
  }
  if (u === undefined || u.protocol !== 'https:' || u.hostname === '' || u.username !== '' || u.password !== ''
    || u.pathname !== '/' || u.search !== '' || u.hash !== '' || !/^https:\/\/[^/\s]+\/?$/i.test(t)) {
    return { ok: false, expected };
  }
  return { ok: true, value: `https://${u.host}` };
};

/** control_token: "" or one bearer token (printable, no spaces). */
const bearerToken: v.ValueParser<string> = (text) => {
  const t = text.trim();
  return /^[\x21-\x7e]*$/.test(t) ? { ok: true, value: t } : { ok: false, expected: 'a bearer token (printable characters, no spaces), or "" for none' };
};

/** spiffe_id: "" or a workload SPIFFE ID. */
const optionalSpiffeId: v.ValueParser<string> = (text) => {
  const t = text.trim();
  if (t === '') return { ok: true, value: '' };
  const id = parseSpiffeId(t, true);
  return id.ok ? { ok: true, value: id.value.id } : { ok: false, expected: id.expected };
};

const optionalHostPort: v.ValueParser<HostPort | undefined> = (text) => (text.trim() === '' ? { ok: true, value: undefined } : v.hostPort(text));

export const proxyOptionSpecs = {
  outboundPort: spec({
    key: 'outbound_port', flag: 'outbound-port', env: 'REMORA_OUTBOUND_PORT', valueName: 'PORT',
    help: 'listener for redirected outbound connections',
    defaultValue: DEFAULT_OUTBOUND_PORT, defaultText: String(DEFAULT_OUTBOUND_PORT), parse: v.port,
  }),
  inboundPort: spec({
    key: 'inbound_port', flag: 'inbound-port', env: 'REMORA_INBOUND_PORT', valueName: 'PORT',
    help: 'listener for redirected inbound connections',
    defaultValue: DEFAULT_INBOUND_PORT, defaultText: String(DEFAULT_INBOUND_PORT), parse: v.port,
  }),
  listenAddress: spec({
    key: 'listen_address', flag: 'listen-address', env: 'REMORA_LISTEN_ADDRESS', valueName: 'IP',
    help: 'address of both capture listeners ("::" accepts IPv4 and IPv6; falls back to 0.0.0.0 without IPv6)',
    defaultValue: '::', defaultText: '::', parse: v.ipAddress,
  }),
  uid: spec({
    key: 'uid', flag: 'uid', env: 'REMORA_PROXY_UID', valueName: 'UID',
    help: 'uid the proxy runs as; started as root it switches to it after binding; must be excluded by the rules',
    defaultValue: DEFAULT_PROXY_UID, defaultText: String(DEFAULT_PROXY_UID), parse: v.id,
  }),
  gid: spec({
    key: 'gid', flag: 'gid', env: 'REMORA_PROXY_GID', valueName: 'GID',
    help: 'gid the proxy runs as (see uid)',
    defaultValue: DEFAULT_PROXY_UID, defaultText: String(DEFAULT_PROXY_UID), parse: v.id,
  }),
  adminAddress: spec({
    key: 'admin_address', flag: 'admin-address', env: 'REMORA_ADMIN_ADDRESS', valueName: 'HOST:PORT',
    help: 'admin listener (/ready, /stats, /config_dump); keep it on loopback',
    defaultValue: { host: '127.0.0.1', port: 15000 }, defaultText: '127.0.0.1:15000', parse: v.hostPort,
  }),
  inboundDelivery: spec({
    key: 'inbound_delivery', flag: 'inbound-delivery', env: 'REMORA_INBOUND_DELIVERY', valueName: 'MODE',
    help: 'where inbound connections go: original-dst (the pod address the client dialed) or loopback (127.0.0.1/::1)',
    defaultValue: 'original-dst' as 'original-dst' | 'loopback', defaultText: 'original-dst',
    parse: v.oneOf(['original-dst', 'loopback']),
  }),
  connectTimeout: spec({
    key: 'connect_timeout', flag: 'connect-timeout', env: 'REMORA_CONNECT_TIMEOUT', valueName: 'DURATION',
    help: 'upstream connect timeout', defaultValue: 10_000, defaultText: '10s', parse: v.duration(1, 600_000),
  }),
  idleTimeout: spec({
    key: 'idle_timeout', flag: 'idle-timeout', env: 'REMORA_IDLE_TIMEOUT', valueName: 'DURATION',
    help: 'close a forwarded connection after this long with no bytes either way (0 = never)',
    defaultValue: 3_600_000, defaultText: '1h', parse: v.duration(0, 7 * 24 * 3_600_000),
  }),
  detectTimeout: spec({
    key: 'detect_timeout', flag: 'detect-timeout', env: 'REMORA_DETECT_TIMEOUT', valueName: 'DURATION',
    help: 'protocol detection deadline: a connection still undecided then (client and server silent) continues as opaque TCP, never closed',
    defaultValue: 5_000, defaultText: '5s', parse: v.duration(1, 3_600_000),
  }),
  httpEngine: spec({
    key: 'http_engine', flag: 'http-engine', env: 'REMORA_HTTP_ENGINE', valueName: 'BOOL',
    help: 'proxy connections detected or declared as HTTP/1.1 or h2c per request (routes, balancing, retries); off = forward them as opaque TCP',
    defaultValue: true, defaultText: 'on', parse: v.boolean,
  }),
  tcpForwarder: spec({
    key: 'tcp_forwarder', flag: 'tcp-forwarder', env: 'REMORA_TCP_FORWARDER', valueName: 'KIND',
    help: 'who moves the bytes of opaque TCP once both sides are connected: native (a forwarding thread in the native addon; TLS and mesh mTLS forwards stay in Node) or node (Node streams); native with http_engine = off also accepts in that thread (docs/proxy.md#the-native-accept)',
    defaultValue: 'native' as TcpForwarderKind, defaultText: 'native', parse: v.oneOf(TCP_FORWARDERS),
  }),
  http2Codec: spec({
    key: 'http2_codec', flag: 'http2-codec', env: 'REMORA_HTTP2_CODEC', valueName: 'KIND',
    help: 'the HTTP engine\'s HTTP/2 on both sides (h2c and gRPC clients, HTTP/2 upstreams): remora (its own framing, HPACK and flow control) or node (node:http2)',
    defaultValue: 'remora' as Http2CodecKind, defaultText: 'remora', parse: v.oneOf(HTTP2_CODECS),
  }),
  drainTimeout: spec({
    key: 'drain_timeout', flag: 'drain-timeout', env: 'REMORA_DRAIN_TIMEOUT', valueName: 'DURATION',
    help: 'on SIGTERM (or POST /quitquitquit), how long open connections may finish before they are reset and the proxy exits',
    defaultValue: 15_000, defaultText: '15s', parse: v.duration(0, 3_600_000),
  }),
  drainGrace: spec({
    key: 'drain_grace', flag: 'drain-grace', env: 'REMORA_DRAIN_GRACE', valueName: 'DURATION',
    help: 'once a drain begins (SIGTERM, POST /drain), how long the inbound listener keeps accepting, every HTTP answer saying Connection: close or GOAWAY, before it closes and idle connections are closed (cut short by drain_timeout)',
    defaultValue: 5_000, defaultText: '5s', parse: v.duration(0, 3_600_000),
  }),
  readinessProbeInterval: spec({
    key: 'readiness_probe_interval', flag: 'readiness-probe-interval', env: 'REMORA_READINESS_PROBE_INTERVAL', valueName: 'DURATION',
    help: 'how often /ready proves that the iptables rules still redirect to this proxy (connections sent through them, docs/operations.md); "off" = /ready checks the listeners and the configuration only',
    defaultValue: 5_000, defaultText: '5s', parse: v.durationOrOff(200, 60_000),
  }),
  readinessProbeTarget: spec({
    key: 'readiness_probe_target', flag: 'readiness-probe-target', env: 'REMORA_READINESS_PROBE_TARGET', valueName: 'IP:PORT',
    help: 'destination of the outbound redirect probe: never reached, it must be routed and captured by the outbound rules (in outbound_cidrs, not excluded); "" = no outbound probe',
    defaultValue: { host: '192.0.2.1', port: 15099 } as HostPort | undefined, defaultText: '192.0.2.1:15099', parse: v.optionalIpPort,
  }),
  readinessProbeUid: spec({
    key: 'readiness_probe_uid', flag: 'readiness-probe-uid', env: 'REMORA_READINESS_PROBE_UID', valueName: 'UID',
    help: 'uid and gid of the outbound probe helper, started before the switch to uid when the proxy starts as root; must differ from uid/gid and not be excluded by the rules',
    defaultValue: 65534, defaultText: '65534', parse: v.id,
  }),
  identityDir: spec({
    key: 'identity_dir', flag: 'identity-dir', env: 'REMORA_IDENTITY_DIR', valueName: 'DIR',
    help: 'the workload identity for mesh mTLS: DIR/cert-chain.pem, DIR/key.pem, DIR/root-cert.pem (remora ca issue writes them); watched, a change rotates it; "" = no identity, no mTLS',
    defaultValue: '', defaultText: '""', parse: v.optionalPath,
  }),
  mtlsMode: spec({
    key: 'mtls_mode', flag: 'mtls-mode', env: 'REMORA_MTLS_MODE', valueName: 'MODE',
    help: 'what inbound accepts: permissive (mesh mTLS and plaintext), strict (mesh mTLS only), disable (no termination: mesh TLS goes to the app as is)',
    defaultValue: 'permissive' as MtlsMode, defaultText: 'permissive', parse: v.oneOf(MTLS_MODES),
  }),
  mtlsPortModes: spec({
    key: 'mtls_port_modes', flag: 'mtls-port-modes', env: 'REMORA_MTLS_PORT_MODES', valueName: 'LIST',
    help: 'per inbound port (the original destination port) overrides of mtls_mode: "8080=strict, 9000-9100=disable"',
    defaultValue: [] as readonly MtlsPortMode[], defaultText: '""', parse: mtlsPortModes,
  }),
  metrics: spec({
    key: 'metrics', flag: 'metrics', env: 'REMORA_METRICS', valueName: 'BOOL',
    help: "Istio's standard metrics (istio_requests_total, ...) at GET /stats/prometheus; off = only remora_* there",
    defaultValue: true, defaultText: 'on', parse: v.boolean,
  }),
  metricsAddress: spec({
    key: 'metrics_address', flag: 'metrics-address', env: 'REMORA_METRICS_ADDRESS', valueName: 'HOST:PORT',
    help: 'a listener serving only GET /stats/prometheus, for a Prometheus outside the pod (Istio: 0.0.0.0:15090); "" = none',
    defaultValue: undefined as HostPort | undefined, defaultText: '""', parse: optionalHostPort,
  }),
  metricsMaxSeries: spec({
    key: 'metrics_max_series', flag: 'metrics-max-series', env: 'REMORA_METRICS_MAX_SERIES', valueName: 'N',
    help: 'the most Istio label sets kept (one HTTP label set is ~67 lines of exposition); beyond it observations are counted in remora_metrics_series_overflow_total, not kept',
    defaultValue: 1000, defaultText: '1000', parse: v.integer(1, 1_000_000),
  }),
  metricsEvictAfter: spec({
    key: 'metrics_evict_after', flag: 'metrics-evict-after', env: 'REMORA_METRICS_EVICT_AFTER', valueName: 'DURATION',
    help: 'an Istio label set not updated for this long is dropped from the exposition (0 = never)',
    defaultValue: 600_000, defaultText: '10m', parse: v.duration(0, 7 * 24 * 3_600_000),
  }),
  accessLog: spec({
    key: 'access_log', flag: 'access-log', env: 'REMORA_ACCESS_LOG', valueName: 'WHERE',
    help: 'one JSON line per HTTP request and per TCP connection: off, stdout, stderr, or an absolute FILE path (appended to; opened at start, reopened when a reload changes it)',
    defaultValue: { kind: 'off' } as AccessLogSetting, defaultText: 'off', parse: accessLog,
  }),
  accessLogSample: spec({
    key: 'access_log_sample', flag: 'access-log-sample', env: 'REMORA_ACCESS_LOG_SAMPLE', valueName: 'FRACTION',
    help: 'the share (0-1) of successful requests and connections logged; failures (status 0 or >= 400, a response flag, a connection error) are always logged',
    defaultValue: 1, defaultText: '1', parse: v.fraction,
  }),
  tracing: spec({
    key: 'tracing', flag: 'tracing', env: 'REMORA_TRACING', valueName: 'BOOL',
    help: 'a span per HTTP request (W3C traceparent and B3 propagated with the sidecar\'s span as parent), exported to tracing_collector; off = trace headers pass through untouched',
    defaultValue: false, defaultText: 'off', parse: v.boolean,
  }),
  tracingSampleRate: spec({
    key: 'tracing_sample_rate', flag: 'tracing-sample-rate', env: 'REMORA_TRACING_SAMPLE_RATE', valueName: 'FRACTION',
    help: 'the share (0-1, not a percentage) of requests sampled when the caller sent no sampling decision (a decision in traceparent or B3 is always followed)',
    defaultValue: 0.01, defaultText: '0.01', parse: v.fraction,
  }),
  tracingCollector: spec({
    key: 'tracing_collector', flag: 'tracing-collector', env: 'REMORA_TRACING_COLLECTOR', valueName: 'URL',
    help: 'where spans go: an OTLP/HTTP JSON endpoint, http://HOST:PORT/v1/traces (no path: /v1/traces is added; required when tracing = on)',
    defaultValue: '', defaultText: '""', parse: collectorUrl,
  }),
  tracingBatchSize: spec({
    key: 'tracing_batch_size', flag: 'tracing-batch-size', env: 'REMORA_TRACING_BATCH_SIZE', valueName: 'N',
    help: 'spans per export request (sent when this many wait, or tracing_batch_interval after the first)',
    defaultValue: 512, defaultText: '512', parse: v.integer(1, 100_000),
  }),
  tracingBatchInterval: spec({
    key: 'tracing_batch_interval', flag: 'tracing-batch-interval', env: 'REMORA_TRACING_BATCH_INTERVAL', valueName: 'DURATION',
    help: 'the longest a finished span waits before its batch is sent',
    defaultValue: 5_000, defaultText: '5s', parse: v.duration(1, 600_000),
  }),
  tracingMaxQueue: spec({
    key: 'tracing_max_queue', flag: 'tracing-max-queue', env: 'REMORA_TRACING_MAX_QUEUE', valueName: 'N',
    help: 'the most finished spans waiting for export; beyond it (collector slow or down) spans are dropped and counted in remora_tracing_spans_dropped_total',
    defaultValue: 2048, defaultText: '2048', parse: v.integer(1, 1_000_000),
  }),
  workloadName: spec({
    key: 'workload_name', flag: 'workload-name', env: 'REMORA_WORKLOAD_NAME', valueName: 'NAME',
    help: 'this workload\'s name in metrics labels (source_workload / destination_workload); "" = the service account of the identity_dir SPIFFE ID, else "unknown"',
    defaultValue: '', defaultText: '""', parse: v.labelValue,
  }),
  workloadNamespace: spec({
    key: 'workload_namespace', flag: 'workload-namespace', env: 'REMORA_WORKLOAD_NAMESPACE', valueName: 'NAMESPACE',
    help: 'this workload\'s namespace in metrics labels; "" = the namespace of the identity_dir SPIFFE ID, else "unknown"',
    defaultValue: '', defaultText: '""', parse: v.labelValue,
  }),
  canonicalService: spec({
    key: 'canonical_service', flag: 'canonical-service', env: 'REMORA_CANONICAL_SERVICE', valueName: 'NAME',
    help: 'this workload\'s canonical service (and app) in metrics labels; "" = the workload name',
    defaultValue: '', defaultText: '""', parse: v.labelValue,
  }),
  canonicalRevision: spec({
    key: 'canonical_revision', flag: 'canonical-revision', env: 'REMORA_CANONICAL_REVISION', valueName: 'REVISION',
    help: 'this workload\'s canonical revision (and version) in metrics labels; "" = "latest"',
    defaultValue: '', defaultText: '""', parse: v.labelValue,
  }),
  control: spec({
    key: 'control', flag: 'control', env: 'REMORA_CONTROL_URL', valueName: 'URL',
    help: 'subscribe to the control plane at this https:// URL (docs/control-plane.md): its snapshots replace the sections of this file but [proxy]; needs control_token and control_ca_file; "" = static mode',
    defaultValue: '', defaultText: '""', parse: controlUrl,
  }),
  controlToken: spec({
    key: 'control_token', flag: 'token', env: 'REMORA_CONTROL_TOKEN', valueName: 'TOKEN',
    help: 'the bearer token for the control plane (scope sidecar); keep a file holding it unreadable to others',
    defaultValue: '', defaultText: '""', parse: bearerToken,
  }),
  controlCaFile: spec({
    key: 'control_ca_file', flag: 'control-ca-file', env: 'REMORA_CONTROL_CA_FILE', valueName: 'FILE',
    help: "the mesh root (PEM) that verifies the control plane's certificate",
    defaultValue: '', defaultText: '""', parse: v.optionalPath,
  }),
  spiffeId: spec({
    key: 'spiffe_id', flag: 'spiffe-id', env: 'REMORA_SPIFFE_ID', valueName: 'ID',
    help: 'with control: get the workload certificate for this SPIFFE ID from the control plane (CSR) into identity_dir, renewed at half life; "" = identity_dir is managed by hand',
    defaultValue: '', defaultText: '""', parse: optionalSpiffeId,
  }),
  workers: spec({
    key: 'workers', flag: 'workers', env: 'REMORA_WORKERS', valueName: 'N',
    help: 'proxy processes sharing the capture listeners (node:cluster, the kernel spreads the accepts): 1-64; "auto" or 0 = one per CPU; 1 = one process, no cluster (docs/operations.md#workers)',
    defaultValue: 1, defaultText: '1', parse: workerCount,
  }),
  logLevel: spec({
    key: 'log_level', flag: 'log-level', env: 'REMORA_LOG_LEVEL', valueName: 'LEVEL',
    help: 'log level', defaultValue: 'info' as LogLevel, defaultText: 'info', parse: v.oneOf(LOG_LEVELS),
  }),
} as const;
