// The real `remora control` over loopback TLS (verified against the mesh root it created) and the real `remora ctl`.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlProcess, READ_TOKEN, WRITE_TOKEN, api, runRemora, tempDir, watch } from './control-harness.js';

const MESH = `[proxy]
outbound_port = 15001
connect_timeout = 3s

[service web]
addresses = 10.96.0.10:80
endpoints = 10.1.0.1:8080 subset=v1, 10.1.0.2:8080 subset=v2

[route web]
service = web
backends = web/v1=100, web/v2=0
`;

describe('remora control and remora ctl', () => {
  const tmp = tempDir('remora-control-');
  const cp = new ControlProcess(join(tmp.dir, 'data'));
  let ca = '';
  const ctl = (args: string[], token = WRITE_TOKEN) => runRemora(['ctl', '--server', cp.url, '--token', token, '--ca-file', cp.rootFile, ...args], { cwd: tmp.dir });
  const revision = async (): Promise<number> => ((await api(cp.url, ca, 'GET', '/api/v1/state', { token: READ_TOKEN })).json as { revision: number }).revision;

  before(async () => {
    await cp.ready();
    ca = cp.root;
  });
  after(async () => {
    await cp.stop();
    tmp.remove();
  });

  test('first start creates the mesh CA in DIR; the listener is TLS with a certificate of that CA naming the listen address', async () => {
    for (const f of ['ca.json', 'root-cert.pem', 'root-key.pem', 'state.json'].slice(0, 3)) assert.ok(existsSync(join(cp.dataDir, f)), f);
    const served = await new Promise<X509Certificate>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: cp.port, ca, ALPNProtocols: ['h2'] }, () => {
        const der = s.getPeerX509Certificate();
        s.end();
        if (der === undefined) reject(new Error('no certificate')); else resolve(der);
      });
      s.on('error', reject);
    });
    assert.ok(served.checkIssued(new X509Certificate(ca)));
    assert.match(served.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    // Not trusted without the mesh root: the client's default CAs refuse it.
    await assert.rejects(api(cp.url, '', 'GET', '/api/v1/openapi.json').catch((err: Error) => { throw err; }), /certificate|self.signed|issuer/i);
    const root = await api(cp.url, ca, 'GET', '/api/v1/ca/root');
    assert.equal(root.status, 200);
    assert.equal(root.text, readFileSync(cp.rootFile, 'utf8'));
  });

  test('tokens: none or unknown is 401, a read token reads but cannot write (403), nothing is stored', async () => {
    const none = await api(cp.url, ca, 'GET', '/api/v1/services');
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /^Bearer/);
    assert.equal((none.json as { error: string }).error, 'REMORA_ERR_CONTROL_AUTH');
    assert.equal((await api(cp.url, ca, 'GET', '/api/v1/services', { token: 'unknown-token-0123456789' })).status, 401);
    assert.equal((await api(cp.url, ca, 'GET', '/api/v1/services', { token: READ_TOKEN })).status, 200);
    const rev = await revision();
    const write = await api(cp.url, ca, 'PUT', '/api/v1/services/api', { token: READ_TOKEN, body: JSON.stringify({ spec: { addresses: '10.96.0.1:80' }, version: 0 }) });
    assert.equal(write.status, 403);
    assert.equal(await revision(), rev);
    assert.equal((await api(cp.url, ca, 'GET', '/api/v1/services/api', { token: READ_TOKEN })).status, 404);
  });

  test('malformed and invalid writes are 4xx with the reason (object, field, expected) and store nothing', async () => {
    const rev = await revision();
    const put = (path: string, body: string) => api(cp.url, ca, 'PUT', path, { token: WRITE_TOKEN, body });
    const notJson = await put('/api/v1/services/api', '{"spec":');
    assert.equal(notJson.status, 400);
    assert.match((notJson.json as { message: string }).message, /not JSON/);
    const noVersion = await put('/api/v1/services/api', JSON.stringify({ spec: { addresses: '10.96.0.1:80' } }));
    assert.equal(noVersion.status, 400);
    assert.match((noVersion.json as { message: string }).message, /"version"/);
    const invalid = await put('/api/v1/services/api', JSON.stringify({ spec: { addresses: '10.96.0.1:80', endpoints: '10.1.0.9:80', balancer: 'fastest' }, version: 0 }));
    assert.equal(invalid.status, 422);
    const body = invalid.json as { error: string; issues: { kind: string; name: string; field: string; value: string; expected: string }[] };
    assert.equal(body.error, 'REMORA_ERR_CONTROL_INVALID');
    assert.deepEqual(body.issues.map((i) => [i.kind, i.name, i.field, i.value]), [['service', 'api', 'balancer', 'fastest']]);
    assert.match(body.issues[0]?.expected ?? '', /round-robin|least/);
    const unknownKind = await put('/api/v1/widgets/x', '{}');
    assert.equal(unknownKind.status, 404);
    const method = await api(cp.url, ca, 'POST', '/api/v1/services/api', { token: WRITE_TOKEN, body: '{}' });
    assert.equal(method.status, 405);
    assert.equal(await revision(), rev);
  });

  test('versions: 0 creates, the version read replaces, a stale version is 409 and changes nothing', async () => {
    const put = (spec: Record<string, string>, version: number) => api(cp.url, ca, 'PUT', '/api/v1/services/db', { token: WRITE_TOKEN, body: JSON.stringify({ spec, version }) });
    const created = await put({ addresses: '10.96.0.5:5432', endpoints: '10.1.0.5:5432' }, 0);
    assert.equal(created.status, 200, created.text);
    const v1 = (created.json as { object: { version: number } }).object.version;
    const replaced = await put({ addresses: '10.96.0.6:5432', endpoints: '10.1.0.5:5432' }, v1);
    assert.equal(replaced.status, 200);
    const v2 = (replaced.json as { object: { version: number } }).object.version;
    assert.ok(v2 > v1);
    const stale = await put({ addresses: '10.96.0.7:5432', endpoints: '10.1.0.5:5432' }, v1);
    assert.equal(stale.status, 409);
    assert.deepEqual((stale.json as { conflicts: unknown[] }).conflicts, [{ kind: 'service', name: 'db', expected: v1, found: v2 }]);
    const again = await put({ addresses: '10.96.0.7:5432', endpoints: '10.1.0.5:5432' }, 0);
    assert.equal(again.status, 409);
    const now = await api(cp.url, ca, 'GET', '/api/v1/services/db', { token: READ_TOKEN });
    assert.equal((now.json as { spec: { addresses: string } }).spec.addresses, '10.96.0.6:5432');
    const del = await api(cp.url, ca, 'DELETE', `/api/v1/services/db?version=${v2}`, { token: WRITE_TOKEN });
    assert.equal(del.status, 200);
    assert.equal((await api(cp.url, ca, 'GET', '/api/v1/services/db', { token: READ_TOKEN })).status, 404);
  });

  test('remora ctl apply -f, get, set-weights, diff and delete; refusals name object, field, expected and exit non-zero', async () => {
    const file = join(tmp.dir, 'mesh.ini');
    writeFileSync(file, MESH);
    const applied = await ctl(['apply', '-f', file]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /service\/web created/);
    assert.match(applied.stderr, /outbound_port: .*per-pod key/);
    const again = await ctl(['apply', '-f', file]);
    assert.match(again.stdout, /route\/web unchanged/);
    const noDiff = await ctl(['diff', '-f', file]);
    assert.equal(noDiff.code, 0, noDiff.stderr);

    const got = await ctl(['get', 'routes', '-o', 'json']);
    assert.equal(got.code, 0, got.stderr);
    const routes = JSON.parse(got.stdout) as { objects: { name: string; spec: { backends: string } }[] };
    assert.deepEqual(routes.objects.map((o) => o.spec.backends), ['web/v1=100, web/v2=0']);
    assert.match((await ctl(['get'])).stdout, /^KIND +NAME +VERSION +SPEC\n(.|\n)*service +web +\d+/);

    const shifted = await ctl(['set-weights', 'web', 'web/v1=90', 'web/v2=10']);
    assert.equal(shifted.code, 0, shifted.stderr);
    const route = await api(cp.url, ca, 'GET', '/api/v1/routes/web', { token: READ_TOKEN });
    assert.equal((route.json as { spec: { backends: string } }).spec.backends, 'web/v1=90, web/v2=10');
    const badWeights = await ctl(['set-weights', 'web', 'web/v1=90', 'web/v3=10']);
    assert.equal(badWeights.code, 1);
    assert.match(badWeights.stderr, /REMORA_ERR_CONTROL_INVALID/);
    assert.match(badWeights.stderr, /route web backends = "web\/v3": expected one of the route's backends \(web\/v1, web\/v2\)/);

    const diff = await ctl(['diff', '-f', file]);
    assert.equal(diff.code, 1);
    assert.match(diff.stdout, /~ route web[^\n]*\n-   backends = web\/v1=90, web\/v2=10\n\+   backends = web\/v1=100, web\/v2=0/);

    // A file that names a missing service: refused as a whole, nothing stored, the route's field named.
    const rev = await revision();
    const broken = join(tmp.dir, 'broken.ini');
    writeFileSync(broken, '[route api]\nservice = api\nbackends = api-v1\n');
    const refused = await ctl(['apply', '-f', broken]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /route api service = "api": expected/);
    assert.equal(await revision(), rev);

    const deleteReadOnly = await ctl(['delete', 'route', 'web'], READ_TOKEN);
    assert.equal(deleteReadOnly.code, 1);
    assert.match(deleteReadOnly.stderr, /REMORA_ERR_CONTROL_AUTH: this token does not have the write scope/);
    const deleteService = await ctl(['delete', 'service', 'web']);
    assert.equal(deleteService.code, 1, 'the route still names it');
    assert.match(deleteService.stderr, /route web service = "web"/);
    const unknownVerb = await ctl(['frobnicate']);
    assert.equal(unknownVerb.code, 2);

    // Another CA's root does not verify this control plane; a closed port is unreachable: exit 1, the reason named.
    const otherCa = join(tmp.dir, 'other-ca');
    assert.equal((await runRemora(['ca', 'init', '--dir', otherCa])).code, 0);
    const foreign = await runRemora(['ctl', '--server', cp.url, '--token', READ_TOKEN, '--ca-file', join(otherCa, 'root-cert.pem'), 'get']);
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /REMORA_ERR_CONTROL_UNREACHABLE: .*(certificate|signature)/i);
    const closed = await runRemora(['ctl', '--server', 'https://127.0.0.1:1', '--token', READ_TOKEN, '--ca-file', cp.rootFile, 'get']);
    assert.equal(closed.code, 1);
    assert.match(closed.stderr, /REMORA_ERR_CONTROL_UNREACHABLE: .*ECONNREFUSED/);
  });

  test('watch streams each committed revision as a Server-Sent Event over HTTP/2', async () => {
    const rev = await revision();
    const w = watch(cp.url, ca, READ_TOKEN, `?since=${rev}`);
    try {
      assert.equal(await w.status, 200);
      await w.next((e) => e.event === 'hello');
      const put = await api(cp.url, ca, 'PUT', '/api/v1/authorizations/allow-web', { token: WRITE_TOKEN, body: JSON.stringify({ spec: { action: 'allow', from_cidrs: '10.0.0.0/8' }, version: 0 }) });
      assert.equal(put.status, 200, put.text);
      const change = await w.next((e) => e.event === 'change');
      const data = JSON.parse(change.data) as { revision: number; changes: { type: string; kind: string; name: string }[] };
      assert.equal(data.revision, rev + 1);
      assert.deepEqual(data.changes.map((c) => [c.type, c.kind, c.name]), [['put', 'authorization', 'allow-web']]);
    } finally {
      w.close();
    }
    const old = watch(cp.url, ca, READ_TOKEN, '?since=0');
    try {
      assert.equal(await old.status, 200, 'history since this process started is kept');
    } finally {
      old.close();
    }
  });

  test('the OpenAPI description is served and describes every path the CLI uses', async () => {
    const r = await api(cp.url, ca, 'GET', '/api/v1/openapi.json');
    assert.equal(r.status, 200);
    const doc = r.json as { openapi: string; paths: Record<string, unknown> };
    assert.equal(doc.openapi, '3.1.0');
    for (const p of ['/api/v1/services/{name}', '/api/v1/routes/{name}/weights', '/api/v1/apply', '/api/v1/state', '/api/v1/watch', '/api/v1/sidecars', '/api/v1/ca/root', '/api/v1/mesh']) {
      assert.ok(p in doc.paths, p);
    }
  });
});

describe('the data directory', () => {
  test('state and CA survive a restart; a second control on the same directory is refused while the first runs', async () => {
    const tmp = tempDir('remora-control-restart-');
    const dataDir = join(tmp.dir, 'data');
    let first = new ControlProcess(dataDir);
    let second: ControlProcess | undefined;
    try {
      await first.ready();
      const ca = first.root;
      const put = await api(first.url, ca, 'PUT', '/api/v1/services/web', { token: WRITE_TOKEN, body: JSON.stringify({ spec: { addresses: '10.96.0.10:80', endpoints: '10.1.0.1:80' }, version: 0 }) });
      assert.equal(put.status, 200, put.text);

      second = new ControlProcess(dataDir);
      const code = await second.exited;
      assert.equal(code, 1);
      assert.match(second.output, /REMORA_ERR_CONTROL_STORE: .*in use by another remora control/);

      await first.stop();
      first = new ControlProcess(dataDir);
      await first.ready();
      assert.equal(first.root, ca, 'the CA is not created again');
      const state = await api(first.url, ca, 'GET', '/api/v1/state', { token: READ_TOKEN });
      const s = state.json as { revision: number; objects: { kind: string; name: string; version: number }[] };
      assert.equal(s.revision, 1);
      assert.deepEqual(s.objects.map((o) => [o.kind, o.name, o.version]), [['service', 'web', 1]]);
      const gone = watch(first.url, ca, READ_TOKEN, '?since=0');
      try {
        assert.equal(await gone.status, 410, 'history from before the restart is not kept: re-list');
      } finally {
        gone.close();
      }
    } finally {
      await first.stop();
      await second?.stop();
      tmp.remove();
    }
  });

  test('bad flags exit 2 and name the flag; no token is refused (no anonymous writes)', async () => {
    const tmp = tempDir('remora-control-flags-');
    try {
      const r = await runRemora(['control', '--data-dir', join(tmp.dir, 'd'), '--listen', 'nowhere', '--store', 'etcd://127.0.0.1:2379']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--listen = "nowhere": expected HOST:PORT/);
      assert.match(r.stderr, /--data-dir: expected either --data-dir DIR \(embedded store\) or --store etcd:\/\/\.\.\. \(state and CA in etcd\), not both/);
      assert.match(r.stderr, /--token: expected at least one token/);
      assert.equal(existsSync(join(tmp.dir, 'd')), false, 'nothing was created');
    } finally {
      tmp.remove();
    }
  });
});
