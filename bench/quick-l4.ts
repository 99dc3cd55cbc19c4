// A quick A/B measurement of remora's L4 path (about a minute): several builds of remora ("variants", each a
// directory holding bin/remora, e.g. a copy of the tree at an older commit) run side by side in one client pod, on
// different ports, behind the real `remora init` rules; for each round every variant gets the same wrk loads back
// to back (order alternating between rounds), so background load on the shared machine lands on all of them alike.
// Same topology and remora configuration as `npm run bench` (bench/modes.ts): http_engine = off, one [service] so
// the staged path (detection with the upstream pre-dialed) is what runs, log level info, log to a file.
//
// Usage (root): node dist/bench/quick-l4.js [--variant NAME=DIR[,--node-flag...]]... [--rounds N] [--duration S] [--loads ka,close] [--haproxy] [--floor]
//                                           [--node-args "..."] [--cpu-prof DIR] [--remora-args NAME="ARGS"]...
//   default: one variant "current" = this tree; 3 rounds of 5 s (+1 s warm-up) per load; prints medians.
//   loads: ka (wrk -t2 -c64 keep-alive), close (the same with Connection: close), lat (h2load --h1, 8 conns, 1,000 rps: p99),
//          svc (close, to the multi-endpoint service's VIP: a pick per connection), ttfb (the server-first banner: one
//          connection after the other, connect() to greeting p50/p99), idle (hold --idle N idle connections through the
//          proxy: RSS per connection, bench/idle-connections.ts), idle-http (the same with idle HTTP/1.1 keep-alive
//          connections to the server pod's nginx, each after one request: with --http-engine on, what the HTTP engine
//          keeps per idle client connection and in its upstream pool), bulk (iperf3, one stream to the server pod: Gbit/s and
//          proxy CPU seconds per GB moved, the bench's tcp-bulk).
//   --haproxy: HAProxy in mode tcp (the bench's haproxy-l4 configuration) as one more subject.
//   --floor: the floor of a Node.js forwarder (bench/floor-proxy.ts: two net.Sockets per connection, no remora code)
//          as one more subject, "node-floor".
//   --strace S: after the rounds, `strace -f -c` on each subject during S seconds of `close`: system calls per connection.
//   --cpu-prof DIR: every variant runs with `node --cpu-prof --cpu-prof-dir=DIR/<variant>` (written at its exit).
//   With more than one round, each variant after the first is also compared with the first round by round (rps and CPU
//   per request, the median ratio and its range): on this machine that is steadier than the medians.
//   --remora-args NAME="ARGS": extra `remora proxy` flags of variant NAME (space-separated; the word {tmp} is replaced
//          by the run's temporary directory), e.g. --remora-args obs="--access-log {tmp}/obs.log" --remora-args off="--metrics off"
//          for an A/B of the same build with metrics and access logs on and off.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { Mesh, netnsUnavailableReason, waitFor } from '../test/netns/harness.js';
import { REPO_ROOT, remoraInit } from '../test/netns/remora-process.js';
import { runH2loadFixedRate, runIperf3, runTtfb, runWrk } from './loads.js';
import { haproxyL4, HAPROXY_OUTBOUND_PORT } from './modes.js';
import { formatPairedRatios, pairedRatios } from './paired-ratios.js';
import { adminStatus, cpuSeconds, loadAverage, median, rssMb } from './proc.js';
import { BANNER_PORT, HTTP_PORT, startBanner, startEndpointPod, startServerPod } from './server-pod.js';
import { measureIdleConnections } from './idle-connections.js';
import { formatPer, straceCounts } from './strace-count.js';
import type { RunningMode } from './types.js';

interface Variant {
  readonly name: string;
  readonly root: string;
  readonly outboundPort: number;
  readonly inboundPort: number;
  readonly adminPort: number;
  /** Node/V8 flags of this variant only. */
  readonly nodeArgs: readonly string[];
  /** HAProxy in mode tcp instead of a remora build. */
  readonly haproxy?: boolean;
  /** The script run instead of DIR/bin/remora (the Node.js floor: bench/floor-proxy.ts). */
  readonly script?: string;
  child?: ChildProcess;
  pid?: number;
  rssIdleMb?: number;
  readonly results: Record<string, { rps: number; p50Ms: number; p99Ms: number; cores: number; load: string; kbPerConn?: number; kbMarginal?: number }[]>;
}

function log(s: string): void {
  process.stderr.write(`[quick-l4] ${s}\n`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      variant: { type: 'string', multiple: true }, rounds: { type: 'string' }, duration: { type: 'string' },
      loads: { type: 'string' }, 'node-args': { type: 'string' }, 'cpu-prof': { type: 'string' },
      'remora-args': { type: 'string', multiple: true }, haproxy: { type: 'boolean' }, floor: { type: 'boolean' }, strace: { type: 'string' },
      idle: { type: 'string' },
    },
  });
  const reason = netnsUnavailableReason();
  if (reason !== undefined) { log(`cannot run: ${reason}`); return 2; }
  const rounds = Number(values.rounds ?? 3);
  const durationS = Number(values.duration ?? 5);
  const loads = (values.loads ?? 'ka,close').split(',');
  const nodeArgs = (values['node-args'] ?? '').split(/\s+/).filter((s) => s !== '');
  const variants: Variant[] = (values.variant ?? [`current=${REPO_ROOT}`]).map((v, i) => {
    const eq = v.indexOf('=');
    const [dir, ...flags] = v.slice(eq + 1).split(',');
    return {
      name: eq > 0 ? v.slice(0, eq) : `v${i}`, root: resolve(dir === undefined || dir === '' ? REPO_ROOT : dir), nodeArgs: flags,
      outboundPort: 15101 + i * 10, inboundPort: 15106 + i * 10, adminPort: 15100 + i * 10, results: {},
    };
  });
  if (values.haproxy === true) {
    variants.push({ name: 'haproxy-l4', root: '', nodeArgs: [], haproxy: true, outboundPort: HAPROXY_OUTBOUND_PORT, inboundPort: 0, adminPort: 0, results: {} });
  }
  if (values.floor === true) {
    const i = variants.length;
    variants.push({ name: 'node-floor', root: REPO_ROOT, script: join(REPO_ROOT, 'dist/bench/floor-proxy.js'), nodeArgs: [],
      outboundPort: 15101 + i * 10, inboundPort: 15106 + i * 10, adminPort: 15100 + i * 10, results: {} });
  }
  const straceS = values.strace === undefined ? 0 : Number(values.strace);
  const idleN = Number(values.idle ?? 5000);
  let haproxy: RunningMode | undefined;
  const remoraArgs = new Map<string, string>();
  for (const a of values['remora-args'] ?? []) {
    const eq = a.indexOf('=');
    if (eq <= 0) { log(`--remora-args ${a}: expected NAME="ARGS"`); return 2; }
    remoraArgs.set(a.slice(0, eq), a.slice(eq + 1));
  }
  const tmpDir = mkdtempSync('/tmp/remora-quick-');
  chmodSync(tmpDir, 0o755);
  const mesh = await Mesh.create({ ipv6: false });
  try {
    const client = await mesh.addPod('client');
    const serverPod = await mesh.addPod('server');
    const endpointPods = [await mesh.addPod('endpoint2'), await mesh.addPod('endpoint3')];
    const vip = `${mesh.prefix4}.200`;
    await client.execOk(['sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1']);
    const serverInfo = await startServerPod(serverPod, tmpDir);
    for (const p of endpointPods) await startEndpointPod(p, tmpDir);
    if (loads.includes('ttfb') || loads.includes('idle')) await startBanner(serverPod, REPO_ROOT);
    const config = join(tmpDir, 'remora.ini');
    writeFileSync(config, `[proxy]\nhttp_engine = off\n\n[service bench-l4]\naddresses = ${vip}:${HTTP_PORT}\nprotocol = opaque\n`
      + `balancer = round-robin\nendpoints = ${[serverPod.ip4, ...endpointPods.map((p) => p.ip4)].map((a) => `${a}:${HTTP_PORT}`).join(', ')}\n`);
    chmodSync(config, 0o644);
    for (const v of variants) {
      if (v.haproxy === true) {
        haproxy = await haproxyL4.start({
          client, tmpDir, durationS, warmupS: 1, repoRoot: REPO_ROOT, remoraArgs: [],
          server: { ...serverInfo, bannerPort: BANNER_PORT, serviceVip: vip, servicePort: HTTP_PORT, serviceEndpoints: [serverPod.ip4, ...endpointPods.map((p) => p.ip4)] },
        });
        v.pid = haproxy.pid;
        continue;
      }
      const prof: string[] = [];
      if (values['cpu-prof'] !== undefined) {
        const dir = join(resolve(values['cpu-prof']), v.name);
        mkdirSync(dir, { recursive: true });
        chmodSync(dir, 0o777);
        prof.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
      }
      const logFile = join(tmpDir, `${v.name}.log`);
      const child = client.spawn(['sh', '-c', 'exec "$@" >>"$LOG" 2>&1', 'sh', process.execPath, ...nodeArgs, ...v.nodeArgs, ...prof,
        v.script ?? join(v.root, 'bin/remora'), 'proxy', '--config', config, '--log-level', 'info',
        '--outbound-port', String(v.outboundPort), '--inbound-port', String(v.inboundPort),
        '--admin-address', `127.0.0.1:${v.adminPort}`, '--readiness-probe-interval', 'off',
        ...(remoraArgs.get(v.name) ?? '').split(/\s+/).filter((w) => w !== '').map((w) => w.replace('{tmp}', tmpDir))], { env: { LOG: logFile } });
      child.stdout?.resume();
      child.stderr?.resume();
      v.child = child;
      v.pid = child.pid;
      await waitFor(`${v.name} ready`, async () => {
        if (child.exitCode !== null) throw new Error(`${v.name} exited: ${readFileSync(logFile, 'utf8').slice(-800)}`);
        return (await adminStatus(client, v.adminPort, '/ready')) === 200 ? true : undefined;
      }, { timeoutMs: 20_000, intervalMs: 100 });
    }
    await new Promise((r) => setTimeout(r, 1000));
    for (const v of variants) {
      const pid = v.pid;
      if (pid !== undefined) {
        const rss = rssMb(pid);
        if (rss !== undefined) v.rssIdleMb = rss;
      }
    }
    const url = `http://${serverPod.ip4}:${HTTP_PORT}/`;
    const svcUrl = `http://${vip}:${HTTP_PORT}/`;
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      for (const v of order) {
        const r = await remoraInit(client, ['--log-level', 'warn', '--outbound-port', String(v.outboundPort)]);
        if (r.code !== 0) throw new Error(`remora init: ${r.stderr}`);
        for (const l of loads) {
          const pid = v.pid ?? 0;
          const load = loadAverage();
          if (l === 'idle' || l === 'idle-http') {
            const r = l === 'idle'
              ? await measureIdleConnections(client, REPO_ROOT, pid, serverPod.ip4, BANNER_PORT, idleN)
              : await measureIdleConnections(client, REPO_ROOT, pid, serverPod.ip4, HTTP_PORT, idleN, true);
            (v.results[l] ??= []).push({ rps: 0, p50Ms: 0, p99Ms: 0, cores: 0, load, kbPerConn: r.kbPerConnection, kbMarginal: r.kbMarginal });
            log(`round ${round + 1} ${v.name} ${l}: ${r.held} held (${r.errors} errors), RSS ${r.rssBeforeMb.toFixed(1)} -> ${r.rssHalfMb.toFixed(1)} (half) -> ${r.rssHeldMb.toFixed(1)} -> ${r.rssSettledMb.toFixed(1)} (settled) -> ${r.rssAfterMb.toFixed(1)} MB (closed), `
              + `${r.kbPerConnection.toFixed(2)} KB per connection, ${r.kbMarginal.toFixed(2)} KB per connection of the second half, ${r.kbSettled.toFixed(2)} KB per connection settled, load ${load}`);
            continue;
          }
          const cpu0 = cpuSeconds(pid) ?? 0;
          const t0 = Date.now();
          const m = l === 'bulk'
            ? await runIperf3(client, { host: serverPod.ip4, port: serverInfo.iperfPort, streams: 1 }, durationS, 1)
            : l === 'lat'
            ? await runH2loadFixedRate(client, { url, connections: 8, totalRps: 1000 }, durationS, 1, tmpDir)
            : l === 'ttfb'
              ? await runTtfb(client, serverPod.ip4, BANNER_PORT, durationS, 1)
              : await runWrk(client, { url: l === 'svc' ? svcUrl : url, threads: 2, connections: 64, headers: l === 'close' || l === 'svc' ? ['Connection: close'] : [] }, durationS, 1);
          const cores = ((cpuSeconds(pid) ?? 0) - cpu0) / ((Date.now() - t0) / 1000);
          if (l === 'bulk') {
            // rps holds Gbit/s here; CPU per GB = cores / (GB/s).
            const gbps = m.gbps ?? 0;
            (v.results[l] ??= []).push({ rps: gbps, p50Ms: 0, p99Ms: 0, cores, load });
            log(`round ${round + 1} ${v.name} bulk: ${gbps.toFixed(2)} Gbit/s, ${(gbps > 0 ? cores / (gbps / 8) : 0).toFixed(3)} s proxy CPU per GB, proxy ${cores.toFixed(2)} cores, load ${load}`);
            continue;
          }
          (v.results[l] ??= []).push({ rps: m.rps ?? 0, p50Ms: m.p50Ms ?? 0, p99Ms: m.p99Ms ?? 0, cores, load });
          log(`round ${round + 1} ${v.name} ${l}: ${(m.rps ?? 0).toFixed(0)} rps, ${((cores * 1e6) / (m.rps ?? 1)).toFixed(1)} µs proxy CPU/req, p50 ${m.p50Ms?.toFixed(3)} ms, p99 ${m.p99Ms?.toFixed(3)} ms, `
            + `proxy ${cores.toFixed(2)} cores, errors ${m.errors}, load ${load}`);
        }
      }
    }
    for (const v of variants) {
      if (v.haproxy === true) continue;
      const r = await client.exec(['curl', '-sS', '--max-time', '5', `http://127.0.0.1:${v.adminPort}/stats`]);
      try {
        const listeners = (JSON.parse(r.stdout) as { listeners?: Record<string, { forwarder?: unknown }> }).listeners ?? {};
        log(`${v.name} forwarder (outbound listener): ${JSON.stringify(listeners['outbound']?.forwarder ?? 'not reported (a build without tcp_forwarder)')}`);
      } catch {
        log(`${v.name}: /stats unreadable`);
      }
    }
    const perConn = new Map<string, string>();
    if (straceS > 0) {
      for (const v of variants) {
        const r = await remoraInit(client, ['--log-level', 'warn', '--outbound-port', String(v.outboundPort)]);
        if (r.code !== 0) throw new Error(`remora init: ${r.stderr}`);
        let conns = 0;
        const counts = await straceCounts(v.pid ?? 0, async () => {
          const m = await runWrk(client, { url, threads: 2, connections: 64, headers: ['Connection: close'] }, straceS, 0);
          conns = (m.rps ?? 0) * straceS;
        });
        perConn.set(v.name, formatPer(counts, Math.max(1, conns)));
        log(`strace ${v.name}, close, per connection (${conns.toFixed(0)}): ${perConn.get(v.name)}`);
      }
    }
    const header = (l: string): string => (l === 'lat' ? 'lat (1k rps) p99 ms median (runs)' : l === 'ttfb' ? 'ttfb p50 / p99 ms median (p99 runs)'
      : l === 'bulk' ? 'bulk Gbit/s median (runs); proxy CPU per GB' : l === 'idle' || l === 'idle-http' ? `${l}: KB per connection (${idleN}) median (runs); KB per connection of the second half` : `${l} rps median (runs)`);
    process.stdout.write(`\n| variant | ${loads.map(header).join(' | ')} | RSS idle MB | RSS after MB |\n`);
    process.stdout.write(`|---|${loads.map(() => '---:').join('|')}|---:|---:|\n`);
    for (const v of variants) {
      const cols = loads.map((l) => {
        const rs = v.results[l] ?? [];
        if (l === 'lat') return `${median(rs.map((x) => x.p99Ms)).toFixed(3)} (${rs.map((x) => x.p99Ms.toFixed(3)).join(' / ')})`;
        if (l === 'ttfb') {
          return `${median(rs.map((x) => x.p50Ms)).toFixed(3)} / ${median(rs.map((x) => x.p99Ms)).toFixed(3)} (${rs.map((x) => x.p99Ms.toFixed(3)).join(' / ')}); `
            + `${median(rs.map((x) => x.rps)).toFixed(0)} conn/s; ${median(rs.map((x) => (x.rps > 0 ? (x.cores * 1e6) / x.rps : 0))).toFixed(1)} µs CPU/conn`;
        }
        if (l === 'bulk') {
          return `${median(rs.map((x) => x.rps)).toFixed(2)} Gbit/s (${rs.map((x) => x.rps.toFixed(2)).join(' / ')}); `
            + `${median(rs.map((x) => (x.rps > 0 ? x.cores / (x.rps / 8) : 0))).toFixed(3)} s CPU/GB`;
        }
        if (l === 'idle' || l === 'idle-http') {
          return `${median(rs.map((x) => x.kbPerConn ?? 0)).toFixed(2)} (${rs.map((x) => (x.kbPerConn ?? 0).toFixed(2)).join(' / ')}); `
            + `second half ${median(rs.map((x) => x.kbMarginal ?? 0)).toFixed(2)} (${rs.map((x) => (x.kbMarginal ?? 0).toFixed(2)).join(' / ')})`;
        }
        const usPerReq = median(rs.map((x) => (x.rps > 0 ? (x.cores * 1e6) / x.rps : 0)));
        return `${median(rs.map((x) => x.rps)).toFixed(0)} (${rs.map((x) => x.rps.toFixed(0)).join(' / ')}); ${usPerReq.toFixed(1)} µs CPU/req`;
      });
      const after = v.pid === undefined ? undefined : rssMb(v.pid);
      process.stdout.write(`| ${v.name} | ${cols.join(' | ')} | ${v.rssIdleMb?.toFixed(1) ?? '?'} | ${after?.toFixed(1) ?? '?'} |\n`);
    }
    const [first, ...others] = variants;
    if (first !== undefined && others.length > 0 && rounds > 1) {
      // Each round's ratio to the first variant: the drift of this machine cancels within a round (bench/paired-ratios.ts).
      process.stdout.write(`\npaired, round by round, against ${first.name} (ttfb: connections per second; bulk: Gbit/s and CPU per Gbit):\n`);
      for (const v of others) {
        for (const l of loads) {
          if (l === 'lat' || l === 'idle' || l === 'idle-http') continue;
          const p = pairedRatios(first.results[l] ?? [], v.results[l] ?? []);
          if (p !== undefined) process.stdout.write(`- ${v.name} ${l}: ${formatPairedRatios(p)}\n`);
        }
      }
    }
    for (const [name, text] of perConn) process.stdout.write(`system calls per connection (close), ${name}: ${text}\n`);
    process.stdout.write(`load average at the end: ${loadAverage()}\n`);
  } finally {
    await haproxy?.stop();
    await Promise.all(variants.map((v) => new Promise<void>((res) => {
      const c = v.child;
      if (c === undefined || c.exitCode !== null) { res(); return; }
      const t = setTimeout(() => c.kill('SIGKILL'), 20_000);
      c.once('exit', () => { clearTimeout(t); res(); });
      c.kill('SIGTERM');
    })));
    await mesh.destroy();
    rmSync(tmpDir, { recursive: true, force: true });
  }
  return 0;
}

main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
