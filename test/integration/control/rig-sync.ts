// What the golden-metrics and sidecar-status tests share: an in-process sidecar (test/support/proxy-rig.ts)
// subscribed to a real `remora control` with a SyncClient that applies each snapshot as `remora proxy --control` does
// (the control plane's INI over the local file, reloaded), and a plain GET through it.
import http from 'node:http';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import { sidecarDocument } from '../../../src/control/sidecar-config.js';
import { SyncClient, type SyncClientOptions } from '../../../src/control/sync-client.js';
import { RIG_CONFIG, type Rig } from '../../support/proxy-rig.js';

/** GET http://127.0.0.1:PORT/PATH on a connection of its own: the status code (bounded: 10 s). */
export function getStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => { resolve(res.statusCode ?? 0); });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => { req.destroy(new Error('request timed out')); });
    req.end();
  });
}

export interface RigSync {
  readonly server: string;
  readonly ca: string;
  readonly token: string;
  /** The rig's local [proxy] file, under the control plane's INI. */
  readonly local: string;
  readonly identity: () => string;
  /** What the sidecar reports (the golden metrics, the status); reported every 200 ms. */
  readonly metrics?: SyncClientOptions['metrics'];
  readonly status?: SyncClientOptions['status'];
}

/** A started SyncClient named pod-client for `rig`, stopped after the test. */
export function syncRig(t: TestContext, rig: Rig, o: RigSync): SyncClient {
  const client = new SyncClient({
    server: o.server, token: o.token, ca: o.ca, name: 'pod-client', identity: o.identity,
    apply: (snap) => {
      rig.setConfig(sidecarDocument(snap.ini, o.local, RIG_CONFIG));
      const outcome = rig.proxy.reload('control');
      return outcome.result === 'rejected' ? { ok: false, error: outcome.issues.join('\n') } : { ok: true };
    },
    ...(o.metrics === undefined ? {} : { metrics: o.metrics }),
    ...(o.status === undefined ? {} : { status: o.status }),
    metricsIntervalMs: 200,
    log: pino({ level: 'silent' }),
  });
  client.start();
  t.after(() => { client.stop(); });
  return client;
}
