// Markdown for the terminal and docs/benchmarks.md: absolute numbers, ratios to direct and to the peer proxy,
// the proxies' memory, and the goals (stated and reported, never asserted).
import { meshGoals, meshSection } from './mesh-report.js';
import { profileTables, type ProfileSummary } from './profile.js';
import type { Cell, Measurement, ModeSummary, Scenario } from './types.js';
import type { MachineInfo } from './tools.js';

export interface ReportInput {
  readonly machine: MachineInfo;
  readonly scenarios: readonly Scenario[];
  readonly loads: Readonly<Record<string, string>>;
  readonly modes: readonly ModeSummary[];
  readonly cells: readonly Cell[];
  readonly durationS: number;
  readonly warmupS: number;
  readonly elapsedS: number;
  /** /proc/loadavg (1, 5, 15 min) before and after: the machine may be shared. */
  readonly loadBefore: string;
  readonly loadAfter: string;
  readonly fixedRateTool: string;
  /** Mode every ratio is formed against. */
  readonly baseline: string;
  /** The peer proxy for the second ratio. */
  readonly peer: string;
  /** The mode the goals are about. */
  readonly subject: string;
  /** A CPU profile of remora's HTTP engine under load ("where the time goes"), when one was taken. */
  readonly profile?: { readonly mode: string; readonly load: string; readonly summary: ProfileSummary };
  /** The same of the mesh-mtls server sidecar (the "Mesh: two hops, mTLS" section). */
  readonly meshProfile?: { readonly mode: string; readonly load: string; readonly summary: ProfileSummary };
}

const fmt = (n: number, digits: number): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const signed = (n: number, digits: number): string => `${n >= 0 ? '+' : '−'}${fmt(Math.abs(n), digits)}`;
const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || b === 0 ? '—' : `${fmt(a / b, 2)}×`);

function headline(m: Measurement, metric: Scenario['metric']): number | undefined {
  return metric === 'gbps' ? m.gbps : m.rps;
}

function result(m: Measurement, metric: Scenario['metric']): string {
  if (metric === 'gbps') return m.gbps === undefined ? '—' : `${fmt(m.gbps, 2)} Gbit/s`;
  return m.rps === undefined ? '—' : `${fmt(m.rps, 0)} rps`;
}

export function findCell(cells: readonly Cell[], scenario: string, mode: string): Cell | undefined {
  return cells.find((c) => c.scenario === scenario && c.mode === mode);
}

/** The main table: one row per scenario × mode. */
export function resultsTable(input: ReportInput): string {
  const rows: string[] = [
    `| scenario | mode | result | vs ${input.baseline} | vs peer | p50 ms | p99 ms | Δp50 ms | Δp99 ms | proxy CPU (cores) | redirected conns | errors |`,
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of input.scenarios) {
    const base = findCell(input.cells, s.id, input.baseline)?.measurement;
    const peer = findCell(input.cells, s.id, s.peer ?? input.peer)?.measurement;
    for (const mode of input.modes) {
      const cell = findCell(input.cells, s.id, mode.mode);
      if (cell === undefined) continue;
      const m = cell.measurement;
      if (m === undefined) {
        rows.push(`| ${s.id} | ${mode.mode} | failed: ${(cell.failure ?? 'unknown').replace(/\|/g, '/').replace(/\s+/g, ' ').slice(0, 160)} | | | | | | | | | |`);
        continue;
      }
      let vsBase: string;
      let vsPeer: string;
      if (s.metric === 'latency') {
        vsBase = '—';
        vsPeer = m.p99Ms !== undefined && peer?.p99Ms !== undefined ? `p99 ${signed(m.p99Ms - peer.p99Ms, 3)} ms` : '—';
      } else {
        vsBase = ratio(headline(m, s.metric), base === undefined ? undefined : headline(base, s.metric));
        vsPeer = ratio(headline(m, s.metric), peer === undefined ? undefined : headline(peer, s.metric));
      }
      const d = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined ? '—' : signed(a - b, 3));
      rows.push(`| ${s.id} | ${mode.mode} | ${result(m, s.metric)} | ${vsBase} | ${vsPeer} | ${m.p50Ms === undefined ? '—' : fmt(m.p50Ms, 3)} | ${m.p99Ms === undefined ? '—' : fmt(m.p99Ms, 3)} | ${d(m.p50Ms, base?.p50Ms)} | ${d(m.p99Ms, base?.p99Ms)} | ${cell.proxyCores === undefined ? '—' : fmt(cell.proxyCores, 2)} | ${cell.redirected === undefined ? '—' : fmt(cell.redirected, 0)} | ${m.errors} |`);
    }
  }
  return rows.join('\n');
}

export function memoryTable(input: ReportInput): string {
  const rows = ['| mode | settings | RSS idle MB | RSS after runs MB | idle connections: KB each, settled / marginal | transparency check |', '|---|---|---:|---:|---:|---|'];
  for (const m of input.modes) {
    const mb = (x: number | undefined, byRole?: Readonly<Record<string, number>>): string => (byRole !== undefined
      ? Object.entries(byRole).map(([role, v]) => `${fmt(v, 1)} (${role})`).join(' + ')
      : x === undefined ? '—' : fmt(x, 1));
    const settings = m.failure !== undefined ? `failed: ${m.failure.replace(/\|/g, '/').replace(/\s+/g, ' ').slice(0, 200)}` : (m.notes.join('; ') || '—');
    const ic = m.idleConnections;
    const idle = ic === undefined ? '—' : `${fmt(ic.kbSettled, 1)} / ${fmt(ic.kbMarginal, 1)} (${ic.held.toLocaleString('en-US')} held${ic.errors > 0 ? `, ${ic.errors} errors` : ''})`;
    rows.push(`| ${m.mode} | ${settings} | ${mb(m.rssIdleMb, m.rssIdleByRole)} | ${mb(m.rssAfterMb, m.rssAfterByRole)} | ${idle} | ${m.transparency ?? '—'} |`);
  }
  return rows.join('\n');
}

interface Goal { readonly what: string; readonly target: string; readonly measured: string; readonly met: boolean | undefined }

export function goals(input: ReportInput): Goal[] {
  const subj = (id: string): Measurement | undefined => findCell(input.cells, id, input.subject)?.measurement;
  const peer = (id: string): Measurement | undefined => findCell(input.cells, id, input.peer)?.measurement;
  const base = (id: string): Measurement | undefined => findCell(input.cells, id, input.baseline)?.measurement;
  const vsPeer = (id: string, metric: 'rps' | 'gbps', what: string): Goal => {
    const a = metric === 'rps' ? subj(id)?.rps : subj(id)?.gbps;
    const b = metric === 'rps' ? peer(id)?.rps : peer(id)?.gbps;
    const r = a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
    return { what, target: `≥ 1.00× ${input.peer}`, measured: r === undefined ? 'not measured' : `${fmt(r, 2)}×`, met: r === undefined ? undefined : r >= 1.0 };
  };
  const out: Goal[] = [];
  const has = (id: string): boolean => input.scenarios.some((s) => s.id === id);
  // L7 rows: remora with its HTTP engine against HAProxy in http mode.
  const l7 = (id: string): Scenario | undefined => input.scenarios.find((s) => s.id === id);
  const l7VsPeer = (id: string, what: string): void => {
    const sc = l7(id);
    if (sc === undefined) return;
    const subject = sc.subject ?? input.subject;
    const peerId = sc.peer ?? input.peer;
    const a = findCell(input.cells, id, subject)?.measurement?.rps;
    const b = findCell(input.cells, id, peerId)?.measurement?.rps;
    const r = a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
    out.push({ what: `${what} (${subject})`, target: `≥ 1.00× ${peerId}`, measured: r === undefined ? 'not measured' : `${fmt(r, 2)}×`, met: r === undefined ? undefined : r >= 1.0 });
  };
  l7VsPeer('l7-http1-keepalive', 'L7 HTTP/1.1 keep-alive rps');
  l7VsPeer('l7-http1-conn-per-request', 'L7 one connection per request rps');
  l7VsPeer('l7-h2c', 'L7 h2c rps');
  const l7lat = l7('l7-latency-1k');
  if (l7lat !== undefined) {
    const a = findCell(input.cells, l7lat.id, l7lat.subject ?? input.subject)?.measurement?.p99Ms;
    const b = base(l7lat.id)?.p99Ms;
    const dlt = a !== undefined && b !== undefined ? a - b : undefined;
    out.push({ what: `L7 added p99 latency at 1,000 rps (${l7lat.subject ?? input.subject})`, target: '≤ +0.300 ms over direct', measured: dlt === undefined ? 'not measured' : `${signed(dlt, 3)} ms`, met: dlt === undefined ? undefined : dlt <= 0.3 });
  }
  if (has('http1-keepalive')) out.push(vsPeer('http1-keepalive', 'rps', 'HTTP/1.1 keep-alive rps'));
  if (input.scenarios.some((s) => s.id === 'http1-conn-per-request')) out.push(vsPeer('http1-conn-per-request', 'rps', 'one connection per request rps'));
  if (input.scenarios.some((s) => s.id === 'tcp-bulk')) out.push(vsPeer('tcp-bulk', 'gbps', 'bulk TCP throughput'));
  if (input.scenarios.some((s) => s.id === 'l4-service-conn-per-request')) {
    out.push(vsPeer('l4-service-conn-per-request', 'rps', 'L4 service (3 endpoints), one connection per request rps'));
  }
  if (input.scenarios.some((s) => s.id === 'server-first-ttfb')) {
    const a = subj('server-first-ttfb')?.p50Ms;
    const b = base('server-first-ttfb')?.p50Ms;
    const dlt = a !== undefined && b !== undefined ? a - b : undefined;
    out.push({ what: 'server-first greeting: added p50 time to first byte (detection on)', target: '≤ +0.300 ms over direct', measured: dlt === undefined ? 'not measured' : `${signed(dlt, 3)} ms`, met: dlt === undefined ? undefined : dlt <= 0.3 });
  }
  if (input.scenarios.some((s) => s.id === 'latency-1k')) {
    const a = subj('latency-1k')?.p99Ms;
    const b = base('latency-1k')?.p99Ms;
    const dlt = a !== undefined && b !== undefined ? a - b : undefined;
    out.push({ what: 'added p99 latency at 1,000 rps', target: '≤ +0.300 ms over direct', measured: dlt === undefined ? 'not measured' : `${signed(dlt, 3)} ms`, met: dlt === undefined ? undefined : dlt <= 0.3 });
  }
  out.push(...meshGoals(input));
  const rss = input.modes.find((m) => m.mode === input.subject)?.rssIdleMb;
  out.push({ what: 'RSS idle', target: '≤ 30 MB', measured: rss === undefined ? 'not measured' : `${fmt(rss, 1)} MB`, met: rss === undefined ? undefined : rss <= 30 });
  return out;
}

export function goalsTable(input: ReportInput): string {
  const rows = [`| goal (${input.subject} unless named) | target | measured | status |`, '|---|---|---:|---|'];
  for (const g of goals(input)) rows.push(`| ${g.what} | ${g.target} | ${g.measured} | ${g.met === undefined ? 'n/a' : g.met ? 'met' : 'not met'} |`);
  return rows.join('\n');
}

function notesList(input: ReportInput): string {
  const lines: string[] = [];
  for (const c of input.cells) {
    const note = c.measurement?.note;
    if (note !== undefined && note !== '') lines.push(`- ${c.scenario} / ${c.mode}: ${note}`);
  }
  return lines.join('\n');
}

function countersList(input: ReportInput): string {
  const lines: string[] = [];
  for (const m of input.modes) {
    if (m.counters === undefined || Object.keys(m.counters).length === 0) continue;
    const shown = Object.entries(m.counters).filter(([k, v]) => v !== 0 && k !== 'uptimeMs').map(([k, v]) => `${k} ${v}`);
    lines.push(`- ${m.mode}: ${shown.length === 0 ? 'all zero' : shown.join(', ')}`);
  }
  return lines.join('\n');
}

function loadNote(input: ReportInput): string {
  const n = Number(input.machine.nproc);
  const l = Number(input.loadBefore.split(' ')[0]);
  if (!Number.isFinite(n) || !Number.isFinite(l) || n <= 0) return '';
  // "after" includes the bench's own load; "before" is other work on the machine.
  return l > n / 2 ? ' — the machine was busy with other work before the run; treat the numbers as noisy.' : '';
}

const pct = (x: number): string => `${fmt(x * 100, 1)} %`;

/** "Where the time goes": areas and top functions of the CPU profile. */
export function profileSection(input: ReportInput): string {
  const p = input.profile;
  if (p === undefined) return '';
  const s = p.summary;
  return `## Where the time goes

A CPU profile of **${p.mode}** (\`node --cpu-prof\`, V8's sampling profiler) during one more run of \`${p.load}\`
after the measured runs (the profiler slows the proxy a little; these samples are not in the table above):
${fmt(s.durationS, 1)} s, ${fmt(s.samples, 0)} samples, the proxy's thread busy ${pct(s.busy)} of the time. Self time
only (a function's own samples, not its callees'); "native" is C++ reached from JavaScript (socket writes, llhttp,
nghttp2, V8 builtins). The samples of the socket-write bindings (\`writev\`, \`writeLatin1String\`,
\`writeUtf8String\`, \`writeBuffer\`) are mostly kernel time: the send system call runs the TCP stack, and on a veth
pair much of the receiving side too, in the proxy's thread. What is left for JavaScript (remora's and Node's) is the
rest of the busy time.

${profileTables(s)}

`;
}

/** The terminal summary: the main table and goals. */
export function renderSummary(input: ReportInput): string {
  const mesh = meshSection(input);
  return `${resultsTable(input)}\n\n${memoryTable(input)}\n\n${goalsTable(input)}\n${input.profile === undefined ? '' : `\n${profileSection(input)}`}${mesh === '' ? '' : `\n${mesh}`}`;
}

/** The whole docs/benchmarks.md. */
export function renderDocument(input: ReportInput): string {
  const m = input.machine;
  const loads = input.scenarios.map((s) => `- **${s.id}** — ${s.title}: \`${input.loads[s.id] ?? ''}\``).join('\n');
  const notes = notesList(input);
  const counters = countersList(input);
  return `# Benchmarks

Generated by \`npm run bench\` (bench/run.ts) — do not edit by hand; re-run to refresh.

- Date: ${m.date}
- Machine: ${m.nproc} CPUs (\`nproc\`), ${m.cpuModel}; kernel ${m.kernel}; ${m.os}
- Node.js ${m.node}; remora ${m.remoraCommit}
- Tools: ${Object.values(m.tools).join('; ')}
- Whole run: ${fmt(input.elapsedS, 0)} s; each load ${input.durationS} s measured after ${input.warmupS} s unmeasured warm-up.
- Load average (1/5/15 min) before: ${input.loadBefore}; after: ${input.loadAfter}${loadNote(input)}

## Setup

Four network namespaces (client pod, server pod, two endpoint pods; the mesh rows add a fifth, see
[Mesh: two hops, mTLS](#mesh-two-hops-mtls)) on a bridge (test/netns/harness.ts), IPv4
traffic. The server pod runs nginx (one process, keep-alive, tiny body), \`iperf3 -s\` and a server-first banner
server (node, test/netns/l4-tools.ts: greets every connection at once, on a port remora does not declare, so remora
detects with the upstream dialed in parallel); the endpoint pods run one nginx each. None has rules or a proxy.
The **multi-endpoint service** is a VIP (an unused address of the pods' /24, nothing listens there) whose endpoints
are the three nginx on :8080 (server pod and endpoint pods): only the proxies' configuration makes it reachable, so
its rows have no *direct* mode. The client pod runs
the load generators as root, with \`net.ipv4.tcp_tw_reuse=1\` (in that namespace only: behind a REDIRECT the load
generator closes first, and without reuse its TIME_WAIT sockets exhaust the ephemeral ports within seconds of
connection-per-request load, throttling whichever mode runs later):

- **direct**: no rules, no proxy (\`remora init --cleanup\`).
- **remora**: the rules of the real \`remora init\` (outbound TCP → 15001, uid/gid 1337 excluded) and \`remora proxy\`
  at L4 like its peer (\`http_engine = off\`: HTTP is detected and forwarded as opaque TCP) with a config file
  holding one \`[service bench-l4]\` (the VIP, the 3 endpoints, \`balancer = round-robin\`,
  \`protocol = opaque\`: balanced per connection at L4); every other destination is passthrough.
- **haproxy-l4**: the same \`remora init\` rules with \`--outbound-port 15002\`; HAProxy (uid 1337, \`nbthread 1\`,
  \`mode tcp\`, \`server orig 0.0.0.0\`, i.e. forwarding to the original destination) listening on 15002; connections
  whose original destination (\`dst\`) is the VIP go to a \`balance roundrobin\` backend of the 3 endpoints.
- **remora-l7** (the \`l7-*\` rows): a second \`remora proxy\` with its HTTP engine on (the default; rules
  \`--outbound-port 15003\`): HTTP/1.1 and h2c connections are detected and proxied per request, to the original
  destination (passthrough route) over pooled upstream connections, HTTP/2 upstream for h2c.
- **haproxy-http** (the \`l7-*\` rows): HAProxy \`mode http\` (keep-alive both sides, rules \`--outbound-port
  15004\`), \`server orig 0.0.0.0\`; h2c prior knowledge is recognised on the clear bind and the h2c port
  (\`dst_port\` ACL) goes to \`server orig 0.0.0.0 proto h2\`. The server pod's nginx serves h2c on :8082
  (\`listen 8082 http2\`).
- **mesh-plain**, **mesh-mtls**, **haproxy-tls** (the \`mesh-*\` rows): a sidecar in each of two pods; see
  [Mesh: two hops, mTLS](#mesh-two-hops-mtls).

All proxies run for the whole bench; for each scenario the modes run back to back (order alternating between
scenarios) and the rules are switched by \`remora init\` before each load, so background load on a shared machine
does not land on one mode only. One hop (the client's sidecar only), no TLS, except the mesh rows (two hops, with
and without mTLS). Load generators, proxy and server share
the same ${m.nproc} CPUs: compare ratios within one run, not absolute numbers across machines. Each row is one run of
each mode, except the tail-latency rows (\`server-first-ttfb\`, \`latency-1k\`, \`l7-latency-1k\`), the throughput
rows with a target (\`http1-keepalive\`, \`http1-conn-per-request\`, \`l7-http1-keepalive\`, \`l7-http1-conn-per-request\`,
\`l7-h2c\`, \`l4-service-keepalive\`, \`l4-service-conn-per-request\`) and the mesh rows: each of their cells is the
median of 3 rounds (every mode back to back per round, the order alternating), since one run's p99 moves several-fold
between runs, HAProxy's included, and one run of an L7 throughput row put remora at anywhere from 0.56× to 0.88× of
HAProxy for the same build. \`tcp-bulk\` is one run. Expect 5–15 % run-to-run spread on ratios, more when the machine is busy.

Loads:

${loads}

The fixed-rate generator is ${input.fixedRateTool}.

Columns: *vs ${input.baseline}* and *vs peer* are throughput ratios (rps or Gbit/s); the peer is ${input.peer} for the
L4 rows and haproxy-http for the \`l7-*\` rows; for the latency rows the peer column is the p99 difference. Δp50/Δp99 are differences to direct (for the wrk rows these are latencies of a
saturated server, not added latency). *proxy CPU* is user+system time of the proxy process divided by the load's
wall time (warm-up included); for the mesh rows, of both sidecars together. *redirected conns* counts connections through the nat REDIRECT rules during the load
(warm-up included; iperf3 uses two). *RSS* is VmRSS of the proxy process, idle = 1 s after it is ready. *idle
connections*: after the loads, N connections to the server-first banner held open through the proxy (each past
detection, forwarding), in two halves (bench/idle-connections.ts); *settled* is the RSS growth per connection at its
lowest in the 20 s they stay held, *marginal* the growth per connection of the second half. For
**server-first-ttfb** the result is connections per second of a client that opens one connection after the other and
closes each at the server's greeting, and p50/p99 are the time from \`connect()\` to the greeting (the client is a
Node.js process, so its own overhead is in every mode's numbers alike).

## Results

${resultsTable(input)}

## Memory and settings

${memoryTable(input)}

## Observability on vs off

Not measured by this run: the remora rows above run with the defaults, Istio's metrics on (\`metrics = on\`), no
access log, tracing off. What each costs is measured separately with an A/A pair for the noise band
(\`bench/observability-ab.ts\`, \`bench/quick-l7.ts\` / \`quick-l4.ts\` with \`--remora-args\`); on 2026-12-03 (a machine
at load 7-11 on 2 cores): metrics, not measurable above the A/A band (about ±5 µs of 75-115 µs CPU per L7 request);
an access log file, +7 to +16 µs CPU per L7 request (about 0.9× throughput); tracing with every request sampled,
about +45 µs per request (0.66× throughput), at the default 1 % sampling within the noise; on the L4
connection-per-request path nothing was measurable (identical variants differ by ±17 %). The tables and how to
re-run them: [observability.md](observability.md#costs).

## Goals

Stated targets for remora; reported, not enforced.

${goalsTable(input)}

${profileSection(input)}${meshSection(input)}${notes === '' ? '' : `\n## Load generator notes\n\n${notes}\n`}${counters === '' ? '' : `\n## Proxy counters after the runs\n\n${counters}\n\nwrk ends each run by resetting its open connections (64 per run, warm-up included), which a proxy sees as\nresets from the downstream.\n`}`;
}
