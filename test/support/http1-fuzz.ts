// Test helper: seeded generators of HTTP/1.1 requests (valid ones with their model, and mutations of heads) for the
// parser's fuzz test and the differential test against llhttp.

/** mulberry32, the unit tests' seeded PRNG. */
import { seededRandom } from '../unit/helpers/seeded-random.js';

export const prng = seededRandom;

/** The fuzz seed: FUZZ_SEED=<n> replays a run. */
export const BASE_SEED = Number(process.env.FUZZ_SEED ?? 20261203);
const TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

export class Gen {
  readonly r: () => number;
  constructor(seed: number) {
    this.r = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  token(min = 1, max = 12): string {
    const n = min + this.int(max - min + 1);
    let s = '';
    for (let i = 0; i < n; i++) s += TCHAR[this.int(TCHAR.length)];
    return s;
  }
  value(): string {
    const n = this.int(20);
    let s = '';
    for (let i = 0; i < n; i++) {
      const k = this.int(10);
      if (k === 0) s += ' ';
      else if (k === 1) s += '\t';
      else if (k === 2) s += String.fromCharCode(0x80 + this.int(0x80));
      else s += String.fromCharCode(0x21 + this.int(0x5e));
    }
    return s.replace(/^[ \t]+|[ \t]+$/g, '');
  }
  target(): string {
    const n = 1 + this.int(30);
    let s = '/';
    for (let i = 0; i < n; i++) s += String.fromCharCode(0x21 + this.int(0x5e));
    return s;
  }
  casing(name: string): string {
    let s = '';
    for (const c of name) s += this.int(2) === 0 ? c.toUpperCase() : c.toLowerCase();
    return s;
  }
}

export interface Model {
  method: string;
  target: string;
  headers: string[];
  body: string;
  trailers: string[];
  wire: string;
}

export function genMessage(g: Gen): Model {
  const method = g.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', g.token(1, 8).toUpperCase()]);
  const target = g.pick([g.target(), '*', `http://h${g.int(9)}.example/x?y=${g.int(99)}`]);
  const headers: string[] = [g.casing('host'), `h${g.int(100)}.example`];
  const extra = g.int(6);
  for (let i = 0; i < extra; i++) {
    let name = g.token();
    const lower = name.toLowerCase();
    if (['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade'].includes(lower)) name = `x-${name}`;
    headers.push(name, g.value());
  }
  const kind = g.int(3);
  let body = '';
  let trailers: string[] = [];
  let bodyWire = '';
  if (kind === 1) {
    body = g.value() + g.value();
    headers.push(g.casing('content-length'), String(Buffer.byteLength(body, 'latin1')));
    bodyWire = body;
  } else if (kind === 2) {
    headers.push(g.casing('transfer-encoding'), g.casing('chunked'));
    const chunks = g.int(4);
    for (let i = 0; i < chunks; i++) {
      const c = g.value() + 'x';
      body += c;
      const ext = g.int(3) === 0 ? `;${g.token()}=${g.token()}` : g.int(4) === 0 ? `;${g.token()}="q \\" v"` : '';
      bodyWire += `${c.length.toString(g.int(2) === 0 ? 16 : 16).toUpperCase()}${ext}\r\n${c}\r\n`;
    }
    bodyWire += '0\r\n';
    const nt = g.int(3);
    for (let i = 0; i < nt; i++) {
      trailers.push(`x-t${i}`, g.value());
      bodyWire += `${trailers[trailers.length - 2] as string}: ${trailers[trailers.length - 1] as string}\r\n`;
    }
    bodyWire += '\r\n';
  }
  // Random order of the fields (Host stays unique).
  const pairs: [string, string][] = [];
  for (let i = 0; i < headers.length; i += 2) pairs.push([headers[i] as string, headers[i + 1] as string]);
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = g.int(i + 1);
    [pairs[i], pairs[j]] = [pairs[j] as [string, string], pairs[i] as [string, string]];
  }
  const flat = pairs.flat();
  let wire = `${method} ${target} HTTP/1.1\r\n`;
  for (const [n, v] of pairs) wire += `${n}:${g.pick(['', ' ', '\t', '  '])}${v}${g.pick(['', ' ', '\t'])}\r\n`;
  wire += `\r\n${bodyWire}`;
  trailers = trailers.length === 0 ? [] : trailers;
  return { method, target, headers: flat, body, trailers, wire };
}

const INSERTS = ['\r', '\n', ' ', '\t', '\x00', ':', '\r\n', '\r\n ', ',', '\x7f', '\xff', 'a', '"'];
const FRAMING_LINES = [
  'Content-Length: 5', 'Content-Length: 0', 'Content-Length: -1', 'Content-Length: 1,1', 'Transfer-Encoding: chunked',
  'Transfer-Encoding: gzip', 'Transfer-Encoding: chunked, gzip', 'Host: other', 'transfer-encoding :chunked',
  'Content-Length:  7 ', 'Connection: close', 'Connection: upgrade', 'Upgrade: websocket', 'X: \x01',
];

export function mutate(g: Gen, head: string): string {
  let s = head;
  const n = 1 + g.int(3);
  for (let k = 0; k < n; k++) {
    const at = g.int(s.length + 1);
    switch (g.int(6)) {
      case 0: // flip a byte
        s = s.slice(0, at) + String.fromCharCode(g.int(256)) + s.slice(at + 1);
        break;
      case 1: // insert a special
        s = s.slice(0, at) + g.pick(INSERTS) + s.slice(at);
        break;
      case 2: // delete a byte
        s = s.slice(0, at) + s.slice(at + 1);
        break;
      case 3: { // repeat a line
        const lines = s.split('\r\n');
        const i = 1 + g.int(Math.max(1, lines.length - 1));
        if (i < lines.length) lines.splice(i, 0, lines[i] as string);
        s = lines.join('\r\n');
        break;
      }
      case 4: { // add a framing / host line
        const lines = s.split('\r\n');
        lines.splice(1 + g.int(lines.length), 0, g.pick(FRAMING_LINES));
        s = lines.join('\r\n');
        break;
      }
      default: // change the version
        s = s.replace(/HTTP\/1\.1/, g.pick(['HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'http/1.1', 'HTTP/1.1 ', 'HTTP/11']));
    }
  }
  return s;
}

