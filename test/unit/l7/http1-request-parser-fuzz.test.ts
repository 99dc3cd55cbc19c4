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
import { BASE_SEED, Gen, genMessage, mutate, type Model } from '../../support/http1-fuzz.js';

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
