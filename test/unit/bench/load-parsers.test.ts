import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseH2load, parseIperf3, parseWrk, parseWrkDuration, percentile } from '../../../bench/loads.js';
import { parseRedirectCounters } from '../../../bench/proc.js';

const WRK = `Running 6s test @ http://10.219.5.3:8080/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms    1.20ms  30.10ms   90.12%
    Req/Sec    43.31k     3.02k   50.11k    70.00%
  Latency Distribution
     50%  783.00us
     75%    1.10ms
     90%    2.00ms
     99%    4.28ms
  517000 requests in 6.00s, 80.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 2
Requests/sec:  86161.33
Transfer/sec:     13.33MB
`;

test('wrk durations in us/ms/s', () => {
  assert.equal(parseWrkDuration('783.00us'), 0.783);
  assert.equal(parseWrkDuration('4.28ms'), 4.28);
  assert.equal(parseWrkDuration('1.50s'), 1500);
  assert.equal(parseWrkDuration('fast'), undefined);
});

test('wrk --latency output', () => {
  const m = parseWrk(WRK);
  assert.equal(m.rps, 86161.33);
  assert.equal(m.p50Ms, 0.783);
  assert.equal(m.p99Ms, 4.28);
  assert.equal(m.errors, 6);
  assert.match(m.note ?? '', /read 3/);
  assert.throws(() => parseWrk('wrk: connection refused'), /Requests\/sec/);
});

test('nearest-rank percentiles', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(xs, 50), 50);
  assert.equal(percentile(xs, 99), 99);
  assert.equal(percentile([7], 99), 7);
  assert.equal(percentile([], 50), undefined);
});

test('h2load summary and log file', () => {
  const out = `finished in 4.00s, 1000.00 req/s, 149.41KB/s
requests: 4 total, 4 started, 4 done, 3 succeeded, 1 failed, 0 errored, 0 timeout
`;
  const log = ['1795676022043831\t200\t100', '1795676022043831\t200\t200', '1795676022043831\t503\t300', '1795676022043831\t200\t400', ''].join('\n');
  const m = parseH2load(out, log);
  assert.equal(m.rps, 1000);
  assert.equal(m.p50Ms, 0.2);
  assert.equal(m.p99Ms, 0.4);
  assert.equal(m.errors, 2); // 1 failed + 1 non-2xx
  assert.throws(() => parseH2load('no summary', ''), /summary/);
});

test('iperf3 JSON', () => {
  const m = parseIperf3(JSON.stringify({ end: { sum_received: { bits_per_second: 8.5e9 }, sum_sent: { retransmits: 12 } } }));
  assert.equal(m.gbps, 8.5);
  assert.equal(m.note, 'retransmits: 12');
  assert.throws(() => parseIperf3(JSON.stringify({ error: 'unable to connect to server' })), /unable to connect/);
});

test('REDIRECT packet counters from iptables-save -c', () => {
  const save = `*nat
:PREROUTING ACCEPT [0:0]
:REMORA_REDIRECT - [0:0]
[12:720] -A PREROUTING -p tcp -j REMORA_INBOUND
[3:180] -A REMORA_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
[130:7800] -A REMORA_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
`;
  assert.equal(parseRedirectCounters(save), 133);
  assert.equal(parseRedirectCounters(''), 0);
});
