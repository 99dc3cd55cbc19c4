// The loads. Each scenario runs the same way in every mode; the client pod's rules and proxy decide the path.
// To add a row (L7 HTTP, h2c, server-first, multi-endpoint): append a Scenario here; use `setup` for a server of
// its own in the server pod.
import { runH2loadFixedRate, runIperf3, runWrk, h2loadArgs, iperf3Args, wrkArgs, type FixedRateLoad, type WrkLoad } from './loads.js';
import type { RunContext, Scenario } from './types.js';

const httpUrl = (ctx: RunContext): string => `http://${ctx.server.ip4}:${ctx.server.httpPort}/`;

const keepAlive = (ctx: RunContext): WrkLoad => ({ url: httpUrl(ctx), threads: 2, connections: 64 });
const connClose = (ctx: RunContext): WrkLoad => ({ url: httpUrl(ctx), threads: 2, connections: 64, headers: ['Connection: close'] });
const fixedRate = (ctx: RunContext): FixedRateLoad => ({ url: httpUrl(ctx), connections: 8, totalRps: 1000 });
const bulk = (ctx: RunContext): { host: string; port: number; streams: number } => ({ host: ctx.server.ip4, port: ctx.server.iperfPort, streams: 1 });

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'http1-keepalive',
    title: 'HTTP/1.1 keep-alive, max rps',
    metric: 'rps',
    describe: (ctx) => wrkArgs(keepAlive(ctx), ctx.durationS).join(' '),
    run: (ctx) => runWrk(ctx.client, keepAlive(ctx), ctx.durationS, ctx.warmupS),
  },
  {
    id: 'http1-conn-per-request',
    title: 'HTTP/1.1 one connection per request, max rps',
    metric: 'rps',
    describe: (ctx) => wrkArgs(connClose(ctx), ctx.durationS).map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' '),
    run: (ctx) => runWrk(ctx.client, connClose(ctx), ctx.durationS, ctx.warmupS),
  },
  {
    id: 'latency-1k',
    title: 'HTTP/1.1 latency at a fixed 1,000 rps',
    metric: 'latency',
    describe: (ctx) => h2loadArgs(fixedRate(ctx), ctx.durationS, ctx.warmupS, '<log>').join(' '),
    run: (ctx) => runH2loadFixedRate(ctx.client, fixedRate(ctx), ctx.durationS, ctx.warmupS, ctx.tmpDir),
  },
  {
    id: 'tcp-bulk',
    title: 'bulk TCP, 1 stream',
    metric: 'gbps',
    describe: (ctx) => iperf3Args(bulk(ctx), ctx.durationS, ctx.warmupS).join(' '),
    run: (ctx) => runIperf3(ctx.client, bulk(ctx), ctx.durationS, ctx.warmupS),
  },
];
