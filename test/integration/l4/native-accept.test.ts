// The native accept of the forwarding thread (native/src/tcp_forwarder.cc through src/l4/native-forwarder.ts and
// src/l4/native-accepted.ts) on loopback, without iptables: the thread accepts on a Node server's socket, reports
// each connection with its addresses (no NAT entry here: the original destination's status is -ENOENT), and then
// connects it where it is told and forwards, reports a failed connect (and connects again), reports detection's
// first bytes each way until told to stop, gives the connection to Node as a socket (with the TCP_NODELAY it inherited
// from the listening socket, where listen() set it once), or resets it. Checked on
// structured fields only (events, bytes, error codes, /proc/self/fd); every wait is a bounded poll. Running out of
// fds (prlimit on this process) makes the listener rest and report EMFILE, and the backlog is accepted afterwards.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { constants } from 'node:os';
import { test as nodeTest, type TestContext } from 'node:test';
import { loadNativeAddon } from '../../../src/core/native-addon.js';
import { socketFd } from '../../../src/core/socket-fd.js';
import { ListenerCounters } from '../../../src/core/stats.js';
import { NativeDetectEvent, type NativeAccepted, type NativeAcceptedOwner, type NativeConnectRequest } from '../../../src/l4/native-accepted.js';
import { processForwarder, type NativeAcceptedAddresses, type NativeForwarder } from '../../../src/l4/native-forwarder.js';
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

interface Accepted {
  readonly conn: NativeAccepted;
  readonly addresses: NativeAcceptedAddresses;
}

/** A listening socket the thread accepts on (Node's server closed: the thread's duplicate keeps the port). */
async function nativeListener(t: TestContext): Promise<{ port: number; accepted: Accepted[]; errors: Error[]; stop: () => void; noDelay: number | undefined }> {
  const f = forwarder();
  const server = createServer(() => { assert.fail('Node must not accept once the thread does'); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const accepted: Accepted[] = [];
  const errors: Error[] = [];
  const handle = f.listen(fd, {
    accepted: (conn, addresses) => { accepted.push({ conn, addresses }); },
    listenerError: (err) => { errors.push(err); },
  });
  const noDelay = loadNativeAddon().tcpNoDelay?.(fd); // the listening socket's TCP_NODELAY, set by listen()
  server.close();
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    f.unlisten(handle);
  };
  t.after(stop);
  return { port, accepted, errors, stop, noDelay };
}

/** Records what the thread says of one connection. */
class Recorder implements NativeAcceptedOwner {
  readonly events: string[] = [];
  readonly bytes: Buffer[] = [];
  forward: NativeTcpForward | undefined;
  connected(): void { this.events.push('connected'); }
  connectFailed(errno: number): void { this.events.push(`failed:${errno}`); }
  detect(event: NativeDetectEvent, bytes: Buffer | undefined): void {
    const name = Object.entries(NativeDetectEvent).find(([, v]) => v === event)?.[0] ?? String(event);
    this.events.push(name);
    if (bytes !== undefined) this.bytes.push(bytes);
  }
  ended(forward: NativeTcpForward): void {
    this.events.push('ended');
    this.forward = forward;
  }
  broken(err: Error): void { this.events.push(`broken:${err.message}`); }
}

function request(port: number, extra: Partial<NativeConnectRequest> = {}): NativeConnectRequest {
  return {
    address: '127.0.0.1', port, localAddress: undefined, connectTimeoutMs: 5_000, idleTimeoutMs: 0, detectTimeoutMs: 0,
    notifyConnected: true, ...extra,
  };
}

/** Everything a socket sends until its FIN, and whether it ended cleanly. */
function collect(s: Socket): Promise<{ data: string; error?: string }> {
  let data = '';
  return new Promise((resolve) => {
    s.setEncoding('latin1');
    s.on('data', (c: string) => { data += c; });
    s.once('end', () => resolve({ data }));
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ data, error: e.code }));
  });
}

async function echoOrigin(t: TestContext, handler?: (s: Socket) => void): Promise<number> {
  const origin = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    if (handler !== undefined) handler(s);
    else s.pipe(s);
  });
  return listen(t, origin);
}

function client(port: number, t: TestContext): Socket {
  const c = createConnection({ host: '127.0.0.1', port, allowHalfOpen: true });
  c.on('error', () => undefined);
  t.after(() => { c.destroy(); });
  return c;
}

test('an accepted connection is reported with its client address and the original destination status (-ENOENT: no NAT here)', async (t) => {
  const l = await nativeListener(t);
  const c = client(l.port, t);
  await once(c, 'connect');
  await waitFor(() => l.accepted.length === 1, 'the accept', 10_000);
  const a = l.accepted[0] as Accepted;
  assert.equal(a.addresses.status, -constants.errno.ENOENT);
  assert.equal(a.addresses.originalDst, undefined);
  assert.equal(a.addresses.peerAddress, '127.0.0.1');
  assert.equal(a.addresses.peerPort, c.localPort);
  a.conn.abort();
});

test('connect and forward: bytes both ways, half-close, a clean end with exact counters', async (t) => {
  const originPort = await echoOrigin(t);
  const l = await nativeListener(t);
  const c = client(l.port, t);
  await waitFor(() => l.accepted.length === 1, 'the accept', 10_000);
  const a = l.accepted[0] as Accepted;
  const rec = new Recorder();
  const counters = new ListenerCounters();
  a.conn.own(rec, counters);
  assert.equal(a.conn.connect(request(originPort)), 0);
  const got = collect(c);
  c.end('hello through the thread');
  assert.deepEqual(await got, { data: 'hello through the thread' });
  await waitFor(() => rec.events.includes('ended'), 'the end', 10_000);
  assert.deepEqual(rec.events, ['connected', 'ended']);
  const f = rec.forward as NativeTcpForward;
  assert.equal(f.errorCode, undefined);
  assert.equal(f.bytesDownstreamToUpstream, 24);
  assert.equal(f.bytesUpstreamToDownstream, 24);
  assert.equal(counters.downstreamToUpstream, 24);
  assert.equal(counters.upstreamToDownstream, 24);
});

test('a refused connect is reported (the client waits), and a second connect elsewhere forwards', async (t) => {
  const closed = createServer();
  const closedPort = await listen(t, closed);
  closed.close();
  const originPort = await echoOrigin(t);
  const l = await nativeListener(t);
  const c = client(l.port, t);
  await waitFor(() => l.accepted.length === 1, 'the accept', 10_000);
  const a = l.accepted[0] as Accepted;
  const rec = new Recorder();
  a.conn.own(rec, new ListenerCounters());
  assert.equal(a.conn.connect(request(closedPort)), 0);
  await waitFor(() => rec.events.length === 1, 'the failed connect', 10_000);
  assert.deepEqual(rec.events, [`failed:${constants.errno.ECONNREFUSED}`]);
  assert.equal(a.conn.connect(request(originPort)), 0);
  const got = collect(c);
  c.end('second try');
  assert.deepEqual(await got, { data: 'second try' });
  await waitFor(() => rec.events.includes('ended'), 'the end', 10_000);
  assert.deepEqual(rec.events, [`failed:${constants.errno.ECONNREFUSED}`, 'connected', 'ended']);
});

test('bad connect requests are refused at once with -errno and start nothing', async (t) => {
  const l = await nativeListener(t);
  client(l.port, t);
  await waitFor(() => l.accepted.length === 1, 'the accept', 10_000);
  const a = l.accepted[0] as Accepted;
  const rec = new Recorder();
  a.conn.own(rec, new ListenerCounters());
  assert.equal(a.conn.connect(request(80, { address: 'not-an-address' })), -constants.errno.EINVAL);
  assert.equal(a.conn.connect(request(80, { address: '127.0.0.1', localAddress: '::1' })), -constants.errno.EINVAL, 'a source of another family');
  assert.equal(a.conn.connect(request(0)), -constants.errno.EINVAL);
  a.conn.abort();
  await waitFor(() => rec.events.includes('ended'), 'the end', 10_000);
  assert.deepEqual(rec.events, ['ended']);
  assert.equal(rec.forward?.errorCode, 'REMORA_ERR_DRAIN_TIMEOUT', 'an abort nobody recorded a code for');
});

test('detection: the client\'s bytes are reported until watchDone, and a server that speaks first is reported once', async (t) => {
  let serverSide: Socket | undefined;
  const originPort = await echoOrigin(t, (s) => { serverSide = s; s.write('220 greeting\r\n'); });
  const l = await nativeListener(t);
  const c = client(l.port, t);
  await waitFor(() => l.accepted.length === 1, 'the accept', 10_000);
  const a = l.accepted[0] as Accepted;
  const rec = new Recorder();
  a.conn.own(rec, new ListenerCounters());
  assert.equal(a.conn.connect(request(originPort, { detectTimeoutMs: 60_000, notifyConnected: false })), 0);
  const greeting = await new Promise<string>((resolve) => { c.once('data', (d: Buffer) => { resolve(d.toString('latin1')); }); });
  assert.equal(greeting, '220 greeting\r\n');
  await waitFor(() => rec.events.includes('serverData'), 'the server\'s first bytes', 10_000);
  assert.equal(rec.bytes[0]?.toString('latin1'), '220 greeting\r\n');
  c.write('EHLO one');
  await waitFor(() => rec.events.includes('clientData'), 'the client\'s first bytes', 10_000);
  assert.equal(rec.bytes[1]?.toString('latin1'), 'EHLO one');
  a.conn.watchDone();
  let serverGot = '';
  serverSide?.on('data', (d: Buffer) => { serverGot += d.toString('latin1'); });
  c.write('EHLO two');
  await waitFor(() => serverGot.includes('EHLO two'), 'the second write through', 10_000);
  c.end();
  serverSide?.end();
  await waitFor(() => rec.events.includes('ended'), 'the end', 10_000);
  assert.deepEqual(rec.events, ['serverData', 'clientData', 'ended'], 'nothing reported after watchDone');
});

test('detection: a client FIN is reported, and a silent connection gets the deadline', async (t) => {
  const originPort = await echoOrigin(t, (s) => { s.on('end', () => { s.end(); }); });
  const l = await nativeListener(t);
  const quiet = client(l.port, t);
  const leaving = client(l.port, t);
  await waitFor(() => l.accepted.length === 2, 'the accepts', 10_000);
  const quietPort = quiet.localPort;
  const leavingPort = leaving.localPort;
  const recs = l.accepted.map((a) => {
    const rec = new Recorder();
    a.conn.own(rec, new ListenerCounters());
    assert.equal(a.conn.connect(request(originPort, { detectTimeoutMs: 300, notifyConnected: false })), 0);
    return { a, rec };
  });
  const byPort = (port: number | undefined): Recorder => {
    const r = recs.find((x) => x.a.addresses.peerPort === port);
    assert.ok(r !== undefined);
    return r.rec;
  };
  leaving.end();
  await waitFor(() => byPort(leavingPort).events.includes('ended'), 'the leaving connection to end', 10_000);
  assert.deepEqual(byPort(leavingPort).events, ['clientFin', 'ended']);
  await waitFor(() => byPort(quietPort).events.includes('timeout'), 'the deadline of the quiet one', 10_000);
  quiet.end();
  await waitFor(() => byPort(quietPort).events.includes('ended'), 'the quiet connection to end', 10_000);
  assert.deepEqual(byPort(quietPort).events, ['timeout', 'ended'], 'its FIN after the deadline is not reported');
});

test('toSocket gives the connection to Node: bytes flow through the socket, the thread forgets it', async (t) => {
  const f = forwarder();
  const l = await nativeListener(t);
  const c = client(l.port, t);
  await waitFor(() => l.accepted.length === 1, 'the accept', 10_000);
  const a = l.accepted[0] as Accepted;
  const before = f.size;
  const s = a.conn.toSocket();
  t.after(() => { s.destroy(); });
  assert.equal(f.size, before - 1, 'no longer live in the thread');
  assert.equal(s.remotePort, c.localPort);
  assert.throws(() => a.conn.toSocket(), /EBADF/);
  // Nagle is off on the listening socket (set once by listen()), and the accepted connection inherited it.
  assert.equal(l.noDelay, 1);
  assert.equal(loadNativeAddon().tcpNoDelay?.(socketFd(s) ?? -1), 1);
  s.on('data', (d: Buffer) => { s.end(`echo:${d.toString('latin1')}`); });
  const got = collect(c);
  c.write('via node');
  assert.deepEqual(await got, { data: 'echo:via node' });
});

test('abort before any connect resets the client; unlisten closes the port', async (t) => {
  const l = await nativeListener(t);
  const c = client(l.port, t);
  await waitFor(() => l.accepted.length === 1, 'the accept', 10_000);
  const a = l.accepted[0] as Accepted;
  const rec = new Recorder();
  a.conn.own(rec, new ListenerCounters());
  const got = collect(c);
  a.conn.abort();
  assert.equal((await got).error, 'ECONNRESET');
  l.stop();
  // The thread closes its duplicate when it takes the command: probe until a connect is refused (each probe is a
  // round trip; bounded in count).
  let refused = false;
  for (let i = 0; i < 1_000 && !refused; i++) {
    const probe = createConnection({ host: '127.0.0.1', port: l.port });
    const r = await new Promise<string>((resolve) => {
      probe.once('connect', () => { probe.destroy(); resolve('connected'); });
      probe.once('error', (e: NodeJS.ErrnoException) => { resolve(e.code ?? 'error'); });
    });
    refused = r === 'ECONNREFUSED';
  }
  assert.ok(refused, 'the port is closed once the thread stopped accepting');
  assert.deepEqual(l.errors, []);
});

test('500 accepted, connected and forwarded connections leave no fd behind', async (t) => {
  const f = forwarder();
  const originPort = await echoOrigin(t);
  const l = await nativeListener(t);
  let ended = 0;
  let handled = 0;
  const counters = new ListenerCounters();
  const pump = setInterval(() => {
    for (; handled < l.accepted.length; handled++) {
      const a = l.accepted[handled] as Accepted;
      a.conn.own({ connected: () => undefined, connectFailed: () => undefined, detect: () => undefined, ended: () => { ended++; }, broken: () => undefined }, counters);
      assert.equal(a.conn.connect(request(originPort, { notifyConnected: false })), 0);
    }
  }, 1);
  t.after(() => { clearInterval(pump); });
  const one = async (): Promise<void> => {
    const c = createConnection({ host: '127.0.0.1', port: l.port, allowHalfOpen: true });
    c.on('error', () => undefined);
    const r = collect(c);
    c.end('ping');
    assert.deepEqual(await r, { data: 'ping' });
    c.destroy();
  };
  await one();
  await waitFor(() => ended === 1 && f.size === 0, 'the warm-up connection to end', 10_000);
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const baseline = fds();
  for (let batch = 0; batch < 10; batch++) await Promise.all(Array.from({ length: 50 }, one));
  await waitFor(() => ended === 501 && f.size === 0, 'every forward to end', 10_000);
  await waitFor(() => fds() <= baseline, 'the fds to come back to the baseline', 10_000);
  assert.equal(counters.downstreamToUpstream, 4 * 501);
  assert.equal(counters.upstreamToDownstream, 4 * 501);
});

test('accept() out of fds: the listener error is reported (EMFILE), the thread rests instead of spinning, and accepts again once fds are free', async (t) => {
  const l = await nativeListener(t);
  const pid = String(process.pid);
  const [soft, hard] = execFileSync('prlimit', ['--pid', pid, '--nofile', '--raw', '--noheadings', '--output', 'SOFT,HARD']).toString().trim().split(/\s+/);
  assert.match(`${soft}:${hard}`, /^(\d+|unlimited):(\d+|unlimited)$/);
  // Everything that needs an fd is started first: this process will be out of them.
  // The restorer raises the limit again when told on its stdin (no new fd needed here to do it).
  const restorer = spawn('sh', ['-c', `echo up; read x; prlimit --pid ${pid} --nofile=${soft}:${hard}`], { stdio: ['pipe', 'pipe', 'ignore'] });
  const restored = once(restorer, 'exit');
  // The clients live in another process: 6 connections once told, held until stdin closes.
  const clients = spawn(process.execPath, ['-e', `
    const net = require('node:net');
    process.stdin.once('data', () => { for (let i = 0; i < 6; i++) net.connect(${l.port}, '127.0.0.1').on('error', () => {}); });
    process.stdin.on('end', () => process.exit(0));
    process.stdout.write('up\\n');
  `], { stdio: ['pipe', 'pipe', 'ignore'] });
  t.after(() => {
    restorer.kill();
    clients.kill();
    execFileSync('prlimit', ['--pid', pid, `--nofile=${soft}:${hard}`]);
  });
  // Both children are up (their fds are theirs) once each said so.
  await Promise.all([once(restorer.stdout as NodeJS.ReadableStream, 'data'), once(clients.stdout as NodeJS.ReadableStream, 'data')]);
  const open = readdirSync('/proc/self/fd').length;
  // Room for about two accepted connections.
  execFileSync('prlimit', ['--pid', pid, `--nofile=${open + 2}:${hard}`]);
  clients.stdin?.write('go\n');
  await waitFor(() => l.errors.length > 0, 'the listener error', 10_000);
  assert.equal((l.errors[0] as NodeJS.ErrnoException).code, 'EMFILE');
  assert.ok(l.accepted.length < 6, `not every connection was accepted while out of fds (${l.accepted.length})`);
  // While it rests, the thread does not retry in a loop: one error per rest period (100 ms). By the time a third
  // error arrives, a spinning accept would have reported thousands.
  await waitFor(() => l.errors.length >= 3, 'the listener to try again after resting, twice', 10_000);
  assert.ok(l.errors.length <= 10, `one error per rest, not a spin: ${l.errors.length} errors`);
  restorer.stdin?.write('x\n');
  await restored;
  await waitFor(() => l.accepted.length === 6, 'the waiting connections accepted from the backlog', 10_000);
  for (const a of l.accepted) a.conn.abort();
  clients.stdin?.end();
});
