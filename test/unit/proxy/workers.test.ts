// `workers = N`: the pure folding of N workers' reports into one proxy's (src/proxy/workers/merge.ts,
// report-sources.ts), the IPC peer over a fake channel, the RuntimeManager's two-phase apply a worker runs, and the
// `workers` option.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { formatIssue } from '../../../src/config/config-issue.js';
import { hashDefinitions } from '../../../src/config/config-snapshot.js';
import { loadSnapshotDefinitions } from '../../../src/config/load-snapshot.js';
import { resolveOptions } from '../../../src/config/option-set.js';
import { proxyOptionSpecs } from '../../../src/config/proxy-options.js';
import type { GoldenEdgeSample } from '../../../src/telemetry/golden-samples.js';
import { IpcPeer, type IpcChannel } from '../../../src/proxy/workers/ipc-peer.js';
import { mergeExpositions, mergeGolden, mergeJson, mergeReadiness } from '../../../src/proxy/workers/merge.js';
import { prepareDecision } from '../../../src/proxy/workers/prepare-decision.js';
import { mergeReport, type StatsWithWorkers } from '../../../src/proxy/workers/report-sources.js';

/** One endpoint of a worker's /stats services.web (weight 1). */
const ep = (endpoint: string, active: number, healthy: boolean, ejected: boolean, inRotation: boolean, weightFactor: number) =>
  ({ endpoint, weight: 1, active, healthy, ejected, inRotation, weightFactor });

/** A worker's /stats: what differs between workers is given; the config and identity copies are the same in each. */
function workerJson<C, E, P>(uptimeMs: number, connections: C, errors: E, web: { connectFailures: number; ejections: number; endpoints: P[] }) {
  return {
    state: 'ready', uptimeMs, connections, errors,
    config: { version: 4, hash: 'h', reloads: { ok: 3, rejected: 1, unchanged: 0 } },
    identity: { rotations: 2 },
    services: { web: { kind: 'static', ...web } },
  };
}

test('JSON: counters are summed; copies every worker holds (versions, reloads) are not; states fold by their meaning', () => {
  const a = workerJson(1000, { accepted: 3, active: 1, closed: 2 }, { REMORA_ERR_UPSTREAM_CONNECT: 1 }, {
    connectFailures: 1, ejections: 0,
    endpoints: [ep('10.0.0.1:80', 2, true, false, true, 1), ep('10.0.0.2:80', 0, true, false, true, 1)],
  });
  const b = workerJson(900, { accepted: 5, active: 0, closed: 5 }, { REMORA_ERR_UPSTREAM_CONNECT: 2, REMORA_ERR_NOT_REDIRECTED: 1 }, {
    connectFailures: 0, ejections: 1,
    endpoints: [ep('10.0.0.2:80', 1, true, true, false, 0.5), ep('10.0.0.1:80', 1, false, false, false, 1)],
  });
  const m = mergeJson([a, b]);
  assert.deepEqual(m.connections, { accepted: 8, active: 1, closed: 7 });
  assert.deepEqual(m.errors, { REMORA_ERR_UPSTREAM_CONNECT: 3, REMORA_ERR_NOT_REDIRECTED: 1 });
  assert.equal(m.uptimeMs, 1000);
  assert.deepEqual(m.config, { version: 4, hash: 'h', reloads: { ok: 3, rejected: 1, unchanged: 0 } }, 'every worker applied the same reloads');
  assert.deepEqual(m.identity, { rotations: 2 });
  assert.equal(m.state, 'ready');
  assert.equal(m.services.web.connectFailures, 1);
  assert.equal(m.services.web.ejections, 1);
  // Endpoints merged by endpoint, in first-seen order: active summed, weight kept, ejected by any, healthy by all.
  assert.deepEqual(m.services.web.endpoints, [
    { endpoint: '10.0.0.1:80', weight: 1, active: 3, healthy: false, ejected: false, inRotation: true, weightFactor: 1 },
    { endpoint: '10.0.0.2:80', weight: 1, active: 1, healthy: true, ejected: true, inRotation: true, weightFactor: 0.5 },
  ]);
  // A key only some workers have is kept.
  assert.deepEqual(mergeJson([{ x: { a: 1 } }, { x: { b: 2 } }, {}]), { x: { a: 1, b: 2 } });
  assert.deepEqual(mergeJson([{ n: 1 }]), { n: 1 }, 'one worker: itself');
});

/**
 * A worker's exposition as the merge sees it: accepted connections (a counter), the config version 7 (a copy every
 * worker holds), readiness, one histogram, and optionally the ejected-endpoints gauge.
 */
function exposition(o: { outbound: number; inbound?: number; ready: number; le5: number; inf: number; sum: number; count: number; ejected?: number }): string {
  return [
    '# HELP remora_connections_accepted_total Connections accepted',
    '# TYPE remora_connections_accepted_total counter',
    `remora_connections_accepted_total{listener="outbound"} ${o.outbound}`,
    ...(o.inbound === undefined ? [] : [`remora_connections_accepted_total{listener="inbound"} ${o.inbound}`]),
    '# HELP remora_config_version The version',
    '# TYPE remora_config_version gauge',
    'remora_config_version 7',
    '# HELP remora_ready Ready',
    '# TYPE remora_ready gauge',
    `remora_ready ${o.ready}`,
    '# HELP istio_request_duration_milliseconds Duration',
    '# TYPE istio_request_duration_milliseconds histogram',
    `istio_request_duration_milliseconds_bucket{app="a b",le="5"} ${o.le5}`,
    `istio_request_duration_milliseconds_bucket{app="a b",le="+Inf"} ${o.inf}`,
    `istio_request_duration_milliseconds_sum{app="a b"} ${o.sum}`,
    `istio_request_duration_milliseconds_count{app="a b"} ${o.count}`,
    ...(o.ejected === undefined ? [] : ['# HELP remora_endpoints_ejected Ejected now', '# TYPE remora_endpoints_ejected gauge', `remora_endpoints_ejected{service="web"} ${o.ejected}`]),
    '',
  ].join('\n');
}

test('Prometheus: series summed per label set; same-copy families take the maximum, remora_ready the minimum', () => {
  const w1 = exposition({ outbound: 3, inbound: 1, ready: 1, le5: 2, inf: 3, sum: 12.5, count: 3 });
  const w2 = exposition({ outbound: 4, ready: 0, le5: 1, inf: 1, sum: 4, count: 1, ejected: 1 });
  assert.equal(mergeExpositions([w1, w2]), exposition({ outbound: 7, inbound: 1, ready: 0, le5: 3, inf: 4, sum: 16.5, count: 4, ejected: 1 }));
  // Both ready: 1. A worker missing the series: not every worker says 1.
  const ready = (v: number): string => `# HELP remora_ready Ready\n# TYPE remora_ready gauge\nremora_ready ${v}\n`;
  assert.match(mergeExpositions([ready(1), ready(1)]), /^remora_ready 1$/m);
  assert.match(mergeExpositions([ready(1), '']), /^remora_ready 0$/m);
});

test('golden edges: summed per (reporter, source, destination, mTLS)', () => {
  const e = (source: string, requests: [number, number, number, number], latency: number[], tcp = 0): GoldenEdgeSample => ({
    reporter: 'source', source, destination: 'web', mtls: true, requests, latency, tcpOpened: tcp, tcpClosed: tcp, tcpBytes: 10 * tcp,
  });
  const merged = mergeGolden([[e('a', [1, 0, 0, 1], [1, 1]), e('b', [2, 0, 0, 0], [2])], [e('a', [3, 1, 0, 0], [0, 2, 2], 1)]]);
  assert.deepEqual(merged, [e('a', [4, 1, 0, 1], [1, 3, 2], 1), e('b', [2, 0, 0, 0], [2])]);
  const input = [e('a', [1, 0, 0, 0], [1])];
  mergeGolden([input, input]);
  assert.deepEqual(input[0]?.requests, [1, 0, 0, 0], 'the inputs are not changed');
});

test('readiness: ready only when every expected worker answered ready', () => {
  const p = (worker: number, ready: boolean, reason: string) => ({ worker, pid: 0, value: { ready, reason } });
  assert.deepEqual(mergeReadiness([p(1, true, 'ready'), p(2, true, 'ready')], 2), { ready: true, reason: 'ready' });
  assert.deepEqual(mergeReadiness([p(1, true, 'ready')], 2), { ready: false, reason: 'not ready: 1 of 2 workers answered' });
  assert.deepEqual(mergeReadiness([p(1, true, 'ready'), p(2, false, 'starting')], 2), { ready: false, reason: 'starting' });
  assert.deepEqual(mergeReadiness([p(1, false, 'draining'), p(2, true, 'ready')], 2), { ready: false, reason: 'draining' });
  assert.deepEqual(mergeReadiness([p(1, true, 'ready'), p(2, false, 'not ready: loopback-ipv4 redirect probe failed: x')], 2),
    { ready: false, reason: 'not ready: worker 2: loopback-ipv4 redirect probe failed: x' });
});

test('the stats report: the sums plus one line per worker', () => {
  const s = (accepted: number, requests: number, version: number): StatsWithWorkers => ({
    state: 'ready', uptimeMs: 5, connections: { accepted, active: 0, closed: accepted }, bytes: { downstreamToUpstream: 1, upstreamToDownstream: 2 },
    idleTimeouts: 0, errors: {}, errorCauses: {}, sniff: {},
    listeners: { outbound: { address: '[::]:15001', ipv4Only: false, connections: { accepted, active: 0, closed: accepted }, bytes: { downstreamToUpstream: 1, upstreamToDownstream: 2 }, idleTimeouts: 0 } },
    http: { outbound: { 'http.requests': requests }, inbound: {}, pools: {}, routeTableVersion: version },
    config: { version, hash: 'h', source: 'file:x', loadedAt: 't', reloads: { ok: 0, rejected: 0, unchanged: 0 } },
    mtls: { outbound: {}, inbound: {} }, identity: {}, authz: {},
  } as unknown as StatsWithWorkers);
  const m = mergeReport('stats', [{ worker: 1, pid: 11, value: s(3, 9, 2) }, { worker: 2, pid: 12, value: s(4, 1, 2) }]);
  assert.equal(m.connections.accepted, 7);
  assert.deepEqual(m.bytes, { downstreamToUpstream: 2, upstreamToDownstream: 4 });
  assert.equal(m.http?.outbound['http.requests'], 10);
  assert.equal(m.http?.routeTableVersion, 2);
  assert.deepEqual(m.workers?.map((w) => [w.worker, w.pid, w.connections.accepted, w.listeners['outbound']?.accepted, w.requests, w.configVersion]),
    [[1, 11, 3, 3, 9, 2], [2, 12, 4, 4, 1, 2]]);
  const conns = mergeReport('connections', [
    { worker: 1, pid: 11, value: { at: 't', count: 1, connections: [{ id: 1 } as never] } },
    { worker: 2, pid: 12, value: { at: 't', count: 1, connections: [{ id: 1 } as never] } },
  ]);
  assert.equal(conns.count, 2);
  assert.deepEqual(conns.connections.map((c) => [c.id, c.worker]), [[1, 1], [1, 2]], 'ids are per worker: each connection names its worker');
});

/**
 * A channel with Node's semantics: a send after the channel closed (`gone`) fails asynchronously, to the send's
 * callback (without one, Node would emit 'error'); `broken` fails sends that way while the channel is still open
 * (an EPIPE: the other end died and the 'disconnect' is not handled yet).
 */
class FakeChannel extends EventEmitter implements IpcChannel {
  other: FakeChannel | undefined;
  gone = false;
  broken = false;
  send(message: unknown, callback: (err: Error | null) => void): boolean {
    if (this.gone || this.broken) {
      const err = new Error(this.gone ? 'Channel closed' : 'write EPIPE');
      process.nextTick(() => { callback(err); });
      return false;
    }
    const copy = structuredClone(message);
    setImmediate(() => { this.other?.emit('message', copy); callback(null); });
    return true;
  }
}

test('IPC peer: requests get their answer (or the handler\'s error), notes arrive, a closed peer fails what waits', async () => {
  const a = new FakeChannel();
  const b = new FakeChannel();
  a.other = b;
  b.other = a;
  const primary = new IpcPeer(a, 'worker 1');
  const worker = new IpcPeer(b, 'the primary');
  worker.handle('double', (n) => Number(n) * 2);
  worker.handle('later', async (n) => { await new Promise((r) => setImmediate(r)); return `got ${String(n)}`; });
  worker.handle('boom', () => { throw new Error('no'); });
  assert.equal(await primary.request('double', 21, 1000), 42);
  assert.equal(await primary.request('later', 'x', 1000), 'got x');
  await assert.rejects(primary.request('boom', null, 1000), /no/);
  await assert.rejects(primary.request('unknown', null, 1000), /no handler for unknown/);
  const heard = new Promise((resolve) => { worker.onNote('probes', resolve); });
  primary.note('probes', { intervalMs: 5 });
  assert.deepEqual(await heard, { intervalMs: 5 });
  // A request nobody answers: closing the peer (the worker exited) fails it at once.
  b.other = undefined;
  const waiting = primary.request('double', 1, 60_000);
  primary.close('worker 1 exited');
  await assert.rejects(waiting, /worker 1 exited/);
  await assert.rejects(primary.request('double', 1, 1000), /closed/);
  // A request that cannot be sent fails at once.
  const c = new FakeChannel();
  c.gone = true;
  await assert.rejects(new IpcPeer(c, 'worker 3').request('double', 1, 1000), /could not be sent \(Channel closed\)/);
});

test('IPC peer: the other end dies (a worker SIGKILLed): what waits and what is sent fail at once, nothing is thrown or emitted', async () => {
  const a = new FakeChannel();
  const b = new FakeChannel();
  a.other = b;
  b.other = a;
  const errors: unknown[] = [];
  a.on('error', (err) => { errors.push(err); });
  const primary = new IpcPeer(a, 'worker 2');
  new IpcPeer(b, 'the primary').handle('double', (n) => Number(n) * 2);
  assert.equal(await primary.request('double', 2, 1000), 4);
  // The worker is killed: nothing answers any more, and writes fail (EPIPE) before the channel says it closed.
  b.other = undefined;
  a.other = undefined;
  const waiting = primary.request('double', 1, 60_000);
  a.broken = true;
  await assert.rejects(primary.request('double', 1, 60_000), /could not be sent \(write EPIPE\)/, 'a failed write fails its request, not after the timeout');
  primary.note('probes', {});
  // Then Node handles the 'disconnect' (possibly before the worker's 'exit'): the request still waiting fails now,
  // and later ones are not sent at all (Node would answer them with ERR_IPC_CHANNEL_CLOSED).
  a.emit('disconnect');
  await assert.rejects(waiting, /worker 2 closed the channel/);
  await assert.rejects(primary.request('collect', 'stats', 60_000), /closed/);
  primary.note('probes', {});
  primary.close('worker 2 exited');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(errors, [], 'no error event');
});

test('a snapshot\'s definitions survive the structured clone of the IPC channel (same hash)', () => {
  const ini = [
    '[proxy]', 'workers = 2',
    '[service web]', 'addresses = 10.9.0.1:80', 'endpoints = 10.0.0.1:8080, 10.0.0.2:8080', 'balancer = ring-hash',
    '[service web-v2]', 'endpoints = 10.0.0.3:8080',
    '[route split]', 'service = web', 'backends = web=90, web-v2=10', 'match_path_prefix = /api',
    '[traffic-policy web]', 'max_requests = 3', 'outlier_consecutive_5xx = 2',
  ].join('\n');
  const load = loadSnapshotDefinitions({ file: 'x.ini', flags: new Map(), env: {}, readFile: () => Buffer.from(ini) });
  assert.ok(load.ok, load.ok ? '' : load.issues.map((i) => i.expected).join('; '));
  const cloned = structuredClone(load.definitions);
  assert.equal(hashDefinitions(cloned), hashDefinitions(load.definitions));
  assert.equal(load.definitions.proxy.workers, 2);
});

test('workers: 1-64, "auto" or 0 (one per CPU); anything else is a problem naming the key, where it came from and the allowed values', () => {
  const parse = (text: string) => resolveOptions(proxyOptionSpecs, { flags: new Map(), env: { REMORA_WORKERS: text }, section: undefined, file: undefined });
  assert.equal(resolveOptions(proxyOptionSpecs, { flags: new Map(), env: {}, section: undefined, file: undefined }).values.workers, 1, 'default: one process');
  assert.equal(parse('4').values.workers, 4);
  assert.equal(parse('auto').values.workers, 0);
  assert.equal(parse('0').values.workers, 0);
  assert.equal(parse(' 8 ').values.workers, 8, 'surrounding blanks are not part of the value');
  const BAD = ['65', '1000', '-1', '-0', '+2', 'two', 'abc', '1.5', '2.0', '1e1', '0x2', '', ' ', 'auto2', '4 workers', '99999999999999999999'];
  for (const bad of BAD) {
    const r = parse(bad);
    assert.equal(r.issues.length, 1, bad);
    assert.equal(r.issues[0]?.key, 'REMORA_WORKERS');
    assert.equal(r.issues[0]?.source, 'environment');
    assert.match(r.issues[0]?.expected ?? '', /an integer 1-64, or "auto" \(or 0\) for one per CPU/);
  }
  // The flag: --workers, named as such.
  for (const bad of ['-1', 'abc', '1.5', '65']) {
    const r = resolveOptions(proxyOptionSpecs, { flags: new Map([['workers', { value: bad }]]), env: {}, section: undefined, file: undefined });
    assert.deepEqual(r.issues.map(formatIssue), [`command line: --workers = ${JSON.stringify(bad)}: expected an integer 1-64, or "auto" (or 0) for one per CPU`]);
  }
  // The file: file:line, the section and key.
  for (const bad of ['-1', 'abc', '1.5', '65']) {
    const ini = ['[proxy]', 'log_level = info', `workers = ${bad}`].join('\n');
    const load = loadSnapshotDefinitions({ file: '/etc/remora/remora.ini', flags: new Map(), env: {}, readFile: () => Buffer.from(ini) });
    assert.equal(load.ok, false, bad);
    assert.deepEqual(load.ok ? [] : load.issues.map(formatIssue),
      [`/etc/remora/remora.ini:3: [proxy] workers = ${JSON.stringify(bad)}: expected an integer 1-64, or "auto" (or 0) for one per CPU`]);
  }
});

test('a worker\'s two-phase apply: prepare builds without swapping, commit swaps at the primary\'s version, abort drops it; weights are derived, not applied', { timeout: 30_000 }, async (t) => {
  const { startRig } = await import('../../support/proxy-rig.js');
  const ini = (port: number): string => ['[service web]', 'addresses = 10.255.0.30:80', `endpoints = 127.0.0.1:${port}`,
    '[service web-a]', 'endpoints = 127.0.0.1:1', '[service web-b]', 'endpoints = 127.0.0.1:2',
    '[route split]', 'service = web', 'backends = web-a=100, web-b=0'].join('\n');
  const r = await startRig(t, ini(1000), { httpEngine: true });
  const m = r.proxy.runtimes;
  const next = loadSnapshotDefinitions({ file: 'x.ini', flags: new Map(), env: {}, readFile: () => Buffer.from(ini(2000)) });
  assert.ok(next.ok);
  const before = r.proxy.runtime;
  assert.deepEqual(m.prepare(next.definitions, 7, { kind: 'file', path: 'x.ini' }, 'test'), { ok: true });
  assert.equal(r.proxy.runtime, before, 'prepared, not swapped');
  m.abortPrepared();
  assert.deepEqual(m.commitPrepared('test'), { result: 'rejected', issues: ['nothing was prepared'] }, 'an aborted prepare cannot be committed');
  assert.equal(r.proxy.runtime, before);
  assert.deepEqual(m.prepare(next.definitions, 7, { kind: 'file', path: 'x.ini' }, 'test'), { ok: true });
  const outcome = m.commitPrepared('test');
  assert.equal(outcome.result, 'ok');
  assert.equal(r.proxy.runtime.snapshot.version, 7, 'the version the primary chose');
  assert.equal(m.configStats().reloads.ok, 1);
  m.countReload({ result: 'rejected', issues: ['x.ini:3: bad'] });
  m.countReload({ result: 'unchanged', version: 7 });
  assert.deepEqual(m.configStats().reloads, { ok: 1, rejected: 1, unchanged: 1 });
  assert.deepEqual(m.configStats().lastRejected?.issues, ['x.ini:3: bad']);
  // Weights: the definitions with the new weights; the runtime in force is not changed.
  const d = m.deriveWeights('split', 'web-a=20, web-b=80');
  assert.ok(d.ok);
  assert.deepEqual(d.definitions.routes[0]?.backends.map((b) => b.weight), [20, 80]);
  assert.equal(r.proxy.runtime.snapshot.version, 7);
  assert.deepEqual(m.deriveWeights('nope', 'a=1'), { ok: false, status: 404, error: 'no route named "nope"' });
  assert.equal(m.deriveWeights('split', 'web-a=x').ok, false);
});

test('worker restarts: a delay doubling with the recent restarts, and no restart beyond 5 within 60 s', async () => {
  const { restartDecision, MAX_RESTARTS, RESTART_WINDOW_MS } = await import('../../../src/proxy/workers/restart-policy.js');
  const now = 1_000_000;
  assert.deepEqual(restartDecision([], now), { restart: true, delayMs: 100 });
  assert.deepEqual(restartDecision([now - 1000], now), { restart: true, delayMs: 200 });
  assert.deepEqual(restartDecision([now - 4, now - 3, now - 2, now - 1], now), { restart: true, delayMs: 1600 });
  assert.deepEqual(restartDecision([now - 5, now - 4, now - 3, now - 2, now - 1], now), { restart: false, recent: MAX_RESTARTS });
  // Restarts older than the window do not count.
  const old = [now - RESTART_WINDOW_MS - 5, now - RESTART_WINDOW_MS - 4, now - RESTART_WINDOW_MS - 3, now - RESTART_WINDOW_MS - 2, now - RESTART_WINDOW_MS - 1];
  assert.deepEqual(restartDecision(old, now), { restart: true, delayMs: 100 });
  assert.deepEqual(restartDecision([...old, now - 10], now), { restart: true, delayMs: 200 });
});

test('prepareDecision: a refusal drops the config everywhere; a worker without an answer is restarted, the others commit', () => {
  const built = (slot: number) => ({ slot, kind: 'built' as const });
  const refused = (slot: number) => ({ slot, kind: 'refused' as const, error: `worker ${slot}: bad` });
  const silent = (slot: number) => ({ slot, kind: 'silent' as const, error: `worker ${slot}: no answer` });
  assert.deepEqual(prepareDecision([built(1), built(2)]), { commit: true, built: [1, 2], silent: [] });
  assert.deepEqual(prepareDecision([built(1), silent(2)]), { commit: true, built: [1], silent: [silent(2)] });
  assert.deepEqual(prepareDecision([built(1), refused(2)]), { commit: false, errors: ['worker 2: bad'] });
  assert.deepEqual(prepareDecision([refused(1), silent(2)]), { commit: false, errors: ['worker 1: bad', 'worker 2: no answer'] });
  assert.deepEqual(prepareDecision([silent(1), silent(2)]), { commit: false, errors: ['worker 1: no answer', 'worker 2: no answer'] });
  assert.deepEqual(prepareDecision<number>([]), { commit: true, built: [], silent: [] });
});
