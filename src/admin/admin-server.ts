// Admin listener (node:http, loopback by default). Nothing here is on the data path.
//   GET /ready       -> 200 "ready" | 503 "starting" | 503 "draining" (text/plain)
//   GET /stats       -> 200 JSON (src/admin/stats-json.ts ProxyStatsJson)
//   GET /stats/prometheus -> 200 the Prometheus exposition (src/admin/prometheus-endpoint.ts, src/telemetry/)
//   GET /config_dump -> 200 JSON: the snapshot in force, its version, hash, source and load time (secrets redacted)
//   GET /certs       -> 200 JSON: the workload identity, its certificates and trust bundle with their expiry
//   /routes, /routes/NAME, POST /routes/NAME/weights -> src/admin/route-weights.ts
//   any other path -> 404; a known path with a method other than GET/HEAD -> 405 with Allow.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RemoraError, isSystemError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { ProxyStatsJson } from './stats-json.js';
import { PROMETHEUS_PATH, servePrometheus, type PrometheusExposition } from './prometheus-endpoint.js';
import { handleRoutesRequest, isRoutesPath, type RouteAdmin } from './route-weights.js';

export type ProxyState = 'starting' | 'ready' | 'draining' | 'stopped';

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly state: () => ProxyState;
  readonly stats: () => ProxyStatsJson;
  readonly log: Logger;
  /** The route table's owner (HTTP layer), for /routes; absent: /routes answers 404. */
  readonly routes?: RouteAdmin | undefined;
  /** The body of /config_dump. */
  readonly configDump: () => unknown;
  /** The body of /certs (absent: 404). */
  readonly certs?: (() => unknown) | undefined;
  /** GET /stats/prometheus (absent: 404). */
  readonly prometheus?: PrometheusExposition | undefined;
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
      try {
        this.#handle(req, res);
      } catch (err) {
        // A bug in a handler fails that request (500), never the proxy.
        this.#opts.log.error({ event: 'admin.error', err, path: req.url, code: 'REMORA_ERR_INTERNAL' }, 'admin request failed');
        if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
        else res.destroy();
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

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (isRoutesPath(path)) {
      handleRoutesRequest(req, res, path, this.#opts.routes);
      return;
    }
    const prometheus = path === PROMETHEUS_PATH ? this.#opts.prometheus : undefined;
    if (path !== '/ready' && path !== '/stats' && path !== '/config_dump' && !(path === '/certs' && this.#opts.certs !== undefined)
      && prometheus === undefined) {
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: ALLOW });
      return;
    }
    if (prometheus !== undefined) {
      servePrometheus(req, res, prometheus, this.#opts.log);
      return;
    }
    if (path === '/ready') {
      const state = this.#opts.state();
      if (state === 'ready') send(res, 200, 'text/plain; charset=utf-8', 'ready');
      else send(res, 503, 'text/plain; charset=utf-8', state === 'stopped' ? 'draining' : state);
      return;
    }
    if (path === '/config_dump') {
      send(res, 200, 'application/json', JSON.stringify(this.#opts.configDump(), null, 2));
      return;
    }
    if (path === '/certs' && this.#opts.certs !== undefined) {
      send(res, 200, 'application/json', JSON.stringify(this.#opts.certs(), null, 2));
      return;
    }
    send(res, 200, 'application/json', JSON.stringify(this.#opts.stats()));
  }
}
