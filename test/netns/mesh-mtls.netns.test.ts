// Mesh mTLS across real pods: a server pod (remora init + proxy with identity_dir; mtls_mode = strict, port 8081
// permissive) running an HTTP app on 8080 and 8081 and a TCP echo on 7000, a client pod "web" whose sidecar reaches
// them as [service] mtls = true at the server pod's own address (the server pod's rules send the hop to its inbound
// listener), and a pod "plain" without a sidecar. Identities come from `remora ca` (init, issue, rotate-root, bundle,
// retire-root), run as the proxy's user. Checked:
// - the link between the pods (tcpdump on the server pod's veth) carries only TLS for a request across the hop: a
//   mesh ClientHello (ALPN remora), then encrypted records; no request line, header, body or SPIFFE ID in clear (a
//   plaintext request to the permissive port in the same capture shows the capture would see them); the app got the
//   request with x-forwarded-client-cert By=<server>;Hash=<client cert sha256>;URI=<client>; opaque TCP over the hop
//   echoes, a half-close crosses it, and the server's connection.closed line carries the peer identity and protocol
//   mtls/...;
// - strict refuses plaintext (curl from the plain pod), TLS without the mesh ALPN, and mesh TLS (openssl s_client
//   -alpn remora) with a certificate of another CA, an expired certificate, or none: each under its reason in
//   /stats, the errors counted, nothing reaching the app; a good certificate through the same s_client gets 200;
// - permissive accepts plaintext (a forged x-forwarded-client-cert removed) and mTLS from the sidecar;
// - rotation under a long-lived HTTP keep-alive connection, a long-lived TCP stream, a loop of new TCP connections
//   (each a new mTLS handshake) and a loop of new HTTP connections (counting errors and non-200), all across the hop:
//   both leaves re-issued, then the root rotated with overlap (new bundle to both pods, new leaves, old root
//   retired): zero failed requests, no handshake failed or refused, the long-lived connections never replaced,
//   identity.rotations +4 on each side, /certs shows the new serials and the one new root; then an expired leaf
//   written into the client's identity_dir is rejected (identity.rejected, the issue names cert-chain.pem) while the
//   last good identity keeps serving the traffic; afterwards a leaf of the retired root is refused;
// - the client side: a service whose `identities` do not accept the server's SPIFFE ID fails the request (503
//   upstream-connect-failure, REMORA_ERR_PEER_IDENTITY) and resets an opaque TCP connection; the server sidecar counts
//   each aborted handshake as the client's close (ECONNRESET), not as a handshake timeout.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CertificateAuthority } from '../../src/pki/certificate-authority.js';
import { TestCa } from '../support/mesh-pki.js';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { tempDir } from './l4-helpers.js';
import { curlFull, httpStats, startL7Tool } from './l7-helpers.js';
import {
  certs, certSerial, certSha256, CLIENT_ID, delta, giveToProxy, hopBytes, httpGet, logsSince, meshService, meshStats, meshStatsWhere,
  pcapTcpSegments, proxyOwnedDir, remoraCa, sClient, served, SERVER_ID, startCapture, startMeshTool, startSidecar,
  type EchoView, type MeshStatsView, type MeshTool, type Sidecar,
} from './mesh-helpers.js';
import { logRecords, runTool, startTool, waitForLog } from './proxy-helpers.js';

const opts = netnsTestOptions();

/** The CA that `remora ca` keeps in `dir` (its active root and key), to issue certificates `remora ca` would not. */
async function loadCa(dir: string): Promise<CertificateAuthority> {
  return CertificateAuthority.load(readFileSync(join(dir, 'root-cert.pem'), 'utf8'), readFileSync(join(dir, 'root-key.pem'), 'utf8'),
    { cert: 'root', key: 'root key' });
}

interface SteadyResult {
  readonly sent: number;
  readonly ok: number;
  readonly failures: Record<string, number>;
  readonly connections: number;
}

interface ChurnResult {
  readonly sent: number;
  readonly ok: number;
  readonly failures: Record<string, number>;
}

describe('mesh mTLS between pods', opts, () => {
  let mesh: Mesh;
  let server: Pod;
  let web: Pod;
  let plain: Pod;
  let serverCar: Sidecar;
  let webCar: Sidecar;
  let app: MeshTool;
  let caDir = '';
  const tmp = tempDir('remora-mesh-mtls-');

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    server = await mesh.addPod('server');
    web = await mesh.addPod('web');
    plain = await mesh.addPod('plain');
    const pki = proxyOwnedDir(tmp.dir, 'pki');
    caDir = join(pki, 'ca');
    await remoraCa(plain, ['init', '--dir', caDir]);
    const serverDir = proxyOwnedDir(tmp.dir, 'server-identity');
    const webDir = proxyOwnedDir(tmp.dir, 'web-identity');
    await remoraCa(plain, ['issue', '--dir', caDir, '--spiffe-id', SERVER_ID, '--out', serverDir]);
    await remoraCa(plain, ['issue', '--dir', caDir, '--spiffe-id', CLIENT_ID, '--out', webDir]);
    app = await startMeshTool(server, ['http-echo', '::', '8080,8081', 'api']);
    await startL7Tool(server, ['echo', '::', '7000', 'echo']);
    await startTool(server, ['reply-after-end', '::', '7001']);
    serverCar = await startSidecar(server, tmp.dir, serverDir, ['mtls_mode = strict', 'mtls_port_modes = 8081=permissive']);
    webCar = await startSidecar(web, tmp.dir, webDir, [
      // HTTP declared: the sidecar hands these connections to its HTTP engine at once. (Detected, a connection whose
      // request comes late gets a pre-dial the sidecar then drops: a connection the server counts, but no request.)
      ...meshService('api', server, 8080, ['protocol = http']),
      ...meshService('api-permissive', server, 8081, ['protocol = http']),
      ...meshService('echo', server, 7000, ['protocol = opaque']),
      ...meshService('half', server, 7001, ['protocol = opaque']),
      // The same server, through services (VIPs) that accept only identities of namespace prod.
      '[service prod-api]', `addresses = ${mesh.prefix4}.200:80`, `endpoints = ${server.ip4}:8080`, 'mtls = true', 'protocol = http',
      'identities = spiffe://cluster.local/ns/prod/*',
      '[service prod-echo]', `addresses = ${mesh.prefix4}.201:7000`, `endpoints = ${server.ip4}:7000`, 'mtls = true', 'protocol = opaque',
      'identities = spiffe://cluster.local/ns/prod/*',
    ]);
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  test('the link between the pods carries only TLS; the app gets the request with the client identity', opts, async () => {
    const marker = `/hop-marker-${randomBytes(6).toString('hex')}`;
    const headerMarker = `header-marker-${randomBytes(6).toString('hex')}`;
    const plainMarker = `/plain-marker-${randomBytes(6).toString('hex')}`;
    const file = join(tmp.dir, 'hop.pcap');
    const capture = await startCapture(server, file, ['tcp', 'and', '(port', '8080', 'or', 'port', '8081)']);
    const r = await curlFull(web, `http://${server.ip4}:8080${marker}`, ['-H', `x-marker: ${headerMarker}`]);
    assert.equal(r.status, 200, `${r.stderr} ${r.body}`);
    const seen = JSON.parse(r.body) as EchoView;
    assert.equal(seen.path, marker, 'the app received the request');
    assert.equal(seen.headers['x-marker'], headerMarker);
    const hash = certSha256(join(webCar.identityDir, 'cert-chain.pem'));
    assert.equal(seen.headers['x-forwarded-client-cert'], `By=${SERVER_ID};Hash=${hash};URI=${CLIENT_ID}`);
    // The control: plaintext to the permissive port, from the pod without sidecar, in the same capture.
    const p = await curlFull(plain, `http://${server.ip4}:8081${plainMarker}`);
    assert.equal(p.status, 200, p.stderr);
    // The control's answer came last: once it is in the file, everything before it is too.
    await waitFor('the control exchange in the capture', async () => {
      const control = hopBytes(capture.segments(), plain.ip4, server.ip4, 8081);
      return control.up.includes(`GET ${plainMarker} HTTP/1.1`) && control.down.includes('app-secret-body-api') ? true : undefined;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    const pcap = await capture.stop();
    const segments = pcapTcpSegments(pcap);

    const hop = hopBytes(segments, web.ip4, server.ip4, 8080);
    assert.ok(hop.up.length > 0 && hop.down.length > 0, `the capture holds the hop (${segments.length} segments)`);
    assert.equal(hop.up[0], 0x16, 'the client side starts with a TLS handshake record');
    assert.ok(hop.up.includes('remora'), 'the ClientHello offers the mesh ALPN');
    assert.ok(hop.down.includes(Buffer.from([0x17, 0x03, 0x03])), 'the server answers with TLS application data records');
    for (const clear of ['GET ', 'HTTP/1.1', marker, headerMarker, 'app-secret-body', 'x-forwarded-client-cert', CLIENT_ID, SERVER_ID, 'spiffe://']) {
      assert.equal(hop.up.includes(clear), false, `"${clear}" is not in clear from client to server`);
      assert.equal(hop.down.includes(clear), false, `"${clear}" is not in clear from server to client`);
    }
    assert.equal(pcap.includes(marker), false, 'the request path appears nowhere in the capture');
    assert.ok(served(app).some(([port, method, path]) => port === 8080 && method === 'GET' && path === marker));

    // Opaque TCP over the hop: the echo answers; the server's log line names the client.
    const echo = await runTool<{ reply: string; end: boolean; error?: string }>(web, ['send-then-end', server.ip4, '7000', 'over-the-hop\n']);
    assert.deepEqual(echo, { reply: 'echo over-the-hop\n', end: true });
    // Half-close across the hop: the app answers only after the client's FIN, which crossed the mTLS connection.
    const half = await runTool<{ reply: string; end: boolean }>(web, ['send-then-end', server.ip4, '7001', 'then-fin']);
    assert.deepEqual(half, { reply: 'got 8 bytes: then-fin', end: true });
    const [closed] = await waitForLog(serverCar.proxy, 'the inbound TCP connection closed', (l) => l['event'] === 'connection.closed'
      && l['peerIdentity'] === CLIENT_ID && String(l['protocol']).startsWith('mtls/opaque'));
    assert.ok(closed !== undefined);
    const s = await meshStats(serverCar.proxy);
    assert.ok((s.sniff['mtls'] ?? 0) >= 2, JSON.stringify(s.sniff));
    assert.ok((s.mtls.inbound['handshakes'] ?? 0) >= 2);
    assert.ok(((await meshStats(webCar.proxy)).mtls.outbound['handshakes'] ?? 0) >= 2);
    // The HTTP/1.1 engine reads a plain TCP downstream without node:stream (every outbound connection of the client
    // sidecar; the plaintext control on the server's permissive port) and the plaintext side of a terminated mTLS
    // connection through its stream (the request from the client sidecar).
    const outbound = (await httpStats(webCar.proxy)).outbound;
    const inbound = (await httpStats(serverCar.proxy)).inbound;
    assert.ok((outbound['http1.connections'] ?? 0) >= 1, JSON.stringify(outbound));
    assert.equal(outbound['http1.direct_reads'], outbound['http1.connections']);
    const inboundDirect = inbound['http1.direct_reads'] ?? 0;
    assert.ok(inboundDirect >= 1, `the plaintext control read directly: ${JSON.stringify(inbound)}`);
    assert.ok((inbound['http1.connections'] ?? 0) - inboundDirect >= 1, `the mTLS connection read as a stream: ${JSON.stringify(inbound)}`);
  });

  test('strict refuses plaintext, foreign TLS and a foreign, expired or missing client certificate, each under its reason', opts, async () => {
    const dir = tmp.dir;
    const foreign = await (await TestCa.create()).issue(CLIENT_ID);
    writeFileSync(join(dir, 'foreign-cert.pem'), foreign.certPem);
    writeFileSync(join(dir, 'foreign-key.pem'), foreign.keyPem);
    // An expired certificate of the mesh's own CA, issued "90 s ago" for 60 s: expired 30 s ago, valid from before (the root is minutes old: a leaf from further back
    // would start before its root and end before it starts).
    const expired = await (await loadCa(caDir)).issue({ spiffeId: CLIENT_ID, now: Date.now() - 90_000, ttlMs: 60_000 });
    writeFileSync(join(dir, 'expired-cert.pem'), expired.certPem);
    writeFileSync(join(dir, 'expired-key.pem'), expired.keyPem);
    const good = { cert: join(webCar.identityDir, 'cert-chain.pem'), key: join(webCar.identityDir, 'key.pem') };

    const logsBefore = logRecords(serverCar.proxy).length;
    const before = await meshStats(serverCar.proxy);
    const inbound = async (): Promise<Record<string, number>> => delta(before.mtls.inbound, (await meshStats(serverCar.proxy)).mtls.inbound);
    const waitInbound = (what: string, key: string, n: number): Promise<unknown> => meshStatsWhere(serverCar.proxy, what,
      (s) => (s.mtls.inbound[key] ?? 0) - (before.mtls.inbound[key] ?? 0) === n);

    const c = await plain.exec(['curl', '-sS', '--max-time', '5', `http://${server.ip4}:8080/refused-plaintext`]);
    assert.notEqual(c.code, 0, `plaintext to a strict port fails: ${c.stdout}`);
    await waitInbound('refused.plaintext', 'refused.plaintext', 1);

    const noAlpn = await sClient(plain, server.ip4, 8080, { ...good, input: httpGet('/refused-foreign-tls') });
    assert.doesNotMatch(noAlpn.stdout, /HTTP\/1\.1/);
    await waitInbound('refused.foreign-tls', 'refused.foreign-tls', 1);

    const cases: [string, { cert?: string; key?: string }, string][] = [
      ['foreign-ca', { cert: join(dir, 'foreign-cert.pem'), key: join(dir, 'foreign-key.pem') }, 'failures.UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
      ['expired', { cert: join(dir, 'expired-cert.pem'), key: join(dir, 'expired-key.pem') }, 'failures.CERT_HAS_EXPIRED'],
      ['no-cert', {}, 'failures.no-peer-certificate'],
    ];
    for (const [name, files, reason] of cases) {
      const r = await sClient(plain, server.ip4, 8080, { ...files, alpn: 'remora', input: httpGet(`/refused-${name}`) });
      assert.doesNotMatch(r.stdout, /HTTP\/1\.1/, `${name}: no answer from the app`);
      await waitInbound(`${name}: ${reason}`, reason, 1);
    }
    // The same client with a certificate of the mesh gets through (the refusals were about the certificates).
    const ok = await sClient(plain, server.ip4, 8080,
      { ...good, alpn: 'remora', caFile: join(webCar.identityDir, 'root-cert.pem'), input: httpGet('/accepted') });
    assert.match(ok.stdout, /HTTP\/1\.1 200/);
    assert.match(ok.stdout, /Verify return code: 0 \(ok\)/, 'the server certificate verifies against the bundle');
    assert.equal(ok.serverSerial, certSerial(join(serverCar.identityDir, 'cert-chain.pem')));
    await waitInbound('the accepted handshake', 'handshakes', 1);

    assert.deepEqual(await inbound(), {
      'refused.plaintext': 1, 'refused.foreign-tls': 1, 'failures.UNABLE_TO_VERIFY_LEAF_SIGNATURE': 1,
      'failures.CERT_HAS_EXPIRED': 1, 'failures.no-peer-certificate': 1, handshakes: 1,
    });
    const after = await meshStats(serverCar.proxy);
    const errors = delta(before.errors, after.errors);
    assert.equal(errors['REMORA_ERR_MTLS_REQUIRED'], 2, JSON.stringify(errors));
    assert.equal(errors['REMORA_ERR_MTLS_HANDSHAKE'], 3, JSON.stringify(errors));
    // Nothing of the refused connections reached the app; the accepted one did.
    await waitFor('the accepted request at the app', async () => (served(app).some(([, , p]) => p === '/accepted') ? true : undefined));
    const paths = served(app).map(([, , p]) => p);
    assert.deepEqual(paths.filter((p) => p.startsWith('/refused-')), []);
    // Each refusal is logged with its error code, the handshake failures with their reason.
    const failed = logRecords(serverCar.proxy).slice(logsBefore).filter((l) => l['event'] === 'connection.failed');
    assert.deepEqual(failed.map((l) => `${String(l['code'])} ${String(l['tlsCode'])}`).sort(), [
      'REMORA_ERR_MTLS_HANDSHAKE CERT_HAS_EXPIRED', 'REMORA_ERR_MTLS_HANDSHAKE UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'REMORA_ERR_MTLS_HANDSHAKE no-peer-certificate', 'REMORA_ERR_MTLS_REQUIRED undefined', 'REMORA_ERR_MTLS_REQUIRED undefined',
    ]);
  });

  test('permissive accepts plaintext (a forged x-forwarded-client-cert removed) and mTLS from the sidecar', opts, async () => {
    const before = await meshStats(serverCar.proxy);
    const p = await curlFull(plain, `http://${server.ip4}:8081/permissive-plain`, ['-H', `x-forwarded-client-cert: By=x;URI=${CLIENT_ID}`]);
    assert.equal(p.status, 200, p.stderr);
    const plainView = JSON.parse(p.body) as EchoView;
    assert.equal(plainView.path, '/permissive-plain');
    assert.equal(plainView.headers['x-forwarded-client-cert'], undefined, 'a plaintext request carries no client identity');
    const m = await curlFull(web, `http://${server.ip4}:8081/permissive-mtls`);
    assert.equal(m.status, 200, m.stderr);
    const meshView = JSON.parse(m.body) as EchoView;
    assert.match(meshView.headers['x-forwarded-client-cert'] ?? '', new RegExp(`^By=${SERVER_ID};Hash=[0-9a-f]{64};URI=${CLIENT_ID}$`));
    const after = await meshStats(serverCar.proxy);
    assert.deepEqual(delta(before.mtls.inbound, after.mtls.inbound), { plaintext: 1, handshakes: 1 });
    assert.deepEqual(delta(before.errors, after.errors), {});
  });

  test('the client sidecar refuses a server whose SPIFFE ID the service does not accept (HTTP and TCP)', opts, async () => {
    const serverBefore = await meshStats(serverCar.proxy);
    const before = await meshStats(webCar.proxy);
    const httpBefore = (await httpStats(webCar.proxy)).outbound;
    const logsBefore = logRecords(webCar.proxy).length;
    const r = await curlFull(web, `http://${mesh.prefix4}.200/wrong-server`);
    assert.equal(r.status, 503, r.stderr);
    assert.equal(r.headers['x-remora-error'], 'upstream-connect-failure');
    const [reply] = await logsSince(webCar.proxy, logsBefore, 'the local reply',
      (l) => l['event'] === 'http.local-reply' && l['path'] === '/wrong-server', 1);
    assert.equal((reply?.['err'] as { code?: string } | undefined)?.code, 'REMORA_ERR_PEER_IDENTITY');
    const peerErrors = (m: Readonly<Record<string, number>>): number => m['errors.REMORA_ERR_PEER_IDENTITY'] ?? 0;
    assert.ok(peerErrors((await httpStats(webCar.proxy)).outbound) > peerErrors(httpBefore));
    const t = await runTool<{ reply: string; error?: string }>(web, ['send-then-end', `${mesh.prefix4}.201`, '7000', 'wrong-server\n']);
    assert.equal(t.reply, '', 'opaque TCP: the client is reset');
    const after = await meshStats(webCar.proxy);
    assert.deepEqual(delta(before.errors, after.errors), { REMORA_ERR_PEER_IDENTITY: 1 });
    const out = delta(before.mtls.outbound, after.mtls.outbound);
    assert.deepEqual(Object.keys(out), ['failures.ERR_REMORA_PEER_IDENTITY'], JSON.stringify(out));
    assert.equal(served(app).some(([, , p]) => p === '/wrong-server'), false, 'nothing reached the app');
    // The server side sees each aborted handshake as the client's close (it used to hold the connection until the
    // handshake timeout and count ERR_TLS_HANDSHAKE_TIMEOUT).
    const refusals = out['failures.ERR_REMORA_PEER_IDENTITY'] ?? 0;
    const failed = (s: MeshStatsView): number => Object.entries(delta(serverBefore.mtls.inbound, s.mtls.inbound))
      .filter(([k]) => k.startsWith('failures.')).reduce((a, [, n]) => a + n, 0);
    const seen = await meshStatsWhere(serverCar.proxy, 'the aborted handshakes on the server', (s) => failed(s) >= refusals);
    assert.deepEqual(delta(serverBefore.mtls.inbound, seen.mtls.inbound), { 'failures.ECONNRESET': refusals });
  });

  test('rotation of both leaves, then of the root with overlap, under long-lived and new connections: zero failures', opts, async () => {
    const serverDir = serverCar.identityDir;
    const webDir = webCar.identityDir;
    // Keep the first web identity: a leaf of the root that will be retired.
    copyFileSync(join(webDir, 'cert-chain.pem'), join(tmp.dir, 'old-web-cert.pem'));
    copyFileSync(join(webDir, 'key.pem'), join(tmp.dir, 'old-web-key.pem'));
    const sBefore = await meshStats(serverCar.proxy);
    const wBefore = await meshStats(webCar.proxy);
    const steadyHttp = await startL7Tool(web, ['steady', 'h1', `http://${server.ip4}:8080/steady?short`, '10']);
    const steadyTcp = await startL7Tool(web, ['steady', 'tcp', `${server.ip4}:7000`, '10']);
    const churn = await startMeshTool(web, ['churn', 'tcp', server.ip4, '7000', '10']);
    const churnHttp = await startMeshTool(web, ['churn', 'http', `http://${server.ip4}:8080/churn?short`, '10']);
    const servedAt = (path: string): number => served(app).filter(([, , p]) => p === path).length;

    /** Both sidecars show `expect` in /certs; then new handshakes happen with it and the steady traffic goes on. */
    const settle = async (what: string, expect: (c: Awaited<ReturnType<typeof certs>>, dir: string) => boolean): Promise<void> => {
      for (const [car, dir] of [[serverCar, serverDir], [webCar, webDir]] as const) {
        await waitFor(`${what}: ${car.pod.name} /certs`, async () => (expect(await certs(car.proxy), dir) ? true : undefined),
          { timeoutMs: 15_000, intervalMs: 100 });
      }
      const hs = (await meshStats(serverCar.proxy)).mtls.inbound['handshakes'] ?? 0;
      const n = servedAt('/steady?short');
      const m = servedAt('/churn?short');
      await meshStatsWhere(serverCar.proxy, `${what}: new mTLS connections after it`, (s) => (s.mtls.inbound['handshakes'] ?? 0) >= hs + 5);
      await waitFor(`${what}: requests after it`,
        async () => (servedAt('/steady?short') >= n + 5 && servedAt('/churn?short') >= m + 5 ? true : undefined), { timeoutMs: 15_000 });
      for (const t of [steadyHttp, steadyTcp, churn, churnHttp]) {
        assert.equal(t.child.exitCode, null, `${what}: the clients are still running: ${t.lines().join('\n')}`);
      }
    };
    const leafIs = (c: Awaited<ReturnType<typeof certs>>, dir: string): boolean =>
      c.identity?.chain[0]?.serial.toLowerCase() === certSerial(join(dir, 'cert-chain.pem'));
    const issueBoth = async (): Promise<void> => {
      await remoraCa(plain, ['issue', '--dir', caDir, '--spiffe-id', SERVER_ID, '--out', serverDir]);
      await remoraCa(plain, ['issue', '--dir', caDir, '--spiffe-id', CLIENT_ID, '--out', webDir]);
    };
    const bundleBoth = async (): Promise<void> => {
      await remoraCa(plain, ['bundle', '--dir', caDir, '--out', join(serverDir, 'root-cert.pem')]);
      await remoraCa(plain, ['bundle', '--dir', caDir, '--out', join(webDir, 'root-cert.pem')]);
    };

    // (a) New leaves for both sides, same root.
    const oldLeaves = [certSerial(join(serverDir, 'cert-chain.pem')), certSerial(join(webDir, 'cert-chain.pem'))];
    const oldRoot = certSerial(join(caDir, 'root-cert.pem'));
    await issueBoth();
    for (const dir of [serverDir, webDir]) assert.equal(oldLeaves.includes(certSerial(join(dir, 'cert-chain.pem'))), false);
    await settle('new leaves', leafIs);
    // (b) The root: a new one, trusted by both pods before anything is signed by it ...
    await remoraCa(plain, ['rotate-root', '--dir', caDir]);
    const newRoot = certSerial(join(caDir, 'root-cert.pem'));
    assert.notEqual(newRoot, oldRoot);
    const bundleIs = (serials: readonly string[]) => (c: Awaited<ReturnType<typeof certs>>): boolean =>
      JSON.stringify(c.identity?.trustBundle.map((r) => r.serial.toLowerCase()).sort()) === JSON.stringify([...serials].sort());
    await bundleBoth();
    await settle('the bundle with both roots', bundleIs([oldRoot, newRoot]));
    // ... then leaves of the new root ...
    await issueBoth();
    await settle('leaves of the new root', (c, dir) => leafIs(c, dir) && bundleIs([oldRoot, newRoot])(c));
    // ... then the old root retired from both bundles.
    await remoraCa(plain, ['retire-root', '--dir', caDir, '--all-previous']);
    await bundleBoth();
    await settle('the old root retired', (c, dir) => leafIs(c, dir) && bundleIs([newRoot])(c));

    // (c) A bad identity written into web's identity_dir (a leaf of the new root that expired 30 s ago, key and
    // certificate moved in like a secret update) is rejected: the last good identity keeps serving, traffic goes on.
    const goodWeb = { cert: join(tmp.dir, 'good-web-cert.pem'), key: join(tmp.dir, 'good-web-key.pem') };
    copyFileSync(join(webDir, 'cert-chain.pem'), goodWeb.cert);
    copyFileSync(join(webDir, 'key.pem'), goodWeb.key);
    const goodSerial = certSerial(goodWeb.cert);
    const logsBefore = logRecords(webCar.proxy).length;
    const stale = await (await loadCa(caDir)).issue({ spiffeId: CLIENT_ID, now: Date.now() - 90_000, ttlMs: 60_000 });
    const staging = proxyOwnedDir(tmp.dir, 'staging');
    writeFileSync(join(staging, 'key.pem'), stale.keyPem, { mode: 0o600 });
    writeFileSync(join(staging, 'cert-chain.pem'), stale.certPem);
    giveToProxy(staging, ['key.pem', 'cert-chain.pem']);
    renameSync(join(staging, 'key.pem'), join(webDir, 'key.pem'));
    renameSync(join(staging, 'cert-chain.pem'), join(webDir, 'cert-chain.pem'));
    const expiredIssue = /cert-chain\.pem: identity cert-chain\.pem: expected a certificate valid now \(it is expired/;
    const [rejected] = await logsSince(webCar.proxy, logsBefore, 'identity.rejected for the expired leaf',
      (l) => l['event'] === 'identity.rejected' && expiredIssue.test(JSON.stringify(l['issues'])), 1);
    assert.equal(rejected?.['identity'], CLIENT_ID);
    assert.ok(((await meshStats(webCar.proxy)).identity['rejected'] ?? 0) > (wBefore.identity['rejected'] ?? 0));
    await settle('the bad identity rejected',
      (c, dir) => (dir === webDir ? c.identity?.chain[0]?.serial.toLowerCase() === goodSerial : leafIs(c, dir)));

    // A failure ends a steady client at once (with its result): both are still running.
    for (const tool of [steadyHttp, steadyTcp]) assert.equal(tool.child.exitCode, null, tool.lines().join('\n'));
    steadyHttp.child.kill('SIGTERM');
    steadyTcp.child.kill('SIGTERM');
    const h = await steadyHttp.json<SteadyResult>(15_000);
    const t = await steadyTcp.json<SteadyResult>(15_000);
    const c = await churn.stop<ChurnResult>();
    const ch = await churnHttp.stop<ChurnResult>();
    for (const [name, r] of [['http keep-alive', h], ['tcp stream', t]] as const) {
      assert.deepEqual(r.failures, {}, `${name}: no failure`);
      assert.equal(r.connections, 1, `${name}: the one connection carried everything, across every rotation`);
      assert.ok(r.ok >= 20 && r.ok === r.sent, `${name}: every request answered (${r.ok}/${r.sent})`);
    }
    assert.deepEqual(c.failures, {}, 'new TCP connections: no failure');
    assert.ok(c.ok >= 20 && c.ok === c.sent, `new TCP connections: every exchange answered (${c.ok}/${c.sent})`);
    assert.deepEqual(ch.failures, {}, 'new HTTP connections: no error, no status but 200');
    assert.ok(ch.ok >= 20 && ch.ok === ch.sent, `new HTTP connections: every request answered 200 (${ch.ok}/${ch.sent})`);

    const sAfter = await meshStats(serverCar.proxy);
    const wAfter = await meshStats(webCar.proxy);
    assert.equal(delta(sBefore.identity, sAfter.identity)['rotations'], 4, JSON.stringify(sAfter.identity));
    assert.equal(delta(wBefore.identity, wAfter.identity)['rotations'], 4, JSON.stringify(wAfter.identity));
    const failures = (m: Record<string, number>): string[] =>
      Object.keys(m).filter((k) => k.startsWith('failures.') || k.startsWith('refused.'));
    assert.deepEqual(failures(delta(sBefore.mtls.inbound, sAfter.mtls.inbound)), [], 'no inbound handshake failed');
    assert.deepEqual(failures(delta(wBefore.mtls.outbound, wAfter.mtls.outbound)), [], 'no outbound handshake failed');
    const rotated = logRecords(serverCar.proxy).filter((l) => l['event'] === 'identity.rotated' && l['spiffeId'] === SERVER_ID);
    assert.ok(rotated.length >= 4);

    // After: the server presents its newest leaf to a client of the new root; a leaf of the retired root is refused.
    const now = await sClient(plain, server.ip4, 8080, {
      ...goodWeb, caFile: join(webDir, 'root-cert.pem'), alpn: 'remora', input: httpGet('/after-rotation'),
    });
    assert.match(now.stdout, /HTTP\/1\.1 200/);
    assert.equal(now.serverSerial, certSerial(join(serverDir, 'cert-chain.pem')));
    const before = (await meshStats(serverCar.proxy)).mtls.inbound['failures.UNABLE_TO_VERIFY_LEAF_SIGNATURE'] ?? 0;
    const old = await sClient(plain, server.ip4, 8080, {
      cert: join(tmp.dir, 'old-web-cert.pem'), key: join(tmp.dir, 'old-web-key.pem'), alpn: 'remora', input: httpGet('/retired-root'),
    });
    assert.doesNotMatch(old.stdout, /HTTP\/1\.1/);
    await meshStatsWhere(serverCar.proxy, 'the leaf of the retired root refused',
      (s) => (s.mtls.inbound['failures.UNABLE_TO_VERIFY_LEAF_SIGNATURE'] ?? 0) === before + 1);
    assert.equal(served(app).some(([, , p]) => p === '/retired-root'), false);
  });
});
