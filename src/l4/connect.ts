// Connect stage: open the upstream socket (half-open allowed, Nagle off) with a connect timeout and, for inbound
// delivery, a chosen local (source) address. Returns the socket at once, still connecting: the forward stage wires
// it immediately and Node queues what is written before 'connect'. Failures arrive as the socket's 'error':
// a SystemError from connect(2) (ECONNREFUSED, EHOSTUNREACH, EADDRNOTAVAIL when binding localAddress...) or a
// RemoraError REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT. No per-connection closures: the listeners below use `this`.
import { Socket } from 'node:net';
import { RemoraError } from '../core/errors.js';

export interface ConnectTarget {
  readonly host: string;
  readonly port: number;
  /** Source address to bind before connecting (inbound delivery: 127.0.0.6 / ::6). */
  readonly localAddress?: string | undefined;
}

/** Placeholder 'error' listener so an error is never unhandled; the forward stage adds the one that acts on it. */
function ignoreHandledByOwner(): void {}

function onConnectTimeout(this: Socket): void {
  this.destroy(new RemoraError('REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT', 'connecting to the upstream timed out'));
}

function onConnected(this: Socket): void {
  this.setTimeout(0, onConnectTimeout);
}

/** Start connecting; timeoutMs 0 = no connect timeout. */
export function connectUpstream(target: ConnectTarget, timeoutMs: number): Socket {
  const socket = new Socket({ allowHalfOpen: true });
  socket.setNoDelay(true); // applied once connected (connect() itself ignores a noDelay option)
  socket.on('error', ignoreHandledByOwner);
  if (timeoutMs > 0) {
    socket.setTimeout(timeoutMs, onConnectTimeout);
    socket.once('connect', onConnected);
  }
  if (target.localAddress === undefined) {
    socket.connect({ host: target.host, port: target.port });
  } else {
    socket.connect({ host: target.host, port: target.port, localAddress: target.localAddress });
  }
  return socket;
}
