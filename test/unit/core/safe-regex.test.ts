import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_REGEX_INPUT, compileSafeRegex, regexMatches, unsafeConstruct } from '../../../src/core/safe-regex.js';

test('ordinary patterns compile to full-match regexes', () => {
  for (const p of ['/api/v[0-9]+/users/[^/]+', '^/a(b|c)$', '(?:foo|bar)/x', '/items/\\d{1,6}', 'a.*b', '(ab)+', '(a){3}', '(a+){2}', '(?<id>\\d+)']) {
    const r = compileSafeRegex(p);
    assert.equal(r.ok, true, p);
  }
  const r = compileSafeRegex('/api/v[0-9]+');
  assert.ok(r.ok);
  if (r.ok) {
    assert.equal(regexMatches(r.regex, '/api/v2'), true);
    assert.equal(regexMatches(r.regex, '/api/v2/x'), false, 'full match, not search');
    assert.equal(regexMatches(r.regex, 'x/api/v2'), false);
  }
});

test('catastrophic and unsupported constructs are refused with a reason', () => {
  const cases: [string, RegExp][] = [
    ['(a+)+', /nested quantifiers/],
    ['(a*)*b', /nested quantifiers/],
    ['(x{1,3})+', /nested quantifiers/],
    ['(a+){3}', /nested quantifiers/],
    ['((ab)*c)*', /nested quantifiers/],
    ['(a|aa)*', /alternation repeated/],
    ['(a|b){5,}', /alternation repeated/],
    ['(a)\\1', /backreferences/],
    ['(?<x>a)\\k<x>', /backreferences/],
    ['a(?=b)', /lookahead/],
    ['a(?!b)', /lookahead/],
    ['(?<=a)b', /lookbehind/],
    ['(?<!a)b', /lookbehind/],
  ];
  for (const [p, why] of cases) {
    const r = compileSafeRegex(p);
    assert.equal(r.ok, false, p);
    if (!r.ok) assert.match(r.expected, why, p);
  }
  assert.equal(unsafeConstruct('[(a+)+]'), undefined, 'inside a class these are literals');
  assert.equal(unsafeConstruct('\\(a+\\)+'), undefined, 'escaped parentheses are literals');
});

test('syntax errors, empty and over-long patterns are refused', () => {
  for (const p of ['(', '[a-', '', 'a'.repeat(1025)]) assert.equal(compileSafeRegex(p).ok, false, p.slice(0, 10));
});

test('inputs longer than MAX_REGEX_INPUT never match (bounded worst case)', () => {
  const r = compileSafeRegex('a*');
  assert.ok(r.ok);
  if (r.ok) {
    assert.equal(regexMatches(r.regex, 'a'.repeat(MAX_REGEX_INPUT)), true);
    assert.equal(regexMatches(r.regex, 'a'.repeat(MAX_REGEX_INPUT + 1)), false);
  }
});
