// Admin listener (node:http, loopback by default). Nothing here is on the data path.
//   GET /ready       -> 200 "ready" | 503 "starting" | 503 "draining" | 503 "not ready: <why>" (text/plain; the
//                       redirect probes, src/proxy/readiness.ts)
//   POST /drain      -> 200: the drain begins (as on SIGTERM) but the proxy does not exit
//   POST /quitquitquit -> 200: drain, then exit (as SIGTERM)
//   GET /stats       -> 200 JSON (src/admin/stats-json.ts ProxyStatsJson)
//   GET /stats/prometheus -> 200 the Prometheus exposition (src/admin/prometheus-endpoint.ts, src/telemetry/)
//   GET /config_dump -> 200 JSON: the snapshot in force, its version, hash, source and load time (secrets redacted)
//   GET /certs       -> 200 JSON: the workload identity, its certificates and trust bundle with their expiry
//   /routes, /routes/NAME, POST /routes/NAME/weights -> src/admin/route-weights.ts
//   GET /debug/connections -> 200 JSON: every live connection (src/l4/live-connection.ts), read at request time
//   GET /debug/explain?dst=IP:PORT&... -> 200 JSON: the path of a connection or request (src/proxy/explain/);
//                    400 JSON { error, issues } for a bad query
//   any other path -> 404; a known path with a method other than GET/HEAD -> 405 with Allow.
//   a body that only a worker can give (workers > 1) while none is ready -> 503 "unavailable: <why>", Retry-After: 1
//   (the handler throws REMORA_ERR_WORKER); any other failure of a handler -> 500.
// Every request other than GET/HEAD (the ones that change something) is refused with 403 unless it comes from a
// loopback address: admin_address may be set to a non-loopback address for /ready and /stats.
import { isIPv4 } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RemoraError, isSystemError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { ProxyStatsJson } from './stats-json.js';
import { PROMETHEUS_PATH, servePrometheus, type PrometheusExposition } from './prometheus-endpoint.js';
import { handleRoutesRequest, isRoutesPath, type RouteAdmin } from './route-weights.js';

export type ProxyState = 'starting' | 'ready' | 'draining' | 'stopped';

/** A body now, or later: with `workers` > 1 the primary asks every worker first (src/proxy/workers/). */
export type Answer<T> = T | Promise<T>;

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly state: () => ProxyState;
  readonly stats: () => Answer<ProxyStatsJson>;
  readonly log: Logger;
  /** The route table's owner (HTTP layer), for /routes; absent: /routes answers 404. */
  readonly routes?: RouteAdmin | undefined;
  /** The body of /config_dump. */
  readonly configDump: () => Answer<unknown>;
  /** The body of /certs (absent: 404). */
  readonly certs?: (() => Answer<unknown>) | undefined;
  /** Readiness with its reason (absent: /ready follows state() alone). */
  readonly readiness?: (() => Answer<{ readonly ready: boolean; readonly reason: string }>) | undefined;
  /** POST /drain: begin the drain without exiting (absent: 404). */
  readonly drain?: (() => void) | undefined;
  /** POST /quitquitquit: drain, then exit (absent: 404). */
  readonly quit?: (() => void) | undefined;
  /** The body of /debug/connections (absent: 404). */
  readonly connections?: (() => Answer<unknown>) | undefined;
  /** /debug/explain: the query string's parameters -> status and JSON body (absent: 404). */
  readonly explain?: ((search: URLSearchParams) => Answer<{ readonly status: number; readonly body: unknown }>) | undefined;
  /** GET /stats/prometheus (absent: 404). */
  readonly prometheus?: PrometheusExposition | undefined;
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped form: the peers allowed to change something over the admin API. */
export function isLoopbackPeer(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.toLowerCase();
  const v4 = a.startsWith('::ffff:') ? a.slice(7) : a;
  if (isIPv4(v4)) return v4.startsWith('127.');
  return a === '::1' || a === '0:0:0:0:0:0:0:1';
}

const ALLOW = 'GET, HEAD';

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  res.end(body);
}

export class AdminServer {
  readonly #opts: AdminServerOptions;
  readonly #server: Server;

  constructor(opts: AdminServerOptions) {
    this.#opts = opts;
    this.#server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
      const failed = (err: unknown): void => {
        // No worker to answer yet (workers > 1, starting or restarting): 503, as a proxy not ready yet. A bug in a
        // handler fails that request (500), never the proxy.
        const unavailable = err instanceof RemoraError && err.code === 'REMORA_ERR_WORKER';
        if (unavailable) this.#opts.log.warn({ event: 'admin.unavailable', err: err.message, path: req.url, code: 'REMORA_ERR_WORKER' }, 'admin request answered 503');
        else this.#opts.log.error({ event: 'admin.error', err, path: req.url, code: 'REMORA_ERR_INTERNAL' }, 'admin request failed');
        if (res.headersSent) res.destroy();
        else if (unavailable) send(res, 503, 'text/plain; charset=utf-8', `unavailable: ${err.message}\n`, { 'retry-after': '1' });
        else send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      };
      try {
        const done = this.#handle(req, res);
        if (done !== undefined) done.catch(failed);
      } catch (err) {
        failed(err);
      }
    });
    this.#server.on('clientError', (_err, socket) => { socket.destroy(); });
  }

  listen(): Promise<AddressInfo> {
    const { host, port } = this.#opts;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        const code = isSystemError(err) ? err.code : 'unknown';
        reject(new RemoraError('REMORA_ERR_LISTEN', `the admin listener cannot bind ${host}:${port} (${code})`, { cause: err }));
      };
      this.#server.once('error', onError);
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (err: Error) => this.#opts.log.warn({ err, listener: 'admin' }, 'admin listener error'));
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** Stop listening and close every admin connection (idle or not). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  /** Answers now, or returns the promise of a later answer. */
  #handle(req: IncomingMessage, res: ServerResponse): Promise<void> | undefined {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (req.method !== 'GET' && req.method !== 'HEAD' && !isLoopbackPeer(req.socket.remoteAddress)) {
      this.#opts.log.warn({ event: 'admin.refused', method: req.method, path, peer: req.socket.remoteAddress },
        'admin request refused: only GET and HEAD are accepted from a non-loopback peer');
      send(res, 403, 'text/plain; charset=utf-8', `forbidden: ${req.method ?? ''} ${path} is accepted only from loopback\n`);
      return;
    }
    if ((path === '/drain' && this.#opts.drain !== undefined) || (path === '/quitquitquit' && this.#opts.quit !== undefined)) {
      this.#lifecycle(req, res, path);
      return undefined;
    }
    if (isRoutesPath(path)) return handleRoutesRequest(req, res, path, this.#opts.routes);
    const debug = (path === '/debug/connections' && this.#opts.connections !== undefined) || (path === '/debug/explain' && this.#opts.explain !== undefined);
    const prometheus = path === PROMETHEUS_PATH ? this.#opts.prometheus : undefined;
    if (path !== '/ready' && path !== '/stats' && path !== '/config_dump' && !(path === '/certs' && this.#opts.certs !== undefined) && !debug
      && prometheus === undefined) {
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return undefined;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: ALLOW });
      return undefined;
    }
    if (prometheus !== undefined) {
      servePrometheus(req, res, prometheus, this.#opts.log);
      return undefined;
    }
    return this.#answer(req, res, path, q < 0 ? '' : url.slice(q + 1));
  }

  /** The GET endpoints whose bodies the proxy gives (now, or later with workers). */
  async #answer(_req: IncomingMessage, res: ServerResponse, path: string, query: string): Promise<void> {
    if (path === '/ready') {
      const r = await this.#opts.readiness?.();
      if (r !== undefined) {
        send(res, r.ready ? 200 : 503, 'text/plain; charset=utf-8', r.ready ? 'ready' : r.reason);
        return;
      }
      const state = this.#opts.state();
      if (state === 'ready') send(res, 200, 'text/plain; charset=utf-8', 'ready');
      else send(res, 503, 'text/plain; charset=utf-8', state === 'stopped' ? 'draining' : state);
      return;
    }
    if (path === '/config_dump') {
      send(res, 200, 'application/json', JSON.stringify(await this.#opts.configDump(), null, 2));
      return;
    }
    if (path === '/debug/connections' && this.#opts.connections !== undefined) {
      send(res, 200, 'application/json', JSON.stringify(await this.#opts.connections(), null, 2));
      return;
    }
    if (path === '/debug/explain' && this.#opts.explain !== undefined) {
      const r = await this.#opts.explain(new URLSearchParams(query));
      send(res, r.status, 'application/json', JSON.stringify(r.body, null, 2));
      return;
    }
    if (path === '/certs' && this.#opts.certs !== undefined) {
      send(res, 200, 'application/json', JSON.stringify(await this.#opts.certs(), null, 2));
      return;
    }
    send(res, 200, 'application/json', JSON.stringify(await this.#opts.stats()));
  }

  /** POST /drain and POST /quitquitquit (loopback peers only, checked above). The answer is sent before acting. */
  #lifecycle(req: IncomingMessage, res: ServerResponse, path: '/drain' | '/quitquitquit' | string): void {
    if (req.method !== 'POST') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'POST' });
      return;
    }
    req.resume();
    const act = path === '/drain' ? this.#opts.drain : this.#opts.quit;
    const body = path === '/drain' ? 'draining\n' : 'OK: draining, then exiting\n';
    res.once('finish', () => { setImmediate(() => act?.()); });
    send(res, 200, 'text/plain; charset=utf-8', body, { connection: 'close' });
  }
}
