// Server-first protocols through remora with protocol detection ON and a very long detection deadline (60 s): the
// proxy dials the upstream while it waits for the client's first bytes, so a server that speaks first is heard at
// once and the connection becomes opaque with no added delay. Proven with a banner server written in node and with
// a real MariaDB (port 3306 is opaque by default; `port_protocols = 3306=auto` turns detection on for it), both
// directly (passthrough) and through a service VIP. The only timing check: the greeting arrives before a bound far
// below the deadline.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { L4_TOOLS, l4Stats, l4StatsWhere, startL4Tool, tempDir, writeConfig } from './l4-helpers.js';
import { initOk } from './proxy-helpers.js';
import { startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();
const DETECT_TIMEOUT_MS = 60_000;

function mariadbUnavailable(): string | undefined {
  try {
    execFileSync('sh', ['-c', 'command -v mariadbd && command -v mariadb-install-db && command -v mariadb'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'needs mariadb-server (mariadbd, mariadb-install-db) and the mariadb client';
  }
}

interface FirstByte {
  readonly firstByteMs?: number;
  readonly greeting: string;
  readonly rest: string;
  readonly error?: string;
}

async function firstByte(pod: Pod, host: string, port: number, line?: string): Promise<FirstByte> {
  const r = await pod.exec([process.execPath, L4_TOOLS, 'first-byte', host, String(port), ...(line === undefined ? [] : [line])],
    { timeoutMs: 40_000 });
  const out = r.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(out !== undefined, `first-byte printed nothing (exit ${r.code}): ${r.stderr}`);
  return JSON.parse(out) as FirstByte;
}

describe('server-first protocols through remora, detection on, 60 s deadline', opts, () => {
  let mesh: Mesh;
  let client: Pod;
  let srv: Pod;
  let proxy: RunningProxy;
  const tmp = tempDir('remora-l4-server-first-');
  const noMariadb = mariadbUnavailable();
  let vip: (n: number) => string = () => '';

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    client = await mesh.addPod('client');
    srv = await mesh.addPod('srv');
    vip = (n) => `${mesh.prefix4}.${200 + n}`;
    await startL4Tool(srv, ['banner', '::', '2525', '220 remora-test ESMTP ready']);
    if (noMariadb === undefined) {
      const data = join(tmp.dir, 'mariadb');
      execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=root', '--skip-test-db',
        '--auth-root-authentication-method=normal'], { stdio: 'ignore', timeout: 60_000 });
      srv.spawn(['mariadbd', '--no-defaults', `--datadir=${data}`, `--socket=${join(tmp.dir, 'mariadb.sock')}`, '--port=3306',
        `--bind-address=${srv.ip4}`, '--user=root', '--skip-grant-tables', `--pid-file=${join(tmp.dir, 'mariadb.pid')}`,
        '--skip-log-bin']);
      await waitFor('mariadbd to accept connections', async () => {
        const r = await srv.exec(['mariadb', '-h', srv.ip4, '-P', '3306', '-u', 'probe', '--connect-timeout=2', '-N', '-e', 'SELECT 1']);
        return r.code === 0 && r.stdout.trim() === '1' ? true : undefined;
      }, { timeoutMs: 30_000, intervalMs: 200 });
    }
    const config = writeConfig(tmp.dir, 'client.ini', [
      '[proxy]', `detect_timeout = ${DETECT_TIMEOUT_MS}ms`,
      '[registry]', 'port_protocols = 3306=auto',
      '[service banner]', `addresses = ${vip(0)}:2525`, `endpoints = ${srv.ip4}:2525`,
      '[service db]', `addresses = ${vip(1)}:3306`, `endpoints = ${srv.ip4}:3306`,
    ]);
    await initOk(client);
    proxy = await startProxy(client, ['--config', config]);
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  for (const via of ['passthrough', 'service VIP'] as const) {
    test(`banner server (node), ${via}: the greeting arrives at once, then the client's line is answered`, opts, async () => {
      const before = await l4Stats(proxy);
      const host = via === 'passthrough' ? srv.ip4 : vip(0);
      const r = await firstByte(client, host, 2525, 'HELO client');
      assert.equal(r.error, undefined);
      assert.equal(r.greeting, '220 remora-test ESMTP ready\r\n');
      assert.equal(r.rest, 'echo HELO client\r\n');
      // Not a timing check: detection ended because the server spoke first (opaque:server-first below), not at the
      // deadline (which would be counted as opaque:timeout).
      const s = await l4StatsWhere(proxy, 'the connection closed', (x) => x.connections.active === 0);
      assert.equal((s.sniff['opaque:server-first'] ?? 0) - (before.sniff['opaque:server-first'] ?? 0), 1);
      assert.deepEqual(s.errors, {});
    });
  }

  test('MariaDB: the handshake greeting arrives at once through remora (3306 detected, not declared)', { ...opts, skip: opts.skip ?? noMariadb }, async () => {
    const before = await l4Stats(proxy);
    for (const host of [srv.ip4, vip(1)]) {
      const r = await firstByte(client, host, 3306);
      assert.equal(r.error, undefined);
      assert.match(r.greeting, /MariaDB/, 'the server greeting (protocol handshake) names the server');
    }
    const s = await l4StatsWhere(proxy, 'the connections closed', (x) => x.connections.active === 0);
    assert.equal((s.sniff['opaque:server-first'] ?? 0) - (before.sniff['opaque:server-first'] ?? 0), 2, 'decided by the server speaking first');
    assert.equal((s.sniff['opaque:timeout'] ?? 0) - (before.sniff['opaque:timeout'] ?? 0), 0, 'never by the deadline');
  });

  test('MariaDB: the mariadb client runs a query through remora, directly and through the VIP', { ...opts, skip: opts.skip ?? noMariadb }, async () => {
    const before = await l4Stats(proxy);
    for (const host of [srv.ip4, vip(1)]) {
      const r = await client.exec(['mariadb', '-h', host, '-P', '3306', '-u', 'app', '--connect-timeout=30', '-N', '-e', 'SELECT 6*7'],
        { timeoutMs: 40_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), '42');
    }
    const s = await l4StatsWhere(proxy, 'the connections closed', (x) => x.connections.active === 0);
    assert.deepEqual(s.errors, {});
    // The client did not wait for the detection deadline: both connections were decided by the server's greeting.
    assert.equal((s.sniff['opaque:server-first'] ?? 0) - (before.sniff['opaque:server-first'] ?? 0), 2);
    assert.equal((s.sniff['opaque:timeout'] ?? 0) - (before.sniff['opaque:timeout'] ?? 0), 0);
  });
});
