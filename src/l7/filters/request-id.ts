// The request-id filter. x-request-id: added to a request that has none (a random UUIDv4), so one request can be followed through the logs
// of every hop. An id the client sent is kept as it is. Trace context headers (W3C traceparent/tracestate, B3) are
// never touched: they belong to the application's tracer.
import { randomFillSync } from 'node:crypto';
import { nameIs } from '../http/headers.js';
import type { HttpFilter } from '../request-types.js';

export const REQUEST_ID_HEADER = 'x-request-id';

/** Ids drawn per refill of the random pool (16 bytes each), as crypto.randomUUID() caches its entropy. */
const IDS_PER_REFILL = 256;
let entropy = Buffer.alloc(0);
let entropyAt = 0;
/** The id being formatted: 36 ASCII bytes, made into one string at the end (no intermediate strings). */
const idBytes = Buffer.allocUnsafe(36);
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/**
 * A random UUIDv4 (RFC 9562 §5.4), from the CSPRNG as crypto.randomUUID(), formatted into one string without the
 * ~0.6 KB of intermediate strings that randomUUID builds per id.
 */
export function newRequestId(): string {
  if (entropyAt + 16 > entropy.length) {
    entropy = randomFillSync(Buffer.allocUnsafe(16 * IDS_PER_REFILL));
    entropyAt = 0;
  }
  const r = entropy;
  const from = entropyAt;
  entropyAt += 16;
  let o = 0;
  for (let i = 0; i < 16; i++) {
    let b = r[from + i] as number;
    if (i === 6) b = (b & 0x0f) | 0x40; // version 4
    else if (i === 8) b = (b & 0x3f) | 0x80; // variant 10
    idBytes[o++] = HEX_DIGITS[b >> 4] as number;
    idBytes[o++] = HEX_DIGITS[b & 15] as number;
    if (i === 3 || i === 5 || i === 7 || i === 9) idBytes[o++] = 45; // '-'
  }
  return idBytes.toString('latin1', 0, 36);
}

/**
 * Return the request's id: the first non-empty `x-request-id` value in `raw` (a flat [name, value, ...] array, any
 * name case), or a new UUIDv4 written into `raw` (in place: into an empty `x-request-id`, else appended).
 */
export function ensureRequestId(raw: string[]): string {
  let empty = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (nameIs(name, REQUEST_ID_HEADER)) {
      const value = (raw[i + 1] as string).trim();
      if (value !== '') return value;
      if (empty < 0) empty = i;
    }
  }
  const id = newRequestId();
  if (empty >= 0) raw[empty + 1] = id;
  else raw.push(REQUEST_ID_HEADER, id);
  return id;
}

/** The request-id filter: every request carries an x-request-id; the context remembers it (logs, local replies). */
export const requestIdFilter: HttpFilter = (next) => (req, res) => {
  req.requestId = ensureRequestId(req.downstream.headers);
  next(req, res);
};
