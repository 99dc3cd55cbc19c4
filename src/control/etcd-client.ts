// A small etcd v3 client over etcd's own HTTP/JSON gateway (POST /v3/kv/range, /v3/kv/txn, /v3/watch; keys and
// values base64), with node:http and no dependency. Why not the gRPC client (npm etcd3): the gateway ships with every
// etcd 3.4+, the four calls remora needs are plain JSON, and failover is ours to see and test: a request that cannot
// reach an endpoint (connection refused/reset, timeout, 5xx) is tried on the next one; a watch that breaks is reopened
// on the next endpoint from the revision after the last one it delivered, so no revision is lost or repeated.
// Only http:// endpoints (no client TLS or auth yet: docs/control-plane.md#stores).
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { RemoraError } from '../core/errors.js';

export interface EtcdEndpoint { readonly host: string; readonly port: number }

export interface EtcdKv {
  readonly key: string;
  readonly value: string;
  readonly modRevision: number;
  readonly createRevision: number;
}

export interface EtcdEvent {
  readonly type: 'put' | 'delete';
  readonly kv: EtcdKv;
}

/** One comparison of a transaction: the key's mod revision (0 when absent) or create revision equals a number. */
export interface EtcdCompare { readonly key: string; readonly target: 'mod' | 'create'; readonly revision: number }

export type EtcdOp =
  | { readonly put: { readonly key: string; readonly value: string } }
  | { readonly delete: { readonly key: string } }
  | { readonly range: { readonly key: string; readonly prefix?: boolean } };

export interface EtcdTxnResult {
  readonly succeeded: boolean;
  /** The revision of the store after the transaction (the transaction's own revision when it wrote). */
  readonly revision: number;
  /** The key-values of each range op of the branch that ran, in order. */
  readonly ranges: readonly (readonly EtcdKv[])[];
}

export interface EtcdWatch {
  close(): void;
}

const REQUEST_TIMEOUT_MS = 5_000;
/** Errors that mean the request never reached the member. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);

function etcdError(message: string, cause?: unknown): RemoraError {
  return new RemoraError('REMORA_ERR_CONTROL_STORE', message, cause === undefined ? {} : { cause });
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: unknown): string => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : '');
const num = (s: unknown): number => (typeof s === 'string' || typeof s === 'number' ? Number(s) : 0);

/** The end of the range of every key starting with `prefix` (etcd's range_end: the prefix with its last byte + 1). */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if ((bytes[i] ?? 0) < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i] = (end[i] ?? 0) + 1;
      return end.toString('base64');
    }
  }
  return Buffer.from([0]).toString('base64');
}

function kvOf(raw: unknown): EtcdKv {
  const k = (raw ?? {}) as Record<string, unknown>;
  return { key: unb64(k.key), value: unb64(k.value), modRevision: num(k.mod_revision), createRevision: num(k.create_revision) };
}

function rangeBody(key: string, prefix: boolean): Record<string, string> {
  return prefix ? { key: b64(key), range_end: prefixEnd(key) } : { key: b64(key) };
}

function opBody(op: EtcdOp): Record<string, unknown> {
  if ('put' in op) return { request_put: { key: b64(op.put.key), value: b64(op.put.value) } };
  if ('delete' in op) return { request_delete_range: { key: b64(op.delete.key) } };
  return { request_range: rangeBody(op.range.key, op.range.prefix === true) };
}

/** Parse `etcd://HOST:PORT[,HOST:PORT...]`; the reason names what was expected when it is not one. */
export function parseEtcdUrl(text: string): { ok: true; endpoints: EtcdEndpoint[] } | { ok: false; expected: string } {
  const expected = 'etcd://HOST:PORT[,HOST:PORT...] (the client URLs of the etcd members, e.g. etcd://10.0.0.1:2379,10.0.0.2:2379)';
  const m = /^etcd:\/\/([^/?#]+)\/?$/.exec(text);
  if (m === null) return { ok: false, expected };
  const endpoints: EtcdEndpoint[] = [];
  for (const part of (m[1] ?? '').split(',')) {
    const hp = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(part);
    const port = Number(hp?.[2]);
    if (hp === null || !(port >= 1 && port <= 65535)) return { ok: false, expected: `${expected}; "${part}" is not HOST:PORT` };
    endpoints.push({ host: (hp[1] ?? '').replace(/^\[|\]$/g, ''), port });
  }
  return { ok: true, endpoints };
}

export class EtcdClient {
  readonly #endpoints: readonly EtcdEndpoint[];
  /** The endpoint tried first: the last one that answered. */
  #current = 0;
  readonly #watches = new Set<() => void>();

  constructor(endpoints: readonly EtcdEndpoint[]) {
    if (endpoints.length === 0) throw etcdError('no etcd endpoint given');
    this.#endpoints = endpoints;
  }

  get endpoints(): string { return this.#endpoints.map((e) => `${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`).join(','); }

  #post(endpoint: EtcdEndpoint, path: string, body: unknown): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const data = JSON.stringify(body);
      const req = request({
        host: endpoint.host, port: endpoint.port, path, method: 'POST', agent: false, timeout: REQUEST_TIMEOUT_MS,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { text += d; });
        res.on('end', () => {
          let json: unknown;
          try { json = JSON.parse(text); } catch { json = undefined; }
          const status = res.statusCode ?? 0;
          if (status !== 200 || json === null || typeof json !== 'object') {
            const msg = (json as { error?: unknown; message?: unknown } | undefined)?.message ?? text.slice(0, 200);
            reject(Object.assign(etcdError(`etcd ${endpoint.host}:${endpoint.port}${path} answered ${status}: ${String(msg)}`), { retry: status >= 500 }));
            return;
          }
          resolve(json as Record<string, unknown>);
        });
        res.on('error', reject);
      });
      req.on('timeout', () => { req.destroy(Object.assign(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' })); });
      req.on('error', reject);
      req.end(data);
    });
  }

  /**
   * POST to the first endpoint that answers (starting with the last good one). A request that may have been
   * executed (reset, timeout, 5xx) is tried elsewhere only when `idempotent`: a transaction is retried only when
   * the member could not be connected to at all, so that it never runs twice.
   */
  async #call(path: string, body: unknown, idempotent = true): Promise<Record<string, unknown>> {
    const errors: string[] = [];
    for (let n = 0; n < this.#endpoints.length; n++) {
      const i = (this.#current + n) % this.#endpoints.length;
      const e = this.#endpoints[i] as EtcdEndpoint;
      try {
        const r = await this.#post(e, path, body);
        this.#current = i;
        return r;
      } catch (err) {
        const x = err as { retry?: boolean; code?: string; message?: string };
        if (x.retry === false) throw err;
        errors.push(`${e.host}:${e.port}: ${x.code ?? x.message ?? String(err)}`);
        if (!idempotent && !NOT_CONNECTED.has(x.code ?? '')) {
          throw etcdError(`etcd ${e.host}:${e.port} did not complete ${path} (${errors.at(-1) ?? ''}); its outcome is unknown: read the state again`, err);
        }
      }
    }
    throw etcdError(`etcd is unreachable at ${this.endpoints} (${errors.join('; ')})`);
  }

  /** Every key-value under `prefix` (or the one key), with the store's revision they were read at. */
  async range(key: string, options: { prefix?: boolean } = {}): Promise<{ revision: number; kvs: EtcdKv[] }> {
    const r = await this.#call('/v3/kv/range', rangeBody(key, options.prefix === true));
    const kvs = Array.isArray(r.kvs) ? r.kvs.map(kvOf) : [];
    return { revision: num((r.header as Record<string, unknown> | undefined)?.revision), kvs };
  }

  /** One transaction: if every comparison holds, `success` runs, else `failure`; atomically. */
  async txn(compare: readonly EtcdCompare[], success: readonly EtcdOp[], failure: readonly EtcdOp[] = []): Promise<EtcdTxnResult> {
    const r = await this.#call('/v3/kv/txn', {
      compare: compare.map((c) => c.target === 'mod'
        ? { key: b64(c.key), target: 'MOD', result: 'EQUAL', mod_revision: String(c.revision) }
        : { key: b64(c.key), target: 'CREATE', result: 'EQUAL', create_revision: String(c.revision) }),
      success: success.map(opBody),
      failure: failure.map(opBody),
    }, false);
    const responses = Array.isArray(r.responses) ? (r.responses as Record<string, unknown>[]) : [];
    const ranges = responses.filter((x) => 'response_range' in x)
      .map((x) => { const kvs = (x.response_range as { kvs?: unknown }).kvs; return Array.isArray(kvs) ? kvs.map(kvOf) : []; });
    return { succeeded: r.succeeded === true, revision: num((r.header as Record<string, unknown> | undefined)?.revision), ranges };
  }

  /**
   * Watch every key under `prefix` from `startRevision`: `onEvents` gets the events of each watch response in order.
   * A broken stream is reopened (on the next endpoint, after a short backoff) from the revision after the last one
   * delivered. `onError` hears what cannot be recovered by reopening (the start revision was compacted: the error
   * has `compactRevision`); the watch is then over.
   */
  watch(prefix: string, startRevision: number, onEvents: (events: EtcdEvent[]) => void, onError: (err: Error) => void,
    onBroken: (err: Error) => void = () => undefined): EtcdWatch {
    let next = startRevision;
    let closed = false;
    let res: IncomingMessage | undefined;
    let req: ClientRequest | undefined;
    let attempt = 0;
    let timer: NodeJS.Timeout | undefined;
    const open = (): void => {
      if (closed) return;
      const i = (this.#current + (attempt > 0 ? attempt : 0)) % this.#endpoints.length;
      const e = this.#endpoints[i] as EtcdEndpoint;
      const body = JSON.stringify({ create_request: { ...rangeBody(prefix, true), start_revision: String(next) } });
      let done = false;
      const broken = (err: Error): void => {
        if (done || closed) return;
        done = true;
        res?.destroy();
        req?.destroy();
        res = undefined;
        onBroken(err);
        attempt++;
        timer = setTimeout(open, Math.min(2_000, 100 * attempt));
        timer.unref();
      };
      req = request({ host: e.host, port: e.port, path: '/v3/watch', method: 'POST', agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (r) => {
        res = r;
        if (r.statusCode !== 200) { broken(new Error(`watch on ${e.host}:${e.port} answered ${String(r.statusCode)}`)); return; }
        r.setEncoding('utf8');
        let buffer = '';
        r.on('data', (d: string) => {
          buffer += d;
          let at: number;
          while ((at = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, at).trim();
            buffer = buffer.slice(at + 1);
            if (line === '') continue;
            let msg: { result?: Record<string, unknown>; error?: unknown };
            try { msg = JSON.parse(line) as typeof msg; } catch { broken(new Error('watch: a line that is not JSON')); return; }
            const result = msg.result;
            if (result === undefined) { broken(new Error(`watch: ${JSON.stringify(msg.error ?? msg).slice(0, 200)}`)); return; }
            if (num(result.compact_revision) > 0) {
              done = true;
              closed = true;
              r.destroy();
              onError(Object.assign(etcdError(`the etcd watch from revision ${next} failed: revisions up to ${num(result.compact_revision)} were compacted`),
                { compactRevision: num(result.compact_revision) }));
              return;
            }
            if (result.canceled === true) { broken(new Error(`watch on ${e.host}:${e.port} canceled: ${String(result.cancel_reason ?? '')}`)); return; }
            if (result.created === true) { this.#current = i; attempt = 0; }
            const events: EtcdEvent[] = (Array.isArray(result.events) ? result.events as Record<string, unknown>[] : [])
              .map((ev) => ({ type: ev.type === 'DELETE' ? 'delete' as const : 'put' as const, kv: kvOf(ev.kv) }));
            if (events.length > 0) {
              next = Math.max(...events.map((ev) => ev.kv.modRevision)) + 1;
              onEvents(events);
            }
          }
        });
        r.on('end', () => { broken(new Error(`watch on ${e.host}:${e.port} ended`)); });
        r.on('error', (err) => { broken(err); });
        r.on('close', () => { broken(new Error(`watch on ${e.host}:${e.port} closed`)); });
      });
      req.on('error', (err) => { broken(err); });
      req.end(body);
    };
    const stop = (): void => {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      res?.destroy();
      req?.destroy();
    };
    this.#watches.add(stop);
    open();
    return { close: () => { stop(); this.#watches.delete(stop); } };
  }

  close(): void {
    for (const stop of this.#watches) stop();
    this.#watches.clear();
  }
}
