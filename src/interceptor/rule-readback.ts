// Reading iptables-save output back: the nat table as chains and canonical rule texts. Canonical means: no counters,
// no comment/date lines, single spaces, comments quoted only when they need it, `--to-port` spelled `--to-ports`,
// the implicit `-m tcp`/`-m udp` dropped, bare addresses given their /32 or /128. Rules rendered by rule-render.ts
// are already canonical, so a rule and its read-back compare equal as text. Pure.
import { CHAIN_PREFIX, HOOK_CHAINS, OUR_CHAINS } from './rule-plan.js';

export interface SavedRule {
  readonly chain: string;
  /** Canonical text after "-A <chain> ". */
  readonly spec: string;
}

export interface NatTable {
  /** Every chain of the table (built-in and user-defined) in the order listed. */
  readonly chains: readonly string[];
  /** Every rule in the order listed. */
  readonly rules: readonly SavedRule[];
}

export const EMPTY_NAT: NatTable = { chains: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'], rules: [] };

/** Split a rule text into words, honouring "double" and 'single' quotes and backslash escapes. */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] ?? '';
    if (quote !== undefined) {
      if (ch === '\\' && quote === '"' && i + 1 < text.length) { cur += text[++i] ?? ''; continue; }
      if (ch === quote) { quote = undefined; continue; }
      cur += ch;
      continue;
    }
    if (ch === '"' || ch === "'") { quote = ch; inWord = true; continue; }
    if (ch === '\\' && i + 1 < text.length) { cur += text[++i] ?? ''; inWord = true; continue; }
    if (/\s/.test(ch)) {
      if (inWord) { out.push(cur); cur = ''; inWord = false; }
      continue;
    }
    cur += ch;
    inWord = true;
  }
  if (inWord) out.push(cur);
  return out;
}

function quoteWord(w: string): string {
  if (w !== '' && !/[\s"'\\]/.test(w)) return w;
  return `"${w.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function withPrefix(addr: string): string {
  if (addr.includes('/')) return addr;
  return addr.includes(':') ? `${addr}/128` : `${addr}/32`;
}

/** The canonical form of a rule's words after the chain name ("-p tcp -m tcp --dport 80" -> "-p tcp --dport 80"). */
export function canonicalSpec(words: readonly string[]): string {
  const out: string[] = [];
  let proto: string | undefined;
  for (let i = 0; i < words.length; i++) {
    const w = words[i] ?? '';
    const next = words[i + 1];
    if ((w === '-p' || w === '--protocol') && next !== undefined) { proto = next; out.push('-p', next); i++; continue; }
    if ((w === '-m' || w === '--match') && next !== undefined) {
      // The protocol's own match is implicit once -p names it; iptables-save adds it, restore input may not.
      if (next === proto && (next === 'tcp' || next === 'udp')) { i++; continue; }
      out.push('-m', next);
      i++;
      continue;
    }
    if ((w === '-s' || w === '-d' || w === '--source' || w === '--destination') && next !== undefined) {
      out.push(w.length === 2 ? w : w === '--source' ? '-s' : '-d', withPrefix(next));
      i++;
      continue;
    }
    if (w === '--to-port') { out.push('--to-ports'); continue; }
    if (w === '--jump') { out.push('-j'); continue; }
    out.push(w);
  }
  return out.map(quoteWord).join(' ');
}

/** One "-A CHAIN ..." line (optionally with a "[pkts:bytes]" counter prefix) -> rule; anything else -> undefined. */
export function parseRuleLine(line: string): SavedRule | undefined {
  const t = line.trim().replace(/^\[\d+:\d+\]\s+/, '');
  if (!t.startsWith('-A ')) return undefined;
  const words = tokenize(t);
  const chain = words[1];
  if (chain === undefined) return undefined;
  return { chain, spec: canonicalSpec(words.slice(2)) };
}

export interface CountedRule {
  readonly chain: string;
  /** 1-based position in its chain (what `iptables -L --line-numbers` shows). */
  readonly position: number;
  /** Canonical text after "-A CHAIN ". */
  readonly spec: string;
  readonly packets: number;
  readonly bytes: number;
}

export interface CountedNatTable {
  readonly chains: readonly string[];
  /** Built-in chains' policies ("ACCEPT") with their counters. */
  readonly policies: Readonly<Record<string, { readonly policy: string; readonly packets: number; readonly bytes: number }>>;
  readonly rules: readonly CountedRule[];
}

/**
 * The nat table of `iptables-save -c` output with each rule's position in its chain and its [packets:bytes] counters
 * (0 without -c) and the built-in chains' policies, for `remora explain`; undefined without a *nat block.
 */
export function parseCountedNat(saveOutput: string): CountedNatTable | undefined {
  let inNat = false;
  let found = false;
  const chains: string[] = [];
  const policies: Record<string, { policy: string; packets: number; bytes: number }> = {};
  const rules: CountedRule[] = [];
  const positions = new Map<string, number>();
  for (const raw of saveOutput.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) { inNat = line === '*nat'; found ||= inNat; continue; }
    if (!inNat) continue;
    if (line === 'COMMIT') { inNat = false; continue; }
    if (line.startsWith(':')) {
      const m = /^:(\S+)(?:\s+(\S+))?(?:\s+\[(\d+):(\d+)\])?/.exec(line);
      if (m === null) continue;
      const name = m[1] ?? '';
      if (!chains.includes(name)) chains.push(name);
      if (m[2] !== undefined && m[2] !== '-') policies[name] = { policy: m[2], packets: Number(m[3] ?? 0), bytes: Number(m[4] ?? 0) };
      continue;
    }
    const rule = parseRuleLine(line);
    if (rule === undefined) continue;
    const counters = /^\[(\d+):(\d+)\]/.exec(line);
    const position = (positions.get(rule.chain) ?? 0) + 1;
    positions.set(rule.chain, position);
    rules.push({ ...rule, position, packets: Number(counters?.[1] ?? 0), bytes: Number(counters?.[2] ?? 0) });
  }
  return found ? { chains, policies, rules } : undefined;
}

/** The nat table from iptables-save output, or undefined when the output has no "*nat" block. */
export function parseNatTable(saveOutput: string): NatTable | undefined {
  const counted = parseCountedNat(saveOutput);
  return counted === undefined ? undefined : { chains: counted.chains, rules: counted.rules.map((x) => ({ chain: x.chain, spec: x.spec })) };
}

/** The chain a rule jumps to (`-j X` / `-g X`), if any. */
export function ruleTarget(spec: string): string | undefined {
  const words = tokenize(spec);
  for (let i = 0; i < words.length - 1; i++) {
    if (words[i] === '-j' || words[i] === '-g' || words[i] === '--goto') return words[i + 1];
  }
  return undefined;
}

/** Rules outside our chains that jump into one of `targets` (default: any REMORA_ chain). */
export function jumpsInto(table: NatTable, targets?: readonly string[]): SavedRule[] {
  return table.rules.filter((r) => {
    if (r.chain.startsWith(CHAIN_PREFIX)) return false;
    const t = ruleTarget(r.spec);
    if (t === undefined) return false;
    return targets === undefined ? t.startsWith(CHAIN_PREFIX) : targets.includes(t);
  });
}

/** Our chains (any REMORA_ prefix) present in the table. */
export function ourChainsIn(table: NatTable): string[] {
  return table.chains.filter((c) => c.startsWith(CHAIN_PREFIX));
}

/** True when the table holds anything of ours (a REMORA_ chain or a jump into one). */
export function hasOurObjects(table: NatTable): boolean {
  return ourChainsIn(table).length > 0 || jumpsInto(table).length > 0;
}

/**
 * The part of a table the verifier compares, as lines: for PREROUTING and OUTPUT the jumps into our chains, then
 * for each of our chains a ":CHAIN" line (when it exists) followed by its rules.
 */
export function ourView(table: NatTable): string[] {
  const lines: string[] = [];
  for (const hook of HOOK_CHAINS) {
    for (const r of jumpsInto(table, OUR_CHAINS)) if (r.chain === hook) lines.push(`-A ${r.chain} ${r.spec}`);
  }
  for (const chain of OUR_CHAINS) {
    if (!table.chains.includes(chain)) continue;
    lines.push(`:${chain}`);
    for (const r of table.rules) if (r.chain === chain) lines.push(`-A ${r.chain} ${r.spec}`);
  }
  return lines;
}

/** Count "-A" lines in iptables-save output (all tables): how much a backend is in use. */
export function countRules(saveOutput: string): number {
  return saveOutput.split('\n').filter((l) => parseRuleLine(l) !== undefined).length;
}

/** Save output without lines that change between identical rulesets (comments with dates, counters). */
export function stableSaveText(saveOutput: string): string {
  return saveOutput
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, '[0:0]').trimEnd())
    .join('\n');
}
