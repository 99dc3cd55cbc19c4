// The native forwarding thread (native/src/tcp_forwarder.cc through src/l4/native-forwarder.ts) on loopback, without
// iptables: a client, a small in-process "proxy" that connects to an origin and hands both sockets to the forwarder
// exactly as a staged connection does, and the origin. Checked on structured fields only (bytes, sha256 of what was
// received, error codes, the forward's state, /proc/self/fd): half-close both ways, RST from each side, backpressure
// (a reader that does not read: the forwarder stops reading the sender; nothing lost), the idle timeout, abort, a
// peer that resets mid-transfer, bytes read from the sockets' buffers before the hand-over, 1,000 short connections
// leaving no fd behind. Every wait is a bounded poll; no timing assertion.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, openSync, readdirSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { constants } from 'node:os';
import { test as nodeTest, type TestContext } from 'node:test';
import { hasForwarder, loadNativeAddon } from '../../../src/core/native-addon.js';
import { ListenerCounters } from '../../../src/core/stats.js';
import { processForwarder, type NativeForwarder } from '../../../src/l4/native-forwarder.js';
import type { NativeTcpForward } from '../../../src/l4/native-tcp-forward.js';
import { waitFor } from '../../support/wait-for.js';

const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
  nodeTest(name, { timeout: 60_000 }, fn);
};


async function listen(t: TestContext, server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => { server.close(); });
  return (server.address() as AddressInfo).port;
}

function forwarder(): NativeForwarder {
  const f = processForwarder();
  assert.ok(f !== null, 'the addon has the forwarder');
  return f;
}

interface Pair {
  readonly client: Socket;
  readonly server: Socket;
  readonly forward: NativeTcpForward;
  readonly ended: Promise<NativeTcpForward>;
  readonly counters: ListenerCounters;
  /** How many 'close' listeners of the handed-over upstream socket ran (the endpoint's load release in the proxy). */
  readonly closed: () => number;
  /** How many 'close' listeners of the handed-over downstream socket ran (they hear the socket, not the connection). */
  readonly downClosed: () => number;
}

interface PairOptions {
  readonly idleTimeoutMs?: number;
  readonly head?: Buffer;
  /** Runs on the proxy's two sockets before the hand-over (e.g. wait for bytes to sit in their buffers). */
  readonly before?: (down: Socket, up: Socket) => Promise<void>;
  /** The origin's connection handler. */
  readonly origin?: (s: Socket) => void;
  /** Written by the client as soon as it connects (before the hand-over). */
  readonly clientFirst?: string;
}

/** client -> proxy (hand-over) -> origin; resolves once the forward runs and the origin has its connection. */
async function pair(t: TestContext, o: PairOptions = {}): Promise<Pair> {
  const counters = new ListenerCounters();
  let serverSide: Socket | undefined;
  const origin = createServer({ allowHalfOpen: true }, (s) => {
    serverSide = s;
    s.on('error', () => { /* checked by each test */ });
    o.origin?.(s);
  });
  const originPort = await listen(t, origin);
  let forward: NativeTcpForward | undefined;
  let closedCount = 0;
  let downClosedCount = 0;
  let resolveEnded: (f: NativeTcpForward) => void = () => undefined;
  const ended = new Promise<NativeTcpForward>((r) => { resolveEnded = r; });
  const proxy = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (down) => {
    down.on('error', () => undefined);
    down.once('close', () => { downClosedCount++; });
    const up = createConnection({ host: '127.0.0.1', port: originPort, allowHalfOpen: true });
    up.on('error', () => undefined);
    up.once('close', () => { closedCount++; });
    up.once('connect', () => {
      up.pause();
      void (o.before?.(down, up) ?? Promise.resolve()).then(() => {
        const r = forwarder().handOver(down, up, { idleTimeoutMs: o.idleTimeoutMs ?? 0, counters, onEnd: resolveEnded, head: o.head });
        assert.equal(typeof r, 'object', `handed over (${String(r)})`);
        forward = r as NativeTcpForward;
      });
    });
  });
  const proxyPort = await listen(t, proxy);
  const client = createConnection({ host: '127.0.0.1', port: proxyPort, allowHalfOpen: true });
  client.on('error', () => undefined);
  if (o.clientFirst !== undefined) client.write(o.clientFirst);
  t.after(() => { client.destroy(); serverSide?.destroy(); });
  await waitFor(() => forward !== undefined && serverSide !== undefined, 'the hand-over and the origin connection', 10_000);
  return { client, server: serverSide as Socket, forward: forward as NativeTcpForward, ended, counters, closed: () => closedCount,
    downClosed: () => downClosedCount };
}

/** Everything a socket sends until its FIN, and whether it ended cleanly. */
function collect(s: Socket): Promise<{ data: Buffer; error?: string }> {
  const parts: Buffer[] = [];
  return new Promise((resolve) => {
    s.on('data', (c: Buffer) => parts.push(c));
    s.once('end', () => resolve({ data: Buffer.concat(parts) }));
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ data: Buffer.concat(parts), error: e.code }));
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('the addon refuses bad fds with -errno and unknown ids with -ENOENT (no crash)', async () => {
  const addon = loadNativeAddon();
  assert.ok(hasForwarder(addon));
  forwarder();
  assert.equal(addon.forwarderAdd(-1, 5, 0, undefined, undefined), -constants.errno.EBADF);
  const a = openSync(new URL(import.meta.url), 'r');
  const b = openSync(new URL(import.meta.url), 'r');
  try {
    assert.equal(addon.forwarderAdd(a, b, 0, undefined, undefined), -constants.errno.ENOTSOCK);
    assert.equal(addon.forwarderAdd(100_000, 100_001, 0, undefined, undefined), -constants.errno.EBADF);
  } finally {
    closeSync(a);
    closeSync(b);
  }
  assert.equal(addon.forwarderAbort(987_654_321), -constants.errno.ENOENT);
  assert.equal(addon.forwarderBytes(987_654_321, new Float64Array(4)), -constants.errno.ENOENT);
});

test('8 MiB each way arrive intact after the head; byte getters and listener counters equal what was sent; a clean end', async (t) => {
  const payload = randomBytes(8 * 1024 * 1024);
  const head = Buffer.from('HEAD:');
  const p = await pair(t, { head, origin: (s) => { s.pipe(s); } });
  await waitFor(() => p.downClosed() === 1, 'the downstream socket\'s close listener, at the hand-over', 5_000);
  assert.equal(p.closed(), 0, 'the upstream socket\'s close listener waits for the end of the connection');
  const got = collect(p.client);
  p.client.end(payload);
  const r = await got;
  assert.equal(r.error, undefined);
  assert.equal(r.data.length, head.length + payload.length);
  assert.equal(sha(r.data), sha(Buffer.concat([head, payload])));
  const f = await p.ended;
  assert.equal(f.errorCode, undefined);
  assert.equal(f.idleTimedOut, false);
  assert.equal(f.bytesDownstreamToUpstream, head.length + payload.length);
  assert.equal(f.bytesUpstreamToDownstream, head.length + payload.length);
  assert.equal(p.counters.downstreamToUpstream, head.length + payload.length);
  assert.equal(p.counters.upstreamToDownstream, head.length + payload.length);
  assert.equal(p.closed(), 1, 'the upstream socket\'s close listener ran once, at the end');
});

test('half-close, client first: the server sees the FIN and can still answer; the states say so while it runs', async (t) => {
  const p = await pair(t);
  const atServer = collect(p.server);
  const atClient = collect(p.client);
  p.client.end('question');
  assert.deepEqual(await atServer, { data: Buffer.from('question') });
  await waitFor(() => p.forward.downstreamState === 'fin-received' && p.forward.upstreamState === 'fin-sent', 'downstream fin-received', 10_000);
  p.server.end('late answer');
  assert.deepEqual(await atClient, { data: Buffer.from('late answer') });
  const f = await p.ended;
  assert.equal(f.errorCode, undefined);
  assert.equal(f.downstreamState, 'closed');
});

test('half-close, server first: the client sees the FIN and can still send', async (t) => {
  const p = await pair(t);
  const atServer = collect(p.server);
  const atClient = collect(p.client);
  p.server.end('bye');
  assert.deepEqual(await atClient, { data: Buffer.from('bye') });
  p.client.end('late data');
  assert.deepEqual(await atServer, { data: Buffer.from('late data') });
  const f = await p.ended;
  assert.equal(f.errorCode, undefined);
  assert.equal(f.bytesDownstreamToUpstream, 9);
  assert.equal(f.bytesUpstreamToDownstream, 3);
});

test('an RST from the client reaches the server as a reset (REMORA_ERR_DOWNSTREAM_RESET)', async (t) => {
  const p = await pair(t);
  let serverGot = 0;
  p.server.on('data', (c: Buffer) => { serverGot += c.length; });
  const atServer = collect(p.server);
  p.client.write('x');
  // The byte is read by the server before the reset: libuv reports a hang-up that comes with unread data as EOF
  // (uv__stream_io, POLLHUP after a partial read), which would hide the server's ECONNRESET.
  await waitFor(() => serverGot === 1, 'a byte through', 10_000);
  p.client.resetAndDestroy();
  assert.equal((await atServer).error, 'ECONNRESET');
  const f = await p.ended;
  assert.equal(f.errorCode, 'REMORA_ERR_DOWNSTREAM_RESET');
  assert.equal((f.error as NodeJS.ErrnoException).code, 'ECONNRESET');
});

test('an RST from the server reaches the client as a reset (REMORA_ERR_UPSTREAM_RESET)', async (t) => {
  const p = await pair(t);
  const atClient = collect(p.client);
  p.server.resetAndDestroy();
  assert.equal((await atClient).error, 'ECONNRESET');
  const f = await p.ended;
  assert.equal(f.errorCode, 'REMORA_ERR_UPSTREAM_RESET');
});

test('backpressure: a client that does not read stops the forwarder reading the server; then 32 MiB arrive intact', async (t) => {
  const total = 32 * 1024 * 1024;
  const payload = randomBytes(total);
  const p = await pair(t, {
    origin: (s) => { s.end(payload); },
  });
  p.client.pause();
  // The forwarder's reads from the server stop once the client's receive buffer, the proxy's send buffer and its one
  // pending chunk are full: a few MiB on loopback, far from the 32 MiB sent.
  let last = -1;
  let stable = 0;
  await waitFor(() => {
    const now = p.forward.bytesUpstreamToDownstream;
    stable = now === last && now > 0 ? stable + 1 : 0;
    last = now;
    return stable >= 20;
  }, 'the forwarder to stop reading', 20_000, 10);
  assert.ok(last < 20 * 1024 * 1024, `read ${last} bytes from the server while the client read nothing`);
  const got = collect(p.client);
  p.client.resume();
  p.client.end();
  const r = await got;
  assert.equal(r.data.length, total);
  assert.equal(sha(r.data), sha(payload));
  const f = await p.ended;
  assert.equal(f.errorCode, undefined);
  assert.equal(f.bytesUpstreamToDownstream, total);
});

test('idle timeout: no byte either way closes both sides (FIN), counted, not an error', async (t) => {
  const p = await pair(t, { idleTimeoutMs: 200 });
  const atClient = collect(p.client);
  const atServer = collect(p.server);
  p.client.write('one');
  assert.deepEqual(await atClient, { data: Buffer.alloc(0) });
  assert.deepEqual(await atServer, { data: Buffer.from('one') });
  const f = await p.ended;
  assert.equal(f.idleTimedOut, true);
  assert.equal(f.errorCode, undefined);
  assert.equal(p.counters.idleTimeouts, 1);
});

test('abort resets both sides and records the code', async (t) => {
  const p = await pair(t);
  const atClient = collect(p.client);
  const atServer = collect(p.server);
  p.forward.abort('REMORA_ERR_DRAIN_TIMEOUT');
  assert.equal((await atClient).error, 'ECONNRESET');
  assert.equal((await atServer).error, 'ECONNRESET');
  const f = await p.ended;
  assert.equal(f.errorCode, 'REMORA_ERR_DRAIN_TIMEOUT');
  assert.equal(f.ended, true);
});

test('a client that resets in the middle of a download: the server is reset too', async (t) => {
  const chunk = randomBytes(64 * 1024);
  let serverError: string | undefined;
  const p = await pair(t, {
    origin: (s) => {
      s.on('error', (e: NodeJS.ErrnoException) => { serverError = e.code; });
      const pump = (): void => { while (!s.destroyed && s.write(chunk)) { /* until full */ } };
      s.on('drain', pump);
      pump();
    },
  });
  let received = 0;
  p.client.on('data', (c: Buffer) => {
    received += c.length;
    if (received > 1024 * 1024 && !p.client.destroyed) p.client.resetAndDestroy();
  });
  const f = await p.ended;
  assert.equal(f.errorCode, 'REMORA_ERR_DOWNSTREAM_RESET');
  await waitFor(() => serverError !== undefined, 'the server to see the reset', 10_000);
  assert.ok(serverError === 'ECONNRESET' || serverError === 'EPIPE', serverError);
});

test('bytes already in both sockets\' buffers at the hand-over go first, in order', async (t) => {
  const p = await pair(t, {
    head: Buffer.from('[head]'),
    clientFirst: '[before]',
    origin: (s) => { s.write('greeting;'); },
    before: async (down, up) => {
      down.pause();
      down.read(0);
      await waitFor(() => down.readableLength > 0, 'the client bytes buffered', 10_000);
      up.read(0);
      await waitFor(() => up.readableLength > 0, 'the greeting buffered', 10_000);
    },
  });
  const atServer = collect(p.server);
  const atClient = collect(p.client);
  p.client.end('[after]');
  assert.equal((await atServer).data.toString(), '[head][before][after]');
  p.server.end('bye');
  assert.equal((await atClient).data.toString(), 'greeting;bye');
  await p.ended;
});

test('1,000 short connections leave no fd behind', async (t) => {
  const f = forwarder();
  const counters = new ListenerCounters();
  const origin = createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => undefined); s.pipe(s); });
  const originPort = await listen(t, origin);
  let ended = 0;
  const proxy = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (down) => {
    down.on('error', () => undefined);
    const up = createConnection({ host: '127.0.0.1', port: originPort, allowHalfOpen: true });
    up.on('error', () => undefined);
    up.once('connect', () => {
      const r = f.handOver(down, up, { idleTimeoutMs: 0, counters, onEnd: () => { ended++; } });
      assert.equal(typeof r, 'object');
    });
  });
  const proxyPort = await listen(t, proxy);
  const one = async (): Promise<void> => {
    const c = createConnection({ host: '127.0.0.1', port: proxyPort, allowHalfOpen: true });
    const r = collect(c);
    c.end('ping');
    assert.deepEqual(await r, { data: Buffer.from('ping') });
    c.destroy();
  };
  await one();
  await waitFor(() => ended === 1 && f.size === 0, 'the warm-up connection to end', 10_000);
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const baseline = fds();
  for (let batch = 0; batch < 20; batch++) await Promise.all(Array.from({ length: 50 }, one));
  await waitFor(() => ended === 1_001 && f.size === 0, 'every forward to end', 10_000);
  await waitFor(() => fds() <= baseline, 'the fds to come back to the baseline', 10_000);
  assert.equal(counters.downstreamToUpstream, 4 * 1_001);
  assert.equal(counters.upstreamToDownstream, 4 * 1_001);
});
