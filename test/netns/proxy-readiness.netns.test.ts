// Readiness that proves interception, on a real kernel: with remora init's rules in place, /ready answers 200 once the
// redirect probes passed (the proxy's own connection to 127.0.0.6 / ::6 lands on its inbound listener; a helper
// process running as uid 65534 reaches the outbound listener through the app's path). Flushing the nat table makes
// /ready answer 503 with the failed probes in the body; running remora init again makes it ready again. An IPv6-only
// flush is named as such. `remora wait-ready` returns when the sidecar is ready and times out with REMORA_ERR_NOT_READY
// and the last answer of /ready.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { initOk, logRecords, waitForLog } from './proxy-helpers.js';
import { outputLines, REMORA_BIN, startProxy, type RunningProxy } from './remora-process.js';

const opts = netnsTestOptions();

interface ProbeJson { readonly state: string; readonly detail: string; readonly passed: number; readonly failed: number }
interface ReadinessStats { readonly ready: boolean; readonly reason: string; readonly probeIntervalMs: number; readonly probes: Record<string, ProbeJson> }

async function readinessOf(proxy: RunningProxy): Promise<ReadinessStats> {
  return (await proxy.stats())['readiness'] as ReadinessStats;
}

async function readyAnswer(
  proxy: RunningProxy, what: string, ok: (r: { status: number; body: string }) => boolean, timeoutMs = 20_000,
): Promise<{ status: number; body: string }> {
  return waitFor(what, async () => {
    const r = await proxy.admin('/ready');
    return ok(r) ? r : undefined;
  }, { timeoutMs, intervalMs: 200 });
}

describe('readiness proves interception', opts, () => {
  let mesh: Mesh;
  let pod: Pod;
  let proxy: RunningProxy;

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create();
    pod = await mesh.addPod('app');
    // A pod has a default route; the outbound probe's target (TEST-NET 192.0.2.1) needs one to leave the socket layer,
    // although the rules redirect it before any packet goes out.
    await pod.execOk(['ip', 'route', 'add', 'default', 'dev', 'eth0']);
    await initOk(pod);
  });
  after(async () => { await mesh?.destroy(); });

  test('iptables flushed → not ready within 10 s with the default interval (the reason in the body), and ready again when the rules come back', opts, async (t) => {
    // The default readiness_probe_interval: nothing is set (not even the harness's "off").
    proxy = await startProxy(pod, [], { probes: 'default' });
    t.after(async () => { await proxy.stop(); });
    assert.deepEqual(await proxy.admin('/ready'), { status: 200, body: 'ready' });
    const first = await readinessOf(proxy);
    assert.equal(first.ready, true);
    assert.ok(first.probeIntervalMs > 0 && first.probeIntervalMs <= 5000, `default interval ≤ 5 s: ${first.probeIntervalMs}`);
    assert.deepEqual(Object.keys(first.probes).sort(), ['loopback-ipv4', 'loopback-ipv6', 'outbound']);
    for (const [name, p] of Object.entries(first.probes)) assert.equal(p.state, 'ok', `${name}: ${p.detail}`);
    assert.match(first.probes['outbound']?.detail ?? '', /192\.0\.2\.1:15099 was redirected to the outbound listener :15001/);
    assert.match(first.probes['loopback-ipv4']?.detail ?? '', /127\.0\.0\.6:15099 was redirected to the inbound listener :15006/);
    // Probe connections are answered by the prober: they are not traffic.
    assert.equal((await proxy.stats()).connections.accepted, 0);

    // The pod's own namespace (pod.execOk runs inside it): the host's tables are never touched.
    await pod.execOk(['iptables', '-t', 'nat', '-F']);
    const flushedAt = Date.now();
    // The requirement is the bound: /ready must answer 503 within 10 s of the flush (else this wait throws).
    const first503 = await readyAnswer(proxy, '/ready to fail within 10 s of the IPv4 flush', (r) => r.status === 503, 10_000);
    t.diagnostic(`not ready ${((Date.now() - flushedAt) / 1000).toFixed(1)} s after the flush (interval ${first.probeIntervalMs} ms)`);
    assert.match(first503.body, /^not ready: .*redirect probe failed: /);
    // Both IPv4 probes fail (the IPv4 nat table is empty); the loopback one at once, the outbound one at its timeout.
    const down = await readyAnswer(proxy, 'both IPv4 probes to have failed',
      (r) => r.status === 503 && r.body.includes('loopback-ipv4 redirect') && r.body.includes('outbound redirect'));
    assert.match(down.body, /loopback-ipv4 redirect probe failed: connect to 127\.0\.0\.6:15099: ECONNREFUSED: not redirected to the inbound listener :15006/);
    assert.match(down.body, /outbound redirect probe failed: connect as uid 65534 to 192\.0\.2\.1:15099: \w+: not redirected to the outbound listener :15001/);
    assert.doesNotMatch(down.body, /loopback-ipv6/, 'the IPv6 rules are still there');
    const [changed] = await waitForLog(proxy, 'readiness.changed with both failures', (r) => r['event'] === 'readiness.changed' && r['ready'] === false && r['reason'] === down.body);
    assert.equal(changed?.['ready'], false);
    assert.equal(changed?.['level'], 'warn');
    // The same state in the Prometheus exposition.
    const metrics = (await proxy.admin('/stats/prometheus')).body;
    assert.match(metrics, /^remora_ready 0$/m);
    assert.match(metrics, /^remora_redirect_probe_up\{probe="loopback-ipv4"\} 0$/m);
    assert.match(metrics, /^remora_redirect_probe_up\{probe="loopback-ipv6"\} 1$/m);
    assert.match(metrics, /^remora_redirect_probes_total\{probe="loopback-ipv4",result="failed"\} [1-9]\d*$/m);

    await initOk(pod);
    await readyAnswer(proxy, '/ready to be 200 again', (r) => r.status === 200 && r.body === 'ready');
    assert.match((await proxy.admin('/stats/prometheus')).body, /^remora_ready 1$/m);
    assert.ok(logRecords(proxy).some((r) => r['event'] === 'readiness.changed' && r['ready'] === true && r['reason'] === 'ready'));

    // IPv6 only: the IPv6 loopback probe names it.
    await pod.execOk(['ip6tables', '-t', 'nat', '-F']);
    const v6 = await readyAnswer(proxy, '/ready to fail after the IPv6 flush', (r) => r.status === 503);
    assert.match(v6.body, /^not ready: loopback-ipv6 redirect probe failed: connect to \[::6\]:15099: ECONNREFUSED/);
    await initOk(pod);
    await readyAnswer(proxy, '/ready to be 200 again after the IPv6 rules are back', (r) => r.status === 200);
    const after = await readinessOf(proxy);
    assert.ok((after.probes['loopback-ipv4']?.failed ?? 0) >= 1);
    assert.ok((after.probes['loopback-ipv6']?.failed ?? 0) >= 1);
    assert.equal(await proxy.stop(), 0);
  });

  test('`remora wait-ready` returns when ready and times out with a clear message/exit code otherwise', opts, async (t) => {
    // Started before the proxy: it waits (nothing answers yet), and returns once the proxy is ready.
    const waiter = pod.spawn([process.execPath, REMORA_BIN, 'wait-ready', '--timeout', '60s']);
    const lines = outputLines(waiter);
    const waited = new Promise<number | null>((resolve) => { waiter.once('exit', (code) => { resolve(code); }); });
    await waitFor('wait-ready to be polling', async () => (waiter.exitCode === null ? true : undefined), { timeoutMs: 5_000 });
    const running = await startProxy(pod, ['--readiness-probe-interval', '1s']);
    t.after(async () => { await running.stop(); });
    assert.equal(await waited, 0, lines.join('\n'));
    assert.match(lines.join('\n'), /remora wait-ready: 127\.0\.0\.1:15000 is ready/);

    // Not ready: the rules are gone. The message names the code, the timeout and /ready's reason; exit code 1.
    await pod.execOk(['iptables', '-t', 'nat', '-F']);
    await readyAnswer(running, '/ready to fail', (r) => r.status === 503);
    const timedOut = await pod.exec([process.execPath, REMORA_BIN, 'wait-ready', '--timeout', '1s'], { timeoutMs: 20_000 });
    assert.equal(timedOut.code, 1, timedOut.stderr);
    assert.match(timedOut.stderr,
      /^remora wait-ready: REMORA_ERR_NOT_READY: the sidecar at 127\.0\.0\.1:15000 was not ready within 1s; last answer of GET \/ready: 503 not ready: loopback-ipv4 redirect probe failed: /);
    await initOk(pod);
    assert.equal(await running.stop(), 0);

    // Nothing listening: the message says so.
    const none = await pod.exec([process.execPath, REMORA_BIN, 'wait-ready', '--timeout', '500ms'], { timeoutMs: 20_000 });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /last answer of GET \/ready: no answer: ECONNREFUSED \(nothing listens there/);
    // A bad flag: usage error, exit code 2.
    const bad = await pod.exec([process.execPath, REMORA_BIN, 'wait-ready', '--timeout', 'soon']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--timeout = "soon": expected a duration/);
  });
});
