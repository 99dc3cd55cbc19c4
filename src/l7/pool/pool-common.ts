// What the HTTP/1.1 and HTTP/2 pools (pool-http1.ts, pool-http2.ts) share: the failure of an attempt that never
// reached the upstream, and opening one upstream connection under the connect timeout.
import type { Socket } from 'node:net';
import { RemoraError } from '../../core/errors.js';
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
 * Open one connection to `target` through `connector`, aborting it with REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT after
 * `connectTimeoutMs`. `settle` is called once, with the error or the socket (a connector that throws counts as a
 * failure); a socket that arrives after that is destroyed.
 */
export function connectUpstream(
  connector: UpstreamConnector,
  target: UpstreamTarget,
  connectTimeoutMs: number,
  settle: (err: Error | undefined, socket: Socket | undefined) => void,
): void {
  const ac = new AbortController();
  const timer = setTimeout(() => {
    ac.abort(new RemoraError('REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT', `connect timeout after ${connectTimeoutMs} ms`));
  }, connectTimeoutMs);
  let done = false;
  const once = (err: Error | undefined, socket: Socket | undefined): void => {
    if (done) {
      socket?.destroy();
      return;
    }
    done = true;
    clearTimeout(timer);
    settle(err, socket);
  };
  let p: Promise<Socket>;
  try {
    p = connector(target, ac.signal);
  } catch (err) {
    once(err as Error, undefined);
    return;
  }
  p.then(
    (socket) => once(undefined, socket),
    (err: unknown) => once(err instanceof Error ? err : new Error(String(err)), undefined),
  );
}
