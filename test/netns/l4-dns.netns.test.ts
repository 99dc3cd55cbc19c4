// DNS discovery through the proxy: a service whose endpoints come from a real dnsmasq in another pod. curl through
// the service's VIP follows the records: first one pod, then (records rewritten, SIGHUP) the other, then both,
// spread by round robin. /stats shows the discovered endpoints.
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { countBy, curlTag, l4Stats, tempDir, writeConfig } from './l4-helpers.js';
import { initOk, startTool } from './proxy-helpers.js';
import { startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();

describe('DNS discovery through remora', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let dns: Pod;
  let s1: Pod;
  let s2: Pod;
  let dnsmasq: ChildProcess;
  let proxy: RunningProxy;
  const tmp = tempDir('remora-l4-dns-');
  const hosts = join(tmp.dir, 'hosts');
  let vip = '';
  const writeHosts = (ips: readonly string[]): void => {
    writeFileSync(hosts, `${ips.map((ip) => `${ip} web.svc.test`).join('\n')}\n`);
    chmodSync(hosts, 0o644);
  };

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    client = await mesh.addPod('client');
    dns = await mesh.addPod('dns');
    s1 = await mesh.addPod('s1');
    s2 = await mesh.addPod('s2');
    vip = `${mesh.prefix4}.200`;
    for (const s of [s1, s2]) await startTool(s, ['http-app', '::', '8080', s.name]);
    writeHosts([s1.ip4]);
    dnsmasq = dns.spawn([
      'dnsmasq', '--no-daemon', '--no-resolv', '--no-hosts', '--conf-file=/dev/null', `--pid-file=${join(tmp.dir, 'dnsmasq.pid')}`,
      '--port', '53', '--listen-address', dns.ip4, '--bind-interfaces', '--local=/test/', '--local-ttl=1', '--addn-hosts', hosts,
    ]);
    // No readiness check needed: discovery retries (backing off from dns_refresh_min) until dnsmasq answers.
    const config = writeConfig(tmp.dir, 'client.ini', [
      // L4 behaviour under test: HTTP is detected and forwarded as opaque TCP per connection, not by the HTTP engine.
      '[proxy]', 'http_engine = off',
      '[registry]', `resolver = ${dns.ip4}:53`, 'resolver_timeout = 500ms',
      '[service web]', `addresses = ${vip}:80`, 'balancer = round-robin', 'discovery = dns', 'dns_name = web.svc.test',
      'dns_port = 8080', 'dns_refresh_min = 100ms', 'dns_refresh_max = 1s',
    ]);
    await initOk(client);
    proxy = await startProxy(client, ['--config', config]);
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  const answers = async (n: number): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await curlTag(client, vip, 80));
    return out;
  };
  const until = (what: string, ok: (tag: string) => boolean): Promise<true> =>
    waitFor(what, async () => (ok(await curlTag(client, vip, 80).catch(() => '')) ? true : undefined), { timeoutMs: 20_000, intervalMs: 100 });

  test('the endpoints follow the DNS records', opts, async () => {
    await until('the first resolution (s1)', (t) => t === 's1');
    assert.deepEqual(countBy(await answers(3)), { s1: 3 });
    const endpoints = async (): Promise<string[]> =>
      ((await l4Stats(proxy)).services?.['web']?.endpoints ?? []).map((e) => e.endpoint);
    assert.deepEqual(await endpoints(), [`${s1.ip4}:8080`]);

    writeHosts([s2.ip4]);
    assert.ok(dnsmasq.kill('SIGHUP'));
    await until('the record change (s2)', (t) => t === 's2');
    assert.deepEqual(countBy(await answers(3)), { s2: 3 });
    assert.deepEqual(await endpoints(), [`${s2.ip4}:8080`]);

    writeHosts([s1.ip4, s2.ip4]);
    assert.ok(dnsmasq.kill('SIGHUP'));
    await waitFor('both endpoints discovered', async () => ((await endpoints()).length === 2 ? true : undefined), { timeoutMs: 20_000, intervalMs: 100 });
    assert.deepEqual(countBy(await answers(4)), { s1: 2, s2: 2 });
    assert.ok(proxy.logs().some((l) => l.includes('dns discovery endpoints changed')));
  });
});
