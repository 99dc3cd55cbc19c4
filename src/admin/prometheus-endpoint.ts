// GET /stats/prometheus: the Prometheus exposition, written in chunks with backpressure (the writer gives the event
// loop a turn between slices, src/telemetry/exposition.ts), on the admin listener and, when [proxy] metrics_address
// asks for it, on a listener of its own that serves nothing else (a Prometheus outside the pod scrapes it without
// reaching the admin API, like Envoy's :15090 in Istio).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isSystemError, RemoraError } from '../core/errors.js';
import type { Logger } from '../core/log.js';

export const PROMETHEUS_PATH = '/stats/prometheus';

/** How the exposition is produced: its content type, and a writer that calls `out` per chunk. */
export interface PrometheusExposition {
  readonly contentType: string;
  write(out: (chunk: string) => void | Promise<void>): Promise<number>;
}

/** Answer a GET/HEAD of the exposition on `res`. */
export function servePrometheus(req: IncomingMessage, res: ServerResponse, exposition: PrometheusExposition, log: Logger): void {
  res.writeHead(200, { 'content-type': exposition.contentType, 'cache-control': 'no-store' });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  let gone = false;
  res.once('close', () => { gone = true; });
  const out = (chunk: string): void | Promise<void> => {
    if (gone) throw new Error('the scraper went away');
    if (res.write(chunk)) return undefined;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.once('drain', done);
      res.once('close', done);
    });
  };
  exposition.write(out).then(() => { res.end(); }, (err: unknown) => {
    if (!gone) log.warn({ event: 'metrics.scrape-failed', err }, 'writing the metrics exposition failed');
    res.destroy();
  });
}

/** The metrics_address listener: GET /stats/prometheus only. */
export class MetricsServer {
  readonly #server: Server;
  readonly #host: string;
  readonly #port: number;

  constructor(o: { readonly host: string; readonly port: number; readonly exposition: PrometheusExposition; readonly log: Logger }) {
    this.#host = o.host;
    this.#port = o.port;
    this.#server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
      const url = req.url ?? '/';
      const path = url.split('?', 1)[0];
      if (path !== PROMETHEUS_PATH) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      } else if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD' }).end('method not allowed\n');
      } else {
        servePrometheus(req, res, o.exposition, o.log);
      }
    });
    this.#server.on('clientError', (_err, socket) => { socket.destroy(); });
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        const code = isSystemError(err) ? err.code : 'unknown';
        reject(new RemoraError('REMORA_ERR_LISTEN', `the metrics listener cannot bind ${this.#host}:${this.#port} (${code})`, { cause: err }));
      };
      this.#server.once('error', onError);
      this.#server.listen({ host: this.#host, port: this.#port }, () => {
        this.#server.off('error', onError);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
