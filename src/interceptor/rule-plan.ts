// The rule model of `remora init`: options -> the nat rules for one address family. Pure: no I/O, no defaults of its
// own (the option set has them). The renderer turns this model into iptables-restore input, the verifier compares
// it with what iptables-save reads back, and docs/init.md explains every rule.
import { normalizePortRanges, type Cidr, type IpFamily, type PortRange } from '../core/addr.js';
import type { CidrSelection, PortSelection } from '../config/value-parsers.js';

/** Our chains in table nat, in the order they are declared (the order iptables-save lists them). */
export const CHAINS = {
  inbound: 'REMORA_INBOUND',
  inRedirect: 'REMORA_IN_REDIRECT',
  output: 'REMORA_OUTPUT',
  redirect: 'REMORA_REDIRECT',
} as const;
export const OUR_CHAINS: readonly string[] = [CHAINS.inbound, CHAINS.inRedirect, CHAINS.output, CHAINS.redirect];
/** Every chain whose name starts with this is ours (cleanup removes all of them). */
export const CHAIN_PREFIX = 'REMORA_';
/** Built-in nat chains that jump to ours. */
export const HOOK_CHAINS: readonly string[] = ['PREROUTING', 'OUTPUT'];
/** `multiport` accepts at most 15 port slots per rule; a range takes two. */
export const MULTIPORT_SLOTS = 15;

export type RuleTarget =
  | { readonly kind: 'jump'; readonly chain: string }
  | { readonly kind: 'return' }
  | { readonly kind: 'redirect'; readonly port: number };

/** One rule; the fields are rendered in the order iptables-save prints them (-s -d -o -p, matches, -j). */
export interface PlannedRule {
  readonly chain: string;
  readonly source?: string;
  readonly destination?: { readonly cidr: string; readonly negate: boolean };
  readonly outInterface?: string;
  readonly protocol?: 'tcp';
  /** Destination ports as one `-m multiport --dports` match (at most MULTIPORT_SLOTS slots). */
  readonly dports?: readonly PortRange[];
  readonly owner?: { readonly kind: 'uid' | 'gid'; readonly id: number; readonly negate: boolean };
  readonly target: RuleTarget;
  /** Why the rule exists (for logs and docs; never rendered into the rules). */
  readonly why: string;
}

export interface FamilyPlan {
  readonly family: IpFamily;
  /** Our chains, declared (created or flushed) on every apply. */
  readonly chains: readonly string[];
  /** Jumps from the built-in chains (PREROUTING, OUTPUT) into ours; added only when missing. */
  readonly jumps: readonly PlannedRule[];
  /** The contents of our chains, chain by chain in `chains` order. */
  readonly rules: readonly PlannedRule[];
  /** Facts about this family's plan worth a log line (e.g. "no outbound CIDR of this family"). */
  readonly notes: readonly string[];
}

/** The option values the plan depends on (a subset of `remora init`'s options). */
export interface PlanOptions {
  readonly outboundPort: number;
  readonly inboundPort: number;
  readonly proxyUid: readonly number[];
  readonly proxyGid: readonly number[];
  readonly inboundPorts: PortSelection;
  readonly excludeInboundPorts: readonly PortRange[];
  readonly proxyPorts: readonly PortRange[];
  readonly outboundCidrs: CidrSelection;
  readonly excludeOutboundCidrs: readonly Cidr[];
  readonly excludeOutboundPorts: readonly PortRange[];
}

const LOOPBACK: Record<IpFamily, string> = { 4: '127.0.0.1/32', 6: '::1/128' };
/** The source address the proxy uses when it passes inbound connections on to the app. */
export const PASSTHROUGH_SOURCE: Record<IpFamily, string> = { 4: '127.0.0.6/32', 6: '::6/128' };

/** Split port ranges into groups of at most `slots` multiport slots (a single port takes 1, a range 2). */
export function chunkPorts(ranges: readonly PortRange[], slots = MULTIPORT_SLOTS): PortRange[][] {
  const out: PortRange[][] = [];
  let current: PortRange[] = [];
  let used = 0;
  for (const r of ranges) {
    const cost = r.from === r.to ? 1 : 2;
    if (used + cost > slots) {
      out.push(current);
      current = [];
      used = 0;
    }
    current.push(r);
    used += cost;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** `ranges` minus `remove` (both normalised). */
export function subtractPorts(ranges: readonly PortRange[], remove: readonly PortRange[]): PortRange[] {
  let rest = normalizePortRanges(ranges);
  for (const cut of normalizePortRanges(remove)) {
    const next: PortRange[] = [];
    for (const r of rest) {
      if (cut.to < r.from || cut.from > r.to) { next.push(r); continue; }
      if (cut.from > r.from) next.push({ from: r.from, to: cut.from - 1 });
      if (cut.to < r.to) next.push({ from: cut.to + 1, to: r.to });
    }
    rest = next;
  }
  return rest;
}

function inboundRules(o: PlanOptions): { rules: PlannedRule[]; enabled: boolean; notes: string[] } {
  const notes: string[] = [];
  const never = normalizePortRanges([...o.proxyPorts, ...o.excludeInboundPorts]);
  const rules: PlannedRule[] = [];
  if (o.inboundPorts.all) {
    for (const chunk of chunkPorts(never)) {
      rules.push({
        chain: CHAINS.inbound, protocol: 'tcp', dports: chunk, target: { kind: 'return' },
        why: 'inbound ports never captured: the proxy\'s own ports and exclude_inbound_ports',
      });
    }
    rules.push({
      chain: CHAINS.inbound, protocol: 'tcp', target: { kind: 'jump', chain: CHAINS.inRedirect },
      why: 'every other inbound TCP connection goes to the inbound listener',
    });
    return { rules, enabled: true, notes };
  }
  const captured = subtractPorts(o.inboundPorts.ranges, never);
  if (o.inboundPorts.ranges.length > 0 && captured.length === 0) {
    notes.push('every port of inbound_ports is excluded (proxy_ports / exclude_inbound_ports): no inbound capture');
  }
  for (const chunk of chunkPorts(captured)) {
    rules.push({
      chain: CHAINS.inbound, protocol: 'tcp', dports: chunk, target: { kind: 'jump', chain: CHAINS.inRedirect },
      why: 'inbound ports listed in inbound_ports (minus excluded and proxy ports) go to the inbound listener',
    });
  }
  return { rules, enabled: rules.length > 0, notes };
}

function ownerRules(family: IpFamily, kind: 'uid' | 'gid', id: number): PlannedRule[] {
  return [
    {
      chain: CHAINS.output, destination: { cidr: LOOPBACK[family], negate: true }, outInterface: 'lo', protocol: 'tcp',
      owner: { kind, id, negate: false }, target: { kind: 'jump', chain: CHAINS.inRedirect },
      why: `the proxy (${kind} ${id}) calling its own pod through a service address: to the inbound listener`,
    },
    {
      chain: CHAINS.output, outInterface: 'lo', owner: { kind, id, negate: true }, target: { kind: 'return' },
      why: `app-to-app traffic over lo (not ${kind} ${id}) is never captured`,
    },
    {
      chain: CHAINS.output, owner: { kind, id, negate: false }, target: { kind: 'return' },
      why: `the proxy's own outbound traffic (${kind} ${id}) is never captured: loop prevention`,
    },
  ];
}

function outputRules(family: IpFamily, o: PlanOptions): { rules: PlannedRule[]; notes: string[] } {
  const notes: string[] = [];
  const rules: PlannedRule[] = [{
    chain: CHAINS.output, source: PASSTHROUGH_SOURCE[family], outInterface: 'lo', target: { kind: 'return' },
    why: 'the proxy passing an inbound connection on to the app (source 127.0.0.6 / ::6) is never captured',
  }];
  for (const uid of o.proxyUid) rules.push(...ownerRules(family, 'uid', uid));
  for (const gid of o.proxyGid) rules.push(...ownerRules(family, 'gid', gid));
  rules.push({
    chain: CHAINS.output, destination: { cidr: LOOPBACK[family], negate: false }, target: { kind: 'return' },
    why: 'connections to the loopback address are never captured',
  });
  for (const cidr of o.excludeOutboundCidrs.filter((c) => c.family === family)) {
    rules.push({
      chain: CHAINS.output, destination: { cidr: cidr.text, negate: false }, target: { kind: 'return' },
      why: 'exclude_outbound_cidrs',
    });
  }
  for (const chunk of chunkPorts(normalizePortRanges(o.excludeOutboundPorts))) {
    rules.push({
      chain: CHAINS.output, protocol: 'tcp', dports: chunk, target: { kind: 'return' },
      why: 'exclude_outbound_ports',
    });
  }
  if (o.outboundCidrs.all) {
    rules.push({
      chain: CHAINS.output, target: { kind: 'jump', chain: CHAINS.redirect },
      why: 'every other outbound TCP connection goes to the outbound listener',
    });
  } else {
    const mine = o.outboundCidrs.cidrs.filter((c) => c.family === family);
    if (o.outboundCidrs.cidrs.length > 0 && mine.length === 0) {
      notes.push(`outbound_cidrs has no IPv${family} CIDR: no IPv${family} outbound capture`);
    }
    for (const cidr of mine) {
      rules.push({
        chain: CHAINS.output, destination: { cidr: cidr.text, negate: false }, target: { kind: 'jump', chain: CHAINS.redirect },
        why: 'outbound_cidrs: connections to this CIDR go to the outbound listener',
      });
    }
  }
  return { rules, notes };
}

/** The complete nat rule set of one address family. */
export function planRules(family: IpFamily, o: PlanOptions): FamilyPlan {
  const inbound = inboundRules(o);
  const output = outputRules(family, o);
  const jumps: PlannedRule[] = [];
  if (inbound.enabled) {
    jumps.push({
      chain: 'PREROUTING', protocol: 'tcp', target: { kind: 'jump', chain: CHAINS.inbound },
      why: 'inbound TCP enters remora\'s inbound chain',
    });
  }
  jumps.push({
    chain: 'OUTPUT', protocol: 'tcp', target: { kind: 'jump', chain: CHAINS.output },
    why: 'outbound TCP enters remora\'s outbound chain',
  });
  const rules: PlannedRule[] = [
    ...inbound.rules,
    {
      chain: CHAINS.inRedirect, protocol: 'tcp', target: { kind: 'redirect', port: o.inboundPort },
      why: 'the inbound listener',
    },
    ...output.rules,
    {
      chain: CHAINS.redirect, protocol: 'tcp', target: { kind: 'redirect', port: o.outboundPort },
      why: 'the outbound listener',
    },
  ];
  const notes = [...inbound.notes, ...output.notes];
  if (!inbound.enabled) notes.push('no inbound capture: no jump from PREROUTING');
  return { family, chains: OUR_CHAINS, jumps, rules, notes };
}
