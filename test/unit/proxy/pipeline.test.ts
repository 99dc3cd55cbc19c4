// The proxy's staged pipeline on loopback (no iptables): a real startProxy() whose original-destination reader is
// injected, so each test decides where "the app dialed". Detection (server-first with a long deadline, the deadline
// fallback, client FIN), the HTTP hand-off hook, services (round robin, retries, ejection), registry-only refusal,
// SNI routing, and TLS origination with a CA made by openssl. Bounded: every wait has a deadline.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { test as nodeTest, type TestContext } from 'node:test';
import * as tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { HttpHandoff, HttpHandoffContext } from '../../../src/l4/http-handoff.js';
import { PREDIAL_FAILED_GRACE_MS } from '../../../src/l4/staged-connection.js';
import type { Proxy } from '../../../src/proxy/proxy.js';
import { startRig, type Rig } from '../../support/proxy-rig.js';
import { createTestCa, opensslUnavailable } from '../../support/test-ca.js';

const test = (name: string, fn: (t: TestContext) => Promise<void>, opts: { skip?: string | undefined } = {}): void => {
  nodeTest(name, { timeout: 30_000, ...(opts.skip === undefined ? {} : { skip: opts.skip }) }, fn);
};
const ignore = (): void => undefined;

async function listen(t: TestContext, server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => { server.close(); });
  return (server.address() as AddressInfo).port;
}

/** A TCP server; every accepted socket is destroyed at the end of the test. */
async function tcpServer(t: TestContext, onConnection: (s: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('error', ignore);
    onConnection(s);
  });
  t.after(() => { for (const s of sockets) s.destroy(); });
  return listen(t, server);
}

/** A server answering every connection with its tag (after reading a line, or at once with `first`). */
function tagServer(t: TestContext, tag: string, seen: string[] = []): Promise<number> {
  return tcpServer(t, (s) => {
    s.once('data', (d: Buffer) => { seen.push(d.toString('latin1')); s.end(`${tag}\n`); });
  });
}

function rig(t: TestContext, ini: string, opts: { detectTimeout?: number; httpHandler?: HttpHandoff } = {}): Promise<Rig> {
  // These tests are about the L4 stages: HTTP without the engine is forwarded as opaque TCP.
  return startRig(t, ini, {
    ...(opts.detectTimeout === undefined ? {} : { detectTimeout: opts.detectTimeout }),
    ...(opts.httpHandler === undefined ? {} : { httpHandlers: { outbound: opts.httpHandler } }),
  });
}

interface Exchange {
  readonly reply: string;
  readonly error?: string | undefined;
  /** ms from connect to the first byte received. */
  readonly firstByteMs?: number | undefined;
}

/** Connect through the proxy, optionally wait, send, end, and read until the end (bounded). */
function exchange(port: number, opts: { send?: string; delayMs?: number; end?: boolean; readFirst?: boolean } = {}): Promise<Exchange> {
  return new Promise((resolve) => {
    const started = performance.now();
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let reply = '';
    let firstByteMs: number | undefined;
    const done = (error?: string): void => { clearTimeout(timer); s.destroy(); resolve({ reply, error, firstByteMs }); };
    const timer = setTimeout(() => { done('deadline'); }, 15_000);
    const send = (): void => {
      if (opts.send !== undefined) s.write(opts.send);
      if (opts.end ?? true) s.end();
    };
    s.setEncoding('latin1').on('data', (d: string) => {
      firstByteMs ??= performance.now() - started;
      const first = reply === '';
      reply += d;
      if (first && opts.readFirst === true) send();
    });
    s.on('end', () => { done(); });
    s.on('error', (err: NodeJS.ErrnoException) => { done(err.code ?? 'error'); });
    s.on('connect', () => {
      if (opts.readFirst === true) return;
      if ((opts.delayMs ?? 0) > 0) setTimeout(send, opts.delayMs);
      else send();
    });
  });
}

async function statsWhere(proxy: Proxy, ok: (s: ReturnType<Proxy['stats']>) => boolean): Promise<ReturnType<Proxy['stats']>> {
  for (let i = 0; i < 200; i++) {
    const s = proxy.stats();
    if (ok(s)) return s;
    await new Promise((r) => setTimeout(r, 25));
  }
  return proxy.stats();
}

test('server-first: the greeting arrives at once although the detect deadline is 60 s', async (t) => {
  const port = await tcpServer(t, (s) => {
    s.write('220 banner ready\r\n');
    s.on('data', (d: Buffer) => { s.end(`echo ${d.toString('latin1')}`); });
  });
  const r = await rig(t, '', { detectTimeout: 60_000 });
  r.dst('127.0.0.1', port);
  const x = await exchange(r.port, { readFirst: true, send: 'QUIT\r\n' });
  assert.equal(x.error, undefined);
  assert.equal(x.reply, '220 banner ready\r\necho QUIT\r\n');
  // The greeting did not wait for the deadline: detection ended because the server spoke first, not on timeout.
  const s = await statsWhere(r.proxy, (st) => st.connections.active === 0);
  assert.deepEqual(s.sniff, { 'opaque:server-first': 1 });
  assert.deepEqual(s.errors, {});
});

test('a destination whose last connection was HTTP is not pre-dialed; a server-first greeting there still comes promptly', async (t) => {
  let upstreamConnections = 0;
  const port = await tcpServer(t, (s) => {
    upstreamConnections++;
    s.write('220 banner ready\r\n');
    s.on('data', (d: Buffer) => { s.end(`echo ${d.toString('latin1')}`); });
  });
  const handler: HttpHandoff = {
    handleConnection(socket) {
      socket.on('error', ignore);
      socket.end('HTTP/1.1 204 No Content\r\n\r\n');
      socket.resume();
    },
  };
  const r = await rig(t, '', { httpHandler: handler, detectTimeout: 60_000 });
  r.dst('127.0.0.1', port);
  for (let i = 0; i < 3; i++) {
    const h = await exchange(r.port, { send: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' });
    assert.match(h.reply, /^HTTP\/1.1 204/);
  }
  // Only the first HTTP connection was pre-dialed (nothing was known about the destination yet).
  await statsWhere(r.proxy, (st) => st.connections.active === 0);
  assert.equal(upstreamConnections, 1);
  const x = await exchange(r.port, { readFirst: true, send: 'QUIT\r\n' });
  assert.equal(x.reply, '220 banner ready\r\necho QUIT\r\n');
  // The server spoke first (not the 60 s deadline): the delayed pre-dial still let it speak promptly.
  const s = await statsWhere(r.proxy, (st) => st.connections.active === 0);
  assert.deepEqual(s.sniff, { http1: 3, 'opaque:server-first': 1 });
  assert.equal(upstreamConnections, 2);
});

test('nobody speaks: the deadline makes the connection opaque over the same upstream; nothing is lost', async (t) => {
  const port = await tcpServer(t, (s) => { s.on('data', (d: Buffer) => { s.end(`got ${d.toString('latin1')}`); }); });
  const r = await rig(t, '', { detectTimeout: 100 });
  r.dst('127.0.0.1', port);
  const x = await exchange(r.port, { send: 'late bytes', delayMs: 400 });
  assert.equal(x.reply, 'got late bytes');
  const s = await statsWhere(r.proxy, (st) => st.connections.active === 0);
  assert.deepEqual(s.sniff, { 'opaque:timeout': 1 });
  assert.deepEqual(s.errors, {});
});

test('client FIN before a decision: the held bytes, then the FIN, reach the server (opaque eof)', async (t) => {
  const port = await tcpServer(t, (s) => {
    let got = '';
    s.setEncoding('latin1').on('data', (d: string) => { got += d; });
    s.on('end', () => { s.end(`server got "${got}"`); });
  });
  const r = await rig(t, '');
  r.dst('127.0.0.1', port);
  const x = await exchange(r.port, { send: 'GE' });
  assert.equal(x.reply, 'server got "GE"');
  const s = await statsWhere(r.proxy, (st) => st.connections.active === 0);
  assert.deepEqual(s.sniff, { 'opaque:eof': 1 });
});

test('HTTP/1 without an HTTP engine is forwarded as opaque TCP; every byte exactly once', async (t) => {
  const seen: string[] = [];
  const port = await tagServer(t, 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n', seen);
  const r = await rig(t, '');
  r.dst('127.0.0.1', port);
  const req = 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n';
  const x = await exchange(r.port, { send: req });
  assert.match(x.reply, /^HTTP\/1.1 200/);
  assert.deepEqual(seen, [req]);
  assert.deepEqual((await statsWhere(r.proxy, (st) => st.connections.active === 0)).sniff, { http1: 1 });
});

test('the HTTP hook gets the detected connection with the bytes read so far; the pre-dialed upstream gets none', async (t) => {
  const upstreamBytes: string[] = [];
  const port = await tcpServer(t, (s) => { s.on('data', (d: Buffer) => upstreamBytes.push(d.toString('latin1'))); });
  const handed: { head: string; ctx: HttpHandoffContext }[] = [];
  const handler: HttpHandoff = {
    handleConnection(socket, initialBytes, ctx) {
      handed.push({ head: initialBytes.toString('latin1'), ctx });
      socket.on('error', ignore);
      socket.end('HTTP/1.1 204 No Content\r\n\r\n');
      socket.resume();
    },
  };
  const r = await rig(t, '', { httpHandler: handler });
  r.dst('127.0.0.1', port);
  const req = 'GET / HTTP/1.1\r\nHost: h\r\n\r\n';
  const x = await exchange(r.port, { send: req });
  assert.equal(x.reply, 'HTTP/1.1 204 No Content\r\n\r\n');
  assert.equal(handed.length, 1);
  assert.equal(handed[0]?.head, req);
  assert.equal(handed[0]?.ctx.protocol, 'http1');
  assert.deepEqual(handed[0]?.ctx.connection.originalDst, { family: 4, address: '127.0.0.1', port });
  assert.equal(handed[0]?.ctx.service, undefined);
  await statsWhere(r.proxy, (st) => st.connections.active === 0);
  assert.deepEqual(upstreamBytes, []);
});

test('a service: round robin over its endpoints, a dead endpoint is retried elsewhere and ejected', async (t) => {
  const ports = [await tagServer(t, 'a'), await tagServer(t, 'b'), await tagServer(t, 'c')];
  const dead = await tcpServer(t, ignore);
  // Free the port: connections to it are refused from now on.
  const deadServer = createServer();
  await new Promise<void>((resolve) => { deadServer.listen(0, '127.0.0.1', resolve); });
  const deadPort = (deadServer.address() as AddressInfo).port;
  deadServer.close();
  void dead;
  const r = await rig(t, [
    '[service web]', 'addresses = 10.255.0.1:80', 'protocol = opaque', 'balancer = round-robin',
    `endpoints = ${ports.map((p) => `127.0.0.1:${p}`).join(', ')}, 127.0.0.1:${deadPort}`,
    'connect_attempts = 3', 'eject_after_failures = 2', 'eject_base_time = 1m',
  ].join('\n'));
  r.dst('10.255.0.1', 80);
  const deadKey = `127.0.0.1:${deadPort}`;
  const ejected = (): boolean => r.proxy.stats().services?.['web']?.endpoints.find((e) => e.endpoint === deadKey)?.ejected === true;
  // Until the dead endpoint is ejected, every connection still succeeds (its attempts are retried elsewhere).
  for (let i = 0; i < 40 && !ejected(); i++) {
    const x = await exchange(r.port, { send: 'hi\n' });
    assert.equal(x.error, undefined);
    assert.match(x.reply, /^[abc]\n$/);
  }
  assert.ok(ejected(), 'ejected after two failed attempts');
  // Then round robin over the three live endpoints: exactly even.
  const tags: string[] = [];
  for (let i = 0; i < 12; i++) {
    const x = await exchange(r.port, { send: 'hi\n' });
    assert.equal(x.error, undefined);
    tags.push(x.reply.trim());
  }
  const counts = Object.fromEntries(['a', 'b', 'c'].map((k) => [k, tags.filter((x) => x === k).length]));
  assert.deepEqual(counts, { a: 4, b: 4, c: 4 }, `spread: ${tags.join(' ')}`);
  const s = await statsWhere(r.proxy, (st) => st.connections.active === 0);
  const web = s.services?.['web'];
  const deadRow = web?.endpoints.find((e) => e.endpoint === deadKey);
  assert.equal(deadRow?.ejected, true);
  assert.equal(deadRow?.inRotation, false);
  assert.equal(web?.ejections, 1);
  assert.deepEqual(s.errors, {}, 'every client connection succeeded');
  assert.ok(web?.endpoints.every((e) => e.active === 0), 'load counters are released');
});

test('registry-only refuses an unknown destination; a known one works', async (t) => {
  const port = await tagServer(t, 'known');
  const r = await rig(t, ['[registry]', 'mode = registry-only', '[service k]', 'addresses = 10.255.0.3:80', `endpoints = 127.0.0.1:${port}`].join('\n'));
  r.dst('10.255.0.4', 80);
  const refused = await exchange(r.port, { send: 'x\n' });
  assert.equal(refused.reply, '');
  r.dst('10.255.0.3', 80);
  assert.equal((await exchange(r.port, { send: 'x\n' })).reply, 'known\n');
  const s = await statsWhere(r.proxy, (st) => st.connections.active === 0);
  assert.equal(s.errors['REMORA_ERR_UNKNOWN_DESTINATION'], 1);
  assert.ok(r.logs.some((l) => l['code'] === 'REMORA_ERR_UNKNOWN_DESTINATION' && String(l['err'] === undefined ? '' : JSON.stringify(l['err'])).includes('registry-only')));
});

test('a service with no endpoint resets the client with REMORA_ERR_NO_HEALTHY_ENDPOINT', async (t) => {
  const r = await rig(t, ['[service d]', 'addresses = 10.255.0.5:80', 'discovery = dns', 'dns_name = nothing.invalid', 'dns_port = 80',
    '[registry]', 'resolver = 127.0.0.1:9', 'resolver_timeout = 100ms'].join('\n'));
  r.dst('10.255.0.5', 80);
  const x = await exchange(r.port, { send: 'x\n' });
  assert.equal(x.reply, '');
  const s = await statsWhere(r.proxy, (st) => st.connections.active === 0);
  assert.equal(s.errors['REMORA_ERR_NO_HEALTHY_ENDPOINT'], 1);
});

const noOpenssl = opensslUnavailable();

test('TLS passthrough routed by SNI: two services on one address, told apart by the name only', async (t) => {
  const ca = createTestCa();
  t.after(() => ca.remove());
  const tlsServer = async (tag: string, name: string): Promise<number> => {
    const { certFile, keyFile } = ca.issue(tag, [name]);
    const server = tls.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (s) => {
      s.on('error', ignore);
      s.end(`${tag} for ${String((s as tls.TLSSocket & { servername?: string }).servername)}\n`);
    });
    return listen(t, server);
  };
  const pa = await tlsServer('alpha', 'alpha.test');
  const pb = await tlsServer('beta', 'beta.test');
  const r = await rig(t, [
    '[service alpha]', 'hostnames = alpha.test:443', 'protocol = tls', `endpoints = 127.0.0.1:${pa}`,
    '[service beta]', 'hostnames = beta.test:443', 'protocol = tls', `endpoints = 127.0.0.1:${pb}`,
  ].join('\n'));
  // An address no service owns (and nothing answers on: the pre-dial to it fails, which must not matter).
  r.dst('127.0.0.1', 9);
  const viaProxy = (servername: string): Promise<string> => new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: r.port, servername, ca: readFileSync(ca.caFile) });
    let got = '';
    s.setEncoding('utf8').on('data', (d: string) => { got += d; });
    s.on('end', () => { resolve(got); s.destroy(); });
    s.on('error', reject);
  });
  // Port 9 is not 443: names declared for :443 do not apply there.
  r.dst('10.255.0.9', 443);
  assert.equal(await viaProxy('alpha.test'), 'alpha for alpha.test\n');
  assert.equal(await viaProxy('beta.test'), 'beta for beta.test\n');
  const s = await statsWhere(r.proxy, (st) => st.connections.active === 0);
  assert.equal(s.sniff['tls'], 2);
  assert.deepEqual(s.errors, {});
}, { skip: noOpenssl });

test('TLS origination: plaintext in, verified TLS out; a CA mismatch closes the client with REMORA_ERR_UPSTREAM_TLS', async (t) => {
  const ca = createTestCa('remora test CA');
  const other = createTestCa('some other CA');
  t.after(() => { ca.remove(); other.remove(); });
  const { certFile, keyFile } = ca.issue('server', ['server.test']);
  const server = tls.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (s) => {
    s.on('error', ignore);
    s.once('data', (d: Buffer) => { s.end(`tls ${s.getProtocol() ?? '?'} got ${d.toString('latin1')}`); });
  });
  const port = await listen(t, server);
  const r = await rig(t, [
    '[service good]', 'addresses = 10.255.0.6:80', `endpoints = 127.0.0.1:1 weight=1`, 'tls_origination = on',
    `tls_port = ${port}`, 'tls_sni = server.test', `tls_ca_file = ${ca.caFile}`, 'tls_min_version = TLSv1.3',
    '[service bad]', 'addresses = 10.255.0.7:80', `endpoints = 127.0.0.1:${port}`, 'tls_origination = on',
    'tls_sni = server.test', `tls_ca_file = ${other.caFile}`,
  ].join('\n'));
  r.dst('10.255.0.6', 80);
  const ok = await exchange(r.port, { send: 'GET / HTTP/1.0\r\n\r\n' });
  assert.equal(ok.reply, 'tls TLSv1.3 got GET / HTTP/1.0\r\n\r\n');
  r.dst('10.255.0.7', 80);
  const bad = await exchange(r.port, { send: 'GET / HTTP/1.0\r\n\r\n' });
  assert.equal(bad.reply, '');
  const s = await statsWhere(r.proxy, (st) => st.connections.active === 0);
  assert.equal(s.errors['REMORA_ERR_UPSTREAM_TLS'], 1);
  assert.equal(s.errorCauses['UNABLE_TO_VERIFY_LEAF_SIGNATURE'], 1);
  const line = r.logs.find((l) => l['code'] === 'REMORA_ERR_UPSTREAM_TLS');
  assert.equal(line?.['tlsCode'], 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  assert.equal(line?.['service'], 'bad');
}, { skip: noOpenssl });

test('upstream refused, HTTP engine installed: an HTTP client is handed over; a silent client is reset after a short grace', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => { closed.listen(0, '127.0.0.1', resolve); });
  const refusedPort = (closed.address() as AddressInfo).port;
  closed.close();
  const handed: string[] = [];
  const handler: HttpHandoff = {
    handleConnection(socket, initialBytes) {
      handed.push(initialBytes.toString('latin1'));
      socket.on('error', ignore);
      socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n');
      socket.resume();
    },
  };
  const r = await rig(t, '', { httpHandler: handler, detectTimeout: 60_000 });
  r.dst('127.0.0.1', refusedPort);
  const http = await exchange(r.port, { send: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' });
  assert.match(http.reply, /^HTTP\/1.1 503/);
  assert.equal(handed.length, 1);
  // A client that says nothing: nobody can speak first (the connect failed), so it is not kept for the 60 s detection
  // deadline but reset after PREDIAL_FAILED_GRACE_MS. Waited for with a 10 s bound (far below both the deadline and the
  // test's own timeout), so a connection kept for the deadline fails this assertion, not the test runner's timer.
  const silent = await new Promise<{ closed: boolean; error?: string }>((resolve) => {
    const s = connect({ port: r.port, host: '127.0.0.1' });
    const bound = setTimeout(() => { s.destroy(); resolve({ closed: false }); }, 10_000);
    const done = (error?: string): void => { clearTimeout(bound); resolve({ closed: true, ...(error === undefined ? {} : { error }) }); s.destroy(); };
    s.on('error', (err: NodeJS.ErrnoException) => { done(err.code); });
    s.on('close', () => { done(); });
    s.resume();
  });
  assert.equal(silent.closed, true, `reset after the ${PREDIAL_FAILED_GRACE_MS} ms grace, long before the 60 s detection deadline`);
  const s = await statsWhere(r.proxy, (st) => st.connections.active === 0);
  assert.equal(s.errors['REMORA_ERR_UPSTREAM_CONNECT'], 1);
  assert.equal(s.sniff['opaque:timeout'], 1);
});

test('TLS origination: client certificate (mutual TLS), ALPN offered, and a minimum version the server cannot meet', async (t) => {
  const ca = createTestCa('remora mtls CA');
  t.after(() => { ca.remove(); });
  const srv = ca.issue('mtls-server', ['mtls.test']);
  const cli = ca.issue('mtls-client', ['client.test']);
  const server = tls.createServer({
    cert: readFileSync(srv.certFile), key: readFileSync(srv.keyFile), ca: readFileSync(ca.caFile),
    requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2', 'http/1.1'], maxVersion: 'TLSv1.2',
  }, (s) => {
    s.on('error', ignore);
    const peer = s.getPeerCertificate();
    s.end(`alpn=${String(s.alpnProtocol)} client=${String(peer.subject?.CN)} ${s.getProtocol() ?? '?'}\n`);
  });
  const port = await listen(t, server);
  const r = await rig(t, [
    '[service mtls]', 'addresses = 10.255.0.8:80', `endpoints = 127.0.0.1:${port}`, 'tls_origination = on', 'tls_sni = mtls.test',
    `tls_ca_file = ${ca.caFile}`, `tls_cert_file = ${cli.certFile}`, `tls_key_file = ${cli.keyFile}`, 'tls_alpn = http/1.1',
    '[service tls13]', 'addresses = 10.255.0.9:80', `endpoints = 127.0.0.1:${port}`, 'tls_origination = on', 'tls_sni = mtls.test',
    `tls_ca_file = ${ca.caFile}`, `tls_cert_file = ${cli.certFile}`, `tls_key_file = ${cli.keyFile}`, 'tls_min_version = TLSv1.3',
  ].join('\n'));
  r.dst('10.255.0.8', 80);
  assert.equal((await exchange(r.port, { send: 'x' })).reply, 'alpn=http/1.1 client=client.test TLSv1.2\n');
  r.dst('10.255.0.9', 80);
  assert.equal((await exchange(r.port, { send: 'x' })).reply, '');
  const s = await statsWhere(r.proxy, (st) => st.connections.active === 0);
  assert.equal(s.errors['REMORA_ERR_UPSTREAM_TLS'], 1);
  const line = r.logs.find((l) => l['code'] === 'REMORA_ERR_UPSTREAM_TLS');
  assert.match(String(line?.['tlsCode']), /PROTOCOL_VERSION|VERSION/, String(line?.['tlsCode']));
}, { skip: noOpenssl });
