// The forward stage on loopback sockets (no iptables): client -> [proxy: openConnection + TcpForward] -> server.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { test as nodeTest, type TestContext } from 'node:test';
import { RemoraError } from '../../../src/core/errors.js';
import { ListenerCounters } from '../../../src/core/stats.js';
import { openConnection } from '../../../src/upstream/transport/connect.js';
import { TcpForward } from '../../../src/l4/tcp-forward.js';

const ignore = (): void => undefined;
/** Every test here is bounded: a forwarding bug must fail, never hang the run. */
const test = (name: string, fn: (t: TestContext) => Promise<void>): void => { nodeTest(name, { timeout: 20_000 }, fn); };

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

interface Rig {
  readonly port: number;
  readonly counters: ListenerCounters;
  /** The first forward the proxy made, once it has ended. */
  readonly ended: Promise<TcpForward>;
  /** The first forward the proxy made, as soon as it exists. */
  readonly started: Promise<{ forward: TcpForward; down: Socket; up: Socket }>;
}

/** A proxy that forwards every connection to 127.0.0.1:upstreamPort. */
async function proxyTo(t: TestContext, upstreamPort: number, idleTimeoutMs = 0): Promise<Rig> {
  const counters = new ListenerCounters();
  let onEnded: (f: TcpForward) => void = ignore;
  let onStarted: (v: { forward: TcpForward; down: Socket; up: Socket }) => void = ignore;
  const ended = new Promise<TcpForward>((resolve) => { onEnded = resolve; });
  const started = new Promise<{ forward: TcpForward; down: Socket; up: Socket }>((resolve) => { onStarted = resolve; });
  const proxy = createServer({ allowHalfOpen: true }, (down) => {
    down.on('error', ignore);
    const up = openConnection({ address: '127.0.0.1', port: upstreamPort }, { timeoutMs: 5_000 });
    t.after(() => { down.destroy(); up.destroy(); });
    const forward = new TcpForward(down, up, { idleTimeoutMs, counters, onEnd: (f) => onEnded(f) });
    onStarted({ forward, down, up });
  });
  t.after(() => proxy.close());
  return { port: await listen(proxy), counters, ended, started };
}

async function upstreamServer(t: TestContext, onConnection: (s: Socket) => void): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', ignore);
    t.after(() => s.destroy());
    onConnection(s);
  });
  t.after(() => server.close());
  return listen(server);
}

function client(t: TestContext, port: number): Socket {
  const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  c.on('error', ignore);
  t.after(() => c.destroy());
  return c;
}

/** Resolves when the socket has closed (events.once would reject on a preceding 'error'). */
function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => { if (s.closed) resolve(); else s.once('close', () => resolve()); });
}

function readAll(s: Socket): Promise<string> {
  let data = '';
  s.setEncoding('utf8').on('data', (d: string) => { data += d; });
  return once(s, 'end').then(() => data);
}

test('client half-close: the client ends after sending and still receives the whole reply', async (t) => {
  const upPort = await upstreamServer(t, (s) => {
    let got = '';
    s.setEncoding('utf8').on('data', (d: string) => { got += d; });
    s.on('end', () => { s.end(`reply to ${got}`); }); // the server answers only after the client's FIN
  });
  const rig = await proxyTo(t, upPort);
  const c = client(t, rig.port);
  const reply = readAll(c);
  c.end('hello');
  assert.equal(await reply, 'reply to hello');
  const f = await rig.ended;
  assert.equal(f.errorCode, undefined);
  assert.equal(f.bytesDownstreamToUpstream, 5);
  assert.equal(f.bytesUpstreamToDownstream, 'reply to hello'.length);
  assert.equal(rig.counters.downstreamToUpstream, 5);
  assert.equal(rig.counters.upstreamToDownstream, 'reply to hello'.length);
});

test('server closes first: the client sees the end, and can still send on its half until it ends too', async (t) => {
  let serverGot: Promise<string> = Promise.resolve('');
  const upPort = await upstreamServer(t, (s) => {
    serverGot = readAll(s);
    s.end('bye'); // FIN first, keep reading
  });
  const rig = await proxyTo(t, upPort);
  const c = client(t, rig.port);
  assert.equal(await readAll(c), 'bye');
  c.end('late data');
  assert.equal(await serverGot, 'late data');
  const f = await rig.ended;
  assert.equal(f.errorCode, undefined);
  await closed(c);
});

test('an upstream reset resets the client (RST, not FIN) and is recorded as REMORA_ERR_UPSTREAM_RESET', async (t) => {
  const upPort = await upstreamServer(t, (s) => { s.once('data', () => s.resetAndDestroy()); });
  const rig = await proxyTo(t, upPort);
  const c = client(t, rig.port);
  c.write('x');
  const [err] = await once(c, 'error');
  assert.equal((err as NodeJS.ErrnoException).code, 'ECONNRESET');
  const f = await rig.ended;
  assert.equal(f.errorCode, 'REMORA_ERR_UPSTREAM_RESET');
});

test('a client reset resets the upstream and is recorded as REMORA_ERR_DOWNSTREAM_RESET', async (t) => {
  let upstreamError: Promise<unknown[]> = Promise.resolve([]);
  let gotData: () => void = ignore;
  const dataSeen = new Promise<void>((resolve) => { gotData = resolve; });
  const upPort = await upstreamServer(t, (s) => {
    upstreamError = once(s, 'error');
    s.once('data', () => gotData());
  });
  const rig = await proxyTo(t, upPort);
  const c = client(t, rig.port);
  c.write('x');
  await dataSeen;
  c.resetAndDestroy();
  const [err] = await upstreamError;
  assert.equal((err as NodeJS.ErrnoException).code, 'ECONNRESET');
  assert.equal((await rig.ended).errorCode, 'REMORA_ERR_DOWNSTREAM_RESET');
});

test('a refused upstream connect resets the client: REMORA_ERR_UPSTREAM_CONNECT with ECONNREFUSED', async (t) => {
  const closed = createServer();
  const freePort = await listen(closed);
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const rig = await proxyTo(t, freePort);
  const c = client(t, rig.port);
  c.write('hello');
  const [err] = await once(c, 'error');
  assert.equal((err as NodeJS.ErrnoException).code, 'ECONNRESET');
  const f = await rig.ended;
  assert.equal(f.errorCode, 'REMORA_ERR_UPSTREAM_CONNECT');
  assert.equal((f.error as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  assert.equal(f.upstreamConnected, false);
});

test('a connect timeout is classified as REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT', async (t) => {
  const rig = await proxyTo(t, await upstreamServer(t, ignore));
  const c = client(t, rig.port);
  const { up } = await rig.started;
  // What the connect path (src/upstream/transport/connect.ts) does when its timer fires, before the connection completes.
  up.destroy(new RemoraError('REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT', 'connecting to the upstream timed out'));
  await closed(c);
  assert.equal((await rig.ended).errorCode, 'REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT');
});

test('backpressure: a slow upstream pauses the client side; nothing piles up in the proxy; every byte arrives', async (t) => {
  const TOTAL = 32 * 1024 * 1024;
  let upstream: Socket | undefined;
  let received = 0;
  let allReceived: () => void = ignore;
  const done = new Promise<void>((resolve) => { allReceived = resolve; });
  const upPort = await upstreamServer(t, (s) => {
    upstream = s;
    s.pause(); // not reading yet
    s.on('data', (d: Buffer) => { received += d.length; if (received === TOTAL) allReceived(); });
  });
  const rig = await proxyTo(t, upPort);
  const c = client(t, rig.port);
  const { down, up } = await rig.started;
  let maxQueued = 0;
  down.on('data', () => { maxQueued = Math.max(maxQueued, up.writableLength); });
  const chunk = Buffer.alloc(64 * 1024, 7);
  for (let sent = 0; sent < TOTAL; sent += chunk.length) c.write(chunk);
  // Bounded wait until the pressure reaches the client: its own writes queue up because the proxy stopped reading.
  for (let i = 0; i < 400 && !down.isPaused(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(down.isPaused(), 'the proxy paused reading from the client');
  assert.ok(rig.counters.downstreamToUpstream < TOTAL, 'the proxy has not read everything while the upstream is stalled');
  upstream?.resume();
  await done;
  assert.equal(received, TOTAL);
  assert.ok(maxQueued <= 1024 * 1024, `at most a chunk or two queued in the proxy (saw ${maxQueued} bytes)`);
  c.end();
});

test('idle timeout closes both sides (not an error) and is counted', async (t) => {
  const rig = await proxyTo(t, await upstreamServer(t, ignore), 50);
  const c = client(t, rig.port);
  const clientSawEnd = readAll(c);
  const f = await rig.ended;
  assert.equal(await clientSawEnd, '', 'the client got a FIN');
  c.destroy();
  assert.equal(f.idleTimedOut, true);
  assert.equal(f.errorCode, undefined);
  assert.equal(rig.counters.idleTimeouts, 1);
});

test('abort() resets both sides and records the given code', async (t) => {
  let upstreamError: Promise<unknown[]> = Promise.resolve([]);
  let connected: () => void = ignore;
  const upConnected = new Promise<void>((resolve) => { connected = resolve; });
  const upPort = await upstreamServer(t, (s) => { upstreamError = once(s, 'error'); connected(); });
  const rig = await proxyTo(t, upPort);
  const c = client(t, rig.port);
  const { forward } = await rig.started;
  await upConnected;
  for (let i = 0; i < 200 && !forward.upstreamConnected; i++) await new Promise((r) => setTimeout(r, 5));
  const clientError = once(c, 'error');
  forward.abort('REMORA_ERR_DRAIN_TIMEOUT');
  assert.equal(((await clientError)[0] as NodeJS.ErrnoException).code, 'ECONNRESET');
  assert.equal(((await upstreamError)[0] as NodeJS.ErrnoException).code, 'ECONNRESET');
  assert.equal((await rig.ended).errorCode, 'REMORA_ERR_DRAIN_TIMEOUT');
});
