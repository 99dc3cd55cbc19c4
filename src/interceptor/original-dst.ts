// Typed facade over the native addon's acceptedAddresses / originalDst (the addon is loaded by src/core/native-addon.ts).
//
// The addon returns the addresses (acceptedAddresses: the original destination and the client in one call; an older
// addon only originalDst's {family, address, port}) or a negative errno, never a string. Here:
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

/** What the accept stage reads of a redirected socket: where the client was going, and the client. */
export interface AcceptedAddresses {
  readonly originalDst: OriginalDst;
  /** The client's address (IPv4 unmapped); undefined when the addon cannot tell (gone already, or an older addon). */
  readonly peerAddress: string | undefined;
  readonly peerPort: number | undefined;
}

/** fd -> addresses, or null when the connection was not redirected. Throws a SystemError otherwise. */
export type OriginalDstReader = (fd: number) => AcceptedAddresses | null;

const ENOENT = -osConstants.errno.ENOENT;
const EBADF = -osConstants.errno.EBADF;

/** Load the addon; REMORA_ERR_NATIVE_LOAD when it is missing, built for another Node ABI, or has the wrong shape. */
export function loadNativeBinding(path: string = defaultAddonPath()): NativeBinding {
  return loadNativeAddon(path);
}

/** Build the reader over a binding (the real addon by default; tests pass a fake). */
export function createOriginalDstReader(binding: NativeBinding = loadNativeBinding()): OriginalDstReader {
  const both = binding.acceptedAddresses?.bind(binding);
  if (both === undefined) {
    return (fd: number): AcceptedAddresses | null => {
      if (!Number.isInteger(fd) || fd < 0) throw systemError(EBADF, 'getsockopt');
      const r = binding.originalDst(fd);
      if (typeof r === 'number') return failed(r);
      return { originalDst: r, peerAddress: undefined, peerPort: undefined };
    };
  }
  return (fd: number): AcceptedAddresses | null => {
    if (!Number.isInteger(fd) || fd < 0) throw systemError(EBADF, 'getsockopt');
    const r = both(fd);
    if (typeof r === 'number') return failed(r);
    const [family, address, port, peer, peerPort] = r;
    return {
      originalDst: { family: family === 6 ? 6 : 4, address, port },
      peerAddress: peer === '' ? undefined : peer,
      peerPort: peer === '' ? undefined : peerPort,
    };
  };
}

/** ENOENT (no NAT entry): not redirected, null; any other -errno: a SystemError. */
function failed(errno: number): null {
  if (errno === ENOENT) return null;
  throw systemError(errno < 0 ? errno : -errno, 'getsockopt');
}
