// The embedded store of `remora control --data-dir DIR` (docs/control-plane.md#the-embedded-store---data-dir-dir):
//   DIR/state.json    {"format":1,"revision":N,"objects":[{kind,name,version,spec}]}, replaced atomically on every
//                     commit (temporary file 0600, fsync, rename, fsync of DIR): a crash leaves the old or the new state
//   DIR/control.lock  proper-lockfile (an atomic mkdir, refreshed while held, stale after 10 s): one owner per DIR
// A commit is synchronous from plan to durable write (versions checked, the candidate validated, the file replaced),
// so two requests never interleave. The last HISTORY revisions are kept in memory for watchers.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { RemoraError } from '../core/errors.js';
import { writeFileAtomic } from '../pki/atomic-write.js';
import { isObjectKind, objectKey, objectShapeIssues, type ControlObject, type ObjectIssue, type ObjectKind } from './control-objects.js';
import { planBatch, type Batch, type Change, type Conflict } from './state-batch.js';

export const STATE_FILE = 'state.json';
export const LOCK_FILE = 'control.lock';
const FORMAT = 1;
const STALE_MS = 10_000;
/** Revisions kept for watchers; an older `since` must re-list. */
export const HISTORY = 1000;

export interface RevisionEvent {
  readonly revision: number;
  readonly changes: readonly Change[];
}

export type CommitResult =
  | { readonly ok: true; readonly revision: number; readonly changes: readonly Change[]; readonly dryRun: boolean }
  | { readonly ok: false; readonly status: 400 | 422; readonly issues: readonly ObjectIssue[] }
  | { readonly ok: false; readonly status: 409; readonly conflicts: readonly Conflict[] };

/** Checks a whole candidate desired state (the StateValidator). */
export type CandidateCheck = (objects: readonly ControlObject[]) => readonly ObjectIssue[];

export interface EmbeddedStoreOptions {
  /** Called when the lock is lost while held (another process took it over): stop writing. */
  readonly onLockLost?: (err: Error) => void;
}

function storeError(message: string, cause?: unknown): RemoraError {
  return new RemoraError('REMORA_ERR_CONTROL_STORE', message, cause === undefined ? {} : { cause });
}

function parseState(text: string, file: string): { revision: number; objects: ControlObject[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw storeError(`${file} is not valid JSON (damaged? it is never overwritten: restore it from a backup)`, err);
  }
  const r = raw as { format?: unknown; revision?: unknown; objects?: unknown };
  if (r.format !== FORMAT || !Number.isSafeInteger(r.revision) || (r.revision as number) < 0 || !Array.isArray(r.objects)) {
    throw storeError(`${file} is not a remora control state (expected {"format":${FORMAT},"revision":N,"objects":[...]})`);
  }
  const revision = r.revision as number;
  const objects: ControlObject[] = [];
  for (const [n, o] of (r.objects as unknown[]).entries()) {
    const x = o as { kind?: unknown; name?: unknown; version?: unknown; spec?: unknown };
    const ok = typeof x.kind === 'string' && isObjectKind(x.kind) && typeof x.name === 'string' && Number.isSafeInteger(x.version)
      && (x.version as number) > 0 && (x.version as number) <= revision && objectShapeIssues(x.kind, x.name, x.spec).length === 0;
    if (!ok) throw storeError(`${file}: object ${n} is not a valid object`);
    objects.push({ kind: x.kind as ObjectKind, name: x.name as string, version: x.version as number, spec: x.spec as Record<string, string> });
  }
  return { revision, objects };
}

export class EmbeddedStore {
  readonly #dir: string;
  readonly #release: () => Promise<void>;
  #revision: number;
  #objects: Map<string, ControlObject>;
  readonly #history: RevisionEvent[] = [];
  readonly #listeners = new Set<(event: RevisionEvent) => void>();
  #closed = false;

  private constructor(dir: string, release: () => Promise<void>, state: { revision: number; objects: ControlObject[] }) {
    this.#dir = dir;
    this.#release = release;
    this.#revision = state.revision;
    this.#objects = new Map(state.objects.map((o) => [objectKey(o.kind, o.name), o]));
  }

  /** Take DIR (created 0700 if missing) and load its state; REMORA_ERR_CONTROL_STORE when another process holds it. */
  static async open(dir: string, options: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw storeError(`cannot create the data directory ${dir}: ${(err as { code?: string }).code ?? String(err)}`, err);
    }
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(dir, {
        lockfilePath: join(dir, LOCK_FILE),
        realpath: false,
        stale: STALE_MS,
        retries: 0,
        onCompromised: (err) => {
          if (options.onLockLost === undefined) throw err;
          options.onLockLost(err);
        },
      });
    } catch (err) {
      if ((err as { code?: string }).code === 'ELOCKED') {
        throw storeError(`${dir} is in use by another remora control (${join(dir, LOCK_FILE)} is held); one process owns a data directory`, err);
      }
      throw storeError(`cannot lock ${join(dir, LOCK_FILE)}: ${String(err)}`, err);
    }
    const file = join(dir, STATE_FILE);
    let state = { revision: 0, objects: [] as ControlObject[] };
    try {
      let text: string | undefined;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOENT') throw storeError(`cannot read ${file}: ${(err as { code?: string }).code ?? String(err)}`, err);
      }
      if (text !== undefined) state = parseState(text, file);
    } catch (err) {
      await release().catch(() => undefined);
      throw err;
    }
    return new EmbeddedStore(dir, release, state);
  }

  get dir(): string { return this.#dir; }
  get revision(): number { return this.#revision; }

  /** Every object (of a kind), sorted by kind then name. */
  list(kind?: ObjectKind): ControlObject[] {
    return [...this.#objects.values()].filter((o) => kind === undefined || o.kind === kind)
      .sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get(kind: ObjectKind, name: string): ControlObject | undefined {
    return this.#objects.get(objectKey(kind, name));
  }

  /**
   * Apply a batch: versions checked (409), the whole candidate state checked (422), then written durably and
   * announced to watchers as one revision. A batch that changes nothing makes no revision. dryRun stops before writing.
   */
  commit(batch: Batch, check: CandidateCheck, options: { dryRun?: boolean } = {}): CommitResult {
    if (this.#closed) throw storeError('the store is closed');
    const revision = this.#revision + 1;
    const plan = planBatch(this.#objects, batch, revision);
    if (!plan.ok) return plan;
    const dryRun = options.dryRun === true;
    if (plan.changes.length === 0) return { ok: true, revision: this.#revision, changes: [], dryRun };
    const issues = check([...plan.next.values()]);
    if (issues.length > 0) return { ok: false, status: 422, issues };
    if (dryRun) return { ok: true, revision, changes: plan.changes, dryRun };
    const objects = [...plan.next.values()].map(({ kind, name, version, spec }) => ({ kind, name, version, spec }));
    writeFileAtomic(join(this.#dir, STATE_FILE), `${JSON.stringify({ format: FORMAT, revision, objects }, null, 1)}\n`, { mode: 0o600 });
    this.#revision = revision;
    this.#objects = new Map(plan.next);
    const event: RevisionEvent = { revision, changes: plan.changes };
    this.#history.push(event);
    if (this.#history.length > HISTORY) this.#history.shift();
    for (const l of this.#listeners) l(event);
    return { ok: true, revision, changes: plan.changes, dryRun };
  }

  /** The revisions after `since`, or undefined when some of them are no longer kept (the watcher must re-list). */
  eventsSince(since: number): RevisionEvent[] | undefined {
    if (since >= this.#revision) return [];
    const oldest = this.#history[0]?.revision;
    if (oldest === undefined || since + 1 < oldest) return undefined;
    return this.#history.filter((e) => e.revision > since);
  }

  /** Hear every committed revision; returns the unsubscribe function. */
  subscribe(listener: (event: RevisionEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    await this.#release().catch(() => undefined);
  }
}
