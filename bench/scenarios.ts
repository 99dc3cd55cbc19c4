// The loads. Each scenario runs the same way in every mode; the client pod's rules and proxy decide the path.
// To add a row (L7 HTTP, h2c, ...): append a Scenario here; use `setup` for a server of its own in the server pod,
// `modes` when only some modes can reach its target (a VIP only a proxy's configuration knows).
import { REPO_ROOT } from '../test/netns/remora-process.js';
import {
  runH2loadFixedRate, runH2loadMax, runIperf3, runTtfb, runWrk, h2loadArgs, h2loadMaxArgs, iperf3Args, ttfbArgs, wrkArgs,
  type FixedRateLoad, type H2Load, type WrkLoad,
} from './loads.js';
import { MESH_GROUP, MESH_MODES } from './mesh-group.js';
import { startBanner } from './server-pod.js';
import type { RunContext, Scenario } from './types.js';

const httpUrl = (ctx: RunContext): string => `http://${ctx.server.ip4}:${ctx.server.httpPort}/`;

const keepAlive = (ctx: RunContext): WrkLoad => ({ url: httpUrl(ctx), threads: 2, connections: 64 });
const connClose = (ctx: RunContext): WrkLoad => ({ url: httpUrl(ctx), threads: 2, connections: 64, headers: ['Connection: close'] });
const fixedRate = (ctx: RunContext): FixedRateLoad => ({ url: httpUrl(ctx), connections: 8, totalRps: 1000 });
const bulk = (ctx: RunContext): { host: string; port: number; streams: number } => ({ host: ctx.server.ip4, port: ctx.server.iperfPort, streams: 1 });
const serviceUrl = (ctx: RunContext): string => `http://${ctx.server.serviceVip}:${ctx.server.servicePort}/`;
const serviceKeepAlive = (ctx: RunContext): WrkLoad => ({ url: serviceUrl(ctx), threads: 2, connections: 64 });
const serviceConnClose = (ctx: RunContext): WrkLoad => ({ url: serviceUrl(ctx), threads: 2, connections: 64, headers: ['Connection: close'] });
const quote = (args: readonly string[]): string => args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ');
/** The VIP of the multi-endpoint service exists only in the proxies' configuration: no direct mode. */
const PROXY_MODES = ['remora', 'haproxy-l4'] as const;
/** L7 rows: remora with its HTTP engine vs HAProxy in http mode (and direct). */
export const L7_MODES = ['direct', 'remora-l7', 'remora-l7-w2', 'haproxy-http'] as const;
const L7 = { modes: L7_MODES, peer: 'haproxy-http', subject: 'remora-l7' } as const;
/** The mesh rows load the mesh server pod (its own pod, whose inbound rules are the mesh modes' server sidecars). */
const meshUrl = (ctx: RunContext): string => {
  if (ctx.meshServer === undefined) throw new Error('the mesh server pod was not set up');
  return `http://${ctx.meshServer.ip4}:${ctx.meshServer.httpPort}/`;
};
const meshKeepAlive = (ctx: RunContext): WrkLoad => ({ url: meshUrl(ctx), threads: 2, connections: 64 });
const meshConnClose = (ctx: RunContext): WrkLoad => ({ url: meshUrl(ctx), threads: 2, connections: 64, headers: ['Connection: close'] });
const meshFixedRate = (ctx: RunContext): FixedRateLoad => ({ url: meshUrl(ctx), connections: 8, totalRps: 1000 });
/** Three rounds: the mesh targets compare modes within 10 %, below one run's spread on a shared machine. */
const MESH = { group: 'mesh', modes: MESH_MODES, peer: MESH_GROUP.peer, subject: MESH_GROUP.subject, rounds: 3 } as const;
/**
 * Three rounds for the tail-latency rows: one run's p99 is a handful of requests, and on this shared 2-core machine it
 * moves several-fold between runs of the same build, HAProxy's included (1.0 to 6.3 ms at 1,000 rps,
 * docs/performance-notes.md, "Issue 15, ninth part"); the cell is the median of the rounds, in alternating order.
 */
const TAIL = { rounds: 3 } as const;
/**
 * Three rounds for the throughput rows with a target (L4 and L7) too: one run of each put remora-l7 at anywhere from
 * 0.56× to 0.88× of HAProxy for one build, HAProxy's own keep-alive rps moving from 19,883 to 34,219 between runs,
 * and the L4 passthrough connection-per-request row at 0.75× in a run where the same path through the service VIP
 * was at 1.03× (docs/performance-notes.md, sixteenth to eighteenth parts); the median of alternating rounds is
 * steadier.
 */
const THROUGHPUT = { rounds: 3 } as const;
const h2cLoad = (ctx: RunContext): H2Load => ({ url: `http://${ctx.server.ip4}:${ctx.server.h2cPort}/`, connections: 16, streams: 4, threads: 2 });

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'http1-keepalive',
    title: 'HTTP/1.1 keep-alive, max rps',
    metric: 'rps',
    ...THROUGHPUT,
    describe: (ctx) => wrkArgs(keepAlive(ctx), ctx.durationS).join(' '),
    run: (ctx) => runWrk(ctx.client, keepAlive(ctx), ctx.durationS, ctx.warmupS),
  },
  {
    // Before any connection-per-request load: those leave TIME_WAIT sockets on the proxy's listener, and REDIRECT
    // maps every original destination to that one listener address, so for up to 60 s a new connection from a
    // source port such a socket holds can have its SYN dropped and retransmitted (docs/operations.md,
    // "Connection-per-request bursts and REDIRECT"). With one connection at a time, each retransmission would land
    // in this row, which measures the server-first path.
    id: 'server-first-ttfb',
    title: 'server-first protocol (banner on connect), time from connect() to the greeting, one connection after the other',
    metric: 'latency',
    ...TAIL,
    setup: (ctx) => startBanner(ctx.server.pod, REPO_ROOT),
    describe: (ctx) => ttfbArgs(ctx.server.ip4, ctx.server.bannerPort, ctx.durationS, ctx.warmupS).join(' '),
    run: (ctx) => runTtfb(ctx.client, ctx.server.ip4, ctx.server.bannerPort, ctx.durationS, ctx.warmupS),
  },
  {
    id: 'http1-conn-per-request',
    title: 'HTTP/1.1 one connection per request, max rps',
    metric: 'rps',
    ...THROUGHPUT,
    describe: (ctx) => wrkArgs(connClose(ctx), ctx.durationS).map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' '),
    run: (ctx) => runWrk(ctx.client, connClose(ctx), ctx.durationS, ctx.warmupS),
  },
  {
    id: 'latency-1k',
    title: 'HTTP/1.1 latency at a fixed 1,000 rps',
    metric: 'latency',
    ...TAIL,
    describe: (ctx) => h2loadArgs(fixedRate(ctx), ctx.durationS, ctx.warmupS, '<log>').join(' '),
    run: (ctx) => runH2loadFixedRate(ctx.client, fixedRate(ctx), ctx.durationS, ctx.warmupS, ctx.tmpDir),
  },
  {
    id: 'l7-http1-keepalive',
    title: 'L7: HTTP/1.1 keep-alive, max rps (remora: HTTP engine, passthrough route)',
    metric: 'rps',
    ...THROUGHPUT,
    ...L7,
    describe: (ctx) => wrkArgs(keepAlive(ctx), ctx.durationS).join(' '),
    run: (ctx) => runWrk(ctx.client, keepAlive(ctx), ctx.durationS, ctx.warmupS),
  },
  {
    id: 'l7-http1-conn-per-request',
    title: 'L7: HTTP/1.1 one connection per request (downstream), max rps; upstream connections are pooled',
    metric: 'rps',
    ...THROUGHPUT,
    ...L7,
    describe: (ctx) => quote(wrkArgs(connClose(ctx), ctx.durationS)),
    run: (ctx) => runWrk(ctx.client, connClose(ctx), ctx.durationS, ctx.warmupS),
  },
  {
    id: 'l7-h2c',
    title: 'L7: h2c (HTTP/2 prior knowledge), 16 connections × 4 streams, max rps',
    metric: 'rps',
    ...THROUGHPUT,
    ...L7,
    describe: (ctx) => h2loadMaxArgs(h2cLoad(ctx), ctx.durationS, ctx.warmupS, '<log>').join(' '),
    run: (ctx) => runH2loadMax(ctx.client, h2cLoad(ctx), ctx.durationS, ctx.warmupS, ctx.tmpDir),
  },
  {
    id: 'l7-latency-1k',
    title: 'L7: HTTP/1.1 latency at a fixed 1,000 rps',
    metric: 'latency',
    ...TAIL,
    ...L7,
    describe: (ctx) => h2loadArgs(fixedRate(ctx), ctx.durationS, ctx.warmupS, '<log>').join(' '),
    run: (ctx) => runH2loadFixedRate(ctx.client, fixedRate(ctx), ctx.durationS, ctx.warmupS, ctx.tmpDir),
  },
  {
    id: 'l4-service-keepalive',
    title: 'L4 service, 3 endpoints behind one VIP, HTTP/1.1 keep-alive, max rps',
    metric: 'rps',
    ...THROUGHPUT,
    modes: PROXY_MODES,
    describe: (ctx) => wrkArgs(serviceKeepAlive(ctx), ctx.durationS).join(' '),
    run: (ctx) => runWrk(ctx.client, serviceKeepAlive(ctx), ctx.durationS, ctx.warmupS),
  },
  {
    id: 'l4-service-conn-per-request',
    title: 'L4 service, 3 endpoints behind one VIP, one connection per request (a pick + connect each), max rps',
    metric: 'rps',
    ...THROUGHPUT,
    modes: PROXY_MODES,
    describe: (ctx) => quote(wrkArgs(serviceConnClose(ctx), ctx.durationS)),
    run: (ctx) => runWrk(ctx.client, serviceConnClose(ctx), ctx.durationS, ctx.warmupS),
  },
  {
    id: 'tcp-bulk',
    title: 'bulk TCP, 1 stream',
    metric: 'gbps',
    describe: (ctx) => iperf3Args(bulk(ctx), ctx.durationS, ctx.warmupS).join(' '),
    run: (ctx) => runIperf3(ctx.client, bulk(ctx), ctx.durationS, ctx.warmupS),
  },
  {
    id: 'mesh-keepalive',
    title: 'Mesh, two hops: HTTP/1.1 keep-alive, max rps (the hop between the sidecars is pooled)',
    metric: 'rps',
    ...MESH,
    describe: (ctx) => wrkArgs(meshKeepAlive(ctx), ctx.durationS).join(' '),
    run: (ctx) => runWrk(ctx.client, meshKeepAlive(ctx), ctx.durationS, ctx.warmupS),
  },
  {
    id: 'mesh-conn-per-request',
    title: 'Mesh, two hops: HTTP/1.1 one connection per request (downstream), max rps; the hop between the sidecars is pooled',
    metric: 'rps',
    ...MESH,
    describe: (ctx) => quote(wrkArgs(meshConnClose(ctx), ctx.durationS)),
    run: (ctx) => runWrk(ctx.client, meshConnClose(ctx), ctx.durationS, ctx.warmupS),
  },
  {
    id: 'mesh-latency-1k',
    title: 'Mesh, two hops: HTTP/1.1 latency at a fixed 1,000 rps',
    metric: 'latency',
    ...MESH,
    describe: (ctx) => h2loadArgs(meshFixedRate(ctx), ctx.durationS, ctx.warmupS, '<log>').join(' '),
    run: (ctx) => runH2loadFixedRate(ctx.client, meshFixedRate(ctx), ctx.durationS, ctx.warmupS, ctx.tmpDir),
  },
];
