// What the API and the sidecar sync need from a store of the desired state, whichever it is: the embedded store of
// `--data-dir DIR` (EmbeddedStore) or etcd (`--store etcd://...`, EtcdStore). Reads are synchronous (a store keeps
// the current state in memory: the embedded one is its owner, the etcd one a mirror fed by a watch); a commit may be
// asynchronous. Every committed revision reaches `subscribe`rs once, in order, whoever made it.
import type { ControlObject, ObjectKind } from './control-objects.js';
import type { CandidateCheck, CommitResult, RevisionEvent } from './embedded-store.js';
import type { Batch } from './state-batch.js';

export interface ControlStore {
  /** The revision of the state served now (0: nothing ever written). */
  readonly revision: number;
  /** Every object (of a kind), sorted by kind then name. */
  list(kind?: ObjectKind): ControlObject[];
  get(kind: ObjectKind, name: string): ControlObject | undefined;
  /** Apply a batch (versions checked: 409; the candidate state checked: 422), as one revision. */
  commit(batch: Batch, check: CandidateCheck, options?: { dryRun?: boolean }): CommitResult | Promise<CommitResult>;
  /** The revisions after `since`, or undefined when some are no longer kept (the watcher must re-list). */
  eventsSince(since: number): RevisionEvent[] | undefined;
  /** Hear every committed revision; returns the unsubscribe function. */
  subscribe(listener: (event: RevisionEvent) => void): () => void;
  close(): Promise<void>;
}
