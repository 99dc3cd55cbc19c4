// The native accept's terminal stage (src/l4/native-connection.ts) without sockets: a NativeAccepted on a recording
// port stands for the forwarding thread, a real Cluster for the service. Checked: the connect requests it makes
// (endpoint, timeouts, detection), retries on other endpoints with the cluster's health and load counters, the
// outcome handed to `done` (code, error, endpoint, attempts, protocol), detection's labels by DetectStage's rules, the
// authorization refusal, the drain's abort, and what /debug/connections shows.
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { test } from 'node:test';
import { defaultTrafficPolicy } from '../../../src/config/traffic-policy-config.js';
import { silentLogger } from '../../../src/core/log.js';
import { ListenerCounters } from '../../../src/core/stats.js';
import type { Declared, Destination } from '../../../src/l4/accept-route.js';
import type { ConnectionContext, ConnectionOutcome, ForwardingWatcher, ListenerRuntime } from '../../../src/l4/connection-context.js';
import { ConnectionTracker } from '../../../src/l4/connection-pipeline.js';
import { NativeAccepted, NativeDetectEvent, type NativeAcceptPort, type NativeConnectRequest } from '../../../src/l4/native-accepted.js';
import { NativeConnection } from '../../../src/l4/native-connection.js';
import { Cluster } from '../../../src/upstream/cluster.js';
import { FakeTime, seededRandom, serviceSpec, specs } from '../upstream/helpers.js';

const { ECONNREFUSED, ETIMEDOUT } = constants.errno;
const END_CLEAN = 0;
const END_ABORTED = 4;

/** The forwarding thread as the connection sees it: requests recorded, state reported as told. */
class FakeThread implements NativeAcceptPort {
  readonly connects: NativeConnectRequest[] = [];
  readonly aborts: number[] = [];
  readonly watchDones: number[] = [];
  /** ConnState the thread reports (0 forwarding, 1 accepted, 2 connecting). */
  state = 1;
  connectResult = 0;
  abort(id: number): void { this.aborts.push(id); }
  read(_id: number, out: Float64Array): boolean {
    out.fill(0);
    if (out.length >= 5) out[4] = this.state;
    return true;
  }
  connect(_id: number, r: NativeConnectRequest): number {
    this.connects.push(r);
    return this.connectResult;
  }
  release(): number { return -9; }
  watchDone(id: number): void { this.watchDones.push(id); }
}

interface Setup {
  readonly thread: FakeThread;
  readonly native: NativeAccepted;
  readonly conn: NativeConnection;
  readonly outcomes: ConnectionOutcome[];
  readonly sniffs: string[];
  readonly tracker: ConnectionTracker;
  readonly cluster: Cluster;
}

function service(n = 3): Cluster {
  const svc = serviceSpec({ endpoints: specs(Array.from({ length: n }, () => 1)) });
  const time = new FakeTime();
  return new Cluster({ name: svc.name, service: svc, policy: defaultTrafficPolicy(svc.name, svc.passiveHealth), connectTimeoutMs: 2_000, inboundSource: false },
    { log: silentLogger(), clock: time, timers: time, random: seededRandom(1) });
}

function passthrough(): Cluster {
  const time = new FakeTime();
  return new Cluster({ name: 'passthrough', service: undefined, policy: defaultTrafficPolicy('passthrough'), connectTimeoutMs: 1_000, inboundSource: false },
    { log: silentLogger(), clock: time, timers: time, random: seededRandom(1) });
}

function setup(o: { cluster?: Cluster; declared?: Declared; authorize?: boolean; detectTimeoutMs?: number; watch?: ForwardingWatcher } = {}): Setup {
  const thread = new FakeThread();
  const native = new NativeAccepted(7, thread);
  const cluster = o.cluster ?? service();
  const dest: Extract<Destination, { kind: 'cluster' }> = {
    kind: 'cluster', cluster, target: cluster.originalDst ? { address: '10.0.0.9', port: 80 } : undefined,
  };
  const runtime = {
    detectTimeoutMs: o.detectTimeoutMs ?? 5_000,
    idleTimeoutMs: 60_000,
    authorize: o.authorize === undefined ? undefined : () => o.authorize === true,
  } as unknown as ListenerRuntime;
  const ctx: ConnectionContext = {
    id: 1, direction: 'outbound', socket: undefined, native, originalDst: { family: 4, address: '10.96.0.1', port: 80 },
    peerAddress: '10.1.0.5', peerPort: 40_000, startedAt: Date.now(), runtime, peerIdentity: undefined, peerCertificateHash: undefined,
    watch: o.watch,
  };
  const outcomes: ConnectionOutcome[] = [];
  const sniffs: string[] = [];
  const tracker = new ConnectionTracker();
  const conn = new NativeConnection({ counters: new ListenerCounters(), countSniff: (l) => { sniffs.push(l); } }, ctx, native,
    o.declared ?? 'opaque', dest, (r) => { outcomes.push(r); }, tracker);
  return { thread, native, conn, outcomes, sniffs, tracker, cluster };
}

/** The thread reports the end (as NativeForwarder does). */
function end(s: Setup, kind = END_CLEAN, bytesIn = 0, bytesOut = 0): void {
  s.native.end(bytesIn, bytesOut, kind, 0);
}

const activeOf = (c: Cluster): number => c.status().endpoints.reduce((n, e) => n + e.active, 0);

test('a service: one connect to a picked endpoint with the cluster\'s timeout, counted while it lives, a clean outcome', () => {
  const s = setup();
  s.conn.start();
  assert.equal(s.thread.connects.length, 1);
  const r = s.thread.connects[0] as NativeConnectRequest;
  assert.deepEqual({ ...r, address: undefined }, {
    address: undefined, port: 8080, localAddress: undefined, connectTimeoutMs: 2_000, idleTimeoutMs: 60_000, detectTimeoutMs: 0,
    notifyConnected: true,
  });
  assert.equal(s.sniffs.join(), 'declared:opaque');
  assert.equal(s.tracker.size, 1);
  assert.equal(activeOf(s.cluster), 1, 'the endpoint\'s load counter is taken');
  s.native.event(2, 0, undefined);
  end(s, END_CLEAN, 10, 20);
  assert.equal(activeOf(s.cluster), 0, 'released at the end');
  assert.equal(s.tracker.size, 0);
  assert.equal(s.outcomes.length, 1);
  const o = s.outcomes[0] as ConnectionOutcome;
  assert.equal(o.code, undefined);
  assert.equal(o.service, 'web');
  assert.equal(o.endpoint, `${r.address}:8080`);
  assert.equal(o.attempts, 1);
  assert.equal(o.protocol, 'declared:opaque');
  assert.deepEqual([o.bytesIn, o.bytesOut], [10, 20]);
  assert.deepEqual(s.thread.aborts, []);
});

test('a refused connect is retried on another endpoint (health told, load released); the outcome names the last one', () => {
  const s = setup();
  s.conn.start();
  const first = (s.thread.connects[0] as NativeConnectRequest).address;
  s.native.event(3, ECONNREFUSED, undefined);
  assert.equal(s.thread.connects.length, 2);
  const second = (s.thread.connects[1] as NativeConnectRequest).address;
  assert.notEqual(second, first, 'not the endpoint that refused');
  assert.equal(activeOf(s.cluster), 1, 'only the second attempt holds a load counter');
  assert.equal(s.cluster.endpointStatus(`${first}:8080`)?.consecutiveConnectFailures, 1, 'the refusal reached the cluster\'s health');
  s.native.event(2, 0, undefined);
  end(s);
  const o = s.outcomes[0] as ConnectionOutcome;
  assert.equal(o.code, undefined);
  assert.equal(o.attempts, 2);
  assert.equal(o.endpoint, `${second}:8080`);
  assert.equal(activeOf(s.cluster), 0);
});

test('every attempt refused: the client is reset and the outcome is REMORA_ERR_UPSTREAM_CONNECT with the errno', () => {
  const s = setup();
  s.conn.start();
  for (let i = 0; i < 3; i++) s.native.event(3, ECONNREFUSED, undefined);
  assert.equal(s.thread.connects.length, 3, 'connect_attempts = 3');
  assert.deepEqual(s.thread.aborts, [7]);
  end(s, END_ABORTED);
  const o = s.outcomes[0] as ConnectionOutcome;
  assert.equal(o.code, 'REMORA_ERR_UPSTREAM_CONNECT');
  assert.equal((o.error as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  assert.equal(o.attempts, 3);
  assert.equal(activeOf(s.cluster), 0);
});

test('a timed-out connect is REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT; a connect the thread refuses at once counts as a failed attempt', () => {
  const s = setup({ cluster: passthrough() });
  s.conn.start();
  assert.equal((s.thread.connects[0] as NativeConnectRequest).address, '10.0.0.9');
  assert.equal((s.thread.connects[0] as NativeConnectRequest).notifyConnected, false, 'no health to feed for the original destination');
  s.native.event(3, ETIMEDOUT, undefined);
  assert.equal(s.thread.connects.length, 1, 'one attempt for an original destination');
  end(s, END_ABORTED);
  assert.equal(s.outcomes[0]?.code, 'REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT');
  assert.equal(s.outcomes[0]?.endpoint, '10.0.0.9:80');

  const t = setup({ cluster: passthrough() });
  t.thread.connectResult = -constants.errno.EINVAL;
  t.conn.start();
  assert.deepEqual(t.thread.aborts, [7]);
  end(t, END_ABORTED);
  assert.equal(t.outcomes[0]?.code, 'REMORA_ERR_UPSTREAM_CONNECT');
  assert.equal((t.outcomes[0]?.error as NodeJS.ErrnoException).code, 'EINVAL');
});

test('no endpoint: REMORA_ERR_NO_HEALTHY_ENDPOINT without a connect; a denied connection is closed before one', () => {
  const s = setup({ cluster: service(0) });
  s.conn.start();
  assert.equal(s.thread.connects.length, 0);
  assert.deepEqual(s.thread.aborts, [7]);
  end(s, END_ABORTED);
  assert.equal(s.outcomes[0]?.code, 'REMORA_ERR_NO_HEALTHY_ENDPOINT');
  assert.equal(s.outcomes[0]?.attempts, 0);

  const d = setup({ authorize: false });
  d.conn.start();
  assert.equal(d.thread.connects.length, 0);
  assert.deepEqual(d.thread.aborts, [7]);
  end(d, END_ABORTED);
  assert.equal(d.outcomes[0]?.code, 'REMORA_ERR_AUTHZ_DENIED');
  assert.deepEqual(d.sniffs, [], 'not labelled: nothing was read');
});

/** A connection with detection on, after `events`: its label (and whether it told the thread to stop watching). */
function detected(events: readonly [NativeDetectEvent, string | Buffer | undefined][], detectTimeoutMs = 5_000): { sniffs: string[]; watchDone: boolean; detectMs: number } {
  const s = setup({ cluster: passthrough(), declared: 'detect', detectTimeoutMs });
  s.conn.start();
  for (const [e, b] of events) s.native.event(e, 0, typeof b === 'string' ? Buffer.from(b, 'latin1') : b);
  return { sniffs: s.sniffs, watchDone: s.thread.watchDones.length === 1, detectMs: (s.thread.connects[0] as NativeConnectRequest).detectTimeoutMs };
}

const H2_SETTINGS = Buffer.from([0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]);

test('detection labels by DetectStage\'s rules, once, and then stops the thread\'s watch', () => {
  assert.deepEqual(detected([[NativeDetectEvent.clientData, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n']]), { sniffs: ['http1'], watchDone: true, detectMs: 5_000 });
  assert.deepEqual(detected([[NativeDetectEvent.serverData, '220 mail ready\r\n'], [NativeDetectEvent.clientData, 'GET / HTTP/1.1\r\n']]).sniffs,
    ['opaque:server-first'], 'the server spoke first; later client bytes change nothing');
  assert.deepEqual(detected([[NativeDetectEvent.serverFin, undefined]]).sniffs, ['opaque:server-first']);
  assert.deepEqual(detected([[NativeDetectEvent.serverData, H2_SETTINGS], [NativeDetectEvent.clientData, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n']]).sniffs,
    ['http2'], 'an HTTP/2 server\'s SETTINGS preface is not server-first: the client decides');
  assert.deepEqual(detected([[NativeDetectEvent.clientFin, undefined]]).sniffs, ['opaque:eof']);
  assert.deepEqual(detected([[NativeDetectEvent.timeout, undefined]]).sniffs, ['opaque:timeout']);
  assert.deepEqual(detected([[NativeDetectEvent.clientData, 'GE'], [NativeDetectEvent.clientData, 'T / HTTP/1.1\r\n']]),
    { sniffs: ['http1'], watchDone: true, detectMs: 5_000 }, 'bytes split over reads: decided on the second');
  assert.deepEqual(detected([[NativeDetectEvent.clientData, 'GE']]), { sniffs: [], watchDone: false, detectMs: 5_000 }, 'undecided: still watching');
  assert.equal(detected([], 0).detectMs, 0x7fffffff, 'detect_timeout = 0: watched without a deadline');
});

test('the drain aborts a connection in any phase; /debug/connections shows connect, then forward', () => {
  const s = setup();
  s.conn.start();
  s.thread.state = 2;
  assert.equal(s.conn.describe(Date.now())?.phase, 'connect');
  assert.equal(s.conn.describe(Date.now())?.upstreamState, 'not-connected');
  s.native.event(2, 0, undefined);
  s.thread.state = 0;
  const d = s.conn.describe(Date.now());
  assert.equal(d?.phase, 'forward');
  assert.equal(d?.service, 'web');
  assert.equal(d?.protocol, 'declared:opaque');
  s.conn.abort('REMORA_ERR_DRAIN_TIMEOUT');
  assert.deepEqual(s.thread.aborts, [7]);
  end(s, END_ABORTED);
  assert.equal(s.outcomes[0]?.code, 'REMORA_ERR_DRAIN_TIMEOUT');
  assert.equal(s.conn.describe(Date.now()), undefined);
  end(s, END_ABORTED);
  assert.equal(s.outcomes.length, 1, 'done runs once');
});

test('the observer hears that forwarding began (live TCP metrics) with the service and the endpoint, once; not for a denied connection', () => {
  const heard: { service: string | undefined; endpoint: string | undefined; bytes: number }[] = [];
  const watch: ForwardingWatcher = {
    forwarding: (_conn, service, endpoint, bytes) => { heard.push({ service, endpoint, bytes: bytes.bytesDownstreamToUpstream }); },
  };
  const s = setup({ watch });
  s.conn.start();
  const r = s.thread.connects[0] as NativeConnectRequest;
  assert.deepEqual(heard, [{ service: 'web', endpoint: `${r.address}:8080`, bytes: 0 }]);
  s.native.event(3, ECONNREFUSED, undefined);
  assert.equal(heard.length, 1, 'a retry is the same connection');
  const d = setup({ watch, authorize: false });
  d.conn.start();
  assert.equal(heard.length, 1);
});

test('a handler that throws (a bug) ends that connection with REMORA_ERR_INTERNAL and the error, nothing else', () => {
  const s = setup();
  s.conn.start();
  Object.defineProperty(s.cluster, 'onConnectResult', { value: () => { throw new Error('boom'); } });
  s.native.event(2, 0, undefined);
  assert.deepEqual(s.thread.aborts, [7]);
  end(s, END_ABORTED);
  assert.equal(s.outcomes[0]?.code, 'REMORA_ERR_INTERNAL');
  assert.equal(s.outcomes[0]?.error?.message, 'boom');
  assert.equal(activeOf(s.cluster), 0, 'its load released');
});
