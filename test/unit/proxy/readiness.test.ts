// Readiness: the decision and its reason from the lifecycle state and the probes; the routing-table readers the
// outbound probe uses; and the prober itself on loopback, with a stand-in for the rules: a listener on 127.0.0.6:15099
// that hands its connections to claim() as the inbound capture listener would after a REDIRECT.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { silentLogger } from '../../../src/core/log.js';
import { proxyOptionSpecs } from '../../../src/config/proxy-options.js';
import {
  evaluateReadiness, hasIpv4Route, hasIpv6Route, readinessJson, type ProbeName, type ProbeStatus,
} from '../../../src/proxy/readiness.js';
import { LOOPBACK_PROBE_PORT, PROBE_TIMEOUT_MS, RedirectProber, type OutboundDialer } from '../../../src/proxy/redirect-prober.js';

const st = (state: ProbeStatus['state'], detail = ''): ProbeStatus => ({ state, detail, passed: 0, failed: 0 });

test('readiness: starting, draining, probes off, pending, failed (all failures named), ok; unavailable probes do not count', () => {
  const probes = (entries: [ProbeName, ProbeStatus][]): Map<ProbeName, ProbeStatus> => new Map(entries);
  assert.deepEqual(evaluateReadiness({ lifecycle: 'starting', probing: true, probes: probes([]) }), { ready: false, reason: 'starting' });
  assert.deepEqual(evaluateReadiness({ lifecycle: 'draining', probing: true, probes: probes([['loopback-ipv4', st('ok')]]) }), { ready: false, reason: 'draining' });
  assert.deepEqual(evaluateReadiness({ lifecycle: 'stopped', probing: false, probes: probes([]) }), { ready: false, reason: 'draining' });
  assert.deepEqual(evaluateReadiness({ lifecycle: 'ready', probing: false, probes: probes([['loopback-ipv4', st('failed', 'x')]]) }), { ready: true, reason: 'ready' });
  assert.deepEqual(evaluateReadiness({ lifecycle: 'ready', probing: true, probes: probes([['loopback-ipv4', st('pending')]]) }),
    { ready: false, reason: 'not ready: waiting for the first redirect probe' });
  assert.deepEqual(evaluateReadiness({
    lifecycle: 'ready', probing: true,
    probes: probes([['outbound', st('failed', 'connect ETIMEDOUT')], ['loopback-ipv4', st('failed', 'ECONNREFUSED')], ['loopback-ipv6', st('ok')]]),
  }), { ready: false, reason: 'not ready: loopback-ipv4 redirect probe failed: ECONNREFUSED; outbound redirect probe failed: connect ETIMEDOUT' });
  assert.deepEqual(evaluateReadiness({
    lifecycle: 'ready', probing: true, probes: probes([['loopback-ipv4', st('ok')], ['outbound', st('unavailable', 'not root')]]),
  }), { ready: true, reason: 'ready' });
  const json = readinessJson({ ready: true, reason: 'ready' }, 0, 5000, probes([['loopback-ipv4', { state: 'ok', detail: 'd', at: 1000, passed: 3, failed: 1 }]]));
  assert.deepEqual(json, {
    ready: true, reason: 'ready', since: '1970-01-01T00:00:00.000Z', probeIntervalMs: 5000,
    probes: { 'loopback-ipv4': { state: 'ok', detail: 'd', lastAt: '1970-01-01T00:00:01.000Z', passed: 3, failed: 1 } },
  });
});

test('the defaults detect flushed rules within 10 s: an interval of at most 5 s, a probe timeout of 3 s', () => {
  assert.ok(proxyOptionSpecs.readinessProbeInterval.defaultValue <= 5_000);
  assert.ok(proxyOptionSpecs.readinessProbeInterval.defaultValue + PROBE_TIMEOUT_MS < 10_000);
  assert.deepEqual(proxyOptionSpecs.readinessProbeInterval.parse('off'), { ok: true, value: 0 });
  assert.deepEqual(proxyOptionSpecs.readinessProbeInterval.parse('2s'), { ok: true, value: 2000 });
  assert.equal(proxyOptionSpecs.readinessProbeInterval.parse('10ms').ok, false);
  assert.deepEqual(proxyOptionSpecs.readinessProbeTarget.parse(''), { ok: true, value: undefined });
  assert.deepEqual(proxyOptionSpecs.readinessProbeTarget.parse('[2001:db8::1]:9'), { ok: true, value: { host: '2001:db8::1', port: 9 } });
  assert.equal(proxyOptionSpecs.readinessProbeTarget.parse('example.com:80').ok, false, 'a name is refused: nothing is resolved');
});

test('routing tables: /proc/net/route and /proc/net/ipv6_route, with and without a default route', () => {
  const header = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';
  // 10.213.7.0/24 on eth0 (little-endian hex), no default route.
  const noDefault = `${header}eth0\t0007D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n`;
  assert.equal(hasIpv4Route(noDefault, '10.213.7.99'), true);
  assert.equal(hasIpv4Route(noDefault, '192.0.2.1'), false);
  const withDefault = `${noDefault}eth0\t00000000\t0107D50A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n`;
  assert.equal(hasIpv4Route(withDefault, '192.0.2.1'), true);
  const down = `${header}eth0\t00000000\t0107D50A\t0002\t0\t0\t0\t00000000\t0\t0\t0\n`;
  assert.equal(hasIpv4Route(down, '192.0.2.1'), false, 'a route that is not up does not count');
  const v6 = [
    'fd5200d5000700000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0',
    '00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo',
  ].join('\n');
  assert.equal(hasIpv6Route(v6, 'fd52:d5:7::9'), true);
  assert.equal(hasIpv6Route(v6, '2001:db8::1'), false, 'the unreachable default (RTF_REJECT) is no route');
  const v6default = `${v6}\n00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0`;
  assert.equal(hasIpv6Route(v6default, '2001:db8::1'), true);
});

/** A stand-in for the rules and the inbound listener: 127.0.0.6:15099, whose connections go to claim() or `other`. */
async function fakeInbound(t: TestContext, onConnection: (s: Socket) => void): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    onConnection(s);
  });
  server.listen(LOOPBACK_PROBE_PORT, '127.0.0.6');
  await once(server, 'listening');
  t.after(() => { server.close(); });
  return server;
}

function prober(helper: OutboundDialer | { unavailable: string }, target = { host: '192.0.2.1', port: 15099 }): { p: RedirectProber; rounds: () => number } {
  let n = 0;
  const p = new RedirectProber({
    log: silentLogger(), settings: () => ({ intervalMs: 60_000, target }), inboundPort: 15006, outboundPort: 15001,
    helper, inboundIpv6: false, onRound: () => { n++; },
  });
  return { p, rounds: () => n };
}

async function firstRound(rounds: () => number): Promise<void> {
  for (let i = 0; i < 200 && rounds() === 0; i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(rounds() > 0, 'a round ended');
}

test('prober: a connection that reaches the listener with this round\'s nonce passes; the outbound helper\'s too', async (t) => {
  let claimed = 0;
  const { p, rounds } = prober({
    uid: 65534, exited: undefined,
    // The helper stand-in: its connection "arrives on the outbound listener" with the target as original destination.
    dial: (host, port, nonce, timeoutMs) => new Promise((resolve) => {
      const server = createServer((s) => {
        s.on('error', () => {});
        assert.equal(p.claim('outbound', s, { family: 4, address: host, port }), true);
      });
      server.listen(0, '127.0.0.1', () => {
        const addr = server.address();
        const c = connect({ port: typeof addr === 'object' && addr !== null ? addr.port : 0, host: '127.0.0.1' });
        let reply = '';
        c.setEncoding('latin1');
        c.on('connect', () => { c.write(`REMORA-PROBE ${nonce}\n`); });
        c.on('data', (d: string) => { reply += d; });
        c.on('close', () => { server.close(); resolve({ reply: reply.split('\n')[0] ?? '' }); });
        c.on('error', () => {});
        setTimeout(() => { c.destroy(); }, timeoutMs).unref();
      });
    }),
  });
  t.after(() => { p.stop(); });
  await fakeInbound(t, (s) => {
    claimed++;
    assert.equal(p.claim('inbound', s, { family: 4, address: '127.0.0.6', port: LOOPBACK_PROBE_PORT }), true);
  });
  p.start();
  assert.equal(p.status().get('loopback-ipv4')?.state, 'pending');
  await firstRound(rounds);
  assert.equal(claimed, 1);
  assert.deepEqual(p.status().get('loopback-ipv4'), {
    state: 'ok', detail: '127.0.0.6:15099 was redirected to the inbound listener :15006', at: p.status().get('loopback-ipv4')?.at, passed: 1, failed: 0,
  });
  assert.equal(p.status().get('outbound')?.state, 'ok');
  assert.equal(p.status().get('outbound')?.detail, '192.0.2.1:15099 was redirected to the outbound listener :15001');
  // Any other original destination is not a probe: the listener forwards it as traffic.
  const fake = connect({ port: 1, host: '127.0.0.1' });
  fake.on('error', () => {});
  assert.equal(p.claim('inbound', fake, { family: 4, address: '10.0.0.1', port: LOOPBACK_PROBE_PORT }), false);
  assert.equal(p.claim('inbound', fake, { family: 4, address: '127.0.0.6', port: 8080 }), false);
  assert.equal(p.claim('outbound', fake, { family: 4, address: '192.0.2.2', port: 15099 }), false);
  fake.destroy();
});

test('prober: something else answering at the probe address fails with the reason; no helper is unavailable', async (t) => {
  const { p, rounds } = prober({ unavailable: 'the proxy was started as uid 1337, not root' });
  t.after(() => { p.stop(); });
  // Not redirected: whatever listens at 127.0.0.6:15099 answers itself (it is not this proxy's listener).
  await fakeInbound(t, (s) => { s.end('REMORA-PROBE-OK 00000000000000000000000000000000\n'); });
  p.start();
  await firstRound(rounds);
  assert.equal(p.status().get('loopback-ipv4')?.state, 'failed');
  assert.equal(p.status().get('loopback-ipv4')?.detail, "127.0.0.6:15099 answered, but not through this proxy's inbound listener :15006");
  assert.deepEqual(p.status().get('outbound'), { state: 'unavailable', detail: 'the proxy was started as uid 1337, not root', at: undefined, passed: 0, failed: 0 });
  assert.deepEqual(evaluateReadiness({ lifecycle: 'ready', probing: true, probes: p.status() }), {
    ready: false, reason: "not ready: loopback-ipv4 redirect probe failed: 127.0.0.6:15099 answered, but not through this proxy's inbound listener :15006",
  });
});

test('prober: a stale or foreign nonce is not answered', async (t) => {
  const { p, rounds } = prober({ unavailable: 'none' });
  t.after(() => { p.stop(); });
  let claimed: boolean | undefined;
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    claimed = p.claim('inbound', s, { family: 4, address: '127.0.0.6', port: LOOPBACK_PROBE_PORT });
    if (!claimed) s.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => { server.close(); });
  p.start();
  await firstRound(rounds); // after the first round 15099 is a probe port
  const addr = server.address();
  const c = connect({ port: typeof addr === 'object' && addr !== null ? addr.port : 0, host: '127.0.0.1' });
  c.on('error', () => {});
  let got = '';
  c.setEncoding('latin1').on('data', (d: string) => { got += d; });
  await once(c, 'connect');
  c.write(`REMORA-PROBE ${'ab'.repeat(16)}\n`);
  await once(c, 'close');
  assert.equal(claimed, true, 'the connection was taken as a probe connection');
  assert.equal(got, '', 'no answer to a nonce this prober did not issue');
});

test('prober: nothing at the probe address fails with the connect error; when the redirect comes back the next round passes', async (t) => {
  let n = 0;
  const p = new RedirectProber({
    log: silentLogger(), settings: () => ({ intervalMs: 20, target: undefined }), inboundPort: 15006, outboundPort: 15001,
    helper: { unavailable: 'none' }, inboundIpv6: false, onRound: () => { n++; },
  });
  t.after(() => { p.stop(); });
  p.start();
  await firstRound(() => n);
  assert.equal(p.status().has('outbound'), false, 'no target: no outbound probe');
  const down = p.status().get('loopback-ipv4');
  assert.equal(down?.state, 'failed');
  assert.equal(down?.detail, 'connect to 127.0.0.6:15099: ECONNREFUSED: not redirected to the inbound listener :15006');
  assert.equal(evaluateReadiness({ lifecycle: 'ready', probing: true, probes: p.status() }).ready, false);
  // "The rules are back": the stand-in hands the connections to the prober again.
  await fakeInbound(t, (s) => { assert.equal(p.claim('inbound', s, { family: 4, address: '127.0.0.6', port: LOOPBACK_PROBE_PORT }), true); });
  for (let i = 0; i < 400 && p.status().get('loopback-ipv4')?.state !== 'ok'; i++) await new Promise((r) => setTimeout(r, 10));
  const up = p.status().get('loopback-ipv4');
  assert.equal(up?.state, 'ok');
  assert.ok((up?.failed ?? 0) >= 1 && (up?.passed ?? 0) >= 1, JSON.stringify(up));
  assert.deepEqual(evaluateReadiness({ lifecycle: 'ready', probing: true, probes: p.status() }), { ready: true, reason: 'ready' });
  // Stopped (the drain): no more rounds, and the probe port is no longer claimed.
  p.stop();
  const fake = connect({ port: 1, host: '127.0.0.1' });
  fake.on('error', () => {});
  assert.equal(p.claim('inbound', fake, { family: 4, address: '127.0.0.6', port: LOOPBACK_PROBE_PORT }), false);
  fake.destroy();
});

test('prober: a failed probe turns readiness false at once, without waiting for a slower probe of the same round', async (t) => {
  let release: (() => void) | undefined;
  let n = 0;
  const p = new RedirectProber({
    log: silentLogger(), settings: () => ({ intervalMs: 60_000, target: { host: '192.0.2.1', port: 15099 } }),
    inboundPort: 15006, outboundPort: 15001, inboundIpv6: false, onRound: () => { n++; },
    // The outbound helper stand-in answers only when the test lets it (a probe waiting for its timeout).
    helper: { uid: 65534, exited: undefined, dial: () => new Promise((resolve) => { release = () => { resolve({ reply: '', error: 'ETIMEDOUT' }); }; }) },
  });
  t.after(() => { release?.(); p.stop(); });
  p.start(); // nothing at 127.0.0.6:15099: the loopback probe is refused at once
  await firstRound(() => n);
  assert.equal(p.status().get('loopback-ipv4')?.state, 'failed');
  assert.equal(p.status().get('outbound')?.state, 'pending', 'the slow probe of the same round has not ended');
  assert.equal(evaluateReadiness({ lifecycle: 'ready', probing: true, probes: p.status() }).ready, false);
  const before = n;
  release?.();
  for (let i = 0; i < 200 && n === before; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(p.status().get('outbound')?.state, 'failed');
  assert.equal(p.status().get('outbound')?.detail, 'connect as uid 65534 to 192.0.2.1:15099: ETIMEDOUT: not redirected to the outbound listener :15001');
});
