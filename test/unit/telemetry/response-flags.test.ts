// The one mapping from outcomes to Envoy's response flags, and the flags' text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LOCAL_REPLY_REASONS } from '../../../src/l7/local-reply.js';
import {
  connectionResponseFlags, FLAG, formatResponseFlags, httpResponseFlags, RESPONSE_FLAG_CODES, RESPONSE_FLAG_NAMES, type HttpFlagInputs,
} from '../../../src/telemetry/response-flags.js';

const base: HttpFlagInputs = { localReply: undefined, resetCause: undefined, downstreamAborted: false, attempts: 1, maxAttempts: 1, status: 200 };
const text = (o: Partial<HttpFlagInputs>): string => formatResponseFlags(httpResponseFlags({ ...base, ...o }));

test('every local reply reason maps to Envoy\'s flag (an authorization denial has none, as in Envoy)', () => {
  const expected: Record<string, string> = {
    'no-route': 'NR', 'no-healthy-upstream': 'UH', 'circuit-open': 'UO', 'upstream-connect-failure': 'UF', 'upstream-reset': 'UC',
    'upstream-timeout': 'UT', 'request-timeout': 'SI', 'bad-request': 'DPE', 'request-smuggling': 'DPE', 'header-too-large': 'DPE',
    'retry-budget-exhausted': 'URX', 'rbac-denied': '-',
  };
  assert.deepEqual(Object.keys(expected).sort(), [...LOCAL_REPLY_REASONS].sort(), 'the table covers every reason');
  for (const reason of LOCAL_REPLY_REASONS) assert.equal(text({ localReply: reason, status: 503 }), expected[reason], reason);
});

test('a response from the upstream has no flag, whatever its status', () => {
  assert.equal(text({ status: 200 }), '-');
  assert.equal(text({ status: 503 }), '-');
  assert.equal(text({ status: 404 }), '-');
});

test('a response reset after it started: UC (upstream broke it), UT (route timeout), UR (refused stream)', () => {
  assert.equal(text({ resetCause: 'upstream-reset' }), 'UC');
  assert.equal(text({ resetCause: 'upstream-timeout' }), 'UT');
  assert.equal(text({ resetCause: 'upstream-refused', status: 0 }), 'UR');
});

test('the client going away is DC, alone or with what else happened', () => {
  assert.equal(text({ downstreamAborted: true, status: 0 }), 'DC');
  assert.equal(text({ downstreamAborted: true, resetCause: 'upstream-timeout' }), 'UT,DC');
});

test('URX: retries used up and the request still failed; not without retries, not when the last attempt succeeded', () => {
  assert.equal(text({ localReply: 'upstream-connect-failure', attempts: 3, maxAttempts: 3, status: 503 }), 'UF,URX');
  assert.equal(text({ status: 503, attempts: 2, maxAttempts: 2 }), 'URX', 'an upstream 5xx after the last retry');
  assert.equal(text({ localReply: 'upstream-connect-failure', attempts: 1, maxAttempts: 1, status: 503 }), 'UF', 'no retry policy');
  assert.equal(text({ localReply: 'upstream-connect-failure', attempts: 2, maxAttempts: 3, status: 503 }), 'UF', 'stopped before the limit (not retriable)');
  assert.equal(text({ status: 200, attempts: 3, maxAttempts: 3 }), '-', 'the last attempt succeeded');
  assert.equal(text({ localReply: 'no-route', attempts: 3, maxAttempts: 3, status: 404 }), 'NR');
});

test('TCP: error codes map to flags; a normal end has none', () => {
  assert.equal(formatResponseFlags(connectionResponseFlags(undefined)), '-');
  assert.equal(formatResponseFlags(connectionResponseFlags('REMORA_ERR_UPSTREAM_CONNECT')), 'UF');
  assert.equal(formatResponseFlags(connectionResponseFlags('REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT')), 'UF');
  assert.equal(formatResponseFlags(connectionResponseFlags('REMORA_ERR_UPSTREAM_TLS')), 'UF');
  assert.equal(formatResponseFlags(connectionResponseFlags('REMORA_ERR_NO_HEALTHY_ENDPOINT')), 'UH');
  assert.equal(formatResponseFlags(connectionResponseFlags('REMORA_ERR_UNKNOWN_DESTINATION')), 'NR');
  assert.equal(formatResponseFlags(connectionResponseFlags('REMORA_ERR_MTLS_REQUIRED')), 'NR');
  assert.equal(formatResponseFlags(connectionResponseFlags('REMORA_ERR_UPSTREAM_RESET')), 'UC');
  assert.equal(formatResponseFlags(connectionResponseFlags('REMORA_ERR_DOWNSTREAM_RESET')), 'DC');
  assert.equal(formatResponseFlags(connectionResponseFlags('REMORA_ERR_DRAIN_TIMEOUT')), 'LR');
  assert.equal(formatResponseFlags(connectionResponseFlags('REMORA_ERR_AUTHZ_DENIED')), '-');
});

test('flags print comma-joined in Envoy\'s order, each code with its Envoy name', () => {
  assert.equal(formatResponseFlags(FLAG.DC | FLAG.UH | FLAG.URX), 'UH,URX,DC');
  assert.equal(formatResponseFlags(0), '-');
  for (const c of RESPONSE_FLAG_CODES) assert.ok(RESPONSE_FLAG_NAMES[c].length > 0);
  assert.deepEqual([...RESPONSE_FLAG_CODES], ['UH', 'UT', 'LR', 'UR', 'UF', 'UC', 'UO', 'URX', 'NR', 'RL', 'DC', 'SI', 'DPE']);
});
