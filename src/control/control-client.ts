// A client of the control plane's API over HTTPS (node:https, HTTP/1.1), verifying the server against the mesh root
// given as a CA file. Used by `remora ctl`. Answers are parsed JSON; a refusal becomes a ControlRefusal carrying the
// server's code, message, issues and conflicts; an unreachable or unverified server is REMORA_ERR_CONTROL_UNREACHABLE.
import { request } from 'node:https';
import { RemoraError } from '../core/errors.js';
import type { ObjectIssue } from './control-objects.js';
import type { Conflict } from './state-batch.js';

export interface ControlClientOptions {
  /** https://HOST:PORT */
  readonly server: string;
  readonly token: string;
  /** The mesh root (PEM). */
  readonly ca: string;
  readonly timeoutMs?: number;
}

/** The server refused the request (a 4xx or 5xx answer). */
/** What calls the control plane's API: JSON in, the parsed 2xx body out, a ControlRefusal or RemoraError thrown. */
export interface ControlCaller {
  call(method: string, path: string, body?: unknown): Promise<unknown>;
}

export class ControlRefusal extends Error {
  readonly status: number;
  readonly code: string;
  readonly issues: readonly ObjectIssue[];
  readonly conflicts: readonly Conflict[];
  constructor(status: number, code: string, message: string, issues: readonly ObjectIssue[], conflicts: readonly Conflict[]) {
    super(message);
    this.name = 'ControlRefusal';
    this.status = status;
    this.code = code;
    this.issues = issues;
    this.conflicts = conflicts;
  }
}

export class ControlClient {
  readonly #o: ControlClientOptions;
  readonly #base: URL;

  constructor(options: ControlClientOptions) {
    this.#o = options;
    let base: URL;
    try {
      base = new URL(options.server);
    } catch {
      throw new RemoraError('REMORA_ERR_USAGE', `--server ${options.server}: expected a URL like https://HOST:15012`);
    }
    if (base.protocol !== 'https:') throw new RemoraError('REMORA_ERR_USAGE', `--server ${options.server}: expected https:// (all control traffic is TLS)`);
    this.#base = base;
  }

  /** Send a request; resolves with the parsed JSON (or text) of a 2xx answer, rejects with ControlRefusal otherwise. */
  call(method: string, path: string, body?: unknown): Promise<unknown> {
    const url = new URL(path, this.#base);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method,
        ca: this.#o.ca,
        agent: false, // one request per process: no keep-alive socket holding the CLI open
        headers: {
          authorization: `Bearer ${this.#o.token}`,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
        },
        timeout: this.#o.timeoutMs ?? 30_000,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('error', (err) => { reject(err); });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const type = String(res.headers['content-type'] ?? '');
          let value: unknown = text;
          if (type.startsWith('application/json')) {
            try {
              value = JSON.parse(text);
            } catch {
              value = text;
            }
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            resolve(value);
            return;
          }
          const e = (typeof value === 'object' && value !== null ? value : {}) as { error?: unknown; message?: unknown; issues?: unknown; conflicts?: unknown };
          reject(new ControlRefusal(
            status,
            typeof e.error === 'string' ? e.error : `HTTP ${status}`,
            typeof e.message === 'string' ? e.message : text.trim().slice(0, 200),
            Array.isArray(e.issues) ? e.issues as ObjectIssue[] : [],
            Array.isArray(e.conflicts) ? e.conflicts as Conflict[] : [],
          ));
        });
      });
      req.on('timeout', () => { req.destroy(new Error('timed out')); });
      req.on('error', (err: NodeJS.ErrnoException) => {
        reject(new RemoraError('REMORA_ERR_CONTROL_UNREACHABLE', `cannot reach ${this.#base.origin}: ${err.code ?? ''}${err.code === undefined ? '' : ' '}${err.message}`, { cause: err }));
      });
      req.end(payload);
    });
  }
}
