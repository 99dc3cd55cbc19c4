// socket-fd reads an undocumented property (socket._handle.fd). This test fails loudly if a Node release drops it.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { fstatSync } from 'node:fs';
import { connect, createServer, Socket, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { socketFd } from '../../../src/interceptor/socket-fd.js';

test('the fd of connected TCP sockets (both ends) is a real socket descriptor; a closed socket has none', { timeout: 20_000 }, async (t) => {
  const server = createServer();
  t.after(() => server.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  client.on('error', () => undefined);
  await once(client, 'connect');
  const [peer] = await accepted;
  peer.on('error', () => undefined);
  for (const s of [client, peer]) {
    const fd = socketFd(s);
    assert.ok(fd !== undefined && fd > 2, `socket._handle.fd is missing on Node ${process.version}`);
    assert.ok(fstatSync(fd).isSocket());
  }
  client.destroy();
  peer.destroy();
  assert.equal(socketFd(client), undefined);
  assert.equal(socketFd(new Socket()), undefined);
});
