// What the HTTP engines of one listener share: options, counters, the upstream pools, and where to find the runtime
// in force (read at every request head, so a reload affects the next requests). Built by http-engine.ts.
import type { Logger } from '../../core/log.js';
import type { HttpRuntime } from '../http-runtime.js';
import { DEFAULT_REPLAY_LIMIT } from '../http/request-body.js';
import { DEFAULT_POOL_OPTIONS, type UpstreamPools, type UpstreamPoolOptions } from '../pool/upstream-pools.js';

/** Counters (names in docs/l7-engines.md). */
export interface L7Stats {
  increment(name: string, by?: number): void;
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
  /** HTTP/2 on both sides: remora's own codec (src/l7/h2/) or node:http2. */
  readonly http2Codec: 'remora' | 'node';
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
  http2Codec: 'remora',
});

/** Shared state of the engines (one per HttpEngine). */
export interface EngineCore {
  readonly log: Logger;
  readonly options: HttpEngineOptions;
  readonly pools: UpstreamPools;
  readonly stats: L7Stats;
  /** The runtime in force now. */
  readonly runtime: () => HttpRuntime;
}
