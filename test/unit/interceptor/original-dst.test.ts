import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:os';
import { test } from 'node:test';
import { RemoraError, isSystemError } from '../../../src/core/errors.js';
import {
  createOriginalDstReader, defaultAddonPath, loadNativeBinding, type NativeBinding, type OriginalDst,
} from '../../../src/interceptor/original-dst.js';

const fake = (result: OriginalDst | number): NativeBinding & { calls: number[] } => {
  const calls: number[] = [];
  return { calls, originalDst: (fd: number) => { calls.push(fd); return result; } };
};

test('a result object is passed through', () => {
  const dst = { family: 4, address: '10.0.0.7', port: 80 } as const;
  const b = fake(dst);
  assert.deepEqual(createOriginalDstReader(b)(12), dst);
  assert.deepEqual(b.calls, [12]);
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
