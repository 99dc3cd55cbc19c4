// The "Mesh: two hops, mTLS" section of docs/benchmarks.md (issue 11): the mesh group's rows with each sidecar's CPU
// per 1,000 rps, the evidence that the hop really was mTLS (or really was not), and the two targets — mTLS CPU per
// request vs plaintext on pooled connections, added p99 of the two hops vs HAProxy with TLS — reported, never
// asserted. Pure: the report's input in, Markdown out.
import { MESH_GROUP, MESH_SCENARIOS, ROLE_CLIENT, ROLE_SERVER } from './mesh-group.js';
import { median } from './proc.js';
import { profileTables } from './profile.js';
import type { ReportInput } from './report.js';
import type { Cell } from './types.js';

/** A target row: stated, measured, met (undefined = not measurable in this run, or informational). */
export interface MeshTarget {
  readonly what: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

/** The CPU target: mTLS may cost at most this much more CPU per request than plaintext. */
export const CPU_RATIO_TARGET = 1.10;
/** The latency target: the two hops' added p99 at most this multiple of HAProxy-TLS's. */
export const P99_RATIO_TARGET = 2.0;

const fmt = (n: number, digits: number): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
/** `ratio` ≤ `target` as printed (two decimals), so that a ratio shown as the target counts as met. */
const atMost = (ratio: number, target: number): boolean => Math.round(ratio * 100) <= Math.round(target * 100);
const signed = (n: number, digits: number): string => `${n >= 0 ? '+' : '−'}${fmt(Math.abs(n), digits)}`;

function cell(input: ReportInput, scenario: string, mode: string): Cell | undefined {
  return input.cells.find((c) => c.scenario === scenario && c.mode === mode);
}

/** CPU cores per 1,000 rps of one role ('client' / 'server') or of all processes (undefined role). */
export function coresPer1k(c: Cell | undefined, role?: string): number | undefined {
  const rps = c?.measurement?.rps;
  const cores = role === undefined ? c?.proxyCores : c?.coresByRole?.[role];
  if (rps === undefined || rps <= 0 || cores === undefined) return undefined;
  return cores / (rps / 1000);
}

/**
 * The cells of `modes` in `scenario`, round by round: with several rounds, round k of each mode ran back to back
 * with round k of the others (the same background load), so ratios are formed within a round. One round: the cells.
 */
function pairedRounds(input: ReportInput, scenario: string, modes: readonly string[]): (Cell | undefined)[][] {
  const cells = modes.map((m) => cell(input, scenario, m));
  const n = Math.max(...cells.map((c) => c?.rounds?.length ?? 1));
  if (n <= 1 || cells.some((c) => c !== undefined && (c.rounds?.length ?? 1) !== n)) return [cells];
  return Array.from({ length: n }, (_, k) => cells.map((c) => c?.rounds?.[k]));
}

const medianOf = (xs: readonly number[]): number | undefined => (xs.length === 0 ? undefined : median(xs));

export interface PairedRatio {
  /** The median of the rounds' ratios (the ratio itself with one round). */
  readonly ratio: number;
  /** Medians over the rounds of the two sides. */
  readonly mtls: number;
  readonly plain: number;
  readonly perRound: readonly number[];
}

/** mesh-mtls / mesh-plain CPU per request in `scenario` (both sidecars, or one role), paired round by round. */
export function cpuRatio(input: ReportInput, scenario: string, role?: string): PairedRatio | undefined {
  const perRound: number[] = [];
  const a: number[] = [];
  const b: number[] = [];
  for (const [m, p] of pairedRounds(input, scenario, [MESH_GROUP.subject, MESH_GROUP.plain])) {
    const mtls = coresPer1k(m, role);
    const plain = coresPer1k(p, role);
    if (mtls === undefined || plain === undefined || plain <= 0) continue;
    perRound.push(mtls / plain);
    a.push(mtls);
    b.push(plain);
  }
  const ratio = medianOf(perRound);
  if (ratio === undefined) return undefined;
  return { ratio, mtls: medianOf(a) ?? 0, plain: medianOf(b) ?? 0, perRound };
}

/**
 * Added p99 (vs direct, in the same round) of mesh-mtls and haproxy-tls at the fixed rate: medians over the rounds,
 * and the median of the rounds' ratios (rounds where HAProxy added nothing have no ratio).
 */
export function addedP99(input: ReportInput, subject: string = MESH_GROUP.subject): { subject: number; peer: number; ratio: number | undefined; perRound: readonly number[] } | undefined {
  const subj: number[] = [];
  const peer: number[] = [];
  const perRound: number[] = [];
  for (const [d, s, p] of pairedRounds(input, MESH_GROUP.latencyScenario, [MESH_GROUP.baseline, subject, MESH_GROUP.peer])) {
    const base = d?.measurement?.p99Ms;
    const a = s?.measurement?.p99Ms;
    const b = p?.measurement?.p99Ms;
    if (base === undefined || a === undefined || b === undefined) continue;
    subj.push(a - base);
    peer.push(b - base);
    if (b - base > 0) perRound.push((a - base) / (b - base));
  }
  const s = medianOf(subj);
  const p = medianOf(peer);
  if (s === undefined || p === undefined) return undefined;
  return { subject: s, peer: p, ratio: medianOf(perRound), perRound };
}

const roundsText = (xs: readonly number[]): string => (xs.length <= 1 ? '' : `; rounds ${xs.map((x) => `${fmt(x, 2)}×`).join(', ')}`);

/** The issue's two targets (they go into the Goals table too). */
export function meshGoals(input: ReportInput): MeshTarget[] {
  if (!input.scenarios.some((s) => s.group === 'mesh')) return [];
  const out: MeshTarget[] = [];
  const cpu = cpuRatio(input, MESH_GROUP.pooledScenario);
  out.push({
    what: `mesh: mTLS CPU per request vs plaintext, pooled connections (${MESH_GROUP.pooledScenario}, both sidecars)`,
    target: `≤ ${fmt(CPU_RATIO_TARGET, 2)}× ${MESH_GROUP.plain}`,
    measured: cpu === undefined ? 'not measured' : `${fmt(cpu.ratio, 2)}× (${fmt(cpu.mtls, 3)} vs ${fmt(cpu.plain, 3)} cores per 1k rps${roundsText(cpu.perRound)})`,
    met: cpu === undefined ? undefined : atMost(cpu.ratio, CPU_RATIO_TARGET),
  });
  const lat = addedP99(input);
  let measured = 'not measured';
  let met: boolean | undefined;
  if (lat !== undefined) {
    if (lat.ratio !== undefined) {
      measured = `${fmt(lat.ratio, 2)}× (${signed(lat.subject, 3)} ms vs ${signed(lat.peer, 3)} ms${roundsText(lat.perRound)})`;
      met = atMost(lat.ratio, P99_RATIO_TARGET);
    } else {
      // HAProxy added nothing measurable: only an added p99 of zero or less would be within any multiple of it.
      measured = `${signed(lat.subject, 3)} ms vs ${signed(lat.peer, 3)} ms (${MESH_GROUP.peer} added no p99)`;
      met = lat.subject <= 0;
    }
  }
  out.push({
    what: `mesh: added p99 of the two hops at 1,000 rps (${MESH_GROUP.subject}) vs ${MESH_GROUP.peer}`,
    target: `≤ ${fmt(P99_RATIO_TARGET, 2)}× ${MESH_GROUP.peer}'s`,
    measured, met,
  });
  return out;
}

const status = (met: boolean | undefined): string => (met === undefined ? 'n/a' : met ? 'met' : 'not met');
const cores = (x: number | undefined): string => (x === undefined ? '—' : fmt(x, 3));

function rowsTable(input: ReportInput): string {
  const rows = [
    '| scenario | mode | result | p50 ms | p99 ms | Δp50 ms | Δp99 ms | CPU client sidecar (cores) | CPU server sidecar (cores) | CPU per 1k rps: client | CPU per 1k rps: server | CPU per 1k rps: both | errors |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of input.scenarios.filter((x) => x.group === 'mesh')) {
    const base = cell(input, s.id, MESH_GROUP.baseline)?.measurement;
    for (const mode of input.modes) {
      const c = cell(input, s.id, mode.mode);
      if (c === undefined) continue;
      const m = c.measurement;
      if (m === undefined) {
        rows.push(`| ${s.id} | ${mode.mode} | failed: ${(c.failure ?? 'unknown').replace(/\|/g, '/').replace(/\s+/g, ' ').slice(0, 160)} | | | | | | | | | | |`);
        continue;
      }
      const d = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined ? '—' : signed(a - b, 3));
      const ms = (x: number | undefined): string => (x === undefined ? '—' : fmt(x, 3));
      rows.push(`| ${s.id} | ${mode.mode} | ${m.rps === undefined ? '—' : `${fmt(m.rps, 0)} rps`} | ${ms(m.p50Ms)} | ${ms(m.p99Ms)} | ${d(m.p50Ms, base?.p50Ms)} | ${d(m.p99Ms, base?.p99Ms)} | `
        + `${cores(c.coresByRole?.[ROLE_CLIENT])} | ${cores(c.coresByRole?.[ROLE_SERVER])} | ${cores(coresPer1k(c, ROLE_CLIENT))} | ${cores(coresPer1k(c, ROLE_SERVER))} | ${cores(coresPer1k(c))} | ${m.errors} |`);
    }
  }
  return rows.join('\n');
}

/** What the sidecars' counters say about the hop: mTLS handshakes and detections on the server side, requests, pooling. */
export function mtlsEvidence(input: ReportInput): string {
  const lines: string[] = [];
  for (const id of [MESH_GROUP.subject, MESH_GROUP.plain]) {
    const c = input.modes.find((m) => m.mode === id)?.counters;
    if (c === undefined) continue;
    const v = (k: string): number => c[k] ?? 0;
    const requests = v('server.http.inbound.http.requests');
    lines.push(`- **${id}**: server sidecar \`mtls.inbound.handshakes\` ${fmt(v('server.mtls.inbound.handshakes'), 0)}, `
      + `\`sniff.mtls\` ${fmt(v('server.sniff.mtls'), 0)}, inbound HTTP requests ${fmt(requests, 0)}; client sidecar `
      + `\`mtls.outbound.handshakes\` ${fmt(v('client.mtls.outbound.handshakes'), 0)}, outbound HTTP requests ${fmt(v('client.http.outbound.http.requests'), 0)}, `
      + `upstream connections opened ${fmt(v('client.http.outbound.pool.http1.connect'), 0)}, reused ${fmt(v('client.http.outbound.pool.http1.reused'), 0)}`
      + `${v('server.mtls.inbound.refused.plaintext') > 0 ? `; server \`mtls.inbound.refused.plaintext\` ${fmt(v('server.mtls.inbound.refused.plaintext'), 0)} `
        + '(connections from the client sidecar that closed before their first byte: its pre-dials, dropped once the request '
        + 'was seen to be HTTP; the server counts an empty connection as plaintext)' : ''}`);
  }
  const h = input.modes.find((m) => m.mode === MESH_GROUP.peer)?.counters;
  if (h !== undefined && Object.keys(h).length > 0) {
    const v = (k: string): string => (h[k] === undefined ? '?' : fmt(h[k] ?? 0, 0));
    lines.push(`- **${MESH_GROUP.peer}**: server side (TLS-only bind, client certificate required) accepted ${v('server.inbound.FRONTEND.conn_tot')} `
      + `connections and served ${v('server.inbound.FRONTEND.req_tot')} requests; client side: ${v('client.mesh.BACKEND.req_tot')} requests to the mesh server pod, `
      + `connections opened ${v('client.mesh.s1.connect')}, reused ${v('client.mesh.s1.reuse')}`);
  }
  return lines.join('\n');
}

function targetsTable(input: ReportInput): string {
  const rows = ['| target | stated | measured | status |', '|---|---|---:|---|'];
  for (const g of meshGoals(input)) rows.push(`| ${g.what} | ${g.target} | ${g.measured} | ${status(g.met)} |`);
  // The same CPU ratio per sidecar and in the other rows: context for the target, not targets themselves.
  const info = (what: string, r: ReturnType<typeof cpuRatio>): void => {
    rows.push(`| ${what} | (context) | ${r === undefined ? 'not measured' : `${fmt(r.ratio, 2)}× (${fmt(r.mtls, 3)} vs ${fmt(r.plain, 3)} cores per 1k rps${roundsText(r.perRound)})`} | — |`);
  };
  info(`— the same, client sidecar alone (${MESH_GROUP.pooledScenario})`, cpuRatio(input, MESH_GROUP.pooledScenario, ROLE_CLIENT));
  info(`— the same, server sidecar alone (${MESH_GROUP.pooledScenario})`, cpuRatio(input, MESH_GROUP.pooledScenario, ROLE_SERVER));
  info(`— the same at a fixed 1,000 rps (${MESH_GROUP.latencyScenario}, 8 keep-alive connections), both sidecars`, cpuRatio(input, MESH_GROUP.latencyScenario));
  info('— the same with one downstream connection per request (mesh-conn-per-request; the hop stays pooled), both sidecars', cpuRatio(input, 'mesh-conn-per-request'));
  const plainLat = addedP99(input, MESH_GROUP.plain);
  rows.push(`| — ${MESH_GROUP.plain}'s added p99 at 1,000 rps vs ${MESH_GROUP.peer} (the same two remora hops without TLS) | (context) | ${plainLat === undefined || plainLat.ratio === undefined ? 'not measured' : `${fmt(plainLat.ratio, 2)}× (${signed(plainLat.subject, 3)} ms vs ${signed(plainLat.peer, 3)} ms${roundsText(plainLat.perRound)})`} | — |`);
  const peerCpu = cell(input, MESH_GROUP.pooledScenario, MESH_GROUP.peer);
  const subjCpu = cell(input, MESH_GROUP.pooledScenario, MESH_GROUP.subject);
  const a = coresPer1k(subjCpu);
  const b = coresPer1k(peerCpu);
  rows.push(`| — ${MESH_GROUP.subject} vs ${MESH_GROUP.peer}, CPU per request (${MESH_GROUP.pooledScenario}, both sidecars) | (context) | ${a === undefined || b === undefined || b <= 0 ? 'not measured' : `${fmt(a / b, 2)}× (${fmt(a, 3)} vs ${fmt(b, 3)} cores per 1k rps)`} | — |`);
  return rows.join('\n');
}

/** The whole section ('' when no mesh scenario ran). */
export function meshSection(input: ReportInput): string {
  if (!input.scenarios.some((s) => s.group === 'mesh' && MESH_SCENARIOS.includes(s.id as (typeof MESH_SCENARIOS)[number]))) return '';
  const evidence = mtlsEvidence(input);
  const p = input.meshProfile;
  const profile = p === undefined ? '' : `
### Where the time goes: the server sidecar with mTLS

A CPU profile of **${p.mode}** (\`node --cpu-prof\`) during one more run of \`${p.load}\` through both hops after the
measured runs (not in the tables above): ${fmt(p.summary.durationS, 1)} s, ${fmt(p.summary.samples, 0)} samples, the
sidecar's thread busy ${fmt(p.summary.busy * 100, 1)} % of the time. Self time only; "native" includes OpenSSL (TLS
record encryption and decryption run inside the socket-write and read bindings of the TLS socket) and the send system
calls.

${profileTables(p.summary)}
`;
  return `## Mesh: two hops, mTLS

Issue 11's rows: a sidecar in the client pod **and** one in the server pod. The mesh rows load a fifth pod of their
own, the *mesh server pod* (nginx on :8080, the same configuration and body as the server pod's), so that the other
rows never see server-side rules. For each mesh mode the real \`remora init\` switches both pods' rules before each
load: the client pod's outbound capture to the mode's client sidecar (\`--outbound-port\`), the mesh server pod's
inbound capture to the mode's server sidecar (\`--inbound-port ... --outbound-cidrs ""\`: every inbound port
captured, no outbound capture, as the app there opens no connections). Both hops are transparent REDIRECTs; the
load generator dials the mesh server pod's own address.

- **direct**: no rules in either pod, no proxy.
- **${MESH_GROUP.plain}**: two remora proxies with the HTTP engine on. The client sidecar has a \`[service bench-mesh]\`
  for the mesh server pod's address:port (endpoint: the same address:port) and sends plaintext; the server pod's
  rules hand it to the server sidecar (no identity, so nothing to terminate), which proxies each request to the app at
  the original destination from 127.0.0.6.
- **${MESH_GROUP.subject}**: the same two proxies plus workload identities (\`identity_dir\`; \`remora ca init\` and
  \`remora ca issue\`, ECDSA P-256 leaf certificates, SPIFFE IDs \`…/ns/bench/sa/client\` and \`…/sa/server\`), the
  service with \`mtls = true\` and \`identities\` = the server's SPIFFE ID (TLS 1.3, ALPN \`remora\`, pooled
  upstream connections), and the server sidecar in \`mtls_mode = strict\` (detects the mesh ALPN, terminates, checks
  the client's certificate and SPIFFE ID, proxies each request in plaintext to the app).
- **${MESH_GROUP.peer}**: HAProxy in both pods, behind the same rules (\`nbthread 1\`, \`mode http\`, keep-alive,
  \`http-reuse always\` so that the TLS hop is pooled as remora's is). Client side: \`server ... ssl crt ... ca-file
  ... verify required alpn http/1.1 ssl-min-ver TLSv1.3\` with the client's certificate and key from the same CA.
  Server side: a TLS-only bind (\`ssl crt ... ca-file ... verify required ssl-min-ver TLSv1.3\`, the server's
  certificate) on the port the inbound rules redirect to, forwarding to the original destination with \`source
  127.0.0.6\` (the same delivery as remora's; without it the rules would send HAProxy's own connection to the pod's
  address back to its inbound port). Differences to remora: HAProxy verifies the chains but matches no SPIFFE ID, and
  resumes TLS sessions on new connections (its default); with the hop pooled, both make a handful of handshakes per
  run (the counters below).

*CPU* is user+system time of each sidecar process during the load (warm-up included) divided by its wall time;
*CPU per 1k rps* is that divided by the achieved rps / 1,000 (cores per 1,000 requests per second; × 1,000 = µs of
CPU per request). At max rps the sidecars are saturated (the two CPUs are shared by load generator, both sidecars
and nginx), so CPU per request there is also shaped by how much each process batches; the fixed-rate row compares
the modes at the same load. Each mesh row is the median of its rounds (every mode back to back per round, the order
alternating), field by field; the ratios below are formed within each round (paired: the same background load) and
their median is reported, with each round's value.

${rowsTable(input)}

${evidence === '' ? '' : `The hop really was mTLS (and really was not), from the sidecars' counters after all runs (transparency checks and
warm-ups included):

${evidence}

`}### Targets

Stated in issue 11; reported, not enforced. The CPU target is judged on the keep-alive row (both hops pooled); the
other ratios are context.

${targetsTable(input)}
${profile}`;
}
