// A sidecar's requests to the control plane (today: certificate signing). Once the sync connection is up they travel
// on it, the one HTTP/2 session the snapshots come on, authenticated and verified once; before it is up (the first
// certificate, made before the proxy starts) and while it reconnects, on a one-off HTTPS request to the same server,
// with the same token and the same CA.
import type { ControlCaller } from './control-client.js';
import type { SyncClient } from './sync-client.js';

export class ControlChannel implements ControlCaller {
  readonly #fallback: ControlCaller;
  #sync: SyncClient | undefined;

  constructor(fallback: ControlCaller) {
    this.#fallback = fallback;
  }

  /** From now on, requests go on this sync connection whenever it is connected. */
  attach(sync: SyncClient): void {
    this.#sync = sync;
  }

  /** Whether the next request goes on the sync connection. */
  get onSyncConnection(): boolean {
    return this.#sync?.connected === true;
  }

  call(method: string, path: string, body?: unknown): Promise<unknown> {
    const sync = this.#sync;
    return sync?.connected === true ? sync.call(method, path, body) : this.#fallback.call(method, path, body);
  }
}
