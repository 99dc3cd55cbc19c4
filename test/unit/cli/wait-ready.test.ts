// `remora wait-ready` against a stand-in admin listener on loopback: it returns (0) once /ready answers 200, and
// gives up with REMORA_ERR_NOT_READY and the last answer when the timeout passes; a bad flag is a config error.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { runWaitReadyCommand, type WaitReadyIo } from '../../../src/cli/wait-ready-command.js';
import { RemoraError } from '../../../src/core/errors.js';

function capture(): WaitReadyIo & { text: string[] } {
  const text: string[] = [];
  return { text, out: (t) => { text.push(t); }, err: (t) => { text.push(t); } };
}

/** An admin stand-in: answers 503 with `reason` for the first `notReady` GET /ready, then 200 "ready". */
async function fakeAdmin(t: TestContext, notReady: number, reason = 'not ready: outbound redirect probe failed: ETIMEDOUT'): Promise<{ port: number; asked: () => number }> {
  let asked = 0;
  const server: Server = createServer((req, res) => {
    asked++;
    assert.equal(req.url, '/ready');
    if (asked <= notReady) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end(reason);
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ready');
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => { server.closeAllConnections(); server.close(); });
  return { port: (server.address() as AddressInfo).port, asked: () => asked };
}

test('wait-ready: polls until /ready answers 200, then exits 0', async (t) => {
  const admin = await fakeAdmin(t, 3);
  const io = capture();
  const code = await runWaitReadyCommand(['--admin-address', `127.0.0.1:${admin.port}`, '--interval', '10ms', '--timeout', '20s'], {}, io);
  assert.equal(code, 0);
  assert.equal(admin.asked(), 4, 'three 503 answers, then the 200');
  assert.match(io.text.join(''), new RegExp(`^remora wait-ready: 127\\.0\\.0\\.1:${admin.port} is ready \\(after `));
});

test('wait-ready: never ready → REMORA_ERR_NOT_READY naming the timeout and the last answer', async (t) => {
  const admin = await fakeAdmin(t, Number.MAX_SAFE_INTEGER);
  const io = capture();
  await assert.rejects(
    runWaitReadyCommand(['--admin-address', `127.0.0.1:${admin.port}`, '--interval', '10ms', '--timeout', '100ms'], {}, io),
    (err: unknown) => {
      assert.ok(err instanceof RemoraError);
      assert.equal(err.code, 'REMORA_ERR_NOT_READY');
      assert.equal(err.message, `the sidecar at 127.0.0.1:${admin.port} was not ready within 100ms; last answer of GET /ready: 503 not ready: outbound redirect probe failed: ETIMEDOUT`);
      assert.deepEqual(err.details, { adminAddress: `127.0.0.1:${admin.port}`, last: '503 not ready: outbound redirect probe failed: ETIMEDOUT' });
      return true;
    });
  assert.ok(admin.asked() >= 1);
  assert.deepEqual(io.text, [], 'nothing printed: the error is reported by the caller (exit code 1)');
});

test('wait-ready: nothing listening → the last answer says so; the environment sets the address; a bad flag is refused', async (t) => {
  // A port that was just free: bind, read it, close.
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const freePort = (probe.address() as AddressInfo).port;
  probe.close();
  await assert.rejects(
    runWaitReadyCommand(['--timeout', '50ms', '--interval', '10ms'], { REMORA_ADMIN_ADDRESS: `127.0.0.1:${freePort}` }, capture()),
    (err: unknown) => err instanceof RemoraError && err.code === 'REMORA_ERR_NOT_READY'
      && /last answer of GET \/ready: no answer: ECONNREFUSED \(nothing listens there/.test(err.message));
  await assert.rejects(runWaitReadyCommand(['--timeout', 'soon'], {}, capture()),
    (err: unknown) => err instanceof RemoraError && err.code === 'REMORA_ERR_CONFIG_INVALID' && /--timeout = "soon": expected a duration/.test(err.message));
  const admin = await fakeAdmin(t, 0);
  assert.equal(await runWaitReadyCommand(['--timeout', '5s'], { REMORA_ADMIN_ADDRESS: `127.0.0.1:${admin.port}` }, capture()), 0);
});
