// Abort a connection with a TCP reset (RST) unless it is already gone. A socket still connecting is simply destroyed,
// and so is a TLS socket (TLS origination, mesh mTLS), whose handle cannot be reset (Node throws
// ERR_INVALID_HANDLE_TYPE): it is closed without close_notify, still an abort to the TLS peer.
import type { Socket } from 'node:net';

export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) {
    socket.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
