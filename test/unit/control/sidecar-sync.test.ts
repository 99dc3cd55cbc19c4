import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { EmbeddedStore } from '../../../src/control/embedded-store.js';
import { SidecarSync } from '../../../src/control/sidecar-sync.js';

const root = mkdtempSync(join(tmpdir(), 'remora-sync-unit-'));
after(() => rmSync(root, { recursive: true, force: true }));
const log = pino({ level: 'silent' });
const none = () => [];
const put = (s: EmbeddedStore, name: string, addresses: string): void => {
  const r = s.commit({ writes: [{ kind: 'service', name, spec: { addresses }, version: s.get('service', name)?.version ?? 0 }], deletes: [] }, none);
  assert.equal(r.ok, true);
};

class FakeStream {
  readonly chunks: string[] = [];
  write(chunk: string): boolean { this.chunks.push(chunk); return true; }
  snapshots(): { version: number; ini: string }[] {
    return this.chunks.filter((c) => c.includes('event: snapshot')).map((c) => JSON.parse(c.slice(c.indexOf('data: ') + 6)) as { version: number; ini: string });
  }
}

async function until(what: string, pred: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !pred(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(pred(), what);
}

test('a sidecar behind the store gets a snapshot at once; ACK makes it SYNCED; a NACK is NACKED until a later version applies', async () => {
  const store = await EmbeddedStore.open(join(root, 'a'));
  const sync = new SidecarSync(store, log, { debounceMs: 1 });
  try {
    put(store, 'web', '10.0.0.1:80');
    const stream = new FakeStream();
    const off = sync.connect('pod-a', 'spiffe://td/ns/a/sa/a', 0, stream);
    assert.deepEqual(stream.snapshots().map((s) => s.version), [1]);
    assert.match(stream.snapshots()[0]?.ini ?? '', /^\[service web\]\naddresses = 10\.0\.0\.1:80\n$/);
    assert.equal(sync.list()[0]?.status, 'STALE');
    assert.equal(sync.ack({ name: 'pod-a', identity: 'spiffe://td/ns/a/sa/a', version: 1 }), true);
    assert.deepEqual([sync.list()[0]?.status, sync.list()[0]?.versionApplied], ['SYNCED', 1]);

    put(store, 'web', '10.0.0.2:80');
    await until('the push of revision 2', () => stream.snapshots().length === 2);
    sync.ack({ name: 'pod-a', identity: 'spiffe://td/ns/a/sa/a', version: 2, error: 'x.ini:3: [service web] mtls: expected identity_dir' });
    const nacked = sync.list()[0];
    assert.deepEqual([nacked?.status, nacked?.versionSent, nacked?.versionApplied, nacked?.lastNackError], ['NACKED', 2, 1, 'x.ini:3: [service web] mtls: expected identity_dir']);

    put(store, 'web', '10.0.0.3:80');
    await until('the push of revision 3', () => stream.snapshots().length === 3);
    assert.equal(sync.list()[0]?.status, 'STALE', 'sent, not yet applied');
    sync.ack({ name: 'pod-a', identity: 'spiffe://td/ns/a/sa/a', version: 3 });
    assert.equal(sync.list()[0]?.status, 'SYNCED');
    off();
    assert.equal(sync.list()[0]?.connected, false);
    assert.equal(sync.ack({ name: 'pod-b', identity: '', version: 3 }), false, 'an unknown sidecar');
  } finally {
    sync.close();
    await store.close();
  }
});

test('writes in one burst are one push of the last revision; an up-to-date sidecar gets nothing; name and identity tell sidecars apart', async () => {
  const store = await EmbeddedStore.open(join(root, 'b'));
  const sync = new SidecarSync(store, log, { debounceMs: 1 });
  try {
    put(store, 'web', '10.0.0.1:80');
    const a = new FakeStream();
    const b = new FakeStream();
    sync.connect('pod', 'spiffe://td/ns/a/sa/a', 1, a);
    sync.connect('pod', 'spiffe://td/ns/b/sa/b', 1, b);
    assert.equal(a.snapshots().length, 0, 'it has revision 1 already');
    assert.equal(sync.list().length, 2);
    put(store, 'web', '10.0.0.2:80');
    put(store, 'api', '10.0.0.3:80');
    put(store, 'db', '10.0.0.4:80');
    assert.equal(a.snapshots().length, 0, 'debounced: nothing is sent during the burst');
    await until('one push', () => a.snapshots().length === 1 && b.snapshots().length === 1);
    assert.equal(a.snapshots()[0]?.version, 4);
    sync.pushAll();
    assert.equal(a.snapshots().length, 1, 'nothing new to send');
  } finally {
    sync.close();
    await store.close();
  }
});

test('subscribe: listeners hear of connect, ACK/NACK and disconnect, coalesced to one call per tick', async () => {
  const store = await EmbeddedStore.open(join(root, 'subscribe'));
  const sync = new SidecarSync(store, log, { debounceMs: 1 });
  try {
    put(store, 'web', '10.0.0.1:80');
    let calls = 0;
    const off = sync.subscribe(() => { calls++; });
    const disconnect = sync.connect('pod-a', '', 0, new FakeStream());
    sync.ack({ name: 'pod-a', identity: '', version: 1 });
    await new Promise((r) => setImmediate(r));
    assert.equal(calls, 1, 'connect, send and ACK in one tick are one notification');
    sync.ack({ name: 'pod-a', identity: '', version: 1, error: 'bad' });
    await until('the NACK notified', () => calls === 2);
    disconnect();
    await until('the disconnect notified', () => calls === 3);
    off();
    sync.connect('pod-b', '', 0, new FakeStream());
    await new Promise((r) => setImmediate(r));
    assert.equal(calls, 3, 'no calls after unsubscribing');
  } finally {
    sync.close();
    await store.close();
  }
});
