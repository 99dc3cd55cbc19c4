import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { EmbeddedStore, STATE_FILE } from '../../../src/control/embedded-store.js';
import type { ObjectIssue } from '../../../src/control/control-objects.js';

const root = mkdtempSync(join(tmpdir(), 'remora-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
const none = (): ObjectIssue[] => [];
const svc = (name: string, version: number, addresses = '10.0.0.1:80') => ({ kind: 'service' as const, name, spec: { addresses }, version });

test('commits are durable: a reopened store has the same revision, objects and versions', async () => {
  const dir = join(root, 'durable');
  const s = await EmbeddedStore.open(dir);
  try {
    assert.equal(s.commit({ writes: [svc('web', 0)], deletes: [] }, none).ok, true);
    assert.equal(s.commit({ writes: [svc('api', 0), svc('web', 1, '10.0.0.2:80')], deletes: [] }, none).ok, true);
    assert.equal(s.revision, 2);
  } finally {
    await s.close();
  }
  const again = await EmbeddedStore.open(dir);
  try {
    assert.equal(again.revision, 2);
    assert.deepEqual(again.list().map((o) => [o.name, o.version, o.spec.addresses]), [['api', 2, '10.0.0.1:80'], ['web', 2, '10.0.0.2:80']]);
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp-')), []);
  } finally {
    await again.close();
  }
});

test('a refused write (conflict or invalid) stores nothing and makes no revision; dry runs store nothing', async () => {
  const dir = join(root, 'refused');
  const s = await EmbeddedStore.open(dir);
  try {
    s.commit({ writes: [svc('web', 0)], deletes: [] }, none);
    const before = readFileSync(join(dir, STATE_FILE), 'utf8');
    const conflict = s.commit({ writes: [svc('web', 0, '10.9.9.9:1')], deletes: [] }, none);
    assert.equal(!conflict.ok && conflict.status, 409);
    const invalid = s.commit({ writes: [svc('web', 1, '10.9.9.9:1')], deletes: [] }, () => [{ kind: 'service', name: 'web', field: 'addresses', expected: 'x' }]);
    assert.equal(!invalid.ok && invalid.status, 422);
    const dry = s.commit({ writes: [svc('web', 1, '10.9.9.9:1')], deletes: [] }, none, { dryRun: true });
    assert.equal(dry.ok && dry.dryRun, true);
    assert.equal(s.revision, 1);
    assert.equal(s.get('service', 'web')?.spec.addresses, '10.0.0.1:80');
    assert.equal(readFileSync(join(dir, STATE_FILE), 'utf8'), before);
  } finally {
    await s.close();
  }
});

test('the validator sees the whole candidate state (the write applied to everything else)', async () => {
  const s = await EmbeddedStore.open(join(root, 'candidate'));
  try {
    s.commit({ writes: [svc('web', 0)], deletes: [] }, none);
    let seen: string[] = [];
    s.commit({ writes: [svc('api', 0)], deletes: [] }, (objects) => { seen = objects.map((o) => o.name).sort(); return []; });
    assert.deepEqual(seen, ['api', 'web']);
  } finally {
    await s.close();
  }
});

test('a second owner of the directory is refused while the first holds it, and accepted after', async () => {
  const dir = join(root, 'locked');
  const first = await EmbeddedStore.open(dir);
  await assert.rejects(EmbeddedStore.open(dir), { code: 'REMORA_ERR_CONTROL_STORE', message: /in use by another remora control/ });
  await first.close();
  const second = await EmbeddedStore.open(dir);
  await second.close();
});

test('a damaged state file is refused (never overwritten) and the lock is released', async () => {
  const dir = join(root, 'damaged');
  const s = await EmbeddedStore.open(dir);
  await s.close();
  writeFileSync(join(dir, STATE_FILE), '{"format":1,"revis');
  await assert.rejects(EmbeddedStore.open(dir), { code: 'REMORA_ERR_CONTROL_STORE', message: /not valid JSON/ });
  assert.equal(readFileSync(join(dir, STATE_FILE), 'utf8'), '{"format":1,"revis');
  writeFileSync(join(dir, STATE_FILE), JSON.stringify({ format: 1, revision: 1, objects: [{ kind: 'service', name: 'x', version: 5, spec: {} }] }));
  await assert.rejects(EmbeddedStore.open(dir), { message: /object 0 is not a valid object/ });
});

test('watchers get every revision; eventsSince answers from the history or says re-list', async () => {
  const s = await EmbeddedStore.open(join(root, 'watch'));
  try {
    const heard: number[] = [];
    const off = s.subscribe((e) => heard.push(e.revision));
    s.commit({ writes: [svc('a', 0)], deletes: [] }, none);
    s.commit({ writes: [svc('a', 1, '10.0.0.3:80')], deletes: [] }, none);
    s.commit({ writes: [svc('a', 2, '10.0.0.3:80')], deletes: [] }, none); // unchanged: no revision
    off();
    s.commit({ writes: [], deletes: [{ kind: 'service', name: 'a', version: 2 }] }, none);
    assert.deepEqual(heard, [1, 2]);
    assert.deepEqual(s.eventsSince(1)?.map((e) => e.revision), [2, 3]);
    assert.deepEqual(s.eventsSince(3), []);
    assert.equal(s.eventsSince(0)?.length, 3);
  } finally {
    await s.close();
  }
  const reopened = await EmbeddedStore.open(join(root, 'watch'));
  try {
    assert.equal(reopened.eventsSince(1), undefined);
  } finally {
    await reopened.close();
  }
});
