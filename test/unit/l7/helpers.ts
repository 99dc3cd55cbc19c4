// Shared helpers for the L7 policy tests: a seeded random source, a fake clock and a request-head builder.
import type { RequestHead } from '../../../src/l7/request-types.js';

export { seededRandom } from '../helpers/seeded-random.js';

export class FakeClock {
  t = 0;
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A request head; `target` may carry a query ("/a?b=1"), split into path and query like an engine would. */
export function head(partial: Partial<RequestHead> & { target?: string } = {}): RequestHead {
  const target = partial.target ?? '/';
  const q = target.indexOf('?');
  return {
    method: partial.method ?? 'GET',
    target,
    path: partial.path ?? (q < 0 ? target : target.slice(0, q)),
    query: partial.query ?? (q < 0 ? '' : target.slice(q + 1)),
    authority: partial.authority ?? 'web.default.svc:80',
    headers: partial.headers ?? [],
    protocol: partial.protocol ?? 'http/1.1',
    sourceAddress: partial.sourceAddress ?? '10.0.0.9',
    originalDst: partial.originalDst ?? { address: '10.96.0.10', port: 80 },
  };
}
