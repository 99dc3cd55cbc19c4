// The production active-health probe: open a TCP connection to the endpoint and close it at once. Healthy = the
// three-way handshake completed. The checker (src/upstream/active-health.ts) owns the schedule and the timeout and
// aborts `signal` when it gives up; the probe then destroys its socket. The proxy runs as the uid the rules exclude,
// so probes leave the pod directly and are never captured.
import { Socket } from 'node:net';

export interface ProbeTarget {
  readonly address: string;
  readonly port: number;
}

/** Resolves true when a TCP connection to address:port is established, false on any error or when aborted. */
export function tcpConnectProbe(target: ProbeTarget, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(false);
      return;
    }
    const socket = new Socket();
    let settled = false;
    const settle = (healthy: boolean): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      // close(2) with nothing unread sends a FIN: the endpoint sees a connection that closes at once, without data.
      socket.destroy();
      resolve(healthy);
    };
    const onAbort = (): void => { settle(false); };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => { settle(true); });
    socket.on('error', () => { settle(false); });
    socket.connect({ host: target.address, port: target.port });
  });
}
