// Typed facade over the native addon's originalDst (the addon is loaded by src/core/native-addon.ts).
//
// The addon returns {family, address, port} or a negative errno and never a string. Here:
//   - ENOENT (no conntrack NAT entry: the connection was not redirected) is a normal outcome -> null;
//   - any other -errno -> a Node-style SystemError (code, errno, syscall 'getsockopt'), like node:net's own errors;
//   - a missing or broken addon -> RemoraError REMORA_ERR_NATIVE_LOAD at startup, never per connection.
// Everything is synchronous: call it in the 'connection' handler, before any await, while the fd is surely open.
import { constants as osConstants } from 'node:os';
import type { OriginalDst } from '../core/addr.js';
import { systemError } from '../core/errors.js';
import { defaultAddonPath, loadNativeAddon, type OriginalDstBinding } from '../core/native-addon.js';

export type { OriginalDst } from '../core/addr.js';
export { defaultAddonPath };

/** What native/src/original_dst.cc exports. */
export type NativeBinding = OriginalDstBinding;

/** fd -> original destination, or null when the connection was not redirected. Throws a SystemError otherwise. */
export type OriginalDstReader = (fd: number) => OriginalDst | null;

const ENOENT = -osConstants.errno.ENOENT;
const EBADF = -osConstants.errno.EBADF;

/** Load the addon; REMORA_ERR_NATIVE_LOAD when it is missing, built for another Node ABI, or has the wrong shape. */
export function loadNativeBinding(path: string = defaultAddonPath()): NativeBinding {
  return loadNativeAddon(path);
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
