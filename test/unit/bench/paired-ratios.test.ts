// The quick benches' round-by-round comparison (bench/paired-ratios.ts): pure arithmetic, checked on hand-made rounds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPairedRatios, pairedRatios } from '../../../bench/paired-ratios.js';

test('each round is compared with the same round of the base; a drift common to both cancels', () => {
  // The machine halves its speed in round 2 for both; the subject is 10 % cheaper per request in every round.
  const base = [{ rps: 10_000, cores: 1.0 }, { rps: 5_000, cores: 1.0 }, { rps: 10_000, cores: 1.0 }];
  const subject = [{ rps: 11_000, cores: 0.99 }, { rps: 5_500, cores: 0.99 }, { rps: 10_000, cores: 0.9 }];
  const p = pairedRatios(base, subject);
  assert.ok(p !== undefined);
  assert.equal(p.rounds, 3);
  assert.equal(p.rps.median, 1.1);
  assert.equal(p.rps.min, 1.0);
  assert.equal(p.rps.max, 1.1);
  assert.ok(Math.abs(p.cpuPerRequest.median - 0.9) < 1e-9);
  assert.equal(p.cheaperRounds, 3);
  assert.equal(formatPairedRatios(p), 'rps 1.10× (1.00–1.10), CPU/req 0.90× (0.90–0.90), cheaper in 3 of 3 rounds');
});

test('rounds without requests are left out; none left: undefined; no CPU (direct): said so', () => {
  assert.equal(pairedRatios([{ rps: 0, cores: 1 }], [{ rps: 100, cores: 1 }]), undefined);
  assert.equal(pairedRatios([], []), undefined);
  const p = pairedRatios([{ rps: 100, cores: 0 }, { rps: 0, cores: 1 }], [{ rps: 120, cores: 0 }, { rps: 50, cores: 1 }]);
  assert.ok(p !== undefined);
  assert.equal(p.rounds, 1);
  assert.equal(p.cheaperRounds, 0);
  assert.match(formatPairedRatios(p), /^rps 1\.20× \(1\.20–1\.20\), CPU\/req not measured$/);
});

test('a subject dearer per request counts no cheaper round', () => {
  const p = pairedRatios([{ rps: 1000, cores: 0.5 }, { rps: 1000, cores: 0.5 }], [{ rps: 900, cores: 0.6 }, { rps: 1000, cores: 0.4 }]);
  assert.ok(p !== undefined);
  assert.equal(p.cheaperRounds, 1);
  assert.ok(p.cpuPerRequest.max > 1.3 && p.cpuPerRequest.min < 0.81);
});
