// A micro-benchmark of the metrics choice (issue 12): the hot-path cost of recording one request (one counter and
// three histograms with Istio's 25 labels) and the scrape cost of N label sets, for remora's hand-written store
// (src/telemetry/istio-metrics.ts: interned series, cached label text, chunked exposition) against prom-client
// (labels passed per call, as most code uses it; and with cached children, `.labels(...)` looked up once).
//
// prom-client is not a dependency of remora: install it anywhere and point at it:
//   mkdir -p /tmp/pc && (cd /tmp/pc && npm install prom-client@15.1.3)
//   node dist/bench/metrics-micro.js --prom-client /tmp/pc/node_modules/prom-client [--series 100,1000] [--ops 200000]
// Prints a Markdown table: ns per recorded request, scrape time, the longest the event loop was held during a scrape
// (the longest gap between turns of a 1 ms timer), and the exposition size.
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ENVOY_DEFAULT_BUCKETS } from '../src/telemetry/histogram.js';
import { writeExposition } from '../src/telemetry/exposition.js';
import { IstioMetrics, OUTBOUND } from '../src/telemetry/istio-metrics.js';
import { HTTP_LABEL_NAMES, localWorkload, serviceLabels, type ServiceLabels } from '../src/telemetry/workload-labels.js';

interface PromClientLike {
  Registry: new () => { metrics(): Promise<string> };
  Counter: new (o: Record<string, unknown>) => { inc(labels: Record<string, string>, v?: number): void; labels(l: Record<string, string>): { inc(v?: number): void } };
  Histogram: new (o: Record<string, unknown>) => { observe(labels: Record<string, string>, v: number): void; labels(l: Record<string, string>): { observe(v: number): void } };
}

const STATUSES = [200, 201, 204, 301, 304, 400, 401, 403, 404, 409, 429, 500, 502, 503, 504];

/** Label set i: a service of 50, a status, a flag combination (so that N label sets exist). */
function shape(i: number): { service: string; status: number; flags: number } {
  return { service: `svc-${i % 50}`, status: STATUSES[Math.floor(i / 50) % STATUSES.length] as number, flags: Math.floor(i / (50 * STATUSES.length)) };
}

function values(i: number): Record<string, string> {
  const s = shape(i);
  const v: Record<string, string> = {};
  for (const n of HTTP_LABEL_NAMES) v[n] = 'unknown';
  Object.assign(v, {
    reporter: 'source', source_workload: 'client', source_workload_namespace: 'shop', source_principal: 'spiffe://cluster.local/ns/shop/sa/client',
    source_app: 'client', source_version: 'v1', source_canonical_service: 'client', source_canonical_revision: 'v1',
    destination_service: `${s.service}.shop.svc.cluster.local`, destination_service_name: s.service, destination_service_namespace: 'shop',
    request_protocol: 'http', response_flags: s.flags === 0 ? '-' : `UF${s.flags}`, connection_security_policy: 'unknown',
    response_code: String(s.status), grpc_response_status: '',
  });
  return v;
}

async function scrapeCost(label: string, run: () => Promise<number>): Promise<{ ms: number; maxBlockMs: number; bytes: number }> {
  // A 1 ms timer stands for request traffic: the longest gap between two of its turns is how long a request
  // arriving during the scrape could have waited.
  let last = performance.now();
  let maxGap = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    if (now - last > maxGap) maxGap = now - last;
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, 20));
  maxGap = 0;
  last = performance.now();
  const t0 = performance.now();
  const bytes = await run();
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 5));
  clearInterval(tick);
  process.stderr.write(`[metrics-micro] ${label}: ${ms.toFixed(1)} ms, longest gap ${maxGap.toFixed(1)} ms\n`);
  return { ms, maxBlockMs: maxGap, bytes };
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({ options: { 'prom-client': { type: 'string' }, series: { type: 'string' }, ops: { type: 'string' } } });
  const seriesCounts = (args.series ?? '100,1000').split(',').map(Number);
  const ops = Number(args.ops ?? 200_000);
  let pc: PromClientLike | undefined;
  if (args['prom-client'] !== undefined) {
    pc = (await import(pathToFileURL(`${args['prom-client']}/index.js`).href)) as PromClientLike;
  }
  const rows: string[] = [];
  for (const n of seriesCounts) {
    // --- remora's store
    const services = new Map<string, ServiceLabels>();
    for (let i = 0; i < 50; i++) services.set(`svc-${i}`, serviceLabels(`svc-${i}`, [`svc-${i}.shop.svc.cluster.local`], undefined));
    const m = new IstioMetrics({ local: localWorkload({ workloadName: 'client', workloadNamespace: 'shop', canonicalService: '', canonicalRevision: 'v1' }, 'spiffe://cluster.local/ns/shop/sa/client'), services },
      { maxSeries: n + 10, evictAfterMs: 0 });
    const shapes = Array.from({ length: n }, (_, i) => shape(i));
    for (const s of shapes) m.recordRequest(OUTBOUND, s.service, '', false, s.status, -1, s.flags, 3, 0, 120);
    let t0 = performance.now();
    for (let k = 0; k < ops; k++) {
      const s = shapes[k % n] as { service: string; status: number; flags: number };
      m.recordRequest(OUTBOUND, s.service, '', false, s.status, -1, s.flags, (k % 97) * 0.7, k % 5, 100 + (k % 900));
    }
    const remoraNs = ((performance.now() - t0) * 1e6) / ops;
    const remoraScrape = await scrapeCost(`remora scrape ${n}`, () => writeExposition([m.source], () => undefined));

    let pcNs = Number.NaN;
    let pcChildNs = Number.NaN;
    let pcScrape = { ms: Number.NaN, maxBlockMs: Number.NaN, bytes: Number.NaN };
    if (pc !== undefined) {
      const reg = new pc.Registry();
      const labelNames = [...HTTP_LABEL_NAMES];
      const counter = new pc.Counter({ name: 'istio_requests_total', help: 'x', labelNames, registers: [reg] });
      const hs = ['istio_request_duration_milliseconds', 'istio_request_bytes', 'istio_response_bytes'].map((name) => new pc.Histogram({
        name, help: 'x', labelNames, buckets: [...ENVOY_DEFAULT_BUCKETS], registers: [reg],
      }));
      const [h0, h1, h2] = hs as [typeof hs[0], typeof hs[0], typeof hs[0]];
      const labelObjs = Array.from({ length: n }, (_, i) => values(i));
      for (const l of labelObjs) { counter.inc(l); h0.observe(l, 3); h1.observe(l, 0); h2.observe(l, 120); }
      t0 = performance.now();
      for (let k = 0; k < ops; k++) {
        const l = labelObjs[k % n] as Record<string, string>;
        counter.inc(l);
        h0.observe(l, (k % 97) * 0.7);
        h1.observe(l, k % 5);
        h2.observe(l, 100 + (k % 900));
      }
      pcNs = ((performance.now() - t0) * 1e6) / ops;
      const children = labelObjs.map((l) => ({ c: counter.labels(l), a: h0.labels(l), b: h1.labels(l), d: h2.labels(l) }));
      t0 = performance.now();
      for (let k = 0; k < ops; k++) {
        const c = children[k % n] as (typeof children)[number];
        c.c.inc();
        c.a.observe((k % 97) * 0.7);
        c.b.observe(k % 5);
        c.d.observe(100 + (k % 900));
      }
      pcChildNs = ((performance.now() - t0) * 1e6) / ops;
      pcScrape = await scrapeCost(`prom-client scrape ${n}`, async () => (await reg.metrics()).length);
    }
    rows.push(`| ${n} | ${remoraNs.toFixed(0)} | ${pcNs.toFixed(0)} | ${pcChildNs.toFixed(0)} | ${remoraScrape.ms.toFixed(1)} / ${remoraScrape.maxBlockMs.toFixed(1)} | `
      + `${pcScrape.ms.toFixed(1)} / ${pcScrape.maxBlockMs.toFixed(1)} | ${(remoraScrape.bytes / 1e6).toFixed(2)} / ${(pcScrape.bytes / 1e6).toFixed(2)} |`);
  }
  process.stdout.write('\n| label sets | remora ns/request | prom-client ns/request (labels per call) | prom-client ns/request (cached children) '
    + '| remora scrape ms / longest loop block ms | prom-client scrape ms / longest loop block ms | exposition MB (remora / prom-client) |\n'
    + '|---:|---:|---:|---:|---:|---:|---:|\n');
  process.stdout.write(`${rows.join('\n')}\n`);
  process.stdout.write(`\n(${ops} recorded requests per cell: one counter + three histograms each; node ${process.version})\n`);
}

await main();
