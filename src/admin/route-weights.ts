// Admin API for routes (loopback admin listener, not on the data path):
//   GET  /routes                     -> 200 {"version":N,"routes":[{name, service, order, source, weights}]}
//   GET  /routes/NAME                -> 200 {name, service, order, source, weights} | 404
//   POST /routes/NAME/weights        body "web-v1=50,web-v2=50" (every backend of the route, integer weights)
//                                    -> 200 {"route":NAME,"version":N,"weights":{...}}: the next request uses them
//                                    -> 400 one line "bad weights: <reason>": nothing changed, the old table serves
//                                    -> 404 unknown route; 413 body over 4 KiB; 405 other methods (with Allow)
// The runtime manager implements RouteAdmin (src/proxy/runtime-manager.ts): a weight change is a new snapshot.
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface RouteAdminView {
  readonly name: string;
  readonly service: string;
  readonly order: number;
  readonly source: string | undefined;
  /** By backend id ("web-v1", "web/v2"). */
  readonly weights: Readonly<Record<string, number>>;
}

type Answer<T> = T | Promise<T>;

/** The runtime manager, or with `workers` > 1 the primary (answers later: it asks the workers). */
export interface RouteAdmin {
  routes(): Answer<{ readonly version: number; readonly routes: readonly RouteAdminView[] }>;
  route(name: string): Answer<RouteAdminView | undefined>;
  setWeights(name: string, text: string): Answer<
    | { readonly ok: true; readonly route: RouteAdminView; readonly version: number }
    | { readonly ok: false; readonly status: 400 | 404; readonly error: string }>;
}

/** Largest accepted POST body. */
export const MAX_WEIGHTS_BODY = 4096;

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  res.end(body);
}

const text = (res: ServerResponse, status: number, line: string, headers: Record<string, string> = {}): void => {
  send(res, status, 'text/plain; charset=utf-8', `${line.replace(/[\r\n]+/g, ' ')}\n`, headers);
};
const json = (res: ServerResponse, status: number, value: unknown): void => {
  send(res, status, 'application/json', JSON.stringify(value));
};

/** True when `path` belongs to this API (then the response is handled here). */
export function isRoutesPath(path: string): boolean {
  return path === '/routes' || path.startsWith('/routes/');
}

function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > limit) over = true;
      else chunks.push(d);
    });
    req.on('end', () => { resolve(over ? undefined : Buffer.concat(chunks).toString('utf8')); });
    req.on('error', () => { resolve(undefined); });
  });
}

/** Answers now, or returns the promise of the answer (a rejection is the caller's 500). */
export function handleRoutesRequest(req: IncomingMessage, res: ServerResponse, path: string, admin: RouteAdmin | undefined): Promise<void> | undefined {
  if (admin === undefined) {
    text(res, 404, 'no HTTP routing in this proxy (http_engine = off)');
    return undefined;
  }
  const parts = path.split('/').slice(2).map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  const method = req.method ?? 'GET';
  const [name, action, ...more] = parts;
  if (more.length > 0 || (action !== undefined && action !== 'weights') || name === '') {
    text(res, 404, 'not found');
    return undefined;
  }
  if (action === 'weights') {
    if (method !== 'POST' && method !== 'PUT') {
      text(res, 405, 'method not allowed (POST the weights)', { allow: 'POST, PUT' });
      return undefined;
    }
    return readBody(req, MAX_WEIGHTS_BODY).then(async (body) => {
      if (body === undefined) {
        text(res, 413, `bad weights: the body is limited to ${MAX_WEIGHTS_BODY} bytes`);
        return;
      }
      const r = await admin.setWeights(name as string, body);
      if (!r.ok) {
        text(res, r.status, r.status === 404 ? r.error : `bad weights: ${r.error}`);
        return;
      }
      json(res, 200, { route: r.route.name, version: r.version, weights: r.route.weights });
    });
  }
  if (method !== 'GET' && method !== 'HEAD') {
    text(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
    return undefined;
  }
  const answer = name === undefined ? admin.routes() : admin.route(name);
  const reply = (value: unknown): void => {
    if (value === undefined) text(res, 404, `no route named "${name ?? ''}"`);
    else json(res, 200, value);
  };
  if (answer instanceof Promise) return answer.then(reply);
  reply(answer);
  return undefined;
}
