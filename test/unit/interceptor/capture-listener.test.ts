// The capture listener with a fake original-destination reader, on loopback (no iptables): what is forwarded, what
// is reset, and with which reason; the same with its accepts taken as TCP handles (acceptHandles(), as a listener
// with the HTTP engine does), and a handler that throws there.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { systemError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/log.js';
import { TcpHandle } from '../../../src/core/tcp-handle.js';
import { CaptureListener, type CaptureHandlers } from '../../../src/interceptor/capture-listener.js';
import type { AcceptedAddresses, OriginalDst } from '../../../src/interceptor/original-dst.js';

interface Seen {
  accepted: AcceptedAddresses[];
  /** Of `accepted`, those that came as TCP handles. */
  handles: number;
  rejected: { code: string; reason: string }[];
  listenerErrors: Error[];
}

interface ListenerMode {
  /** Take the accepts as TCP handles. */
  readonly handles?: boolean;
  /** The handler throws for the first connection. */
  readonly throwOnce?: boolean;
}

async function withListener(result: (port: number) => OriginalDst | null | Error, run: (port: number, seen: Seen) => Promise<void>,
  mode: ListenerMode = {}): Promise<void> {
  const seen: Seen = { accepted: [], handles: 0, rejected: [], listenerErrors: [] };
  let port = 0;
  let thrown = false;
  const handlers: CaptureHandlers = {
    accepted: (socket: Socket, addresses: AcceptedAddresses) => { seen.accepted.push(addresses); socket.end('ok'); },
    rejected: (_s, code, reason) => { seen.rejected.push({ code, reason }); },
    listenerError: (err) => { seen.listenerErrors.push(err); },
    ...(mode.handles === true ? {
      acceptedHandle: (handle: TcpHandle, addresses: AcceptedAddresses) => {
        if (mode.throwOnce === true && !thrown) {
          thrown = true;
          throw new Error('a handler bug');
        }
        seen.accepted.push(addresses);
        seen.handles++;
        handle.listen({ data: () => undefined, end: () => undefined, close: () => undefined });
        handle.write('ok');
        handle.end(() => { handle.destroy(); });
      },
    } : {}),
  };
  const l = new CaptureListener({
    name: 'outbound', host: '127.0.0.1', port: 0, selfPorts: [], handlers, log: silentLogger(),
    readOriginalDst: () => {
      const r = result(port);
      if (r instanceof Error) throw r;
      return r === null ? null : { originalDst: r, peerAddress: '127.0.0.1', peerPort: 1 };
    },
  });
  const bound = await l.listen();
  port = bound.port;
  if (mode.handles === true) assert.equal(l.acceptHandles(), true);
  try {
    await run(port, seen);
  } finally {
    l.close();
  }
}

/** Connect, read until the server closes; 'reset' when the connection was reset. */
async function talk(port: number): Promise<string> {
  const c = connect(port, '127.0.0.1');
  let data = '';
  c.setEncoding('utf8').on('data', (d: string) => { data += d; });
  const outcome = await new Promise<string>((resolve) => {
    c.once('end', () => resolve(data));
    c.once('error', (e: NodeJS.ErrnoException) => resolve(String(e.code)));
  });
  c.destroy();
  return outcome;
}

test('a redirected connection is handed on with its original destination', { timeout: 20_000 }, async () => {
  const dst = { family: 4, address: '10.9.8.7', port: 443 } as const;
  await withListener(() => dst, async (port, seen) => {
    assert.equal(await talk(port), 'ok');
    assert.deepEqual(seen.accepted, [{ originalDst: dst, peerAddress: '127.0.0.1', peerPort: 1 }]);
    assert.deepEqual(seen.rejected, []);
  });
});

test('no NAT entry: reset, REMORA_ERR_NOT_REDIRECTED', { timeout: 20_000 }, async () => {
  await withListener(() => null, async (port, seen) => {
    assert.equal(await talk(port), 'ECONNRESET');
    assert.equal(seen.rejected[0]?.code, 'REMORA_ERR_NOT_REDIRECTED');
    assert.deepEqual(seen.accepted, []);
  });
});

test('loop guard: an original destination equal to the listener itself is reset, never forwarded', { timeout: 20_000 }, async () => {
  await withListener((port) => ({ family: 4, address: '127.0.0.1', port }), async (port, seen) => {
    assert.equal(await talk(port), 'ECONNRESET');
    assert.equal(seen.rejected[0]?.code, 'REMORA_ERR_NOT_REDIRECTED');
    assert.match(seen.rejected[0]?.reason ?? '', /loop/);
  });
});

test('a getsockopt failure is reset with REMORA_ERR_ORIGINAL_DST', { timeout: 20_000 }, async () => {
  await withListener(() => systemError(-92, 'getsockopt'), async (port, seen) => {
    assert.equal(await talk(port), 'ECONNRESET');
    assert.equal(seen.rejected[0]?.code, 'REMORA_ERR_ORIGINAL_DST');
  });
});

test('a port in use is REMORA_ERR_LISTEN', { timeout: 20_000 }, async () => {
  await withListener(() => null, async (port) => {
    const again = new CaptureListener({
      name: 'inbound', host: '127.0.0.1', port, selfPorts: [], log: silentLogger(), readOriginalDst: () => null,
      handlers: { accepted: () => undefined, rejected: () => undefined, listenerError: () => undefined },
    });
    await assert.rejects(again.listen(), (err: unknown) => (err as { code?: string }).code === 'REMORA_ERR_LISTEN');
  });
});

for (const handles of [false, true]) {
  const as = handles ? ' (accepted as TCP handles)' : '';
  test(`every check applies the same way${as}: forwarded, not redirected, loop, getsockopt failure`, { timeout: 20_000 }, async () => {
    const dst = { family: 4, address: '10.9.8.7', port: 443 } as const;
    await withListener(() => dst, async (port, seen) => {
      assert.equal(await talk(port), 'ok');
      assert.deepEqual(seen.accepted, [{ originalDst: dst, peerAddress: '127.0.0.1', peerPort: 1 }]);
      assert.equal(seen.handles, handles ? 1 : 0);
    }, { handles });
    await withListener(() => null, async (port, seen) => {
      assert.equal(await talk(port), 'ECONNRESET');
      assert.equal(seen.rejected[0]?.code, 'REMORA_ERR_NOT_REDIRECTED');
    }, { handles });
    await withListener((port) => ({ family: 4, address: '127.0.0.1', port }), async (port, seen) => {
      assert.equal(await talk(port), 'ECONNRESET');
      assert.match(seen.rejected[0]?.reason ?? '', /loop/);
    }, { handles });
    await withListener(() => systemError(-92, 'getsockopt'), async (port, seen) => {
      assert.equal(await talk(port), 'ECONNRESET');
      assert.equal(seen.rejected[0]?.code, 'REMORA_ERR_ORIGINAL_DST');
    }, { handles });
  });
}

test('accepted as TCP handles: a handler that throws resets that connection only; the listener hears it and goes on', { timeout: 20_000 }, async () => {
  const dst = { family: 4, address: '10.9.8.7', port: 443 } as const;
  await withListener(() => dst, async (port, seen) => {
    assert.equal(await talk(port), 'ECONNRESET');
    assert.deepEqual(seen.listenerErrors.map((e) => e.message), ['a handler bug']);
    assert.equal(await talk(port), 'ok', 'the next connection is served');
    assert.equal(seen.handles, 1);
  }, { handles: true, throwOnce: true });
});
