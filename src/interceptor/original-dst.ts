// Typed facade over the native addon: the only module that loads native/build/Release/remora_native.node.
//
// The addon returns {family, address, port} or a negative errno and never a string. Here:
//   - ENOENT (no conntrack NAT entry: the connection was not redirected) is a normal outcome -> null;
//   - any other -errno -> a Node-style SystemError (code, errno, syscall 'getsockopt'), like node:net's own errors;
//   - a missing or broken addon -> RemoraError REMORA_ERR_NATIVE_LOAD at startup, never per connection.
// Everything is synchronous: call it in the 'connection' handler, before any await, while the fd is surely open.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { constants as osConstants } from 'node:os';
import type { OriginalDst } from '../core/addr.js';
import { RemoraError, systemError } from '../core/errors.js';

export type { OriginalDst } from '../core/addr.js';


/** What native/src/original_dst.cc exports. */
export interface NativeBinding {
  originalDst(fd: number): OriginalDst | number;
}

/** fd -> original destination, or null when the connection was not redirected. Throws a SystemError otherwise. */
export type OriginalDstReader = (fd: number) => OriginalDst | null;

const ADDON_FILE = 'native/build/Release/remora_native.node';
const ENOENT = -osConstants.errno.ENOENT;
const EBADF = -osConstants.errno.EBADF;

/** <repo>/native/build/Release/remora_native.node, from the compiled (dist/src/interceptor) or source location. */
export function defaultAddonPath(): string {
  const candidates = [
    fileURLToPath(new URL(`../../../${ADDON_FILE}`, import.meta.url)),
    fileURLToPath(new URL(`../../${ADDON_FILE}`, import.meta.url)),
  ];
  return candidates.find((p) => existsSync(p)) ?? candidates[0] ?? ADDON_FILE;
}

function isNativeBinding(value: unknown): value is NativeBinding {
  return typeof value === 'object' && value !== null
    && typeof (value as { originalDst?: unknown }).originalDst === 'function';
}

/** Load the addon; REMORA_ERR_NATIVE_LOAD when it is missing, built for another Node ABI, or has the wrong shape. */
export function loadNativeBinding(path: string = defaultAddonPath()): NativeBinding {
  let loaded: unknown;
  try {
    loaded = createRequire(import.meta.url)(path);
  } catch (err) {
    throw new RemoraError('REMORA_ERR_NATIVE_LOAD', `cannot load the native addon ${path}: ${(err as Error).message}`
      + ' (rebuild it with `npm install` or `npx node-gyp rebuild --directory=native`)', { cause: err, details: { path } });
  }
  if (!isNativeBinding(loaded)) {
    throw new RemoraError('REMORA_ERR_NATIVE_LOAD', `the native addon ${path} does not export originalDst()`, { details: { path } });
  }
  return loaded;
}

/** Build the reader over a binding (the real addon by default; tests pass a fake). */
export function createOriginalDstReader(binding: NativeBinding = loadNativeBinding()): OriginalDstReader {
  return (fd: number): OriginalDst | null => {
    if (!Number.isInteger(fd) || fd < 0) throw systemError(EBADF, 'getsockopt');
    const r = binding.originalDst(fd);
    if (typeof r === 'number') {
      if (r === ENOENT) return null;
      throw systemError(r < 0 ? r : -r, 'getsockopt');
    }
    return r;
  };
}
