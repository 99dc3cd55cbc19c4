// `remora proxy` composition: load the addon, bind the admin listener and both capture listeners, drop privileges,
// become ready, and on SIGTERM/SIGINT drain: stop accepting, /ready -> 503 "draining", let open connections finish
// until drain_timeout, reset what is left (counted as REMORA_ERR_DRAIN_TIMEOUT), close the admin listener and let
// the process exit with code 0. A second signal during the drain ends it at once.
import { networkInterfaces } from 'node:os';
import { AdminServer, type ProxyState } from '../admin/admin-server.js';
import type { IniDocument } from '../config/ini-file.js';
import type { OptionValues } from '../config/option-set.js';
import type { proxyOptionSpecs } from '../config/proxy-options.js';
import { formatHostPort } from '../core/addr.js';
import { RemoraError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { Stats, type ProxyStatsJson } from '../core/stats.js';
import { CaptureListener } from '../interceptor/capture-listener.js';
import { createOriginalDstReader, type OriginalDstReader } from '../interceptor/original-dst.js';
import { ConnectionHandler, ConnectionTracker } from '../l4/connection-handler.js';
import { EMPTY_HTTP_CONFIG, loadHttpConfig } from './http-config.js';
import type { HttpLayer } from './http-handoff.js';
import type { HttpHandoff } from '../l4/staged-connection.js';
import { loadServiceConfig, type ProxyServiceConfig } from './proxy-config.js';
import { INBOUND_SOURCE_V6, type Direction } from '../l4/inbound-delivery.js';
import { ServiceRouter } from '../l4/accept-route.js';
import { Services } from './services.js';

export type ProxyOptions = OptionValues<typeof proxyOptionSpecs>;

export interface ProxyContext {
  readonly log: Logger;
  readonly document?: IniDocument | undefined;
  readonly configFile?: string | undefined;
  /** Tests inject a reader; by default the native addon is loaded. */
  readonly readOriginalDst?: OriginalDstReader;
  /** Install SIGTERM/SIGINT handlers (default true). */
  readonly handleSignals?: boolean;
  /** Services, read from `document` when absent (tests may pass them). */
  readonly services?: ProxyServiceConfig;
  /**
   * Where connections detected (or declared) as HTTP/1 or HTTP/2 go, per listener. By default (http_engine = on) the
   * HTTP layer built here (src/proxy/http-handoff.ts); tests may inject their own. With http_engine = off and no
   * handler, HTTP is forwarded as opaque TCP (through the service's balancer, per connection).
   */
  readonly httpHandlers?: Partial<Record<Direction, HttpHandoff>>;
}

export interface Proxy {
  state(): ProxyState;
  stats(): ProxyStatsJson;
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
export function checkIdentity(opts: Pick<ProxyOptions, 'uid' | 'gid'>, id: Identity = currentIdentity()): void {
  if (id.euid === 0) return;
  if (id.euid !== opts.uid || id.egid !== opts.gid) {
    throw new RemoraError('REMORA_ERR_UID_MISMATCH',
      `running as uid ${id.euid} gid ${id.egid} but uid ${opts.uid} gid ${opts.gid} is configured: the rules exclude only`
      + ' the configured ids, so the proxy\'s own connections would be redirected back to it (a loop). Run as'
      + ` ${opts.uid}:${opts.gid}, start as root (it switches after binding), or set --uid/--gid to match`,
      { details: { euid: id.euid, egid: id.egid, uid: opts.uid, gid: opts.gid } });
  }
}

function dropPrivileges(opts: Pick<ProxyOptions, 'uid' | 'gid'>, log: Logger): void {
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

function loopbackHasInboundV6Source(): boolean {
  return Object.values(networkInterfaces()).some((list) => (list ?? []).some((a) => a.address === INBOUND_SOURCE_V6));
}

export async function startProxy(options: ProxyOptions, ctx: ProxyContext): Promise<Proxy> {
  const { log } = ctx;
  checkIdentity(options);
  // Every problem in the file is reported before anything starts (REMORA_ERR_CONFIG_INVALID, exit code 2).
  const serviceConfig = ctx.services ?? loadServiceConfig(ctx.document);
  // Routes and traffic policies (validated with the rest of the file; this adds the checks that need the registry).
  const httpConfig = ctx.httpHandlers === undefined ? loadHttpConfig(ctx.document, serviceConfig.registry) : EMPTY_HTTP_CONFIG;
  const readOriginalDst = ctx.readOriginalDst ?? createOriginalDstReader();
  const services = new Services(serviceConfig.registry, { log, connectTimeoutMs: options.connectTimeout, tls: serviceConfig.tls });
  for (const s of serviceConfig.registry.services) {
    if (s.tls !== undefined && !s.tls.verify) {
      log.warn({ service: s.name, source: s.source },
        'tls_insecure_skip_verify = true: the upstream certificate of this service is NOT verified (anyone on the path can impersonate it)');
    }
  }
  const router = new ServiceRouter(services, { inboundDelivery: options.inboundDelivery });
  // The HTTP engine's modules (node:http2, src/l7) are loaded only when it runs: an L4 proxy starts leaner.
  const http: HttpLayer | undefined = options.httpEngine && ctx.httpHandlers === undefined ? new (await import('./http-handoff.js')).HttpLayer({
    services, routes: httpConfig.routes, policies: httpConfig.policies, log, inboundDelivery: options.inboundDelivery,
    connectTimeoutMs: options.connectTimeout, idleTimeoutMs: options.idleTimeout,
  }) : undefined;
  const httpHandlers = ctx.httpHandlers ?? (http === undefined ? undefined : { outbound: http.outbound, inbound: http.inbound });

  let state: ProxyState = 'starting';
  const stats = new Stats();
  const tracker = new ConnectionTracker();
  let connSeq = 0;
  const nextId = (): number => ++connSeq;

  const admin = new AdminServer({
    host: options.adminAddress.host, port: options.adminAddress.port, log,
    state: () => state, stats: () => snapshot(), routes: http,
  });
  const snapshot = (): ProxyStatsJson => ({
    ...stats.snapshot(state),
    ...(serviceConfig.registry.services.length === 0 ? {} : { services: services.status() }),
    ...(http === undefined ? {} : { http: http.stats() }),
  });

  const selfPorts = [options.outboundPort, options.inboundPort];
  const listeners = (['outbound', 'inbound'] as const).map((direction: Direction) => new CaptureListener({
    name: direction,
    host: options.listenAddress,
    port: direction === 'outbound' ? options.outboundPort : options.inboundPort,
    readOriginalDst,
    selfPorts,
    log,
    handlers: new ConnectionHandler({
      direction, listener: direction, counters: stats.listener(direction), stats, tracker,
      router, connectTimeoutMs: options.connectTimeout, idleTimeoutMs: options.idleTimeout,
      detectTimeoutMs: options.detectTimeout, httpHandler: httpHandlers?.[direction], log, nextId,
    }),
  }));

  try {
    await admin.listen();
    for (const l of listeners) await l.listen();
    dropPrivileges(options, log);
  } catch (err) {
    for (const l of listeners) l.close();
    await admin.close();
    services.close();
    http?.close();
    throw err;
  }
  services.start();
  http?.start();

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

  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => { resolveStopped = resolve; });
  let drainCut: (() => void) | undefined;
  let shuttingDown: Promise<void> | undefined;

  const shutdown = (reason = 'shutdown requested'): Promise<void> => {
    if (shuttingDown !== undefined) {
      drainCut?.();
      return shuttingDown;
    }
    shuttingDown = (async () => {
      state = 'draining';
      for (const l of listeners) l.close();
      log.info({ reason, open: tracker.size, drainTimeoutMs: options.drainTimeout }, 'draining: not accepting new connections');
      // HTTP connections: Connection: close after the response in flight (idle ones at once), GOAWAY on HTTP/2; what
      // is still open at the deadline is destroyed by the engine (and reset below).
      const httpDrain = http?.shutdown(options.drainTimeout);
      if (tracker.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          tracker.whenEmpty(),
          new Promise<void>((resolve) => {
            drainCut = resolve;
            timer = setTimeout(resolve, options.drainTimeout);
          }),
        ]);
        clearTimeout(timer);
        const cut = tracker.abortAll('REMORA_ERR_DRAIN_TIMEOUT');
        if (cut > 0) log.warn({ connections: cut }, 'drain deadline reached: remaining connections reset');
        // Reset sockets close within a tick or two; the bound only guards against a bug keeping the process alive.
        let guard: NodeJS.Timeout | undefined;
        await Promise.race([tracker.whenEmpty(), new Promise<void>((resolve) => { guard = setTimeout(resolve, 2_000); })]);
        clearTimeout(guard);
        if (tracker.size > 0) log.error({ connections: tracker.size }, 'connections did not close after being reset');
      }
      await httpDrain;
      state = 'stopped';
      services.close();
      http?.close();
      await admin.close();
      removeSignalHandlers();
      log.info({ stats: snapshot() }, 'stopped');
      process.exitCode = 0;
      resolveStopped();
    })();
    return shuttingDown;
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    void shutdown(`received ${signal}`);
  };
  const removeSignalHandlers = (): void => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
  if (ctx.handleSignals ?? true) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  state = 'ready';
  const reg = serviceConfig.registry;
  log.info({
    listeners: bound, admin: formatHostPort(options.adminAddress.host, options.adminAddress.port),
    inboundDelivery: options.inboundDelivery, configFile: ctx.configFile, detectTimeoutMs: options.detectTimeout,
    services: reg.services.map((s) => s.name), registryMode: reg.registry.mode,
    httpEngine: http !== undefined, routes: httpConfig.routes.length,
  }, 'remora proxy ready');

  return { state: () => state, stats: snapshot, shutdown, stopped };
}
