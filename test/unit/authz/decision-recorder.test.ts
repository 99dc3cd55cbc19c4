// The authorization decision recorder's counters (/stats authz): per policy, allowed / denied for the policy that
// decided, audited for every audit policy that matched, and would_deny for an audit policy that matched a decision
// that was allowed (what making it a deny policy would newly deny). The control plane's policy stats read these.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { AuthzDecision } from '../../../src/authz/authorizer.js';
import { DecisionRecorder } from '../../../src/authz/decision-recorder.js';
import { MeshStats } from '../../../src/core/mesh-stats.js';

test('would_deny counts an audit policy\'s matches that were allowed, not those denied anyway', () => {
  const stats = new MeshStats();
  const r = new DecisionRecorder(stats, pino({ level: 'silent' }));
  const d = (over: Partial<AuthzDecision>): AuthzDecision => ({ allowed: true, policy: undefined, reason: 'allowed', audited: [], ...over });
  r.record('http', d({ policy: 'allow-get', audited: ['audit-get', 'audit-all'] }), () => ({}));
  r.record('http', d({ allowed: false, policy: 'deny-admin', reason: 'denied', audited: ['audit-get'] }), () => ({}));
  r.record('tcp', d({ allowed: false, reason: 'no-allow-matched', audited: ['audit-all'] }), () => ({}));
  r.record('tcp', d({ reason: 'no-policies', audited: ['audit-all'] }), () => ({}));
  r.record('http', d({ policy: 'allow-get' }), () => ({}));
  assert.deepEqual(stats.authz.json(), {
    'http.allowed': 2, 'http.audited': 2, 'http.denied': 1,
    'policy.allow-get.allowed': 2,
    'policy.audit-all.audited': 3, 'policy.audit-all.would_deny': 2,
    'policy.audit-get.audited': 2, 'policy.audit-get.would_deny': 1,
    'policy.deny-admin.denied': 1,
    'tcp.allowed': 1, 'tcp.audited': 2, 'tcp.denied': 1,
  });
});
