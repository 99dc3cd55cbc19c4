// `remora init`: validated options -> nat rules in this network namespace, atomically per family, verified, rolled
// back on any failure; or `--cleanup` (remove ours only), or `--dry-run` (print, change nothing, no root needed).
// Returns the exit code: 0 done, 1 failed (configuration errors never get here: they exit 2 before).
// Order: decide families (IPv6 policy) -> check privileges -> lock the namespace -> pick the backend -> read the
// current nat tables -> render -> `--test` every family -> apply every family -> ::6 on lo -> read back and compare.
// Nothing is changed before every family has been read, rendered and validated.
import { readFileSync } from 'node:fs';
import type { IpFamily } from '../core/addr.js';
import { formatPortRange } from '../core/addr.js';
import { RemoraError, isRemoraError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { initOptionSpecs } from '../config/init-options.js';
import type { OptionValues } from '../config/option-set.js';
import { runCommand, type CommandRunner } from './command-runner.js';
import { renderDryRun, type DryRunFamily } from './dry-run.js';
import { withInitLock, netnsInode } from './init-lock.js';
import { detectBackend, xtablesBinary, type BackendChoice, type BackendName } from './iptables-backend.js';
import { IF_INET6, ipv6Status, podIpv6Addresses, type Ipv6Status } from './ipv6-status.js';
import { ensureLoopbackV6, hasLoopbackV6, removeLoopbackV6 } from './loopback-address.js';
import { parsePrivileges, privilegeProblem } from './privileges.js';
import {
  applyFamilies, familyLabel, readNat, rollback, rollbackSuffix, testRestore,
  type FamilyChange, type FamilyTools, type XtablesContext,
} from './rule-apply.js';
import { diffLines } from './rule-diff.js';
import { planRules, type FamilyPlan } from './rule-plan.js';
import { hasOurObjects, ourView, type NatTable } from './rule-readback.js';
import { expectedView, renderApplyInput, renderCleanupInput } from './rule-render.js';

export type InitValues = OptionValues<typeof initOptionSpecs>;

/** Everything runInit takes from the machine; tests replace parts of it. */
export interface InitSystem {
  readonly run: CommandRunner;
  /** A file's text, or undefined when it cannot be read. */
  readonly readFile: (path: string) => string | undefined;
  readonly netnsInode: () => number | undefined;
  readonly uid: () => number | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface InitIo {
  readonly log: Logger;
  /** Where --dry-run output goes (stdout). */
  readonly out: (text: string) => void;
  readonly system?: Partial<InitSystem>;
}

const realSystem: InitSystem = {
  run: runCommand,
  readFile: (path) => {
    try { return readFileSync(path, 'utf8'); } catch { return undefined; }
  },
  netnsInode,
  uid: () => process.getuid?.(),
  env: process.env,
};

interface FamilyDecision {
  readonly family: IpFamily;
  /** A failure for this family is fatal (else it is skipped with a warning). */
  readonly required: boolean;
}

interface FamilyDecisions {
  readonly families: readonly FamilyDecision[];
  readonly skipped: readonly { readonly family: IpFamily; readonly reason: string }[];
  readonly warnings: readonly string[];
}

/** The IPv6 policy (pure): which families to configure and which failures are fatal. */
export function decideFamilies(mode: 'auto' | 'on' | 'off', status: Ipv6Status): FamilyDecisions {
  const podV6 = podIpv6Addresses(status).map((a) => `${a.address} (${a.ifname})`);
  const v4: FamilyDecision = { family: 4, required: true };
  if (mode === 'off') {
    const warnings = podV6.length === 0 ? [] : [
      `ipv6 = off but this pod has IPv6 addresses ${podV6.join(', ')}: its IPv6 TCP traffic will NOT go through the `
      + 'proxy (no policy, no telemetry, no mTLS); set ipv6 = auto or on unless this is intended',
    ];
    return { families: [v4], skipped: [{ family: 6, reason: 'ipv6 = off' }], warnings };
  }
  if (!status.kernel) {
    if (mode === 'on') {
      throw new RemoraError('REMORA_ERR_IPV6_UNSUPPORTED', `ipv6 = on but the kernel has no IPv6 (${IF_INET6} does not exist)`);
    }
    return { families: [v4], skipped: [{ family: 6, reason: 'the kernel has no IPv6' }], warnings: [] };
  }
  return { families: [v4, { family: 6, required: mode === 'on' || podV6.length > 0 }], skipped: [], warnings: [] };
}

function rangesText(ranges: readonly { from: number; to: number }[]): string {
  return ranges.map((r) => formatPortRange(r)).join(',');
}

/** The options as a user would write them, for the log. */
export function effectiveConfig(v: InitValues): Record<string, unknown> {
  return {
    outbound_port: v.outboundPort,
    inbound_port: v.inboundPort,
    proxy_uid: v.proxyUid.join(','),
    proxy_gid: v.proxyGid.join(','),
    inbound_ports: v.inboundPorts.all ? '*' : rangesText(v.inboundPorts.ranges),
    exclude_inbound_ports: rangesText(v.excludeInboundPorts),
    proxy_ports: rangesText(v.proxyPorts),
    outbound_cidrs: v.outboundCidrs.all ? '*' : v.outboundCidrs.cidrs.map((c) => c.text).join(','),
    exclude_outbound_cidrs: v.excludeOutboundCidrs.map((c) => c.text).join(','),
    exclude_outbound_ports: rangesText(v.excludeOutboundPorts),
    ipv6: v.ipv6,
    backend: v.backend,
    lock_timeout_ms: v.lockTimeout,
    lock_dir: v.lockDir,
    iptables_bin_dir: v.iptablesBinDir,
    dry_run: v.dryRun,
    cleanup: v.cleanup,
  };
}

class InitRun {
  readonly #v: InitValues;
  readonly #io: InitIo;
  readonly #sys: InitSystem;
  readonly #log: Logger;

  constructor(v: InitValues, io: InitIo) {
    this.#v = v;
    this.#io = io;
    this.#sys = { ...realSystem, ...io.system };
    this.#log = io.log;
  }

  #ipv6(): Ipv6Status {
    return ipv6Status(this.#sys.readFile(IF_INET6));
  }

  #tools(backend: BackendName, family: IpFamily): FamilyTools {
    return {
      family,
      save: xtablesBinary(backend, family, 'save', this.#v.iptablesBinDir),
      restore: xtablesBinary(backend, family, 'restore', this.#v.iptablesBinDir),
    };
  }

  #ctx(backend: BackendName): XtablesContext {
    const waitSeconds = Math.max(1, Math.ceil(this.#v.lockTimeout / 1000));
    const env: Record<string, string | undefined> = { ...this.#sys.env };
    // iptables-legacy serialises through a lock file (default /run/xtables.lock, which a read-only root cannot
    // create); keep it next to our own lock unless the caller chose one.
    if (backend !== 'nft' && env['XTABLES_LOCKFILE'] === undefined) env['XTABLES_LOCKFILE'] = `${this.#v.lockDir}/xtables.lock`;
    return { run: this.#sys.run, env, waitSeconds, timeoutMs: waitSeconds * 1000 + 15_000 };
  }

  async #detect(): Promise<BackendChoice> {
    const choice = await detectBackend(this.#sys.run, {
      requested: this.#v.backend, binDir: this.#v.iptablesBinDir, timeoutMs: 15_000, env: this.#sys.env,
    });
    const probes = choice.probes.map((p) => ({
      backend: p.backend, family: p.family, rules: p.rules ?? null, ...(p.error === undefined ? {} : { error: p.error }),
    }));
    this.#log.info({ backend: choice.backend, reason: choice.reason, probes }, `iptables backend: ${choice.backend} (${choice.reason})`);
    if (choice.conflict) {
      this.#log.warn({ probes }, `the ${choice.backend === 'nft' ? 'iptables-legacy' : 'iptables-nft'} backend also holds rules in `
        + `this network namespace; they are evaluated too and may bypass or duplicate remora's (using ${choice.backend})`);
    }
    return choice;
  }

  #checkNetAdmin(backend: string): void {
    const priv = parsePrivileges(this.#sys.readFile('/proc/self/status'), this.#sys.uid());
    const problem = privilegeProblem(priv, backend);
    if (problem !== undefined) throw new RemoraError('REMORA_ERR_PERMISSION', problem);
  }

  async run(): Promise<number> {
    this.#log.info({ config: effectiveConfig(this.#v) }, 'remora init: effective configuration');
    try {
      if (this.#v.dryRun) return await this.#dryRun();
      // CAP_NET_ADMIN first: without it nothing below can work (CAP_NET_RAW is checked once the backend is known).
      this.#checkNetAdmin('nft');
      const lock = { dir: this.#v.lockDir, timeoutMs: this.#v.lockTimeout, inode: this.#sys.netnsInode(), log: this.#log };
      return await withInitLock(lock, () => (this.#v.cleanup ? this.#cleanup() : this.#apply()));
    } catch (err) {
      if (isRemoraError(err)) {
        this.#log.error({ code: err.code, details: err.details }, `${err.code}: ${err.message}`);
      } else {
        this.#log.error({ code: 'REMORA_ERR_INTERNAL', err }, `REMORA_ERR_INTERNAL: ${err instanceof Error ? err.message : String(err)}`);
      }
      return 1;
    }
  }

  async #dryRun(): Promise<number> {
    const decisions = decideFamilies(this.#v.ipv6, this.#ipv6());
    for (const w of decisions.warnings) this.#log.warn(w);
    const choice = await this.#detect();
    const ctx = this.#ctx(choice.backend);
    const notes: string[] = [];
    if (choice.guessed) notes.push(`no iptables-save worked here (${choice.probes[0]?.error ?? 'unknown'}): backend ${choice.backend} is a guess`);
    const families: DryRunFamily[] = [];
    for (const d of decisions.families) {
      const tools = this.#tools(choice.backend, d.family);
      let state: DryRunFamily['state'];
      try {
        state = { table: (await readNat(ctx, tools)).table };
      } catch (err) {
        state = { unread: isRemoraError(err) ? err.message.replace(/\s+/g, ' ') : String(err) };
      }
      families.push({ family: d.family, restore: tools.restore, state });
    }
    this.#io.out(renderDryRun({
      mode: this.#v.cleanup ? 'cleanup' : 'apply', options: this.#v, backend: choice.backend,
      families, skipped: decisions.skipped, notes,
    }));
    return 0;
  }

  /** Read every family's nat table; an optional family that fails is dropped with a warning. */
  async #readFamilies(ctx: XtablesContext, backend: BackendName, families: readonly FamilyDecision[]): Promise<{ d: FamilyDecision; tools: FamilyTools; text: string; table: NatTable }[]> {
    const out: { d: FamilyDecision; tools: FamilyTools; text: string; table: NatTable }[] = [];
    for (const d of families) {
      const tools = this.#tools(backend, d.family);
      try {
        const { text, table } = await readNat(ctx, tools);
        out.push({ d, tools, text, table });
      } catch (err) {
        this.#familyFailure(d, err);
      }
    }
    return out;
  }

  /** A failure reading/validating a family: fatal for a required family, a warning (family skipped) otherwise. */
  #familyFailure(d: FamilyDecision, err: unknown): void {
    if (d.family === 4) throw err;
    const message = err instanceof Error ? err.message : String(err);
    if (isRemoraError(err) && err.code === 'REMORA_ERR_PERMISSION') throw err;
    if (d.required) {
      throw new RemoraError('REMORA_ERR_IPV6_UNSUPPORTED', `this pod has IPv6 addresses (or ipv6 = on) but IPv6 rules cannot `
        + `be applied: ${message}. Install ip6tables with IPv6 nat support, or set ipv6 = off to accept that IPv6 `
        + 'traffic bypasses the proxy', { cause: err });
    }
    this.#log.warn({ err: message }, `IPv6 rules skipped: the kernel has IPv6 but ip6tables does not work (${message}); `
      + 'this pod has no IPv6 address, so no IPv6 traffic can bypass the proxy');
  }

  async #apply(): Promise<number> {
    const status = this.#ipv6();
    const decisions = decideFamilies(this.#v.ipv6, status);
    for (const w of decisions.warnings) this.#log.warn(w);
    for (const s of decisions.skipped) this.#log.info(`${familyLabel(s.family)} rules not configured: ${s.reason}`);
    const choice = await this.#detect();
    this.#checkNetAdmin(choice.backend);
    const ctx = this.#ctx(choice.backend);
    for (const p of choice.probes.filter((x) => x.ours && x.backend !== choice.backend)) {
      this.#log.warn(`${familyLabel(p.family)}: remora rules from an earlier run are still in the ${p.backend} backend and stay `
        + `active next to the new ${choice.backend} rules; remove them with remora init --cleanup --backend ${p.backend}`);
    }

    // 1. read, plan, render, validate: nothing is changed yet.
    const read = await this.#readFamilies(ctx, choice.backend, decisions.families);
    const jobs: { plan: FamilyPlan; change: FamilyChange }[] = [];
    for (const r of read) {
      const plan = planRules(r.d.family, this.#v);
      for (const note of plan.notes) this.#log.info(`${familyLabel(r.d.family)}: ${note}`);
      const input = renderApplyInput(plan, r.table);
      this.#log.debug({ family: r.d.family, input }, `${familyLabel(r.d.family)} restore input`);
      try {
        await testRestore(ctx, r.tools, input);
        jobs.push({ plan, change: { tools: r.tools, before: r.text, input } });
      } catch (err) {
        this.#familyFailure(r.d, err);
      }
    }

    // 2. apply every family (a failure rolls back the ones already applied).
    const applied = await applyFamilies(ctx, jobs.map((j) => j.change));
    const undo = async (addedLoopback: boolean): Promise<string[]> => {
      const problems = await rollback(ctx, applied);
      if (addedLoopback) await removeLoopbackV6(this.#sys.run).catch((err: unknown) => problems.push(String(err)));
      return problems;
    };

    // 3. ::6 on lo, so that the proxy can pass IPv6 connections on to the app from the passthrough source.
    let addedLoopback = false;
    if (applied.some((c) => c.tools.family === 6) && !hasLoopbackV6(status)) {
      try {
        await ensureLoopbackV6(this.#sys.run);
        addedLoopback = true;
      } catch (err) {
        const problems = await undo(false);
        const message = err instanceof Error ? err.message : String(err);
        throw new RemoraError(isRemoraError(err) ? err.code : 'REMORA_ERR_RULES_APPLY', `${message}; ${rollbackSuffix(applied, problems)}`, { cause: err });
      }
    }

    // 4. read back and compare with the intent.
    const diffs: string[] = [];
    const finalRules: Record<string, string[]> = {};
    for (const j of jobs) {
      const family = j.plan.family;
      let actual: string[];
      try {
        actual = ourView((await readNat(ctx, j.change.tools)).table);
      } catch (err) {
        diffs.push(`${familyLabel(family)}: cannot read the rules back: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      finalRules[familyLabel(family)] = actual;
      const diff = diffLines(expectedView(j.plan), actual, {
        expectedLabel: `expected ${familyLabel(family)} nat rules`, actualLabel: `actual (${j.change.tools.save} -t nat)`,
      });
      if (diff !== undefined) diffs.push(diff);
    }
    if (diffs.length > 0) {
      const problems = await undo(addedLoopback);
      throw new RemoraError('REMORA_ERR_RULES_VERIFY', `the rules read back differ from the rules applied `
        + `(${rollbackSuffix(applied, problems)}):\n${diffs.join('\n')}`);
    }
    this.#log.info({ backend: choice.backend, rules: finalRules, loopbackV6: applied.some((c) => c.tools.family === 6) },
      `remora init: rules applied and verified (${applied.map((c) => familyLabel(c.tools.family)).join(', ')}, backend ${choice.backend})`);
    return 0;
  }

  async #cleanup(): Promise<number> {
    const status = this.#ipv6();
    const choice = await this.#detect();
    // Clean every backend that holds something of ours (auto), or the configured one.
    const backends: BackendName[] = this.#v.backend !== 'auto' ? [this.#v.backend]
      : choice.guessed ? ['plain'] : (['nft', 'legacy'] as const).filter((b) => choice.probes.some((p) => p.backend === b && p.ours));
    let removed = 0;
    for (const backend of backends) {
      this.#checkNetAdmin(backend);
      const changes: FamilyChange[] = [];
      const ctx = this.#ctx(backend);
      for (const family of status.kernel ? [4, 6] as const : [4] as const) {
        const probe = choice.probes.find((p) => p.backend === backend && p.family === family);
        if (backend !== 'plain' && probe !== undefined && probe.rules !== undefined && !probe.ours) continue;
        const tools = this.#tools(backend, family);
        let current: { text: string; table: NatTable };
        try {
          current = await readNat(ctx, tools);
        } catch (err) {
          if (family === 6 && podIpv6Addresses(status).length === 0 && !(isRemoraError(err) && err.code === 'REMORA_ERR_PERMISSION')) {
            this.#log.warn(`IPv6 (${backend}): cannot read the rules, nothing removed: ${err instanceof Error ? err.message : String(err)}`);
            continue;
          }
          throw err;
        }
        const input = renderCleanupInput(current.table);
        if (input === undefined) continue;
        await testRestore(ctx, tools, input);
        changes.push({ tools, before: current.text, input });
      }
      const applied = await applyFamilies(ctx, changes);
      removed += applied.length;
      const left: string[] = [];
      for (const c of applied) {
        const after = await readNat(ctx, c.tools);
        if (hasOurObjects(after.table)) left.push(`${familyLabel(c.tools.family)} (${backend}):\n${ourView(after.table).join('\n')}`);
      }
      if (left.length > 0) {
        const problems = await rollback(ctx, applied);
        throw new RemoraError('REMORA_ERR_RULES_VERIFY', `remora's rules are still present after cleanup `
          + `(${rollbackSuffix(applied, problems)}):\n${left.join('\n')}`);
      }
      for (const c of applied) this.#log.info(`${familyLabel(c.tools.family)} (${backend}): remora's chains and jumps removed`);
    }
    if (hasLoopbackV6(status)) {
      await removeLoopbackV6(this.#sys.run);
      this.#log.info('::6/128 removed from lo');
    }
    if (removed === 0) this.#log.info('nothing of remora\'s to remove');
    this.#log.info('remora init --cleanup: done');
    return 0;
  }
}

/** Run `remora init` with validated options; returns the exit code (0 ok, 1 failure). */
export function runInit(values: InitValues, io: InitIo): Promise<number> {
  return new InitRun(values, io).run();
}
