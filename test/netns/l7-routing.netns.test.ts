// HTTP through remora's engine on a real kernel: a client pod (remora init + proxy) and three server pods. curl
// (HTTP/1.1, and h2c with --http2-prior-knowledge) and nghttp reach service VIPs; requests on one connection are
// balanced per request over the service's endpoints; HTTP/1.1 <-> HTTP/2 per upstream_protocol; routes by path,
// method, header and query with header changes; a 90/10 canary over 1,000 requests and weight changes over the
// admin API that apply to the next requests; an 80/20 split between endpoint subsets of one service; smuggling attempts refused with 400 + x-remora-error; a 60 KiB header
// passes, 70 KiB gets 431.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, type Pod } from './harness.js';
import { tempDir, writeConfig } from './l4-helpers.js';
import { adminCall, curlFull, httpStats, load, runL7Tool, startL7Tool, tally } from './l7-helpers.js';
import { initOk, waitForLog } from './proxy-helpers.js';
import { startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();

describe('L7 routing through remora', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let servers: Pod[] = [];
  let proxy: RunningProxy;
  const tmp = tempDir('remora-l7-routing-');
  let vip: (n: number) => string = () => '';
  const url = (n: number, path = '/'): string => `http://${vip(n)}${path}`;

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    client = await mesh.addPod('client');
    servers = [await mesh.addPod('s1'), await mesh.addPod('s2'), await mesh.addPod('s3')];
    vip = (n) => `${mesh.prefix4}.${200 + n}`;
    for (const s of servers) {
      await startL7Tool(s, ['http-tag', '::', '8080', s.name]);
      await startL7Tool(s, ['http-tag', '::', '8081', s.name === 's3' ? 'v2' : 'v1']);
      await startL7Tool(s, ['h2c-tag', '::', '8082', `h2-${s.name}`]);
    }
    await startL7Tool(servers[0] as Pod, ['http-tag', '::', '8083', 'direct']);
    const eps = (port: number, pods: readonly Pod[] = servers): string => `endpoints = ${pods.map((s) => `${s.ip4}:${port}`).join(', ')}`;
    const [s1, s2, s3] = servers as [Pod, Pod, Pod];
    const config = writeConfig(tmp.dir, 'client.ini', [
      '[service web]', `addresses = ${vip(0)}:80`, eps(8080),
      '[service web-h2]', `addresses = ${vip(1)}:80`, eps(8082),
      '[service web-h1]', `addresses = ${vip(2)}:80`, eps(8080),
      '[traffic-policy web-h1]', 'upstream_protocol = http1',
      '[service web-up2]', `addresses = ${vip(5)}:80`, eps(8082),
      '[traffic-policy web-up2]', 'upstream_protocol = http2',
      '[service canary]', `addresses = ${vip(3)}:80`, eps(8081, [s1]),
      '[service canary-v1]', eps(8081, [s1, s2]),
      '[service canary-v2]', eps(8081, [s3]),
      '[route canary-split]', 'service = canary', 'backends = canary-v1=90, canary-v2=10',
      '[service shop]', `addresses = ${vip(4)}:80`, eps(8080, [s1]),
      '[service shop-api]', eps(8080, [s2]),
      '[service shop-beta]', eps(8080, [s3]),
      '[route shop-api]', 'service = shop', 'match_path_prefix = /api', 'match_method = GET, POST', 'backends = shop-api',
      'request_headers_add = x-route: api', 'response_headers_add = x-served-by: remora',
      '[route shop-beta]', 'service = shop', 'match_query = beta', 'match_header = x-user~tester-.*', 'backends = shop-beta',
      '[route shop-rest]', 'service = shop',
      '[service sticky]', `addresses = ${vip(6)}:80`, eps(8080),
      '[traffic-policy sticky]', 'http_balancer = ring-hash',
      '[route sticky-user]', 'service = sticky', 'hash_on = header:x-user',
      '[service ewma]', `addresses = ${vip(7)}:80`, eps(8080),
      '[traffic-policy ewma]', 'http_balancer = peak-ewma', 'ewma_default_rtt = 5ms',
      '[service release]', `addresses = ${vip(8)}:80`,
      `endpoints = ${s1.ip4}:8080 subset=v1, ${s2.ip4}:8080 subset=v1, ${s3.ip4}:8080 subset=v2`,
      '[route release-split]', 'service = release', 'backends = release subset=v1 weight=80, release subset=v2 weight=20',
    ]);
    await initOk(client);
    proxy = await startProxy(client, ['--config', config]);
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  test('curl HTTP/1.1: 30 requests on one keep-alive connection are balanced per request over the three endpoints', opts, async () => {
    const before = await proxy.stats();
    const r = await client.exec(['curl', '-sS', '--max-time', '20', ...Array.from({ length: 30 }, () => url(0))]);
    assert.equal(r.code, 0, r.stderr);
    const tags = r.stdout.trim().split('\n');
    assert.equal(tags.length, 30);
    assert.deepEqual(Object.keys(tally(tags)), ['s1', 's2', 's3']);
    const s = await proxy.stats();
    assert.equal((s['sniff'] as Record<string, number>)['http1'], ((before['sniff'] as Record<string, number>)['http1'] ?? 0) + 1, 'one connection');
    const h = await httpStats(proxy);
    assert.ok((h.outbound['http.requests'] ?? 0) >= 30);
    assert.equal(h.services['web']?.httpBalancer, 'p2c', 'requests use the service balancer: p2c by default (Envoy\'s least-request)');
  });

  test('h2c: curl --http2-prior-knowledge and nghttp to h2c endpoints; h2 -> HTTP/1.1 and HTTP/1.1 -> h2 per upstream_protocol', opts, async () => {
    // One curl per connection (curl 7.88 cannot send a second request on an h2c prior-knowledge connection, even
    // straight to a Node server); nghttp sends its 30 streams on one connection.
    const tags: string[] = [];
    for (let i = 0; i < 15; i++) {
      const r = await curlFull(client, url(1, `/c${i}`), ['--http2-prior-knowledge']);
      assert.equal(r.status, 200, r.stderr);
      assert.match(r.headers['x-proto'] ?? '', /^h2$/);
      tags.push(r.body.trim());
    }
    assert.ok(tags.every((t) => /^h2-s[123]$/.test(t)), tags.join(' '));
    const ng = await client.exec(['nghttp', '-m', '30', url(1, '/ng')], { timeoutMs: 20_000 });
    assert.equal(ng.code, 0, ng.stderr);
    const ngTags = ng.stdout.trim().split('\n');
    assert.equal(ngTags.length, 30);
    assert.deepEqual(Object.keys(tally(ngTags)), ['h2-s1', 'h2-s2', 'h2-s3'], 'streams of one connection are balanced per request');

    const down = await curlFull(client, url(2, '/x'), ['--http2-prior-knowledge']);
    assert.equal(down.status, 200);
    assert.match(down.body, /^s[123]\n$/);
    assert.equal(down.headers['x-method'], 'GET', 'an HTTP/1.1 app answered an h2 client');
    const up = await curlFull(client, url(5, '/y'));
    assert.equal(up.status, 200);
    assert.match(up.body, /^h2-s[123]\n$/);
    assert.equal(up.headers['x-proto'], 'h2', 'an h2c app answered an HTTP/1.1 client');
    assert.equal(up.headers['x-path'], '/y');
    const s = await proxy.stats();
    assert.ok(((s['sniff'] as Record<string, number>)['http2'] ?? 0) >= 3, 'h2 prior knowledge detected');
    assert.equal((await httpStats(proxy)).services['web-h1']?.upstreamProtocol, 'http1');

    // remora's HTTP/2 codec (the default http2_codec) through the real rules: a 60 KiB header crosses both hops as
    // HEADERS + CONTINUATION frames. (Above the 64 KiB limit curl's nghttp2 refuses to send it at all: the proxy's
    // SETTINGS_MAX_HEADER_LIST_SIZE; the 431 the engine gives a client that sends one anyway is in h2-codec-wire.)
    const big = await curlFull(client, url(1, '/big'), ['--http2-prior-knowledge', '-H', `x-big: ${'a'.repeat(60 * 1024)}`]);
    assert.equal(big.status, 200, big.stderr);
    assert.match(big.body, /^h2-s[123]\n$/);
  });

  test('routes: path prefix and method, header regex and query, a catch-all; request and response header changes', opts, async () => {
    const api = await curlFull(client, url(4, '/api/items'));
    assert.equal(api.body, 's2\n');
    assert.equal(api.headers['x-route-seen'], 'api', 'request_headers_add reached the app');
    assert.equal(api.headers['x-served-by'], 'remora', 'response_headers_add reached the client');
    assert.equal((await curlFull(client, url(4, '/api/items'), ['-X', 'POST', '--data', 'x'])).body, 's2\n');
    assert.equal((await curlFull(client, url(4, '/api/items'), ['-X', 'DELETE'])).body, 's1\n', 'method not matched: catch-all');
    assert.equal((await curlFull(client, url(4, '/apix'))).body, 's1\n', 'prefixes match whole segments');
    assert.equal((await curlFull(client, url(4, '/?beta=1'), ['-H', 'x-user: tester-7'])).body, 's3\n');
    assert.equal((await curlFull(client, url(4, '/?beta=1'), ['-H', 'x-user: someone'])).body, 's1\n');
    assert.equal((await curlFull(client, url(4, '/?alpha=1'), ['-H', 'x-user: tester-7'])).body, 's1\n');
  });

  test('ring-hash on a header keeps each user on one endpoint; peak-EWMA balances', opts, async () => {
    const owners: Record<string, string> = {};
    for (const user of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi']) {
      const r = await load(client, url(6), 20, 4, [`x-user:${user}`]);
      assert.deepEqual(r.statuses, { 200: 20 });
      const tags = Object.keys(r.bodies);
      assert.equal(tags.length, 1, `${user} always reaches the same endpoint: ${JSON.stringify(r.bodies)}`);
      owners[user] = tags[0] as string;
    }
    assert.ok(new Set(Object.values(owners)).size >= 2, `users are spread over endpoints: ${JSON.stringify(owners)}`);
    const e = await load(client, url(7), 300, 6);
    assert.deepEqual(e.statuses, { 200: 300 });
    assert.deepEqual(Object.keys(e.bodies).sort(), ['s1', 's2', 's3']);
    const h = await httpStats(proxy);
    assert.equal(h.services['sticky']?.httpBalancer, 'ring-hash');
    assert.equal(h.services['ewma']?.httpBalancer, 'peak-ewma');
  });

  test('canary 90/10 over 1,000 requests; weights changed over the admin API apply to the next requests', opts, async () => {
    const first = await load(client, url(3), 1000, 20);
    assert.deepEqual(first.errors, {});
    assert.deepEqual(first.statuses, { 200: 1000 });
    const v2 = first.bodies['v2'] ?? 0;
    assert.equal((first.bodies['v1'] ?? 0) + v2, 1000);
    // Binomial(1000, 0.1): mean 100, sd 9.5; [60, 140] is more than 4 sd either way.
    assert.ok(v2 >= 60 && v2 <= 140, `about 10 % to v2: ${v2}`);

    const routes = await adminCall(client, '/routes');
    assert.equal(routes.status, 200);
    const listed = (JSON.parse(routes.body) as { routes: { name: string; weights: Record<string, number> }[] }).routes;
    assert.deepEqual(listed.find((r) => r.name === 'canary-split')?.weights, { 'canary-v1': 90, 'canary-v2': 10 });

    const blue = await adminCall(client, '/routes/canary-split/weights', 'POST', 'canary-v1=0,canary-v2=100');
    assert.equal(blue.status, 200, blue.body);
    assert.deepEqual(JSON.parse(blue.body), { route: 'canary-split', version: 2, weights: { 'canary-v1': 0, 'canary-v2': 100 } });
    const after = await load(client, url(3), 100, 10);
    assert.deepEqual(after.bodies, { v2: 100 }, 'the next requests all go to v2');

    const bad = await adminCall(client, '/routes/canary-split/weights', 'POST', 'canary-v1=50');
    assert.equal(bad.status, 400);
    assert.match(bad.body, /^bad weights: route canary-split: give a weight for every backend \(missing: canary-v2\)\n?$/);
    assert.equal((await adminCall(client, '/routes/nope/weights', 'POST', 'a=1')).status, 404);
    assert.deepEqual((await load(client, url(3), 50, 5)).bodies, { v2: 50 }, 'a refused change leaves the table as it was');

    const half = await adminCall(client, '/routes/canary-split/weights', 'POST', 'canary-v1=50,canary-v2=50');
    assert.equal(half.status, 200);
    const split = await load(client, url(3), 400, 20);
    const h2 = split.bodies['v2'] ?? 0;
    assert.ok(h2 >= 140 && h2 <= 260, `about half to v2: ${h2}`);
    assert.equal((await httpStats(proxy)).routeTableVersion, 3);
    await waitForLog(proxy, 'the weight change is logged', (r) => r['event'] === 'route.weights' && r['route'] === 'canary-split');
  });

  test('subsets of one service: 80/20 between endpoint subsets v1 (two pods) and v2 (one pod); a weight change moves all to v2', opts, async () => {
    const first = await load(client, url(8), 500, 20);
    assert.deepEqual(first.errors, {});
    assert.deepEqual(first.statuses, { 200: 500 });
    const v2 = first.bodies['s3'] ?? 0;
    assert.equal((first.bodies['s1'] ?? 0) + (first.bodies['s2'] ?? 0) + v2, 500);
    // Binomial(500, 0.2): mean 100, sd 8.9; [60, 140] is more than 4 sd either way.
    assert.ok(v2 >= 60 && v2 <= 140, `about 20 % to subset v2 (s3): ${v2}`);
    assert.ok((first.bodies['s1'] ?? 0) > 100 && (first.bodies['s2'] ?? 0) > 100, `subset v1 is balanced over s1 and s2: ${JSON.stringify(first.bodies)}`);
    const moved = await adminCall(client, '/routes/release-split/weights', 'POST', 'release/v1=0,release/v2=100');
    assert.equal(moved.status, 200, moved.body);
    assert.deepEqual((await load(client, url(8), 60, 10)).bodies, { s3: 60 }, 'the next requests all go to subset v2');
    const services = (await httpStats(proxy)).services;
    assert.deepEqual([...(services['release']?.subsets?.['v1'] ?? [])].sort(), [servers[0]?.ip4, servers[1]?.ip4].map((a) => `${a}:8080`).sort());
    assert.deepEqual(services['release']?.subsets?.['v2'], [`${servers[2]?.ip4}:8080`]);
  });

  test('a destination whose connections are HTTP is not pre-dialed again: 20 client connections, the server sees at most a few', opts, async () => {
    const [s1] = servers as [Pod];
    // Count the connections that reach the server (SYNs to :8083) with a rule in the server pod's own namespace.
    const rule = ['INPUT', '-p', 'tcp', '--dport', '8083', '--syn', '-j', 'ACCEPT'];
    assert.equal((await s1.exec(['iptables', '-w', '-I', ...rule])).code, 0);
    const syns = async (): Promise<number> => {
      const r = await s1.exec(['iptables', '-w', '-L', 'INPUT', '-v', '-x', '-n']);
      const line = r.stdout.split('\n').find((l) => l.includes('dpt:8083'));
      return Number(line?.trim().split(/\s+/)[0] ?? NaN);
    };
    const target = `http://${s1.ip4}:8083/`;
    // Connection: close: the client opens a new connection for each request; the engine keeps its upstream pooled.
    const r = await client.exec(['curl', '-sS', '--max-time', '20', '-H', 'Connection: close', ...Array.from({ length: 20 }, () => target)]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(tally(r.stdout.trim().split('\n')), { direct: 20 });
    const seen = await syns();
    // The first connection is pre-dialed (nothing known yet) and the engine opens its own: 2. Without the memory
    // every client connection would add a pre-dialed one (21 or more).
    assert.ok(seen >= 1 && seen <= 4, `connections reaching the server: ${seen}`);
    await s1.exec(['iptables', '-w', '-D', ...rule]);
  });

  test('smuggling attempts over a raw socket get 400 + x-remora-error and the connection closes; 60 KiB headers pass, 70 KiB get 431', opts, async () => {
    const cases: [string, string][] = [
      ['cl-te', 'POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG'],
      ['te-cl', 'POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nG'],
      ['two-cl', 'POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
      ['te-not-chunked-last', 'POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n'],
      ['te-http10', 'POST / HTTP/1.0\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ];
    for (const [name, payload] of cases) {
      const file = join(tmp.dir, `${name}.bin`);
      writeFileSync(file, payload, 'latin1');
      const r = await runL7Tool<{ text: string; closed: boolean }>(client, ['raw', vip(0), '80', file, '5000']);
      assert.match(r.text, /^HTTP\/1\.1 400 /, `${name}: ${r.text}`);
      assert.match(r.text, /\r\nx-remora-error: request-smuggling\r\n/i, name);
      assert.equal(r.closed, true, `${name}: the connection is closed`);
      assert.equal(r.text.match(/HTTP\/1\.1 /g)?.length, 1, `${name}: one response only (nothing smuggled reached an app)`);
    }
    const h = await httpStats(proxy);
    assert.ok((h.outbound['http.local_replies.request-smuggling'] ?? 0) >= cases.length);

    const big = await curlFull(client, url(0), ['-H', `x-big: ${'a'.repeat(60 * 1024)}`]);
    assert.equal(big.status, 200);
    assert.equal(big.headers['x-big-len'], String(60 * 1024), 'the app received the whole 60 KiB header');
    const tooBig = await curlFull(client, url(0), ['-H', `x-big: ${'a'.repeat(70 * 1024)}`]);
    assert.equal(tooBig.status, 431);
    assert.equal(tooBig.headers['x-remora-error'], 'header-too-large');
  });
});
