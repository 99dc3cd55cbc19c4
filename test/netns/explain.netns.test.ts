// `remora explain` and /debug/connections on a real kernel: a client pod (remora init with an excluded outbound port,
// a sidecar with services, routes and an authorization policy, an app on 8080 for inbound traffic) and two server
// pods. `remora explain --json` runs inside the client pod (it reads the live nat rules with iptables-save -c and asks
// the sidecar's admin API), and is checked for:
// - a captured HTTP destination with a host/path route: the REDIRECT rule and its counter (which grows with traffic),
//   the outbound listener, HTTP, the service, the route, the endpoint the balancer would pick and its health;
// - destinations the rules let go: the proxy's uid 1337 (loop prevention) and an excluded port;
// - an unknown destination: captured, passthrough to itself (IPv4, and IPv6 through the ip6tables rules);
// - inbound with an authorization policy: captured to the inbound listener, denied by the policy for /admin (as the
//   real request was), allowed for another path;
// - bad flags: exit 2 naming the flag.
// /debug/connections lists a held-open TCP connection with its original destination, service, endpoint and bytes,
// and a half-closed one with the state of both sides; both disappear once closed.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { tempDir, writeConfig } from './l4-helpers.js';
import { curlFull, startL7Tool } from './l7-helpers.js';
import { initOk } from './proxy-helpers.js';
import { outputLines, REMORA_BIN, REPO_ROOT, startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();
const EXPLAIN_TOOLS = resolve(REPO_ROOT, 'dist/test/netns/explain-tools.js');

interface Step { readonly chain: string; readonly rule: string; readonly packets: number; readonly matched: boolean | 'unknown' }
interface Report {
  readonly rules: { readonly ok: boolean; readonly source?: string; readonly hook?: string; readonly verdict?: { readonly kind: string; readonly port?: number; readonly rule?: Step; readonly reason: string }; readonly error?: string };
  readonly captured: boolean | undefined;
  readonly listener?: { readonly name: string; readonly port: number };
  readonly proxy: {
    readonly ok: boolean;
    readonly error?: string;
    readonly protocol: { readonly handling: string; readonly declared: string };
    readonly service?: { readonly name: string; readonly matchedBy: string };
    readonly destination: { readonly kind: string };
    readonly route?: { readonly matched?: string; readonly routes: readonly { route: string; matched: boolean }[] };
    readonly endpoints: readonly { readonly cluster: string; readonly endpoint?: string; readonly balancer?: string; readonly health?: { readonly inRotation: boolean; readonly healthy: boolean; readonly ejected: boolean } }[];
    readonly authorization: { readonly applies: boolean; readonly as?: string; readonly decision?: { readonly allowed: boolean; readonly policy?: string }; readonly policies?: readonly { name: string; matched: boolean }[] };
    readonly stages: readonly { readonly stage: string; readonly decision: string }[];
  };
  readonly notes: readonly string[];
}

interface LiveConn {
  readonly id: number;
  readonly direction: string;
  readonly downstream?: string;
  readonly originalDst: string;
  readonly phase: string;
  readonly protocol?: string;
  readonly service?: string;
  readonly endpoint?: string;
  readonly peerIdentity?: string;
  readonly ageMs: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly downstreamState: string;
  readonly upstreamState?: string;
}

describe('remora explain and /debug/connections', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let s1: Pod;
  let s2: Pod;
  let proxy: RunningProxy;
  const tmp = tempDir('remora-explain-');
  let vipShop = '';
  let vipHold = '';
  let greet: ChildProcess;

  const explain = async (args: readonly string[]): Promise<{ code: number; report: Report; stdout: string; stderr: string }> => {
    const r = await client.exec([process.execPath, REMORA_BIN, 'explain', ...args, '--json'], { timeoutMs: 30_000 });
    assert.ok(r.stdout.startsWith('{'), `explain ${args.join(' ')} printed no JSON (exit ${r.code}): ${r.stderr}`);
    return { code: r.code, report: JSON.parse(r.stdout) as Report, stdout: r.stdout, stderr: r.stderr };
  };
  const connections = async (): Promise<LiveConn[]> => {
    const r = await proxy.admin('/debug/connections');
    assert.equal(r.status, 200, r.body);
    return (JSON.parse(r.body) as { connections: LiveConn[] }).connections;
  };
  const holdClient = async (args: readonly string[]): Promise<ChildProcess> => {
    const child = client.spawn([process.execPath, EXPLAIN_TOOLS, 'hold-client', ...args]);
    const lines = outputLines(child);
    await waitFor(`hold-client ${args.join(' ')} to get the greeting`, async () => {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${lines.join('\n')}`);
      if (lines.some((l) => l.startsWith('error'))) throw new Error(lines.join('\n'));
      return lines.includes('ready') ? true : undefined;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    return child;
  };

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create();
    client = await mesh.addPod('client');
    s1 = await mesh.addPod('s1');
    s2 = await mesh.addPod('s2');
    vipShop = `${mesh.prefix4}.200`;
    vipHold = `${mesh.prefix4}.201`;
    await startL7Tool(s1, ['http-tag', '::', '8080', 's1']);
    await startL7Tool(s2, ['http-tag', '::', '8080', 's2']);
    await startL7Tool(s1, ['http-tag', '::', '9999', 'excluded']);
    await startL7Tool(client, ['http-tag', '::', '8080', 'client-app']);
    greet = s1.spawn([process.execPath, EXPLAIN_TOOLS, 'greet-hold', '::', '7000', 'hello-from-s1\n']);
    const greetLines = outputLines(greet);
    await waitFor('greet-hold to listen', async () => (greetLines.includes('ready') ? true : undefined));
    const config = writeConfig(tmp.dir, 'client.ini', [
      '[service shop]', `addresses = ${vipShop}:80`, 'hostnames = shop.test', `endpoints = ${s1.ip4}:8080`, 'balancer = round-robin',
      '[service shop-api]', `endpoints = ${s2.ip4}:8080`,
      '[route api]', 'service = shop', 'match_path_prefix = /api', 'match_host = shop.test', 'backends = shop-api',
      '[route rest]', 'service = shop',
      '[service hold]', `addresses = ${vipHold}:7000`, 'protocol = opaque', `endpoints = ${s1.ip4}:7000`,
      '[authorization deny-admin]', 'action = deny', 'paths = /admin*',
    ]);
    await initOk(client, ['--exclude-outbound-ports', '9999']);
    proxy = await startProxy(client, ['--config', config]);
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  test('a captured HTTP destination with a host/path route: rule and its counter, listener, protocol, service, route, endpoint', opts, async () => {
    const served = await curlFull(client, `http://${vipShop}/api/items`, ['-H', 'Host: shop.test']);
    assert.equal(served.status, 200, served.stderr);
    assert.equal(served.body.trim(), 's2', 'the api route sends /api to shop-api (s2)');
    const first = await explain(['--dst', `${vipShop}:80`, '--host', 'shop.test', '--path', '/api/items']);
    assert.equal(first.code, 0, first.stderr);
    const r = first.report;
    assert.equal(r.rules.ok, true, r.rules.error);
    assert.equal(r.rules.hook, 'OUTPUT');
    assert.equal(r.rules.verdict?.kind, 'captured');
    assert.equal(r.rules.verdict?.port, 15001);
    assert.equal(r.rules.verdict?.rule?.rule, '-A REMORA_REDIRECT -p tcp -j REDIRECT --to-ports 15001');
    const counted = r.rules.verdict?.rule?.packets ?? 0;
    assert.ok(counted >= 1, `the REDIRECT rule counted the curl's connection (${counted})`);
    assert.equal(r.captured, true);
    assert.deepEqual(r.listener, { name: 'outbound', port: 15001 });
    assert.equal(r.proxy.ok, true, r.proxy.error);
    assert.equal(r.proxy.protocol.handling, 'http');
    assert.deepEqual(r.proxy.service, { name: 'shop', matchedBy: 'address' });
    assert.equal(r.proxy.route?.matched, 'api');
    assert.equal(r.proxy.endpoints.length, 1);
    assert.equal(r.proxy.endpoints[0]?.cluster, 'shop-api');
    assert.equal(r.proxy.endpoints[0]?.endpoint, `${s2.ip4}:8080`);
    assert.equal(r.proxy.endpoints[0]?.health?.inRotation, true);
    assert.equal(r.proxy.endpoints[0]?.health?.ejected, false);
    assert.deepEqual(r.notes, []);
    // Another path takes the catch-all route to s1; the counter is live: one more connection, one more count.
    const again = await curlFull(client, `http://${vipShop}/other`, ['-H', 'Host: shop.test']);
    assert.equal(again.body.trim(), 's1');
    const second = (await explain(['--dst', `${vipShop}:80`, '--host', 'shop.test', '--path', '/other'])).report;
    assert.equal(second.proxy.route?.matched, 'rest');
    assert.deepEqual(second.proxy.route?.routes.map((x) => [x.route, x.matched]), [['api', false], ['rest', true]]);
    assert.equal(second.proxy.endpoints[0]?.endpoint, `${s1.ip4}:8080`);
    assert.ok((second.rules.verdict?.rule?.packets ?? 0) >= counted + 1, 'the counter grew with the second connection');
    // The human-readable form says the same.
    const text = await client.exec([process.execPath, REMORA_BIN, 'explain', '--dst', `${vipShop}:80`, '--host', 'shop.test', '--path', '/api/x']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^rules\s+captured -> port 15001 \(nat OUTPUT\)/m);
    assert.match(text.stdout, /^route\s+route api$/m);
    assert.match(text.stdout, new RegExp(`^endpoint\\s+${s2.ip4.replaceAll('.', '\\.')}:8080$`, 'm'));
  });

  test('not captured: the proxy\'s uid 1337 (loop prevention) and an excluded port, each with the rule that lets it go', opts, async () => {
    const own = (await explain(['--dst', `${vipShop}:80`, '--uid', '1337'])).report;
    assert.equal(own.captured, false);
    assert.equal(own.rules.verdict?.kind, 'not-captured');
    assert.equal(own.rules.verdict?.rule?.rule, '-A REMORA_OUTPUT -m owner --uid-owner 1337 -j RETURN');
    assert.match(own.rules.verdict?.reason ?? '', /loop prevention/);
    assert.ok(own.notes.some((n) => /not captured/.test(n)));
    // The proxy's own connections (uid 1337) really pass by: the counter of that RETURN grows with one.
    const before1337 = own.rules.verdict?.rule?.packets ?? -1;
    const direct = await client.exec(['curl', '-sS', '--max-time', '5', `http://${s1.ip4}:8080/`], { uid: 1337 });
    assert.equal(direct.code, 0, direct.stderr);
    const after1337 = (await explain(['--dst', `${vipShop}:80`, '--uid', '1337'])).report.rules.verdict?.rule?.packets ?? -1;
    assert.ok(after1337 >= before1337 + 1, `the uid-1337 RETURN counted the direct connection (${before1337} -> ${after1337})`);

    const excluded = (await explain(['--dst', `${s1.ip4}:9999`])).report;
    assert.equal(excluded.captured, false);
    assert.equal(excluded.rules.verdict?.rule?.rule, '-A REMORA_OUTPUT -p tcp -m multiport --dports 9999 -j RETURN');
    assert.match(excluded.rules.verdict?.reason ?? '', /exclude_outbound_ports/);
    const got = await curlFull(client, `http://${s1.ip4}:9999/`);
    assert.equal(got.body.trim(), 'excluded');
    const afterCurl = (await explain(['--dst', `${s1.ip4}:9999`])).report.rules.verdict?.rule?.packets ?? 0;
    assert.ok(afterCurl >= 1, 'the excluded-port RETURN counted the direct connection');
  });

  test('an unknown destination is captured and goes through as passthrough to itself', opts, async () => {
    const r = (await explain(['--dst', `${s2.ip4}:8080`])).report;
    assert.equal(r.captured, true);
    assert.equal(r.listener?.name, 'outbound');
    assert.equal(r.proxy.service, undefined);
    assert.equal(r.proxy.destination.kind, 'passthrough');
    assert.deepEqual(r.proxy.endpoints.map((e) => [e.cluster, e.endpoint]), [['passthrough', `${s2.ip4}:8080`]]);
    assert.equal(r.proxy.protocol.handling, 'detect');
    // IPv6: the ip6tables rules, with their own counter.
    const v6 = await curlFull(client, `http://[${s2.ip6}]:8080/`);
    assert.equal(v6.body.trim(), 's2');
    const six = (await explain(['--dst', `[${s2.ip6}]:8080`])).report;
    assert.equal(six.rules.verdict?.kind, 'captured');
    assert.match(six.rules.source ?? '', /^ip6tables-(nft|legacy)?-?save -c$/);
    assert.ok((six.rules.verdict?.rule?.packets ?? 0) >= 1, 'the IPv6 REDIRECT counted the connection');
    assert.deepEqual(six.proxy.endpoints.map((e) => e.endpoint), [`[${s2.ip6}]:8080`]);
  });

  test('inbound with an authorization policy: captured to the inbound listener, /admin denied by the policy, / allowed', opts, async () => {
    const denied = await curlFull(s1, `http://${client.ip4}:8080/admin/users`);
    assert.equal(denied.status, 403, 'the policy is in force on the real path');
    const ok = await curlFull(s1, `http://${client.ip4}:8080/`);
    assert.equal(ok.status, 200);
    const r = (await explain(['--direction', 'inbound', '--dst', `${client.ip4}:8080`, '--path', '/admin/users', '--src', s1.ip4])).report;
    assert.equal(r.rules.hook, 'PREROUTING');
    assert.equal(r.rules.verdict?.kind, 'captured');
    assert.equal(r.rules.verdict?.rule?.rule, '-A REMORA_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006');
    assert.ok((r.rules.verdict?.rule?.packets ?? 0) >= 2, 'both inbound connections were counted');
    assert.deepEqual(r.listener, { name: 'inbound', port: 15006 });
    assert.equal(r.proxy.destination.kind, 'inbound');
    assert.equal(r.proxy.authorization.applies, true);
    assert.equal(r.proxy.authorization.as, 'http');
    assert.equal(r.proxy.authorization.decision?.allowed, false);
    assert.equal(r.proxy.authorization.decision?.policy, 'deny-admin');
    assert.deepEqual(r.proxy.authorization.policies, [{ name: 'deny-admin', action: 'deny', matched: true }]);
    const allowed = (await explain(['--direction', 'inbound', '--dst', `${client.ip4}:8080`, '--path', '/', '--src', s1.ip4])).report;
    assert.equal(allowed.proxy.authorization.decision?.allowed, true);
    assert.equal(allowed.proxy.stages.find((s) => s.stage === 'authorization')?.decision, 'allowed');
  });

  test('bad flags: exit 2 with REMORA_ERR_USAGE naming each flag; no sidecar at --admin: exit 1, the rules still explained', opts, async () => {
    const bad = await client.exec([process.execPath, REMORA_BIN, 'explain', '--dst', 'nope', '--uid', 'root', '--frob', 'x']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /REMORA_ERR_USAGE/);
    assert.match(bad.stderr, /--dst = "nope": expected IP:PORT/);
    assert.match(bad.stderr, /--uid = "root": expected a numeric id/);
    assert.match(bad.stderr, /--frob: expected a known flag/);
    const noAdmin = await explain(['--dst', `${vipShop}:80`, '--admin', '127.0.0.1:1']);
    assert.equal(noAdmin.code, 1);
    assert.match(noAdmin.stderr, /REMORA_ERR_ADMIN_REQUEST/);
    assert.equal(noAdmin.report.proxy.ok, false);
    assert.equal(noAdmin.report.rules.verdict?.kind, 'captured');
  });

  test('/debug/connections: a held-open TCP connection and a half-closed one, with destination, service, endpoint, bytes and side states', opts, async () => {
    const openedBefore = Date.now();
    const openClient = await holdClient([vipHold, '7000', '1000', 'open']);
    const halfClient = await holdClient([vipHold, '7000', '300', 'end']);
    const greeting = 'hello-from-s1\n'.length;
    const [open, half] = await waitFor('both connections with their bytes and the half-close seen', async () => {
      const list = (await connections()).filter((c) => c.originalDst === `${vipHold}:7000`);
      const o = list.find((c) => c.bytesIn === 1000);
      const h = list.find((c) => c.bytesIn === 300);
      if (o === undefined || h === undefined || h.downstreamState !== 'fin-received' || o.bytesOut < greeting || h.bytesOut < greeting) return undefined;
      return [o, h] as const;
    });
    for (const c of [open, half]) {
      assert.equal(c.direction, 'outbound');
      assert.equal(c.phase, 'forward');
      assert.equal(c.protocol, 'declared:opaque');
      assert.equal(c.service, 'hold');
      assert.equal(c.endpoint, `${s1.ip4}:7000`);
      assert.equal(c.bytesOut, greeting);
      assert.equal(c.peerIdentity, undefined);
      assert.match(c.downstream ?? '', new RegExp(`^${client.ip4.replaceAll('.', '\\.')}:\\d+$`));
      assert.equal(typeof c.ageMs, 'number');
      assert.ok(c.ageMs >= 0 && c.ageMs <= Date.now() - openedBefore, `age ${c.ageMs} ms: since accept, not longer than the test held it`);
    }
    assert.equal(open.downstreamState, 'open');
    assert.equal(open.upstreamState, 'open');
    assert.equal(half.downstreamState, 'fin-received', 'the client ended its side');
    assert.equal(half.upstreamState, 'fin-sent', 'the proxy passed the FIN on; the server still holds its side');
    assert.notEqual(open.id, half.id);
    // The clients go away: the proxy sees their FINs and passes them on; the server still holds its side, so both
    // connections stay, half-closed, until it closes too (the forward never cuts a half-open connection).
    openClient.kill('SIGKILL');
    halfClient.kill('SIGKILL');
    await waitFor('both connections half-closed by the clients', async () => {
      const list = (await connections()).filter((c) => c.originalDst === `${vipHold}:7000`);
      return list.length === 2 && list.every((c) => c.downstreamState === 'fin-received' && c.upstreamState === 'fin-sent') ? true : undefined;
    });
    greet.kill('SIGKILL');
    await waitFor('the closed connections to leave the list', async () => {
      const left = (await connections()).filter((c) => c.originalDst === `${vipHold}:7000`);
      return left.length === 0 ? true : undefined;
    });
  });
});
