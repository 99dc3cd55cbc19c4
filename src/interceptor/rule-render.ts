// Rendering the rule model to iptables-restore input (for `--noflush`), in exactly the form iptables-save prints
// rules (checked against iptables-nft and iptables-legacy 1.8), so that what we apply and what we read back compare
// as text. Our chains are declared with ":CHAIN - [0:0]", which creates or flushes them inside the same COMMIT:
// applying is atomic per family and idempotent. Jumps from PREROUTING/OUTPUT are added only when missing; stale or
// duplicate jumps into our chains are deleted. Pure.
import { formatPortRange } from '../core/addr.js';
import { HOOK_CHAINS, OUR_CHAINS, type FamilyPlan, type PlannedRule } from './rule-plan.js';
import { canonicalSpec, jumpsInto, ourChainsIn, tokenize, type NatTable } from './rule-readback.js';

function isZeroPrefix(cidr: string): boolean {
  return cidr.endsWith('/0');
}

/** The words after "-A <chain>", in iptables-save's order. */
export function renderSpec(rule: PlannedRule): string {
  const w: string[] = [];
  if (rule.source !== undefined && !isZeroPrefix(rule.source)) w.push('-s', rule.source);
  // iptables-save omits an address match on a /0 network, so we never write one.
  if (rule.destination !== undefined && !(isZeroPrefix(rule.destination.cidr) && !rule.destination.negate)) {
    if (rule.destination.negate) w.push('!');
    w.push('-d', rule.destination.cidr);
  }
  if (rule.outInterface !== undefined) w.push('-o', rule.outInterface);
  if (rule.protocol !== undefined) w.push('-p', rule.protocol);
  if (rule.dports !== undefined) {
    w.push('-m', 'multiport', '--dports', rule.dports.map((r) => formatPortRange(r, ':')).join(','));
  }
  if (rule.owner !== undefined) {
    w.push('-m', 'owner');
    if (rule.owner.negate) w.push('!');
    w.push(rule.owner.kind === 'uid' ? '--uid-owner' : '--gid-owner', String(rule.owner.id));
  }
  switch (rule.target.kind) {
    case 'jump': w.push('-j', rule.target.chain); break;
    case 'return': w.push('-j', 'RETURN'); break;
    case 'redirect': w.push('-j', 'REDIRECT', '--to-ports', String(rule.target.port)); break;
  }
  return w.join(' ');
}

export function renderRuleLine(rule: PlannedRule): string {
  return `-A ${rule.chain} ${renderSpec(rule)}`;
}

/** What the verifier expects to read back (same shape as rule-readback's ourView). */
export function expectedView(plan: FamilyPlan): string[] {
  const lines: string[] = [];
  for (const hook of HOOK_CHAINS) {
    for (const j of plan.jumps) if (j.chain === hook) lines.push(renderRuleLine(j));
  }
  for (const chain of plan.chains) {
    lines.push(`:${chain}`);
    for (const r of plan.rules) if (r.chain === chain) lines.push(renderRuleLine(r));
  }
  // Canonicalise our own rendering too, so a renderer slip shows up in unit tests rather than as a verify failure.
  return lines.map((l) => (l.startsWith('-A ') ? `-A ${l.split(' ')[1] ?? ''} ${canonicalSpec(tokenize(l).slice(2))}` : l));
}

/** The "-D" lines for jumps into our chains that must go, and the jumps that must be added. */
export function jumpChanges(plan: FamilyPlan, current: NatTable): { remove: string[]; add: string[] } {
  const wanted = plan.jumps.map((j) => ({ chain: j.chain, spec: renderSpec(j) }));
  const kept = new Set<string>();
  const remove: string[] = [];
  for (const r of jumpsInto(current, OUR_CHAINS)) {
    const key = `${r.chain} ${r.spec}`;
    const isWanted = wanted.some((w) => w.chain === r.chain && w.spec === r.spec);
    if (isWanted && !kept.has(key)) { kept.add(key); continue; }
    remove.push(`-D ${r.chain} ${r.spec}`);
  }
  const add = wanted.filter((w) => !kept.has(`${w.chain} ${w.spec}`)).map((w) => `-A ${w.chain} ${w.spec}`);
  return { remove, add };
}

/** iptables-restore input (for `--noflush`) that brings `current` to the plan. */
export function renderApplyInput(plan: FamilyPlan, current: NatTable): string {
  const { remove, add } = jumpChanges(plan, current);
  const lines = [
    '*nat',
    ...plan.chains.map((c) => `:${c} - [0:0]`),
    ...remove,
    ...add,
    ...plan.rules.map(renderRuleLine),
    'COMMIT',
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * iptables-restore input (for `--noflush`) that removes our chains (any REMORA_ chain) and every jump into them,
 * and nothing else; undefined when there is nothing of ours.
 */
export function renderCleanupInput(current: NatTable): string | undefined {
  const chains = ourChainsIn(current);
  const jumps = jumpsInto(current);
  if (chains.length === 0 && jumps.length === 0) return undefined;
  const lines = [
    '*nat',
    ...jumps.map((r) => `-D ${r.chain} ${r.spec}`),
    ...chains.map((c) => `-F ${c}`),
    ...chains.map((c) => `-X ${c}`),
    'COMMIT',
  ];
  return `${lines.join('\n')}\n`;
}
