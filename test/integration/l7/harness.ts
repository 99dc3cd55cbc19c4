// Loopback harness for the L7 engine integration tests: a local net.Server plays the capture listener and the
// sniffer (it reads the first bytes, pauses the socket and hands it over with those bytes), with a fixed original
// destination (the passthrough path). Everything listens on 127.0.0.1, port 0.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { createHttpEngine, type HttpEngine, type HttpEngineOptions, type L7Deps } from '../../../src/l7/engine/http-engine.js';

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
  deps: Partial<L7Deps> = {},
  options: Partial<HttpEngineOptions> = {},
): Promise<ProxyUnderTest> {
  const stats = counters();
  const log = pino({ level: process.env['L7_TEST_LOG'] ?? 'silent' });
  const engine = createHttpEngine({ log, stats, ...deps }, options);
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
  return {
    port,
    engine,
    stats,
    async close() {
      server.close();
      await engine.shutdown(1_000);
      for (const s of sockets) s.destroy();
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
