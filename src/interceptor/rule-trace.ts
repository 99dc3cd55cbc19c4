// Which nat rule captures a connection (`remora explain`): the nat table as `iptables-save -c` prints it (rules with
// their [packets:bytes] counters) and a simulated first packet of a TCP connection, walked through the chains in
// order from the hook (OUTPUT for a connection a local process opens, PREROUTING for one arriving from the network)
// the way netfilter walks them: jumps into user chains, RETURN, the end of a chain, REDIRECT. The result names every
// rule looked at, whether it matched and why, and the rule that decided: the REDIRECT (captured, to which port) or the
// rule that let the packet go (not captured, and why that rule exists). Pure: the caller reads the rules.
//
// Counters: the nat table sees only the first packet of each connection, so a rule's packet counter is the number of
// connections it has matched since the rules were written (or the counters zeroed).
//
// What can be evaluated: -s/-d (with !), -o/-i, -p, --dport/--dports (multiport), owner --uid-owner/--gid-owner (with
// !), comments, and the targets REDIRECT, RETURN, ACCEPT, DNAT and jumps/gotos into user chains; a non-terminating
// target (LOG, MARK, ...) is passed over. A match it does not know makes the trace stop at that rule with "unknown"
// rather than guess.
import { cidrContains, type IpFamily } from '../core/addr.js';
import { CHAIN_PREFIX, CHAINS } from './rule-plan.js';
import { tokenize, type CountedNatTable } from './rule-readback.js';

/** The first packet of a TCP connection, as far as the nat rules can tell it apart. */
export interface TracedPacket {
  /** outbound: a local process connects (nat OUTPUT); inbound: a connection arrives from the network (PREROUTING). */
  readonly direction: 'outbound' | 'inbound';
  readonly family: IpFamily;
  readonly destination: string;
  readonly port: number;
  /** The source address, when known (inbound: the client's; outbound: undefined = the pod's own address). */
  readonly source?: string | undefined;
  /** The connecting process's uid and gid (outbound); undefined = an application uid that no owner rule names. */
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  /** The interface the packet leaves by (outbound): 'lo' for a local destination, else undefined (not lo). */
  readonly outInterface?: 'lo' | undefined;
}

export type TraceTarget =
  | { readonly kind: 'redirect'; readonly port: number }
  | { readonly kind: 'return' }
  | { readonly kind: 'accept' }
  | { readonly kind: 'jump'; readonly chain: string; readonly goto: boolean }
  | { readonly kind: 'other'; readonly name: string; readonly terminating: boolean };

export interface TraceStep {
  readonly chain: string;
  readonly position: number;
  /** "-A CHAIN SPEC" */
  readonly rule: string;
  readonly packets: number;
  readonly bytes: number;
  /** 'unknown': a match this trace cannot evaluate. */
  readonly matched: boolean | 'unknown';
  /** Why it matched (every condition) or the first condition that does not hold. */
  readonly why: string;
  /** What the rule is for (remora's rules by their shape). */
  readonly purpose: string;
}

export type TraceVerdict =
  /** `rule`: the REDIRECT; `via`: the rule that sent the packet to it (the capture decision, e.g. REMORA_OUTPUT's jump). */
  | { readonly kind: 'captured'; readonly port: number; readonly rule: TraceStep; readonly via: TraceStep | undefined; readonly reason: string }
  | { readonly kind: 'not-captured'; readonly rule: TraceStep | undefined; readonly reason: string }
  | { readonly kind: 'unknown'; readonly rule: TraceStep; readonly reason: string };

export interface RuleTrace {
  readonly hook: 'OUTPUT' | 'PREROUTING';
  /** Every rule the packet was compared with, in order. */
  readonly steps: readonly TraceStep[];
  readonly verdict: TraceVerdict;
}

type Verdict = { readonly ok: boolean | 'unknown'; readonly why: string };

/** Targets that end the walk without a redirect to the proxy, and targets the packet passes (the walk goes on). */
const TERMINATING_TARGETS: ReadonlySet<string> = new Set(['DNAT', 'SNAT', 'MASQUERADE', 'NETMAP', 'DROP', 'REJECT']);
const PASSING_TARGETS: ReadonlySet<string> = new Set(['LOG', 'NFLOG', 'MARK', 'CONNMARK', 'TRACE', 'CT', 'AUDIT']);

function ports(list: string): { from: number; to: number }[] {
  return list.split(',').map((p) => {
    const [a = '', b] = p.split(':');
    return { from: Number(a), to: Number(b ?? a) };
  });
}

function describePacket(p: TracedPacket): string {
  return `${p.family === 6 ? `[${p.destination}]` : p.destination}:${p.port}`;
}

interface ParsedRule {
  readonly checks: readonly ((p: TracedPacket) => Verdict)[];
  readonly target: TraceTarget;
}

/** The rule's conditions and target from its canonical words. */
function parseRule(spec: string): ParsedRule {
  const words = tokenize(spec);
  const checks: ((p: TracedPacket) => Verdict)[] = [];
  let target: TraceTarget = { kind: 'other', name: '(none)', terminating: false };
  let targetName: string | undefined;
  let toPort: number | undefined;
  let negate = false;
  const unknown = (what: string): void => { checks.push(() => ({ ok: 'unknown', why: `cannot evaluate "${what}"` })); };
  for (let i = 0; i < words.length; i++) {
    const w = words[i] ?? '';
    const next = words[i + 1] ?? '';
    const neg = negate;
    negate = false;
    const not = neg ? 'not ' : '';
    const holds = (ok: boolean, yes: string, no: string): Verdict => ({ ok: ok !== neg, why: ok !== neg ? yes : no });
    switch (w) {
      case '!': negate = true; break;
      case '-s': case '-d': {
        i++;
        const isSrc = w === '-s';
        checks.push((p) => {
          const addr = isSrc ? p.source : p.destination;
          if (addr === undefined) {
            // No source given: the address the kernel picks for the route (the pod's, or 127.0.0.1 / ::1 over lo), never
            // one a rule singles out (127.0.0.6 / ::6 is bound only by the proxy); only a /0 network holds it for sure.
            const any = next.endsWith('/0');
            return holds(any, `the source (not given: the kernel's choice) is ${not}in ${next}`,
              `the source (not given: the kernel's choice, not a bound ${next}) is ${neg ? '' : 'not '}in ${next}`);
          }
          const inside = cidrContains(next, addr);
          if (inside === undefined) return { ok: 'unknown', why: `cannot compare ${addr} with ${next}` };
          const what = isSrc ? 'source' : 'destination';
          return holds(inside, `${what} ${addr} is ${not}in ${next}`, `${what} ${addr} is ${neg ? '' : 'not '}in ${next}`);
        });
        break;
      }
      case '-o': case '-i': {
        i++;
        const isOut = w === '-o';
        checks.push((p) => {
          if (!isOut) return p.direction === 'inbound' ? { ok: 'unknown', why: `the input interface is not known for "-i ${next}"` } : { ok: false, why: '-i does not apply in OUTPUT' };
          const leavesLo = p.outInterface === 'lo';
          if (next === 'lo') return holds(leavesLo, `the packet ${not}leaves by lo`, `the packet ${leavesLo ? 'leaves' : 'does not leave'} by lo`);
          if (leavesLo) return holds(false, `the packet leaves by lo, not ${next}`, `the packet leaves by lo, not ${next}`);
          return { ok: 'unknown', why: `the output interface (not lo) is not known for "-o ${next}"` };
        });
        break;
      }
      case '-p': {
        i++;
        checks.push(() => holds(next === 'tcp' || next === '6', `protocol tcp`, `protocol tcp is ${neg ? '' : 'not '}${next}`));
        break;
      }
      case '-m': i++; break;
      case '--comment': i++; break;
      case '--dport': case '--dports': case '--destination-port': case '--destination-ports': {
        i++;
        const list = ports(next);
        checks.push((p) => {
          const inside = list.some((r) => p.port >= r.from && p.port <= r.to);
          return holds(inside, `port ${p.port} is ${not}in ${next}`, `port ${p.port} is ${neg ? '' : 'not '}in ${next}`);
        });
        break;
      }
      case '--syn': checks.push(() => holds(true, 'the first packet is a SYN', 'the first packet is a SYN')); break;
      case '--uid-owner': case '--gid-owner': {
        i++;
        const isUid = w === '--uid-owner';
        const id = Number(next);
        checks.push((p) => {
          if (p.direction === 'inbound') return { ok: false, why: 'owner matches apply only to locally generated packets' };
          const mine = isUid ? p.uid : (p.gid ?? p.uid);
          const kind = isUid ? 'uid' : 'gid';
          if (mine === undefined) {
            return holds(false, `the ${kind} (not given: an application's) is ${not}${next}`, `the ${kind} (not given: an application's) is ${neg ? '' : 'not '}${next}`);
          }
          return holds(mine === id, `${kind} ${mine} is ${not}${next}`, `${kind} ${mine} is ${neg ? '' : 'not '}${next}`);
        });
        break;
      }
      case '-j': case '-g': {
        i++;
        targetName = next;
        if (next === 'REDIRECT') target = { kind: 'redirect', port: 0 };
        else if (next === 'RETURN') target = { kind: 'return' };
        else if (next === 'ACCEPT') target = { kind: 'accept' };
        else if (TERMINATING_TARGETS.has(next)) target = { kind: 'other', name: next, terminating: true };
        else if (PASSING_TARGETS.has(next)) target = { kind: 'other', name: next, terminating: false };
        else target = { kind: 'jump', chain: next, goto: w === '-g' };
        break;
      }
      case '--to-ports': case '--to-port': {
        i++;
        toPort = Number(next.split('-')[0]);
        break;
      }
      case '--to-destination': i++; break;
      default:
        if (targetName === undefined) unknown(w.startsWith('-') && next !== '' && !next.startsWith('-') ? `${w} ${next}` : w);
        else if (w.startsWith('--') && next !== '' && !next.startsWith('-')) i++;
    }
  }
  if (target.kind === 'redirect') target = { kind: 'redirect', port: toPort ?? 0 };
  return { checks, target };
}

function evaluate(parsed: ParsedRule, p: TracedPacket): Verdict {
  const reasons: string[] = [];
  for (const c of parsed.checks) {
    const v = c(p);
    if (v.ok !== true) return v;
    reasons.push(v.why);
  }
  return { ok: true, why: reasons.length === 0 ? 'no condition: every packet' : reasons.join('; ') };
}

const has = (words: readonly string[], w: string): boolean => words.includes(w);
function valueAfter(words: readonly string[], w: string): string | undefined {
  const i = words.indexOf(w);
  return i < 0 ? undefined : words[i + 1];
}

/** What a rule is for, from its shape (remora init writes these; docs/init.md explains each). */
export function rulePurpose(chain: string, spec: string): string {
  const w = tokenize(spec);
  const target = valueAfter(w, '-j') ?? valueAfter(w, '-g') ?? '';
  const uid = valueAfter(w, '--uid-owner');
  const gid = valueAfter(w, '--gid-owner');
  const owner = uid !== undefined ? `uid ${uid}` : gid !== undefined ? `gid ${gid}` : undefined;
  const negOwner = w.some((x, i) => x === '!' && (w[i + 1] === '--uid-owner' || w[i + 1] === '--gid-owner'));
  const dports = valueAfter(w, '--dports') ?? valueAfter(w, '--dport');
  const dst = valueAfter(w, '-d');
  const negDst = w.some((x, i) => x === '!' && w[i + 1] === '-d');
  if (target === 'REDIRECT') {
    const port = valueAfter(w, '--to-ports') ?? valueAfter(w, '--to-port') ?? '?';
    return chain === CHAINS.inRedirect ? `to the inbound listener (port ${port})` : chain === CHAINS.redirect ? `to the outbound listener (port ${port})` : `redirect to port ${port}`;
  }
  if (chain === 'OUTPUT' && target.startsWith(CHAIN_PREFIX)) return 'outbound TCP enters remora\'s outbound chain';
  if (chain === 'PREROUTING' && target.startsWith(CHAIN_PREFIX)) return 'inbound TCP enters remora\'s inbound chain';
  if (chain === CHAINS.inbound) {
    if (target === 'RETURN' && dports !== undefined) return 'inbound ports never captured: the proxy\'s own ports and exclude_inbound_ports';
    if (target === CHAINS.inRedirect) return dports === undefined ? 'every other inbound TCP connection goes to the inbound listener' : 'inbound_ports: these ports go to the inbound listener';
  }
  if (chain === CHAINS.output) {
    const src = valueAfter(w, '-s');
    if (target === 'RETURN' && src !== undefined && has(w, '-o')) return `the proxy passing an inbound connection on to the app (source ${src}) is never captured`;
    if (owner !== undefined && target === CHAINS.inRedirect) return `the proxy (${owner}) calling its own pod through a service address: to the inbound listener`;
    if (owner !== undefined && negOwner && target === 'RETURN') return `app-to-app traffic over lo (not ${owner}) is never captured`;
    if (owner !== undefined && target === 'RETURN') return `the proxy's own outbound traffic (${owner}) is never captured: loop prevention`;
    if (target === 'RETURN' && dst !== undefined && !negDst && (dst === '127.0.0.1/32' || dst === '::1/128')) return 'connections to the loopback address are never captured';
    if (target === 'RETURN' && dst !== undefined) return 'exclude_outbound_cidrs: never captured';
    if (target === 'RETURN' && dports !== undefined) return 'exclude_outbound_ports: never captured';
    if (target === CHAINS.redirect) return dst === undefined ? 'every other outbound TCP connection goes to the outbound listener' : 'outbound_cidrs: connections to this CIDR go to the outbound listener';
  }
  if (chain.startsWith(CHAIN_PREFIX)) return 'a rule in a remora chain not written by this version of remora init';
  return 'not a remora rule';
}

const MAX_DEPTH = 16;

type WalkResult =
  | { readonly kind: 'end' }
  | { readonly kind: 'captured'; readonly port: number; readonly rule: TraceStep }
  | { readonly kind: 'let-go'; readonly rule: TraceStep; readonly how: string }
  | { readonly kind: 'unknown'; readonly rule: TraceStep; readonly why: string };

/** Walk the first packet of a connection through the nat table. */
export function traceRules(table: CountedNatTable, packet: TracedPacket): RuleTrace {
  const hook = packet.direction === 'outbound' ? 'OUTPUT' : 'PREROUTING';
  const steps: TraceStep[] = [];
  const byChain = new Map<string, CountedNatTable['rules'][number][]>();
  for (const r of table.rules) {
    const list = byChain.get(r.chain);
    if (list === undefined) byChain.set(r.chain, [r]);
    else list.push(r);
  }
  // The rule that sent the packet back from our chains (RETURN) decides "not captured" with its purpose.
  let lastReturn: TraceStep | undefined;
  const walk = (chain: string, depth: number): WalkResult => {
    if (depth > MAX_DEPTH) return { kind: 'end' };
    for (const r of byChain.get(chain) ?? []) {
      const parsed = parseRule(r.spec);
      const v = evaluate(parsed, packet);
      const step: TraceStep = {
        chain: r.chain, position: r.position, rule: `-A ${r.chain} ${r.spec}`, packets: r.packets, bytes: r.bytes,
        matched: v.ok, why: v.why, purpose: rulePurpose(r.chain, r.spec),
      };
      steps.push(step);
      if (v.ok === 'unknown') return { kind: 'unknown', rule: step, why: v.why };
      if (!v.ok) continue;
      const t = parsed.target;
      switch (t.kind) {
        case 'redirect': return { kind: 'captured', port: t.port, rule: step };
        case 'return':
          lastReturn = step;
          return { kind: 'end' };
        case 'accept': return { kind: 'let-go', rule: step, how: 'accepted (ACCEPT) before any remora rule redirected it' };
        case 'other':
          if (t.terminating) return { kind: 'let-go', rule: step, how: `${t.name}: not redirected to the proxy` };
          continue;
        case 'jump': {
          if (!byChain.has(t.chain) && !table.chains.includes(t.chain)) {
            return { kind: 'unknown', rule: step, why: `jumps to ${t.chain}, which is not in the nat table` };
          }
          const sub = walk(t.chain, depth + 1);
          if (sub.kind !== 'end') return sub;
          if (t.goto) return { kind: 'end' };
          continue;
        }
      }
    }
    return { kind: 'end' };
  };
  const r = walk(hook, 0);
  let verdict: TraceVerdict;
  if (r.kind === 'captured') {
    // The capture decision is the last matching jump before the REDIRECT that is not the hook's entry into our chains.
    const matched = steps.filter((s) => s.matched === true && s !== r.rule);
    const via = [...matched].reverse().find((s) => s.chain !== hook || !s.rule.includes(` -j ${CHAIN_PREFIX}`)) ?? matched[matched.length - 1];
    verdict = {
      kind: 'captured', port: r.port, rule: r.rule, via,
      reason: via === undefined ? r.rule.purpose : `${via.purpose} (${via.chain} #${via.position}: ${via.why}) -> ${r.rule.purpose}`,
    };
  } else if (r.kind === 'unknown') {
    verdict = { kind: 'unknown', rule: r.rule, reason: r.why };
  } else if (r.kind === 'let-go') {
    verdict = { kind: 'not-captured', rule: r.rule, reason: r.how };
  } else if (lastReturn !== undefined && lastReturn.chain.startsWith(CHAIN_PREFIX)) {
    verdict = { kind: 'not-captured', rule: lastReturn, reason: `${lastReturn.purpose} (${lastReturn.why})` };
  } else if (!steps.some((s) => s.chain.startsWith(CHAIN_PREFIX))) {
    const entered = steps.find((s) => s.chain === hook && s.rule.includes(` -j ${CHAIN_PREFIX}`));
    verdict = {
      kind: 'not-captured', rule: entered,
      reason: entered === undefined
        ? `no jump from nat ${hook} into a remora chain: nothing is captured (remora init has not run here, or the rules were flushed)`
        : `the jump into remora's chain does not match ${describePacket(packet)} (${entered.why})`,
    };
  } else {
    verdict = { kind: 'not-captured', rule: undefined, reason: `no rule redirected ${describePacket(packet)}: it reached the end of nat ${hook} (policy ${table.policies[hook]?.policy ?? 'ACCEPT'})` };
  }
  return { hook, steps, verdict };
}
