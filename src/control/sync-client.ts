// The sidecar's side of the sync protocol: one HTTP/2 connection to the control plane (TLS verified against the mesh
// root), one long-lived GET /api/v1/sync (Server-Sent Events) and, on the same connection, a POST /api/v1/sync/ack
// after each snapshot: ACK when `apply` accepted it, NACK with its problems when it did not (the config in force keeps
// serving either way: `apply` is the proxy's reload). A lost connection changes nothing in force; the client
// reconnects with jittered exponential backoff (initialMs doubling to maxMs; reset once the stream answers) and says
// which version it has, so the control plane sends a snapshot only when it is behind.
//
// Golden metrics: while subscribed, every metricsIntervalMs (5 s) it POSTs /api/v1/sync/metrics on the same
// connection with its cumulative edges (`metrics()`), an epoch per client (a restarted sidecar's counters start
// over) and a sequence number that advances once a report is accepted; one report in flight at most.
// Status: on the same timer and connection, POST /api/v1/sync/status with `status()` (status-report.ts: readiness,
// certificate, endpoints, per-policy and per-route counters), with the same epoch and its own sequence number.
import { randomBytes } from 'node:crypto';
import { connect, type ClientHttp2Session } from 'node:http2';
import { RemoraError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { ControlRefusal, type ControlCaller } from './control-client.js';
import type { GoldenEdgeSample } from '../telemetry/golden-samples.js';
import type { SidecarStatus } from './status-report.js';

export interface PushedSnapshot {
  readonly version: number;
  readonly nonce: string;
  readonly ini: string;
}

export type ApplyResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

export interface SyncClientOptions {
  /** https://HOST:PORT */
  readonly server: string;
  readonly token: string;
  /** The mesh root (PEM). */
  readonly ca: string;
  /** The pod name (POD_NAME, else the host name). */
  readonly name: string;
  /** The sidecar's SPIFFE ID ('' without an identity). */
  readonly identity: () => string;
  readonly apply: (snapshot: PushedSnapshot) => ApplyResult;
  readonly log: Logger;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** The golden-metric edges to report (cumulative); none reported without it. */
  readonly metrics?: () => GoldenEdgeSample[];
  /** How often they (and the status) are reported (default 5 s). */
  readonly metricsIntervalMs?: number;
  /** The sidecar's status (readiness, certificate, endpoints, counters); none reported without it. */
  readonly status?: () => SidecarStatus;
}

/** One kind of periodic report: its sequence number and whether one is in flight. */
interface ReportStream {
  readonly path: string;
  readonly what: string;
  seq: number;
  inFlight: boolean;
}

export const METRICS_INTERVAL_MS = 5_000;

export class SyncClient implements ControlCaller {
  readonly #o: SyncClientOptions;
  #session: ClientHttp2Session | undefined;
  #timer: NodeJS.Timeout | undefined;
  #backoff: number;
  #stopped = false;
  #applied = 0;
  #connected = false;
  #metricsTimer: NodeJS.Timeout | undefined;
  readonly #epoch = randomBytes(8).toString('hex');
  readonly #metricsReports: ReportStream = { path: '/api/v1/sync/metrics', what: 'metrics', seq: 1, inFlight: false };
  readonly #statusReports: ReportStream = { path: '/api/v1/sync/status', what: 'status', seq: 1, inFlight: false };

  constructor(options: SyncClientOptions) {
    this.#o = options;
    this.#backoff = options.initialBackoffMs ?? 500;
  }

  /** The last version applied (0: none yet). */
  get appliedVersion(): number { return this.#applied; }
  get connected(): boolean { return this.#connected; }

  /** Golden-metric reports accepted by the control plane. */
  get reportsAccepted(): number { return this.#metricsReports.seq - 1; }

  /** Status reports accepted by the control plane. */
  get statusReportsAccepted(): number { return this.#statusReports.seq - 1; }

  start(): void {
    this.#connect();
    const { metrics, status } = this.#o;
    if (metrics !== undefined || status !== undefined) {
      this.#metricsTimer = setInterval(() => {
        if (metrics !== undefined) this.#report(this.#metricsReports, () => ({ edges: metrics() }));
        if (status !== undefined) this.#report(this.#statusReports, status);
      }, this.#o.metricsIntervalMs ?? METRICS_INTERVAL_MS);
      this.#metricsTimer.unref();
    }
  }

  #report(stream: ReportStream, collect: () => object): void {
    const session = this.#session;
    if (!this.#connected || stream.inFlight || session === undefined || session.destroyed) return;
    let fields: object;
    try {
      fields = collect();
    } catch (err) {
      this.#o.log.warn({ event: `control.${stream.what}.collect-failed`, err }, `could not read the ${stream.what} to report`);
      return;
    }
    stream.inFlight = true;
    const seq = stream.seq;
    const body = JSON.stringify({ name: this.#o.name, identity: this.#o.identity(), epoch: this.#epoch, seq, ...fields });
    let req;
    try {
      req = session.request({ ':method': 'POST', ':path': stream.path, authorization: `Bearer ${this.#o.token}`, 'content-type': 'application/json' });
    } catch {
      stream.inFlight = false;
      return;
    }
    req.on('response', (headers) => {
      const status = Number(headers[':status']);
      if (status === 200) stream.seq = Math.max(stream.seq, seq + 1);
      else this.#o.log.debug({ event: `control.${stream.what}.refused`, status }, `the control plane refused a ${stream.what} report`);
    });
    req.on('close', () => { stream.inFlight = false; });
    req.on('error', () => undefined);
    req.resume();
    req.end(body);
  }

  /**
   * One API request on the sync connection (the HTTP/2 session the snapshots come on): JSON in, the parsed 2xx body
   * out; a refusal throws ControlRefusal, no connection or a broken stream REMORA_ERR_CONTROL_UNREACHABLE.
   */
  call(method: string, path: string, body?: unknown): Promise<unknown> {
    const session = this.#session;
    if (!this.#connected || session === undefined || session.destroyed) {
      return Promise.reject(new RemoraError('REMORA_ERR_CONTROL_UNREACHABLE', 'the sync connection to the control plane is not up'));
    }
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      let req;
      try {
        req = session.request({
          ':method': method, ':path': path, authorization: `Bearer ${this.#o.token}`, accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        });
      } catch (err) {
        reject(new RemoraError('REMORA_ERR_CONTROL_UNREACHABLE', `the sync connection refused a request: ${(err as Error).message}`, { cause: err }));
        return;
      }
      let status = 0;
      const chunks: Buffer[] = [];
      req.setTimeout(30_000, () => { req.destroy(new Error('timed out')); });
      req.on('response', (headers) => { status = Number(headers[':status']); });
      req.on('data', (d: Buffer) => { chunks.push(d); });
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let value: unknown = text;
        try { value = JSON.parse(text); } catch { /* not JSON: kept as text */ }
        if (status >= 200 && status < 300) {
          resolve(value);
          return;
        }
        const e = (typeof value === 'object' && value !== null ? value : {}) as { error?: unknown; message?: unknown };
        reject(new ControlRefusal(status, typeof e.error === 'string' ? e.error : `HTTP ${status}`,
          typeof e.message === 'string' ? e.message : text.trim().slice(0, 200), [], []));
      });
      req.on('error', (err) => {
        reject(new RemoraError('REMORA_ERR_CONTROL_UNREACHABLE', `the sync connection failed during a request: ${err.message}`, { cause: err }));
      });
      req.end(payload);
    });
  }

  stop(): void {
    this.#stopped = true;
    if (this.#metricsTimer !== undefined) clearInterval(this.#metricsTimer);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#session?.destroy();
  }

  #retry(reason: string): void {
    this.#connected = false;
    if (this.#stopped || this.#timer !== undefined) return;
    const delay = Math.round(this.#backoff * (0.8 + Math.random() * 0.4));
    this.#o.log.warn({ event: 'control.sync.lost', reason, retryInMs: delay, version: this.#applied }, 'control plane connection lost; the config in force keeps serving');
    this.#backoff = Math.min(this.#backoff * 2, this.#o.maxBackoffMs ?? 30_000);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#connect();
    }, delay);
    this.#timer.unref();
  }

  #connect(): void {
    if (this.#stopped) return;
    this.#session?.destroy();
    const session = connect(this.#o.server, { ca: this.#o.ca });
    this.#session = session;
    let failed = false;
    const fail = (reason: string): void => {
      if (failed || this.#session !== session) return;
      failed = true;
      session.destroy();
      this.#retry(reason);
    };
    session.on('error', (err: NodeJS.ErrnoException) => { fail(err.code ?? err.message); });
    session.on('close', () => { fail('closed'); });
    session.on('goaway', () => { fail('goaway'); });
    const q = new URLSearchParams({ name: this.#o.name, identity: this.#o.identity(), version: String(this.#applied) });
    const stream = session.request({ ':path': `/api/v1/sync?${q.toString()}`, authorization: `Bearer ${this.#o.token}` });
    stream.setEncoding('utf8');
    let buffer = '';
    stream.on('response', (headers) => {
      const status = Number(headers[':status']);
      if (status !== 200) {
        this.#o.log.error({ event: 'control.sync.refused', status }, `the control plane refused the subscription (HTTP ${status}); check --token (scope sidecar or write)`);
        fail(`HTTP ${status}`);
        return;
      }
      this.#connected = true;
      this.#backoff = this.#o.initialBackoffMs ?? 500;
      this.#o.log.info({ event: 'control.sync.connected', server: this.#o.server, version: this.#applied }, 'subscribed to the control plane');
    });
    stream.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (event === 'snapshot') this.#onSnapshot(session, data);
      }
    });
    stream.on('error', (err: NodeJS.ErrnoException) => { fail(err.code ?? err.message); });
    stream.on('end', () => { fail('stream ended'); });
  }

  #onSnapshot(session: ClientHttp2Session, data: string): void {
    let snapshot: PushedSnapshot;
    try {
      const v = JSON.parse(data) as Partial<PushedSnapshot>;
      if (typeof v.version !== 'number' || typeof v.ini !== 'string') throw new Error('not a snapshot');
      snapshot = { version: v.version, nonce: typeof v.nonce === 'string' ? v.nonce : '', ini: v.ini };
    } catch (err) {
      this.#o.log.error({ event: 'control.sync.bad-event', err }, 'the control plane sent an unreadable snapshot');
      return;
    }
    const result = this.#o.apply(snapshot);
    if (result.ok) this.#applied = snapshot.version;
    const body = JSON.stringify({
      name: this.#o.name, identity: this.#o.identity(), version: snapshot.version, nonce: snapshot.nonce, ...(result.ok ? {} : { error: result.error }),
    });
    const ack = session.request({ ':method': 'POST', ':path': '/api/v1/sync/ack', authorization: `Bearer ${this.#o.token}`, 'content-type': 'application/json' });
    ack.on('response', (headers) => {
      const status = Number(headers[':status']);
      if (status !== 200) this.#o.log.warn({ event: 'control.sync.ack-refused', status }, 'the control plane refused the ACK/NACK');
    });
    ack.on('error', () => undefined);
    ack.resume();
    ack.end(body);
  }
}
