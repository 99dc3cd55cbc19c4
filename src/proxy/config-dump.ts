// The body of GET /config_dump: the snapshot in force — its version, hash, source and load time, and every
// definition — with secrets redacted. PEM files are shown by size and sha256 only (a private key is never printed);
// unlimited numbers (a breaker without max_retries) are written as "unlimited" instead of JSON's null.
import { createHash } from 'node:crypto';
import type { ConfigSnapshot, SnapshotSource } from '../config/config-snapshot.js';

export function describeSource(s: SnapshotSource): string {
  switch (s.kind) {
    case 'file': return `file:${s.path}`;
    case 'admin': return `admin:${s.change}`;
    case 'inline': return `inline:${s.name}`;
    case 'defaults': return 'defaults';
  }
}

export function configDump(snapshot: ConfigSnapshot): unknown {
  const files: Record<string, { bytes: number; sha256: string; content: string }> = {};
  for (const [path, pem] of Object.entries(snapshot.files)) {
    files[path] = { bytes: Buffer.byteLength(pem), sha256: createHash('sha256').update(pem).digest('hex'), content: '[redacted]' };
  }
  const body = {
    version: snapshot.version,
    hash: snapshot.hash,
    source: describeSource(snapshot.source),
    loadedAt: new Date(snapshot.loadedAt).toISOString(),
    proxy: snapshot.proxy,
    registry: snapshot.registry,
    services: snapshot.services,
    routes: snapshot.routes,
    trafficPolicies: snapshot.trafficPolicies,
    authorizations: snapshot.authorizations,
    files,
  };
  return JSON.parse(JSON.stringify(body, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? 'unlimited' : v)));
}
