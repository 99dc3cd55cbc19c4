// The kept strings of received heads (src/l7/http/field-strings.ts): whatever is kept, every answer equals the slice
// of the head it stands for: names in any case, names that share a slot, too long to keep, repeated, changed and long
// values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fieldNameSlot, fieldValue, keepName, keptName, MAX_KEPT_NAME, MAX_KEPT_VALUE, methodString } from '../../../src/l7/http/field-strings.js';
import { parseFieldLines } from '../../../src/l7/http/http1-syntax.js';

/** A name as the field-line parser takes it: the kept one, else the name, kept from now on. */
function fieldName(slot: number, text: string, from: number, to: number): string {
  return keptName(slot, text, from, to) ?? keepName(slot, text, from, to);
}

/** Field lines split the plain way (the parser without kept strings), for comparison. */
function sliced(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    out.push(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return out;
}

test('methods: the known ones and any other token, at any offset', () => {
  for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'get', 'GETX', 'PROPFIND', 'G']) {
    const text = `xx${m} / HTTP/1.1`;
    assert.equal(methodString(text, 2, 2 + m.length), m);
  }
});

test('names: kept as received (case included) once seen, a long one never', () => {
  const long = `X-${'n'.repeat(MAX_KEPT_NAME)}`;
  for (const n of ['Host', 'host', 'HOST', 'Hosts', 'X-Custom-Name-Of-Some-Length', 'te', long]) {
    const text = `${n}: v`;
    const slot = fieldNameSlot(text, 0, n.length);
    assert.equal(fieldName(slot, text, 0, n.length), n);
    // Seen now: kept, unless too long (or pushed out by a name of the same slot: none of these share one).
    assert.equal(keptName(slot, `x${text}`.slice(1), 0, n.length) !== undefined, n !== long, n);
    assert.equal(fieldName(slot, text, 0, n.length), n);
  }
  // A name of the same length and slot as a kept one is not taken for it.
  const text = 'Hosu: v';
  assert.equal(keptName(fieldNameSlot('Host', 0, 4), text, 0, 4), undefined);
});

test('values: the same, a changed one, the one before again, and one longer than what is kept', () => {
  const name = 'Server';
  const values = ['nginx/1.22.1', 'nginx/1.22.1', 'envoy', 'a-value-of-more-than-thirteen-characters', 'a-value-of-more-than-thirteen-characters', 'nginx/1.22.1',
    'x'.repeat(MAX_KEPT_VALUE + 1), 'x'.repeat(MAX_KEPT_VALUE + 1), 'x'.repeat(MAX_KEPT_VALUE), 'x'.repeat(MAX_KEPT_VALUE), ''];
  for (const v of values) {
    const text = `${name}: ${v}\r\n`;
    const slot = fieldNameSlot(text, 0, name.length);
    assert.equal(fieldName(slot, text, 0, name.length), name);
    assert.equal(fieldValue(slot, text, name.length + 2, name.length + 2 + v.length), v);
  }
  // A value that starts like the kept one but is longer or shorter.
  for (const v of ['nginx', 'nginx/1.22.1', 'nginx/1.22.10', 'nginx/1.22.1']) {
    const text = `Server: ${v}`;
    const slot = fieldNameSlot(text, 0, 6);
    assert.equal(fieldName(slot, text, 0, 6), 'Server');
    assert.equal(fieldValue(slot, text, 8, text.length), v);
  }
});

test('parseFieldLines with kept strings gives what plain slicing gives, over random heads', () => {
  // Many names, so that some share a slot and replace each other.
  const names = ['Host', 'host', 'Date', 'date', 'Server', 'X-Thing', 'Content-Type', 'content-type', 'Accept', 'a', 'Vary',
    ...Array.from({ length: 2000 }, (_, i) => `x-n${i}`)];
  const values = ['', 'x', 'text/html', 'Sat, 05 Dec 2026 19:00:00 GMT', 'Sat, 05 Dec 2026 19:00:01 GMT', '10.0.0.1:8080', 'v'.repeat(300)];
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let round = 0; round < 5000; round++) {
    const lines: string[] = [];
    const count = 1 + rnd(6);
    for (let i = 0; i < count; i++) lines.push(`${names[rnd(names.length)] as string}: ${values[rnd(values.length)] as string}`);
    const text = lines.join('\r\n');
    assert.deepEqual(parseFieldLines(text, 0), sliced(text), text);
  }
});
