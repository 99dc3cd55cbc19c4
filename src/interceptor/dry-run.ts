// The text `remora init --dry-run` prints: for each address family a header line naming the restore binary, then
// exactly the iptables-restore input that would be applied (every "#" line is a comment to iptables-restore, so a
// block can be fed to it as is). When the current state could not be read (not root, no iptables) the input is
// rendered against an empty nat table and a "#" line says so. Pure; the golden files in test/netns/golden are this.
import type { IpFamily } from '../core/addr.js';
import type { BackendName } from './iptables-backend.js';
import { familyLabel } from './rule-apply.js';
import { planRules, type PlanOptions } from './rule-plan.js';
import { renderApplyInput, renderCleanupInput } from './rule-render.js';
import { EMPTY_NAT, type NatTable } from './rule-readback.js';

export interface DryRunFamily {
  readonly family: IpFamily;
  /** The restore binary (name or path). */
  readonly restore: string;
  /** The current nat table, or why it could not be read. */
  readonly state: { readonly table: NatTable } | { readonly unread: string };
}

export interface DryRunInput {
  readonly mode: 'apply' | 'cleanup';
  readonly options: PlanOptions;
  readonly backend: BackendName;
  readonly families: readonly DryRunFamily[];
  /** Families not configured, with the reason ("ipv6 = off"). */
  readonly skipped: readonly { readonly family: IpFamily; readonly reason: string }[];
  /** Extra "#" lines after the first line (e.g. "backend guessed: ..."). */
  readonly notes?: readonly string[];
}

export function renderDryRun(input: DryRunInput): string {
  const lines: string[] = [`# remora init --dry-run${input.mode === 'cleanup' ? ' --cleanup' : ''}: nothing is changed`];
  for (const n of input.notes ?? []) lines.push(`# ${n}`);
  for (const f of input.families) {
    lines.push(`# ${familyLabel(f.family)}: ${f.restore} --noflush (backend ${input.backend})`);
    let table: NatTable;
    if ('unread' in f.state) {
      lines.push(`# current ${familyLabel(f.family)} rules not read (${f.state.unread}); rendered against an empty nat table`);
      table = EMPTY_NAT;
    } else {
      table = f.state.table;
    }
    if (input.mode === 'apply') {
      lines.push(renderApplyInput(planRules(f.family, input.options), table).trimEnd());
    } else {
      const cleanup = renderCleanupInput(table);
      lines.push(cleanup === undefined ? '# nothing of remora\'s to remove' : cleanup.trimEnd());
    }
  }
  for (const s of input.skipped) lines.push(`# ${familyLabel(s.family)}: not configured (${s.reason})`);
  return `${lines.join('\n')}\n`;
}
