// One connection of the native accept through the terminal stage (src/l4/connection-pipeline.ts): the forwarding
// thread accepted it and holds it (src/l4/native-accepted.ts); here it is authorized, its endpoint picked (the
// original destination, or the service's balancer with connect retries: DialChoices, as UpstreamDial), connected and
// forwarded by the thread, and labelled by detection. It comes here only when its bytes cannot change where it goes
// or what handles it: an original-destination or service cluster over plain TCP, no HTTP engine, no name to route by,
// no mesh mTLS. Detection then only names the protocol (the sniff counters, the connection's log line), so the thread
// forwards at once and reports the first bytes each way until the sniffer decides, by the rules of DetectStage:
//   the client's bytes -> the sniffer; its FIN -> opaque 'eof'; the upstream's first bytes (not an HTTP/2 server's
//   SETTINGS preface) or FIN -> opaque 'server-first'; the deadline (detect_timeout, from accept) -> opaque 'timeout'.
// A connect failure is retried on another endpoint up to the service's connect_attempts; the last one resets the client.
// Every connection ends exactly once (`done`, after it leaves the tracker), when the thread reports its end.
import { constants as osConstants } from 'node:os';
import { RemoraError, systemError, type RemoraErrorCode } from '../core/errors.js';
import type { LiveEntry } from '../core/live-set.js';
import type { Declared, Destination } from './accept-route.js';
import type { ConnectionContext, ConnectionDone } from './connection-context.js';
import type { ConnectionTracker, TrackedConnection } from './connection-pipeline.js';
import { isHttp2ServerPreface } from './detect/detect-stage.js';
import { createSniffer, type SniffDecision, type Sniffer } from './detect/protocol-sniffer.js';
import { contextFields, shownProtocol, type LiveConnection, type SideState } from './live-connection.js';
import { NativeDetectEvent, type NativeAccepted, type NativeAcceptedOwner } from './native-accepted.js';
import type { NativeTcpForward } from './native-tcp-forward.js';
import { sniffLabel, type StagedDeps } from './staged-connection.js';
import { DialChoices, noEndpointError, type DialChoice } from './upstream-dialer.js';

const ETIMEDOUT = osConstants.errno.ETIMEDOUT;
/** A detection without a deadline (detect_timeout = 0) is asked of the thread as the longest one it takes. */
const NO_DEADLINE_MS = 0x7fffffff;

export class NativeConnection implements TrackedConnection, NativeAcceptedOwner {
  readonly #deps: StagedDeps;
  readonly #conn: ConnectionContext;
  readonly #native: NativeAccepted;
  readonly #declared: Declared;
  readonly #dest: Extract<Destination, { kind: 'cluster' }>;
  readonly #done: ConnectionDone;
  readonly #tracker: ConnectionTracker;
  readonly #choices: DialChoices;
  readonly #maxAttempts: number;
  #tracked: LiveEntry<TrackedConnection> | undefined;
  #forward: NativeTcpForward | undefined;
  #choice: DialChoice | undefined;
  #healthKey: string | undefined;
  /** The endpoint of the last attempt ("10.0.0.1:80"). */
  #endpoint: string | undefined;
  #attempts = 0;
  #connected = false;
  #sniffer: Sniffer | undefined;
  #protocol: string | undefined;
  #code: RemoraErrorCode | undefined;
  #error: Error | undefined;
  #over = false;

  constructor(deps: StagedDeps, conn: ConnectionContext, native: NativeAccepted, declared: Declared,
    dest: Extract<Destination, { kind: 'cluster' }>, done: ConnectionDone, tracker: ConnectionTracker) {
    this.#deps = deps;
    this.#conn = conn;
    this.#native = native;
    this.#declared = declared;
    this.#dest = dest;
    this.#done = done;
    this.#tracker = tracker;
    const cluster = dest.cluster;
    this.#maxAttempts = dest.target === undefined ? (cluster.spec.service?.connectAttempts ?? 1) : 1;
    this.#choices = new DialChoices({ cluster, target: dest.target, attempts: this.#maxAttempts, sourceAddress: conn.peerAddress });
  }

  /** Run the stage. Called once, right after the route chose this path. */
  start(): void {
    this.#tracked = this.#tracker.add(this);
    this.#forward = this.#native.own(this, this.#deps.counters);
    const authorize = this.#conn.runtime.authorize;
    if (authorize !== undefined && !authorize(this.#conn)) {
      // Denied (logged and counted by the authorizer): closed before anything is connected or read.
      this.#fail('REMORA_ERR_AUTHZ_DENIED', new RemoraError('REMORA_ERR_AUTHZ_DENIED', 'an authorization policy denied the connection'));
      return;
    }
    if (this.#declared !== 'detect') {
      this.#protocol = `declared:${this.#declared}`;
      this.#deps.countSniff(this.#protocol);
    }
    this.#deps.counters.nativeForwards++;
    this.#attempt();
    // The thread forwards as soon as it is connected, without telling (unless health needs it): the observation of
    // a forwarded connection (live TCP metrics) starts with the connect. One that fails to connect is closed with its
    // flags, as one that failed before forwarding.
    const forward = this.#forward;
    if (!this.#over && forward !== undefined && this.#attempts > 0) {
      this.#conn.watch?.forwarding(this.#conn, this.#dest.cluster.spec.service === undefined ? undefined : this.#dest.cluster.name, this.#endpoint, forward);
    }
  }

  #attempt(): void {
    const choice = this.#choices.next();
    if ('none' in choice) {
      if (this.#attempts === 0) this.#fail('REMORA_ERR_NO_HEALTHY_ENDPOINT', noEndpointError(choice.none));
      else this.#fail(this.#code ?? 'REMORA_ERR_UPSTREAM_CONNECT', this.#error ?? new Error('connect failed'));
      return;
    }
    this.#code = undefined;
    this.#error = undefined;
    const plain = this.#dest.cluster.plainConnect(choice.target);
    if (plain === undefined) {
      // Only a cluster over plain TCP comes here (the pipeline checks): a bug, not the endpoint's failure.
      choice.release?.();
      this.#fail('REMORA_ERR_INTERNAL', new Error('the native accept was given a cluster with a TLS transport'));
      return;
    }
    this.#choice = choice;
    this.#endpoint = choice.endpoint;
    this.#healthKey = plain.healthKey;
    this.#attempts++;
    const detectMs = this.#declared !== 'detect' || this.#protocol !== undefined ? 0
      : this.#conn.runtime.detectTimeoutMs > 0 ? this.#conn.runtime.detectTimeoutMs : NO_DEADLINE_MS;
    const rc = this.#native.connect({
      address: plain.address,
      port: plain.port,
      localAddress: plain.localAddress,
      connectTimeoutMs: plain.timeoutMs,
      idleTimeoutMs: this.#conn.runtime.idleTimeoutMs,
      detectTimeoutMs: detectMs,
      notifyConnected: plain.healthKey !== undefined,
    });
    if (rc < 0) this.connectFailed(-rc);
  }

  /** @internal NativeAcceptedOwner */
  connected(): void {
    this.#connected = true;
    if (this.#healthKey !== undefined) this.#dest.cluster.onConnectResult(this.#healthKey, true);
  }

  /** @internal NativeAcceptedOwner */
  connectFailed(errno: number): void {
    if (this.#over) return;
    const choice = this.#choice;
    this.#choice = undefined;
    choice?.release?.();
    if (this.#healthKey !== undefined) this.#dest.cluster.onConnectResult(this.#healthKey, false);
    if (choice !== undefined) this.#choices.failed(choice.endpoint);
    const timedOut = errno === ETIMEDOUT;
    this.#code = timedOut ? 'REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT' : 'REMORA_ERR_UPSTREAM_CONNECT';
    this.#error = timedOut ? new RemoraError('REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT', 'connecting to the upstream timed out')
      : systemError(-errno, 'connect');
    if (this.#attempts < this.#maxAttempts) this.#attempt();
    else this.#fail(this.#code, this.#error);
  }

  /** @internal NativeAcceptedOwner */
  detect(event: NativeDetectEvent, bytes: Buffer | undefined): void {
    if (this.#protocol !== undefined || this.#over) return;
    const sniffer = this.#sniffer ??= createSniffer(this.#deps.sniffer);
    switch (event) {
      case NativeDetectEvent.clientData: {
        if (bytes === undefined) return;
        const r = sniffer.push(bytes);
        if (r.kind !== 'need-more') this.#decided(r);
        return;
      }
      case NativeDetectEvent.clientFin:
        this.#decided(sniffer.finish('eof'));
        return;
      case NativeDetectEvent.serverData:
        // An HTTP/2 server's preface (SETTINGS, sent at once) is not a server-first protocol: the client still decides.
        if (bytes !== undefined && isHttp2ServerPreface(bytes)) return;
        this.#decided(sniffer.finish('server-first'));
        return;
      case NativeDetectEvent.serverFin:
        this.#decided(sniffer.finish('server-first'));
        return;
      case NativeDetectEvent.timeout:
        this.#decided(sniffer.finish('timeout'));
        return;
    }
  }

  #decided(d: SniffDecision): void {
    this.#sniffer = undefined;
    this.#protocol = sniffLabel(d);
    this.#deps.countSniff(this.#protocol);
    this.#native.watchDone();
  }

  /** @internal NativeAcceptedOwner: a bug in one of the handlers above; the connection ends with it. */
  broken(err: Error): void {
    if (this.#over) return;
    this.#fail('REMORA_ERR_INTERNAL', err);
  }

  /** Reset the client (and the upstream, if any) with `code`; the thread then reports the end. */
  #fail(code: RemoraErrorCode, err: Error): void {
    this.#code = code;
    this.#error = err;
    this.#native.abort();
  }

  /** @internal NativeAcceptedOwner: the thread reported the end (once). */
  ended(forward: NativeTcpForward): void {
    if (this.#over) return;
    this.#over = true;
    this.#sniffer = undefined;
    this.#choice?.release?.();
    this.#choice = undefined;
    if (this.#tracked !== undefined) this.#tracker.delete(this.#tracked);
    this.#tracked = undefined;
    const code = this.#code ?? forward.errorCode;
    const dest = this.#dest;
    this.#done({
      code,
      error: this.#code !== undefined ? this.#error : forward.error,
      bytesIn: forward.bytesDownstreamToUpstream,
      bytesOut: forward.bytesUpstreamToDownstream,
      idleTimeout: forward.idleTimedOut,
      protocol: this.#protocol,
      service: dest.cluster.spec.service === undefined ? undefined : dest.cluster.name,
      endpoint: this.#endpoint,
      attempts: this.#attempts,
      tlsCode: undefined,
      http: false,
      peerIdentity: undefined,
    });
  }

  /** Reset both sides now (drain deadline). */
  abort(code: RemoraErrorCode): void {
    if (this.#over) return;
    this.#fail(code, new RemoraError(code, 'the connection was aborted'));
  }

  describe(now: number): LiveConnection | undefined {
    const f = this.#forward;
    if (this.#over || f === undefined) return undefined;
    // Told only for a member endpoint's health: otherwise the thread's state says.
    const connected = this.#connected || f.upstreamConnected;
    const state: SideState = connected ? f.upstreamState : 'not-connected';
    return {
      ...contextFields(this.#conn, now),
      phase: connected ? 'forward' : 'connect',
      protocol: shownProtocol(this.#conn, this.#protocol ?? (this.#declared === 'detect' ? undefined : `declared:${this.#declared}`)),
      service: this.#dest.cluster.spec.service === undefined ? undefined : this.#dest.cluster.name,
      endpoint: this.#endpoint,
      bytesIn: f.bytesDownstreamToUpstream,
      bytesOut: f.bytesUpstreamToDownstream,
      downstreamState: connected ? f.downstreamState : 'open',
      upstreamState: state,
    };
  }
}
