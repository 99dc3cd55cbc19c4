// The connect timeouts' sweep (src/upstream/transport/connect.ts) lets go of a connection as soon as it is settled:
// left to the next visit (up to a second), its set kept the sockets alive through young-generation collections.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { openConnection, pendingConnectDeadlines, type ConnectHandler } from '../../../src/upstream/transport/connect.js';

async function server(t: { after(fn: () => void): void }): Promise<number> {
  const accepted = new Set<Socket>();
  const srv = createServer((s) => { accepted.add(s); s.on('error', () => undefined); });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.after(() => { for (const s of accepted) s.destroy(); srv.close(); });
  return (srv.address() as AddressInfo).port;
}

test('a connection with a handler leaves the connect sweep when it is ready', async (t) => {
  const port = await server(t);
  const before = pendingConnectDeadlines();
  const sockets: Socket[] = [];
  const ready: Promise<void>[] = [];
  for (let i = 0; i < 20; i++) {
    ready.push(new Promise<void>((resolve, reject) => {
      const handler: ConnectHandler = { onUpstreamReady: () => { resolve(); }, onUpstreamFailed: (_s, f) => { reject(f.error); } };
      sockets.push(openConnection({ address: '127.0.0.1', port }, { timeoutMs: 60_000, handler }));
    }));
  }
  assert.equal(pendingConnectDeadlines(), before + 20, 'each connecting socket has its deadline in the sweep');
  await Promise.all(ready);
  assert.equal(pendingConnectDeadlines(), before, 'ready connections are out of the sweep at once (its period is 1 s here)');
  for (const s of sockets) s.destroy();
});

test('a connection on the opaque fast path leaves the connect sweep when it connects', async (t) => {
  const port = await server(t);
  const before = pendingConnectDeadlines();
  const sockets = Array.from({ length: 20 }, () => openConnection({ address: '127.0.0.1', port }, { timeoutMs: 60_000 }));
  assert.equal(pendingConnectDeadlines(), before + 20);
  await Promise.all(sockets.map((s) => (s.connecting ? once(s, 'connect') : Promise.resolve())));
  assert.equal(pendingConnectDeadlines(), before);
  for (const s of sockets) s.destroy();
});
