// Upgrade (WebSocket) and CONNECT through the engine: after the upstream's 101 / 2xx the connection is a raw
// byte tunnel with half-close carried each way; other answers are relayed and the connection closes.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import {
  fakeCluster, listen, PASSTHROUGH_DECISION, rawExchange, readUntil, startProxy, waitFor, type ProxyUnderTest, HTTP2_CODECS,
} from './harness.js';

describe('WebSocket through the engine', () => {
  let backend: http.Server;
  let wss: WebSocketServer;
  let proxy: ProxyUnderTest;
  const upgradeHeads: string[][] = [];

  before(async () => {
    backend = http.createServer((req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' });
      res.end(`upgrade required for ${req.url}\n`);
    });
    wss = new WebSocketServer({ noServer: true });
    backend.on('upgrade', (req, socket, head) => {
      upgradeHeads.push(req.rawHeaders);
      if (req.url === '/refuse') {
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\nrefused');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      });
    });
    const port = await listen(backend);
    proxy = await startProxy({ address: '127.0.0.1', port });
  });

  after(async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    await proxy.close();
    backend.closeAllConnections();
    backend.close();
  });

  test('echo of text and binary messages, then a clean close', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/echo`, { headers: { 'X-Client-Case': 'Kept' } });
    await once(ws, 'open');
    const got: string[] = [];
    ws.on('message', (d: Buffer) => got.push(d.toString()));
    ws.send('hello');
    ws.send(Buffer.alloc(100_000, 0x62));
    ws.send('bye');
    await waitFor(() => got.length >= 3, 'three echoed messages');
    assert.deepEqual(got.map((g) => g.slice(0, 5)), ['hello', 'bbbbb', 'bye']);
    assert.equal(got[1]?.length, 100_000);
    ws.close(1000, 'done');
    const [code] = (await once(ws, 'close')) as [number];
    assert.equal(code, 1000);
    const h = upgradeHeads.at(-1) ?? [];
    assert.equal(h[h.indexOf('X-Client-Case') + 1], 'Kept');
    assert.ok(h.some((x) => x.toLowerCase() === 'upgrade'));
    assert.ok(h.some((x) => x.toLowerCase() === 'x-request-id'));
  });

  test('a refused upgrade is relayed and the connection closed', async () => {
    const r = await rawExchange(
      proxy.port,
      'GET /refuse HTTP/1.1\r\nHost: w\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assert.match(r.text, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(r.text, /refused$/);
    assert.equal(r.closed, true);
  });

  test('an h2c upgrade is not honoured: the request is answered as HTTP/1.1 without the upgrade', async () => {
    const before = upgradeHeads.length;
    const r = await rawExchange(
      proxy.port,
      'GET /plain HTTP/1.1\r\nHost: w\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
    );
    assert.match(r.text, /^HTTP\/1\.1 426 Upgrade Required\r\n/);
    assert.match(r.text, /upgrade required for \/plain\n$/);
    assert.equal(upgradeHeads.length, before, 'the backend saw a plain request');
    assert.equal(proxy.stats.get('http1.h2c_upgrades_refused'), 1);
  });
});

describe('CONNECT through the engine', () => {
  let echo: net.Server;
  let echoPort = 0;
  let backend: http.Server;
  let proxy: ProxyUnderTest;
  let echoSawEnd = 0;

  before(async () => {
    // The "real" destination behind the HTTP proxy the app talks to: echoes, and ends when the client ends.
    echo = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      s.on('data', (d) => s.write(d));
      s.on('end', () => {
        echoSawEnd++;
        s.end('<echo-bye>');
      });
    });
    echoPort = await listen(echo);
    // The app's original destination: an HTTP proxy that implements CONNECT.
    backend = http.createServer((_req, res) => res.end('not a tunnel\n'));
    backend.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      if (req.url !== `127.0.0.1:${echoPort}`) {
        client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      const up = net.connect({ port: echoPort, host: '127.0.0.1', allowHalfOpen: true }, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) up.write(head);
        up.pipe(client);
        client.pipe(up);
      });
      up.on('error', () => client.destroy());
      client.on('error', () => up.destroy());
    });
    const port = await listen(backend);
    proxy = await startProxy({ address: '127.0.0.1', port });
  });

  after(async () => {
    await proxy.close();
    backend.closeAllConnections();
    backend.close();
    echo.close();
  });

  test('bytes flow both ways; the client FIN reaches the far end and its reply comes back before the close', async () => {
    const s = net.connect({ port: proxy.port, host: '127.0.0.1', allowHalfOpen: true });
    s.on('error', () => {});
    await once(s, 'connect');
    s.write(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\n`);
    const head = await readUntil(s, (t) => t.includes('\r\n\r\n'));
    assert.match(head, /^HTTP\/1\.1 200 Connection Established\r\n\r\n$/);
    s.write('ping-1');
    await readUntil(s, (t) => t.includes('ping-1'));
    const big = Buffer.alloc(1_000_000, 0x7a);
    let received = 0;
    const done = new Promise<void>((resolve) => {
      s.on('data', (d: Buffer) => {
        received += d.length;
        if (received >= big.length) resolve();
      });
    });
    s.write(big);
    await done;
    // Half-close: the echo server sees our FIN and answers after it.
    const tail: Buffer[] = [];
    s.on('data', (d: Buffer) => tail.push(d));
    s.end();
    await once(s, 'end');
    assert.ok(Buffer.concat(tail).toString().endsWith('<echo-bye>'));
    assert.equal(echoSawEnd, 1);
    s.destroy();
  });

  for (const codec of HTTP2_CODECS) test(`HTTP/2 CONNECT is carried as an HTTP/1.1 CONNECT upstream and bridged to the stream, with half-close (http2_codec = ${codec})`, async () => {
    // h2 prior knowledge to the proxy, whose original destination speaks HTTP/1.1: a routed service would do the
    // same; passthrough keeps the downstream protocol, so route through a cluster pinned to http1.
    const port = (backend.address() as net.AddressInfo).port;
    const pinned = fakeCluster({ name: 'proxy', protocol: 'http1', pick: () => ({ address: '127.0.0.1', port }) });
    const p2 = await startProxy({ address: '127.0.0.1', port }, {
      route: () => ({ ...PASSTHROUGH_DECISION, backend: { service: 'proxy', weight: 1 } }),
      cluster: () => pinned,
    }, { http2Codec: codec });
    try {
      const client = http2.connect(`http://127.0.0.1:${p2.port}`);
      client.on('error', () => {});
      const req = client.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${echoPort}` });
      req.on('error', () => {});
      const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      assert.equal(headers[':status'], 200);
      req.write('over-h2');
      const got = await new Promise<string>((resolve) => {
        let all = '';
        req.on('data', (d: Buffer) => {
          all += d.toString();
          if (all.includes('over-h2')) resolve(all);
        });
      });
      assert.equal(got, 'over-h2');
      assert.equal(p2.stats.get('http.tunnels'), 1);
      // Half-close: END_STREAM reaches the far end as a FIN, and its answer after it comes back before the stream ends.
      const sawEnd = echoSawEnd;
      const tail: string[] = [];
      req.on('data', (d: Buffer) => tail.push(d.toString()));
      req.end();
      await once(req, 'end');
      assert.ok(tail.join('').endsWith('<echo-bye>'), tail.join(''));
      assert.equal(echoSawEnd, sawEnd + 1);
      client.close();
    } finally {
      await p2.close();
    }
  });

  test('a refused CONNECT is relayed and the connection closed', async () => {
    const r = await rawExchange(proxy.port, 'CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n');
    assert.match(r.text, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.equal(r.closed, true);
  });
});
