// Parsers for configuration values. Each returns { value } or { expected } (what a valid value looks like), so
// that the caller can name the file/line/key; none throws.
import { isIP } from 'node:net';
import {
  normalizePortRanges, parseCidr, parseHostPort, parsePortRange,
  type Cidr, type HostPort, type PortRange,
} from '../core/addr.js';
import { parseDurationMs } from '../core/duration.js';

export type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string };
export type ValueParser<T> = (text: string) => Parsed<T>;

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(expected: string): Parsed<T> => ({ ok: false, expected });

function splitList(text: string): string[] {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter((s) => s !== '');
}

export const port: ValueParser<number> = (text) => {
  const r = parsePortRange(text);
  return r !== undefined && r.from === r.to ? ok(r.from) : bad('a TCP port, 1-65535');
};

/** "*" (all), "" (none) or a list of ports and ranges: "80,443,8000-8100". */
export type PortSelection = { readonly all: true } | { readonly all: false; readonly ranges: readonly PortRange[] };

export const portSelection: ValueParser<PortSelection> = (text) => {
  const t = text.trim();
  if (t === '*') return ok({ all: true });
  const ranges: PortRange[] = [];
  for (const item of splitList(t)) {
    const r = parsePortRange(item);
    if (r === undefined) return bad(`"*" or a list of ports and ranges like "80,8000-8100" ("${item}" is not a port or range)`);
    ranges.push(r);
  }
  return ok({ all: false, ranges: normalizePortRanges(ranges) });
};

export const portList: ValueParser<readonly PortRange[]> = (text) => {
  const ranges: PortRange[] = [];
  for (const item of splitList(text)) {
    const r = parsePortRange(item);
    if (r === undefined) return bad(`a list of ports and ranges like "80,8000-8100" ("${item}" is not a port or range)`);
    ranges.push(r);
  }
  return ok(normalizePortRanges(ranges));
};

/** "*" (everything), "" (nothing) or CIDRs. */
export type CidrSelection = { readonly all: true } | { readonly all: false; readonly cidrs: readonly Cidr[] };

export const cidrSelection: ValueParser<CidrSelection> = (text) => {
  const t = text.trim();
  if (t === '*') return ok({ all: true });
  const r = cidrList(t);
  return r.ok ? ok({ all: false, cidrs: r.value }) : r;
};

export const cidrList: ValueParser<readonly Cidr[]> = (text) => {
  const out: Cidr[] = [];
  for (const item of splitList(text)) {
    const c = parseCidr(item);
    if ('error' in c) return bad(`a list of CIDRs like "10.0.0.0/8,fd00::/8" ("${item}": ${c.error})`);
    if (!out.some((o) => o.text === c.text)) out.push(c);
  }
  return ok(out);
};

/** Numeric uid/gid list (names are refused: NSS lookups in init containers are a known source of delays). */
export const idList: ValueParser<readonly number[]> = (text) => {
  const out: number[] = [];
  const items = splitList(text);
  if (items.length === 0) return bad('one or more numeric ids, e.g. "1337"');
  for (const item of items) {
    if (!/^\d{1,10}$/.test(item) || Number(item) > 4294967294) {
      return bad(`numeric ids 0-4294967294 separated by commas ("${item}" is not; names are not accepted)`);
    }
    if (!out.includes(Number(item))) out.push(Number(item));
  }
  return ok(out);
};

export const id: ValueParser<number> = (text) => {
  const t = text.trim();
  return /^\d{1,10}$/.test(t) && Number(t) <= 4294967294 ? ok(Number(t)) : bad('a numeric id 0-4294967294');
};

export const boolean: ValueParser<boolean> = (text) => {
  const t = text.trim().toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(t)) return ok(true);
  if (['false', 'no', 'off', '0'].includes(t)) return ok(false);
  return bad('true or false');
};

export function oneOf<const T extends string>(choices: readonly T[]): ValueParser<T> {
  return (text) => {
    const t = text.trim() as T;
    return choices.includes(t) ? ok(t) : bad(`one of ${choices.join(', ')}`);
  };
}

export function duration(min: number, max: number): ValueParser<number> {
  return (text) => {
    const ms = parseDurationMs(text);
    if (ms === undefined) return bad('a duration like "500ms", "5s" or "2m"');
    if (ms < min || ms > max) return bad(`a duration between ${min}ms and ${max}ms`);
    return ok(ms);
  };
}

/** A duration, or "off" (0). */
export function durationOrOff(min: number, max: number): ValueParser<number> {
  const d = duration(min, max);
  return (text) => {
    if (text.trim().toLowerCase() === 'off') return ok(0);
    const r = d(text);
    return r.ok ? r : bad(`"off" or ${r.expected}`);
  };
}

/** "IP:PORT" ("[v6]:PORT") with a literal address (no name: nothing is resolved), or "" for none. */
export const optionalIpPort: ValueParser<HostPort | undefined> = (text) => {
  const t = text.trim();
  if (t === '') return ok(undefined);
  const hp = parseHostPort(t);
  return hp !== undefined && isIP(hp.host) !== 0 ? ok(hp) : bad('IP:PORT with a literal address, e.g. "192.0.2.1:15099" or "[2001:db8::1]:15099", or "" for none');
};

export function integer(min: number, max: number): ValueParser<number> {
  return (text) => {
    const t = text.trim();
    if (!/^-?\d+$/.test(t)) return bad(`an integer ${min}-${max}`);
    const n = Number(t);
    return n >= min && n <= max ? ok(n) : bad(`an integer ${min}-${max}`);
  };
}

export const hostPort: ValueParser<HostPort> = (text) => {
  const hp = parseHostPort(text);
  return hp !== undefined ? ok(hp) : bad('host:port, e.g. "127.0.0.1:15000" or "[::1]:15000"');
};

export const ipAddress: ValueParser<string> = (text) => {
  const t = text.trim();
  return isIP(t) !== 0 ? ok(t) : bad('an IPv4 or IPv6 address');
};

export const path: ValueParser<string> = (text) => {
  const t = text.trim();
  return t !== '' && !t.includes('\0') ? ok(t) : bad('a file path');
};

/** Ports first..last mapped to a value: an entry of a "PORT=VALUE, FIRST-LAST=VALUE" list. */
export interface PortValue<T> {
  readonly first: number;
  readonly last: number;
  readonly value: T;
}

/**
 * "8080=strict, 9000-9100=disable": PORT=VALUE pairs, each port at most once, sorted by port; "" = none. `words`
 * name them in the message: the value ("MODE"), its kinds ("modes") and an example.
 */
export function portValues<const T extends string>(
  choices: readonly T[], words: { readonly name: string; readonly kinds: string; readonly example: string },
): ValueParser<readonly PortValue<T>[]> {
  const { name, kinds, example } = words;
  return (text) => {
    const out: PortValue<T>[] = [];
    for (const item of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
      const m = /^([^=]+?)\s*=\s*(\S+)$/.exec(item);
      const range = m === null ? undefined : parsePortRange(m[1] ?? '');
      const value = m?.[2] as T | undefined;
      if (range === undefined || value === undefined || !choices.includes(value)) {
        return bad(`PORT=${name} pairs like "${example}" (${kinds}: ${choices.join(', ')}; "${item}" is not)`);
      }
      if (out.some((o) => range.from <= o.last && o.first <= range.to)) return bad(`each port once ("${item}" overlaps an earlier entry)`);
      out.push({ first: range.from, last: range.to, value });
    }
    return ok(out.sort((a, b) => a.first - b.first));
  };
}

/** A file or directory path, or "" for none. */
export const optionalPath: ValueParser<string> = (text) => {
  const t = text.trim();
  return !t.includes('\0') ? ok(t) : bad('a path, or "" for none');
};

/** A number from 0 to 1 ("0.1", "1"). */
export const fraction: ValueParser<number> = (text) => {
  const t = text.trim();
  const n = /^(?:\d+(?:\.\d*)?|\.\d+)$/.test(t) ? Number(t) : Number.NaN;
  return n >= 0 && n <= 1 ? ok(n) : bad('a number from 0 to 1, e.g. 0.1');
};

/** A metrics label value: printable, at most 253 characters, "" allowed. */
export const labelValue: ValueParser<string> = (text) => {
  const t = text.trim();
  // eslint-disable-next-line no-control-regex
  return t.length <= 253 && !/[\u0000-\u001f\u007f"\\]/.test(t) ? ok(t) : bad('a label value of at most 253 printable characters, without " or \\');
};
