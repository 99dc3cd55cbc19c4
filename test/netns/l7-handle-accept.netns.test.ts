// HTTP/1.1 on the accepted TCP handle (src/core/tcp-handle.ts, src/l4/handle-connection.ts) through the real rules:
// the outbound listener of a proxy with its HTTP engine takes its connections as TCP handles. A connection to a
// destination whose last connections were HTTP is detected on the handle and served there by the engine (no
// net.Socket): keep-alive, a request body, and a WebSocket whose Upgrade makes the handle a socket for the tunnel.
// At such a destination, a connection that turns out not to be HTTP becomes a socket with the bytes it sent put back
// and takes the staged path as Node's own accept would: bytes that are not HTTP are forwarded as opaque, and a silent
// client of a server that speaks first hears the greeting once the short wait is over. Every check reads structured
// results (tool JSON, /stats counters).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, type Pod } from './harness.js';
import { L4_TOOLS, l4StatsWhere, startL4Tool, tempDir, writeConfig } from './l4-helpers.js';
import { httpStats, load, runL7Tool, startL7Tool } from './l7-helpers.js';
import { initOk } from './proxy-helpers.js';
import { startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();

interface RawResult {
  readonly text: string;
  readonly closed: boolean;
  readonly error?: string;
}

interface FirstByte {
  readonly greeting: string;
  readonly rest: string;
  readonly error?: string;
}

describe('HTTP/1.1 served on the accepted TCP handle, and the connections that leave it', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let srv: Pod;
  let proxy: RunningProxy;
  const tmp = tempDir('remora-l7-handle-');

  /** Send FILE's bytes (written here from `payload`) on one connection; what came back before the close. */
  async function raw(name: string, host: string, port: number, payload: string, waitMs = 3_000): Promise<RawResult> {
    const file = join(tmp.dir, name);
    writeFileSync(file, payload, 'latin1');
    return runL7Tool<RawResult>(client, ['raw', host, String(port), file, String(waitMs)]);
  }

  async function counter(name: string): Promise<number> {
    return (await httpStats(proxy)).outbound[name] ?? 0;
  }

  async function sniffed(label: string): Promise<number> {
    const s = (await proxy.stats())['sniff'] as Record<string, number>;
    return s[label] ?? 0;
  }

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    client = await mesh.addPod('client');
    srv = await mesh.addPod('srv');
    await startL7Tool(srv, ['http-tag', '::', '8080', 'srv']);
    await startL7Tool(srv, ['ws-echo', '::', '8090']);
    await startL7Tool(srv, ['echo', '::', '7000', 'srv']);
    await startL4Tool(srv, ['banner', '::', '2525', '220 remora-test ESMTP ready']);
    // A long detection deadline: a fallback below must end detection by what the bytes (or the server) say.
    const config = writeConfig(tmp.dir, 'client.ini', ['[proxy]', 'detect_timeout = 60s']);
    await initOk(client);
    proxy = await startProxy(client, ['--config', config]);
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  test('keep-alive requests and a request body at a destination seen as HTTP are served on the handle', opts, async () => {
    const url = `http://${srv.ip4}:8080/`;
    const first = await load(client, url, 1, 1);
    assert.deepEqual(first.statuses, { 200: 1 });
    assert.equal(await counter('http1.tcp_handles'), 0, 'the first connection to a destination is detected on a socket');
    const r = await load(client, url, 200, 4);
    assert.equal(r.error, undefined);
    assert.deepEqual(r.statuses, { 200: 200 });
    assert.deepEqual(r.bodies, { srv: 200 });
    assert.deepEqual(r.errors, {});
    const body = 'x'.repeat(256 * 1024);
    const post = await raw('post.bin', srv.ip4, 8080,
      `POST /upload HTTP/1.1\r\nHost: srv\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    assert.match(post.text, /^HTTP\/1\.1 200 /);
    assert.match(post.text, /\r\nx-method: POST\r\n/i);
    assert.ok(post.text.endsWith('\r\n\r\n4\r\nsrv\n\r\n0\r\n\r\n'), `the chunked body "srv\\n": ${post.text.slice(-80)}`);
    assert.equal(post.closed, true, 'Connection: close ends the connection after the answer');
    const out = (await httpStats(proxy)).outbound;
    const conns = out['http1.connections'] ?? 0;
    assert.ok(conns >= 3, JSON.stringify(out));
    assert.equal(out['http1.tcp_handles'], conns - 1, `every connection but the first was served on the handle: ${JSON.stringify(out)}`);
    assert.equal(await sniffed('http1'), conns);
    const s = await l4StatsWhere(proxy, 'every connection closed', (x) => x.connections.active === 0);
    assert.deepEqual(s.errors, {});
  });

  test('a WebSocket Upgrade on a handle becomes a tunnel on the same connection', opts, async () => {
    const url = `ws://${srv.ip4}:8090/`;
    const before = await counter('http1.tcp_handles');
    for (let i = 0; i < 2; i++) {
      const r = await runL7Tool<{ got: number; inOrder?: boolean; binaryOk: boolean; closeCode?: number; error?: string }>(client, ['ws-client', url, '20']);
      assert.deepEqual(r, { got: 20, inOrder: true, binaryOk: true, closeCode: 1000 });
    }
    assert.equal(await counter('http1.tcp_handles') - before, 1, 'the second Upgrade (a destination seen as HTTP) came on the handle');
  });

  test('bytes that are not HTTP at a destination seen as HTTP: a socket with those bytes, forwarded as opaque', opts, async () => {
    // The first connection is HTTP (the echo server does not answer in HTTP: a 502), so the destination is seen as HTTP.
    const first = await raw('get.txt', srv.ip4, 7000, 'GET / HTTP/1.1\r\nHost: srv\r\n\r\n');
    assert.match(first.text, /^HTTP\/1\.1 502 /);
    const before = await sniffed('opaque:unrecognized');
    const handles = await counter('http1.tcp_handles');
    const r = await raw('line.txt', srv.ip4, 7000, 'hello remora\n', 2_000);
    assert.equal(r.text, 'srv hello remora\n', 'the server got the bytes read on the handle, once and in order');
    assert.equal(await sniffed('opaque:unrecognized') - before, 1);
    assert.equal(await counter('http1.tcp_handles'), handles, 'not served by the HTTP engine');
  });

  test('a silent client at a destination seen as HTTP hears a server that speaks first, after the short wait', opts, async () => {
    const first = await raw('get2.txt', srv.ip4, 2525, 'GET / HTTP/1.1\r\nHost: srv\r\n\r\n');
    assert.match(first.text, /^HTTP\/1\.1 502 /, 'the banner server is not HTTP: the first connection is answered 502');
    const before = await sniffed('opaque:server-first');
    const r = await client.exec([process.execPath, L4_TOOLS, 'first-byte', srv.ip4, '2525', 'HELO client'], { timeoutMs: 40_000 });
    const out = r.stdout.split('\n').find((l) => l.startsWith('{'));
    assert.ok(out !== undefined, `first-byte printed nothing (exit ${r.code}): ${r.stderr}`);
    const fb = JSON.parse(out) as FirstByte;
    assert.equal(fb.error, undefined);
    assert.equal(fb.greeting, '220 remora-test ESMTP ready\r\n');
    assert.equal(fb.rest, 'echo HELO client\r\n');
    // Detection ended because the server spoke (not at the 60 s deadline, which would count opaque:timeout).
    assert.equal(await sniffed('opaque:server-first') - before, 1);
  });
});
