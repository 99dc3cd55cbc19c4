import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseH2load } from '../../../bench/loads.js';

test('h2load: requests still in flight when a timed run ends (status 0) are neither errors nor latency samples', () => {
  const out = `finished in 6.00s, 16000.00 req/s, 1MB/s
requests: 96000 total, 96012 started, 96000 done, 96000 succeeded, 0 failed, 0 errored, 0 timeout
`;
  const log = ['1\t200\t1000', '1\t200\t2000', '1\t0\t9000000', '1\t503\t3000', ''].join('\n');
  const m = parseH2load(out, log);
  assert.equal(m.errors, 1, 'the 503 only');
  assert.equal(m.p99Ms, 3, 'the unfinished request is not a latency sample');
  assert.match(m.note ?? '', /1 still in flight when the run ended \(status 0, not counted\); non-2xx: 1 \(status 503: 1\)/);
});
