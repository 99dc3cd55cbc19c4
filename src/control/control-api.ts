// The REST/JSON API under /api/v1/ (docs/control-plane.md#api-apiv1): objects by kind (list, get, put, delete), a
// batch (apply), route weights, the whole state, a watch (Server-Sent Events), the sidecars, the CA root and the
// OpenAPI description. Every write goes through ControlStore.commit (embedded or etcd) with the StateValidator: versions checked (409),
// the whole candidate state validated (422, issues naming object, field, expected), then stored. Malformed requests
// are 400 with the reason, nothing stored. Works for HTTP/2 and HTTP/1.1 requests alike (node:http2's compat API).
import type { IncomingHttpHeaders } from 'node:http';
import { backendId } from '../config/route-spec.js';
import { RemoraError, type RemoraErrorCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { KINDS, isObjectKind, kindOfSegment, renderState, type ControlObject, type ObjectIssue, type ObjectKind } from './control-objects.js';
import type { ControlStore } from './control-store.js';
import type { RevisionEvent } from './embedded-store.js';
import { isMetricWindow, METRIC_WINDOWS, type MetricsAggregator, type MetricWindow } from './metrics-aggregator.js';
import { parseMetricsReport } from './metrics-report.js';
import { openApiDocument } from './openapi.js';
import { formatConflict, type Batch, type Change, type ObjectDelete, type ObjectWrite } from './state-batch.js';
import { SidecarSync, type SidecarView } from './sidecar-sync.js';
import type { ConfiguredRoute, SidecarStatusView, StatusAggregator } from './status-aggregator.js';
import { parseStatusReport, type PolicyAction } from './status-report.js';
import type { StateValidator } from './state-validator.js';
import type { Need, TokenSet } from './token-auth.js';

/** The request surface used here (node:http IncomingMessage and node:http2 Http2ServerRequest both have it). */
export interface ApiRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  /** '2.0' on the HTTP/2 listener (a sidecar's sync connection), '1.1' for HTTPS/1.1 clients. */
  readonly httpVersion?: string | undefined;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** The response surface used here (ServerResponse and Http2ServerResponse). */
export interface ApiResponse {
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  write(chunk: string): boolean;
  end(chunk: string): unknown;
  on(event: 'close', listener: () => void): unknown;
}

/** Signs workload CSRs with the mesh CA (control-server.ts). */
export interface CertificateSigner {
  sign(csrPem: string, ttlMs: number): Promise<
    | { readonly ok: true; readonly spiffeId: string; readonly certChain: string; readonly roots: string; readonly serial: string; readonly notAfter: number }
    | { readonly ok: false; readonly expected: string }>;
}

/** Workload certificates: 24 h by default (Istio's), from 1 minute to 24 hours. */
export const DEFAULT_CERT_TTL_S = 86_400;
const MIN_CERT_TTL_S = 60;

export interface ControlApiOptions {
  readonly store: ControlStore;
  readonly validator: StateValidator;
  readonly tokens: TokenSet;
  /** The trust bundle (PEM). */
  readonly trustBundle: () => string;
  readonly certificates: CertificateSigner;
  /** The sync protocol's side: streams, ACK/NACK, /api/v1/sidecars. */
  readonly sync: SidecarSync;
  /** The sidecars' golden metrics (POST /api/v1/sync/metrics in, GET /api/v1/metrics out). */
  readonly metrics: MetricsAggregator;
  /** The sidecars' status reports (POST /api/v1/sync/status in; endpoints, policies, route splits, sidecar status out). */
  readonly status: StatusAggregator;
  /** The clock for the metrics (tests). */
  readonly now?: () => number;
  readonly version: string;
  readonly log: Logger;
  /** SSE keep-alive comment interval (default 15 s). */
  readonly keepAliveMs?: number;
}

export const MAX_BODY = 4 * 1024 * 1024;

/** A sidecar in GET /api/v1/sidecars: its sync state and its last status report (docs/control-plane.md). */
export interface SidecarEntry extends SidecarView {
  /** The /ready verdict; null before its first status report. */
  readonly ready: boolean | null;
  readonly certificate: SidecarStatusView['certificate'];
  /** Each trust-bundle root's expiry, earliest first. */
  readonly rootsNotAfter: readonly string[];
  /** When the last status report arrived (ISO); null before the first. */
  readonly statusAt: string | null;
}

/** What the desired state configures, for the policies' and routes' views (parsed once per revision). */
interface Configured {
  readonly revision: number;
  readonly policies: readonly { readonly name: string; readonly action: PolicyAction }[];
  readonly routes: readonly ConfiguredRoute[];
}
const PREFIX = '/api/v1/';

class HttpError extends Error {
  readonly status: number;
  readonly code: RemoraErrorCode;
  readonly extra: Record<string, unknown>;
  constructor(status: number, code: RemoraErrorCode, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

const malformed = (message: string): HttpError => new HttpError(400, 'REMORA_ERR_CONTROL_REQUEST', message);
const notFound = (message: string): HttpError => new HttpError(404, 'REMORA_ERR_CONTROL_REQUEST', message);

function send(res: ApiResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  res.end(body);
}

function sendJson(res: ApiResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  send(res, status, 'application/json', `${JSON.stringify(value)}\n`, headers);
}

function readBody(req: ApiRequest): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_BODY) over = true;
      else chunks.push(d);
    });
    req.on('end', () => {
      if (over) reject(new HttpError(413, 'REMORA_ERR_CONTROL_REQUEST', `the body is larger than ${MAX_BODY} bytes`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', (err) => { reject(err); });
  });
}

async function readJson(req: ApiRequest): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw malformed(`the body is not JSON (${(err as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw malformed('the body must be a JSON object');
  return value as Record<string, unknown>;
}

/** ?window=1m|5m|15m (default 1m); anything else is a 400 naming what was expected. */
function windowOf(url: URL): MetricWindow {
  const window = url.searchParams.get('window') ?? '1m';
  if (!isMetricWindow(window)) throw malformed(`window: expected one of ${Object.keys(METRIC_WINDOWS).join(', ')}`);
  return window;
}

function versionOf(value: unknown, what: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw malformed(`${what}: expected "version", an integer >= ${min} (the version you read${min === 0 ? '; 0 to create' : ''})`);
  }
  return value;
}

function specOf(value: unknown, what: string): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw malformed(`${what}: expected "spec", an object of the section's keys and string values`);
  }
  return value as Record<string, string>;
}

function kindOf(value: unknown, what: string): ObjectKind {
  if (typeof value !== 'string' || !isObjectKind(value)) throw malformed(`${what}: expected "kind", one of ${Object.keys(KINDS).join(', ')}`);
  return value;
}

function nameOf(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') throw malformed(`${what}: expected "name", a string`);
  return value;
}

function summary(change: Change): { type: string; kind: ObjectKind; name: string; version?: number } {
  return { type: change.type, kind: change.kind, name: change.name, ...(change.object === undefined ? {} : { version: change.object.version }) };
}

function issuesMessage(issues: readonly ObjectIssue[]): string {
  return `the desired state would not be valid (${issues.length} problem${issues.length === 1 ? '' : 's'}); nothing was stored`;
}

export class ControlApi {
  readonly #o: ControlApiOptions;
  readonly #openapi: string;
  /** GET /api/v1/sidecars/watch streams: told when a status report changed a sidecar's readiness or certificate. */
  readonly #statusListeners = new Set<() => void>();
  #configured: Configured | undefined;

  constructor(options: ControlApiOptions) {
    this.#o = options;
    this.#openapi = JSON.stringify(openApiDocument(options.version));
  }

  /** Answer one request (never throws; errors become JSON replies). */
  handle(req: ApiRequest, res: ApiResponse): void {
    this.#route(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        const headers: Record<string, string> = err.status === 401 ? { 'www-authenticate': 'Bearer realm="remora"' } : {};
        sendJson(res, err.status, { error: err.code, message: err.message, ...err.extra }, headers);
        return;
      }
      this.#o.log.error({ err, event: 'control.api.error' }, 'control API request failed');
      try {
        sendJson(res, 500, { error: 'REMORA_ERR_INTERNAL', message: 'internal error (logged)' });
      } catch {
        // headers already sent (a stream)
      }
    });
  }

  #auth(req: ApiRequest, need: Need): void {
    const header = req.headers.authorization;
    const r = this.#o.tokens.check(typeof header === 'string' ? header : undefined, need);
    if (r === 'unauthenticated') {
      throw new HttpError(401, 'REMORA_ERR_CONTROL_AUTH', 'expected Authorization: Bearer TOKEN with a token this control plane accepts');
    }
    if (r === 'forbidden') throw new HttpError(403, 'REMORA_ERR_CONTROL_AUTH', `this token does not have the ${need} scope`);
  }

  async #route(req: ApiRequest, res: ApiResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://control.invalid');
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (!path.startsWith(PREFIX)) throw notFound(`no such path ${path} (the API is under ${PREFIX})`);
    const parts = path.slice(PREFIX.length).split('/').filter((p) => p !== '').map(decodeURIComponent);
    const allow = (methods: string[]): void => {
      if (!methods.includes(method)) throw new HttpError(405, 'REMORA_ERR_CONTROL_REQUEST', `${method} is not allowed on ${path} (allowed: ${methods.join(', ')})`, {});
    };
    const [head, second, third, fourth] = parts;
    if (head === 'openapi.json' && parts.length === 1) {
      allow(['GET']);
      send(res, 200, 'application/json', this.#openapi);
      return;
    }
    if (head === 'ca' && second === 'root' && parts.length === 2) {
      allow(['GET']);
      send(res, 200, 'application/x-pem-file', this.#o.trustBundle());
      return;
    }
    if (head === 'state' && parts.length === 1) {
      allow(['GET']);
      this.#auth(req, 'read');
      const objects = this.#o.store.list();
      if (url.searchParams.get('format') === 'ini') send(res, 200, 'text/plain; charset=utf-8', renderState(objects).text, { 'x-remora-revision': String(this.#o.store.revision) });
      else sendJson(res, 200, { revision: this.#o.store.revision, objects });
      return;
    }
    if (head === 'watch' && parts.length === 1) {
      allow(['GET']);
      this.#auth(req, 'read');
      this.#watch(url, req, res);
      return;
    }
    if (head === 'whoami' && parts.length === 1) {
      allow(['GET']);
      const header = req.headers.authorization;
      const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
      const scope = m?.[1] === undefined ? undefined : this.#o.tokens.scopeOf(m[1]);
      if (scope === undefined) this.#auth(req, 'read');
      sendJson(res, 200, { scope });
      return;
    }
    if (head === 'sidecars' && second === 'watch' && parts.length === 2) {
      allow(['GET']);
      this.#auth(req, 'read');
      this.#watchSidecars(res);
      return;
    }
    if (head === 'sidecars' && parts.length === 1) {
      allow(['GET']);
      this.#auth(req, 'read');
      sendJson(res, 200, { revision: this.#o.store.revision, sidecars: this.#sidecars() });
      return;
    }
    if (head === 'certificates' && parts.length === 1) {
      allow(['POST']);
      this.#auth(req, 'sidecar');
      const body = await readJson(req);
      if (typeof body.csr !== 'string') throw malformed('expected "csr", a PEM certificate request');
      const ttl = body.ttlSeconds ?? DEFAULT_CERT_TTL_S;
      if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < MIN_CERT_TTL_S || ttl > DEFAULT_CERT_TTL_S) {
        throw malformed(`ttlSeconds: expected an integer from ${MIN_CERT_TTL_S} to ${DEFAULT_CERT_TTL_S}`);
      }
      const signed = await this.#o.certificates.sign(body.csr, ttl * 1000);
      if (!signed.ok) {
        const issues: ObjectIssue[] = [{ field: 'csr', expected: signed.expected }];
        throw new HttpError(422, 'REMORA_ERR_CONTROL_INVALID', `the certificate request was refused: expected ${signed.expected}`, { issues });
      }
      this.#o.log.info({ event: 'control.ca.issued', spiffeId: signed.spiffeId, serial: signed.serial, notAfter: new Date(signed.notAfter).toISOString(), httpVersion: req.httpVersion }, 'workload certificate issued');
      sendJson(res, 200, { spiffeId: signed.spiffeId, certChain: signed.certChain, roots: signed.roots, serial: signed.serial, notAfter: new Date(signed.notAfter).toISOString() });
      return;
    }
    if (head === 'sync' && parts.length === 1) {
      allow(['GET']);
      this.#auth(req, 'sidecar');
      this.#sync(url, res);
      return;
    }
    if (head === 'sync' && second === 'ack' && parts.length === 2) {
      allow(['POST']);
      this.#auth(req, 'sidecar');
      const body = await readJson(req);
      const name = nameOf(body.name, 'ack');
      const identity = typeof body.identity === 'string' ? body.identity : '';
      const version = versionOf(body.version, 'ack', 0);
      if (body.error !== undefined && typeof body.error !== 'string') throw malformed('ack: expected "error", a string (a NACK) or absent (an ACK)');
      const known = this.#o.sync.ack({
        name, identity, version, ...(typeof body.nonce === 'string' ? { nonce: body.nonce } : {}), ...(typeof body.error === 'string' ? { error: body.error.slice(0, 8192) } : {}),
      });
      if (!known) throw notFound(`no sidecar ${name} (${identity === '' ? 'no identity' : identity}) is subscribed`);
      sendJson(res, 200, { ok: true });
      return;
    }
    if (head === 'sync' && second === 'metrics' && parts.length === 2) {
      allow(['POST']);
      this.#auth(req, 'sidecar');
      const report = parseMetricsReport(await readJson(req));
      if ('expected' in report) throw malformed(`expected ${report.expected}`);
      const r = this.#o.metrics.ingest(SidecarSync.key(report.name, report.identity), report, (this.#o.now ?? Date.now)());
      if (r === 'too-many-sidecars') throw new HttpError(429, 'REMORA_ERR_CONTROL_REQUEST', 'too many sidecars report metrics; this report was dropped');
      sendJson(res, 200, { ok: true, result: r });
      return;
    }
    if (head === 'sync' && second === 'status' && parts.length === 2) {
      allow(['POST']);
      this.#auth(req, 'sidecar');
      const report = parseStatusReport(await readJson(req));
      if ('expected' in report) throw malformed(`expected ${report.expected}`);
      const r = this.#o.status.ingest(SidecarSync.key(report.name, report.identity), report, this.#now());
      if (r.result === 'too-many-sidecars') throw new HttpError(429, 'REMORA_ERR_CONTROL_REQUEST', 'too many sidecars report status; this report was dropped');
      if (r.result === 'ok' && r.changed) this.#statusChanged();
      sendJson(res, 200, { ok: true, result: r.result });
      return;
    }
    if (head === 'endpoints' && parts.length === 1) {
      allow(['GET']);
      this.#auth(req, 'read');
      const service = url.searchParams.get('service');
      sendJson(res, 200, { endpoints: this.#o.status.endpoints(this.#now(), service === null || service === '' ? undefined : service) });
      return;
    }
    if (head === 'policies' && second === 'stats' && parts.length === 2) {
      allow(['GET']);
      this.#auth(req, 'read');
      const window = windowOf(url);
      sendJson(res, 200, { window, policies: this.#o.status.policies(window, this.#now(), this.#configuredState().policies) });
      return;
    }
    // Before the objects: GET /api/v1/routes/split is the live split, not a route named "split" (see the docs).
    if (head === 'routes' && second === 'split' && parts.length === 2 && method === 'GET') {
      this.#auth(req, 'read');
      const window = windowOf(url);
      sendJson(res, 200, { window, routes: this.#o.status.routes(window, this.#now(), this.#configuredState().routes) });
      return;
    }
    if (head === 'metrics' && parts.length === 1) {
      allow(['GET']);
      this.#auth(req, 'read');
      sendJson(res, 200, this.#o.metrics.query(windowOf(url), this.#now()));
      return;
    }
    if (head === 'apply' && parts.length === 1) {
      allow(['POST']);
      this.#auth(req, 'write');
      const body = await readJson(req);
      await this.#commit(res, this.#batchOf(body), url.searchParams.get('dryRun') === 'true');
      return;
    }
    const kind = head === undefined ? undefined : kindOfSegment(head);
    if (kind === undefined) throw notFound(`no such path ${path}`);
    if (kind === 'route' && second !== undefined && third === 'weights' && fourth === undefined) {
      allow(['POST']);
      this.#auth(req, 'write');
      await this.#weights(second, req, res);
      return;
    }
    if (third !== undefined) throw notFound(`no such path ${path}`);
    if (second === undefined) {
      allow(['GET']);
      this.#auth(req, 'read');
      sendJson(res, 200, { revision: this.#o.store.revision, items: this.#o.store.list(kind) });
      return;
    }
    allow(['GET', 'PUT', 'DELETE']);
    if (method === 'GET') {
      this.#auth(req, 'read');
      const o = this.#o.store.get(kind, second);
      if (o === undefined) throw notFound(`${kind} ${second} does not exist`);
      sendJson(res, 200, o);
      return;
    }
    this.#auth(req, 'write');
    if (method === 'PUT') {
      const body = await readJson(req);
      const write: ObjectWrite = { kind, name: second, spec: specOf(body.spec, `${kind} ${second}`), version: versionOf(body.version, `${kind} ${second}`, 0) };
      await this.#commit(res, { writes: [write], deletes: [] }, url.searchParams.get('dryRun') === 'true', write);
      return;
    }
    const v = url.searchParams.get('version');
    if (this.#o.store.get(kind, second) === undefined) throw notFound(`${kind} ${second} does not exist`);
    const version = versionOf(v === null || !/^\d+$/.test(v) ? undefined : Number(v), `${kind} ${second}: query parameter`, 1);
    await this.#commit(res, { writes: [], deletes: [{ kind, name: second, version }] }, false);
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  /** The sidecars' sync state with their last status (ready, certificate, roots, when). */
  #sidecars(): SidecarEntry[] {
    return this.#o.sync.list().map((s) => {
      const st = this.#o.status.sidecar(SidecarSync.key(s.name, s.identity));
      return {
        ...s, ready: st?.ready ?? null, certificate: st?.certificate ?? null, rootsNotAfter: st?.rootsNotAfter ?? [], statusAt: st?.statusAt ?? null,
      };
    });
  }

  /** A status report changed a sidecar's readiness or certificate: the sidecar watchers get the list (once per tick). */
  #statusChanged(): void {
    if (this.#statusListeners.size === 0) return;
    const listeners = [...this.#statusListeners];
    setImmediate(() => { for (const l of listeners) if (this.#statusListeners.has(l)) l(); });
  }

  /** The desired state's policies (with their actions) and routes (with their weights), parsed once per revision. */
  #configuredState(): Configured {
    const revision = this.#o.store.revision;
    if (this.#configured?.revision === revision) return this.#configured;
    const v = this.#o.validator.validate(this.#o.store.list());
    this.#configured = !v.ok ? { revision, policies: [], routes: [] } : {
      revision,
      policies: v.definitions.authorizations.map((p) => ({ name: p.name, action: p.action })),
      routes: v.definitions.routes.map((r) => ({ route: r.name, service: r.service, backends: r.backends.map((b) => ({ backend: backendId(b), weight: b.weight })) })),
    };
    return this.#configured;
  }

  #batchOf(body: Record<string, unknown>): Batch {
    const writes: ObjectWrite[] = [];
    const deletes: ObjectDelete[] = [];
    const list = (v: unknown, what: string): unknown[] => {
      if (v === undefined) return [];
      if (!Array.isArray(v)) throw malformed(`expected "${what}", an array`);
      return v;
    };
    for (const [n, w] of list(body.writes, 'writes').entries()) {
      const x = (w ?? {}) as Record<string, unknown>;
      const at = `writes[${n}]`;
      const kind = kindOf(x.kind, at);
      const name = nameOf(x.name, at);
      writes.push({ kind, name, spec: specOf(x.spec, `${at} (${kind} ${name})`), version: versionOf(x.version, `${at} (${kind} ${name})`, 0) });
    }
    for (const [n, d] of list(body.deletes, 'deletes').entries()) {
      const x = (d ?? {}) as Record<string, unknown>;
      const at = `deletes[${n}]`;
      const kind = kindOf(x.kind, at);
      const name = nameOf(x.name, at);
      deletes.push({ kind, name, version: versionOf(x.version, `${at} (${kind} ${name})`, 1) });
    }
    if (writes.length + deletes.length === 0) throw malformed('expected "writes" and/or "deletes" with at least one object');
    return { writes, deletes };
  }

  async #commit(res: ApiResponse, batch: Batch, dryRun: boolean, single?: ObjectWrite): Promise<void> {
    const store = this.#o.store;
    let r: Awaited<ReturnType<ControlStore['commit']>>;
    try {
      r = await store.commit(batch, (objects) => {
        const v = this.#o.validator.validate(objects);
        return v.ok ? [] : v.issues;
      }, { dryRun });
    } catch (err) {
      // The store cannot be reached or followed (etcd without quorum, ...): nothing was promised stored.
      if (err instanceof RemoraError && err.code === 'REMORA_ERR_CONTROL_STORE') throw new HttpError(503, 'REMORA_ERR_CONTROL_STORE', err.message);
      throw err;
    }
    if (!r.ok) {
      if (r.status === 409) {
        throw new HttpError(409, 'REMORA_ERR_CONTROL_CONFLICT', r.conflicts.map(formatConflict).join('; '), { conflicts: r.conflicts });
      }
      throw new HttpError(r.status, r.status === 422 ? 'REMORA_ERR_CONTROL_INVALID' : 'REMORA_ERR_CONTROL_REQUEST', issuesMessage(r.issues), { issues: r.issues });
    }
    if (!dryRun && r.changes.length > 0) {
      this.#o.log.info({ event: 'control.committed', revision: r.revision, changes: r.changes.map(summary) }, 'desired state changed');
    }
    const object: ControlObject | undefined = single === undefined ? undefined : store.get(single.kind, single.name);
    sendJson(res, 200, { revision: r.revision, dryRun, changes: r.changes.map(summary), ...(object === undefined || dryRun ? {} : { object }) });
  }

  async #weights(route: string, req: ApiRequest, res: ApiResponse): Promise<void> {
    const body = await readJson(req);
    const current = this.#o.store.get('route', route);
    if (current === undefined) throw notFound(`route ${route} does not exist`);
    const version = versionOf(body.version, `route ${route}`, 1);
    const weights = body.weights;
    if (weights === null || typeof weights !== 'object' || Array.isArray(weights)) throw malformed('expected "weights", an object of BACKEND: WEIGHT');
    const state = this.#o.validator.validate(this.#o.store.list());
    if (!state.ok) throw new HttpError(500, 'REMORA_ERR_INTERNAL', 'the stored state does not validate (changed validator?)', { issues: state.issues });
    const spec = state.definitions.routes.find((r) => r.name === route);
    const ids = (spec?.backends ?? []).map((b) => backendId(b));
    const given = weights as Record<string, unknown>;
    const issues: ObjectIssue[] = [];
    const at = { kind: 'route' as const, name: route, field: 'backends' };
    for (const [id, w] of Object.entries(given)) {
      if (!ids.includes(id)) issues.push({ ...at, value: id, expected: `one of the route's backends (${ids.join(', ')})` });
      else if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 10_000) issues.push({ ...at, value: `${id}=${String(w)}`, expected: 'an integer weight 0-10000' });
    }
    const missing = ids.filter((id) => !Object.hasOwn(given, id));
    if (missing.length > 0) issues.push({ ...at, expected: `a weight for every backend of the route (missing: ${missing.join(', ')})` });
    if (issues.length > 0) throw new HttpError(422, 'REMORA_ERR_CONTROL_INVALID', issuesMessage(issues), { issues });
    const backends = ids.map((id) => `${id}=${String(given[id])}`).join(', ');
    const write: ObjectWrite = { kind: 'route', name: route, spec: { ...current.spec, backends }, version };
    await this.#commit(res, { writes: [write], deletes: [] }, false, write);
  }

  #sync(url: URL, res: ApiResponse): void {
    const name = url.searchParams.get('name') ?? '';
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(name)) throw malformed('sync: expected ?name=POD (the pod name: letters, digits, ".", "_", "-")');
    const identity = url.searchParams.get('identity') ?? '';
    if (identity.length > 2048) throw malformed('sync: identity: expected a SPIFFE ID');
    const versionText = url.searchParams.get('version') ?? '0';
    if (!/^\d+$/.test(versionText)) throw malformed('sync: version: expected the version the sidecar applied (an integer >= 0)');
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    const disconnect = this.#o.sync.connect(name, identity, Number(versionText), res);
    const timer = setInterval(() => { res.write(': keep-alive\n\n'); }, this.#o.keepAliveMs ?? 15_000);
    timer.unref();
    res.on('close', () => {
      disconnect();
      clearInterval(timer);
    });
  }

  /** SSE: a `sidecars` event with the whole list now and after every change of a sidecar's sync state. */
  #watchSidecars(res: ApiResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    const write = (): void => {
      res.write(`event: sidecars\ndata: ${JSON.stringify({ revision: this.#o.store.revision, sidecars: this.#sidecars() })}\n\n`);
    };
    write();
    const offSync = this.#o.sync.subscribe(write);
    this.#statusListeners.add(write);
    const off = (): void => {
      offSync();
      this.#statusListeners.delete(write);
    };
    const timer = setInterval(() => { res.write(': keep-alive\n\n'); }, this.#o.keepAliveMs ?? 15_000);
    timer.unref();
    res.on('close', () => {
      off();
      clearInterval(timer);
    });
  }

  #watch(url: URL, req: ApiRequest, res: ApiResponse): void {
    const store = this.#o.store;
    const sinceText = url.searchParams.get('since') ?? (typeof req.headers['last-event-id'] === 'string' ? req.headers['last-event-id'] : null);
    let since = store.revision;
    if (sinceText !== null) {
      if (!/^\d+$/.test(sinceText)) throw malformed('since: expected a revision (an integer >= 0)');
      since = Number(sinceText);
    }
    const backlog = store.eventsSince(since);
    if (backlog === undefined) {
      throw new HttpError(410, 'REMORA_ERR_CONTROL_REQUEST', `revision ${since} is older than the history kept: list again (GET /api/v1/state), then watch from its revision`);
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-remora-revision': store.revision });
    const write = (e: RevisionEvent): void => {
      const data = JSON.stringify({ revision: e.revision, changes: e.changes.map((c) => ({ ...summary(c), ...(c.object === undefined ? {} : { object: c.object }) })) });
      res.write(`id: ${e.revision}\nevent: change\ndata: ${data}\n\n`);
    };
    res.write(`event: hello\ndata: ${JSON.stringify({ revision: store.revision })}\n\n`);
    for (const e of backlog) write(e);
    const off = store.subscribe(write);
    const timer = setInterval(() => { res.write(': keep-alive\n\n'); }, this.#o.keepAliveMs ?? 15_000);
    timer.unref();
    res.on('close', () => {
      off();
      clearInterval(timer);
    });
  }
}
