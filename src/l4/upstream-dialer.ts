// Pick + connect with retries: the L4 way of reaching a cluster. For each attempt the cluster's connection balancer
// picks an endpoint synchronously (the newest picker, so an ejection caused by attempt n already applies to attempt
// n+1), the endpoint's load counter is taken, and the cluster opens the connection (src/upstream/transport/
// connect.ts: plain TCP or TLS origination, with the connect timeout; connect results feed the cluster's health).
// A connect failure (refused, unreachable, timed out) is retried on an endpoint not tried yet, up to `attempts`;
// once every endpoint has been tried, any healthy one. A TLS handshake failure is not retried. An original-
// destination cluster has one endpoint, the fixed `target`. The dial finishes with a connected socket whose load
// counter is released when it closes, or with a failure code; it calls `onDone` once (never synchronously from
// start()).
import type { Socket } from 'node:net';
import { formatHostPort } from '../core/addr.js';
import { RemoraError } from '../core/errors.js';
import type { Cluster, Release } from '../upstream/cluster.js';
import type { ConnectFailure, ConnectFailureCode, ConnectHandler, ConnectTarget } from '../upstream/transport/connect.js';

export interface DialSpec {
  readonly cluster: Cluster;
  /** The endpoint of an original-destination cluster (and of nothing else). */
  readonly target: ConnectTarget | undefined;
  /** Connection attempts (>= 1). */
  readonly attempts: number;
  /** The client's address without port (hashing balancers). */
  readonly sourceAddress: string | undefined;
}

export type DialFailureCode = ConnectFailureCode | 'REMORA_ERR_NO_HEALTHY_ENDPOINT';

/** One attempt's endpoint: its load counter taken (release it when the attempt fails or its connection closes). */
export interface DialChoice {
  readonly target: ConnectTarget & { readonly key?: string };
  /** "10.0.0.1:80" (IPv6 in brackets). */
  readonly endpoint: string;
  readonly release: Release | undefined;
}

/**
 * The endpoints of one connection's attempts (the policy above, without sockets: UpstreamDial connects in Node, the
 * native accept in the forwarding thread, src/l4/native-connection.ts). next() picks with the newest picker,
 * excluding the endpoints that failed; once every endpoint was tried, any healthy one.
 */
export class DialChoices {
  readonly #spec: DialSpec;
  #pickCtx: { sourceAddress?: string | undefined; exclude?: ReadonlySet<string> } | undefined;
  #tried: Set<string> | undefined;

  constructor(spec: DialSpec) {
    this.#spec = spec;
  }

  /** The next endpoint, or why there is none. */
  next(): DialChoice | { readonly none: string } {
    const spec = this.#spec;
    if (spec.target !== undefined) return { target: spec.target, endpoint: formatHostPort(spec.target.address, spec.target.port), release: undefined };
    const cluster = spec.cluster;
    let r = cluster.pick(this.#pickCtx ??= { sourceAddress: spec.sourceAddress });
    if (r.kind === 'none' && r.reason === 'all-excluded') {
      // Every endpoint was tried: any healthy one again.
      r = cluster.pick({ sourceAddress: spec.sourceAddress });
    }
    if (r.kind === 'none') return { none: r.reason };
    return { target: r.endpoint, endpoint: r.endpoint.key, release: cluster.acquire(r.endpoint.key) };
  }

  /** The attempt on `endpoint` failed to connect: not picked again while others remain. */
  failed(endpoint: string): void {
    if (this.#spec.target !== undefined) return;
    (this.#tried ??= new Set()).add(endpoint);
    (this.#pickCtx ??= { sourceAddress: this.#spec.sourceAddress }).exclude = this.#tried;
  }
}

/** The error of a dial that found no endpoint on its first attempt. */
export function noEndpointError(reason: string): RemoraError {
  return new RemoraError('REMORA_ERR_NO_HEALTHY_ENDPOINT', `no endpoint to connect to (${reason})`, { details: { reason } });
}

export type DialState = 'connecting' | 'connected' | 'failed' | 'cancelled';

export class UpstreamDial implements ConnectHandler {
  readonly #spec: DialSpec;
  readonly #onDone: (dial: UpstreamDial) => void;
  readonly #choices: DialChoices;
  #state: DialState = 'connecting';
  #socket: Socket | undefined;
  #endpoint: string | undefined;
  #attempts = 0;
  #release: Release | undefined;
  #failureCode: DialFailureCode | undefined;
  #error: Error | undefined;
  #tlsCode: string | undefined;

  constructor(spec: DialSpec, onDone: (dial: UpstreamDial) => void) {
    this.#spec = spec;
    this.#onDone = onDone;
    this.#choices = new DialChoices(spec);
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

  /**
   * The connected socket was handed over and closed (the native forwarder owns the connection now): drop the
   * reference, so that a long-lived connection does not keep a dead Socket; the endpoint and attempts stay.
   */
  forgetSocket(): void {
    if (this.#state === 'connected') this.#socket = undefined;
  }

  start(): this {
    this.#attempt();
    return this;
  }

  /** Give up (the downstream went away): the socket in progress is destroyed, its load released; onDone is not called. */
  cancel(): void {
    if (this.#state !== 'connecting') return;
    this.#state = 'cancelled';
    this.#socket?.destroy();
    this.#release?.();
    this.#release = undefined;
  }

  #attempt(): void {
    const choice = this.#choices.next();
    if ('none' in choice) {
      if (this.#attempts === 0) {
        const err = noEndpointError(choice.none);
        queueMicrotask(() => { this.#fail('REMORA_ERR_NO_HEALTHY_ENDPOINT', err); });
      } else {
        this.#fail(this.#failureCode ?? 'REMORA_ERR_UPSTREAM_CONNECT', this.#error ?? new Error('connect failed'));
      }
      return;
    }
    const target = choice.target;
    this.#release = choice.release;
    this.#endpoint = choice.endpoint;
    this.#attempts++;
    try {
      this.#socket = this.#spec.cluster.connect(target, this);
    } catch (err) {
      // Invalid arguments (a bug): fail this dial, never the proxy.
      this.#release?.();
      this.#release = undefined;
      queueMicrotask(() => { this.#fail('REMORA_ERR_UPSTREAM_CONNECT', err as Error); });
    }
  }

  /** @internal ConnectHandler */
  onUpstreamReady(socket: Socket): void {
    if (this.#state !== 'connecting' || socket !== this.#socket) return;
    this.#state = 'connected';
    const release = this.#release;
    this.#release = undefined;
    // 'close' is emitted once: on() needs no once-wrapper (a closure and a state object per connection).
    if (release !== undefined) socket.on('close', release);
    this.#onDone(this);
  }

  /** @internal ConnectHandler */
  onUpstreamFailed(socket: Socket, failure: ConnectFailure): void {
    if (this.#state !== 'connecting' || socket !== this.#socket) return;
    this.#release?.();
    this.#release = undefined;
    if (failure.code === 'REMORA_ERR_UPSTREAM_TLS') {
      // The endpoint accepted TCP; the handshake failed. Not retried (a CA or name mismatch fails everywhere alike).
      this.#tlsCode = failure.tlsCode;
      this.#fail('REMORA_ERR_UPSTREAM_TLS', failure.error);
      return;
    }
    // A mesh mTLS failure is one sidecar's (an expired or foreign certificate, a wrong identity): tried elsewhere.
    this.#tlsCode = failure.tlsCode;
    this.#failureCode = failure.code;
    this.#error = failure.error;
    if (this.#endpoint !== undefined) this.#choices.failed(this.#endpoint);
    if (this.#attempts < this.#spec.attempts) this.#attempt();
    else this.#fail(failure.code, failure.error);
  }

  #fail(code: DialFailureCode, err: Error): void {
    if (this.#state !== 'connecting') return;
    this.#state = 'failed';
    this.#failureCode = code;
    this.#error = err;
    this.#onDone(this);
  }
}
