import assert from 'node:assert/strict';
import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import { test } from 'node:test';
import { fastAsyncResourceBind } from '../../../src/l7/pool/async-bind-fix.js';

test('after the fix, AsyncResource.bind still runs in the resource\'s async context, with this, length and asyncResource', () => {
  fastAsyncResourceBind();
  fastAsyncResourceBind(); // idempotent
  const als = new AsyncLocalStorage<string>();
  const resource = als.run('bound-here', () => new AsyncResource('test'));
  const bound = resource.bind(function (this: unknown, a: number, b: number) {
    return { store: als.getStore(), self: this, sum: a + b };
  });
  const r = als.run('elsewhere', () => bound.call('me', 1, 2));
  assert.deepEqual(r, { store: 'bound-here', self: 'me', sum: 3 });
  assert.equal(bound.length, 2);
  assert.equal((bound as unknown as { asyncResource: AsyncResource }).asyncResource, resource);
  const twoArg = resource as unknown as { bind(fn: () => unknown, thisArg: unknown): () => unknown };
  const withThis = twoArg.bind(function (this: unknown) { return this; }, 'fixed');
  assert.equal(withThis.call('ignored'), 'fixed');
  assert.throws(() => resource.bind(42 as unknown as () => void), { code: 'ERR_INVALID_ARG_TYPE' });
});
