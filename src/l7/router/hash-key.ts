// The hash key of a request for consistent-hash balancers (ring-hash, maglev): the route's hash_on — a header, a
// cookie or the client's address. Without one, or when the request lacks the header or cookie, the balancer hashes
// the client's address (the key L4 uses for the same client's connections), so one client lands on one endpoint over
// TCP and over HTTP.
import type { HashOn } from '../../config/route-spec.js';
import type { RequestHead } from '../request-types.js';

/** The value to hash for a request, or undefined (then ring-hash picks at random). */
export function requestHashKey(hashOn: HashOn | undefined, head: RequestHead): string | undefined {
  if (hashOn === undefined) return undefined;
  if (hashOn.kind === 'source') return head.sourceAddress === '' ? undefined : head.sourceAddress;
  const want = (hashOn.name ?? '').toLowerCase();
  if (hashOn.kind === 'header') {
    for (const [n, v] of head.headers) if (n.toLowerCase() === want) return v;
    return undefined;
  }
  const cookie = hashOn.name ?? '';
  for (const [n, v] of head.headers) {
    if (n.toLowerCase() !== 'cookie') continue;
    for (const pair of v.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      if (pair.slice(0, eq).trim() === cookie) return pair.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    }
  }
  return undefined;
}
