// `remora control --store etcd://...` against real etcd members (etcd-harness.ts): replicas sharing one state and one
// CA, a change through one reaching a sidecar subscribed to another, optimistic concurrency across replicas (one 409),
// a replica killed and restarted without loss, an etcd member killed with the quorum left. Bounded waits on state only.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as netConnect, createServer as netServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ControlObject } from '../../../src/control/control-objects.js';
import { EtcdClient, parseEtcdUrl } from '../../../src/control/etcd-client.js';
import { EtcdStore } from '../../../src/control/etcd-store.js';
import { ControlProcess, READ_TOKEN, REMORA, WRITE_TOKEN, adminGet, api, freePorts, runRemora, tempDir, waitFor, watch } from './control-harness.js';
import { EtcdCluster, NO_ETCD } from './etcd-harness.js';

const SIDECAR_TOKEN = 'sidecar-token-0123456789abcdef';

interface ObjectJson { kind: string; name: string; version: number; spec: Record<string, string> }
interface StateJson { revision: number; objects: ObjectJson[] }

const WEB = [
  { kind: 'service', name: 'web', version: 0, spec: { addresses: '10.96.0.10:80', endpoints: '10.1.0.1:8080 subset=v1, 10.1.0.2:8080 subset=v2' } },
  { kind: 'route', name: 'web', version: 0, spec: { service: 'web', backends: 'web/v1=100, web/v2=0' } },
];

/** The mesh root as stored in etcd (the replicas' shared CA). */
async function rootFromEtcd(storeUrl: string): Promise<string> {
  const p = parseEtcdUrl(storeUrl);
  if (!p.ok) throw new Error(p.expected);
  const client = new EtcdClient(p.endpoints);
  const r = await client.range('/remora/ca/root-cert.pem');
  client.close();
  const pem = r.kvs[0]?.value;
  if (pem === undefined || !pem.startsWith('-----BEGIN CERTIFICATE-----')) throw new Error('the root certificate is not in etcd under /remora/ca/root-cert.pem');
  return pem;
}

async function state(cp: ControlProcess, ca: string): Promise<StateJson> {
  const r = await api(cp.url, ca, 'GET', '/api/v1/state', { token: READ_TOKEN });
  assert.equal(r.status, 200, r.text);
  return r.json as StateJson;
}

async function startReplica(storeUrl: string, dir: string, listen = '127.0.0.1:0'): Promise<ControlProcess> {
  return new ControlProcess(dir, ['--token', `sidecar:${SIDECAR_TOKEN}`], listen, storeUrl).ready();
}

async function killReplica(cp: ControlProcess): Promise<void> {
  if (cp.child.exitCode !== null || cp.child.signalCode !== null) return;
  cp.child.kill('SIGKILL');
  await cp.exited;
}

test('two replicas on one etcd: a write through A is seen by B\'s API, watch and subscribed sidecar; conflicting writes through A and B give one 409', { skip: NO_ETCD }, async () => {
  const tmp = tempDir('remora-etcd-replicas-');
  const etcd = await EtcdCluster.start(1);
  const replicas: ControlProcess[] = [];
  let proxy: ChildProcess | undefined;
  let proxyExit: Promise<unknown> = Promise.resolve();
  let proxyOut = '';
  try {
    const url = etcd.storeUrl();
    // Started together: both find no CA in etcd, both create one, one create-if-absent transaction wins.
    const [a, b] = await Promise.all([startReplica(url, join(tmp.dir, 'a')), startReplica(url, join(tmp.dir, 'b'))]);
    replicas.push(a, b);
    const ca = await rootFromEtcd(url);
    // One CA for both: each serves the root from etcd, and each serving certificate verifies against it.
    for (const cp of [a, b]) {
      const r = await api(cp.url, ca, 'GET', '/api/v1/ca/root');
      assert.equal(r.status, 200);
      assert.equal(r.text, ca);
    }
    assert.equal((a.output.match(/"event":"control.ca.created"/g) ?? []).length + (b.output.match(/"event":"control.ca.created"/g) ?? []).length, 1,
      'the CA was created once, by one replica');

    // A sidecar subscribed to B.
    const [outbound = 0, inbound = 0, admin = 0] = await freePorts(3);
    const caFile = join(tmp.dir, 'root-cert.pem');
    writeFileSync(caFile, ca);
    const proxyIni = join(tmp.dir, 'proxy.ini');
    writeFileSync(proxyIni, `[proxy]\noutbound_port = ${outbound}\ninbound_port = ${inbound}\nlisten_address = 127.0.0.1\n`
      + `admin_address = 127.0.0.1:${admin}\nuid = ${process.geteuid?.() ?? 0}\ngid = ${process.getegid?.() ?? 0}\n`
      + 'readiness_probe_interval = off\ndrain_grace = 0\n');
    const child = spawn(process.execPath, [REMORA, 'proxy', '--config', proxyIni, '--control', b.url, '--token', SIDECAR_TOKEN, '--control-ca-file', caFile],
      { env: { ...process.env, POD_NAME: 'pod-b' }, stdio: ['ignore', 'pipe', 'pipe'] });
    proxy = child;
    child.stdout.on('data', (d: Buffer) => { proxyOut += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { proxyOut += d.toString(); });
    proxyExit = new Promise((r) => { child.on('close', r); });
    await waitFor('pod-b connected to B', async () => {
      const s = ((await api(b.url, ca, 'GET', '/api/v1/sidecars', { token: READ_TOKEN })).json as { sidecars: { name: string; connected: boolean }[] }).sidecars;
      return s.find((x) => x.name === 'pod-b' && x.connected);
    });
    const w = watch(b.url, ca, READ_TOKEN);

    const apply = await api(a.url, ca, 'POST', '/api/v1/apply', { token: WRITE_TOKEN, body: JSON.stringify({ writes: WEB }) });
    assert.equal(apply.status, 200, apply.text);
    const rev = (apply.json as { revision: number }).revision;
    assert.ok(rev > 0);

    // B's API: the same revision, the same objects with their versions (etcd mod revisions).
    const seenByB = await waitFor('B at the revision of the write through A', async () => {
      const s = await state(b, ca);
      return s.revision === rev ? s : undefined;
    });
    assert.deepEqual(seenByB, await state(a, ca));
    assert.deepEqual(seenByB.objects.map((o) => [o.kind, o.name, o.version]), [['route', 'web', rev], ['service', 'web', rev]]);
    // B's watch: one change event for that revision, with both objects.
    const change = await w.next((e) => e.event === 'change' && (JSON.parse(e.data) as { revision: number }).revision === rev);
    assert.deepEqual((JSON.parse(change.data) as { changes: { type: string; kind: string; name: string }[] }).changes.map((c) => `${c.type} ${c.kind}/${c.name}`).sort(),
      ['put route/web', 'put service/web']);
    w.close();
    // The sidecar subscribed to B applied it.
    await waitFor('pod-b to apply the revision written through A', async () => {
      const s = ((await api(b.url, ca, 'GET', '/api/v1/sidecars', { token: READ_TOKEN })).json as { sidecars: { name: string; versionApplied: number; status: string }[] }).sidecars;
      return s.find((x) => x.name === 'pod-b' && x.versionApplied === rev && x.status === 'SYNCED');
    });
    const dump = (await adminGet(admin, '/config_dump')).json as { services: { name: string }[]; routes: { name: string }[] };
    assert.deepEqual(dump.services.map((s) => s.name), ['web']);
    assert.deepEqual(dump.routes.map((r) => r.name), ['web']);

    // Both replicas write the route at the version both read: exactly one wins, the other is a 409 and wrote nothing.
    const version = seenByB.objects.find((o) => o.kind === 'route')?.version ?? 0;
    const put = (cp: ControlProcess, v1: number) => api(cp.url, ca, 'PUT', '/api/v1/routes/web', {
      token: WRITE_TOKEN, body: JSON.stringify({ version, spec: { service: 'web', backends: `web/v1=${v1}, web/v2=${100 - v1}` } }),
    });
    const [ra, rb] = await Promise.all([put(a, 70), put(b, 40)]);
    assert.deepEqual([ra.status, rb.status].sort(), [200, 409], `${ra.text} ${rb.text}`);
    const loser = ra.status === 409 ? ra : rb;
    const winner = ra.status === 200 ? ra : rb;
    const lost = loser.json as { error: string; conflicts: { kind: string; name: string; expected: number; found: number }[] };
    assert.equal(lost.error, 'REMORA_ERR_CONTROL_CONFLICT');
    const winRev = (winner.json as { revision: number }).revision;
    assert.deepEqual(lost.conflicts, [{ kind: 'route', name: 'web', expected: version, found: winRev }]);
    const final = await waitFor('both replicas at the winning revision', async () => {
      const [sa, sb] = [await state(a, ca), await state(b, ca)];
      return sa.revision === winRev && sb.revision === winRev ? { sa, sb } : undefined;
    });
    assert.deepEqual(final.sa, final.sb);
    assert.equal(final.sa.objects.find((o) => o.kind === 'route')?.spec.backends, ra.status === 200 ? 'web/v1=70, web/v2=30' : 'web/v1=40, web/v2=60');
  } catch (err) {
    throw new Error(`${String(err)}\n--- replicas\n${replicas.map((r) => r.output.slice(-3000)).join('\n---\n')}\n--- proxy\n${proxyOut.slice(-3000)}`, { cause: err });
  } finally {
    proxy?.kill('SIGKILL');
    await proxyExit;
    for (const r of replicas) await killReplica(r);
    await etcd.stop();
    tmp.remove();
  }
});

test('a replica killed loses nothing: the other serves everything and takes writes; the restarted replica serves the same state', { skip: NO_ETCD }, async () => {
  const tmp = tempDir('remora-etcd-restart-');
  const etcd = await EtcdCluster.start(1);
  const replicas: ControlProcess[] = [];
  try {
    const url = etcd.storeUrl();
    const a = await startReplica(url, join(tmp.dir, 'a'));
    replicas.push(a);
    const b = await startReplica(url, join(tmp.dir, 'b'));
    replicas.push(b);
    const ca = await rootFromEtcd(url);
    const apply = await api(a.url, ca, 'POST', '/api/v1/apply', { token: WRITE_TOKEN, body: JSON.stringify({ writes: WEB }) });
    assert.equal(apply.status, 200, apply.text);
    const rev = (apply.json as { revision: number }).revision;
    await waitFor('B at the revision written through A', async () => ((await state(b, ca)).revision === rev ? true : undefined));

    await killReplica(a);
    const afterKill = await state(b, ca);
    assert.equal(afterKill.revision, rev);
    assert.deepEqual(afterKill.objects.map((o) => `${o.kind}/${o.name}`), ['route/web', 'service/web']);
    const del = await api(b.url, ca, 'DELETE', `/api/v1/routes/web?version=${rev}`, { token: WRITE_TOKEN });
    assert.equal(del.status, 200, del.text);
    const rev2 = (del.json as { revision: number }).revision;
    assert.ok(rev2 > rev);

    const a2 = await startReplica(url, join(tmp.dir, 'a2'));
    replicas.push(a2);
    assert.doesNotMatch(a2.output, /"event":"control.ca.created"/, 'the restarted replica adopts the CA in etcd');
    assert.equal((await api(a2.url, ca, 'GET', '/api/v1/ca/root')).text, ca);
    const restarted = await state(a2, ca);
    assert.deepEqual(restarted, await state(b, ca));
    assert.equal(restarted.revision, rev2);
    assert.deepEqual(restarted.objects.map((o) => [o.kind, o.name, o.version]), [['service', 'web', rev]]);
  } catch (err) {
    throw new Error(`${String(err)}\n--- replicas\n${replicas.map((r) => r.output.slice(-3000)).join('\n---\n')}`, { cause: err });
  } finally {
    for (const r of replicas) await killReplica(r);
    await etcd.stop();
    tmp.remove();
  }
});

test('a 3-member etcd cluster with one member killed: writes go on with the quorum, and a replica starts on the remaining members; without a quorum a write is a 503 and reads go on', { skip: NO_ETCD }, async () => {
  const tmp = tempDir('remora-etcd-quorum-');
  const etcd = await EtcdCluster.start(3);
  const replicas: ControlProcess[] = [];
  try {
    const url = etcd.storeUrl([0, 1, 2]);
    const a = await startReplica(url, join(tmp.dir, 'a'));
    replicas.push(a);
    const ca = await rootFromEtcd(url);
    const first = await api(a.url, ca, 'POST', '/api/v1/apply', { token: WRITE_TOKEN, body: JSON.stringify({ writes: WEB.slice(0, 1) }) });
    assert.equal(first.status, 200, first.text);

    // Member 0 is the first endpoint: the one the replica's requests and watch use. Kill it.
    await etcd.kill(0);
    await etcd.waitHealthy([1, 2]);
    const second = await api(a.url, ca, 'POST', '/api/v1/apply', { token: WRITE_TOKEN, body: JSON.stringify({ writes: WEB.slice(1) }) });
    assert.equal(second.status, 200, second.text);
    const rev = (second.json as { revision: number }).revision;
    // The commit returned once the replica's mirror had it: its watch moved to a live member.
    const s = await state(a, ca);
    assert.equal(s.revision, rev);
    assert.deepEqual(s.objects.map((o) => `${o.kind}/${o.name}`), ['route/web', 'service/web']);

    const b = await startReplica(url, join(tmp.dir, 'b'));
    replicas.push(b);
    assert.deepEqual(await state(b, ca), s);
    const third = await api(b.url, ca, 'PUT', '/api/v1/routes/web', {
      token: WRITE_TOKEN, body: JSON.stringify({ version: rev, spec: { service: 'web', backends: 'web/v1=50, web/v2=50' } }),
    });
    assert.equal(third.status, 200, third.text);
    const rev3 = (third.json as { revision: number }).revision;
    await waitFor('A at the revision written through B', async () => ((await state(a, ca)).revision === rev3 ? true : undefined));

    // A second member killed: no quorum. A write is refused with the reason (its outcome unknown to etcd's client, as
    // any write that timed out); reads are served from the replica's mirror.
    await etcd.kill(1);
    const noQuorum = await api(a.url, ca, 'POST', '/api/v1/apply', { token: WRITE_TOKEN, body: JSON.stringify({ writes: [
      { kind: 'service', name: 'api', version: 0, spec: { addresses: '10.96.0.11:80', endpoints: '10.1.0.3:8080' } }] }) });
    assert.equal(noQuorum.status, 503, noQuorum.text);
    assert.equal((noQuorum.json as { error: string }).error, 'REMORA_ERR_CONTROL_STORE');
    assert.equal((await state(a, ca)).revision, rev3);
    // Quorum back (member 1 restarted on its data): writes go on.
    etcd.restart(1);
    await etcd.waitHealthy([1, 2]);
    const after = await waitFor('a write once the quorum is back', async () => {
      const r = await api(b.url, ca, 'POST', '/api/v1/apply', { token: WRITE_TOKEN, body: JSON.stringify({ writes: [
        { kind: 'service', name: 'db', version: 0, spec: { addresses: '10.96.0.12:80', endpoints: '10.1.0.4:8080' } }] }) });
      // 409: an earlier attempt that answered 503 (outcome unknown) was committed after all.
      return r.status === 200 || r.status === 409 ? r : undefined;
    });
    const db = await waitFor('service db in A\'s state', async () => (await state(a, ca)).objects.find((o) => o.kind === 'service' && o.name === 'db'));
    if (after.status === 200) assert.equal(db.version, (after.json as { revision: number }).revision);
    assert.equal(db.spec.endpoints, '10.1.0.4:8080');
  } catch (err) {
    throw new Error(`${String(err)}\n--- replicas\n${replicas.map((r) => r.output.slice(-3000)).join('\n---\n')}`, { cause: err });
  } finally {
    for (const r of replicas) await killReplica(r);
    await etcd.stop();
    tmp.remove();
  }
});

test('remora control --store: a malformed URL or etcd unreachable at start is a clear error and a non-zero exit', async () => {
  const bad = await runRemora(['control', '--store', 'etcd:/127.0.0.1:2379', '--token', WRITE_TOKEN, '--listen', '127.0.0.1:0']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--store = "etcd:\/127\.0\.0\.1:2379": expected etcd:\/\/HOST:PORT\[,HOST:PORT\.\.\.\]/);
  // Port 1 on loopback: nothing listens there.
  const down = await runRemora(['control', '--store', 'etcd://127.0.0.1:1', '--token', WRITE_TOKEN, '--listen', '127.0.0.1:0']);
  assert.notEqual(down.code, 0);
  assert.match(down.stderr, /REMORA_ERR_CONTROL_STORE: etcd is unreachable at 127\.0\.0\.1:1 \(127\.0\.0\.1:1: ECONNREFUSED\)/);
});

test('two etcd stores committing different objects at once: every commit lands (a stale mirror is a retry, not a 409), one revision each, both mirrors equal', { skip: NO_ETCD }, async () => {
  const etcd = await EtcdCluster.start(1);
  const stores: EtcdStore[] = [];
  try {
    const p = parseEtcdUrl(etcd.storeUrl());
    if (!p.ok) throw new Error(p.expected);
    const [x, y] = [await EtcdStore.open(p.endpoints), await EtcdStore.open(p.endpoints)];
    stores.push(x, y);
    const seen: number[] = [];
    y.subscribe((e) => { seen.push(e.revision); });
    const none = (): [] => [];
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? x : y).commit({
      writes: [{ kind: 'service', name: `s${i}`, version: 0, spec: { addresses: `10.96.1.${i}:80`, endpoints: `10.2.0.${i}:8080` } }], deletes: [],
    }, none)));
    const revisions = results.map((r) => { assert.ok(r.ok, JSON.stringify(r)); return r.revision; });
    assert.equal(new Set(revisions).size, 12, 'one revision per commit');
    const last = Math.max(...revisions);
    await waitFor('both mirrors at the last revision', async () => (x.revision === last && y.revision === last ? true : undefined));
    const names = (list: ControlObject[]): string[] => list.map((o) => `${o.name}@${o.version}`);
    assert.deepEqual(names(x.list()), names(y.list()));
    assert.equal(x.list('service').length, 12);
    assert.deepEqual(seen, [...revisions].sort((m, n) => m - n), 'the other store heard every revision once, in order');
    // The same object at a stale version through the other store: 409, nothing written.
    const first = x.get('service', 's0');
    assert.ok(first !== undefined);
    const moved = await x.commit({ writes: [{ kind: 'service', name: 's0', version: first.version, spec: { ...first.spec, endpoints: '10.2.1.1:8080' } }], deletes: [] }, none);
    assert.ok(moved.ok);
    const stale = await y.commit({ writes: [{ kind: 'service', name: 's0', version: first.version, spec: { ...first.spec, endpoints: '10.2.1.2:8080' } }], deletes: [] }, none);
    assert.deepEqual(stale, { ok: false, status: 409, conflicts: [{ kind: 'service', name: 's0', expected: first.version, found: moved.revision }] });
    assert.equal(y.revision, moved.revision);
    assert.equal(y.get('service', 's0')?.spec.endpoints, '10.2.1.1:8080');
    // eventsSince: any revision between two kept ones gives what follows it; the watch of the API relies on it.
    assert.deepEqual(y.eventsSince(revisions.sort((m, n) => m - n)[10] ?? 0)?.map((e) => e.revision), [last, moved.revision]);
  } finally {
    for (const s of stores) await s.close();
    await etcd.stop();
  }
});

/** A TCP relay to an etcd member that can cut every connection and refuse new ones until resumed. */
async function relay(targetPort: number): Promise<{ port: number; cut: () => void; resume: () => void; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let refusing = false;
  const server = netServer((c) => {
    if (refusing) { c.destroy(); return; }
    const u = netConnect(targetPort, '127.0.0.1');
    for (const s of [c, u]) { sockets.add(s); s.on('close', () => { sockets.delete(s); }); s.on('error', () => { c.destroy(); u.destroy(); }); }
    c.pipe(u);
    u.pipe(c);
  });
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  return {
    port: (server.address() as import('node:net').AddressInfo).port,
    cut: () => { refusing = true; for (const s of sockets) s.destroy(); },
    resume: () => { refusing = false; },
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => { resolve(); }); }),
  };
}

function compact(port: number, revision: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/v3/kv/compaction', method: 'POST', agent: false, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => { resolve(res.statusCode ?? 0); });
    });
    req.on('error', reject);
    req.end(JSON.stringify({ revision: String(revision), physical: true }));
  });
}

test('a store cut off while etcd compacts the revisions it missed re-reads the state and announces the difference as one change', { skip: NO_ETCD }, async () => {
  const etcd = await EtcdCluster.start(1);
  const stores: EtcdStore[] = [];
  const port = etcd.members[0]?.clientPort ?? 0;
  const r = await relay(port);
  try {
    const x = await EtcdStore.open([{ host: '127.0.0.1', port: r.port }]);
    const y = await EtcdStore.open([{ host: '127.0.0.1', port }]);
    stores.push(x, y);
    const none = (): [] => [];
    const svc = (name: string, version: number, ep: string) => ({ kind: 'service' as const, name, version, spec: { addresses: '10.96.2.1:80', endpoints: ep } });
    const made = await y.commit({ writes: [svc('a', 0, '10.3.0.1:80'), svc('b', 0, '10.3.0.2:80')], deletes: [] }, none);
    assert.ok(made.ok);
    await waitFor('x at the first revision', async () => (x.revision === made.revision ? true : undefined));
    const heard: { revision: number; changes: string[] }[] = [];
    x.subscribe((e) => { heard.push({ revision: e.revision, changes: e.changes.map((c) => `${c.type} ${c.name}`).sort() }); });

    r.cut();
    const changed = await y.commit({ writes: [svc('a', made.revision, '10.3.0.9:80'), svc('c', 0, '10.3.0.3:80')], deletes: [{ kind: 'service', name: 'b', version: made.revision }] }, none);
    assert.ok(changed.ok);
    // Compact past the revision x must resume from (a write outside the state moves etcd's revision beyond it).
    const bump = await y.client.txn([], [{ put: { key: '/remora-test/bump', value: '' } }]);
    assert.equal(await compact(port, bump.revision), 200);
    r.resume();

    await waitFor('x caught up after the compaction', async () => (x.revision === changed.revision ? true : undefined));
    assert.deepEqual(heard, [{ revision: changed.revision, changes: ['delete b', 'put a', 'put c'] }]);
    assert.deepEqual(x.list(), y.list());
    // It follows again: a commit through x lands and y sees it.
    const later = await x.commit({ writes: [svc('d', 0, '10.3.0.4:80')], deletes: [] }, none);
    assert.ok(later.ok);
    await waitFor('y sees the commit through x', async () => (y.get('service', 'd')?.version === later.revision ? true : undefined));
  } finally {
    for (const s of stores) await s.close();
    await r.close();
    await etcd.stop();
  }
});
