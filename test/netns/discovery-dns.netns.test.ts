// DNS discovery against a real DNS server: dnsmasq in one pod serves A/AAAA records from a hosts file and an SRV
// record; the discovery probe in another pod follows record changes (hosts file rewritten + SIGHUP), keeps the last
// good endpoints while the server is down, and follows again when it comes back with different records.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { REPO_ROOT } from './remora-process.js';

const PROBE = resolve(REPO_ROOT, 'dist/test/netns/discovery-dns-probe.js');

interface Probe {
  readonly child: ChildProcess;
  /** Endpoint lists published so far for a service, oldest first. */
  updates(service: string): string[][];
  stderr(): string[];
}

function startProbe(pod: Pod, config: string): Probe {
  const child = pod.spawn([process.execPath, PROBE, config]);
  const out: { service: string; endpoints: string[] }[] = [];
  const err: string[] = [];
  let buf = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) if (l.trim() !== '') out.push(JSON.parse(l) as { service: string; endpoints: string[] });
  });
  let ebuf = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    ebuf += d;
    const lines = ebuf.split('\n');
    ebuf = lines.pop() ?? '';
    err.push(...lines);
  });
  return {
    child,
    updates: (service) => out.filter((u) => u.service === service).map((u) => u.endpoints),
    stderr: () => [...err],
  };
}

const opts = netnsTestOptions();
let mesh: Mesh | undefined;
let dir: string | undefined;

before(async () => {
  if (opts.skip !== undefined) return;
  mesh = await Mesh.create();
  await mesh.addPod('dns');
  await mesh.addPod('client');
  dir = mkdtempSync(join(tmpdir(), 'remora-dns-'));
  chmodSync(dir, 0o755); // dnsmasq drops to an unprivileged user and re-reads the hosts file as that user
});

after(async () => {
  await mesh?.destroy();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

test('DNS discovery follows A/AAAA and SRV record changes from a real dnsmasq and keeps the last good set while it is down', opts, async () => {
  assert.ok(mesh !== undefined && dir !== undefined);
  const dns = mesh.pod('dns');
  const client = mesh.pod('client');
  const p4 = mesh.prefix4;
  const p6 = mesh.prefix6;
  const hosts = join(dir, 'hosts');
  const writeHosts = (lines: readonly string[]): void => {
    writeFileSync(hosts, `${lines.join('\n')}\n`);
    chmodSync(hosts, 0o644);
  };
  const startDnsmasq = (srvPort: number): ChildProcess => dns.spawn([
    'dnsmasq', '--no-daemon', '--no-resolv', '--no-hosts', '--conf-file=/dev/null', `--pid-file=${join(dir ?? '', 'dnsmasq.pid')}`,
    '--port', '53', '--listen-address', dns.ip4, '--bind-interfaces', '--local=/test/', '--local-ttl=1',
    '--addn-hosts', hosts, `--srv-host=_db._tcp.svc.test,db1.svc.test,${srvPort},0,10`, '--log-queries', '--log-facility=-',
  ]);

  writeHosts([`${p4}.50 web.svc.test`, `${p6}::50 web.svc.test`, `${p4}.60 db1.svc.test`]);
  let dnsmasq = startDnsmasq(5432);

  const config = join(dir, 'remora.ini');
  writeFileSync(config, [
    '[registry]', `resolver = ${dns.ip4}:53`, 'resolver_timeout = 500ms',
    '[service web]', 'addresses = 10.96.0.20:80', 'discovery = dns', 'dns_name = web.svc.test', 'dns_type = A+AAAA',
    'dns_port = 8080', 'dns_refresh_min = 100ms', 'dns_refresh_max = 1s',
    '[service db]', 'addresses = 10.96.0.30:5432', 'discovery = dns', 'dns_name = _db._tcp.svc.test', 'dns_type = SRV',
    'dns_refresh_min = 100ms', 'dns_refresh_max = 1s',
    '',
  ].join('\n'));
  chmodSync(config, 0o644);
  const probe = startProbe(client, config);
  const latest = (service: string): string[] | undefined => probe.updates(service).at(-1);
  const expectEndpoints = (service: string, want: readonly string[], what: string): Promise<true> =>
    waitFor(what, () => {
      if (probe.child.exitCode !== null) throw new Error(`probe exited ${probe.child.exitCode}: ${probe.stderr().join('\n')}`);
      const l = latest(service);
      return Promise.resolve(l !== undefined && JSON.stringify(l) === JSON.stringify(want) ? true : undefined);
    }, { timeoutMs: 15_000, intervalMs: 100 });

  try {
    // 1. Initial records: A and AAAA for web, SRV -> db1 (A) for db.
    await expectEndpoints('web', [`${p4}.50:8080 w=1`, `[${p6}::50]:8080 w=1`], 'initial A+AAAA endpoints');
    await expectEndpoints('db', [`${p4}.60:5432 w=10`], 'initial SRV endpoints');

    // 2. Change the records (the AAAA goes away, two new A records) and tell dnsmasq to re-read its hosts file.
    writeHosts([`${p4}.51 web.svc.test`, `${p4}.52 web.svc.test`, `${p4}.61 db1.svc.test`]);
    assert.ok(dnsmasq.kill('SIGHUP'));
    await expectEndpoints('web', [`${p4}.51:8080 w=1`, `${p4}.52:8080 w=1`], 'endpoints after the record change');
    await expectEndpoints('db', [`${p4}.61:5432 w=10`], 'SRV target address after the record change');

    // 3. The DNS server goes away: failures are logged, the last good endpoints stay.
    const exited = new Promise((r) => dnsmasq.once('exit', r));
    dnsmasq.kill('SIGTERM');
    await exited;
    const failuresBefore = probe.stderr().filter((l) => l.includes('dns discovery failed')).length;
    const updatesBefore = probe.updates('web').length + probe.updates('db').length;
    await waitFor('failures logged while dnsmasq is down', () => Promise.resolve(
      probe.stderr().filter((l) => l.includes('dns discovery failed') && l.includes('"keptEndpoints":2')).length >= failuresBefore + 2
        ? true : undefined,
    ), { timeoutMs: 15_000, intervalMs: 100 });
    assert.equal(probe.updates('web').length + probe.updates('db').length, updatesBefore, 'nothing published while failing');
    assert.deepEqual(latest('web'), [`${p4}.51:8080 w=1`, `${p4}.52:8080 w=1`]);

    // 4. The server comes back with different records (and the SRV record now names port 5433): discovery follows.
    writeHosts([`${p4}.53 web.svc.test`, `${p4}.62 db1.svc.test`]);
    dnsmasq = startDnsmasq(5433);
    await expectEndpoints('web', [`${p4}.53:8080 w=1`], 'endpoints after the server came back');
    await expectEndpoints('db', [`${p4}.62:5433 w=10`], 'SRV port change after the server came back');
    assert.ok(probe.stderr().some((l) => l.includes('dns discovery recovered')));
  } catch (err) {
    // Context for a failure: what the probe saw and logged.
    process.stderr.write(`probe stdout updates: ${JSON.stringify({ web: probe.updates('web'), db: probe.updates('db') })}\n`);
    process.stderr.write(`probe stderr (last 30):\n${probe.stderr().slice(-30).join('\n')}\n`);
    throw err;
  }
});
