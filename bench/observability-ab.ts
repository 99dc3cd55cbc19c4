// What metrics and access logs cost per request, measured inside one proxy process (no namespaces, loopback): a real
// startProxy() (test/support/proxy-rig.ts) with http_engine on in front of a backend in another process, loaded by
// wrk (another process). Each round, the same proxy is reloaded into each variant in turn (order alternating between
// rounds) and loaded for D seconds; the proxy's CPU time per request (process.cpuUsage of this process over the
// load, divided by the requests wrk completed) is recorded. One process, one JIT state, the same sockets: the
// variants differ only by the configuration a reload swapped in, so background load on the shared machine lands on
// all of them alike and the A/A pair ("off" twice) shows what noise remains. Printed: the median and the minimum over
// the rounds (on a shared machine the minimum is the least disturbed measurement).
//
// Usage: node dist/bench/observability-ab.js [--rounds N] [--duration S] [--connections C] [--l4] [--tracing]
//   --l4: the connection is declared opaque (a [service] with protocol = opaque): wrk with Connection: close, so
//         every request is one TCP connection through the L4 path (istio_tcp_*, one TCP access log line each).
//   --tracing: two more variants, tracing on with every request sampled ("tracing 100%") and with the default 1 %
//         ("tracing 1%"), exporting to an OTLP/HTTP receiver in another process (it answers 200 and discards); metrics
//         stay on in both (compare them with "metrics").
// Variants: off (metrics = off, no access log), off-again (the same: A/A), metrics (metrics on), metrics+log
// (metrics on, access log to a file in a temporary directory), metrics+log 10% (access_log_sample = 0.1).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startRig } from '../test/support/proxy-rig.js';
import { REPO_ROOT } from '../test/netns/remora-process.js';
import { median, runTool } from './proc.js';

function log(s: string): void {
  process.stderr.write(`[observability-ab] ${s}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    rounds: { type: 'string' }, duration: { type: 'string' }, connections: { type: 'string' }, l4: { type: 'boolean' }, tracing: { type: 'boolean' },
  } });
  const rounds = Number(values.rounds ?? 5);
  const duration = Number(values.duration ?? 5);
  const connections = Number(values.connections ?? 16);
  const l4 = values.l4 === true;
  const dir = mkdtempSync(join(tmpdir(), 'remora-obs-ab-'));
  const backendPort = 18000 + Math.floor(Math.random() * 1000);
  const backend: ChildProcess = spawn(process.execPath, [resolve(REPO_ROOT, 'dist/test/netns/l7-tools.js'), 'http-tag', '127.0.0.1', String(backendPort), 'b'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res) => { backend.stdout?.setEncoding('utf8').on('data', (d: string) => { if (d.includes('ready')) res(); }); });
  const collectorPort = backendPort + 1000;
  const collector: ChildProcess | undefined = values.tracing === true ? spawn(process.execPath, ['-e', `require('node:http').createServer((q, s) => {
    q.resume(); q.on('end', () => s.end('{}')); }).listen(${collectorPort}, '127.0.0.1', () => console.log('ready'));`], { stdio: ['ignore', 'pipe', 'inherit'] }) : undefined;
  if (collector !== undefined) {
    await new Promise<void>((res) => { collector.stdout?.setEncoding('utf8').once('data', () => { collector.stdout?.resume(); res(); }); });
  }
  const afters: (() => Promise<void> | void)[] = [];
  const t = { after: (fn: () => Promise<void> | void) => { afters.push(fn); } } as unknown as Parameters<typeof startRig>[0];
  const service = (extra: string): string => `[proxy]\nlog_level = warn\n${extra}\n\n[service bench]\naddresses = 10.255.0.10:80\n`
    + `${l4 ? 'protocol = opaque\n' : ''}endpoints = 127.0.0.1:${backendPort}\n`;
  const variants: { name: string; ini: string }[] = [
    { name: 'off', ini: service('metrics = off') },
    { name: 'off-again', ini: service('metrics = off') },
    { name: 'metrics', ini: service('') },
    { name: 'metrics+log', ini: service(`access_log = ${dir}/access.log`) },
    { name: 'metrics+log 10%', ini: service(`access_log = ${dir}/access-sampled.log\naccess_log_sample = 0.1`) },
    ...(collector === undefined ? [] : [
      { name: 'tracing 100%', ini: service(`tracing = on\ntracing_sample_rate = 1\ntracing_collector = http://127.0.0.1:${collectorPort}/v1/traces`) },
      { name: 'tracing 1%', ini: service(`tracing = on\ntracing_collector = http://127.0.0.1:${collectorPort}/v1/traces`) },
    ]),
  ];
  const rig = await startRig(t, variants[0]?.ini ?? '', { httpEngine: true, idleTimeout: 60_000 });
  rig.dst('10.255.0.10', 80);
  const results = new Map<string, number[]>();
  const rps = new Map<string, number[]>();
  const url = `http://127.0.0.1:${rig.port}/`;
  const wrk = (secs: number): Promise<string> => runTool('wrk', ['-t1', `-c${connections}`, `-d${secs}s`, ...(l4 ? ['-H', 'Connection: close'] : []), url]);
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      for (const v of order) {
        rig.setConfig(v.ini);
        const r = rig.proxy.reload(`bench ${v.name}`);
        if (r.result === 'rejected') throw new Error(`${v.name}: ${r.issues.join('; ')}`);
        await wrk(1);
        const c0 = process.cpuUsage();
        const out = await wrk(duration);
        const c1 = process.cpuUsage(c0);
        const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
        const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out)?.[0];
        const us = ((c1.user + c1.system) / Math.max(1, requests));
        (results.get(v.name) ?? results.set(v.name, []).get(v.name) as number[]).push(us);
        (rps.get(v.name) ?? rps.set(v.name, []).get(v.name) as number[]).push(requests / duration);
        log(`round ${round + 1} ${v.name}: ${(requests / duration).toFixed(0)} rps, ${us.toFixed(1)} µs proxy CPU/request${errors === undefined ? '' : ` (${errors})`}`);
      }
    }
  } finally {
    for (const f of afters) await f();
    backend.kill();
    collector?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  const base = median(results.get('off') ?? []);
  process.stdout.write(`\n${l4 ? 'L4 (one TCP connection per request)' : 'L7 (HTTP/1.1 keep-alive)'}: ${rounds} rounds of ${duration} s, wrk -t1 -c${connections}\n\n`
    + '| variant | proxy CPU µs/request (median) | vs off | min | vs off (min) | rounds (µs) | rps (median) |\n|---|---:|---:|---:|---:|---|---:|\n');
  const baseMin = Math.min(...(results.get('off') ?? [0]));
  for (const v of variants) {
    const xs = results.get(v.name) ?? [];
    const m = median(xs) ?? 0;
    const lo = Math.min(...xs);
    const sign = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
    process.stdout.write(`| ${v.name} | ${m.toFixed(1)} | ${sign(m - base)} | ${lo.toFixed(1)} | ${sign(lo - baseMin)} | ${xs.map((x) => x.toFixed(1)).join(', ')} | ${median(rps.get(v.name) ?? []).toFixed(0)} |\n`);
  }
}

await main();
