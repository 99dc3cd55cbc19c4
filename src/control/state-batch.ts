// Optimistic concurrency, as a pure function: a batch of writes and deletes, each carrying the version it expects
// (0: the object must not exist), applied to the current objects. Any mismatch refuses the whole batch (409); an
// object named twice is a malformed batch (400). A write whose spec equals the stored one changes nothing (its version
// stays). The versions of the changed objects become `revision`, the store's next revision (etcd's mod_revision).
import { objectKey, type ControlObject, type ObjectIssue, type ObjectKind, type ObjectSpec } from './control-objects.js';

export interface ObjectWrite {
  readonly kind: ObjectKind;
  readonly name: string;
  readonly spec: ObjectSpec;
  /** The version the writer last saw; 0 to create. */
  readonly version: number;
}

export interface ObjectDelete {
  readonly kind: ObjectKind;
  readonly name: string;
  readonly version: number;
}

export interface Batch {
  readonly writes: readonly ObjectWrite[];
  readonly deletes: readonly ObjectDelete[];
}

export interface Change {
  readonly type: 'put' | 'delete';
  readonly kind: ObjectKind;
  readonly name: string;
  /** put: the object as stored now. */
  readonly object?: ControlObject;
  /** The object before (absent for a creation). */
  readonly previous?: ControlObject;
}

export interface Conflict {
  readonly kind: ObjectKind;
  readonly name: string;
  readonly expected: number;
  /** The version found; 0 when there is no such object. */
  readonly found: number;
}

export type BatchPlan =
  | { readonly ok: true; readonly next: ReadonlyMap<string, ControlObject>; readonly changes: readonly Change[] }
  | { readonly ok: false; readonly status: 400; readonly issues: readonly ObjectIssue[] }
  | { readonly ok: false; readonly status: 409; readonly conflicts: readonly Conflict[] };

export function sameSpec(a: ObjectSpec, b: ObjectSpec): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

export function formatConflict(c: Conflict): string {
  const found = c.found === 0 ? 'it does not exist' : `its version is ${c.found}`;
  const expected = c.expected === 0 ? 'expected it not to exist (version 0: create)' : `expected version ${c.expected}`;
  return `${c.kind} ${c.name}: ${expected}, but ${found} (changed by someone else: read it again)`;
}

export function planBatch(current: ReadonlyMap<string, ControlObject>, batch: Batch, revision: number): BatchPlan {
  const seen = new Set<string>();
  const issues: ObjectIssue[] = [];
  for (const o of [...batch.writes, ...batch.deletes]) {
    const key = objectKey(o.kind, o.name);
    if (seen.has(key)) issues.push({ kind: o.kind, name: o.name, expected: 'each object once per batch' });
    seen.add(key);
  }
  if (issues.length > 0) return { ok: false, status: 400, issues };
  const conflicts: Conflict[] = [];
  const check = (o: { kind: ObjectKind; name: string; version: number }): ControlObject | undefined => {
    const found = current.get(objectKey(o.kind, o.name));
    if ((found?.version ?? 0) !== o.version) conflicts.push({ kind: o.kind, name: o.name, expected: o.version, found: found?.version ?? 0 });
    return found;
  };
  const next = new Map(current);
  const changes: Change[] = [];
  for (const w of batch.writes) {
    const previous = check(w);
    if (previous !== undefined && sameSpec(previous.spec, w.spec)) continue;
    const object: ControlObject = { kind: w.kind, name: w.name, spec: { ...w.spec }, version: revision };
    next.set(objectKey(w.kind, w.name), object);
    changes.push({ type: 'put', kind: w.kind, name: w.name, object, ...(previous === undefined ? {} : { previous }) });
  }
  for (const d of batch.deletes) {
    const previous = check(d);
    if (previous === undefined) continue; // a conflict (version > 0) or deleting what is not there at version 0
    next.delete(objectKey(d.kind, d.name));
    changes.push({ type: 'delete', kind: d.kind, name: d.name, previous });
  }
  if (conflicts.length > 0) return { ok: false, status: 409, conflicts };
  return { ok: true, next, changes };
}
