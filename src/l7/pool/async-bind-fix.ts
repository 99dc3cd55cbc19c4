// A process-wide speed fix for Node 20's AsyncResource.prototype.bind, which node:http2 calls for every client
// request (measured: ~15 µs of ~200 µs proxy CPU per h2c request). Applied once per process, explicitly, when an HTTP
// engine is created (src/l7/engine/http-engine.ts), and only when the running Node still has the slow
// implementation; see docs/performance-notes.md.
import { AsyncResource } from 'node:async_hooks';

type BindFn = (this: AsyncResource, fn: (...args: unknown[]) => unknown, thisArg?: unknown) => (...args: unknown[]) => unknown;
let bindChecked = false;

/**
 * Every `ClientHttp2Session.request()` calls `AsyncResource.prototype.bind` (node:http2 binds the stream's start to
 * a 'PendingRequest' resource), and Node 20's `bind` defines the deprecated (DEP0172) `asyncResource` accessor on
 * the bound function with two `util.deprecate()` wrappers, whose `Object.setPrototypeOf` on fresh closures costs
 * ~15 µs per call here: about a tenth of the proxy's CPU per h2c request. When (and only when) the running Node's
 * `bind` still does that, replace it, once per process, by the same binding with `asyncResource` as a plain
 * property (same value, same `length`, same async context; only the deprecation warning on reading it is gone):
 * ~1.4 µs. Later Node versions without the accessor are left alone.
 */
export function fastAsyncResourceBind(): void {
  if (bindChecked) return;
  bindChecked = true;
  const proto = AsyncResource.prototype as unknown as { bind: BindFn; runInAsyncScope: (...a: unknown[]) => unknown };
  const original = proto.bind;
  try {
    const probe = original.call(new AsyncResource('remora-probe'), () => undefined);
    if (Object.getOwnPropertyDescriptor(probe, 'asyncResource')?.get === undefined) return;
  } catch {
    return;
  }
  proto.bind = function bind(this: AsyncResource, fn: (...args: unknown[]) => unknown, thisArg?: unknown): (...args: unknown[]) => unknown {
    if (typeof fn !== 'function') return original.call(this, fn, thisArg); // Node's own validation error
    const run = (this as unknown as { runInAsyncScope: (...a: unknown[]) => unknown }).runInAsyncScope;
    let bound: (...args: unknown[]) => unknown;
    if (thisArg === undefined) {
      const resource = this;
      bound = function (this: unknown, ...args: unknown[]): unknown {
        args.unshift(fn, this);
        return Reflect.apply(run, resource, args);
      };
    } else {
      bound = run.bind(this, fn, thisArg) as (...args: unknown[]) => unknown;
    }
    Object.defineProperty(bound, 'length', { configurable: true, enumerable: false, value: fn.length, writable: false });
    Object.defineProperty(bound, 'asyncResource', { configurable: true, enumerable: true, value: this, writable: true });
    return bound;
  };
}
