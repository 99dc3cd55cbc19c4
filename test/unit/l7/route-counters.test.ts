// Requests per route and backend (route-counters.ts): each forward decision of a named route holds the counter of its
// (route, backend); the same pair gets the same counter in every table compiled with the same RouteCounters (a
// reload) and in a table derived by withWeights (a weight change), so the counts are cumulative for the process.
// Services without routes and tables compiled without counters carry none. The route filter does the increment.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_RETRY_POLICY, NO_HEADER_MUTATIONS, type RouteSpec } from '../../../src/config/route-spec.js';
import type { RouteDecision } from '../../../src/l7/request-types.js';
import { RouteCounters } from '../../../src/l7/router/route-counters.js';
import { RouteTable } from '../../../src/l7/router/route-table.js';
import { head, seededRandom } from './helpers.js';

const split: RouteSpec = {
  name: 'web-split', service: 'web', order: 0, match: { hosts: [], methods: [], headers: [], query: [] },
  backends: [{ service: 'web', subset: 'v1', weight: 3 }, { service: 'web', subset: 'v2', weight: 1 }],
  timeoutMs: 0, retry: DEFAULT_RETRY_POLICY, requestHeaders: NO_HEADER_MUTATIONS, responseHeaders: NO_HEADER_MUTATIONS,
};

function forward(d: RouteDecision): Extract<RouteDecision, { kind: 'forward' }> {
  assert.equal(d.kind, 'forward');
  return d as Extract<RouteDecision, { kind: 'forward' }>;
}

test('the decisions of a named route carry their backend\'s counter; hits count per backend', () => {
  const counters = new RouteCounters();
  const table = RouteTable.compile([split], { random: seededRandom(7), counters });
  for (let i = 0; i < 400; i++) forward(table.match(head(), 'web')).counter?.hit();
  const v1 = counters.requests('web-split', 'web/v1');
  const v2 = counters.requests('web-split', 'web/v2');
  assert.equal(v1 + v2, 400);
  assert.ok(v1 > 250 && v1 < 350, `3:1 by the seeded draw: ${v1}`);
  assert.equal(counters.requests('web-split', 'web/v3'), 0);
  // A service without routes: the default decision has no counter (nothing is counted for it).
  assert.equal(forward(table.match(head(), 'cart')).counter, undefined);
  // Without counters: no counter on any decision.
  assert.equal(forward(RouteTable.compile([split], { random: () => 0 }).match(head(), 'web')).counter, undefined);
});

test('the same (route, backend) keeps its counter across a recompile (reload) and withWeights (a weight change)', () => {
  const counters = new RouteCounters();
  const first = RouteTable.compile([split], { random: () => 0, counters });
  const c = forward(first.match(head(), 'web')).counter;
  assert.ok(c !== undefined);
  c.hit();
  const again = RouteTable.compile([split], { random: () => 0, counters });
  assert.equal(forward(again.match(head(), 'web')).counter, c);
  const shifted = first.withWeights('web-split', { 'web/v1': 0, 'web/v2': 10 });
  assert.ok(shifted.ok);
  const v2 = forward(shifted.table.match(head(), 'web'));
  assert.equal(v2.backend.subset, 'v2');
  v2.counter?.hit();
  assert.equal(counters.requests('web-split', 'web/v1'), 1);
  assert.equal(counters.requests('web-split', 'web/v2'), 1);
  assert.equal(counters.counter('web-split', 'web/v1'), c);
});
