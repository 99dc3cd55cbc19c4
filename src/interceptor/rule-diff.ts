// A readable unified-style diff of two line lists (expected vs actual), used to report rules that read back
// differently from what was applied. Longest-common-subsequence based; the inputs are a few hundred lines at most
// and are capped so the work is bounded. Pure.

const MAX_LINES = 2000;

export interface DiffOptions {
  readonly expectedLabel?: string;
  readonly actualLabel?: string;
  /** Unchanged lines shown around each change; Infinity shows everything. Default 3. */
  readonly context?: number;
}

type Op = { readonly kind: ' ' | '-' | '+'; readonly line: string };

function lcsOps(a: readonly string[], b: readonly string[]): Op[] {
  const n = a.length;
  const m = b.length;
  // table[i][j] = LCS length of a[i..] and b[j..]
  const table: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    const row = table[i] ?? [];
    const below = table[i + 1] ?? [];
    for (let j = m - 1; j >= 0; j--) {
      row[j] = a[i] === b[j] ? (below[j + 1] ?? 0) + 1 : Math.max(below[j] ?? 0, row[j + 1] ?? 0);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { ops.push({ kind: ' ', line: a[i] ?? '' }); i++; j++; continue; }
    if ((table[i + 1]?.[j] ?? 0) >= (table[i]?.[j + 1] ?? 0)) { ops.push({ kind: '-', line: a[i] ?? '' }); i++; }
    else { ops.push({ kind: '+', line: b[j] ?? '' }); j++; }
  }
  while (i < n) ops.push({ kind: '-', line: a[i++] ?? '' });
  while (j < m) ops.push({ kind: '+', line: b[j++] ?? '' });
  return ops;
}

/** The diff as text, or undefined when the lists are equal. */
export function diffLines(expected: readonly string[], actual: readonly string[], opts: DiffOptions = {}): string | undefined {
  if (expected.length === actual.length && expected.every((l, i) => l === actual[i])) return undefined;
  const a = expected.slice(0, MAX_LINES);
  const b = actual.slice(0, MAX_LINES);
  const ops = lcsOps(a, b);
  const context = opts.context ?? 3;
  const show = ops.map(() => false);
  ops.forEach((op, k) => {
    if (op.kind === ' ') return;
    const lo = Math.max(0, k - context);
    const hi = Math.min(ops.length - 1, k + context);
    for (let x = lo; x <= hi; x++) show[x] = true;
  });
  const out = [`--- ${opts.expectedLabel ?? 'expected'}`, `+++ ${opts.actualLabel ?? 'actual'}`];
  let skipped = false;
  ops.forEach((op, k) => {
    if (!show[k]) { skipped = true; return; }
    if (skipped) out.push('@@ ... @@');
    skipped = false;
    out.push(`${op.kind}${op.line}`);
  });
  if (skipped) out.push('@@ ... @@');
  if (expected.length > MAX_LINES || actual.length > MAX_LINES) out.push(`(only the first ${MAX_LINES} lines compared)`);
  return `${out.join('\n')}\n`;
}
