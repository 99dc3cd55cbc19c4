// `remora proxy` composition: build the first runtime from the validated configuration, bind the admin listener and
// both capture listeners, start the outbound probe's helper (as root only), drop privileges, then probe the rules
// (src/proxy/redirect-prober.ts): /ready is 200 once the probes pass. Reload on SIGHUP and on a change of the config
// file.
//
// Lifecycle (docs/operations.md#drain-and-exit):
//   drain (SIGTERM, SIGINT, POST /quitquitquit, or POST /drain without the exit): /ready -> 503 "draining" at once;
//     inbound: the listener keeps accepting for drain_grace, every request read is answered, HTTP/1.1 answers say
//     Connection: close, HTTP/2 sessions get GOAWAY; at the end of the grace the inbound listener closes and idle
//     inbound connections are closed. Outbound: served as usual (the app may still need it) until the proxy exits.
//   exit (not after POST /drain alone): once the grace is over and no connection is open, or at drain_timeout (from
//     the exit request): what is left is reset (REMORA_ERR_DRAIN_TIMEOUT), the listeners and the admin listener close
//     and the process exits with code 0. A second signal ends the drain at once.
//
// The pieces that live as long as the process (listeners, the connection tracker, the connection pipelines, the HTTP
// engines and their pools, counters) are made here once; everything the configuration decides lives in the Runtime
// (src/proxy/runtime.ts), which src/proxy/runtime-manager.ts replaces as a whole.
import { installProcessSignals } from './process-signals.js';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { AdminServer, type ProxyState } from '../admin/admin-server.js';
import type { DrainJson, ProxyStatsJson } from '../admin/stats-json.js';
import { MetricsServer, type PrometheusExposition } from '../admin/prometheus-endpoint.js';
import type { SnapshotDefinitions, SnapshotSource } from '../config/config-snapshot.js';
import type { SnapshotLoad } from '../config/load-snapshot.js';
import type { ProxySettings } from '../config/config-snapshot.js';
import { formatHostPort } from '../core/addr.js';
import { RemoraError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { MeshStats } from '../core/mesh-stats.js';
import { Stats } from '../core/stats.js';
import { CaptureListener, type CaptureHandlers } from '../interceptor/capture-listener.js';
import { createOriginalDstReader, type AcceptedAddresses, type OriginalDstReader } from '../interceptor/original-dst.js';
import { hasForwarder, loadNativeAddon } from '../core/native-addon.js';
import type { Direction } from '../l4/accept-route.js';
import { ConnectionHandler } from '../l4/connection-handler.js';
import { ConnectionPipeline, ConnectionTracker } from '../l4/connection-pipeline.js';
import {
  DEFAULT_HTTP_DESTINATION_CAPACITY, DEFAULT_HTTP_DESTINATION_TTL_MS, HttpDestinationMemory,
} from '../l4/detect/http-destinations.js';
import { connectionStatsFilter } from '../l4/filters/connection-stats.js';
import type { HttpHandoff } from '../l4/http-handoff.js';
import { processForwarder } from '../l4/native-forwarder.js';
import { INBOUND_SOURCE_V6 } from '../upstream/cluster.js';
import type { DnsResolverLike } from '../upstream/dns-discovery.js';
import { identityPaths } from '../config/identity-files.js';
import { certsJson, type CertsJson } from './certs-json.js';
import { configDump } from './config-dump.js';
import { explainRequest } from './explain/explain-endpoint.js';
import { watchConfigFile, type ConfigWatcher } from './config-watcher.js';
import type { HttpLayer } from './http-layer.js';
import { ProbeHelper } from './probe-helper.js';
import { ProbeResponder, type ProbeCheck, type ProbeStatusView } from './probe-responder.js';
import type { LiveConnection } from '../l4/live-connection.js';
import { evaluateReadiness, readinessJson, type Readiness, type ReadinessJson, type ReadinessSource } from './readiness.js';
import { RedirectProber } from './redirect-prober.js';
import { DIRECTIONS, type Runtime, type RuntimeTelemetry } from './runtime.js';
import { EXPOSITION_CONTENT_TYPE } from '../telemetry/exposition.js';
import type { GoldenEdgeSample } from '../telemetry/golden-samples.js';
import { labelContextOf, Telemetry } from '../telemetry/telemetry.js';
import { RuntimeManager, type ReloadOutcome } from './runtime-manager.js';
import { RouteCounters } from '../l7/router/route-counters.js';
import type { SidecarStatus } from '../control/status-report.js';
import { sidecarStatus } from './sidecar-status.js';

export interface ProxyContext {
  readonly log: Logger;
  /** The validated configuration (src/config/load-snapshot.ts). */
  readonly definitions: SnapshotDefinitions;
  /** The config file it was read from, if any. */
  readonly configFile?: string | undefined;
  /** Read and validate the config again, for reloads (SIGHUP, file changes); absent: reloads are refused. */
  readonly reload?: (() => SnapshotLoad) | undefined;
  /** Reload when the config file changes (default: when configFile and reload are given). */
  readonly watchConfig?: boolean;
  /** Tests inject a reader; by default the native addon is loaded. */
  readonly readOriginalDst?: OriginalDstReader;
  /** Install SIGTERM/SIGINT/SIGHUP handlers (default true). */
  readonly handleSignals?: boolean;
  /**
   * Where connections detected (or declared) as HTTP go, per listener. By default (http_engine = on) the HTTP layer
   * built here (src/proxy/http-layer.ts); tests may inject their own. With http_engine = off and no handler, HTTP is
   * forwarded as opaque TCP (through the service's balancer, per connection).
   */
  readonly httpHandlers?: Partial<Record<Direction, HttpHandoff>>;
  /** Tests inject a DNS resolver. */
  readonly resolver?: DnsResolverLike;
  /** Set in a worker process (`workers` > 1, src/proxy/workers/worker.ts); absent: the proxy is the whole process. */
  readonly worker?: WorkerHooks;
}

/**
 * What makes a worker: the primary holds the admin and metrics listeners, the config file, the signals and the
 * redirect prober (src/proxy/workers/primary.ts); a worker serves the capture listeners and answers the primary.
 */
export interface WorkerHooks {
  /** The version and source of the first snapshot: the primary's, so every worker reports the same. */
  readonly version: number;
  readonly source: SnapshotSource;
  /** The primary's redirect probes, mirrored (readiness reads them). */
  readonly probes: ProbeStatusView;
  /** Whether a probe connection this worker accepted is one the primary's prober dialed. */
  readonly probeCheck: ProbeCheck;
}

/** The body of GET /debug/connections. */
export interface ConnectionsJson {
  readonly at: string;
  readonly count: number;
  readonly connections: readonly (LiveConnection & { readonly worker?: number })[];
}

export interface Proxy extends ReadinessSource {
  state(): ProxyState;
  stats(): ProxyStatsJson;
  /** The Prometheus exposition (what GET /stats/prometheus answers), in one string. */
  prometheus(): string;
  /** The golden-metric edges (cumulative) reported to the control plane. */
  golden(): GoldenEdgeSample[];
  /** The bodies of GET /config_dump, /certs and /debug/connections. */
  configDump(): unknown;
  certs(): CertsJson;
  connections(): ConnectionsJson;
  /** The runtime manager (reloads, route weights, a worker's two-phase apply). */
  readonly runtimes: RuntimeManager;
  /** The status reported to the control plane (src/proxy/sidecar-status.ts). */
  status(): SidecarStatus;
  /** The runtime in force. */
  readonly runtime: Runtime;
  /** Re-read the config file now (what SIGHUP does). */
  reload(trigger?: string): ReloadOutcome;
  /** Begin the drain without exiting (what POST /drain does). */
  drain(reason?: string): void;
  /** Drain and stop (what SIGTERM does). Resolves when everything is closed. */
  shutdown(reason?: string): Promise<void>;
  /** Resolves once the proxy has stopped. */
  readonly stopped: Promise<void>;
}

interface Identity {
  readonly euid: number;
  readonly egid: number;
}

function currentIdentity(): Identity {
  return { euid: process.geteuid?.() ?? 0, egid: process.getegid?.() ?? 0 };
}

/** Refuse to run as a non-root uid/gid other than the configured one: its traffic would be redirected to itself. */
export function checkIdentity(opts: Pick<ProxySettings, 'uid' | 'gid'>, id: Identity = currentIdentity()): void {
  if (id.euid === 0) return;
  if (id.euid !== opts.uid || id.egid !== opts.gid) {
    throw new RemoraError('REMORA_ERR_UID_MISMATCH',
      `running as uid ${id.euid} gid ${id.egid} but uid ${opts.uid} gid ${opts.gid} is configured: the rules exclude only`
      + ' the configured ids, so the proxy\'s own connections would be redirected back to it (a loop). Run as'
      + ` ${opts.uid}:${opts.gid}, start as root (it switches after binding), or set --uid/--gid to match`,
      { details: { euid: id.euid, egid: id.egid, uid: opts.uid, gid: opts.gid } });
  }
}

export function dropPrivileges(opts: Pick<ProxySettings, 'uid' | 'gid'>, log: Logger): void {
  if (currentIdentity().euid !== 0) return;
  if (opts.uid === 0 && opts.gid === 0) {
    log.warn('running as root (uid/gid 0 configured): the rules must exclude uid 0 or traffic loops');
    return;
  }
  try {
    process.setgroups?.([]);
    process.setgid?.(opts.gid);
    process.setuid?.(opts.uid);
  } catch (err) {
    throw new RemoraError('REMORA_ERR_PERMISSION', `cannot switch to uid ${opts.uid} gid ${opts.gid}`, { cause: err });
  }
  log.info({ uid: opts.uid, gid: opts.gid }, 'switched to the proxy uid/gid after binding');
}

/**
 * The outbound probe's helper, started while the proxy is still root (src/proxy/probe-helper.ts), or why there is none.
 */
export function startProbeHelper(opts: ProxySettings, log: Logger): ProbeHelper | { readonly unavailable: string } {
  if (opts.readinessProbeInterval <= 0 || opts.readinessProbeTarget === undefined) {
    return { unavailable: 'readiness_probe_interval was off at start: no probe helper was started' };
  }
  const euid = currentIdentity().euid;
  if (euid !== 0) {
    return {
      unavailable: `the proxy was started as uid ${euid}, not root: it cannot start a process of another uid to send`
        + ` the outbound probe through the rules (start it as root: it switches to uid ${opts.uid} after binding)`,
    };
  }
  try {
    return ProbeHelper.start(opts.readinessProbeUid, opts.readinessProbeUid, log);
  } catch (err) {
    log.error({ err }, 'cannot start the readiness probe helper');
    return { unavailable: `the probe helper could not be started: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** The package's version (remora_build_info, the spans' telemetry.sdk.version). */
export function remoraVersion(): string {
  try {
    return (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function loopbackHasInboundV6Source(): boolean {
  return Object.values(networkInterfaces()).some((list) => (list ?? []).some((a) => a.address === INBOUND_SOURCE_V6));
}

function warnInsecure(defs: SnapshotDefinitions, log: Logger): void {
  for (const s of defs.services) {
    if (s.tls !== undefined && !s.tls.verify) {
      log.warn({ event: 'tls.insecure-skip-verify', service: s.name, source: s.source },
        'tls_insecure_skip_verify = true: the upstream certificate of this service is NOT verified (anyone on the path can impersonate it)');
    }
  }
}

/** Quiet period after a change of an identity file before the reload. */
const IDENTITY_SETTLE_MS = 50;
/** A rejected identity is tried again once after this long. */
const IDENTITY_RETRY_MS = 1_000;
/** How often the workload certificate's expiry is looked at (wall clock: a suspended host wakes up and looks). */
const IDENTITY_EXPIRY_CHECK_MS = 30_000;

/**
 * Warn while the workload certificate is in the last fifth of its validity, error once it has
 * expired: mesh mTLS with it fails on the peers. Counted under identity.expiring / identity.expired.
 */
function checkIdentityExpiry(rt: Runtime, now: number, log: Logger, meshStats: MeshStats): void {
  const identity = rt.mesh?.identity;
  if (identity === undefined) return;
  const left = identity.notAfter - now;
  const lifetime = identity.notAfter - identity.notBefore;
  if (left <= 0) {
    meshStats.identity.increment('expired');
    log.error({ event: 'identity.expired', spiffeId: identity.spiffeId, notAfter: new Date(identity.notAfter).toISOString(), code: 'REMORA_ERR_IDENTITY' },
      'the workload certificate has expired: peers refuse mesh mTLS with it; issue a new one into identity_dir');
  } else if (left < lifetime / 5) {
    meshStats.identity.increment('expiring');
    log.warn({ event: 'identity.expiring', spiffeId: identity.spiffeId, notAfter: new Date(identity.notAfter).toISOString(), secondsLeft: Math.floor(left / 1000) },
      'the workload certificate expires soon; issue a new one into identity_dir');
  }
}

/** tcp_forwarder = native with an addon built before the forwarder existed: every opaque forward stays in Node. */
function warnNoForwarder(kind: 'native' | 'node', log: Logger): void {
  if (kind !== 'native') return;
  let ok = false;
  try {
    ok = hasForwarder(loadNativeAddon());
  } catch {
    ok = false; // the original-destination reader reports a missing addon itself
  }
  if (!ok) {
    log.warn({ event: 'forwarder.unavailable', code: 'REMORA_ERR_NATIVE_LOAD' },
      'tcp_forwarder = native, but the native addon has no forwarder (built before it): opaque TCP is forwarded in Node; rebuild the addon (npm install)');
  }
}

export async function startProxy(ctx: ProxyContext): Promise<Proxy> {
  const { log } = ctx;
  const options = ctx.definitions.proxy;
  checkIdentity(options);
  const readOriginalDst = ctx.readOriginalDst ?? createOriginalDstReader();
  warnInsecure(ctx.definitions, log);
  warnNoForwarder(options.tcpForwarder, log);

  let state: ProxyState = 'starting';
  const stats = new Stats();
  const meshStats = new MeshStats();
  const routeCounters = new RouteCounters();
  const tracker = new ConnectionTracker();
  // Metrics and access log (opens the access log file now: a file that cannot be opened stops the start).
  const telemetry = new Telemetry({ log, settings: options, context: labelContextOf(ctx.definitions, undefined), version: remoraVersion() });
  const runtimeTelemetry: RuntimeTelemetry = {
    requestObserver: (direction, settings) => telemetry.requestObserver(direction, settings),
    apply: (rt) => { telemetry.apply(rt.snapshot.proxy, labelContextOf(rt.snapshot, rt.mesh?.identity.spiffeId)); },
  };
  let connSeq = 0;
  const nextId = (): number => ++connSeq;

  // The HTTP engine's modules (node:http2, src/l7's engines and request path) are loaded only when it runs: an L4
  // proxy starts leaner. http_engine is restart-only, so a reload never needs them newly.
  let manager: RuntimeManager | undefined;
  const current = (): Runtime => {
    if (manager === undefined) throw new Error('runtime read before it was built');
    return manager.current;
  };
  const engineOn = options.httpEngine && ctx.httpHandlers === undefined;
  const [httpLayerModule, httpRuntimesModule] = engineOn
    ? await Promise.all([import('./http-layer.js'), import('./http-runtimes.js')]) : [undefined, undefined];
  const http: HttpLayer | undefined = httpLayerModule !== undefined
    ? new httpLayerModule.HttpLayer({
      log,
      runtime: (d) => {
        const runtimes = current().http;
        if (runtimes === undefined) throw new Error('the HTTP engine runs without HTTP runtimes');
        return runtimes[d];
      },
      inboundDelivery: () => current().snapshot.proxy.inboundDelivery,
      engine: {
        http2Codec: options.http2Codec,
        ...(options.idleTimeout > 0 ? { downstreamIdleTimeoutMs: options.idleTimeout, tunnelIdleTimeoutMs: options.idleTimeout } : {}),
      },
    })
    : undefined;
  const handoffs: Record<Direction, HttpHandoff | undefined> = {
    outbound: ctx.httpHandlers?.outbound ?? http?.handoffs.outbound,
    inbound: ctx.httpHandlers?.inbound ?? http?.handoffs.inbound,
  };
  const pipeline = (direction: Direction): ConnectionPipeline => new ConnectionPipeline({
    counters: stats.listener(direction),
    countSniff: (label) => { stats.countSniff(label); },
    tcpForwarder: options.tcpForwarder,
    httpDestinations: handoffs[direction] === undefined ? undefined : new HttpDestinationMemory({
      capacity: DEFAULT_HTTP_DESTINATION_CAPACITY, ttlMs: DEFAULT_HTTP_DESTINATION_TTL_MS, clock: { now: () => Date.now() },
    }),
  }, tracker);
  const source: SnapshotSource = ctx.configFile === undefined || ctx.configFile === ''
    ? { kind: 'defaults' } : { kind: 'file', path: ctx.configFile };
  manager = new RuntimeManager(ctx.definitions, ctx.worker?.source ?? source, {
    log,
    load: ctx.reload,
    file: ctx.configFile,
    ...(ctx.worker === undefined ? {} : { initialVersion: ctx.worker.version }),
    deps: {
      log,
      random: Math.random,
      ...(ctx.resolver === undefined ? {} : { resolver: ctx.resolver }),
      pipelines: { outbound: pipeline('outbound'), inbound: pipeline('inbound') },
      http: handoffs,
      ...(httpRuntimesModule === undefined ? {} : { httpRuntimes: httpRuntimesModule.buildHttpRuntimes }),
      meshStats,
      routeCounters,
      telemetry: runtimeTelemetry,
      connectionFilters: {
        outbound: [connectionStatsFilter({ counters: stats.listener('outbound'), stats, log, observe: telemetry.connectionObserver })],
        inbound: [connectionStatsFilter({ counters: stats.listener('inbound'), stats, log, observe: telemetry.connectionObserver })],
      },
    },
  });
  const runtimes = manager;

  // Readiness: the lifecycle state and the redirect probes (created once the listeners are bound).
  // A worker: the primary probes, this process answers the probe connections it accepts and mirrors the results.
  let prober: RedirectProber | undefined;
  const responder = ctx.worker === undefined ? undefined : new ProbeResponder({
    settings: () => {
      const p = runtimes.current.snapshot.proxy;
      return { intervalMs: p.readinessProbeInterval, target: p.readinessProbeTarget };
    },
    check: ctx.worker.probeCheck,
  });
  const probes = (): ProbeStatusView | undefined => ctx.worker?.probes ?? prober;
  let readinessNow: Readiness = { ready: false, reason: 'starting' };
  let readinessSince = Date.now();
  const readiness = (): Readiness => evaluateReadiness({
    lifecycle: state, probing: (probes()?.intervalMs ?? 0) > 0, probes: probes()?.status() ?? new Map(),
  });
  /** Evaluate readiness again and log a change (event readiness.changed). */
  const updateReadiness = (): void => {
    const r = readiness();
    if (r.ready === readinessNow.ready && r.reason === readinessNow.reason) return;
    readinessNow = r;
    readinessSince = Date.now();
    const fields = { event: 'readiness.changed', ready: r.ready, reason: r.reason };
    if (!r.ready && r.reason.startsWith('not ready: ') && !r.reason.startsWith('not ready: waiting')) {
      log.warn(fields, `not ready: ${r.reason.slice('not ready: '.length)}`);
    } else {
      log.info(fields, r.ready ? 'ready' : r.reason);
    }
  };
  const readinessStats = (): ReadinessJson => {
    updateReadiness();
    return readinessJson(readinessNow, readinessSince, probes()?.intervalMs ?? 0, probes()?.status() ?? new Map());
  };

  // The drain (see the top of this file).
  let drain: { startedAt: number; reason: string; exiting: boolean; graceOver: boolean } | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  let graceOver: () => void = () => undefined;
  const graceDone = new Promise<void>((resolve) => { graceOver = resolve; });
  const drainJson = (): DrainJson | undefined => (drain === undefined ? undefined : {
    startedAt: new Date(drain.startedAt).toISOString(), reason: drain.reason, exiting: drain.exiting, graceOver: drain.graceOver,
  });

  const snapshot = (): ProxyStatsJson => {
    const rt = runtimes.current;
    const services = rt.clusters.services();
    const d = drainJson();
    return {
      ...stats.snapshot(state),
      ...(services.length === 0 ? {} : { services: rt.clusters.status() }),
      ...(http === undefined ? {} : { http: http.stats(rt.snapshot.version) }),
      config: runtimes.configStats(),
      ...meshStats.json(),
      readiness: readinessStats(),
      ...(d === undefined ? {} : { drain: d }),
    };
  };
  // Set below, once the drain and the shutdown are defined.
  let beginDrain: (reason: string) => void = () => undefined;
  let shutdown: (reason?: string) => Promise<void> = () => Promise.resolve();
  telemetry.setStatsSource(snapshot);
  const exposition: PrometheusExposition = { contentType: EXPOSITION_CONTENT_TYPE, write: (out) => telemetry.write(out) };
  const connections = (): ConnectionsJson => {
    const now = Date.now();
    const list = tracker.list(now);
    return { at: new Date(now).toISOString(), count: list.length, connections: list };
  };
  // A worker serves no admin or metrics listener: the primary's answer for every worker (src/proxy/workers/).
  const metricsServer = options.metricsAddress === undefined || ctx.worker !== undefined ? undefined
    : new MetricsServer({ host: options.metricsAddress.host, port: options.metricsAddress.port, exposition, log });
  const admin = ctx.worker !== undefined ? undefined : new AdminServer({
    host: options.adminAddress.host, port: options.adminAddress.port, log,
    state: () => state, stats: () => snapshot(), routes: http === undefined ? undefined : runtimes,
    configDump: () => configDump(runtimes.current.snapshot),
    certs: () => certsJson(runtimes.current, Date.now(), meshStats),
    readiness: () => {
      updateReadiness();
      return readinessNow;
    },
    drain: () => { beginDrain('POST /drain'); },
    quit: () => { void shutdown('POST /quitquitquit'); },
    connections,
    explain: (search) => explainRequest(runtimes.current, search),
    prometheus: exposition,
  });

  const selfPorts = [options.outboundPort, options.inboundPort];
  // A probe connection (the prober's own destinations) is answered by the prober, before anything is counted.
  const withProbes = (direction: Direction, handler: ConnectionHandler): CaptureHandlers => {
    const accepted = (socket: Socket, addresses: AcceptedAddresses): void => {
      const origDst = addresses.originalDst;
      if (prober?.claim(direction, socket, origDst) === true || responder?.claim(direction, socket, origDst) === true) return;
      handler.accepted(socket, addresses);
    };
    return {
      accepted,
      acceptedHandle(handle, addresses) {
        const origDst = addresses.originalDst;
        if (prober?.wants(direction, origDst) !== true && responder?.wants(direction, origDst) !== true) {
          handler.acceptedHandle(handle, addresses);
          return;
        }
        // A probe is answered on a socket (rare: the prober's own connections), with the accept's safety listener.
        const socket = handle.toSocket();
        socket.on('error', () => { socket.destroy(); });
        accepted(socket, addresses);
      },
      rejected: (socket, code, reason, err) => { handler.rejected(socket, code, reason, err); },
      listenerError: (err) => { handler.listenerError(err); },
    };
  };
  const connectionHandlers: Record<Direction, ConnectionHandler> = {
    outbound: new ConnectionHandler({
      direction: 'outbound', counters: stats.listener('outbound'), stats, log, nextId, runtime: () => runtimes.current.listeners.outbound,
    }),
    inbound: new ConnectionHandler({
      direction: 'inbound', counters: stats.listener('inbound'), stats, log, nextId, runtime: () => runtimes.current.listeners.inbound,
    }),
  };
  const listeners = DIRECTIONS.map((direction) => new CaptureListener({
    name: direction,
    host: options.listenAddress,
    port: direction === 'outbound' ? options.outboundPort : options.inboundPort,
    readOriginalDst,
    selfPorts,
    log,
    handlers: withProbes(direction, connectionHandlers[direction]),
  }));
  const listenerOf = (direction: Direction): CaptureListener => {
    const l = listeners.find((x) => x.name === direction);
    if (l === undefined) throw new Error(`no ${direction} listener`);
    return l;
  };

  let probeHelper: ProbeHelper | { readonly unavailable: string } = { unavailable: 'not started' };
  try {
    await admin?.listen();
    await metricsServer?.listen();
    for (const l of listeners) await l.listen();
    // The helper needs root to get its own uid: started before the switch (a worker has none: the primary probes).
    if (ctx.worker === undefined) probeHelper = startProbeHelper(options, log);
    dropPrivileges(options, log);
  } catch (err) {
    for (const l of listeners) l.close();
    if (probeHelper instanceof ProbeHelper) probeHelper.close();
    await admin?.close();
    await metricsServer?.close();
    runtimes.close();
    await telemetry.close();
    throw err;
  }
  const inboundBound = listenerOf('inbound').bound;
  if (ctx.worker === undefined) prober = new RedirectProber({
    log,
    settings: () => {
      const p = runtimes.current.snapshot.proxy;
      return { intervalMs: p.readinessProbeInterval, target: p.readinessProbeTarget };
    },
    inboundPort: options.inboundPort,
    outboundPort: options.outboundPort,
    helper: probeHelper,
    inboundIpv6: inboundBound?.family === 'IPv6' && !inboundBound.ipv4Fallback,
    onRound: updateReadiness,
  });

  // The native accept (tcp_forwarder = native): the forwarding thread accepts on a listener whose connections are
  // mostly forwarded as bytes (no HTTP engine; inbound, no mesh identity either: every mesh connection needs a socket).
  // A connection that needs a socket, or a check of the capture stage, comes back to the listener as one.
  const forwarder = options.tcpForwarder === 'native' ? processForwarder() : null;
  for (const l of listeners) {
    const direction = l.name as Direction;
    if (forwarder === null || handoffs[direction] !== undefined || (direction === 'inbound' && options.identityDir !== '')) continue;
    const handler = connectionHandlers[direction];
    const counters = stats.listener(direction);
    const native = l.handAcceptTo((fd) => {
      const handle = forwarder.listen(fd, {
        accepted(conn, a) {
          counters.nativeAccepts++;
          const dst = a.originalDst;
          if (a.status !== 0 || dst === undefined || l.isSelfPort(dst.port) || prober?.wants(direction, dst) === true
            || responder?.wants(direction, dst) === true) {
            let socket: Socket;
            try {
              socket = conn.toSocket();
            } catch (err) {
              conn.abort();
              handler.listenerError(err as Error);
              return;
            }
            l.adopt(socket);
            return;
          }
          handler.acceptedNative(conn, { originalDst: dst, peerAddress: a.peerAddress, peerPort: a.peerPort });
        },
        listenerError: (err) => { handler.listenerError(err); },
      });
      return () => { forwarder.unlisten(handle); };
    });
    if (native) log.debug({ listener: direction }, 'the native forwarder accepts on this listener');
  }

  // A listener with an HTTP engine accepts TCP handles rather than net.Sockets (src/core/tcp-handle.ts): HTTP/1.1 is
  // served on the handle, and a connection becomes a socket only where a stage needs one. Not with inbound mesh mTLS
  // (every such connection needs a socket for the handshake), nor on a Node release without the handle bindings.
  for (const l of listeners) {
    const direction = l.name as Direction;
    if (handoffs[direction]?.handleHttp1Handle === undefined || (direction === 'inbound' && options.identityDir !== '')) continue;
    if (l.acceptHandles()) log.debug({ listener: direction }, 'HTTP/1.1 is served on the accepted TCP handles of this listener');
  }

  for (const l of listeners) {
    const c = stats.listener(l.name);
    c.address = formatHostPort(l.bound?.address ?? '?', l.bound?.port ?? 0);
    c.ipv4Only = l.bound?.ipv4Fallback ?? false;
  }
  const bound = listeners.map((l) => `${l.name}=${stats.listener(l.name).address}`);
  if (listeners.some((l) => l.bound?.family === 'IPv6') && !loopbackHasInboundV6Source()) {
    log.warn(`${INBOUND_SOURCE_V6} is not an address of lo: inbound IPv6 connections cannot be delivered`
      + ' (remora init adds it; without it connect fails with EADDRNOTAVAIL)');
  }

  const reload = (trigger = 'api'): ReloadOutcome => runtimes.reload(trigger);
  const watchers: ConfigWatcher[] = [];
  if (ctx.configFile !== undefined && ctx.configFile !== '' && ctx.reload !== undefined && (ctx.watchConfig ?? true)) {
    watchers.push(watchConfigFile(ctx.configFile, () => { reload('file-change'); }));
  }
  // The identity files: a change (a renewed certificate, a new trust bundle) reloads, which swaps the TLS contexts.
  // `remora ca issue` and Kubernetes secret updates write the files within milliseconds of each other: one reload
  // after they settle. A rejected identity (say, a key written before its certificate) is tried once more a second
  // later; the last good identity keeps serving meanwhile.
  const identityDir = options.identityDir;
  let identityTimer: NodeJS.Timeout | undefined;
  const identityChanged = (retry: boolean): void => {
    if (identityTimer !== undefined) clearTimeout(identityTimer);
    identityTimer = setTimeout(() => {
      identityTimer = undefined;
      const r = reload('identity');
      if (r.result === 'rejected' && !retry) identityChanged(true);
    }, retry ? IDENTITY_RETRY_MS : IDENTITY_SETTLE_MS);
    identityTimer.unref();
  };
  if (identityDir !== '' && ctx.reload !== undefined && (ctx.watchConfig ?? true)) {
    for (const path of Object.values(identityPaths(identityDir))) {
      watchers.push(watchConfigFile(path, () => { identityChanged(false); }));
    }
  }
  const expiry = setInterval(() => { checkIdentityExpiry(runtimes.current, Date.now(), log, meshStats); }, IDENTITY_EXPIRY_CHECK_MS);
  expiry.unref();
  checkIdentityExpiry(runtimes.current, Date.now(), log, meshStats);

  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => { resolveStopped = resolve; });
  let drainCut: (() => void) | undefined;
  let shuttingDown: Promise<void> | undefined;

  /** End of the drain grace: the inbound listener closes, idle inbound HTTP connections close. */
  const endGrace = (): void => {
    if (drain === undefined || drain.graceOver) return;
    drain.graceOver = true;
    clearTimeout(graceTimer);
    listenerOf('inbound').close();
    http?.closeIdle('inbound');
    log.info({ event: 'proxy.drain-grace-ended', open: tracker.size },
      'drain grace over: the inbound listener is closed, idle inbound connections are closed');
    graceOver();
  };

  beginDrain = (reason: string): void => {
    if (drain !== undefined) return;
    const graceMs = runtimes.current.snapshot.proxy.drainGrace;
    drain = { startedAt: Date.now(), reason, exiting: false, graceOver: false };
    state = 'draining';
    prober?.stop();
    responder?.stop();
    updateReadiness();
    // Inbound HTTP: every request read is answered, with Connection: close / GOAWAY. Outbound: untouched.
    http?.drain('inbound');
    log.info({ event: 'proxy.draining', reason, open: tracker.size, drainGraceMs: graceMs },
      'draining: /ready fails; the inbound listener accepts for the grace period and answers ask clients to close; outbound is served as usual');
    graceTimer = setTimeout(endGrace, graceMs);
  };

  shutdown = (reason = 'shutdown requested'): Promise<void> => {
    if (shuttingDown !== undefined) {
      drainCut?.();
      return shuttingDown;
    }
    shuttingDown = (async () => {
      beginDrain(reason);
      if (drain !== undefined) drain.exiting = true;
      for (const w of watchers) w.close();
      clearInterval(expiry);
      if (identityTimer !== undefined) clearTimeout(identityTimer);
      const drainTimeout = runtimes.current.snapshot.proxy.drainTimeout;
      log.info({ event: 'proxy.exiting', reason, open: tracker.size, drainTimeoutMs: drainTimeout },
        'exiting once the drain grace is over and nothing is open, at the latest after drain_timeout');
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        drainCut = resolve;
        timer = setTimeout(resolve, drainTimeout);
      });
      // 1. The grace: the inbound listener still accepts (cut short by the deadline).
      await Promise.race([graceDone, deadline]);
      endGrace();
      // 2. Until nothing is open, or the deadline. Outbound is served until the listener closes below.
      if (tracker.size > 0) await Promise.race([tracker.whenEmpty(), deadline]);
      clearTimeout(timer);
      listenerOf('outbound').close();
      const cut = tracker.abortAll('REMORA_ERR_DRAIN_TIMEOUT');
      if (cut > 0) {
        log.warn({ connections: cut }, 'drain deadline reached: remaining connections reset');
        // Reset sockets close within a tick or two; the bound only guards against a bug keeping the process alive.
        let guard: NodeJS.Timeout | undefined;
        await Promise.race([tracker.whenEmpty(), new Promise<void>((resolve) => { guard = setTimeout(resolve, 2_000); })]);
        clearTimeout(guard);
        if (tracker.size > 0) log.error({ connections: tracker.size }, 'connections did not close after being reset');
      }
      // The HTTP engines hold nothing the tracker did not (HTTP connections are tracked): this closes their pools.
      await http?.shutdown(0);
      if (probeHelper instanceof ProbeHelper) probeHelper.close();
      state = 'stopped';
      runtimes.close();
      await admin?.close();
      await metricsServer?.close();
      await telemetry.close();
      removeSignalHandlers();
      log.info({ event: 'proxy.stopped', stats: snapshot() }, 'stopped');
      process.exitCode = 0;
      resolveStopped();
    })();
    return shuttingDown;
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    void shutdown(`received ${signal}`);
  };
  const onHangup = (): void => {
    reload('SIGHUP');
  };
  const removeSignalHandlers = (ctx.handleSignals ?? true) ? installProcessSignals(onSignal, onHangup) : (): void => undefined;

  state = 'ready';
  // Probing starts after the switch to the proxy's uid: the loopback probes must be the proxy uid's connections.
  prober?.start();
  updateReadiness();
  if (ctx.worker === undefined && !(probeHelper instanceof ProbeHelper) && options.readinessProbeInterval > 0 && options.readinessProbeTarget !== undefined) {
    log.warn({ event: 'readiness.outbound-probe-unavailable', why: probeHelper.unavailable },
      'the outbound redirect probe cannot run; /ready proves the rules through the loopback probes only');
  }
  const first = runtimes.current.snapshot;
  log.info({
    event: 'proxy.ready', listeners: bound, admin: formatHostPort(options.adminAddress.host, options.adminAddress.port),
    inboundDelivery: options.inboundDelivery, configFile: ctx.configFile, detectTimeoutMs: options.detectTimeout,
    metrics: options.metricsAddress === undefined ? 'admin' : `admin, ${formatHostPort(options.metricsAddress.host, options.metricsAddress.port)}`,
    accessLog: options.accessLog.kind === 'file' ? options.accessLog.path : options.accessLog.kind,
    tracing: options.tracing ? options.tracingCollector : 'off',
    services: first.services.map((s) => s.name), registryMode: first.registry.mode,
    httpEngine: http !== undefined, routes: first.routes.length, configVersion: first.version, configHash: first.hash,
    watchingConfig: watchers.length > 0,
    identity: runtimes.current.mesh?.identity.spiffeId,
    mtlsMode: runtimes.current.mesh === undefined ? undefined : options.mtlsMode,
  }, 'remora proxy ready');

  return {
    state: () => state,
    stats: snapshot,
    readiness: readinessStats,
    prometheus: () => telemetry.render(),
    golden: () => telemetry.golden(),
    configDump: () => configDump(runtimes.current.snapshot),
    certs: () => certsJson(runtimes.current, Date.now(), meshStats),
    connections,
    runtimes,
    status: () => sidecarStatus({ runtime: runtimes.current, readiness: readinessStats(), authz: meshStats.authz.json(), routes: routeCounters, now: Date.now() }),
    get runtime() { return runtimes.current; },
    reload,
    drain: (reason = 'drain requested') => { beginDrain(reason); },
    shutdown: (reason) => shutdown(reason),
    stopped,
  };
}
