// Reading the nat rules in force, with their counters, for `remora explain`: `iptables-save -c` (or ip6tables-save)
// of the current network namespace, trying iptables-nft, iptables-legacy and the plain binary, and keeping the output
// that holds remora's chains (else the first that has a nat table, else the first that worked). Reading needs root
// or CAP_NET_ADMIN; without it the error says so and the caller explains the rest of the path.
import type { IpFamily } from '../core/addr.js';
import { formatCommand, runCommand, type CommandRunner } from './command-runner.js';
import { xtablesBinary, type BackendName } from './iptables-backend.js';
import { hasOurObjects, parseCountedNat, type CountedNatTable } from './rule-readback.js';

export type LiveNat =
  | { readonly ok: true; readonly table: CountedNatTable; readonly command: string }
  | { readonly ok: false; readonly error: string };

const EMPTY: CountedNatTable = { chains: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'], policies: {}, rules: [] };

export async function readLiveNat(family: IpFamily, run: CommandRunner = runCommand, binDir = ''): Promise<LiveNat> {
  const candidates: { table: CountedNatTable; command: string; ours: boolean; hasNat: boolean }[] = [];
  const errors: string[] = [];
  for (const backend of ['nft', 'legacy', 'plain'] as const satisfies readonly BackendName[]) {
    const cmd = xtablesBinary(backend, family, 'save', binDir);
    const r = await run(cmd, ['-c'], { timeoutMs: 10_000 });
    const shown = formatCommand(cmd, ['-c']);
    if (r.spawnError !== undefined) { errors.push(`${shown}: ${r.spawnError}`); continue; }
    if (r.code !== 0) { errors.push(`${shown} exited ${r.code}: ${r.stderr.trim().split('\n')[0] ?? ''}`); continue; }
    const nat = parseCountedNat(r.stdout);
    candidates.push({ table: nat ?? EMPTY, command: shown, ours: nat !== undefined && hasOurObjects(nat), hasNat: nat !== undefined });
    if (nat !== undefined && hasOurObjects(nat)) break;
  }
  const best = candidates.find((c) => c.ours) ?? candidates.find((c) => c.hasNat) ?? candidates[0];
  if (best === undefined) return { ok: false, error: `cannot read the nat rules (root or CAP_NET_ADMIN is needed): ${errors.join('; ')}` };
  return { ok: true, table: best.table, command: best.command };
}
