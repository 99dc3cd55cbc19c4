import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LiveTable } from '../../../src/core/live-table.js';

test('set, get, delete by number or string key; size counts members, not writes', () => {
  const t = new LiveTable<string>();
  t.set(7, 'a');
  t.set('1.2.3.4|80', 'b');
  t.set(7, 'c'); // a replacement is not a second member
  assert.equal(t.size, 2);
  assert.equal(t.get(7), 'c');
  assert.equal(t.get('7'), 'c');
  assert.equal(t.get('1.2.3.4|80'), 'b');
  assert.equal(t.get(8), undefined);
  assert.deepEqual(t.keys().sort(), ['1.2.3.4|80', '7']);
  assert.equal(t.delete(7), true);
  assert.equal(t.delete(7), false);
  assert.equal(t.delete('nothing'), false);
  assert.equal(t.size, 1);
  assert.equal(t.get(7), undefined);
});

test('keys that are Object.prototype names are plain keys', () => {
  const t = new LiveTable<number>();
  assert.equal(t.get('constructor'), undefined);
  assert.equal(t.get('__proto__'), undefined);
  t.set('toString', 1);
  assert.equal(t.get('toString'), 1);
  assert.equal(t.size, 1);
});

test('many ids come and go: the table agrees with a Map model', () => {
  const t = new LiveTable<number>();
  const model = new Map<number, number>();
  for (let id = 1; id <= 10_000; id++) {
    t.set(id, id * 2);
    model.set(id, id * 2);
    if (id % 3 !== 0) {
      const gone = id - (id % 7);
      assert.equal(t.delete(gone), model.delete(gone));
    }
  }
  assert.equal(t.size, model.size);
  for (const [k, v] of model) assert.equal(t.get(k), v);
  assert.deepEqual(t.keys().map(Number).sort((a, b) => a - b), [...model.keys()].sort((a, b) => a - b));
});
