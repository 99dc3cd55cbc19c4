// Hop-by-hop header handling for a transparent intermediary (RFC 9110 §7.6.1, RFC 9113 §8.2.2).
//
// Headers travel through the engines as flat raw arrays ([name, value, name, value, ...], as Node's `rawHeaders`):
// names keep their case and order, duplicates stay separate. Removed on every hop: `Connection` and every field it
// names, `Keep-Alive`, `Proxy-Connection`, `TE` (except its "trailers" token), `Transfer-Encoding` (the engine
// re-frames the body itself) and `Upgrade` (kept only when the request is tunnelled: Upgrade/101).
//
// A `Connection` header may not remove the fields the proxy needs to frame and route the message itself (Host,
// Content-Length): "Connection: content-length" would otherwise make the upstream read a different body than we
// forwarded. Those names are never stripped because they are listed.

/** Names a `Connection` header may not remove (the proxy frames and routes with them). */
const PROTECTED = new Set(['host', 'content-length', 'x-request-id']);

/** Fields that are malformed in HTTP/2 in addition to the hop-by-hop ones (RFC 9113 §8.2.2). */
const H2_FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);

export interface HopByHopInfo {
  /** A `close` token was present in Connection. */
  close: boolean;
  /** A `keep-alive` token was present in Connection. */
  keepAlive: boolean;
  /** TE carried the "trailers" token. */
  teTrailers: boolean;
  /** The Upgrade header value(s), joined with ", " ("" when absent). */
  upgrade: string;
}

/**
 * `name` is `lowerName` in any ASCII case (RFC 9110 §5.1: field names are case-insensitive), compared without making
 * a lower-case copy. `lowerName` must be lower case.
 */
export function nameIs(name: string, lowerName: string): boolean {
  const n = lowerName.length;
  if (name.length !== n) return false;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    const l = lowerName.charCodeAt(i);
    if (c !== l && (c < 65 || c > 90 || c + 32 !== l)) return false;
  }
  return true;
}

/** The always-hop-by-hop name (lower case) that `name` is, or undefined; by length first, without a lower-case copy. */
function alwaysHopByHop(name: string): string | undefined {
  switch (name.length) {
    case 2: return nameIs(name, 'te') ? 'te' : undefined;
    case 7: return nameIs(name, 'upgrade') ? 'upgrade' : undefined;
    case 10: return nameIs(name, 'connection') ? 'connection' : nameIs(name, 'keep-alive') ? 'keep-alive' : undefined;
    case 16: return nameIs(name, 'proxy-connection') ? 'proxy-connection' : undefined;
    case 17: return nameIs(name, 'transfer-encoding') ? 'transfer-encoding' : undefined;
    default: return undefined;
  }
}

/** `name` is one of the fields always removed on every hop (Connection, Keep-Alive, TE, Upgrade, ...). */
export function isHopByHopName(name: string): boolean {
  return alwaysHopByHop(name) !== undefined;
}

/** Split a comma-separated list header value into lower-cased tokens, skipping empty elements. */
export function listTokens(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(',')) {
    const t = part.trim().toLowerCase();
    if (t !== '') out.push(t);
  }
  return out;
}

/**
 * Copy `raw` without the hop-by-hop fields. With `keepUpgrade`, the `Upgrade` header and a `Connection: upgrade`
 * are kept (written back as they were received), for requests that become tunnels and their 101 responses.
 * TE is reduced to `trailers` (spelled as received) when it lists that token. Returns the filtered array and what
 * the removed fields said.
 */
export function stripHopByHop(raw: readonly string[], keepUpgrade: boolean, info?: HopByHopInfo): string[] {
  // First pass: names listed by Connection. Most messages have no Connection header: skip the Set then.
  let listed: Set<string> | undefined;
  /** `Connection: close` alone (the other common value): a field named close goes, without a token list. */
  let closeListed = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (nameIs(name, 'connection')) {
      const value = raw[i + 1] as string;
      if (nameIs(value, 'keep-alive')) {
        // The common value, and a name that is removed anyway: no token list.
        if (info !== undefined) info.keepAlive = true;
        continue;
      }
      if (nameIs(value, 'close')) {
        if (info !== undefined) info.close = true;
        closeListed = true;
        continue;
      }
      for (const token of listTokens(value)) {
        if (info !== undefined) {
          if (token === 'close') info.close = true;
          else if (token === 'keep-alive') info.keepAlive = true;
        }
        if (!PROTECTED.has(token) && !(keepUpgrade && token === 'upgrade')) (listed ??= new Set()).add(token);
      }
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const always = alwaysHopByHop(name);
    if (always !== undefined) {
      if (always === 'te') {
        const hasTrailers = listTokens(value).includes('trailers');
        if (info !== undefined && hasTrailers) info.teTrailers = true;
        if (hasTrailers) out.push(name, 'trailers');
        continue;
      }
      if (always === 'upgrade') {
        if (info !== undefined) info.upgrade = info.upgrade === '' ? value : `${info.upgrade}, ${value}`;
        if (keepUpgrade) out.push(name, value);
        continue;
      }
      if (always === 'connection' && keepUpgrade && listTokens(value).includes('upgrade')) out.push(name, 'upgrade');
      continue;
    }
    if (listed !== undefined && listed.has(name.toLowerCase())) continue;
    if (closeListed && name.length === 5 && nameIs(name, 'close')) continue;
    out.push(name, value);
  }
  return out;
}

export function newHopByHopInfo(): HopByHopInfo {
  return { close: false, keepAlive: false, teTrailers: false, upgrade: '' };
}

/**
 * Headers for an HTTP/2 message from (already hop-by-hop-filtered) HTTP/1 headers: names lower-cased, fields that
 * are malformed in HTTP/2 dropped (Host becomes :authority, set by the caller), TE only as "trailers", and multiple
 * Cookie lines kept separate (HTTP/2 allows that).
 */
export function toH2Headers(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = (raw[i] as string).toLowerCase();
    if (H2_FORBIDDEN.has(lower)) continue;
    if (lower === 'te') {
      if (listTokens(raw[i + 1] as string).includes('trailers')) out.push('te', 'trailers');
      continue;
    }
    out.push(lower, raw[i + 1] as string);
  }
  return out;
}

/**
 * Headers for an HTTP/1.1 message from HTTP/2 raw headers (pseudo-headers already removed by the caller): names stay
 * lower case (HTTP/2 has no case to preserve); Cookie lines are joined with "; " (RFC 9113 §8.2.3).
 */
export function fromH2Headers(raw: readonly string[]): string[] {
  const out: string[] = [];
  let cookie: string | undefined;
  let cookieAt = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    const value = raw[i + 1] as string;
    if (name === 'cookie') {
      if (cookie === undefined) {
        cookie = value;
        cookieAt = out.length;
        out.push('cookie', value);
      } else {
        cookie = `${cookie}; ${value}`;
        out[cookieAt + 1] = cookie;
      }
      continue;
    }
    if (H2_FORBIDDEN.has(name) && name !== 'host') continue;
    out.push(name, value);
  }
  return out;
}

/** The value of the first header named `lowerName` (case-insensitive), or undefined. */
export function headerValue(raw: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (nameIs(name, lowerName)) return raw[i + 1] as string;
  }
  return undefined;
}

/** How many header lines are named `lowerName`. */
export function headerCount(raw: readonly string[], lowerName: string): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (nameIs(name, lowerName)) n++;
  }
  return n;
}

/** Remove every header named `lowerName` (in place); returns how many were removed. */
export function removeHeader(raw: string[], lowerName: string): number {
  let w = 0;
  let removed = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (nameIs(name, lowerName)) {
      removed++;
      continue;
    }
    raw[w++] = name;
    raw[w++] = raw[i + 1] as string;
  }
  raw.length = w;
  return removed;
}
