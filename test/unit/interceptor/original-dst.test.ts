import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { constants } from 'node:os';
import { test } from 'node:test';
import { RemoraError, isSystemError } from '../../../src/core/errors.js';
import {
  createOriginalDstReader, defaultAddonPath, loadNativeBinding, type NativeBinding, type OriginalDst,
} from '../../../src/interceptor/original-dst.js';
import { socketFd } from '../../../src/interceptor/socket-fd.js';
import { waitFor } from '../../support/wait-for.js';

const fake = (result: OriginalDst | number): NativeBinding & { calls: number[] } => {
  const calls: number[] = [];
  return { calls, originalDst: (fd: number) => { calls.push(fd); return result; } };
};

type Accepted = readonly [number, string, number, string, number];
/** A binding with acceptedAddresses (the current addon): originalDst must not be called. */
const fakeBoth = (result: Accepted | number): NativeBinding & { calls: number[] } => {
  const calls: number[] = [];
  return {
    calls,
    originalDst: () => { throw new Error('originalDst called although acceptedAddresses exists'); },
    acceptedAddresses: (fd: number) => { calls.push(fd); return result; },
  };
};

test('an older addon (originalDst only): its result object, with the client left to node:net', () => {
  const dst = { family: 4, address: '10.0.0.7', port: 80 } as const;
  const b = fake(dst);
  assert.deepEqual(createOriginalDstReader(b)(12), { originalDst: dst, peerAddress: undefined, peerPort: undefined });
  assert.deepEqual(b.calls, [12]);
});

test('acceptedAddresses: the original destination and the client from one call', () => {
  const b = fakeBoth([6, 'fd00::7', 8080, 'fd00::2', 40000]);
  assert.deepEqual(createOriginalDstReader(b)(9), {
    originalDst: { family: 6, address: 'fd00::7', port: 8080 }, peerAddress: 'fd00::2', peerPort: 40000,
  });
  assert.deepEqual(b.calls, [9]);
  // A client already gone: no peer ("" and 0 from the addon).
  assert.deepEqual(createOriginalDstReader(fakeBoth([4, '10.0.0.7', 80, '', 0]))(9), {
    originalDst: { family: 4, address: '10.0.0.7', port: 80 }, peerAddress: undefined, peerPort: undefined,
  });
});

test('acceptedAddresses: ENOENT is null, another -errno a SystemError, a bad fd never reaches the addon', () => {
  assert.equal(createOriginalDstReader(fakeBoth(-constants.errno.ENOENT))(3), null);
  assert.throws(() => createOriginalDstReader(fakeBoth(-constants.errno.ENOPROTOOPT))(3),
    (err: unknown) => isSystemError(err) && err.code === 'ENOPROTOOPT' && err.syscall === 'getsockopt');
  const b = fakeBoth(-1);
  assert.throws(() => createOriginalDstReader(b)(-1), (err: unknown) => isSystemError(err) && err.code === 'EBADF');
  assert.deepEqual(b.calls, []);
});

test('ENOENT (no NAT entry) means "not redirected": null, not an error', () => {
  assert.equal(createOriginalDstReader(fake(-constants.errno.ENOENT))(3), null);
});

test('any other -errno becomes a Node-style SystemError with syscall getsockopt', () => {
  const read = createOriginalDstReader(fake(-constants.errno.ENOPROTOOPT));
  assert.throws(() => read(3), (err: unknown) => isSystemError(err) && err.code === 'ENOPROTOOPT'
    && err.errno === -constants.errno.ENOPROTOOPT && err.syscall === 'getsockopt');
});

test('a bad fd is rejected before calling the addon', () => {
  const b = fake(-1);
  const read = createOriginalDstReader(b);
  for (const fd of [-1, 1.5, Number.NaN]) {
    assert.throws(() => read(fd), (err: unknown) => isSystemError(err) && err.code === 'EBADF');
  }
  assert.deepEqual(b.calls, []);
});

test('a missing addon is REMORA_ERR_NATIVE_LOAD', () => {
  assert.throws(() => loadNativeBinding('/nonexistent/remora_native.node'),
    (err: unknown) => err instanceof RemoraError && err.code === 'REMORA_ERR_NATIVE_LOAD');
});

test('the real addon: a loopback connection that was not redirected has no NAT entry (null)', async () => {
  const binding = loadNativeBinding();
  assert.equal(typeof binding.acceptedAddresses, 'function', 'the addon built from this tree has acceptedAddresses');
  const read = createOriginalDstReader(binding);
  const server = createServer();
  const accepted = new Promise<Socket>((resolve) => {
    server.once('connection', resolve);
  });
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  try {
    const socket = await accepted;
    const fd = socketFd(socket);
    assert.ok(fd !== undefined);
    assert.equal(read(fd), null);
    socket.destroy();
  } finally {
    client.destroy();
    server.close();
  }
});

test('the real addon: a client that reset before the read has no peer, and the read still answers (no ENOTCONN)', async () => {
  const read = createOriginalDstReader(loadNativeBinding());
  // pauseOnConnect: node:net does not read the accepted socket, so the client's RST leaves it open and CLOSED.
  const server = createServer({ pauseOnConnect: true });
  const accepted = new Promise<Socket>((resolve) => {
    server.once('connection', resolve);
  });
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => { client.once('connect', resolve).once('error', reject); });
  try {
    const socket = await accepted;
    socket.on('error', () => undefined);
    client.resetAndDestroy();
    const fd = socketFd(socket);
    assert.ok(fd !== undefined);
    // Wait (bounded) until the kernel has processed the RST: getpeername on the socket then fails.
    await waitFor(() => peerUnreadable(socket), 'the kernel to process the client\'s reset (getpeername fails)', 2_000);
    // Not redirected, so no NAT entry: null. Without the getsockname fallback this would throw ENOTCONN.
    assert.equal(read(fd), null);
    socket.destroy();
  } finally {
    client.destroy();
    server.close();
  }
});

/** Whether the peer of `socket` can no longer be read (its handle's getpeername, uncached, fails once the peer reset). */
function peerUnreadable(socket: Socket): boolean {
  const handle = (socket as unknown as { _handle?: { getpeername?: (out: object) => number } })._handle;
  const out = {};
  return handle?.getpeername?.(out) !== 0;
}

test('the real addon loads from native/build/Release and reports errno for a non-socket fd', () => {
  assert.match(defaultAddonPath(), /native\/build\/Release\/remora_native\.node$/);
  const read = createOriginalDstReader(loadNativeBinding());
  const fd = openSync(new URL(import.meta.url), 'r');
  try {
    assert.throws(() => read(fd), (err: unknown) => isSystemError(err) && err.code === 'ENOTSOCK' && err.syscall === 'getsockopt');
  } finally {
    closeSync(fd);
  }
});
