// Talking to iptables-save / iptables-restore for one or more address families, as one transaction as far as the
// kernel lets us: every family's input is validated with `--test` before any is applied; each family is applied with
// one `--noflush` restore (atomic for that family); when a later family fails, the families already changed get
// their nat table back from the `iptables-save -t nat` taken before (`iptables-restore -T nat`), so nothing is left
// half-applied. Errors carry iptables' own stderr.
import type { IpFamily } from '../core/addr.js';
import { RemoraError, type RemoraErrorCode } from '../core/errors.js';
import { formatCommand, type CommandResult, type CommandRunner } from './command-runner.js';
import { parseNatTable, EMPTY_NAT, type NatTable } from './rule-readback.js';

export interface FamilyTools {
  readonly family: IpFamily;
  /** e.g. "iptables-nft-save" (or a path). */
  readonly save: string;
  readonly restore: string;
}

export interface XtablesContext {
  readonly run: CommandRunner;
  /** Environment of the iptables processes (XTABLES_LOCKFILE for legacy). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Seconds iptables-restore waits for the xtables lock (`-w`). */
  readonly waitSeconds: number;
  readonly timeoutMs: number;
}

export interface FamilyChange {
  readonly tools: FamilyTools;
  /** `iptables-save -t nat` output taken before the change (what a rollback restores). */
  readonly before: string;
  /** The restore input (for --noflush). */
  readonly input: string;
}

export function familyLabel(family: IpFamily): string {
  return family === 6 ? 'IPv6' : 'IPv4';
}

function stderrText(r: CommandResult): string {
  const t = r.stderr.trim();
  return t === '' ? `exit code ${r.code}` : t;
}

/** The RemoraError for a failed iptables command. */
export function commandError(fallback: RemoraErrorCode, what: string, cmd: string, args: readonly string[], r: CommandResult): RemoraError {
  const command = formatCommand(cmd, args);
  if (r.spawnError === 'ENOENT') {
    return new RemoraError('REMORA_ERR_IPTABLES_MISSING', `${what}: ${cmd} not found (install iptables, or set iptables_bin_dir)`,
      { details: { command } });
  }
  if (r.spawnError !== undefined) {
    return new RemoraError(fallback, `${what}: cannot run ${cmd}: ${r.spawnError}`, { details: { command } });
  }
  if (/permission denied|you must be root|operation not permitted/i.test(r.stderr)) {
    return new RemoraError('REMORA_ERR_PERMISSION', `${what}: ${command} was refused: ${stderrText(r)} (needs root or CAP_NET_ADMIN + CAP_NET_RAW)`,
      { details: { command } });
  }
  return new RemoraError(fallback, `${what}: ${command} failed: ${stderrText(r)}`, { details: { command, stderr: r.stderr } });
}

function opts(ctx: XtablesContext, input?: string): { env: Readonly<Record<string, string | undefined>>; timeoutMs: number; input?: string } {
  return input === undefined ? { env: ctx.env, timeoutMs: ctx.timeoutMs } : { env: ctx.env, timeoutMs: ctx.timeoutMs, input };
}

/** `iptables-save -t nat`: the raw text and the parsed table (empty when the table does not exist yet). */
export async function readNat(ctx: XtablesContext, tools: FamilyTools): Promise<{ text: string; table: NatTable }> {
  const args = ['-t', 'nat'];
  const r = await ctx.run(tools.save, args, opts(ctx));
  if (r.code !== 0) throw commandError('REMORA_ERR_RULES_READ', `reading the ${familyLabel(tools.family)} nat table`, tools.save, args, r);
  return { text: r.stdout, table: parseNatTable(r.stdout) ?? EMPTY_NAT };
}

export function restoreArgs(ctx: XtablesContext, extra: readonly string[]): string[] {
  return [...extra, '-w', String(ctx.waitSeconds)];
}

/** Validate restore input without applying it (`--test --noflush`). */
export async function testRestore(ctx: XtablesContext, tools: FamilyTools, input: string): Promise<void> {
  const args = restoreArgs(ctx, ['--test', '--noflush']);
  const r = await ctx.run(tools.restore, args, opts(ctx, input));
  if (r.code !== 0) {
    throw commandError('REMORA_ERR_RULES_APPLY', `validating the ${familyLabel(tools.family)} rules (nothing was changed)`, tools.restore, args, r);
  }
}

async function restoreNoflush(ctx: XtablesContext, tools: FamilyTools, input: string): Promise<CommandResult & { args: string[] }> {
  const args = restoreArgs(ctx, ['--noflush']);
  return { ...(await ctx.run(tools.restore, args, opts(ctx, input))), args };
}

/** Put back the nat tables saved before; returns the problems (empty when every family was restored). */
export async function rollback(ctx: XtablesContext, changed: readonly FamilyChange[]): Promise<string[]> {
  const problems: string[] = [];
  for (const c of [...changed].reverse()) {
    const args = restoreArgs(ctx, ['-T', 'nat']);
    const r = await ctx.run(c.tools.restore, args, opts(ctx, c.before));
    if (r.code !== 0) problems.push(`${familyLabel(c.tools.family)}: ${formatCommand(c.tools.restore, args)} failed: ${stderrText(r)}`);
  }
  return problems;
}

export function rollbackSuffix(changed: readonly FamilyChange[], problems: readonly string[]): string {
  if (changed.length === 0) return 'nothing had been changed';
  const families = changed.map((c) => familyLabel(c.tools.family)).join(' and ');
  return problems.length === 0
    ? `${families} rolled back to the previous rules`
    : `ROLLBACK FAILED, the ${families} rules may be half-applied: ${problems.join('; ')}`;
}

/**
 * Apply the families in order (the caller has validated every one with testRestore first). On failure the families
 * already applied are rolled back and a RemoraError (REMORA_ERR_RULES_APPLY, or a more specific code) is thrown.
 * Resolves with the changes applied.
 */
export async function applyFamilies(ctx: XtablesContext, changes: readonly FamilyChange[]): Promise<readonly FamilyChange[]> {
  const applied: FamilyChange[] = [];
  for (const c of changes) {
    const r = await restoreNoflush(ctx, c.tools, c.input);
    if (r.code !== 0) {
      const problems = await rollback(ctx, applied);
      const err = commandError('REMORA_ERR_RULES_APPLY', `applying the ${familyLabel(c.tools.family)} rules`, c.tools.restore, r.args, r);
      throw new RemoraError(err.code, `${err.message}; ${rollbackSuffix(applied, problems)}`, { details: { ...err.details, rolledBack: problems.length === 0 } });
    }
    applied.push(c);
  }
  return applied;
}

