// The two-phase apply of `workers = N` (src/proxy/workers/primary.ts): from every worker's answer to a prepare,
// commit or drop the new config. Pure.

/** A worker that did not build it: refused it (its build failed), or gave no answer (timed out, its channel gone). */
export interface PrepareFailure<S> {
  readonly slot: S;
  readonly kind: 'refused' | 'silent';
  readonly error: string;
}

/** One worker's answer to a prepare. */
export type PrepareAnswer<S> = { readonly slot: S; readonly kind: 'built' } | PrepareFailure<S>;

export type PrepareDecision<S> =
  | { readonly commit: true; readonly built: readonly S[]; readonly silent: readonly PrepareFailure<S>[] }
  | { readonly commit: false; readonly errors: string[] };

/**
 * A refusal is about the config: drop it everywhere. No answer is about the worker: the workers that built it commit
 * it and the silent ones are restarted (they start with it), unless none built it. No live worker at all: commit (the
 * config is held, and a worker that starts later gets it).
 */
export function prepareDecision<S>(answers: readonly PrepareAnswer<S>[]): PrepareDecision<S> {
  const built: S[] = [];
  const failed: PrepareFailure<S>[] = [];
  for (const a of answers) {
    if (a.kind === 'built') built.push(a.slot);
    else failed.push(a);
  }
  if (failed.some((a) => a.kind === 'refused') || (built.length === 0 && failed.length > 0)) {
    return { commit: false, errors: failed.map((a) => a.error) };
  }
  return { commit: true, built, silent: failed };
}
