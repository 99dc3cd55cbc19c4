// What the HTTP/1.1 and HTTP/2 pools (pool-http1.ts, pool-http2.ts) share: the failure of an attempt that never
// reached the upstream, and opening one upstream connection under the connect timeout.
import type { Socket } from 'node:net';
import type { UpstreamConnector, UpstreamFailure, UpstreamTarget } from './pool-types.js';

/** A failure of kind `kind`; every flag false (nothing sent, nothing received) unless `more` says otherwise. */
export function poolFailure(kind: UpstreamFailure['kind'], error: Error, more: Partial<UpstreamFailure> = {}): UpstreamFailure {
  return {
    kind,
    error,
    responseStarted: false,
    responseBytes: false,
    reusedConnection: false,
    requestSent: false,
    refused: false,
    ...more,
  };
}

/**
 * Open one connection to `target` through `connector` (the cluster's connect path, which owns the connect timeout).
 * `settle` is called once, with the error or the socket (a connector that throws counts as a failure); a socket that
 * arrives after that is destroyed.
 */
export function connectUpstream(
  connector: UpstreamConnector,
  target: UpstreamTarget,
  settle: (err: Error | undefined, socket: Socket | undefined) => void,
): void {
  let done = false;
  const once = (err: Error | undefined, socket: Socket | undefined): void => {
    if (done) {
      socket?.destroy();
      return;
    }
    done = true;
    settle(err, socket);
  };
  try {
    connector(target, once);
  } catch (err) {
    once(err instanceof Error ? err : new Error(String(err)), undefined);
  }
}
