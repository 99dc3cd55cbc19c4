// Fuzzing the HTTP/1.1 request parser, seeded and bounded (the seed is printed with every failure, so a failing case
// can be replayed: FUZZ_SEED=<n>):
// - generated valid messages (random methods, targets, header case, values with OWS and obs-text, Content-Length
//   and chunked bodies with extensions and trailers, pipelined) round-trip exactly, at random split points;
// - random and mutated heads (bytes flipped, CR / LF / SP / NUL / ':' inserted, lines repeated, framing fields
//   added) never make the parser throw anything but its syntax error, give the same outcome at every split, and
//   agree with an independent reading of RFC 9112 / 9110 (a regex grammar plus the framing rules): a head is
//   accepted exactly when the reference accepts it, with the same kind of refusal (framing or not).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAll, type ParseOutcome } from '../../support/http1-parse.js';

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASE_SEED = Number(process.env.FUZZ_SEED ?? 20261203);
const TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

class Gen {
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

interface Model {
  method: string;
  target: string;
  headers: string[];
  body: string;
  trailers: string[];
  wire: string;
}

function genMessage(g: Gen): Model {
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

/** Split points chosen by the generator: the parser must not care. */
function randomSteps(g: Gen, len: number): number[] {
  return [0, 1, 1 + g.int(8), 1 + g.int(Math.max(1, len))];
}

function summary(o: ParseOutcome): string {
  return JSON.stringify({
    messages: o.messages.map((m) => [m.head.method, m.head.target, m.head.headers, m.head.framing, m.body, m.trailers, m.complete]),
    error: o.error === undefined ? null : [o.error.smuggling, o.error.tooLarge],
    rest: o.rest ?? null,
  });
}

test('generated valid messages round-trip exactly, pipelined, at random splits (2,000 messages)', () => {
  for (let round = 0; round < 400; round++) {
    const seed = BASE_SEED + round;
    const g = new Gen(seed);
    const models: Model[] = [];
    const count = 1 + g.int(5);
    for (let i = 0; i < count; i++) models.push(genMessage(g));
    const wire = models.map((m) => m.wire).join('');
    for (const step of randomSteps(g, wire.length)) {
      const r = parseAll(wire, step, 64 * 1024);
      assert.equal(r.error, undefined, `seed ${seed} step ${step}: ${r.error?.message}\n${JSON.stringify(wire)}`);
      assert.equal(r.messages.length, models.length, `seed ${seed}`);
      models.forEach((m, i) => {
        const got = r.messages[i];
        assert.ok(got !== undefined);
        assert.equal(got.head.method, m.method, `seed ${seed}`);
        assert.equal(got.head.target, m.target, `seed ${seed}`);
        assert.deepEqual(got.head.headers, m.headers, `seed ${seed}`);
        assert.equal(got.body, m.body, `seed ${seed}`);
        assert.deepEqual(got.trailers, m.trailers, `seed ${seed}`);
        assert.equal(got.complete, true, `seed ${seed}`);
      });
    }
  }
});

// ---- the reference: RFC 9112 / 9110 read independently, with regexes ----

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE_RE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;
const FIELD_RE = /^([^:]*):(.*)$/s;
const VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;

type Verdict = 'ok' | 'bad' | 'smuggling';

/** The reference's verdict on a head (the text before its CRLFCRLF). */
function referenceHead(head: string): Verdict {
  if (/\r(?!\n)|(?<!\r)\n/.test(head)) return 'bad';
  const lines = head.split('\r\n');
  const m = REQUEST_LINE_RE.exec(lines[0] as string);
  if (m === null) return 'bad';
  const minor = m[3];
  let hosts = 0;
  let cl = 0;
  let clBad = false;
  let te: string[] = [];
  for (const line of lines.slice(1)) {
    if (line.startsWith(' ') || line.startsWith('\t')) return 'bad'; // obs-fold
    const f = FIELD_RE.exec(line);
    if (f === null || !TOKEN_RE.test(f[1] as string)) return 'bad';
    const value = (f[2] as string).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!VALUE_RE.test(value)) return 'bad';
    const name = (f[1] as string).toLowerCase();
    if (name === 'host') hosts++;
    if (name === 'content-length') {
      cl++;
      if (!/^\d{1,15}$/.test(value)) clBad = true;
    }
    if (name === 'transfer-encoding') te.push(value);
  }
  if (hosts > 1 || (hosts === 0 && minor === '1')) return 'bad';
  if (clBad || cl > 1) return 'smuggling';
  if (te.length > 0) {
    if (cl > 0 || minor === '0' || te.length > 1) return 'smuggling';
    te = te[0]?.split(',').map((t) => t.trim().toLowerCase()) ?? [];
    if (te.length !== 1 || te[0] !== 'chunked') return 'smuggling';
  }
  return 'ok';
}

function parserHeadVerdict(o: ParseOutcome): Verdict {
  if (o.messages.length > 0) return 'ok';
  if (o.error === undefined) return 'ok'; // incomplete: not a verdict (not produced by the generator below)
  return o.error.smuggling ? 'smuggling' : 'bad';
}

const INSERTS = ['\r', '\n', ' ', '\t', '\x00', ':', '\r\n', '\r\n ', ',', '\x7f', '\xff', 'a', '"'];
const FRAMING_LINES = [
  'Content-Length: 5', 'Content-Length: 0', 'Content-Length: -1', 'Content-Length: 1,1', 'Transfer-Encoding: chunked',
  'Transfer-Encoding: gzip', 'Transfer-Encoding: chunked, gzip', 'Host: other', 'transfer-encoding :chunked',
  'Content-Length:  7 ', 'Connection: close', 'Connection: upgrade', 'Upgrade: websocket', 'X: \x01',
];

function mutate(g: Gen, head: string): string {
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

test('mutated and random heads: only syntax errors, split-independent, and the RFC reference agrees (3,000 heads)', () => {
  let accepted = 0;
  let refused = 0;
  for (let round = 0; round < 3000; round++) {
    const seed = BASE_SEED * 7 + round;
    const g = new Gen(seed);
    let head: string;
    if (round % 10 === 0) {
      // fully random bytes after a plausible start
      head = `${g.pick(['GET', 'POST', 'G T'])} /${g.token()} HTTP/1.1\r\n`;
      const n = g.int(60);
      for (let i = 0; i < n; i++) head += String.fromCharCode(g.int(2) === 0 ? 0x20 + g.int(0x60) : g.int(256));
    } else {
      const m = genMessage(g).wire;
      head = mutate(g, m.slice(0, m.indexOf('\r\n\r\n')));
    }
    // One complete head, then a byte the parser never reaches when the head is refused or bodyless.
    if (head.includes('\r\n\r\n')) head = head.slice(0, head.indexOf('\r\n\r\n'));
    head = head.replace(/^(\r\n)+/, ''); // leading empty lines are skipped by design (RFC 9112 §2.2)
    while (head.endsWith('\r\n')) head = head.slice(0, -2);
    if (head.endsWith('\r')) head += 'x';
    const wire = `${head}\r\n\r\n`;
    let first: string | undefined;
    for (const step of randomSteps(g, wire.length)) {
      let r: ParseOutcome;
      try {
        r = parseAll(wire, step, 64 * 1024);
      } catch (err) {
        assert.fail(`seed ${seed}: threw ${String(err)} on ${JSON.stringify(wire)}`);
      }
      const s = summary({ ...r, messages: r.messages.map((m) => ({ ...m, body: '', complete: false })) });
      if (first === undefined) first = s;
      else assert.equal(s, first, `seed ${seed}: outcome depends on the split (step ${step}) for ${JSON.stringify(wire)}`);
      if (step === 0) {
        const want = referenceHead(head);
        const got = parserHeadVerdict(r);
        assert.equal(got, want, `seed ${seed}: parser ${got} (${r.error?.message ?? ''}), reference ${want}: ${JSON.stringify(wire)}`);
        if (got === 'ok') accepted++;
        else refused++;
      }
    }
  }
  // The mutations must exercise both sides.
  assert.ok(accepted > 300 && refused > 300, `accepted ${accepted}, refused ${refused}`);
});
