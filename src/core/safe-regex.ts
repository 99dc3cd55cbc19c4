// Regular expressions from configuration (route path/header matches), compiled once and checked against the
// constructs that make V8's backtracking engine take exponential time on a hostile request.
//
// Refused: backreferences (\1, \k<name>), lookaround ((?=, (?!, (?<=, (?<!), and a quantifier allowing more than
// two repetitions (*, +, {n,}, {3}, {1,5}) applied to a group that itself contains a variable-length quantifier or an
// alternation — "(a+)+", "(a|aa)*", "(x{1,3}){1,9}": the classic catastrophic shapes. Patterns are limited to MAX_PATTERN_LENGTH characters.
// Not refused, hence the remaining risk: polynomial backtracking between sibling quantifiers (".*a.*a.*a" is
// O(n^3) on a long non-matching input). To bound it, a value longer than MAX_REGEX_INPUT characters never matches
// a regex (documented in docs/l7-policies.md); keep patterns anchored on literal text where you can.
//
// Matches are full-string: the pattern is compiled as ^(?:pattern)$ (Envoy's safe_regex semantics).

export const MAX_PATTERN_LENGTH = 1024;
/** Values longer than this never match a regex (bounded worst case for polynomial patterns). */
export const MAX_REGEX_INPUT = 4096;

export type SafeRegexResult = { readonly ok: true; readonly regex: RegExp } | { readonly ok: false; readonly expected: string };

interface Frame {
  /** The group contains a quantifier other than {n} (so its length varies). */
  variable: boolean;
  alternation: boolean;
}

interface Atom {
  readonly group: Frame | undefined;
}

/** Compile a configured pattern to a full-match RegExp, or say why it is refused. */
export function compileSafeRegex(pattern: string): SafeRegexResult {
  if (pattern.length === 0) return { ok: false, expected: 'a non-empty regular expression' };
  if (pattern.length > MAX_PATTERN_LENGTH) return { ok: false, expected: `a regular expression of at most ${MAX_PATTERN_LENGTH} characters` };
  const problem = unsafeConstruct(pattern);
  if (problem !== undefined) return { ok: false, expected: `a regular expression without ${problem}` };
  try {
    return { ok: true, regex: new RegExp(`^(?:${pattern})$`) };
  } catch (err) {
    const msg = err instanceof Error ? err.message.replace(/^Invalid regular expression: /, '') : String(err);
    return { ok: false, expected: `a valid regular expression (${msg})` };
  }
}

/** Full match of a compiled configured regex, with the input-length bound. */
export function regexMatches(regex: RegExp, text: string): boolean {
  return text.length <= MAX_REGEX_INPUT && regex.test(text);
}

/** A description of the first refused construct, or undefined. Syntax errors are left to the RegExp constructor. */
export function unsafeConstruct(p: string): string | undefined {
  const stack: Frame[] = [{ variable: false, alternation: false }];
  let last: Atom | undefined;
  let i = 0;
  const top = (): Frame => stack[stack.length - 1] as Frame;
  while (i < p.length) {
    const c = p[i] as string;
    if (c === '\\') {
      const n = p[i + 1] ?? '';
      if (/[1-9]/.test(n)) return 'backreferences ("\\' + n + '")';
      if (n === 'k' && p[i + 2] === '<') return 'backreferences ("\\k<name>")';
      i += 2;
      last = { group: undefined };
      continue;
    }
    if (c === '[') {
      i = skipClass(p, i);
      last = { group: undefined };
      continue;
    }
    if (c === '(') {
      if (p.startsWith('(?=', i) || p.startsWith('(?!', i)) return 'lookahead ("(?=" / "(?!")';
      if (p.startsWith('(?<=', i) || p.startsWith('(?<!', i)) return 'lookbehind ("(?<=" / "(?<!")';
      stack.push({ variable: false, alternation: false });
      last = undefined;
      i += 1;
      continue;
    }
    if (c === ')') {
      if (stack.length > 1) {
        const frame = stack.pop() as Frame;
        if (frame.variable) top().variable = true;
        last = { group: frame };
      } else {
        last = { group: undefined };
      }
      i += 1;
      continue;
    }
    if (c === '|') {
      top().alternation = true;
      last = undefined;
      i += 1;
      continue;
    }
    const q = quantifierAt(p, i);
    if (q !== undefined) {
      if (last?.group !== undefined && q.max > MAX_GROUP_REPEAT && (last.group.variable || last.group.alternation)) {
        return last.group.alternation
          ? 'an alternation repeated without bound (e.g. "(a|ab)*"; catastrophic backtracking)'
          : 'nested quantifiers (e.g. "(a+)+"; catastrophic backtracking)';
      }
      if (q.variable) top().variable = true;
      i = q.end;
      if (p[i] === '?') i += 1; // lazy
      last = undefined;
      continue;
    }
    last = { group: undefined };
    i += 1;
  }
  return undefined;
}

function skipClass(p: string, start: number): number {
  let i = start + 1;
  if (p[i] === '^') i += 1;
  if (p[i] === ']') i += 1; // a leading "]" is literal in some flavours; harmless here
  while (i < p.length) {
    if (p[i] === '\\') { i += 2; continue; }
    if (p[i] === ']') return i + 1;
    i += 1;
  }
  return i;
}

/** A group of variable length may be repeated at most this many times ("(a+){2}" is fine, "(a+){3,}" is not). */
const MAX_GROUP_REPEAT = 2;

function quantifierAt(p: string, i: number): { end: number; max: number; variable: boolean } | undefined {
  const c = p[i];
  if (c === '*' || c === '+') return { end: i + 1, max: Number.POSITIVE_INFINITY, variable: true };
  if (c === '?') return { end: i + 1, max: 1, variable: true };
  if (c !== '{') return undefined;
  const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i, i + 24));
  if (m === null) return undefined; // a literal "{"
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : m[3] === undefined || m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3]);
  return { end: i + m[0].length, max, variable: max !== min };
}
