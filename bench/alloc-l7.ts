// Bytes allocated per request by the HTTP engine, and where: a real startProxy() (test/support/proxy-rig.ts,
// loopback, http_engine = on, one [service] in front of a backend in another process) loaded by wrk (HTTP/1.1
// keep-alive; with --close, one connection per request) or, with --h2c, by h2load (h2c prior knowledge, 4 connections x 4 streams, to an h2c backend: HTTP/2 on
// both sides), with V8's sampling heap profiler running in the proxy's process (node:inspector),
// objects collected by the scavenger and by full collections included. Allocation is counted, not timed, so it is
// the same on a busy machine as on a quiet one: it sets how often the young generation fills (scavenges per second),
// the GC share of a request's CPU and the share of requests a GC pause lands on (the p99).
//
// Printed: bytes per request in all, then by the nearest frame of remora's own code (src/) on the allocation's stack
// ("(no remora frame)": Node's stream reads, timers, microtasks), largest first.
//
// With --sites, each row is the nearest remora frame and the allocating frame itself (the innermost: a builtin, Node's
// own code, or the remora function when it allocates directly).
//
// Usage: node dist/bench/alloc-l7.js [--h2c | --close] [--sites] [--duration S] [--connections C] [--interval BYTES] [--top N]
import { spawn, type ChildProcess } from 'node:child_process';
import { Session } from 'node:inspector';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startRig } from '../test/support/proxy-rig.js';
import { REPO_ROOT } from '../test/netns/remora-process.js';
import { runTool } from './proc.js';

interface SamplingNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children: readonly SamplingNode[];
}

function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((res, rej) => {
    session.post(method, params, (err, result) => { if (err === null) res(result as T); else rej(err); });
  });
}

/** "function (src/dir/file.ts-ish path:line)" of a frame of remora's own code, or undefined. */
function remoraFrame(frame: SamplingNode['callFrame']): string | undefined {
  const i = frame.url.indexOf('/dist/src/');
  if (i < 0) return undefined;
  return `${frame.functionName || '(anonymous)'} (${frame.url.slice(i + 6)}:${frame.lineNumber + 1})`;
}

/** "function (url:line)" of any frame (Node's own and V8's builtins included). */
function anyFrame(frame: SamplingNode['callFrame']): string {
  const i = frame.url.indexOf('/dist/src/');
  const url = i >= 0 ? frame.url.slice(i + 6) : frame.url;
  return `${frame.functionName || '(anonymous)'}${url === '' ? '' : ` (${url}:${frame.lineNumber + 1})`}`;
}

/**
 * Sum selfSize by the nearest remora frame at or above each node; with `sites`, by that frame and the allocating frame
 * itself (the innermost one: a builtin such as a string slice or an array push, or Node's own code).
 */
function attribute(node: SamplingNode, nearest: string | undefined, out: Map<string, number>, sites: boolean): void {
  const here = remoraFrame(node.callFrame) ?? nearest;
  if (node.selfSize > 0) {
    let key = here ?? '(no remora frame)';
    if (sites) key = `${key} ← ${anyFrame(node.callFrame)}`;
    out.set(key, (out.get(key) ?? 0) + node.selfSize);
  }
  for (const c of node.children) attribute(c, here, out, sites);
}

function positive(name: string, raw: string | undefined, dflt: number): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    duration: { type: 'string' }, connections: { type: 'string' }, interval: { type: 'string' }, top: { type: 'string' },
    h2c: { type: 'boolean' }, close: { type: 'boolean' }, sites: { type: 'boolean' },
  } });
  const h2c = values.h2c === true;
  const close = values.close === true;
  const duration = positive('duration', values.duration, 5);
  const connections = positive('connections', values.connections, 16);
  const interval = positive('interval', values.interval, 1024);
  const top = positive('top', values.top, 25);
  const backendPort = 18000 + Math.floor(Math.random() * 1000);
  const backend: ChildProcess = spawn(process.execPath, [resolve(REPO_ROOT, 'dist/test/netns/l7-tools.js'), h2c ? 'h2c-tag' : 'http-tag', '127.0.0.1', String(backendPort), 'b'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res) => { backend.stdout?.setEncoding('utf8').on('data', (d: string) => { if (d.includes('ready')) res(); }); });
  const afters: (() => Promise<void> | void)[] = [];
  const t = { after: (fn: () => Promise<void> | void) => { afters.push(fn); } } as unknown as Parameters<typeof startRig>[0];
  const ini = `[proxy]\nlog_level = warn\n\n[service bench]\naddresses = 10.255.0.10:80\nendpoints = 127.0.0.1:${backendPort}\n`;
  const session = new Session();
  try {
    const rig = await startRig(t, ini, { httpEngine: true, idleTimeout: 60_000, logLevel: 'info' });
    rig.dst('10.255.0.10', 80);
    const url = `http://127.0.0.1:${rig.port}/`;
    const load = (secs: number): Promise<string> => (h2c
      ? runTool('h2load', ['-c4', '-m4', '-t1', `-D${secs}`, url])
      : runTool('wrk', ['-t1', `-c${connections}`, `-d${secs}s`, ...(close ? ['-H', 'Connection: close'] : []), url]));
    await load(2);
    session.connect();
    await post(session, 'HeapProfiler.enable');
    await post(session, 'HeapProfiler.startSampling', {
      samplingInterval: interval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true,
    });
    const out = await load(duration);
    const { profile } = await post<{ profile: { head: SamplingNode } }>(session, 'HeapProfiler.stopSampling');
    const requests = Number((h2c ? /(\d+) succeeded/ : /(\d+) requests in/).exec(out)?.[1] ?? 0);
    if (requests === 0) throw new Error(`the load completed no request:\n${out}`);
    const bySite = new Map<string, number>();
    attribute(profile.head, undefined, bySite, values.sites === true);
    let total = 0;
    for (const v of bySite.values()) total += v;
    process.stdout.write(`\n${h2c ? 'h2c, h2load -c4 -m4' : `HTTP/1.1 ${close ? 'one connection per request' : 'keep-alive'}, wrk -t1 -c${connections}`} for ${duration} s: ${requests} requests, `
      + `sampling interval ${interval} B\n\n**${(total / requests).toFixed(0)} B allocated per request**\n\n`
      + `| B/request | share | nearest remora frame${values.sites === true ? ' ← allocating frame' : ''} |\n|---:|---:|---|\n`);
    const rows = [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top);
    for (const [site, bytes] of rows) {
      process.stdout.write(`| ${(bytes / requests).toFixed(0)} | ${((100 * bytes) / total).toFixed(1)} % | ${site} |\n`);
    }
  } finally {
    session.disconnect();
    for (const f of afters) await f();
    backend.kill();
  }
}

await main();
