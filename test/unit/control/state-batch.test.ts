import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ControlObject } from '../../../src/control/control-objects.js';
import { planBatch } from '../../../src/control/state-batch.js';

const web: ControlObject = { kind: 'service', name: 'web', spec: { addresses: '10.0.0.1:80' }, version: 3 };
const current = new Map([['service/web', web]]);

test('a write must carry the version it expects: 0 creates, the current version replaces, anything else is a conflict', () => {
  const create = planBatch(current, { writes: [{ kind: 'service', name: 'api', spec: { a: '1' }, version: 0 }], deletes: [] }, 4);
  assert.equal(create.ok, true);
  if (create.ok) assert.equal(create.next.get('service/api')?.version, 4);
  const replace = planBatch(current, { writes: [{ kind: 'service', name: 'web', spec: { a: '2' }, version: 3 }], deletes: [] }, 4);
  assert.equal(replace.ok && replace.changes[0]?.previous?.version, 3);
  const stale = planBatch(current, { writes: [{ kind: 'service', name: 'web', spec: { a: '2' }, version: 2 }], deletes: [] }, 4);
  assert.deepEqual(stale, { ok: false, status: 409, conflicts: [{ kind: 'service', name: 'web', expected: 2, found: 3 }] });
  const exists = planBatch(current, { writes: [{ kind: 'service', name: 'web', spec: { a: '2' }, version: 0 }], deletes: [] }, 4);
  assert.equal(!exists.ok && exists.status, 409);
});

test('one conflict refuses the whole batch; an object named twice is malformed; an unchanged write changes nothing', () => {
  const mixed = planBatch(current, {
    writes: [{ kind: 'service', name: 'api', spec: {}, version: 0 }],
    deletes: [{ kind: 'service', name: 'web', version: 9 }],
  }, 4);
  assert.equal(!mixed.ok && mixed.status, 409);
  const twice = planBatch(current, { writes: [{ kind: 'route', name: 'r', spec: {}, version: 0 }], deletes: [{ kind: 'route', name: 'r', version: 0 }] }, 4);
  assert.equal(!twice.ok && twice.status, 400);
  const same = planBatch(current, { writes: [{ kind: 'service', name: 'web', spec: { addresses: '10.0.0.1:80' }, version: 3 }], deletes: [] }, 4);
  assert.equal(same.ok && same.changes.length, 0);
  const del = planBatch(current, { writes: [], deletes: [{ kind: 'service', name: 'web', version: 3 }] }, 4);
  assert.equal(del.ok && del.next.has('service/web'), false);
  const gone = planBatch(current, { writes: [], deletes: [{ kind: 'service', name: 'nope', version: 1 }] }, 4);
  assert.equal(!gone.ok && gone.status, 409);
});
