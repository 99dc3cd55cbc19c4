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
import { ConnectionHandler, ConnectionTracker } from './connection-handler.js';
import { INBOUND_SOURCE_V6, type Direction } from './route.js';

export type ProxyOptions = OptionValues<typeof proxyOptionSpecs>;

export interface ProxyContext {
  readonly log: Logger;
  readonly document?: IniDocument | undefined;
  readonly configFile?: string | undefined;
  /** Tests inject a reader; by default the native addon is loaded. */
  readonly readOriginalDst?: OriginalDstReader;
  /** Install SIGTERM/SIGINT handlers (default true). */
  readonly handleSignals?: boolean;
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
  const readOriginalDst = ctx.readOriginalDst ?? createOriginalDstReader();

  let state: ProxyState = 'starting';
  const stats = new Stats();
  const tracker = new ConnectionTracker();
  let connSeq = 0;
  const nextId = (): number => ++connSeq;

  const admin = new AdminServer({
    host: options.adminAddress.host, port: options.adminAddress.port, log,
    state: () => state, stats: () => stats.snapshot(state),
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
      route: { inboundDelivery: options.inboundDelivery },
      connectTimeoutMs: options.connectTimeout, idleTimeoutMs: options.idleTimeout, log, nextId,
    }),
  }));

  try {
    await admin.listen();
    for (const l of listeners) await l.listen();
    dropPrivileges(options, log);
  } catch (err) {
    for (const l of listeners) l.close();
    await admin.close();
    throw err;
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
      state = 'stopped';
      await admin.close();
      removeSignalHandlers();
      log.info({ stats: stats.snapshot(state) }, 'stopped');
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
  log.info({
    listeners: bound, admin: formatHostPort(options.adminAddress.host, options.adminAddress.port),
    inboundDelivery: options.inboundDelivery, configFile: ctx.configFile,
  }, 'remora proxy ready');

  return { state: () => state, stats: () => stats.snapshot(state), shutdown, stopped };
}
