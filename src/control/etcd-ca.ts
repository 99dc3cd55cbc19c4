// The mesh CA of `remora control --store etcd://...`: shared by every replica through etcd, so that all of them sign
// with one root and serve one trust bundle (GET /api/v1/ca/root). The files of `remora ca` (ca.json,
// root-cert.pem, root-key.pem) are kept under /remora/ca/; the first replica to start creates the CA and writes all
// three in one create-if-absent transaction (compare create_revision of /remora/ca/ca.json = 0): of two replicas
// starting at once, one wins and the other adopts the winner's CA. Each replica materializes the files in a private
// temporary directory (0700, the key 0600) for CaStore, removed at close. The root key is therefore as secret as
// etcd's data: restrict who can reach etcd (docs/control-plane.md#stores).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RemoraError } from '../core/errors.js';
import { CA_FILES, CaStore } from '../pki/ca-store.js';
import type { EtcdClient, EtcdKv } from './etcd-client.js';

export const CA_PREFIX = '/remora/ca/';
const FILES = [CA_FILES.meta, CA_FILES.rootCert, CA_FILES.rootKey] as const;

export interface SharedCa {
  readonly ca: CaStore;
  /** True when this replica created the CA (it was not in etcd). */
  readonly created: boolean;
  /** Remove the materialized files. */
  remove(): void;
}

function materialize(kvs: readonly EtcdKv[]): { dir: string; remove: () => void } {
  const byName = new Map(kvs.filter((kv) => kv.key.startsWith(CA_PREFIX)).map((kv) => [kv.key.slice(CA_PREFIX.length), kv.value]));
  const missing = FILES.filter((f) => !byName.has(f));
  if (missing.length > 0) {
    throw new RemoraError('REMORA_ERR_CA', `the mesh CA in etcd is incomplete: ${missing.map((f) => CA_PREFIX + f).join(', ')} missing (expected all of ${FILES.map((f) => CA_PREFIX + f).join(', ')})`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'remora-ca-'));
  for (const f of FILES) writeFileSync(join(dir, f), byName.get(f) ?? '', { mode: f === CA_FILES.rootKey ? 0o600 : 0o644 });
  return { dir, remove: () => { rmSync(dir, { recursive: true, force: true }); } };
}

/** Load the shared CA from etcd, creating it (once, for every replica) when absent. */
export async function openSharedCa(client: EtcdClient, request: { trustDomain: string; ttlMs: number; now: number }): Promise<SharedCa> {
  const found = await client.range(CA_PREFIX, { prefix: true });
  let created = false;
  let kvs: readonly EtcdKv[] = found.kvs;
  if (!kvs.some((kv) => kv.key === CA_PREFIX + CA_FILES.meta)) {
    const staging = mkdtempSync(join(tmpdir(), 'remora-ca-new-'));
    try {
      await CaStore.init(staging, request);
      const puts = FILES.map((f) => ({ put: { key: CA_PREFIX + f, value: readFileSync(join(staging, f), 'utf8') } }));
      const r = await client.txn([{ key: CA_PREFIX + CA_FILES.meta, target: 'create', revision: 0 }], puts, [{ range: { key: CA_PREFIX, prefix: true } }]);
      created = r.succeeded;
      kvs = r.succeeded ? FILES.map((f, i) => ({ key: CA_PREFIX + f, value: puts[i]?.put.value ?? '', modRevision: r.revision, createRevision: r.revision })) : (r.ranges[0] ?? []);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  const files = materialize(kvs);
  try {
    return { ca: CaStore.open(files.dir), created, remove: files.remove };
  } catch (err) {
    files.remove();
    throw err;
  }
}
