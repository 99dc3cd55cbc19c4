// Which iptables backend to drive: iptables-nft (nf_tables kernel API) or iptables-legacy (x_tables), or the
// distribution's plain `iptables-restore` as a last resort. Rules already present win, so we never split a pod's
// ruleset over two kernel subsystems (the rules of the one not in use would be silently bypassed or doubled):
//   1. `backend` option nft/legacy: use it.
//   2. count "-A" lines in iptables-{nft,legacy}-save and ip6tables-{nft,legacy}-save (all tables, no `-t`, so that
//      reading does not instantiate tables); the backend with more rules wins (both in use: warn).
//   3. else nft when its save binary works; 4. else legacy when it works; 5. else plain.
import { join } from 'node:path';
import type { IpFamily } from '../core/addr.js';
import { formatCommand, type CommandRunner } from './command-runner.js';
import { countRules, hasOurObjects, parseNatTable } from './rule-readback.js';

export type BackendName = 'nft' | 'legacy' | 'plain';
export type XtablesTool = 'save' | 'restore';

/** "ip6tables-nft-restore", or its path inside binDir when one is configured. */
export function xtablesBinary(backend: BackendName, family: IpFamily, tool: XtablesTool, binDir = ''): string {
  const base = family === 6 ? 'ip6tables' : 'iptables';
  const name = backend === 'plain' ? `${base}-${tool}` : `${base}-${backend}-${tool}`;
  return binDir === '' ? name : join(binDir, name);
}

export interface BackendProbe {
  readonly backend: 'nft' | 'legacy';
  readonly family: IpFamily;
  /** "-A" lines found, or undefined when the save binary does not work here. */
  readonly rules: number | undefined;
  /** The save output holds a REMORA_ chain or a jump into one. */
  readonly ours: boolean;
  readonly error?: string;
}

export interface BackendChoice {
  readonly backend: BackendName;
  /** Why, for the log. */
  readonly reason: string;
  readonly probes: readonly BackendProbe[];
  /** Both nft and legacy hold rules (or the one not configured does): some of them are probably bypassed. */
  readonly conflict: boolean;
  /** No save binary worked at all (not root, or no iptables): the choice is a guess. */
  readonly guessed: boolean;
}

export interface DetectOptions {
  readonly requested: 'auto' | 'nft' | 'legacy';
  readonly binDir: string;
  readonly timeoutMs: number;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

export async function probeBackends(run: CommandRunner, opts: DetectOptions): Promise<BackendProbe[]> {
  const jobs: Promise<BackendProbe>[] = [];
  for (const backend of ['nft', 'legacy'] as const) {
    for (const family of [4, 6] as const) {
      const cmd = xtablesBinary(backend, family, 'save', opts.binDir);
      jobs.push(run(cmd, [], { timeoutMs: opts.timeoutMs, ...(opts.env === undefined ? {} : { env: opts.env }) }).then((r) => {
        if (r.spawnError !== undefined) return { backend, family, rules: undefined, ours: false, error: `${cmd}: ${r.spawnError}` };
        if (r.code !== 0) {
          return { backend, family, rules: undefined, ours: false, error: `${formatCommand(cmd, [])} exited ${r.code}: ${firstLine(r.stderr)}` };
        }
        const nat = parseNatTable(r.stdout);
        return { backend, family, rules: countRules(r.stdout), ours: nat !== undefined && hasOurObjects(nat) };
      }));
    }
  }
  return Promise.all(jobs);
}

/** Pure decision from the probes (see the header comment). */
export function chooseBackend(requested: 'auto' | 'nft' | 'legacy', probes: readonly BackendProbe[]): BackendChoice {
  const total = (b: 'nft' | 'legacy'): number =>
    probes.filter((p) => p.backend === b).reduce((n, p) => n + (p.rules ?? 0), 0);
  const works = (b: 'nft' | 'legacy'): boolean => probes.some((p) => p.backend === b && p.family === 4 && p.rules !== undefined);
  const nft = total('nft');
  const legacy = total('legacy');
  const conflict = nft > 0 && legacy > 0;
  const guessed = !works('nft') && !works('legacy');
  const base = { probes, conflict, guessed };
  if (requested !== 'auto') {
    // A configured backend conflicts when the other one holds rules (they would be evaluated too).
    const other = requested === 'nft' ? legacy : nft;
    return { ...base, conflict: other > 0, backend: requested, reason: `backend = ${requested} (configured)` };
  }
  if (legacy > nft) return { ...base, backend: 'legacy', reason: `existing rules: ${legacy} in iptables-legacy, ${nft} in iptables-nft` };
  if (nft > legacy) return { ...base, backend: 'nft', reason: `existing rules: ${nft} in iptables-nft, ${legacy} in iptables-legacy` };
  if (works('nft')) return { ...base, backend: 'nft', reason: 'no existing rules; iptables-nft works' };
  if (works('legacy')) return { ...base, backend: 'legacy', reason: 'no existing rules; iptables-nft does not work, iptables-legacy does' };
  return { ...base, backend: 'plain', reason: 'neither iptables-nft-save nor iptables-legacy-save works: using plain iptables-restore' };
}

export async function detectBackend(run: CommandRunner, opts: DetectOptions): Promise<BackendChoice> {
  return chooseBackend(opts.requested, await probeBackends(run, opts));
}
