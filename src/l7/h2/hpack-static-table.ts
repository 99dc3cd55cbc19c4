// The HPACK static table (RFC 7541 §2.3.1, Appendix A): 61 fixed entries, indexes 1-61. The decoder reads names and
// values by index; the encoder looks a field up with staticLookup, which allocates nothing (no joined name+value key):
// a Map from name to its lowest index, then a scan of the entries of that name, which are adjacent in the table (at
// most 7, for :status).

/** Number of entries of the static table; dynamic table indexes start after it (§2.3.3). */
export const STATIC_TABLE_LENGTH = 61;

const ENTRIES: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/** Names by index; [0] is unused (index 0 is not a valid index, §6.1). */
export const STATIC_NAMES: readonly string[] = ['', ...ENTRIES.map((e) => e[0])];
/** Values by index; [0] is unused. */
export const STATIC_VALUES: readonly string[] = ['', ...ENTRIES.map((e) => e[1])];

const FIRST_INDEX_OF_NAME = new Map<string, number>();
for (let i = STATIC_TABLE_LENGTH; i >= 1; i--) FIRST_INDEX_OF_NAME.set(STATIC_NAMES[i]!, i);

/**
 * Where (name, value) is in the static table: the index (> 0) of an entry equal to both, else minus the lowest index
 * of an entry with that name (< 0), else 0.
 */
export function staticLookup(name: string, value: string): number {
  const first = FIRST_INDEX_OF_NAME.get(name);
  if (first === undefined) return 0;
  for (let i = first; i <= STATIC_TABLE_LENGTH && STATIC_NAMES[i] === name; i++) {
    if (STATIC_VALUES[i] === value) return i;
  }
  return -first;
}
