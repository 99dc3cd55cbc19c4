// The one place that reads a socket's file descriptor. node:net does not expose it; the TCP handle's `fd` property
// is undocumented but has been stable on Linux for every Node release we support. Read by the accept stage
// (src/interceptor/capture-listener.ts) and the hand-over to the native forwarder (src/l4/native-forwarder.ts).
// test/unit/interceptor/socket-fd fails loudly if it ever disappears.
import type { Server, Socket } from 'node:net';

interface HandleWithFd {
  readonly fd?: unknown;
}

/**
 * The OS file descriptor behind a connected net.Socket (or a listening net.Server: the native accept takes it), or
 * undefined (closed, non-TCP handle).
 */
export function socketFd(socket: Socket | Server): number | undefined {
  const handle = (socket as unknown as { readonly _handle?: HandleWithFd | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}
