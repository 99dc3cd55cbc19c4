// One connection through the stages that come before forwarding: detect (sniff, with the upstream pre-dialed so
// server-first protocols add no delay), route by service (VIP, then SNI/Host), pick + connect with retries (or TLS
// origination) through the cluster, then forward (TcpForward, or with tcp_forwarder = native the native forwarding
// thread: src/l4/native-forwarder.ts), or hand the connection to the HTTP engine when the
// listener runtime has one. The plain case (an original-destination cluster whose protocol needs no detection) does
// not come here: the pipeline (connection-pipeline.ts) wires it straight to TcpForward.
//
// Every connection ends exactly once (`done`, after it leaves the tracker): after the forward's end (reported by the
// ForwardedConnection this object hands over to when forwarding begins), after the HTTP engine's socket closes, or
// after the downstream socket closes before forwarding began (a failure, a refusal, a client that left). Until
// forwarding begins, this object owns both sockets' 'error'/'close' listeners; a failure before forwarding resets the
// client (as a failed connect would look without the mesh).
import { resetSocket } from '../core/reset-socket.js';
import type { LiveEntry } from '../core/live-set.js';
import type { Socket } from 'node:net';
import { RemoraError, type RemoraErrorCode } from '../core/errors.js';
import type { ListenerCounters } from '../core/stats.js';
import type { Destination, AcceptRoute } from './accept-route.js';
import type { MtlsMode } from '../config/mtls-settings.js';
import { MESH_ALPN } from '../upstream/transport/mesh-identity.js';
import { derivedContext, type ConnectionContext, type ConnectionDone, type ConnectionOutcome, type ConnectionStage, type SocketConnectionContext } from './connection-context.js';
import type { ConnectionTracker, TrackedConnection } from './connection-pipeline.js';
import type { TerminationResult } from './mesh-termination.js';
import { DetectStage, type DetectResult } from './detect/detect-stage.js';
import { destinationKey, type HttpDestinationMemory } from './detect/http-destinations.js';
import type { OpaqueReason, SniffDecision, SnifferOptions } from './detect/protocol-sniffer.js';
import { contextFields, shownProtocol, sideState, type LiveConnection } from './live-connection.js';
import { ForwardedConnection } from './forwarded-connection.js';
import { processForwarder } from './native-forwarder.js';
import { TcpForward, type OpaqueForward } from './tcp-forward.js';
import { UpstreamDial } from './upstream-dialer.js';

/** Shared by all connections of a listener (not per runtime). */
export interface StagedDeps {
  readonly sniffer?: SnifferOptions | undefined;
  readonly counters: ListenerCounters;
  readonly countSniff: (label: string) => void;
  /**
   * Destinations recently handed to the HTTP engine: their pre-dial waits HTTP_DESTINATION_PREDIAL_DELAY_MS for the
   * client to speak first (the HTTP engine would not use it).
   */
  readonly httpDestinations?: HttpDestinationMemory | undefined;
  /**
   * The terminal stage again (the pipeline's run), for the plaintext inside a terminated mesh mTLS connection: it is
   * routed, detected and forwarded like any connection, with the client's identity in its context.
   */
  readonly reenter?: ConnectionStage | undefined;
  /**
   * tcp_forwarder: 'native' hands a plain TCP forward to the native forwarding thread (src/l4/native-forwarder.ts);
   * 'node' (or absent) forwards with TcpForward.
   */
  readonly tcpForwarder?: 'native' | 'node' | undefined;
}

/** The label of each opaque reason, made once (a label is kept by every connection it names). */
const OPAQUE_LABELS: Readonly<Record<OpaqueReason, string>> = {
  unrecognized: 'opaque:unrecognized', 'tls-malformed': 'opaque:tls-malformed', 'too-large': 'opaque:too-large', eof: 'opaque:eof',
  timeout: 'opaque:timeout', 'server-first': 'opaque:server-first', 'internal-error': 'opaque:internal-error',
};

export function sniffLabel(d: SniffDecision): string {
  return d.kind === 'opaque' ? OPAQUE_LABELS[d.reason] : d.kind;
}

/**
 * 'mesh': the mTLS handshake is running; 'inner': the plaintext inside it is a connection of its own; 'ended': over,
 * or forwarded as opaque TCP (a ForwardedConnection carries it on).
 */
type Phase = 'pre' | 'http' | 'mesh' | 'inner' | 'ended';

/**
 * After the pre-dialed upstream failed, how long a connection that only the HTTP engine could still serve waits for
 * the client's first bytes before it is reset (an HTTP client sends at once; a silent one must not wait out the whole
 * detection deadline for a connect that already failed).
 */
export const PREDIAL_FAILED_GRACE_MS = 1_000;

/**
 * For a destination whose last connection was HTTP (HttpDestinationMemory): how long the client has to send its
 * first bytes before the upstream is dialed after all (a silent client, or a server-first protocol, waits this long).
 */
export const HTTP_DESTINATION_PREDIAL_DELAY_MS = 25;

export class StagedConnection {
  readonly #deps: StagedDeps;
  readonly #conn: ConnectionContext;
  readonly #down: Socket;
  readonly #route: AcceptRoute;
  readonly #done: ConnectionDone;
  /** The live connections: this one is in it from start() until it is over, before `done`. */
  readonly #tracker: ConnectionTracker;
  #tracked: LiveEntry<TrackedConnection> | undefined;
  #phase: Phase = 'pre';
  #stage: DetectStage | undefined;
  #detected: DetectResult | undefined;
  #dial: UpstreamDial | undefined;
  /** The last dial started (kept for the log line after #dial is dropped). */
  #lastDial: UpstreamDial | undefined;
  #dialDest: Destination | undefined;
  /** The connected upstream of #dial, while this object listens on it (before forwarding). */
  #up: Socket | undefined;
  #upLost: Error | undefined;
  #protocol: string | undefined;
  #service: string | undefined;
  #code: RemoraErrorCode | undefined;
  #error: Error | undefined;
  #tlsCode: string | undefined;
  #predialTimer: NodeJS.Timeout | undefined;
  /** destinationKey() of the original destination, made on first use. */
  #key: string | undefined;
  /** Inbound mesh mTLS applies to this connection (until detection shows it is not mesh TLS, in permissive mode). */
  #mesh: Exclude<MtlsMode, 'disable'> | undefined;
  #forgetMesh: (() => void) | undefined;
  /** The outcome of the connection inside mesh mTLS. */
  #inner: ConnectionOutcome | undefined;

  constructor(deps: StagedDeps, conn: SocketConnectionContext, route: AcceptRoute, done: ConnectionDone, tracker: ConnectionTracker) {
    this.#deps = deps;
    this.#conn = conn;
    this.#down = conn.socket;
    this.#route = route;
    this.#done = done;
    this.#tracker = tracker;
  }

  /** Run the stages. Called once, right after accept. */
  start(): void {
    this.#tracked = this.#tracker.add(this);
    const route = this.#route;
    const deps = this.#deps;
    const rt = this.#conn.runtime;
    const down = this.#down;
    down.on('error', this.#onDownError);
    down.on('close', this.#onDownClose);
    const declared = route.declared;
    const mtls = rt.mtls;
    if (mtls !== undefined && this.#conn.peerIdentity === undefined && this.#conn.direction === 'inbound') {
      const mode = mtls.modeFor(this.#conn.originalDst.port);
      if (mode !== 'disable') {
        this.#startMesh(mode);
        return;
      }
    }
    const sniff = declared === 'detect' || route.needName;
    if (!sniff) {
      this.#protocol = `declared:${declared}`;
      deps.countSniff(this.#protocol);
    }
    if (route.destination.kind === 'refuse' && !route.needName) {
      this.#refuse(route.destination.reason);
      return;
    }
    if ((declared === 'http' || declared === 'http2') && rt.http !== undefined) {
      this.#handOffHttp(declared === 'http' ? 'http1' : 'http2', Buffer.alloc(0));
      return;
    }
    if (sniff) {
      // Sniff. Pre-dial where the connection would go without a name, so that a server that speaks first is heard at
      // once: only for detection (declared protocols are client-first) and never to a refused destination.
      const wantHost = route.needName && rt.http === undefined;
      this.#stage = new DetectStage(down, { sniff: true, timeoutMs: rt.detectTimeoutMs, wantHost, sniffer: deps.sniffer },
        this.#onDetected);
      if (declared === 'detect' && route.destination.kind !== 'refuse') this.#predial(route.destination);
      return;
    }
    // Declared, destination known without a name: hold the client's bytes while the upstream is dialed.
    this.#stage = new DetectStage(down, { sniff: false, timeoutMs: 0, wantHost: false }, this.#onDetected);
    this.#dialTo(route.destination);
  }

  /**
   * Inbound with mesh mTLS: detection always runs, to recognise the mesh ClientHello. Permissive mode pre-dials the
   * app as usual (plaintext clients of server-first protocols are heard at once); strict mode does not (nothing but
   * mesh mTLS will be accepted, and a mesh client speaks first).
   */
  #startMesh(mode: Exclude<MtlsMode, 'disable'>): void {
    this.#mesh = mode;
    const rt = this.#conn.runtime;
    this.#stage = new DetectStage(this.#down, { sniff: true, timeoutMs: rt.detectTimeoutMs, wantHost: false, sniffer: this.#deps.sniffer },
      this.#onDetected);
    const declared = this.#route.declared;
    if (mode === 'permissive' && declared !== 'http' && declared !== 'http2') this.#predial(this.#route.destination);
  }

  /**
   * Pre-dial `dest` during detection. It waits HTTP_DESTINATION_PREDIAL_DELAY_MS for the client to speak first where
   * the dial is likely wasted or costly: a destination whose last connections were HTTP (the HTTP engine would take
   * this one too and never use the dial), and a service reached over mesh mTLS (a handshake on both sidecars).
   */
  #predial(dest: Destination): void {
    if (dest.kind !== 'cluster') return;
    const wait = dest.cluster.tls?.kind === 'mtls' || this.#deps.httpDestinations?.isHttp(this.#destKey()) === true;
    if (!wait) {
      this.#dialTo(dest);
      return;
    }
    this.#predialTimer = setTimeout(() => {
      this.#predialTimer = undefined;
      if (this.#phase === 'pre' && this.#detected === undefined && this.#dial === undefined) this.#dialTo(dest);
    }, HTTP_DESTINATION_PREDIAL_DELAY_MS);
  }

  /** Reset both sides now (drain deadline). */
  abort(code: RemoraErrorCode): void {
    if (this.#phase === 'http') {
      this.#record(code, new RemoraError(code, 'the connection was aborted'));
      this.#down.destroy();
      return;
    }
    // 'inner': the connection inside mTLS is tracked (and aborted) on its own.
    if (this.#phase !== 'pre' && this.#phase !== 'mesh') return;
    this.#record(code, new RemoraError(code, 'the connection was aborted'));
    this.#teardown();
  }

  #record(code: RemoraErrorCode, err: Error): void {
    if (this.#code !== undefined) return;
    this.#code = code;
    this.#error = err;
  }

  // === dialing ===
  #dialTo(dest: Destination): void {
    if (dest.kind !== 'cluster') return;
    const cluster = dest.cluster;
    if (cluster.spec.service !== undefined) this.#service = cluster.name;
    this.#dialDest = dest;
    this.#upLost = undefined;
    const dial = new UpstreamDial({
      cluster,
      target: dest.target,
      attempts: dest.target === undefined ? (cluster.spec.service?.connectAttempts ?? 1) : 1,
      sourceAddress: this.#conn.peerAddress,
    }, this.#onDialDone);
    this.#dial = dial;
    this.#lastDial = dial;
    dial.start();
  }

  /** Drop the current dial (not needed, or another destination was chosen). */
  #dropDial(): void {
    const dial = this.#dial;
    this.#dial = undefined;
    this.#dialDest = undefined;
    if (dial === undefined) return;
    if (dial.state === 'connecting') dial.cancel();
    const up = this.#up;
    this.#up = undefined;
    if (up !== undefined) {
      up.off('error', this.#onUpError);
      up.off('close', this.#onUpClose);
      up.destroy();
    }
  }

  readonly #onDialDone = (dial: UpstreamDial): void => {
    if (dial !== this.#dial || this.#phase !== 'pre') {
      dial.socket?.destroy();
      return;
    }
    if (dial.state === 'failed') {
      // Still waiting for the client, and the client's bytes could still lead elsewhere: decide later. A name may
      // select another service (full deadline); the HTTP engine answers an HTTP client itself (a 503 instead of a
      // reset), and an HTTP client speaks at once: a short grace, then the client is reset as the connect failed.
      const stage = this.#stage;
      if (stage !== undefined && !stage.finished && this.#detected === undefined && this.#hasAlternatives()) {
        if (!this.#route.needName) stage.shortenDeadline(PREDIAL_FAILED_GRACE_MS);
        return;
      }
      this.#failDial(dial);
      return;
    }
    const up = dial.socket;
    if (up === undefined) return;
    this.#up = up;
    up.on('error', this.#onUpError);
    up.on('close', this.#onUpClose);
    if (this.#detected !== undefined) {
      this.#startForward(up, this.#detected);
      return;
    }
    const stage = this.#stage;
    if (stage === undefined) return;
    if (this.#route.declared === 'detect' && !stage.finished) stage.watchUpstream(up);
    else if (!this.#route.needName) this.#startForward(up, stage.stop());
  };

  /** Could the connection still go somewhere other than the pre-dialed destination (once the bytes are known)? */
  #hasAlternatives(): boolean {
    return this.#route.needName || (this.#route.declared === 'detect' && this.#conn.runtime.http !== undefined);
  }

  readonly #onUpError = (err: Error): void => {
    this.#upLost ??= err;
  };

  readonly #onUpClose = (): void => {
    const up = this.#up;
    this.#up = undefined;
    up?.off('error', this.#onUpError);
    up?.off('close', this.#onUpClose);
    this.#upLost ??= new Error('the upstream closed the connection before forwarding began');
    if (this.#phase !== 'pre') return;
    if (this.#detected === undefined && this.#hasAlternatives()) {
      if (!this.#route.needName) this.#stage?.shortenDeadline(PREDIAL_FAILED_GRACE_MS);
      return;
    }
    this.#stage?.cancel();
    this.#record('REMORA_ERR_UPSTREAM_RESET', this.#upLost);
    this.#teardown();
  };

  #failDial(dial: UpstreamDial): void {
    this.#record(dial.failureCode ?? 'REMORA_ERR_UPSTREAM_CONNECT', dial.error ?? new Error('connect failed'));
    this.#tlsCode = dial.tlsCode;
    this.#teardown();
  }

  // === detection and routing ===
  readonly #onDetected = (result: DetectResult): void => {
    if (this.#phase !== 'pre') return;
    this.#clearPredialTimer();
    this.#detected = result;
    const d = result.decision;
    const declared = this.#route.declared;
    // Detection ran only to look for mesh mTLS on a port whose protocol is declared: the declaration decides the rest.
    const meshOnly = this.#mesh !== undefined && declared !== 'detect';
    if (d?.kind === 'opaque' && d.reason === 'eof' && result.head.length === 0
      && (this.#mesh !== undefined || this.#conn.peerIdentity !== undefined)) {
      // Connected and closed without a byte: over mesh mTLS, a client sidecar's pre-dial it did not need (its client
      // turned out to speak HTTP); on a mesh port, the same before its ClientHello, or a port check. Nothing to
      // refuse, authorize or forward: closed quietly, counted as `empty`.
      this.#conn.runtime.mtls?.stats.inbound.increment('empty');
      this.#protocol = 'empty';
      this.#closeQuietly();
      return;
    }
    if (this.#mesh !== undefined) {
      if (d?.kind === 'tls' && d.alpn.includes(MESH_ALPN)) {
        this.#protocol = 'mtls';
        this.#deps.countSniff('mtls');
        this.#terminateMesh(result.head);
        return;
      }
      const mtls = this.#conn.runtime.mtls;
      const what = d?.kind === 'tls' ? 'foreign-tls' : 'plaintext';
      if (this.#mesh === 'strict') {
        mtls?.stats.inbound.increment(`refused.${what}`);
        this.#protocol = d === undefined ? undefined : sniffLabel(d);
        this.#record('REMORA_ERR_MTLS_REQUIRED', new RemoraError('REMORA_ERR_MTLS_REQUIRED',
          `strict mTLS on port ${this.#conn.originalDst.port}: the connection is ${what === 'plaintext' ? 'plaintext' : 'TLS without the mesh ALPN'}`));
        this.#teardown();
        return;
      }
      mtls?.stats.inbound.increment('plaintext');
      this.#mesh = undefined;
      if (declared !== 'detect') {
        // Sniffed only to look for mesh mTLS: the port's declared protocol decides the rest.
        this.#protocol = `declared:${declared}`;
        this.#deps.countSniff(this.#protocol);
        if ((declared === 'http' || declared === 'http2') && this.#conn.runtime.http !== undefined) {
          this.#handOffHttp(declared === 'http' ? 'http1' : 'http2', result.head);
          return;
        }
      }
    }
    if (d !== undefined && !meshOnly) {
      this.#protocol = sniffLabel(d);
      this.#deps.countSniff(this.#protocol);
      const memory = this.#deps.httpDestinations;
      if ((d.kind === 'http1' || d.kind === 'http2') && this.#conn.runtime.http !== undefined) {
        memory?.recordHttp(this.#destKey(), d.kind);
        this.#handOffHttp(d.kind, result.head);
        return;
      }
      // Not HTTP after all (or a silent client, as a server-first protocol looks without a pre-dial): pre-dial again.
      memory?.forget(this.#destKey());
    }
    let dest = this.#route.destination;
    if (this.#route.needName && result.hostname !== undefined) {
      dest = this.#conn.runtime.router.byName(this.#conn.originalDst, result.hostname) ?? dest;
    }
    if (dest.kind === 'refuse') {
      this.#refuse(result.hostname === undefined ? dest.reason : `${dest.reason} (host name ${result.hostname})`);
      return;
    }
    if (dest !== this.#dialDest || this.#dial === undefined) {
      this.#dropDial();
      this.#dialTo(dest);
      return;
    }
    const dial = this.#dial;
    if (dial.state === 'failed') {
      this.#failDial(dial);
    } else if (this.#upLost !== undefined) {
      this.#record('REMORA_ERR_UPSTREAM_RESET', this.#upLost);
      this.#teardown();
    } else if (this.#up !== undefined) {
      this.#startForward(this.#up, result);
    }
    // else: still connecting; #onDialDone forwards.
  };

  #refuse(reason: string): void {
    this.#record('REMORA_ERR_UNKNOWN_DESTINATION', new RemoraError('REMORA_ERR_UNKNOWN_DESTINATION', reason));
    this.#teardown();
  }

  #clearPredialTimer(): void {
    if (this.#predialTimer === undefined) return;
    clearTimeout(this.#predialTimer);
    this.#predialTimer = undefined;
  }

  #destKey(): string {
    this.#key ??= destinationKey(this.#conn.originalDst.address, this.#conn.originalDst.port);
    return this.#key;
  }

  // === hand-offs ===
  #terminateMesh(head: Buffer): void {
    const mtls = this.#conn.runtime.mtls;
    if (mtls === undefined) return;
    this.#phase = 'mesh';
    this.#stage = undefined;
    this.#dropDial();
    this.#forgetMesh = mtls.terminator.terminate(this.#down, head, this.#onMeshDone);
  }

  readonly #onMeshDone = (r: TerminationResult): void => {
    this.#forgetMesh = undefined;
    if (this.#phase !== 'mesh') {
      if (r.ok) r.socket.destroy();
      return;
    }
    if (!r.ok) {
      this.#tlsCode = r.reason;
      this.#record('REMORA_ERR_MTLS_HANDSHAKE', r.error);
      this.#teardown();
      return;
    }
    const reenter = this.#deps.reenter;
    if (reenter === undefined) {
      r.socket.destroy();
      return;
    }
    this.#phase = 'inner';
    // The raw socket belongs to the TLS socket now; the connection inside is followed through its own outcome.
    this.#down.off('error', this.#onDownError);
    const inner: ConnectionContext = { ...this.#conn, socket: r.socket, peerIdentity: r.spiffeId, peerCertificateHash: r.certificateSha256 };
    reenter(inner, this.#onInnerDone);
  };

  readonly #onInnerDone = (outcome: ConnectionOutcome): void => {
    this.#inner = outcome;
    this.#finish();
  };

  /** Whether an opaque forward may go ahead (authorization policies of the listener; refused: torn down). */
  #authorized(): boolean {
    const authorize = this.#conn.runtime.authorize;
    if (authorize === undefined || authorize(this.#conn)) return true;
    this.#record('REMORA_ERR_AUTHZ_DENIED', new RemoraError('REMORA_ERR_AUTHZ_DENIED', 'an authorization policy denied the connection'));
    this.#teardown();
    return false;
  }

  /**
   * Forward as opaque TCP: in the native forwarding thread when it takes both sockets, else with TcpForward. A
   * ForwardedConnection carries the connection from here (tracked in this object's place, told of the end), and this
   * object, its dial and its listeners are left to be collected.
   */
  #startForward(up: Socket, result: DetectResult): void {
    if (!this.#authorized()) return;
    this.#phase = 'ended';
    this.#stage = undefined;
    this.#up = undefined;
    up.off('error', this.#onUpError);
    up.off('close', this.#onUpClose);
    const down = this.#down;
    down.off('error', this.#onDownError);
    down.off('close', this.#onDownClose);
    const deps = this.#deps;
    const conn = this.#conn;
    const rt = conn.runtime;
    const dial = this.#lastDial;
    const facts = { protocol: this.#protocol, service: this.#service, endpoint: dial?.endpoint, attempts: dial?.attempts ?? 0 };
    if (deps.tcpForwarder === 'native') {
      // The thread owns both connections now and the sockets are closed: the connection's context drops its socket.
      const forwarded = new ForwardedConnection(derivedContext(conn, undefined, undefined, undefined, conn.watch), facts, this.#done, this.#tracker);
      const native = processForwarder()?.handOver(down, up, {
        idleTimeoutMs: rt.idleTimeoutMs, counters: deps.counters, onEnd: forwarded.end, head: result.head,
      }) ?? 'addon';
      if (typeof native !== 'string') {
        deps.counters.nativeForwards++;
        dial?.forgetSocket();
        this.#forwarding(forwarded, native);
        return;
      }
      deps.counters.nativeFallbacks++;
    }
    const forwarded = new ForwardedConnection(conn, facts, this.#done, this.#tracker);
    this.#forwarding(forwarded, new TcpForward(down, up, {
      idleTimeoutMs: rt.idleTimeoutMs,
      counters: deps.counters,
      onEnd: forwarded.end,
      head: result.head,
      downstreamEnded: result.clientEnded,
      upstreamConnected: true,
    }));
  }

  /** The forward runs: the ForwardedConnection is tracked in this object's place, and the watcher hears of it. */
  #forwarding(forwarded: ForwardedConnection, forward: OpaqueForward): void {
    forwarded.start(forward);
    this.#untrack();
    this.#conn.watch?.forwarding(this.#conn, this.#service, this.#lastDial?.endpoint, forward);
  }

  #handOffHttp(protocol: 'http1' | 'http2', head: Buffer): void {
    const handler = this.#conn.runtime.http;
    if (handler === undefined) return;
    this.#phase = 'http';
    this.#stage?.cancel();
    this.#stage = undefined;
    this.#dropDial();
    // The engine owns the socket's errors from now on; this object only waits for it to close.
    this.#down.off('error', this.#onDownError);
    const dest = this.#route.destination;
    handler.handleConnection(this.#down, head, {
      protocol,
      connection: this.#conn,
      service: dest.kind === 'cluster' && dest.cluster.spec.service !== undefined ? dest.cluster.name : undefined,
    });
  }

  // === the downstream before forwarding ===
  readonly #onDownError = (err: Error): void => {
    this.#record('REMORA_ERR_DOWNSTREAM_RESET', err);
    this.#teardown();
  };

  readonly #onDownClose = (): void => {
    if (this.#phase === 'http') {
      this.#finish();
      return;
    }
    if (this.#phase === 'mesh') {
      // The client left (or the handshake failed and closed it) before the connection inside began.
      this.#forgetMesh?.();
      this.#forgetMesh = undefined;
      this.#finish();
      return;
    }
    if (this.#phase !== 'pre') return;
    // The client went away before forwarding began (or a failure above reset it).
    this.#stage?.cancel();
    this.#stage = undefined;
    this.#dropDial();
    this.#finish();
  };

  /** Before forwarding, nothing to report: stop everything and end the client's side gracefully. */
  #closeQuietly(): void {
    this.#clearPredialTimer();
    this.#stage?.cancel();
    this.#stage = undefined;
    this.#dropDial();
    if (this.#down.destroyed) return;
    this.#down.end();
    this.#down.destroySoon();
  }

  /** Before forwarding: stop everything and reset the client; #onDownClose then finishes. */
  #teardown(): void {
    this.#clearPredialTimer();
    this.#stage?.cancel();
    this.#stage = undefined;
    this.#dropDial();
    // A destroyed socket emits (or has emitted, with our listener on it) 'close': #onDownClose finishes.
    resetSocket(this.#down);
  }

  #untrack(): void {
    if (this.#tracked !== undefined) this.#tracker.delete(this.#tracked);
    this.#tracked = undefined;
  }

  #finish(): void {
    this.#clearPredialTimer();
    if (this.#phase === 'ended') return;
    const inner = this.#inner;
    if (inner !== undefined) {
      this.#phase = 'ended';
      this.#untrack();
      this.#done({ ...inner, protocol: inner.protocol === undefined ? 'mtls' : `mtls/${inner.protocol}` });
      return;
    }
    const http = this.#phase === 'http';
    this.#phase = 'ended';
    const dial = this.#lastDial;
    // An HTTP connection's bytes are the client socket's (read from it, written to it), counted once at its close.
    const bytesIn = http ? this.#down.bytesRead : 0;
    const bytesOut = http ? this.#down.bytesWritten : 0;
    if (http) {
      this.#deps.counters.downstreamToUpstream += bytesIn;
      this.#deps.counters.upstreamToDownstream += bytesOut;
    }
    this.#untrack();
    this.#done({
      code: this.#code,
      error: this.#error,
      bytesIn,
      bytesOut,
      idleTimeout: false,
      protocol: this.#protocol,
      service: this.#service,
      endpoint: dial?.endpoint,
      attempts: dial?.attempts ?? 0,
      tlsCode: this.#tlsCode,
      http,
      peerIdentity: this.#conn.peerIdentity,
    });
  }

  /**
   * This connection as /debug/connections shows it, read now; undefined once it is over, and while it is the mTLS
   * shell of a connection inside (that one is tracked and shown itself, with the client's identity).
   */
  describe(now: number): LiveConnection | undefined {
    const phase = this.#phase;
    if (phase === 'ended' || phase === 'inner') return undefined;
    const down = this.#down;
    const http = phase === 'http';
    return {
      ...contextFields(this.#conn, now),
      phase: http ? 'http' : phase === 'mesh' ? 'mtls-handshake' : this.#detected === undefined && this.#stage !== undefined && this.#route.declared === 'detect' ? 'detect' : 'connect',
      protocol: shownProtocol(this.#conn, this.#protocol),
      service: this.#service ?? (http && this.#route.destination.kind === 'cluster' && this.#route.destination.cluster.spec.service !== undefined ? this.#route.destination.cluster.name : undefined),
      endpoint: http ? undefined : this.#lastDial?.endpoint,
      bytesIn: http ? down.bytesRead : 0,
      bytesOut: http ? down.bytesWritten : 0,
      downstreamState: sideState(down),
      upstreamState: http ? undefined : sideState(this.#up),
    };
  }

  /** For the debug line at accept: where the connection is going, when already known. */
  describeDestination(): string | undefined {
    const d = this.#route.destination;
    if (d.kind !== 'cluster') return undefined;
    if (d.target !== undefined) return d.target.address.includes(':') ? `[${d.target.address}]:${d.target.port}` : `${d.target.address}:${d.target.port}`;
    return `service ${d.cluster.name}`;
  }
}
