// Loopback harness for the L7 engine integration tests: a local net.Server plays the capture listener and the
// sniffer (it reads the first bytes, pauses the socket and hands it over with those bytes), with a fixed original
// destination (the passthrough path). Everything listens on 127.0.0.1, port 0.
//
// With L7_DOWNSTREAM=handle in the environment (the suites under on-handles/ set it), the listener takes its accepts
// as TCP handles, as a capture listener with the HTTP engine does (src/core/tcp-handle.ts): HTTP/1.x is handed to the
// engine on the handle (HandleTransport), h2c as a socket made of the handle.
//
// The engine runs the real request chain (request-id, stats, header edits, the router) with a stand-in route filter
// built from the test's policies: `route` decides, `cluster` resolves the backend to a ClusterView (fakeCluster()
// below, or a real Cluster), and without `route` every request goes to the real passthrough cluster.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import { pino } from 'pino';
import type { WeightedBackend } from '../../../src/config/route-spec.js';
import { defaultTrafficPolicy } from '../../../src/config/traffic-policy-config.js';
import { TcpHandle } from '../../../src/core/tcp-handle.js';
import { createHttpEngine, type HttpEngine, type HttpEngineOptions } from '../../../src/l7/engine/http-engine.js';
import { headerEditsFilter } from '../../../src/l7/filters/header-edits.js';
import { requestIdFilter } from '../../../src/l7/filters/request-id.js';
import { requestStatsFilter } from '../../../src/l7/filters/request-stats.js';
import { PASSTHROUGH_DECISION } from '../../../src/l7/filters/route.js';
import type { HttpRuntime } from '../../../src/l7/http-runtime.js';
import { composeHttpFilters, type HttpFilter, type RequestHead, type RouteDecision } from '../../../src/l7/request-types.js';
import { routerHandler } from '../../../src/l7/router/exchange.js';
import { replyLocally } from '../../../src/l7/router/local-replies.js';
import type { RetryDecider } from '../../../src/l7/router/retry-policy.js';
import {
  Cluster, type ClusterListener, type ClusterView, type PickedEndpoint, type Release, type RequestPick,
} from '../../../src/upstream/cluster.js';
import type { AttemptOutcome } from '../../../src/upstream/health/attempt-outcome.js';
import { openConnection } from '../../../src/upstream/transport/connect.js';

export { PASSTHROUGH_DECISION };
export { waitFor } from '../../support/wait-for.js';

/** Stand-in policies of a test proxy. */
export interface TestPolicies {
  /** Route a request; absent: passthrough to the connection's original destination. */
  readonly route?: (head: RequestHead) => RouteDecision;
  /** The cluster of a route's backend; undefined = unknown (-> no-route). */
  readonly cluster?: (backend: WeightedBackend, head: RequestHead) => ClusterView | undefined;
  /** Retry decisions; absent: no policy retries (the stale-connection retry still happens). */
  readonly retry?: RetryDecider;
}

const NO_RETRY: RetryDecider = { decide: () => ({ retry: false }) };

/** A real original-destination cluster (the passthrough of the proxy), with a connect timeout. */
export function passthroughCluster(connectTimeoutMs = 10_000): Cluster {
  return new Cluster({
    name: 'passthrough', service: undefined, policy: defaultTrafficPolicy('passthrough'), connectTimeoutMs, inboundSource: false,
  }, { log: pino({ level: 'silent' }) });
}

let fakeIds = 0;

export interface FakeClusterOptions {
  readonly name: string;
  readonly protocol?: ClusterView['protocol'];
  /** Choose an endpoint (undefined: none usable -> 503 no-healthy-upstream). `tried`: ctx.exclude (preferOtherHosts). */
  readonly pick: (ctx: RequestPick & { readonly tried: ReadonlySet<string> }) => { address: string; port: number } | undefined;
  readonly report?: (endpoint: PickedEndpoint, outcome: AttemptOutcome) => void;
  readonly abandon?: (endpoint: PickedEndpoint) => void;
  readonly admit?: (kind: 'request' | 'connection' | 'pending') => Release | undefined;
  readonly admitRetry?: () => Release | 'circuit-open' | 'retry-budget-exhausted';
  readonly connectTimeoutMs?: number;
}

/** A ClusterView whose policies are the test's, connecting through the real connect path. */
export function fakeCluster(o: FakeClusterOptions): ClusterView {
  const id = `${o.name}#fake${++fakeIds}`;
  const listeners = new Set<ClusterListener>();
  const noRelease: Release = () => undefined;
  return {
    id,
    name: o.name,
    protocol: o.protocol ?? 'downstream',
    pickForRequest(ctx) {
      const e = o.pick({ ...ctx, tried: ctx.exclude ?? new Set() });
      return e === undefined ? undefined : { key: `${e.address}:${e.port}`, address: e.address, port: e.port };
    },
    report(endpoint, outcome) { o.report?.(endpoint, outcome); },
    abandon(endpoint) { o.abandon?.(endpoint); },
    admit(kind) { return o.admit === undefined ? noRelease : o.admit(kind); },
    admitRetry() { return o.admitRetry === undefined ? noRelease : o.admitRetry(); },
    connect(endpoint, handler) {
      return openConnection({ address: endpoint.address, port: endpoint.port }, { timeoutMs: o.connectTimeoutMs ?? 10_000, handler });
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => { listeners.delete(listener); };
    },
  };
}

/** The stand-in route filter: the test's route and cluster functions, or passthrough. */
function policiesFilter(p: TestPolicies, passthrough: ClusterView): HttpFilter {
  return (next) => (req, res) => {
    if (p.route === undefined) {
      req.route = PASSTHROUGH_DECISION;
      req.cluster = passthrough;
      next(req, res);
      return;
    }
    const d = p.route(req.head);
    if (d.kind === 'reply') {
      replyLocally(req, res, d.reply.reason, undefined);
      return;
    }
    const cluster = p.cluster?.(d.backend, req.head);
    if (cluster === undefined) {
      replyLocally(req, res, 'no-route', undefined);
      return;
    }
    req.route = d;
    req.cluster = cluster;
    next(req, res);
  };
}

export function testRuntime(p: TestPolicies, passthrough: ClusterView = passthroughCluster()): HttpRuntime {
  return {
    version: 1,
    handle: composeHttpFilters([requestIdFilter, requestStatsFilter, policiesFilter(p, passthrough), headerEditsFilter], routerHandler),
    retry: p.retry ?? NO_RETRY,
  };
}

/** Both HTTP/2 stacks of the engine (`http2_codec`): the HTTP/2 suites run against each. */
export const HTTP2_CODECS = ['remora', 'node'] as const;

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface Counters {
  readonly counts: Map<string, number>;
  increment(name: string, by?: number): void;
  get(name: string): number;
}

export function counters(): Counters {
  const counts = new Map<string, number>();
  return {
    counts,
    increment(name, by = 1) {
      counts.set(name, (counts.get(name) ?? 0) + by);
    },
    get(name) {
      return counts.get(name) ?? 0;
    },
  };
}

export interface ProxyUnderTest {
  readonly port: number;
  readonly engine: HttpEngine;
  readonly stats: Counters;
  /** Bytes the proxy read from its downstream connections (open ones), kernel-side: what the engine has been given. */
  downstreamBytesRead(): number;
  /** Every open downstream connection is paused (the engine stopped reading it); false when there is none. */
  downstreamPaused(): boolean;
  /** Some open downstream connection's handle is reading from the kernel (libuv's reads are on). */
  downstreamReading(): boolean;
  close(): Promise<void>;
}

export async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/**
 * Start the engine behind a loopback listener. `originalDst` is the passthrough destination of every connection.
 * The "sniffer" reads until it can tell HTTP/2 (the 24-byte preface, or a prefix of it) from HTTP/1.
 */
export async function startProxy(
  originalDst: { address: string; port: number },
  policies: TestPolicies = {},
  options: Partial<HttpEngineOptions> = {},
): Promise<ProxyUnderTest> {
  const stats = counters();
  const log = pino({ level: process.env['L7_TEST_LOG'] ?? 'silent' });
  const runtime = testRuntime(policies);
  const engine = createHttpEngine({ log, stats, runtime: () => runtime }, options);
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let seen = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      seen = Buffer.concat([seen, d]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const h2Prefix = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (h2Prefix && seen.length < H2_PREFACE.length) return; // wait for the rest of the preface
      socket.off('data', onData);
      socket.pause();
      engine.handleConnection(socket, seen, {
        protocol: h2Prefix ? 'http2' : 'http1',
        originalDst,
        sourceAddress: socket.remoteAddress ?? '',
      });
    };
    socket.on('data', onData);
    socket.resume();
  });
  const port = await listen(server);
  const handles = new Set<TcpHandle>();
  if (process.env['L7_DOWNSTREAM'] === 'handle') {
    if (!TcpHandle.interceptAccepts(server, (h) => { sniffHandle(h); })) throw new Error('L7_DOWNSTREAM=handle: TcpHandle is not supported');
  }
  function sniffHandle(h: TcpHandle): void {
    handles.add(h);
    let seen = Buffer.alloc(0);
    const gone = (): void => { handles.delete(h); };
    const http1 = (): void => {
      h.pause();
      engine.handleHttp1Handle(h, seen, { protocol: 'http1', originalDst, sourceAddress: '127.0.0.1' }, gone);
    };
    h.listen({
      data: (d) => {
        seen = Buffer.concat([seen, d]);
        const n = Math.min(seen.length, H2_PREFACE.length);
        const h2Prefix = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
        if (h2Prefix && seen.length < H2_PREFACE.length) return; // wait for the rest of the preface
        if (!h2Prefix) {
          http1();
          return;
        }
        gone();
        const socket = h.toSocket();
        socket.pause();
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        socket.on('error', () => {});
        engine.handleConnection(socket, seen, { protocol: 'http2', originalDst, sourceAddress: socket.remoteAddress ?? '' });
      },
      end: http1,
      close: gone,
    });
    h.resume();
  }
  return {
    port,
    engine,
    stats,
    downstreamBytesRead: () => [...sockets].reduce((n, s) => n + s.bytesRead, 0) + [...handles].reduce((n, h) => n + h.bytesRead, 0),
    downstreamPaused: () => sockets.size + handles.size > 0 && [...sockets].every((s) => s.isPaused()) && [...handles].every((h) => !h.reading),
    downstreamReading: () => [...sockets].some((s) => (s as unknown as { _handle?: { reading?: boolean } | null })._handle?.reading === true)
      || [...handles].some((h) => h.reading),
    async close() {
      server.close();
      await engine.shutdown(1_000);
      for (const s of sockets) s.destroy();
      for (const h of handles) h.destroy();
    },
  };
}

export interface RawResult {
  /** Everything the proxy sent until it closed (or until the timeout). */
  readonly text: string;
  /** The proxy closed the connection (FIN or RST). */
  readonly closed: boolean;
}

/** Send raw bytes, collect the answer until the connection closes or `timeoutMs` passes. */
export async function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 2_000, endAfterWrite = false): Promise<RawResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let closed = false;
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => {
      s.write(bytes);
      if (endAfterWrite) s.end();
    });
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => {});
    const timer = setTimeout(() => {
      s.destroy();
    }, timeoutMs);
    s.on('end', () => {
      closed = true;
      s.end();
    });
    s.once('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    });
  });
}

/** Wait until `text` (latin1) has arrived on `socket`; returns everything received so far. */
export async function readUntil(socket: net.Socket, predicate: (all: string) => boolean, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let all = '';
    const onData = (d: Buffer): void => {
      all += d.toString('latin1');
      if (predicate(all)) {
        cleanup();
        resolve(all);
      }
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`connection closed; got ${JSON.stringify(all.slice(0, 300))}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timeout; got ${JSON.stringify(all.slice(0, 300))}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a command (no shell) with a hard timeout. */
export async function run(cmd: string, args: readonly string[], timeoutMs = 15_000, input?: string): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'latin1' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}


export interface Blackhole {
  /** A loopback port where a TCP connect never completes (until close). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A loopback port whose connects hang: a listener with backlog 1 on a worker thread that blocks (Atomics.wait) right
 * after listen(), so it never accepts; two connections fill its accept queue (Linux queues backlog + 1), after which
 * the kernel drops every SYN and a client's connect stays pending (SYN retransmits) — a connect timeout on loopback.
 */
export async function blackholeListener(): Promise<Blackhole> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(`
    const { workerData, parentPort } = require('node:worker_threads');
    const net = require('node:net');
    const server = net.createServer();
    server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      parentPort.postMessage(server.address().port);
      Atomics.wait(workerData, 0, 0); // never accept until the test is done
      server.close();
    });
  `, { eval: true, workerData: flag });
  const [port] = (await once(worker, 'message')) as [number];
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
    await once(s, 'connect'); // queued by the kernel: the handshake completes without accept()
  }
  return {
    port,
    async close() {
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      for (const s of fillers) s.destroy();
      await worker.terminate();
    },
  };
}
