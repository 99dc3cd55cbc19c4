// The etcd store of `remora control --store etcd://HOST:PORT[,...]` (docs/control-plane.md#stores). The state lives
// only in etcd; each replica keeps a mirror in memory, fed by a watch on the state prefix, and serves reads from it.
//   /remora/state/revision               touched by every commit: its mod_revision is the state's revision
//   /remora/state/objects/KIND/NAME      {"kind","name","spec"}: an object; its mod_revision is the object's version
// A commit plans the batch against the mirror (versions: 409; the whole candidate validated: 422) and writes it in
// one etcd transaction that compares the mod_revision of the revision key (the mirror is current) and of every
// changed object (the versions the writer expects): nothing is written unless all hold. When the transaction fails,
// the mirror catches up to the revision etcd reports and the batch is planned again: a real conflict is then a 409,
// a change elsewhere in the state that leaves the batch's objects alone only a retry (commits of one replica are
// serialized, so retries come only from other replicas' commits). A successful commit returns
// once this replica's mirror has the new revision (read-your-writes on the replica that wrote).
import { RemoraError } from '../core/errors.js';
import { isObjectKind, objectKey, objectShapeIssues, type ControlObject, type ObjectKind } from './control-objects.js';
import type { ControlStore } from './control-store.js';
import { HISTORY, type CandidateCheck, type CommitResult, type RevisionEvent } from './embedded-store.js';
import { EtcdClient, type EtcdEndpoint, type EtcdEvent, type EtcdKv, type EtcdOp, type EtcdWatch } from './etcd-client.js';
import { planBatch, type Batch, type Change } from './state-batch.js';

export const STATE_PREFIX = '/remora/state/';
export const REVISION_KEY = `${STATE_PREFIX}revision`;
export const OBJECTS_PREFIX = `${STATE_PREFIX}objects/`;
/** How long a commit waits for this replica's mirror to reach a revision etcd reported. */
const CATCH_UP_MS = 10_000;
/** Transactions lost to other replicas' commits before the commit gives up (503). */
const ATTEMPTS = 16;

export interface EtcdStoreOptions {
  /** The mirror cannot follow etcd any more (a value under the state prefix is not a remora object): stop serving. */
  readonly onFailure?: (err: Error) => void;
  /** The watch broke and is being reopened (on the next endpoint). */
  readonly onWatchBroken?: (err: Error) => void;
}

function storeError(message: string, cause?: unknown): RemoraError {
  return new RemoraError('REMORA_ERR_CONTROL_STORE', message, cause === undefined ? {} : { cause });
}

export function objectEtcdKey(kind: ObjectKind, name: string): string {
  return `${OBJECTS_PREFIX}${kind}/${name}`;
}

function parseObject(kv: EtcdKv): ControlObject {
  let raw: unknown;
  try { raw = JSON.parse(kv.value); } catch { raw = undefined; }
  const x = (raw ?? {}) as { kind?: unknown; name?: unknown; spec?: unknown };
  if (typeof x.kind !== 'string' || !isObjectKind(x.kind) || typeof x.name !== 'string' || kv.key !== objectEtcdKey(x.kind, x.name)
    || objectShapeIssues(x.kind, x.name, x.spec).length > 0) {
    throw storeError(`etcd key ${kv.key} does not hold a remora object (expected {"kind","name","spec"} matching the key; written by something else?)`);
  }
  return { kind: x.kind, name: x.name, spec: x.spec as Record<string, string>, version: kv.modRevision };
}

export class EtcdStore implements ControlStore {
  readonly #client: EtcdClient;
  readonly #options: EtcdStoreOptions;
  #revision: number;
  #objects: Map<string, ControlObject>;
  readonly #history: RevisionEvent[] = [];
  readonly #listeners = new Set<(event: RevisionEvent) => void>();
  readonly #waiters = new Set<() => void>();
  #watch: EtcdWatch | undefined;
  /** Every revision after this one is in #history: the revision loaded at open, then the last one dropped. */
  #completeAfter: number;
  #failed: Error | undefined;
  #closed = false;

  private constructor(client: EtcdClient, options: EtcdStoreOptions, revision: number, objects: ControlObject[]) {
    this.#client = client;
    this.#options = options;
    this.#revision = revision;
    this.#completeAfter = revision;
    this.#objects = new Map(objects.map((o) => [objectKey(o.kind, o.name), o]));
  }

  /** Read the state from etcd and follow it; REMORA_ERR_CONTROL_STORE when no endpoint answers or a value is damaged. */
  static async open(endpoints: readonly EtcdEndpoint[] | EtcdClient, options: EtcdStoreOptions = {}): Promise<EtcdStore> {
    const client = endpoints instanceof EtcdClient ? endpoints : new EtcdClient(endpoints);
    const r = await client.range(STATE_PREFIX, { prefix: true });
    const loaded = EtcdStore.#load(r.kvs);
    const store = new EtcdStore(client, options, loaded.revision, loaded.objects);
    store.#follow(r.revision + 1);
    return store;
  }

  static #load(kvs: readonly EtcdKv[]): { revision: number; objects: ControlObject[] } {
    let revision = 0;
    const objects: ControlObject[] = [];
    for (const kv of kvs) {
      if (kv.key === REVISION_KEY) revision = kv.modRevision;
      else if (kv.key.startsWith(OBJECTS_PREFIX)) objects.push(parseObject(kv));
    }
    return { revision, objects };
  }

  #follow(from: number): void {
    this.#watch = this.#client.watch(STATE_PREFIX, from, (events) => { this.#apply(events); }, (err) => {
      if ((err as { compactRevision?: number }).compactRevision !== undefined) {
        this.#options.onWatchBroken?.(err);
        this.#resync().catch((e: unknown) => { this.#fail(e as Error); });
      } else {
        this.#fail(err);
      }
    }, (err) => { this.#options.onWatchBroken?.(err); });
  }

  /**
   * The watch cannot resume (etcd compacted the revisions it missed): read the whole state again and announce the
   * difference from the mirror as one change at the revision read, then follow from there.
   */
  async #resync(): Promise<void> {
    let r: { revision: number; kvs: EtcdKv[] } | undefined;
    for (let attempt = 1; r === undefined; attempt++) {
      if (this.#closed) return;
      try {
        r = await this.#client.range(STATE_PREFIX, { prefix: true });
      } catch (err) {
        this.#options.onWatchBroken?.(err as Error);
        await new Promise((resolve) => { setTimeout(resolve, Math.min(2_000, 100 * attempt)).unref(); });
      }
    }
    if (this.#closed) return;
    const loaded = EtcdStore.#load(r.kvs);
    if (loaded.revision > this.#revision) {
      const next = new Map(loaded.objects.map((o) => [objectKey(o.kind, o.name), o]));
      const changes: Change[] = [];
      for (const [key, object] of next) {
        const previous = this.#objects.get(key);
        if (previous?.version !== object.version) changes.push({ type: 'put', kind: object.kind, name: object.name, object, ...(previous === undefined ? {} : { previous }) });
      }
      for (const [key, previous] of this.#objects) if (!next.has(key)) changes.push({ type: 'delete', kind: previous.kind, name: previous.name, previous });
      this.#publish(loaded.revision, next, changes);
    }
    for (const w of this.#waiters) w();
    this.#follow(r.revision + 1);
  }

  #publish(revision: number, objects: Map<string, ControlObject>, changes: Change[]): void {
    this.#objects = objects;
    this.#revision = revision;
    const event: RevisionEvent = { revision, changes };
    this.#history.push(event);
    if (this.#history.length > HISTORY) this.#completeAfter = this.#history.shift()?.revision ?? this.#completeAfter;
    for (const l of this.#listeners) l(event);
  }

  get endpoints(): string { return this.#client.endpoints; }
  get client(): EtcdClient { return this.#client; }
  get revision(): number { return this.#revision; }

  list(kind?: ObjectKind): ControlObject[] {
    return [...this.#objects.values()].filter((o) => kind === undefined || o.kind === kind)
      .sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get(kind: ObjectKind, name: string): ControlObject | undefined {
    return this.#objects.get(objectKey(kind, name));
  }

  #fail(err: Error): void {
    if (this.#failed !== undefined || this.#closed) return;
    this.#failed = err;
    for (const w of this.#waiters) w();
    this.#options.onFailure?.(err);
  }

  /** Watch events, in revision order: one RevisionEvent per revision that touched the state. */
  #apply(events: readonly EtcdEvent[]): void {
    if (this.#failed !== undefined) return;
    const byRevision = new Map<number, EtcdEvent[]>();
    for (const e of events) {
      const list = byRevision.get(e.kv.modRevision) ?? [];
      list.push(e);
      byRevision.set(e.kv.modRevision, list);
    }
    for (const [revision, list] of [...byRevision.entries()].sort((a, b) => a[0] - b[0])) {
      if (revision <= this.#revision) continue;
      const next = new Map(this.#objects);
      const changes: Change[] = [];
      try {
        for (const e of list) {
          if (!e.kv.key.startsWith(OBJECTS_PREFIX)) continue;
          const [kind, ...rest] = e.kv.key.slice(OBJECTS_PREFIX.length).split('/');
          const name = rest.join('/');
          if (kind === undefined || !isObjectKind(kind)) throw storeError(`etcd key ${e.kv.key} is not a remora object key`);
          const key = objectKey(kind, name);
          const previous = next.get(key);
          if (e.type === 'delete') {
            if (previous === undefined) continue;
            next.delete(key);
            changes.push({ type: 'delete', kind, name, previous });
          } else {
            const object = parseObject(e.kv);
            next.set(key, object);
            changes.push({ type: 'put', kind, name, object, ...(previous === undefined ? {} : { previous }) });
          }
        }
      } catch (err) {
        this.#fail(err as Error);
        return;
      }
      this.#publish(revision, next, changes);
    }
    for (const w of this.#waiters) w();
  }

  /** Wait (bounded) until the mirror has `revision`. */
  async #reach(revision: number): Promise<void> {
    const deadline = Date.now() + CATCH_UP_MS;
    while (this.#revision < revision) {
      if (this.#failed !== undefined) throw storeError(`the etcd store stopped following etcd: ${this.#failed.message}`, this.#failed);
      if (this.#closed) throw storeError('the store is closed');
      const left = deadline - Date.now();
      if (left <= 0) throw storeError(`this replica did not see etcd revision ${revision} within ${CATCH_UP_MS} ms (the watch on ${this.endpoints} is behind)`);
      await new Promise<void>((resolve) => {
        const done = (): void => { clearTimeout(timer); this.#waiters.delete(done); resolve(); };
        const timer = setTimeout(done, left);
        this.#waiters.add(done);
      });
    }
  }

  /** Commits of one replica run one at a time (as in the embedded store): they contend only with other replicas. */
  commit(batch: Batch, check: CandidateCheck, options: { dryRun?: boolean } = {}): Promise<CommitResult> {
    const run = this.#queue.then(() => this.#commitNow(batch, check, options));
    this.#queue = run.then(() => undefined, () => undefined);
    return run;
  }

  #queue: Promise<void> = Promise.resolve();

  async #commitNow(batch: Batch, check: CandidateCheck, options: { dryRun?: boolean }): Promise<CommitResult> {
    const dryRun = options.dryRun === true;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (this.#closed) throw storeError('the store is closed');
      if (this.#failed !== undefined) throw storeError(`the etcd store stopped following etcd: ${this.#failed.message}`, this.#failed);
      const base = this.#revision;
      const plan = planBatch(this.#objects, batch, base + 1);
      if (!plan.ok) return plan;
      if (plan.changes.length === 0) return { ok: true, revision: base, changes: [], dryRun };
      const issues = check([...plan.next.values()]);
      if (issues.length > 0) return { ok: false, status: 422, issues };
      if (dryRun) return { ok: true, revision: base + 1, changes: plan.changes, dryRun };
      const expected = new Map([...batch.writes, ...batch.deletes].map((o) => [objectKey(o.kind, o.name), o.version]));
      const ops: EtcdOp[] = [{ put: { key: REVISION_KEY, value: '' } }];
      for (const c of plan.changes) {
        const key = objectEtcdKey(c.kind, c.name);
        if (c.type === 'put' && c.object !== undefined) ops.push({ put: { key, value: JSON.stringify({ kind: c.kind, name: c.name, spec: c.object.spec }) } });
        else ops.push({ delete: { key } });
      }
      const compare = [{ key: REVISION_KEY, target: 'mod' as const, revision: base },
        ...plan.changes.map((c) => ({ key: objectEtcdKey(c.kind, c.name), target: 'mod' as const, revision: expected.get(objectKey(c.kind, c.name)) ?? 0 }))];
      const r = await this.#client.txn(compare, ops, [{ range: { key: REVISION_KEY } }]);
      if (r.succeeded) {
        await this.#reach(r.revision);
        const event = this.#history.find((e) => e.revision === r.revision);
        return { ok: true, revision: r.revision, changes: event?.changes ?? plan.changes, dryRun };
      }
      // Someone else committed since the mirror's revision: catch up, then plan again.
      await this.#reach(r.ranges[0]?.[0]?.modRevision ?? 0);
    }
    throw storeError(`the state kept changing under this commit (${ATTEMPTS} attempts): try again`);
  }

  eventsSince(since: number): RevisionEvent[] | undefined {
    if (since >= this.#revision) return [];
    // etcd revisions are not contiguous: the history is complete for every revision after #completeAfter.
    if (since < this.#completeAfter) return undefined;
    return this.#history.filter((e) => e.revision > since);
  }

  subscribe(listener: (event: RevisionEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch?.close();
    this.#client.close();
    this.#listeners.clear();
    for (const w of this.#waiters) w();
  }
}
