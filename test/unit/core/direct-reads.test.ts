// DirectReads (src/core/direct-reads.ts) on sockets opened by the real connect stage on loopback and adopted as the
// HTTP/1.1 pool does: reads reach the sink as copies that stay intact while later reads (of this and other sockets)
// reuse the shared buffer, no 'data' event is emitted while a sink is attached, reads before the sink and after
// detach() go through the socket's stream, a sink's false pauses the socket, and a TLS-originated socket is refused.
// The same on an accepted socket (the HTTP/1.1 engine's downstream): adopt() must work on the Node releases we
// support, and refuse what it cannot take.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { openConnection } from '../../../src/upstream/transport/connect.js';
import { DirectReads } from '../../../src/core/direct-reads.js';
import { TlsOriginator } from '../../../src/upstream/transport/tls-origination.js';
import type { UpstreamTransport } from '../../../src/upstream/transport/upstream-transport.js';
import { createTestCa, opensslUnavailable } from '../../support/test-ca.js';

/** A loopback server; `peers` gets each accepted socket. */
async function server(t: { after(fn: () => void): void }, peers: Socket[]): Promise<number> {
  const srv = createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => undefined); peers.push(s); });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.after(() => { for (const s of peers) s.destroy(); srv.close(); });
  return (srv.address() as AddressInfo).port;
}

/** A connection through the real connect stage, adopted into direct reads once connected (as Http1Connection does). */
function connect(port: number, tls?: UpstreamTransport): Promise<{ socket: Socket; reads: DirectReads | undefined }> {
  return new Promise((resolve, reject) => {
    openConnection({ address: '127.0.0.1', port }, {
      timeoutMs: 5_000,
      tls,
      handler: { onUpstreamReady: (socket) => { resolve({ socket, reads: DirectReads.adopt(socket) }); }, onUpstreamFailed: (_s, f) => { reject(f.error); } },
    });
  });
}

/** Wait until `cond()`, polling each turn of the event loop (bounded). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 5_000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

/** One direct-read connection to a loopback server, and the server's side of it. */
async function oneConnection(t: { after(fn: () => void): void }): Promise<{ reads: DirectReads; socket: Socket; peer: Socket }> {
  const peers: Socket[] = [];
  const port = await server(t, peers);
  const { socket, reads } = await connect(port);
  t.after(() => { socket.destroy(); });
  assert.ok(reads !== undefined, 'a plain TCP socket is adopted');
  await until(() => peers.length === 1, 'accepted');
  return { reads, socket, peer: peers[0] as Socket };
}

test('reads reach the sink as copies that stay intact across later reads of two sockets; no data event meanwhile', async (t) => {
  const peers: Socket[] = [];
  const port = await server(t, peers);
  const a = await connect(port);
  const b = await connect(port);
  t.after(() => { a.socket.destroy(); b.socket.destroy(); });
  assert.ok(a.reads !== undefined && b.reads !== undefined, 'plain TCP reads directly');
  const got: Record<'a' | 'b', Buffer[]> = { a: [], b: [] };
  let dataEvents = 0;
  for (const [name, c] of [['a', a], ['b', b]] as const) {
    c.socket.on('data', () => { dataEvents++; });
    c.reads?.attach((chunk) => { got[name].push(chunk); return true; });
  }
  await until(() => peers.length === 2, 'both accepted');
  const [pa, pb] = peers as [Socket, Socket];
  // Alternate writes to the two sockets, each waiting for the previous read: every read lands in the shared buffer.
  const expected: Record<'a' | 'b', string> = { a: '', b: '' };
  for (let i = 0; i < 20; i++) {
    const [name, peer] = i % 2 === 0 ? (['a', pa] as const) : (['b', pb] as const);
    const text = `${name}${i}-`.repeat(10 + i);
    expected[name] += text;
    const before = got[name].length;
    peer.write(text);
    await until(() => got[name].length > before && Buffer.concat(got[name]).length === expected[name].length, `read ${i}`);
  }
  assert.equal(Buffer.concat(got.a).toString('latin1'), expected.a);
  assert.equal(Buffer.concat(got.b).toString('latin1'), expected.b);
  assert.equal(dataEvents, 0, 'no data event while a sink is attached');
});

test('bytes read before the sink attaches come first; after detach() reads are data events again', async (t) => {
  const { reads, socket, peer } = await oneConnection(t);
  peer.write('early');
  await until(() => socket.readableLength === 5, 'the early bytes in the stream');
  const sunk: string[] = [];
  reads.attach((chunk) => { sunk.push(chunk.toString('latin1')); return true; });
  assert.deepEqual(sunk, ['early']);
  peer.write('direct');
  await until(() => sunk.length === 2, 'a direct read');
  assert.equal(sunk[1], 'direct');
  reads.detach();
  const data: string[] = [];
  socket.on('data', (d: Buffer) => { data.push(d.toString('latin1')); });
  peer.write('stream');
  await until(() => data.length === 1, 'a data event');
  assert.deepEqual(data, ['stream']);
  assert.equal(sunk.length, 2);
  peer.end();
  await once(socket, 'end');
});

test('a sink that returns false pauses the socket until resume()', async (t) => {
  const { reads, socket, peer } = await oneConnection(t);
  const sunk: string[] = [];
  reads.attach((chunk) => { sunk.push(chunk.toString('latin1')); return false; });
  peer.write('one');
  await until(() => sunk.length === 1, 'the first read');
  peer.write('two');
  // Paused: the second write waits in the kernel. Give the loop many turns to be sure nothing is read.
  for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(sunk, ['one']);
  socket.resume();
  await until(() => sunk.length === 2, 'the read after resume');
  assert.equal(sunk[1], 'two');
});

test('with TLS origination the socket does not read directly: the TLS socket is read as a stream', { skip: opensslUnavailable() }, async (t) => {
  const ca = createTestCa();
  t.after(() => { ca.remove(); });
  const leaf = ca.issue('upstream', ['127.0.0.1']);
  const srv = createTlsServer({ cert: readFileSync(leaf.certFile), key: readFileSync(leaf.keyFile) }, (s) => {
    s.on('error', () => undefined);
    s.end('over tls');
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.after(() => { srv.close(); });
  const port = (srv.address() as AddressInfo).port;
  const transport = new TlsOriginator({
    port: undefined, serverName: undefined, serverNameSource: 'none', caFile: ca.caFile, certFile: undefined, keyFile: undefined,
    minVersion: 'TLSv1.2', alpn: [], verify: true,
  }, { ca: readFileSync(ca.caFile, 'latin1') });
  const got = await connect(port, transport);
  t.after(() => { got.socket.destroy(); });
  assert.equal(got.reads, undefined, 'no direct reads under TLS');
  let text = '';
  got.socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
  await once(got.socket, 'end');
  assert.equal(text, 'over tls');
});

/** A loopback server and one accepted socket of it, with the client's side. */
async function accepted(t: { after(fn: () => void): void }): Promise<{ socket: Socket; client: Socket }> {
  const peers: Socket[] = [];
  const port = await server(t, peers);
  const client = await new Promise<Socket>((resolve, reject) => {
    const c = createConnection({ port, host: '127.0.0.1', allowHalfOpen: true }, () => { resolve(c); });
    c.once('error', reject);
  });
  t.after(() => { client.destroy(); });
  await until(() => peers.length === 1, 'accepted');
  return { socket: peers[0] as Socket, client };
}

test('adopt() reads an accepted socket directly: what its stream holds first, then reads without data events, pause() stops them at the handle, the FIN still ends it', async (t) => {
  const { socket, client } = await accepted(t);
  client.write('early');
  await until(() => socket.readableLength === 5, 'the early bytes in the stream');
  const reads = DirectReads.adopt(socket);
  assert.ok(reads !== undefined, 'this Node release lets an accepted socket read directly (docs/discoveries.md, 10)');
  const sunk: string[] = [];
  reads.attach((chunk) => { sunk.push(chunk.toString('latin1')); return true; });
  assert.deepEqual(sunk, ['early']);
  let dataEvents = 0;
  socket.on('data', () => { dataEvents++; });
  socket.resume();
  client.write('direct');
  await until(() => sunk.length === 2, 'a direct read');
  assert.equal(sunk[1], 'direct');
  socket.pause();
  client.write('held');
  // Paused at the handle: the bytes wait in the kernel. Many turns of the loop, and nothing is read.
  for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(sunk, ['early', 'direct']);
  assert.equal(socket.bytesRead, 11);
  socket.resume();
  await until(() => sunk.length === 3, 'the read after resume');
  assert.equal(sunk[2], 'held');
  client.end();
  await once(socket, 'end');
  assert.equal(dataEvents, 0, 'no data event while the sink is attached');
});

test('adopt() refuses a socket it cannot take, and changes nothing: a second adopt, a TLS socket, a destroyed socket', { skip: opensslUnavailable() }, async (t) => {
  const { socket, client } = await accepted(t);
  assert.ok(DirectReads.adopt(socket) !== undefined);
  assert.equal(DirectReads.adopt(socket), undefined, 'already reading into the shared buffer');

  const ca = createTestCa();
  t.after(() => { ca.remove(); });
  const leaf = ca.issue('server', ['127.0.0.1']);
  const tlsSockets: TLSSocket[] = [];
  const srv = createTlsServer({ cert: readFileSync(leaf.certFile), key: readFileSync(leaf.keyFile) }, (s) => {
    s.on('error', () => undefined);
    tlsSockets.push(s);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.after(() => { for (const s of tlsSockets) s.destroy(); srv.close(); });
  const tc = tlsConnect({ port: (srv.address() as AddressInfo).port, host: '127.0.0.1', ca: readFileSync(ca.caFile) });
  tc.on('error', () => undefined);
  t.after(() => { tc.destroy(); });
  await once(tc, 'secureConnect');
  await until(() => tlsSockets.length === 1, 'the TLS server socket');
  const tlsSide = tlsSockets[0] as TLSSocket;
  assert.equal(DirectReads.adopt(tlsSide), undefined, 'a TLS socket reads as a stream');
  // Refused means untouched: the TLS socket still reads as a stream.
  const got = new Promise<string>((resolve) => { tlsSide.once('data', (d: Buffer) => { resolve(d.toString('latin1')); }); });
  tc.write('still a stream');
  assert.equal(await got, 'still a stream');

  client.destroy();
  const { socket: gone } = await accepted(t);
  gone.destroy();
  assert.equal(DirectReads.adopt(gone), undefined, 'a destroyed socket');
});
