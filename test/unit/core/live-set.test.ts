import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LiveSet, type LiveEntry } from '../../../src/core/live-set.js';

test('add returns an entry; delete with it removes exactly that member; size follows', () => {
  const set = new LiveSet<string>();
  const a = set.add('a');
  const b = set.add('b');
  const c = set.add('c');
  assert.equal(set.size, 3);
  assert.equal(a.item, 'a');
  assert.deepEqual(set.items(), ['a', 'b', 'c']);
  assert.equal(set.delete(a), true);
  assert.equal(set.size, 2);
  assert.deepEqual(set.items().sort(), ['b', 'c']);
  assert.equal(set.has(a), false);
  assert.equal(set.has(b), true);
  assert.equal(set.has(c), true);
});

test('a second delete of the same entry, or an entry of another set, changes nothing', () => {
  const set = new LiveSet<number>();
  const other = new LiveSet<number>();
  const e = set.add(1);
  set.add(2);
  const foreign = other.add(1);
  assert.equal(set.delete(foreign), false);
  assert.equal(set.size, 2);
  assert.equal(set.delete(e), true);
  assert.equal(set.delete(e), false);
  assert.equal(set.size, 1);
  assert.deepEqual(set.items(), [2]);
  assert.equal(other.size, 1);
});

test('the same item added twice is two members (entries, not identity, are the key)', () => {
  const set = new LiveSet<object>();
  const item = {};
  const e1 = set.add(item);
  const e2 = set.add(item);
  assert.equal(set.size, 2);
  set.delete(e1);
  assert.equal(set.has(e2), true);
  assert.deepEqual(set.items(), [item]);
});

test('random adds and deletes agree with a reference model; deleted slots are cleared', () => {
  const set = new LiveSet<number>();
  const live = new Map<number, LiveEntry<number>>();
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  let next = 0;
  for (let step = 0; step < 20_000; step++) {
    if (live.size === 0 || rand(3) !== 0) {
      const id = next++;
      live.set(id, set.add(id));
    } else {
      const keys = [...live.keys()];
      const id = keys[rand(keys.length)] as number;
      assert.equal(set.delete(live.get(id) as LiveEntry<number>), true);
      live.delete(id);
    }
    if (step % 997 === 0) {
      assert.equal(set.size, live.size);
      assert.deepEqual(set.items().sort((x, y) => x - y), [...live.keys()].sort((x, y) => x - y));
    }
  }
  for (const e of live.values()) assert.equal(set.delete(e), true);
  assert.equal(set.size, 0);
  assert.deepEqual(set.items(), []);
});

test('items() and entries() are copies: changing the set while walking them is safe', () => {
  const set = new LiveSet<number>();
  const entries = [1, 2, 3, 4].map((n) => set.add(n));
  const seen: number[] = [];
  for (const e of set.entries()) {
    seen.push(e.item);
    set.delete(e);
    if (e.item === 2) set.add(5);
  }
  assert.deepEqual(seen, [1, 2, 3, 4]);
  assert.deepEqual(set.items(), [5]);
  assert.equal(entries.every((e) => !set.has(e)), true);
});
