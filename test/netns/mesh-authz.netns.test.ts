// Authorization policies across real pods, over mesh mTLS: a server pod (remora init + proxy, mtls_mode = permissive,
// [authorization NAME] policies) running an HTTP app (8080), two TCP echo servers (7000, 7001), a gRPC server (50051)
// and a WebSocket echo (8090); two client pods with sidecars and different SPIFFE IDs (web: ns default, other: ns
// batch) reaching them as [service] mtls = true; a pod "plain" without sidecar with two addresses, one of them in a
// denied CIDR. Checked:
// - an HTTP matrix: allow by identity + method + path prefix, deny by path (also a path that only normalizes to it),
//   deny by CIDR, an allow for a path open to everyone (plaintext too), an audit policy; a denied request gets 403
//   with the body `RBAC: access denied` and x-remora-error: rbac-denied and never reaches the app; every row's
//   counters (/stats authz, per policy) exactly; the authz.denied log lines name the policy or no-allow-matched;
// - a TCP matrix: allow by identity and by namespace, each scoped to_ports; the CIDR deny: allowed connections echo,
//   denied ones are closed, none of their bytes reaching the app, counted and REMORA_ERR_AUTHZ_DENIED;
// - gRPC (grpc-js) over the mesh hop: unary, client streaming and an app error status pass; the server-streaming
//   method denied by path gets status 7 (PERMISSION_DENIED); the other identity gets 7 on every call;
// - WebSocket (ws) over the mesh hop: the echo works for the allowed identity, the upgrade is refused (403) for the
//   other;
// - a client whose certificate is in the last fifth of its validity: identity.expiring counted and logged, /certs
//   shows the seconds left, its mTLS still accepted;
// - a proxy started with a bad identity_dir (key of another certificate, a missing file, an expired certificate)
//   exits 2 with REMORA_ERR_CONFIG_INVALID naming the file.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HOUR, spiffe, TestCa } from '../support/mesh-pki.js';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { tempDir } from './l4-helpers.js';
import { curlFull, httpStats, runL7Tool, startL7Tool } from './l7-helpers.js';
import {
  certs, CLIENT_ID, delta, giveToProxy, logsSince, meshService, meshStats, served, SERVER_ID, startMeshTool, startSidecar, tcpExchange,
  type EchoView, type ExchangeResult, type MeshTool, type Sidecar,
} from './mesh-helpers.js';
import { logRecords } from './proxy-helpers.js';
import { REMORA_BIN } from './remora-process.js';

const opts = netnsTestOptions();
const OTHER_ID = spiffe('batch', 'worker');

interface GrpcResult {
  readonly unary: Record<string, number>;
  readonly failed: { code: number; details?: string };
  readonly stream: { messages: number; code: number };
  readonly upload: { code: number; text?: string; index?: number };
  readonly error?: string;
}

interface WsResult {
  readonly got: number;
  readonly inOrder?: boolean;
  readonly binaryOk: boolean;
  readonly closeCode?: number;
  readonly error?: string;
}

describe('authorization across pods over mesh mTLS', opts, () => {
  let mesh: Mesh;
  let server: Pod;
  let web: Pod;
  let other: Pod;
  let plain: Pod;
  let serverCar: Sidecar;
  let otherCar: Sidecar;
  let app: MeshTool;
  let tcpApps: MeshTool[] = [];
  /** A second address of the plain pod, outside the denied CIDR. */
  let plainAllowed = '';
  const tmp = tempDir('remora-mesh-authz-');
  let ca: TestCa;

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    server = await mesh.addPod('server');
    web = await mesh.addPod('web');
    other = await mesh.addPod('other');
    plain = await mesh.addPod('plain');
    plainAllowed = `${mesh.prefix4}.150`;
    await plain.execOk(['ip', 'addr', 'add', `${plainAllowed}/24`, 'dev', 'eth0']);
    // A root from two hours ago, so that leaves can be issued in the past (an expired one, one near its end).
    ca = await TestCa.create({ now: Date.now() - 2 * HOUR });
    const identity = async (name: string, id: string, issued: { now?: number; ttlMs?: number } = {}): Promise<string> => {
      const dir = join(tmp.dir, `${name}-identity`);
      await ca.writeIdentity(dir, id, issued);
      giveToProxy(dir);
      return dir;
    };
    app = await startMeshTool(server, ['http-echo', '::', '8080', 'api']);
    tcpApps = [await startMeshTool(server, ['tcp-echo', '::', '7000', 'tcp7000']), await startMeshTool(server, ['tcp-echo', '::', '7001', 'tcp7001'])];
    await startL7Tool(server, ['grpc-server', '::', '50051', 'grpc']);
    await startL7Tool(server, ['ws-echo', '::', '8090']);
    serverCar = await startSidecar(server, tmp.dir, await identity('server', SERVER_ID), [
      'mtls_mode = permissive',
      '[authorization deny-admin]', 'action = deny', 'paths = /admin/*', 'to_ports = 8080',
      '[authorization deny-net]', 'action = deny', `from_cidrs = ${plain.ip4}/32`,
      '[authorization no-server-stream]', 'action = deny', 'paths = /remora.test.Echo/ServerStream', 'to_ports = 50051',
      '[authorization web-api]', `from_identities = ${CLIENT_ID}`, 'methods = GET', 'paths = /api/*', 'to_ports = 8080',
      '[authorization public-health]', 'paths = /healthz', 'to_ports = 8080',
      '[authorization web-tcp]', `from_identities = ${CLIENT_ID}`, 'to_ports = 7000',
      '[authorization batch-tcp]', 'from_namespaces = batch', 'to_ports = 7001',
      '[authorization web-grpc]', `from_identities = ${CLIENT_ID}`, 'to_ports = 50051',
      '[authorization web-ws]', `from_identities = ${CLIENT_ID}`, 'to_ports = 8090',
      '[authorization audit-debug]', 'action = audit', 'headers = x-debug: *', 'to_ports = 8080',
    ]);
    // Protocols declared: the client sidecars hand HTTP to their HTTP engine at once. (Detected, a client whose first
    // bytes come late gets a pre-dial its sidecar then drops, which the server authorizes as TCP: see the todo test.)
    const services = [
      ...meshService('api', server, 8080, ['protocol = http']),
      ...meshService('tcp7000', server, 7000, ['protocol = opaque']),
      ...meshService('tcp7001', server, 7001, ['protocol = opaque']),
      ...meshService('grpc', server, 50051, ['protocol = http2']),
      ...meshService('ws', server, 8090, ['protocol = http']),
      '[service api-detected]', `addresses = ${mesh.prefix4}.200:80`, `endpoints = ${server.ip4}:8080`, 'mtls = true',
      `identities = ${SERVER_ID}`,
    ];
    await startSidecar(web, tmp.dir, await identity('web', CLIENT_ID), services);
    // other's certificate is in the last fifth of its validity (issued 50 min ago for an hour): still valid.
    otherCar = await startSidecar(other, tmp.dir, await identity('other', OTHER_ID, { now: Date.now() - 50 * 60_000, ttlMs: HOUR }), services);
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  /** The authz counters that one action changed on the server sidecar. */
  async function authzDelta(action: () => Promise<void>): Promise<Record<string, number>> {
    const before = (await meshStats(serverCar.proxy)).authz;
    await action();
    return delta(before, (await meshStats(serverCar.proxy)).authz);
  }

  test('HTTP: allow by identity, method and path, deny by path and CIDR, audit; 403 RBAC: access denied', opts, async () => {
    const logsBefore = logRecords(serverCar.proxy).length;
    type Row = [string, Pod, string, readonly string[], number, Record<string, number>];
    const A = { 'http.allowed': 1 };
    const D = { 'http.denied': 1 };
    const rows: Row[] = [
      ['web GET /api/*', web, '/api/items', [], 200, { ...A, 'policy.web-api.allowed': 1 }],
      ['web POST /api/*', web, '/api/items', ['-X', 'POST', '--data', 'x'], 403, D],
      ['web GET /admin/*', web, '/admin/users', [], 403, { ...D, 'policy.deny-admin.denied': 1 }],
      ['web GET /api/../admin/* (denied by its normal form)', web, '/api/../admin/users', ['--path-as-is'], 403, { ...D, 'policy.deny-admin.denied': 1 }],
      ['web GET a path no allow names', web, '/other', [], 403, D],
      ['web GET /api/* with x-debug (audited)', web, '/api/debug', ['-H', 'x-debug: 1'], 200,
        { ...A, 'policy.web-api.allowed': 1, 'http.audited': 1, 'policy.audit-debug.audited': 1, 'policy.audit-debug.would_deny': 1 }],
      // Audited but denied anyway (deny-admin): not a would-deny (making audit-debug a deny policy changes nothing here).
      ['web GET /admin/* with x-debug (audited, denied anyway)', web, '/admin/users', ['-H', 'x-debug: 1'], 403,
        { ...D, 'policy.deny-admin.denied': 1, 'http.audited': 1, 'policy.audit-debug.audited': 1 }],
      ['other GET /api/*', other, '/api/items', [], 403, D],
      ['other GET /healthz', other, '/healthz', [], 200, { ...A, 'policy.public-health.allowed': 1 }],
      ['plaintext GET /healthz', plain, '/healthz', ['--interface', plainAllowed], 200, { ...A, 'policy.public-health.allowed': 1 }],
      ['plaintext GET /api/*', plain, '/api/items', ['--interface', plainAllowed], 403, D],
      ['plaintext from the denied CIDR GET /healthz', plain, '/healthz', ['--interface', plain.ip4], 403, { ...D, 'policy.deny-net.denied': 1 }],
    ];
    for (const [i, [name, pod, path, extra, status, counters]] of rows.entries()) {
      const url = `http://${server.ip4}:8080${path}?row=${i}`;
      let r: Awaited<ReturnType<typeof curlFull>> | undefined;
      const d = await authzDelta(async () => { r = await curlFull(pod, url, extra); });
      assert.ok(r !== undefined);
      assert.equal(r.status, status, `${name}: ${r.stderr} ${r.body}`);
      assert.deepEqual(d, counters, `${name}: the counters`);
      const atApp = (): boolean => served(app).some(([, , p]) => p.endsWith(`?row=${i}`));
      if (status === 403) {
        assert.equal(r.body, 'RBAC: access denied', name);
        assert.equal(r.headers['x-remora-error'], 'rbac-denied', name);
        assert.equal(atApp(), false, `${name}: not at the app`);
      } else {
        const seen = JSON.parse(r.body) as EchoView;
        assert.equal(seen.path, `${path}?row=${i}`);
        const xfcc = seen.headers['x-forwarded-client-cert'];
        if (pod === plain) assert.equal(xfcc, undefined, name);
        else assert.match(xfcc ?? '', new RegExp(`;URI=${pod === web ? CLIENT_ID : OTHER_ID}$`), name);
        assert.ok(atApp());
      }
    }
    const mine = await logsSince(serverCar.proxy, logsBefore, 'the HTTP denials', (l) => l['event'] === 'authz.denied' && l['kind'] === 'http', 8);
    assert.deepEqual(mine.map((l) => [String(l['path']).replace(/\?row=\d+$/, ''), l['policy'], l['reason'], l['peerIdentity']]), [
      ['/api/items', undefined, 'no-allow-matched', CLIENT_ID],
      ['/admin/users', 'deny-admin', 'denied', CLIENT_ID],
      ['/api/../admin/users', 'deny-admin', 'denied', CLIENT_ID],
      ['/other', undefined, 'no-allow-matched', CLIENT_ID],
      ['/admin/users', 'deny-admin', 'denied', CLIENT_ID],
      ['/api/items', undefined, 'no-allow-matched', OTHER_ID],
      ['/api/items', undefined, 'no-allow-matched', undefined],
      ['/healthz', 'deny-net', 'denied', undefined],
    ]);
    assert.ok(logRecords(serverCar.proxy).slice(logsBefore).some((l) => l['event'] === 'authz.audit' && JSON.stringify(l['audited']) === '["audit-debug"]'));
  });

  test('TCP: allowed connections echo, denied ones are closed (identity, namespace, to_ports, CIDR)', opts, async () => {
    const logsBefore = logRecords(serverCar.proxy).length;
    type Row = [string, Pod, string | undefined, number, string | undefined, Record<string, number>];
    const rows: Row[] = [
      ['web -> 7000', web, undefined, 7000, 'tcp7000', { 'tcp.allowed': 1, 'policy.web-tcp.allowed': 1 }],
      ['other -> 7000', other, undefined, 7000, undefined, { 'tcp.denied': 1 }],
      ['other (ns batch) -> 7001', other, undefined, 7001, 'tcp7001', { 'tcp.allowed': 1, 'policy.batch-tcp.allowed': 1 }],
      ['web -> 7001', web, undefined, 7001, undefined, { 'tcp.denied': 1 }],
      ['plaintext -> 7001', plain, plainAllowed, 7001, undefined, { 'tcp.denied': 1 }],
      // The CIDR deny has only L4 keys: it applies to TCP too, on every port.
      ['plaintext from the denied CIDR -> 7001', plain, plain.ip4, 7001, undefined, { 'tcp.denied': 1, 'policy.deny-net.denied': 1 }],
    ];
    const errorsBefore = (await meshStats(serverCar.proxy)).errors['REMORA_ERR_AUTHZ_DENIED'] ?? 0;
    for (const [name, pod, source, port, tag, counters] of rows) {
      let r: ExchangeResult | undefined;
      const d = await authzDelta(async () => { r = await tcpExchange(pod, server.ip4, port, `${name}\n`, source); });
      assert.equal(r?.reply, tag === undefined ? '' : `${tag} ${name}\n`, `${name}: ${JSON.stringify(r)}`);
      assert.deepEqual(d, counters, `${name}: the counters`);
    }
    // What reached the TCP apps: exactly the lines of the allowed rows.
    await waitFor('the allowed lines at the apps', async () => (tcpApps.every((a) => a.lines().some((l) => l.startsWith('got '))) ? true : undefined));
    const got = tcpApps.flatMap((a) => a.lines().filter((l) => l.startsWith('got ')));
    assert.deepEqual(got.sort(), ['got 7000 web -> 7000', 'got 7001 other (ns batch) -> 7001']);
    assert.equal(((await meshStats(serverCar.proxy)).errors['REMORA_ERR_AUTHZ_DENIED'] ?? 0) - errorsBefore, 4);
    const denied = await logsSince(serverCar.proxy, logsBefore, 'the TCP denials', (l) => l['event'] === 'authz.denied' && l['kind'] === 'tcp', 4);
    assert.deepEqual(denied.map((l) => [l['port'], l['peerIdentity'], l['policy'] ?? l['reason']]), [
      [7000, OTHER_ID, 'no-allow-matched'], [7001, CLIENT_ID, 'no-allow-matched'], [7001, undefined, 'no-allow-matched'], [7001, undefined, 'deny-net'],
    ]);
  });

  test('gRPC over the mesh hop: allowed calls pass, a denied method and a denied identity get status 7', opts, async () => {
    const grpc = `${server.ip4}:50051`;
    let ok: GrpcResult | undefined;
    const d = await authzDelta(async () => { ok = await runL7Tool<GrpcResult>(web, ['grpc-client', grpc, '4', '5']); });
    assert.ok(ok !== undefined);
    assert.equal(ok.error, undefined);
    assert.deepEqual(ok.unary, { ok: 4 }, 'unary calls pass');
    assert.equal(ok.failed.code, 5, 'an error status of the app comes back as is (the call reached it)');
    assert.equal(ok.stream.code, 7, 'the server-streaming method is denied: PERMISSION_DENIED');
    assert.equal(ok.stream.messages, 0);
    assert.deepEqual(ok.upload, { code: 0, text: 'abcde', index: 5 });
    assert.deepEqual(d, { 'http.allowed': 6, 'policy.web-grpc.allowed': 6, 'http.denied': 1, 'policy.no-server-stream.denied': 1 });

    let denied: GrpcResult | undefined;
    const d2 = await authzDelta(async () => { denied = await runL7Tool<GrpcResult>(other, ['grpc-client', grpc, '2', '5']); });
    assert.ok(denied !== undefined);
    assert.ok(Object.keys(denied.unary).every((k) => /^bad:\{"code":7,/.test(k)), JSON.stringify(denied.unary));
    assert.equal(Object.values(denied.unary).reduce((a, n) => a + n, 0), 2);
    assert.equal(denied.failed.code, 7);
    assert.equal(denied.stream.code, 7);
    assert.equal(denied.upload.code, 7);
    assert.deepEqual(d2, { 'http.denied': 5, 'policy.no-server-stream.denied': 1 });
    const inbound = (await httpStats(serverCar.proxy)).inbound;
    assert.ok((inbound['http.requests'] ?? 0) >= 12, JSON.stringify(inbound));
  });

  test('WebSocket over the mesh hop: the echo works for the allowed identity; the upgrade is refused for the other', opts, async () => {
    let r: WsResult | undefined;
    const d = await authzDelta(async () => { r = await runL7Tool<WsResult>(web, ['ws-client', `ws://${server.ip4}:8090/chat`, '10']); });
    assert.deepEqual(r, { got: 10, inOrder: true, binaryOk: true, closeCode: 1000 });
    assert.deepEqual(d, { 'http.allowed': 1, 'policy.web-ws.allowed': 1 });
    assert.ok(((await httpStats(serverCar.proxy)).inbound['http.tunnels'] ?? 0) >= 1);
    let refused: WsResult | undefined;
    const d2 = await authzDelta(async () => { refused = await runL7Tool<WsResult>(other, ['ws-client', `ws://${server.ip4}:8090/chat`, '10']); });
    assert.match(refused?.error ?? '', /403/, JSON.stringify(refused));
    assert.equal(refused?.got, 0);
    assert.deepEqual(d2, { 'http.denied': 1 });
  });

  // The client sidecar pre-dials an mTLS service whose protocol it detects 25 ms after accept; when the client's
  // request comes later, it drops that connection after the handshake. The server sidecar closes such an empty
  // connection quietly (counted as mtls.inbound.empty): it is not authorized, refused or forwarded as opaque TCP, so
  // an allowed client is never counted or logged as denied.
  test('a request that comes late through a detected mTLS service is authorized once, as HTTP', opts, async () => {
    const logsBefore = logRecords(serverCar.proxy).length;
    let status = '';
    const d = await authzDelta(async () => {
      const r = await web.exec(['sh', '-c', `(sleep 0.2; printf 'GET /api/late HTTP/1.1\\r\\nHost: api\\r\\nConnection: close\\r\\n\\r\\n'; sleep 1)`
        + ` | nc -q 2 ${mesh.prefix4}.200 80 | head -1`]);
      status = r.stdout.trim();
    });
    assert.equal(status, 'HTTP/1.1 200 OK');
    const denials = logRecords(serverCar.proxy).slice(logsBefore).filter((l) => l['event'] === 'authz.denied');
    assert.deepEqual(denials, [], 'no denial logged for an allowed client');
    assert.deepEqual(d, { 'http.allowed': 1, 'policy.web-api.allowed': 1 });
  });

  test('a workload certificate near its end is reported as expiring and still serves', opts, async () => {
    const s = await meshStats(otherCar.proxy);
    assert.ok((s.identity['expiring'] ?? 0) >= 1, JSON.stringify(s.identity));
    assert.equal(s.identity['expired'], undefined);
    const [line] = await logsSince(otherCar.proxy, 0, 'identity.expiring', (l) => l['event'] === 'identity.expiring', 1);
    assert.equal(line?.['spiffeId'], OTHER_ID);
    const c = await certs(otherCar.proxy);
    const left = c.identity?.chain[0]?.secondsLeft ?? 0;
    assert.ok(left > 0 && left <= 10 * 60, `seconds left: ${left}`);
    // Still a valid identity: the server accepts it (its namespace is allowed on 7001).
    assert.equal((await tcpExchange(other, server.ip4, 7001, 'still valid\n')).reply, 'tcp7001 still valid\n');
  });

  test('a proxy started with a bad identity_dir exits 2 naming the file', opts, async () => {
    const dir = (name: string): string => join(tmp.dir, `bad-${name}`);
    // The key of another certificate.
    await ca.writeIdentity(dir('key'), SERVER_ID);
    writeFileSync(join(dir('key'), 'key.pem'), (await ca.issue(SERVER_ID)).keyPem);
    // No trust bundle.
    await ca.writeIdentity(dir('missing'), SERVER_ID);
    rmSync(join(dir('missing'), 'root-cert.pem'));
    // A certificate that expired an hour ago.
    await ca.writeIdentity(dir('expired'), SERVER_ID, { now: Date.now() - 90 * 60_000, ttlMs: 30 * 60_000 });
    const cases: [string, RegExp][] = [
      ['key', /key\.pem: identity key\.pem: expected the private key of cert-chain\.pem \(this key does not match/],
      ['missing', /root-cert\.pem: identity root-cert\.pem: expected a readable file \(ENOENT\)/],
      ['expired', /cert-chain\.pem: identity cert-chain\.pem: expected a certificate valid now \(it is expired/],
    ];
    for (const [name, why] of cases) {
      const r = await plain.exec([process.execPath, REMORA_BIN, 'proxy', '--identity-dir', dir(name)], { timeoutMs: 30_000 });
      assert.equal(r.code, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, /REMORA_ERR_CONFIG_INVALID/, name);
      assert.ok(r.stderr.includes(join(dir(name), name === 'key' ? 'key.pem' : name === 'missing' ? 'root-cert.pem' : 'cert-chain.pem')), `${name}: ${r.stderr}`);
      assert.match(r.stderr, why, name);
    }
  });
});
