// The entry point of the L7 HTTP engines: a connection that the sniffer classified as HTTP/1.x or HTTP/2 (h2c prior
// knowledge) is handed over with the bytes already read from it, and is then proxied request by request.
//
//   const engine = createHttpEngine({ log, stats, runtime: () => current.http.outbound }, options);
//   engine.handleConnection(socket, initialBytes, { protocol: 'http1', originalDst, sourceAddress, service });
//   engine.handleHttp1Handle(tcpHandle, initialBytes, ctx, (bytesIn, bytesOut) => ...);   // no net.Socket
//   ...
//   await engine.shutdown(5_000);
//
// The engines own sockets, streams and the upstream pools; at every request head they create the request context
// and run the request chain of the runtime in force (src/l7/http-runtime.ts: filters, then the router). See
// docs/l7-engines.md.
import type { Socket } from 'node:net';
import type { Logger } from '../../core/log.js';
import type { TcpHandle } from '../../core/tcp-handle.js';
import type { HttpRuntime } from '../http-runtime.js';
import { fastAsyncResourceBind } from '../pool/async-bind-fix.js';
import { UpstreamPools } from '../pool/upstream-pools.js';
import type { HttpConnectionContext } from '../request-types.js';
import { SocketTransport } from './downstream-transport.js';
import { DEFAULT_ENGINE_OPTIONS, type EngineCore, type HttpEngineOptions, type L7Stats } from './engine-core.js';
import { HandleTransport, type TransportClosed } from './handle-transport.js';
import { Http1Engine } from './http1-engine.js';
import { Http2Engine } from './http2-engine.js';
import { H2Engine } from './h2-engine.js';

export { DEFAULT_ENGINE_OPTIONS, type HttpEngineOptions, type L7Stats } from './engine-core.js';

export interface HttpEngineDeps {
  readonly log: Logger;
  /** The HTTP runtime of this listener now (read at every request head). */
  readonly runtime: () => HttpRuntime;
  readonly stats?: L7Stats | undefined;
}

export interface HttpEngine {
  /**
   * Take over `socket` (paused, with no 'data'/'readable' listener of the caller left on it) whose first bytes,
   * already read by the sniffer, are `initialBytes` (may be empty). Never throws; every error of the connection is
   * counted and logged. The engine sets `socket.allowHalfOpen` (true for HTTP/1.x: half-closed clients still get
   * answers; false for HTTP/2, which has no half-close).
   */
  handleConnection(socket: Socket, initialBytes: Buffer, ctx: HttpConnectionContext): void;
  /**
   * Take over an HTTP/1.x connection on its accepted TCP handle (src/core/tcp-handle.ts: no net.Socket; not reading)
   * whose first bytes are `initialBytes`. `closed` hears, once, when the connection is over and its bytes each way.
   * Never throws.
   */
  handleHttp1Handle(handle: TcpHandle, initialBytes: Buffer, ctx: HttpConnectionContext, closed: TransportClosed): void;
  /**
   * Begin a drain: connections are still taken and every request read is answered, but each HTTP/1.1 response carries
   * `Connection: close` (and ends its connection) and each HTTP/2 session gets GOAWAY (a session opened during the
   * drain right after its first stream). Idle HTTP/1.1 keep-alive connections are left alone: the client learns on
   * its next request, which is answered, instead of racing a close.
   */
  drain(): void;
  /**
   * End of the drain grace: close idle HTTP/1.1 connections (no request in flight and no byte read since their last
   * response), and each other one as soon as it becomes idle. Implies drain().
   */
  closeIdle(): void;
  /** Resolves when no downstream connection is left. */
  whenEmpty(): Promise<void>;
  /**
   * Stop taking requests: closeIdle(), then wait until every downstream connection is closed; what is still open
   * after `graceMs` is destroyed (and connections handed over from then on too). Upstream pools are closed as well.
   */
  shutdown(graceMs: number): Promise<void>;
  /** Downstream connections currently handled. */
  readonly activeConnections: number;
  /** Upstream pool counts. */
  poolSnapshot(): ReturnType<UpstreamPools['snapshot']>;
}

const NO_STATS: L7Stats = { increment() {} };

export function createHttpEngine(deps: HttpEngineDeps, options: Partial<HttpEngineOptions> = {}): HttpEngine {
  const opts: HttpEngineOptions = { ...DEFAULT_ENGINE_OPTIONS, ...options };
  // node:http2 client requests pay ~15 µs each in Node 20's AsyncResource.bind: replaced once per process.
  fastAsyncResourceBind();
  const stats = deps.stats ?? NO_STATS;
  const core: EngineCore = {
    log: deps.log,
    options: opts,
    pools: new UpstreamPools(opts.pools, stats, opts.http2Codec),
    stats,
    runtime: deps.runtime,
  };
  const h1 = new Http1Engine(core);
  const h2 = opts.http2Codec === 'remora' ? new H2Engine(core) : new Http2Engine(core);
  return {
    handleConnection(socket, initialBytes, ctx) {
      try {
        // HTTP/1.1: a half-closed client still gets its answers. HTTP/2 has no half-close: a FIN ends the session.
        socket.allowHalfOpen = ctx.protocol === 'http1';
        if (ctx.protocol === 'http2') h2.handle(socket, initialBytes, ctx);
        else h1.handle(new SocketTransport(socket), initialBytes, ctx);
      } catch (err) {
        stats.increment('http.connection_errors');
        (ctx.log ?? deps.log).warn({ err }, 'http connection setup failed');
        socket.destroy();
      }
    },
    handleHttp1Handle(handle, initialBytes, ctx, closed) {
      try {
        h1.handle(new HandleTransport(handle, closed), initialBytes, ctx);
      } catch (err) {
        stats.increment('http.connection_errors');
        (ctx.log ?? deps.log).warn({ err }, 'http connection setup failed');
        handle.destroy();
      }
    },
    drain() {
      h1.drain();
      h2.drain();
    },
    closeIdle() {
      h1.closeIdle();
      h2.closeIdle();
    },
    async whenEmpty() {
      await Promise.all([h1.whenEmpty(), h2.whenEmpty()]);
    },
    async shutdown(graceMs) {
      await Promise.all([h1.shutdown(graceMs), h2.shutdown(graceMs)]);
      core.pools.destroy();
    },
    get activeConnections() {
      return h1.activeConnections + h2.activeConnections;
    },
    poolSnapshot() {
      return core.pools.snapshot();
    },
  };
}
