// TcpHandle (src/core/tcp-handle.ts) on loopback: a net.Server's accepts are taken as TCP handles (no net.Socket),
// with TCP_NODELAY set once on the listening socket and inherited by each accepted one (read with the addon);
// reads, writes in order, the client's FIN as 'end' without a close, our FIN after the queued writes, the close
// reported once, write() "full" and onceDrain(), reset(), a read error, and toSocket(): a socket on the same handle
// that gets the bytes put back, the client's FIN read before it, and counts that include the handle's. writeThrough():
// a connected net.Socket's writes through its handle, in order with its stream's and before its end(), declined while
// the stream cannot take them so, and a failed one destroying the socket. The handle bindings must be there on every
// Node release we support: supported() fails loudly here if they disappear.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadNativeAddon } from '../../../src/core/native-addon.js';
import { TcpHandle, type TcpHandleEvents } from '../../../src/core/tcp-handle.js';

/** A loopback listener whose accepts arrive as TcpHandles, and a client connected to it. */
async function accepted(t: TestContext): Promise<{ handle: TcpHandle; client: Socket }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const handles: TcpHandle[] = [];
  assert.equal(TcpHandle.interceptAccepts(server, (h) => { handles.push(h); }), true);
  const client = createConnection({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, allowHalfOpen: true });
  client.on('error', () => undefined);
  t.after(() => { client.destroy(); for (const h of handles) h.destroy(); server.close(); });
  await once(client, 'connect');
  await until(() => handles.length === 1, 'the accept');
  return { handle: handles[0] as TcpHandle, client };
}

/** Wait until `cond()`, polling each turn of the event loop (bounded in turns and time). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (let i = 0; i < 100_000 && !cond() && Date.now() < deadline; i++) await new Promise((r) => setTimeout(r, i < 100 ? 0 : 5));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

interface Heard {
  data: Buffer[];
  ends: number;
  closes: (Error | undefined)[];
}

function listen(handle: TcpHandle): Heard {
  const heard: Heard = { data: [], ends: 0, closes: [] };
  const events: TcpHandleEvents = {
    data: (c) => { heard.data.push(c); },
    end: () => { heard.ends++; },
    close: (err) => { heard.closes.push(err); },
  };
  handle.listen(events);
  return heard;
}

/** Everything the client receives, and whether its side saw the FIN. */
function collect(client: Socket): { text: () => string; ended: () => boolean } {
  const got: Buffer[] = [];
  let ended = false;
  client.on('data', (d: Buffer) => { got.push(d); });
  client.on('end', () => { ended = true; });
  return { text: () => Buffer.concat(got).toString('latin1'), ended: () => ended };
}

test('the bindings TcpHandle uses are there on this Node release', () => {
  assert.equal(TcpHandle.supported(), true, `Node ${process.version} lacks the TCP handle bindings: the HTTP listeners fall back to net.Socket`);
});

test('Nagle is off on the listening socket, once, and every accepted handle inherits it', async (t) => {
  const noDelay = loadNativeAddon().tcpNoDelay;
  assert.ok(noDelay !== undefined, 'the addon has tcpNoDelay()');
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const listeningFd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  assert.equal(noDelay(listeningFd), 0, 'a listening socket starts with Nagle on');
  const handles: TcpHandle[] = [];
  assert.equal(TcpHandle.interceptAccepts(server, (h) => { handles.push(h); }), true);
  assert.equal(noDelay(listeningFd), 1, 'interceptAccepts() sets TCP_NODELAY on the listening socket');
  const clients = [0, 1].map(() => createConnection({ host: '127.0.0.1', port: (server.address() as AddressInfo).port }));
  t.after(() => { for (const c of clients) c.destroy(); for (const h of handles) h.destroy(); server.close(); });
  for (const c of clients) c.on('error', () => undefined);
  await until(() => handles.length === 2, 'the accepts');
  assert.deepEqual(handles.map((h) => noDelay(h.fd)), [1, 1]);
});

test('reads, writes in order, the client FIN as end without a close, our FIN after the writes, one close', async (t) => {
  const { handle, client } = await accepted(t);
  const heard = listen(handle);
  const rx = collect(client);
  handle.resume();
  client.write('hello ');
  client.end('world');
  await until(() => heard.ends === 1, 'the client FIN');
  assert.equal(Buffer.concat(heard.data).toString(), 'hello world');
  assert.equal(handle.readableEnded, true);
  assert.deepEqual(heard.closes, [], 'a FIN alone does not close (half-open)');
  assert.equal(handle.write('one,'), true);
  assert.equal(handle.writev([Buffer.from('two,'), Buffer.from('three')]), true);
  handle.end();
  await until(() => heard.closes.length === 1, 'the close');
  await until(() => rx.ended(), 'our FIN at the client');
  assert.equal(rx.text(), 'one,two,three');
  assert.deepEqual(heard.closes, [undefined]);
  assert.equal(handle.bytesRead, 11);
  assert.equal(handle.bytesWritten, 13);
  assert.equal(handle.destroyed, true);
  handle.destroy();
  // A handle's close callback runs in the close phase of the loop's next iteration: after two check phases
  // (setImmediate), a second report would have come.
  for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
  assert.equal(heard.closes.length, 1, 'reported once');
});

test('write() says full from 16 KiB queued, and onceDrain() hears when it is written', async (t) => {
  const { handle, client } = await accepted(t);
  listen(handle);
  client.pause();
  const big = Buffer.alloc(8 * 1024 * 1024, 0x61);
  assert.equal(handle.write(big), false, 'the kernel cannot take 8 MiB at once');
  assert.equal(handle.writableNeedDrain, true);
  let drained = 0;
  handle.onceDrain(() => { drained++; });
  // The paused client's stream fills to its high-water mark and stops reading: bytes have moved, most wait in libuv.
  await until(() => client.readableLength >= client.readableHighWaterMark, "the paused client's buffer full");
  assert.equal(drained, 0, 'not drained while the client does not read');
  assert.ok(handle.writableLength > 0, 'bytes still queued in user space');
  let received = 0;
  client.on('data', (d: Buffer) => { received += d.length; }); // the buffered bytes come as 'data' too
  client.resume();
  await until(() => drained === 1, 'the drain');
  assert.equal(handle.writableNeedDrain, false);
  await until(() => received === big.length, 'every byte at the client');
});

test('end(then): then runs once our FIN is out; a second end() only adds its then', async (t) => {
  const { handle, client } = await accepted(t);
  const heard = listen(handle);
  const rx = collect(client);
  const order: string[] = [];
  handle.write('bye');
  handle.end(() => { order.push('first'); });
  handle.end(() => { order.push('second'); handle.destroy(); });
  assert.equal(handle.write('dropped'), true, 'a write after end() is dropped');
  await until(() => heard.closes.length === 1, 'the close');
  assert.deepEqual(order, ['first', 'second']);
  await until(() => rx.ended(), 'our FIN at the client');
  assert.equal(rx.text(), 'bye');
});

test('reset() sends a RST; a client reset is a close with its error', async (t) => {
  const a = await accepted(t);
  const heardA = listen(a.handle);
  const errA = once(a.client, 'error');
  a.handle.reset();
  const [err] = await errA as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNRESET');
  await until(() => heardA.closes.length === 1, 'the close after reset');

  const b = await accepted(t);
  const heardB = listen(b.handle);
  b.handle.resume();
  b.client.resetAndDestroy();
  await until(() => heardB.closes.length === 1, 'the close after the client reset');
  assert.equal((heardB.closes[0] as NodeJS.ErrnoException | undefined)?.code, 'ECONNRESET');
  assert.equal(b.handle.destroyed, true);
});

test('toSocket(): the same connection as a socket, bytes put back, the FIN read before it, counts of both', async (t) => {
  const { handle, client } = await accepted(t);
  const heard = listen(handle);
  const rx = collect(client);
  handle.resume();
  handle.write('from-handle;');
  client.end('early');
  await until(() => heard.ends === 1, 'the client FIN');
  const socket = handle.toSocket();
  t.after(() => { socket.destroy(); });
  socket.unshift(Buffer.concat(heard.data));
  let text = '';
  socket.setEncoding('latin1').on('data', (d: string) => { text += d; });
  await once(socket, 'end');
  assert.equal(text, 'early', 'the bytes put back, then the FIN the handle had read');
  socket.end('from-socket');
  await once(socket, 'close');
  await until(() => rx.ended(), 'the FIN at the client');
  assert.equal(rx.text(), 'from-handle;from-socket');
  assert.deepEqual(heard.closes, [], 'the handle reports nothing once it is a socket');
  assert.equal(handle.destroyed, true);
  assert.equal(handle.bytesRead, 5);
  assert.equal(handle.bytesWritten, 'from-handle;from-socket'.length);
  assert.throws(() => handle.toSocket(), /EBADF/);
});

test('toSocket(): once the socket closed, the handle keeps neither it nor the TCP handle (an accept-time context may hold it for hours)', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const { handle } = await accepted(t);
  assert.notEqual(handle.fd, -1);
  const refs = ((): { socket: WeakRef<Socket> } => {
    const socket = handle.toSocket();
    socket.destroy();
    return { socket: new WeakRef(socket) };
  })();
  assert.equal(handle.fd, -1, 'the TCP handle is the socket\'s from toSocket() on');
  await until(() => handle.destroyed, 'the socket\'s close');
  // A WeakRef's target stays alive until the job that made it ends: collect in later turns of the loop (bounded).
  for (let i = 0; i < 20 && refs.socket.deref() !== undefined; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  assert.equal(refs.socket.deref(), undefined, 'the closed socket was collected while the handle is still held');
  assert.equal(handle.destroyed, true);
});

/** A plain net.Server and a connected net.Socket client to it; `server` gets what the client sends. */
async function socketPair(t: TestContext): Promise<{ client: Socket; peer: Socket }> {
  const server = createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const peers: Socket[] = [];
  server.on('connection', (s: Socket) => { s.on('error', () => undefined); peers.push(s); });
  const client = createConnection({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, allowHalfOpen: true });
  client.on('error', () => undefined);
  t.after(() => { client.destroy(); for (const p of peers) p.destroy(); server.close(); });
  assert.equal(TcpHandle.writeThrough(client, 'x'), false, 'not while connecting');
  await once(client, 'connect');
  await until(() => peers.length === 1, 'the accept');
  return { client, peer: peers[0] as Socket };
}

test("writeThrough(): a socket's writes through its handle keep their order with the stream's, end() after them", async (t) => {
  const { client, peer } = await socketPair(t);
  const seen = collect(peer);
  assert.equal(TcpHandle.writeThrough(client, 'one,'), true);
  assert.equal(TcpHandle.writeThrough(client, Buffer.from('two,')), true);
  client.write('three,');
  // The stream may still hold 'three,' (its write completes in a later tick): then writeThrough declines.
  const direct = TcpHandle.writeThrough(client, 'four,');
  if (!direct) client.write('four,');
  // 8 MiB to a peer that is not reading: libuv keeps most of it; the stream's write and end() queue behind it.
  peer.pause();
  await until(() => client.writableLength === 0, 'the stream empty');
  const big = Buffer.alloc(8 * 1024 * 1024, 0x62);
  assert.equal(TcpHandle.writeThrough(client, big), true);
  client.write('five');
  client.end();
  peer.resume();
  await until(() => seen.ended(), "the client's FIN at the peer");
  const text = seen.text();
  assert.equal(text.length, 4 + 4 + 6 + 5 + big.length + 4);
  assert.equal(text.slice(0, 19), 'one,two,three,four,');
  assert.equal(text.slice(19, 19 + big.length), 'b'.repeat(big.length));
  assert.equal(text.slice(19 + big.length), 'five');
});

test('writeThrough(): declined when the stream holds bytes, is corked or ended; a failed write destroys the socket', async (t) => {
  const { client, peer } = await socketPair(t);
  peer.pause();
  // Fill the stream: once the kernel and libuv hold enough, the stream keeps the rest.
  const chunk = Buffer.alloc(1024 * 1024, 0x63);
  for (let i = 0; i < 64 && client.writableLength === 0; i++) client.write(chunk);
  assert.ok(client.writableLength > 0, 'bytes wait in the stream');
  assert.equal(TcpHandle.writeThrough(client, 'x'), false, 'not with bytes in the stream');
  const second = await socketPair(t);
  second.client.cork();
  assert.equal(TcpHandle.writeThrough(second.client, 'x'), false, 'not while corked');
  second.client.uncork();
  second.client.end();
  assert.equal(TcpHandle.writeThrough(second.client, 'x'), false, 'not after end()');
  // A peer that resets: a write through the handle fails, and the socket is destroyed with the error.
  // The client does not read, so only a write can hear of the reset.
  const third = await socketPair(t);
  third.client.pause();
  third.peer.resetAndDestroy();
  await until(() => {
    if (!third.client.destroyed) TcpHandle.writeThrough(third.client, 'after the reset');
    return third.client.destroyed;
  }, 'the socket destroyed by a failed write');
  const err = third.client.errored as NodeJS.ErrnoException | null;
  assert.ok(err instanceof Error, 'destroyed with an error');
  assert.equal(err.syscall, 'write');
});
