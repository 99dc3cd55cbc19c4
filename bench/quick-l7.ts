// A quick A/B measurement of remora's L7 (HTTP engine) path, about a minute: one client pod and one server pod (the
// bench's nginx: HTTP/1.1 on :8080, h2c on :8082); several builds of remora ("variants", each a directory holding
// bin/remora, e.g. a copy of the tree at an older commit) run side by side in the client pod with http_engine = on,
// on different ports, and optionally HAProxy in mode http (the bench's haproxy-http configuration) and no proxy at
// all (direct). For each round every subject gets the same loads back to back (order alternating between rounds),
// so background load on the shared 2-core machine lands on all of them alike; medians are printed at the end.
//
// Usage (root): node dist/bench/quick-l7.js [--variant NAME=DIR[,--node-flag...]]... [--haproxy] [--direct] [--floor]
//                                           [--rounds N] [--duration S] [--loads ka,close,h2c,lat] [--settle S]
//                                           [--l4 DIR] [--strace S] [--cpu-prof DIR] [--remora-args NAME="ARGS"]...
//                                           [--keep-logs DIR] [--subject-node-flags "FLAGS"]
//   default: one variant "current" = this tree; 3 rounds of 5 s (+1 s warm-up) per load; prints medians.
//   loads: ka (wrk -t2 -c64 keep-alive), close (the same with Connection: close), h2c (h2load -c16 -m4 -t2, h2c prior
//          knowledge), lat (h2load --h1, 8 conns, 1,000 rps: p99), rate (h2load --h1, 16 conns, 4,000 rps: the proxy's
//          CPU per request below saturation, steadier than rps on a shared machine), pauseN (N seconds without
//          traffic before the next load: e.g. h2c,pause15,lat).
//   --floor: the floor of a Node.js HTTP proxy (bench/floor-proxy.ts: per request the least JS can do on node:net, and
//          node:http2 both ways for h2c; no remora code) as one more subject, "node-floor".
//   --floor-handles: the same floor on TCP handles, without a net.Socket (floor-proxy --handles; HTTP/1.1 loads only),
//          "node-floor-handles".
//   --l4 DIR: also remora from DIR with http_engine = off ("remora-l4"): its L4 path, the floor of a Node.js proxy.
//   --strace S: after the rounds, for each proxy subject, `strace -f -c` on the proxy during S seconds of each of
//          ka / close (wrk) and h2c (h2load): socket syscalls per proxied request (strace slows the proxy; the counts per request are
//          what matter).
//   --cpu-prof DIR: every remora variant runs with `node --cpu-prof --cpu-prof-dir=DIR/<variant>` (written at exit).
//   --remora-args NAME="ARGS": extra `remora proxy` flags of variant NAME (space-separated; the word {tmp} is replaced
//          by the run's temporary directory), e.g. --remora-args obs="--access-log {tmp}/obs.log" --remora-args off="--metrics off"
//          for an A/B of the same build with metrics and access logs on and off.
//   --keep-logs DIR: copy each remora variant's output (its log, and what node flags such as --trace-gc print) to
//          DIR/<variant>.log at the end.
//   --subject-node-flags "FLAGS": Node flags (space-separated) for the remora-l4 and node-floor subjects, e.g.
//          --variant new=$PWD,--trace-gc-nvp --l4 $PWD --floor --subject-node-flags=--trace-gc-nvp --keep-logs /tmp/gc
//          to compare what survives each scavenge (docs/performance-notes.md, "Issue 15, eleventh part").
//   --settle S: after the rounds, read each subject's RSS again after S seconds without traffic (the "RSS settled"
//          column: what the proxy gives back once quiet, src/core/idle-heap-trim.ts).
//   --route: the proxies' config adds a [route] for the service, so every request is decided by a named route.
//   With more than one round, each subject after the first is also compared with the first round by round (rps and
//   CPU per request, the median ratio and its range): on this machine that is steadier than the medians.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Mesh, netnsUnavailableReason, waitFor } from '../test/netns/harness.js';
import { REPO_ROOT, remoraInit } from '../test/netns/remora-process.js';
import { runH2loadFixedRate, runH2loadMax, runWrk, wrkArgs } from './loads.js';
import { haproxyHttp, HAPROXY_HTTP_OUTBOUND_PORT } from './modes.js';
import { formatPairedRatios, pairedRatios } from './paired-ratios.js';
import { adminStatus, cpuSeconds, cpuSplit, loadAverage, median, treeRssMb } from './proc.js';
import { H2C_PORT, HTTP_PORT, startServerPod } from './server-pod.js';
import { straceCounts } from './strace-count.js';
import type { ModeContext, RunningMode } from './types.js';

interface Subject {
  readonly name: string;
  readonly kind: 'remora' | 'haproxy' | 'direct';
  /** remora with http_engine = off (its L4 path, as a reference for the per-request cost of the HTTP engine). */
  readonly l4?: boolean;
  /** remora variants: the tree holding bin/remora. */
  readonly root: string;
  /** The script run instead of ROOT/bin/remora (the Node.js floor: bench/floor-proxy.ts), and its own arguments. */
  readonly script?: string;
  readonly scriptArgs?: readonly string[];
  readonly outboundPort: number;
  readonly adminPort: number;
  readonly nodeArgs: readonly string[];
  pid?: number;
  stop?: () => Promise<void>;
  rssIdleMb?: number;
  readonly results: Record<string, { rps: number; p99Ms: number; cores: number; userCores: number }[]>;
  readonly syscalls: Record<string, { requests: number; calls: Map<string, number> }>;
}

function log(s: string): void {
  process.stderr.write(`[quick-l7] ${s}\n`);
}

const STRACE_SET = 'write,writev,sendmsg,sendto,read,readv,recvmsg,recvfrom,epoll_wait,epoll_pwait,epoll_ctl,setsockopt,getsockopt,getsockname,getpeername,accept4,connect,close,shutdown';


async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      variant: { type: 'string', multiple: true }, rounds: { type: 'string' }, duration: { type: 'string' },
      loads: { type: 'string' }, haproxy: { type: 'boolean' }, direct: { type: 'boolean' }, floor: { type: 'boolean' }, 'floor-handles': { type: 'boolean' },
      strace: { type: 'string' }, 'cpu-prof': { type: 'string' }, l4: { type: 'string' },
      'remora-args': { type: 'string', multiple: true }, route: { type: 'boolean' }, 'keep-logs': { type: 'string' },
      'subject-node-flags': { type: 'string' },
      settle: { type: 'string' },
    },
  });
  const reason = netnsUnavailableReason();
  if (reason !== undefined) { log(`cannot run: ${reason}`); return 2; }
  /** --NAME as a whole number within [min, max], or the default; anything else stops the run with the reason. */
  const count = (name: 'rounds' | 'duration' | 'strace' | 'settle', dflt: number, min: number, max: number): number => {
    const raw = values[name];
    const n = raw === undefined ? dflt : Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} ${raw}: expected a whole number from ${min} to ${max}`);
    return n;
  };
  let rounds: number;
  let durationS: number;
  let straceS: number;
  let settleS: number;
  try {
    rounds = count('rounds', 3, 1, 50);
    durationS = count('duration', 5, 1, 120);
    straceS = count('strace', 0, 0, 60);
    settleS = count('settle', 0, 0, 300);
  } catch (err) {
    log((err as Error).message);
    return 2;
  }
  const loads = (values.loads ?? 'ka,close,h2c,lat').split(',');
  // A load given more than once is reported per position ("lat@3"): the same load after different ones differs.
  const labelOf = (i: number): string => {
    const l = loads[i] as string;
    return loads.indexOf(l) === loads.lastIndexOf(l) ? l : `${l}@${i + 1}`;
  };
  const measured = loads.map((l, i) => ({ load: l, label: labelOf(i) })).filter((m) => !m.load.startsWith('pause'));
  const subjects: Subject[] = (values.variant ?? [`current=${REPO_ROOT}`]).map((v, i) => {
    const eq = v.indexOf('=');
    const [dir, ...flags] = v.slice(eq + 1).split(',');
    return {
      name: eq > 0 ? v.slice(0, eq) : `v${i}`, kind: 'remora' as const, root: resolve(dir === undefined || dir === '' ? REPO_ROOT : dir),
      nodeArgs: flags, outboundPort: 15201 + i * 10, adminPort: 15200 + i * 10, results: {}, syscalls: {},
    };
  });
  // Node flags of the remora-l4 and node-floor subjects (a variant takes its own after its DIR).
  const subjectFlags = (values['subject-node-flags'] ?? '').split(/\s+/).filter((w) => w !== '');
  if (values.l4 !== undefined) {
    subjects.push({ name: 'remora-l4', kind: 'remora', l4: true, root: resolve(values.l4 === '' ? REPO_ROOT : values.l4), nodeArgs: subjectFlags,
      outboundPort: 15291, adminPort: 15290, results: {}, syscalls: {} });
  }
  if (values.floor === true) {
    subjects.push({ name: 'node-floor', kind: 'remora', root: REPO_ROOT, script: join(REPO_ROOT, 'dist/bench/floor-proxy.js'), nodeArgs: subjectFlags,
      outboundPort: 15281, adminPort: 15280, results: {}, syscalls: {} });
  }
  if (values['floor-handles'] === true) {
    subjects.push({ name: 'node-floor-handles', kind: 'remora', root: REPO_ROOT, script: join(REPO_ROOT, 'dist/bench/floor-proxy.js'), scriptArgs: ['--handles'],
      nodeArgs: subjectFlags, outboundPort: 15271, adminPort: 15270, results: {}, syscalls: {} });
  }
  if (values.haproxy === true) {
    subjects.push({ name: 'haproxy-http', kind: 'haproxy', root: '', nodeArgs: [], outboundPort: HAPROXY_HTTP_OUTBOUND_PORT, adminPort: 0, results: {}, syscalls: {} });
  }
  if (values.direct === true) {
    subjects.push({ name: 'direct', kind: 'direct', root: '', nodeArgs: [], outboundPort: 0, adminPort: 0, results: {}, syscalls: {} });
  }
  const remoraArgs = new Map<string, string>();
  for (const a of values['remora-args'] ?? []) {
    const eq = a.indexOf('=');
    if (eq <= 0) { log(`--remora-args ${a}: expected NAME="ARGS"`); return 2; }
    remoraArgs.set(a.slice(0, eq), a.slice(eq + 1));
  }
  const tmpDir = mkdtempSync('/tmp/remora-quick-l7-');
  chmodSync(tmpDir, 0o755);
  const mesh = await Mesh.create({ ipv6: false });
  let haproxy: RunningMode | undefined;
  try {
    const client = await mesh.addPod('client');
    const serverPod = await mesh.addPod('server');
    await client.execOk(['sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1']);
    const serverInfo = await startServerPod(serverPod, tmpDir);
    const vip = `${mesh.prefix4}.200`;
    for (const v of subjects) {
      if (v.kind === 'haproxy') {
        const ctx: ModeContext = {
          client, tmpDir, durationS, warmupS: 1, repoRoot: REPO_ROOT, remoraArgs: [],
          server: { ...serverInfo, bannerPort: 0, serviceVip: vip, servicePort: HTTP_PORT, serviceEndpoints: [serverPod.ip4] },
        };
        haproxy = await haproxyHttp.start(ctx);
        v.pid = haproxy.pid;
        continue;
      }
      if (v.kind !== 'remora') continue;
      // The bench's remora-l7 configuration (bench/modes.ts remoraL7Config), on this variant's ports.
      const config = join(tmpDir, `${v.name}.ini`);
      writeFileSync(config, `[proxy]\nhttp_engine = ${v.l4 === true ? 'off' : 'on'}\n\n[service bench-l4]\naddresses = ${vip}:${HTTP_PORT}\n`
        + `balancer = round-robin\nendpoints = ${serverPod.ip4}:${HTTP_PORT}\n`
        // --route: the requests go through a named route (its decision and, since issue 14, its backend's counter).
        + (values.route === true ? '\n[route bench]\nservice = bench-l4\nbackends = bench-l4\n' : ''));
      chmodSync(config, 0o644);
      const prof: string[] = [];
      if (values['cpu-prof'] !== undefined) {
        const dir = join(resolve(values['cpu-prof']), v.name);
        mkdirSync(dir, { recursive: true });
        chmodSync(dir, 0o777);
        prof.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
      }
      const logFile = join(tmpDir, `${v.name}.log`);
      const child: ChildProcess = client.spawn(['sh', '-c', 'exec "$@" >>"$LOG" 2>&1', 'sh', process.execPath, ...v.nodeArgs, ...prof,
        v.script ?? join(v.root, 'bin/remora'), 'proxy', '--config', config, '--log-level', 'info',
        '--outbound-port', String(v.outboundPort), '--inbound-port', String(v.outboundPort + 5),
        '--admin-address', `127.0.0.1:${v.adminPort}`, ...(v.scriptArgs ?? []),
        // The rules point at one subject at a time, so the others' redirect probes fail and /ready would rightly say
        // 503 (as in bench/modes.ts): the probes are off unless the variant's args set them.
        ...((remoraArgs.get(v.name) ?? '').includes('--readiness-probe-interval') ? [] : ['--readiness-probe-interval', 'off']),
        ...(remoraArgs.get(v.name) ?? '').split(/\s+/).filter((w) => w !== '').map((w) => w.replace('{tmp}', tmpDir))], { env: { LOG: logFile } });
      child.stdout?.resume();
      child.stderr?.resume();
      await waitFor(`${v.name} ready`, async () => {
        if (child.exitCode !== null) throw new Error(`${v.name} exited: ${readFileSync(logFile, 'utf8').slice(-800)}`);
        return (await adminStatus(client, v.adminPort, '/ready')) === 200 ? true : undefined;
      }, { timeoutMs: 20_000, intervalMs: 100 });
      if (child.pid !== undefined) v.pid = child.pid;
      v.stop = () => new Promise<void>((res) => {
        if (child.exitCode !== null) { res(); return; }
        const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.once('exit', () => { clearTimeout(t); res(); });
        child.kill('SIGTERM');
      });
    }
    await new Promise((r) => setTimeout(r, 1000));
    for (const v of subjects) {
      if (v.pid === undefined) continue;
      const rss = treeRssMb(v.pid);
      if (rss !== undefined) v.rssIdleMb = rss;
    }
    const url = `http://${serverPod.ip4}:${HTTP_PORT}/`;
    const h2url = `http://${serverPod.ip4}:${H2C_PORT}/`;
    const route = async (v: Subject): Promise<void> => {
      const args = v.kind === 'direct' ? ['--cleanup'] : ['--outbound-port', String(v.outboundPort)];
      const r = await remoraInit(client, ['--log-level', 'warn', ...args]);
      if (r.code !== 0) throw new Error(`remora init ${args.join(' ')}: ${r.stderr}`);
    };
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? subjects : [...subjects].reverse();
      for (const v of order) {
        await route(v);
        for (const [i, l] of loads.entries()) {
          const pause = /^pause(\d+)$/.exec(l);
          if (pause !== null) {
            // pauseN: N seconds without traffic for this subject (e.g. h2c,pause15,lat: HTTP/1.1 after h2c and a pause).
            await new Promise((r) => setTimeout(r, Number(pause[1]) * 1000));
            continue;
          }
          const pid = v.pid ?? 0;
          const cpu0 = pid === 0 ? 0 : (cpuSeconds(pid) ?? 0);
          const user0 = pid === 0 ? 0 : cpuSplit(pid).user;
          const t0 = Date.now();
          const m = l === 'lat' || l === 'rate'
            ? await runH2loadFixedRate(client, { url, connections: l === 'lat' ? 8 : 16, totalRps: l === 'lat' ? 1000 : 4000 }, durationS, 1, tmpDir)
            : l === 'h2c'
              ? await runH2loadMax(client, { url: h2url, connections: 16, streams: 4, threads: 2 }, durationS, 1, tmpDir)
              : await runWrk(client, { url, threads: 2, connections: 64, headers: l === 'close' ? ['Connection: close'] : [] }, durationS, 1);
          const secs = (Date.now() - t0) / 1000;
          const cores = pid === 0 ? 0 : ((cpuSeconds(pid) ?? 0) - cpu0) / secs;
          const userCores = pid === 0 ? 0 : (cpuSplit(pid).user - user0) / secs;
          (v.results[labelOf(i)] ??= []).push({ rps: m.rps ?? 0, p99Ms: m.p99Ms ?? 0, cores, userCores });
          log(`round ${round + 1} ${v.name} ${labelOf(i)}: ${(m.rps ?? 0).toFixed(0)} rps, ${((cores * 1e6) / (m.rps ?? 1)).toFixed(1)} µs proxy CPU/req `
            + `(user ${((userCores * 1e6) / (m.rps ?? 1)).toFixed(1)}), `
            + `p50 ${m.p50Ms?.toFixed(3)} ms, p99 ${m.p99Ms?.toFixed(3)} ms, proxy ${cores.toFixed(2)} cores, errors ${m.errors}, load ${loadAverage()}`);
        }
      }
    }
    if (straceS > 0) {
      for (const v of subjects) {
        if (v.pid === undefined) continue;
        await route(v);
        for (const l of ['ka', 'close', 'h2c']) {
          const load = { url, threads: 2, connections: 64, headers: l === 'close' ? ['Connection: close'] : [] };
          let requests = 0;
          const calls = await straceCounts(v.pid, async () => {
            if (l === 'h2c') {
              const r = await client.exec(['h2load', '-c16', '-m4', '-t2', `-D${straceS}`, h2url], { timeoutMs: (straceS + 20) * 1000 });
              requests = Number(/requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/.exec(r.stdout)?.[1] ?? 0);
              return;
            }
            const r = await client.exec(wrkArgs(load, straceS), { timeoutMs: (straceS + 20) * 1000 });
            requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? 0);
          }, STRACE_SET);
          v.syscalls[l] = { requests, calls };
          log(`strace ${v.name} ${l}: ${requests} requests; ${[...calls].map(([k, n]) => `${k} ${(n / Math.max(1, requests)).toFixed(2)}`).join(', ')}`);
        }
      }
    }
    const rssAfter = new Map(subjects.map((v) => [v.name, v.pid === undefined ? undefined : treeRssMb(v.pid)]));
    if (settleS > 0) {
      log(`waiting ${settleS} s without traffic for the settled RSS`);
      await new Promise((r) => setTimeout(r, settleS * 1000));
    }
    process.stdout.write(`\n| subject | ${measured.map((m) => (m.load === 'lat' ? `${m.label} (1k rps) p99 ms median (runs)` : `${m.label} rps median (runs)`)).join(' | ')} | RSS idle MB | RSS after MB |${settleS > 0 ? ` RSS ${settleS} s later MB |` : ''}\n`);
    process.stdout.write(`|---|${measured.map(() => '---:').join('|')}|---:|---:|${settleS > 0 ? '---:|' : ''}\n`);
    for (const v of subjects) {
      const cols = measured.map(({ load, label }) => {
        const rs = v.results[label] ?? [];
        if (load === 'lat') return `${median(rs.map((x) => x.p99Ms)).toFixed(3)} (${rs.map((x) => x.p99Ms.toFixed(3)).join(' / ')})`;
        const usPerReq = median(rs.map((x) => (x.rps > 0 ? (x.cores * 1e6) / x.rps : 0)));
        const userPerReq = median(rs.map((x) => (x.rps > 0 ? (x.userCores * 1e6) / x.rps : 0)));
        return `${median(rs.map((x) => x.rps)).toFixed(0)} (${rs.map((x) => x.rps.toFixed(0)).join(' / ')})`
          + `${v.pid === undefined ? '' : `; ${usPerReq.toFixed(1)} µs CPU/req (user ${userPerReq.toFixed(1)})`}`;
      });
      const after = rssAfter.get(v.name);
      const settled = settleS > 0 ? ` ${(v.pid === undefined ? undefined : treeRssMb(v.pid))?.toFixed(1) ?? '-'} |` : '';
      process.stdout.write(`| ${v.name} | ${cols.join(' | ')} | ${v.rssIdleMb?.toFixed(1) ?? '-'} | ${after?.toFixed(1) ?? '-'} |${settled}\n`);
    }
    const [first, ...others] = subjects;
    if (first !== undefined && others.length > 0 && rounds > 1) {
      // Each round's ratio to the first subject: the drift of this machine cancels within a round (bench/paired-ratios.ts).
      process.stdout.write(`\npaired, round by round, against ${first.name}:\n`);
      for (const v of others) {
        for (const { load, label } of measured) {
          if (load === 'lat') continue;
          const p = pairedRatios(first.results[label] ?? [], v.results[label] ?? []);
          if (p !== undefined) process.stdout.write(`- ${v.name} ${label}: ${formatPairedRatios(p)}\n`);
        }
      }
    }
    if (straceS > 0) {
      process.stdout.write('\nsyscalls per proxied request (strace -f -c):\n');
      for (const v of subjects) {
        for (const [l, s] of Object.entries(v.syscalls)) {
          const per = [...s.calls].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${(n / Math.max(1, s.requests)).toFixed(2)}`);
          process.stdout.write(`- ${v.name} ${l} (${s.requests} requests): ${per.join(', ')}\n`);
        }
      }
    }
    process.stdout.write(`load average at the end: ${loadAverage()}\n`);
  } finally {
    await Promise.all(subjects.map((v) => v.stop?.() ?? Promise.resolve()));
    await haproxy?.stop();
    await mesh.destroy();
    if (values['keep-logs'] !== undefined) {
      const keep = resolve(values['keep-logs']);
      mkdirSync(keep, { recursive: true });
      for (const v of subjects) {
        if (v.kind !== 'remora') continue;
        try {
          cpSync(join(tmpDir, `${v.name}.log`), join(keep, `${v.name}.log`), { force: true });
        } catch (err) {
          log(`${v.name}: no log to keep (${(err as Error).message})`); // it never started: the run's error says why
        }
      }
    }
    rmSync(tmpDir, { recursive: true, force: true });
  }
  return 0;
}

main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
