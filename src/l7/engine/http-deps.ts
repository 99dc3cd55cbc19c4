// The dependencies, options and shared vocabulary of the L7 HTTP engines (http-engine.ts is the entry point).
// Policies are injected through these interfaces and speak the types of l7-contract.ts.
import type { Logger } from '../../core/log.js';
import type { LocalReply, LocalReplyReason, RequestHead, RouteDecision } from '../request-types.js';
import type { AttemptOutcome } from '../../upstream/health/attempt-outcome.js';
import type { RetryPolicy, WeightedBackend } from '../../config/route-spec.js';
import { DEFAULT_REPLAY_LIMIT } from '../http/request-body.js';
import type { UpstreamConnector, UpstreamProtocol } from '../pool/pool-types.js';
import { DEFAULT_POOL_OPTIONS, type UpstreamPools, type UpstreamPoolOptions } from '../pool/upstream-pools.js';

/** What the caller knows about a connection it hands over. */
export interface HttpConnectionContext {
  /** The sniffer's verdict: HTTP/1.x request line, or the HTTP/2 connection preface. */
  readonly protocol: 'http1' | 'http2';
  /** The address the application dialled (SO_ORIGINAL_DST); the passthrough upstream. */
  readonly originalDst: { readonly address: string; readonly port: number };
  /** The client's address (no port). */
  readonly sourceAddress: string;
  /** A logger for this connection (e.g. a child with listener and connection ids); default deps.log. */
  readonly log?: Logger;
}

/** An endpoint as the engine connects to it. `key` defaults to "address:port" ("[v6]:port"). */
export interface L7Endpoint {
  readonly address: string;
  readonly port: number;
  readonly key?: string;
}

export interface EndpointPickContext {
  readonly head: RequestHead;
  /** Keys of the endpoints already tried by this request. */
  readonly tried: ReadonlySet<string>;
  /** The retry policy asks for endpoints not tried yet (when any is left). */
  readonly preferOtherHosts: boolean;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** From RouteDecision.hashOn, for consistent-hash balancers. */
  readonly hashOn: { readonly kind: 'header' | 'cookie' | 'source'; readonly name?: string } | undefined;
}

/** The upstream side of a route's backend, as the integrator resolves it (service registry + balancer + health). */
export interface UpstreamCluster {
  /** Names the pools and stats (the service name). */
  readonly name: string;
  /** Upstream protocol. 'downstream' = the protocol the request arrived with. gRPC requests always use http2. */
  readonly protocol: UpstreamProtocol | 'downstream';
  /** Choose an endpoint, or undefined when none is usable (-> 503 no-healthy-upstream). */
  pick(ctx: EndpointPickContext): L7Endpoint | undefined;
  /**
   * Circuit-breaker admission. 'request' / 'retry': asked by the engine per request / per retry, released when it is
   * over. 'connection' / 'pending': asked by the pools before opening a new upstream connection (released when it
   * closes) and before queueing a request that waits for a connection (released when it leaves the queue).
   * Returns the release function, or undefined when the breaker is open (-> 503 circuit-open). Absent = always
   * admitted.
   */
  admit?(kind: 'request' | 'retry' | 'connection' | 'pending'): (() => void) | undefined;
  /**
   * Admission of a retry that says why it was refused: 'circuit-open' (the max_retries cap) or
   * 'retry-budget-exhausted' (the retry budget). Asked instead of admit('retry') when present. A budget refusal of a
   * retry after a failure without a response ends the request with the local reply retry-budget-exhausted; after an
   * upstream response (e.g. a 503), that response is passed on, as Envoy does.
   */
  admitRetry?(): (() => void) | 'circuit-open' | 'retry-budget-exhausted';
  /** Every attempt's outcome, for outlier detection and load-aware balancing. */
  report?(endpoint: L7Endpoint, outcome: AttemptOutcome): void;
  /**
   * An attempt on a picked endpoint ended without an outcome to report (the client went away, the route timeout
   * fired, the pool's queue overflowed): load-aware balancers stop counting it. Every pick() is followed by exactly
   * one report() or abandon() (a transparent stale-connection retry continues the same pick).
   */
  abandon?(endpoint: L7Endpoint): void;
}

export interface RetryState {
  /** Attempts made so far (1 after the first). */
  readonly attempts: number;
  readonly method: string;
  /** The request (body included) can be sent again. */
  readonly replayable: boolean;
  readonly grpc: boolean;
}

/** The retry policy's decision function (src/l7/retry-policy.ts implements it). */
export interface RetryDecider {
  /**
   * After an attempt ended with `outcome` (a `response` outcome is offered only while the response can still be
   * discarded): retry after `backoffMs`, or stop. `reply` names the local reply to send instead of the last
   * failure's (e.g. 'retry-budget-exhausted').
   */
  decide(policy: RetryPolicy, outcome: AttemptOutcome, state: RetryState):
    | { readonly retry: true; readonly backoffMs: number }
    | { readonly retry: false; readonly reply?: LocalReplyReason };
}

/** Counters (names in docs/l7-engines.md). */
export interface L7Stats {
  increment(name: string, by?: number): void;
}

export interface L7Deps {
  readonly log: Logger;
  /** Route a request. Absent: every request goes to its original destination (passthrough). */
  readonly route?: (head: RequestHead) => RouteDecision;
  /**
   * The cluster of a route's backend. Not called for the passthrough backend (service PASSTHROUGH_SERVICE).
   * undefined = unknown service (-> 404 no-route).
   */
  readonly cluster?: (backend: WeightedBackend, head: RequestHead) => UpstreamCluster | undefined;
  /** Retry decisions; absent = no policy-driven retries (the stale-connection retry still happens). */
  readonly retry?: RetryDecider;
  /** The local reply for a reason (src/l7/local-reply.ts); absent = the built-in table. */
  readonly localReply?: (reason: LocalReplyReason) => LocalReply;
  /** Opens upstream connections; absent = plain TCP (tcpConnector). */
  readonly connect?: UpstreamConnector;
  readonly stats?: L7Stats;
}

export interface HttpEngineOptions {
  /** Largest request head (request line + headers) accepted; beyond: 431. Also the limit for response heads. */
  readonly maxHeaderBytes: number;
  /** Request bodies are kept up to this size so a failed attempt can be replayed. */
  readonly replayBufferBytes: number;
  /** A downstream HTTP/1.1 connection with no request in flight is closed after this long (advertised as Keep-Alive). */
  readonly downstreamIdleTimeoutMs: number;
  /** The request head must arrive within this long (slowloris guard; 408). */
  readonly headersTimeoutMs: number;
  /** An Upgrade / CONNECT tunnel with no byte in either direction for this long is closed. */
  readonly tunnelIdleTimeoutMs: number;
  /** After one side of a tunnel half-closed, the other has this long to finish. */
  readonly halfCloseTimeoutMs: number;
  /** HTTP/2 downstream: SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients. */
  readonly h2MaxConcurrentStreams: number;
  /** HTTP/2 downstream: Node's maxSessionMemory (MB). */
  readonly h2MaxSessionMemoryMb: number;
  /** HTTP/2 (both sides): most header fields in one block. */
  readonly h2MaxHeaderListPairs: number;
  readonly pools: UpstreamPoolOptions;
}

export const DEFAULT_ENGINE_OPTIONS: HttpEngineOptions = Object.freeze({
  maxHeaderBytes: 64 * 1024,
  replayBufferBytes: DEFAULT_REPLAY_LIMIT,
  downstreamIdleTimeoutMs: 3_600_000,
  headersTimeoutMs: 60_000,
  tunnelIdleTimeoutMs: 3_600_000,
  halfCloseTimeoutMs: 60_000,
  h2MaxConcurrentStreams: 1000,
  h2MaxSessionMemoryMb: 32,
  h2MaxHeaderListPairs: 2000,
  pools: DEFAULT_POOL_OPTIONS,
});

/** The backend service name that means "the original destination". */
export const PASSTHROUGH_SERVICE = 'passthrough';

const NO_RETRY: RetryPolicy = Object.freeze({
  maxAttempts: 1,
  on: [],
  statuses: [],
  grpcStatuses: [],
  perTryTimeoutMs: 0,
  backoffBaseMs: 0,
  backoffMaxMs: 0,
  preferOtherHosts: false,
});

/** What a request gets when there is no route configuration: forward to the original destination, no timeout. */
export const PASSTHROUGH_DECISION: RouteDecision = Object.freeze({
  kind: 'forward',
  route: PASSTHROUGH_SERVICE,
  backend: Object.freeze({ service: PASSTHROUGH_SERVICE, weight: 1 }),
  timeoutMs: 0,
  retry: NO_RETRY,
  requestHeaders: Object.freeze({ add: [], remove: [] }),
  responseHeaders: Object.freeze({ add: [], remove: [] }),
});

// Statuses as in src/l7/local-reply.ts (used only when deps.localReply is absent).
const BUILTIN_REPLIES: Readonly<Record<LocalReplyReason, readonly [number, boolean]>> = {
  'no-route': [404, false],
  'no-healthy-upstream': [503, false],
  'circuit-open': [503, false],
  'upstream-connect-failure': [503, false],
  'upstream-reset': [502, false],
  'upstream-timeout': [504, false],
  'request-timeout': [408, true],
  'bad-request': [400, true],
  'request-smuggling': [400, true],
  'header-too-large': [431, true],
  'retry-budget-exhausted': [503, false],
};

export function builtinLocalReply(reason: LocalReplyReason): LocalReply {
  const [status, close] = BUILTIN_REPLIES[reason];
  return { status, reason, body: `${reason}\n`, close };
}

/** Shared state of the engines (one per HttpEngine). */
export interface EngineCore {
  readonly deps: L7Deps;
  readonly options: HttpEngineOptions;
  readonly pools: UpstreamPools;
  readonly stats: L7Stats;
  readonly localReply: (reason: LocalReplyReason) => LocalReply;
}

