import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addedP99, coresPer1k, cpuRatio, meshGoals, meshSection, mtlsEvidence } from '../../../bench/mesh-report.js';
import { parseHaproxyCsv } from '../../../bench/mesh-modes.js';
import type { ReportInput } from '../../../bench/report.js';
import { combineRounds } from '../../../bench/rounds.js';
import type { Cell, Scenario } from '../../../bench/types.js';

const scenario = (id: string, metric: Scenario['metric']): Scenario => ({
  id, title: id, metric, group: 'mesh', describe: () => id, run: () => Promise.reject(new Error('not run')),
});

function input(cells: Cell[], counters: Record<string, Record<string, number>> = {}): ReportInput {
  return {
    machine: { date: 'd', nproc: '2', cpuModel: 'cpu', kernel: 'k', os: 'os', node: 'v20', remoraCommit: 'abc', tools: {} },
    scenarios: [scenario('mesh-keepalive', 'rps'), scenario('mesh-conn-per-request', 'rps'), scenario('mesh-latency-1k', 'latency')],
    loads: {},
    modes: ['direct', 'mesh-plain', 'mesh-mtls', 'haproxy-tls'].map((mode) => ({ mode, title: mode, notes: [], ...(counters[mode] === undefined ? {} : { counters: counters[mode] }) })),
    cells, durationS: 6, warmupS: 1, elapsedS: 60, loadBefore: '0 0 0', loadAfter: '0 0 0', fixedRateTool: 'h2load',
    baseline: 'direct', peer: 'haproxy-l4', subject: 'remora',
  };
}

const rps = (scenarioId: string, mode: string, r: number, client: number, server: number): Cell => ({
  scenario: scenarioId, mode, measurement: { rps: r, errors: 0 }, proxyCores: client + server, coresByRole: { client, server },
});
const lat = (mode: string, p99Ms: number): Cell => ({ scenario: 'mesh-latency-1k', mode, measurement: { rps: 1000, p50Ms: 0.5, p99Ms, errors: 0 } });

test('CPU per 1k rps per role and both; mTLS / plaintext ratio', () => {
  const plain = rps('mesh-keepalive', 'mesh-plain', 5000, 0.5, 0.5);
  assert.equal(coresPer1k(plain), 0.2);
  assert.equal(coresPer1k(plain, 'client'), 0.1);
  assert.equal(coresPer1k({ scenario: 'x', mode: 'direct', measurement: { rps: 100, errors: 0 } }), undefined);
  const i = input([plain, rps('mesh-keepalive', 'mesh-mtls', 4000, 0.44, 0.44)]);
  const r = cpuRatio(i, 'mesh-keepalive');
  assert.ok(r !== undefined);
  assert.equal(r.ratio.toFixed(3), '1.100');
  assert.equal(cpuRatio(i, 'mesh-keepalive', 'server')?.ratio.toFixed(3), '1.100');
  assert.equal(cpuRatio(i, 'mesh-latency-1k'), undefined);
});

test('targets: met at exactly 1.10x and 2x, not met above; HAProxy adding nothing leaves only <= 0 as met', () => {
  const base = [rps('mesh-keepalive', 'mesh-plain', 5000, 0.5, 0.5), rps('mesh-keepalive', 'mesh-mtls', 4000, 0.44, 0.44)];
  const met = meshGoals(input([...base, lat('direct', 1), lat('mesh-mtls', 2), lat('haproxy-tls', 1.5)]));
  assert.deepEqual(met.map((g) => g.met), [true, true]);
  assert.match(met[1]?.measured ?? '', /^2\.00× \(\+1\.000 ms vs \+0\.500 ms\)$/);
  const missed = meshGoals(input([rps('mesh-keepalive', 'mesh-plain', 5000, 0.5, 0.5), rps('mesh-keepalive', 'mesh-mtls', 4000, 0.5, 0.5),
    lat('direct', 1), lat('mesh-mtls', 3), lat('haproxy-tls', 1.5)]));
  assert.deepEqual(missed.map((g) => g.met), [false, false]);
  const zeroPeer = input([lat('direct', 1), lat('mesh-mtls', 1.2), lat('haproxy-tls', 0.9)]);
  assert.equal(addedP99(zeroPeer)?.ratio, undefined);
  assert.deepEqual(meshGoals(zeroPeer).map((g) => g.met), [undefined, false]);
});

test('no mesh scenario: no goals, no section', () => {
  const i = { ...input([]), scenarios: [] };
  assert.deepEqual(meshGoals(i), []);
  assert.equal(meshSection(i), '');
});

test('the evidence line names handshakes, detections and pooling; the section renders the rows', () => {
  const i = input([rps('mesh-keepalive', 'mesh-mtls', 4000, 0.4, 0.4)], {
    'mesh-mtls': { 'server.mtls.inbound.handshakes': 66, 'server.sniff.mtls': 66, 'server.http.inbound.http.requests': 1000, 'client.mtls.outbound.handshakes': 66 },
    'haproxy-tls': { 'server.inbound.FRONTEND.conn_tot': 64, 'server.inbound.FRONTEND.req_tot': 900 },
  });
  const e = mtlsEvidence(i);
  assert.match(e, /\*\*mesh-mtls\*\*: server sidecar `mtls\.inbound\.handshakes` 66, `sniff\.mtls` 66, inbound HTTP requests 1,000/);
  assert.match(e, /\*\*haproxy-tls\*\*: server side .* accepted 64 connections and served 900 requests/);
  const s = meshSection(i);
  assert.match(s, /^## Mesh: two hops, mTLS/);
  assert.match(s, /\| mesh-keepalive \| mesh-mtls \| 4,000 rps \|/);
});

test('HAProxy CSV stats: numeric columns by proxy and server name', () => {
  const csv = '# pxname,svname,qcur,scur,stot,req_tot,connect,reuse,status\n'
    + 'inbound,FRONTEND,,3,70,1200,,,OPEN\nmesh,s1,0,2,64,,64,1136,UP\n';
  const c = parseHaproxyCsv(csv);
  assert.equal(c['inbound.FRONTEND.req_tot'], 1200);
  assert.equal(c['mesh.s1.reuse'], 1136);
  assert.equal(c['mesh.s1.status'], undefined);
  assert.equal(c['inbound.FRONTEND.qcur'], undefined);
});

test('rounds: a cell is the median of its rounds; ratios are paired round by round', () => {
  const round = (mode: string, r: number, c: number): Cell => rps('mesh-keepalive', mode, r, c / 2, c / 2);
  const mtls = combineRounds([round('mesh-mtls', 4000, 0.88), round('mesh-mtls', 2000, 0.6), round('mesh-mtls', 4400, 0.88)]);
  const plain = combineRounds([round('mesh-plain', 5000, 1), round('mesh-plain', 2000, 0.5), round('mesh-plain', 5000, 1)]);
  assert.equal(mtls.measurement?.rps, 4000);
  assert.equal(mtls.coresByRole?.['client'], 0.44);
  assert.equal(mtls.rounds?.length, 3);
  assert.match(mtls.measurement?.note ?? '', /^median of 3 rounds/);
  const r = cpuRatio(input([mtls, plain]), 'mesh-keepalive');
  assert.deepEqual(r?.perRound.map((x) => x.toFixed(2)), ['1.10', '1.20', '1.00']);
  assert.equal(r?.ratio.toFixed(2), '1.10');
  const failed = combineRounds([{ scenario: 's', mode: 'm', failure: 'boom' }, { scenario: 's', mode: 'm', failure: 'again' }]);
  assert.equal(failed.measurement, undefined);
  assert.match(failed.failure ?? '', /every round failed; first: boom/);
});
