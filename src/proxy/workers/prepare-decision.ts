// The two-phase apply of `workers = N` (src/proxy/workers/primary.ts): from every worker's answer to a prepare,
// commit or drop the new config. Pure.

/** One worker's answer to a prepare: built it, refused it (its build failed), or no answer (timed out, gone). */
export type PrepareAnswer<S> =
  | { readonly slot: S; readonly kind: 'built' }
  | { readonly slot: S; readonly kind: 'refused' | 'silent'; readonly error: string };

/**
 * Commit or drop, from every worker's answer to a prepare (pure). A refusal is about the config: drop it everywhere.
 * No answer is about the worker: commit on the workers that built it (the silent ones are restarted), unless none did. No live
 * worker at all commits (as before: the config is held, and a worker that starts gets it).
 */
export function prepareDecision<S>(answers: readonly PrepareAnswer<S>[]):
  | { readonly commit: true; readonly built: readonly S[]; readonly silent: readonly Extract<PrepareAnswer<S>, { kind: 'refused' | 'silent' }>[] }
  | { readonly commit: false; readonly errors: string[] } {
  const failed = answers.filter((a): a is Extract<PrepareAnswer<S>, { kind: 'refused' | 'silent' }> => a.kind !== 'built');
  const built = answers.filter((a) => a.kind === 'built').map((a) => a.slot);
  if (failed.some((a) => a.kind === 'refused') || (built.length === 0 && failed.length > 0)) return { commit: false, errors: failed.map((a) => a.error) };
  return { commit: true, built, silent: failed };
}
