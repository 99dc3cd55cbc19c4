// Pick + connect with retries: the L4 way of reaching a service. For each attempt the service's balancer picks an
// endpoint synchronously (the newest picker, so an ejection caused by attempt n already applies to attempt n+1),
// the endpoint's load counter is taken, and a TCP (or TLS, for TLS origination) connection is opened with the
// connect timeout. A connect failure (refused, unreachable, timed out) is reported to the service's passive health
// and retried on an endpoint not tried yet, up to `attempts`; once every endpoint has been tried, any healthy one.
// A TLS handshake failure is not retried (see tls-origination.ts). The dial finishes with a connected socket whose
// load counter is released when it closes, or with a failure code; it calls `onDone` once (never synchronously from
// start()). A fixed target (passthrough, original-dst discovery) is the same loop without a balancer.
import { Socket } from 'node:net';
import { RemoraError } from '../core/errors.js';
import type { PickContext, PickResult } from '../upstream/picker.js';
import { tlsFailureCode, type TlsOriginator } from '../upstream/transport/tls-origination.js';

/** What the dialer needs from a service's endpoints (an EndpointSet behind a thin adapter that also logs). */
export interface DialEndpoints {
  pick(ctx: PickContext): PickResult;
  /** Count one connection to `key` as load; the returned function releases it (idempotent). */
  acquire(key: string): () => void;
  reportConnectSuccess(key: string): void;
  reportConnectFailure(key: string, err: Error): void;
}

export interface DialSpec {
  /** The service's endpoints; undefined = the fixed `address`:`port`. */
  readonly endpoints?: DialEndpoints | undefined;
  readonly address?: string | undefined;
  readonly port?: number | undefined;
  /** Source address to bind (inbound delivery). */
  readonly localAddress?: string | undefined;
  /** Connection attempts (>= 1). */
  readonly attempts: number;
  /** Per attempt, TCP connect plus TLS handshake; 0 = none. */
  readonly connectTimeoutMs: number;
  readonly tls?: TlsOriginator | undefined;
  /** The client's address without port (hashing balancers). */
  readonly sourceAddress?: string | undefined;
}

export type DialFailureCode =
  | 'REMORA_ERR_UPSTREAM_CONNECT' | 'REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT' | 'REMORA_ERR_UPSTREAM_TLS'
  | 'REMORA_ERR_NO_HEALTHY_ENDPOINT';

export type DialState = 'connecting' | 'connected' | 'failed' | 'cancelled';

/** Placeholder 'error' listener: an error is never unhandled; the owner of the connected socket adds its own. */
function ignoreHandledByOwner(): void {}

export class UpstreamDial {
  readonly #spec: DialSpec;
  readonly #onDone: (dial: UpstreamDial) => void;
  readonly #pickCtx: { sourceAddress?: string; exclude?: ReadonlySet<string> };
  #state: DialState = 'connecting';
  #socket: Socket | undefined;
  #endpoint: string | undefined;
  #attempts = 0;
  #tried: Set<string> | undefined;
  #release: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #tcpUp = false;
  #failureCode: DialFailureCode | undefined;
  #error: Error | undefined;
  #tlsCode: string | undefined;

  constructor(spec: DialSpec, onDone: (dial: UpstreamDial) => void) {
    this.#spec = spec;
    this.#onDone = onDone;
    this.#pickCtx = spec.sourceAddress === undefined ? {} : { sourceAddress: spec.sourceAddress };
  }

  get state(): DialState { return this.#state; }
  /** The connected socket (state 'connected'); ownership passes to the caller. */
  get socket(): Socket | undefined { return this.#state === 'connected' ? this.#socket : undefined; }
  /** The endpoint ("10.0.0.1:80") of the last attempt. */
  get endpoint(): string | undefined { return this.#endpoint; }
  get attempts(): number { return this.#attempts; }
  get failureCode(): DialFailureCode | undefined { return this.#failureCode; }
  get error(): Error | undefined { return this.#error; }
  /** For REMORA_ERR_UPSTREAM_TLS: the OpenSSL/Node reason. */
  get tlsCode(): string | undefined { return this.#tlsCode; }

  start(): this {
    this.#attempt();
    return this;
  }

  /** Give up (the downstream went away): the socket in progress is destroyed, its load released; onDone is not called. */
  cancel(): void {
    if (this.#state !== 'connecting') return;
    this.#state = 'cancelled';
    this.#clearAttempt();
    this.#socket?.destroy();
    this.#release?.();
  }

  #attempt(): void {
    const spec = this.#spec;
    let host: string;
    let port: number;
    const set = spec.endpoints;
    if (set === undefined) {
      host = spec.address ?? '';
      port = spec.port ?? 0;
      this.#endpoint = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    } else {
      let r = set.pick(this.#pickCtx);
      if (r.kind === 'none' && r.reason === 'all-excluded') {
        // Every endpoint was tried: any healthy one again.
        r = set.pick(this.#spec.sourceAddress === undefined ? {} : { sourceAddress: this.#spec.sourceAddress });
      }
      if (r.kind === 'none') {
        if (this.#attempts === 0) {
          const err = new RemoraError('REMORA_ERR_NO_HEALTHY_ENDPOINT', `no endpoint to connect to (${r.reason})`,
            { details: { reason: r.reason } });
          queueMicrotask(() => { this.#fail('REMORA_ERR_NO_HEALTHY_ENDPOINT', err); });
        } else {
          this.#fail(this.#failureCode ?? 'REMORA_ERR_UPSTREAM_CONNECT', this.#error ?? new Error('connect failed'));
        }
        return;
      }
      host = r.endpoint.address;
      port = r.endpoint.port;
      this.#endpoint = r.endpoint.key;
      this.#release = set.acquire(r.endpoint.key);
    }
    this.#attempts++;
    this.#tcpUp = false;
    const tls = spec.tls;
    let socket: Socket;
    try {
      if (tls !== undefined) {
        socket = tls.connect(host, tls.portFor(port), spec.localAddress);
        socket.once('secureConnect', this.#onSecure);
      } else {
        socket = new Socket({ allowHalfOpen: true });
        // Nagle off. socket.connect() ignores a noDelay option (Node 20); before the handle exists this only records
        // the setting, applied once connected.
        socket.setNoDelay(true);
        socket.connect(spec.localAddress === undefined ? { host, port } : { host, port, localAddress: spec.localAddress });
      }
    } catch (err) {
      // Invalid arguments (a bug): fail this dial, never the proxy.
      this.#release?.();
      queueMicrotask(() => { this.#fail('REMORA_ERR_UPSTREAM_CONNECT', err as Error); });
      return;
    }
    this.#socket = socket;
    socket.on('error', this.#onError);
    socket.once('connect', this.#onTcp);
    if (spec.connectTimeoutMs > 0) this.#timer = setTimeout(this.#onTimeout, spec.connectTimeoutMs);
  }

  readonly #onTcp = (): void => {
    this.#tcpUp = true;
    const key = this.#endpoint;
    if (this.#spec.endpoints !== undefined && key !== undefined) this.#spec.endpoints.reportConnectSuccess(key);
    if (this.#spec.tls === undefined) this.#succeed();
  };

  readonly #onSecure = (): void => { this.#succeed(); };

  readonly #onTimeout = (): void => {
    this.#timer = undefined;
    const what = this.#tcpUp ? 'the TLS handshake with the upstream timed out' : 'connecting to the upstream timed out';
    const err = this.#tcpUp
      ? Object.assign(new Error(what), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' })
      : new RemoraError('REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT', what);
    this.#socket?.destroy(err);
  };

  readonly #onError = (err: Error): void => {
    if (this.#state !== 'connecting') return;
    const socket = this.#socket;
    this.#clearAttempt();
    socket?.destroy();
    this.#release?.();
    this.#release = undefined;
    if (this.#tcpUp) {
      // The endpoint accepted TCP; the handshake failed. Not retried, not a passive-health failure.
      this.#tlsCode = tlsFailureCode(err);
      this.#fail('REMORA_ERR_UPSTREAM_TLS', err);
      return;
    }
    const timedOut = err instanceof RemoraError && err.code === 'REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT';
    this.#failureCode = timedOut ? 'REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT' : 'REMORA_ERR_UPSTREAM_CONNECT';
    this.#error = err;
    const set = this.#spec.endpoints;
    const key = this.#endpoint;
    if (set !== undefined && key !== undefined) {
      set.reportConnectFailure(key, err);
      (this.#tried ??= new Set()).add(key);
      this.#pickCtx.exclude = this.#tried;
    }
    if (this.#attempts < this.#spec.attempts) this.#attempt();
    else this.#fail(this.#failureCode, err);
  };

  #clearAttempt(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const s = this.#socket;
    if (s === undefined) return;
    s.off('connect', this.#onTcp);
    s.off('secureConnect', this.#onSecure);
    s.off('error', this.#onError);
    s.on('error', ignoreHandledByOwner);
  }

  #succeed(): void {
    if (this.#state !== 'connecting') return;
    this.#clearAttempt();
    this.#state = 'connected';
    const release = this.#release;
    if (release !== undefined) this.#socket?.once('close', release);
    this.#onDone(this);
  }

  #fail(code: DialFailureCode, err: Error): void {
    if (this.#state !== 'connecting') return;
    this.#state = 'failed';
    this.#failureCode = code;
    this.#error = err;
    this.#onDone(this);
  }
}
