// The request-id filter. x-request-id: added to a request that has none (a random UUIDv4), so one request can be followed through the logs
// of every hop. An id the client sent is kept as it is. Trace context headers (W3C traceparent/tracestate, B3) are
// never touched: they belong to the application's tracer.
import { randomUUID } from 'node:crypto';
import type { HttpFilter } from '../request-types.js';

export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * Return the request's id: the first non-empty `x-request-id` value in `raw` (a flat [name, value, ...] array, any
 * name case), or a new UUIDv4 written into `raw` (in place: into an empty `x-request-id`, else appended).
 */
export function ensureRequestId(raw: string[]): string {
  let empty = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 12 && name.toLowerCase() === REQUEST_ID_HEADER) {
      const value = (raw[i + 1] as string).trim();
      if (value !== '') return value;
      if (empty < 0) empty = i;
    }
  }
  const id = randomUUID();
  if (empty >= 0) raw[empty + 1] = id;
  else raw.push(REQUEST_ID_HEADER, id);
  return id;
}

/** The request-id filter: every request carries an x-request-id; the context remembers it (logs, local replies). */
export const requestIdFilter: HttpFilter = (next) => (req, res) => {
  req.requestId = ensureRequestId(req.downstream.headers);
  next(req, res);
};
