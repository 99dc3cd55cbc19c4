import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StateValidator } from '../../../src/control/state-validator.js';

const validator = new StateValidator();
const web = { kind: 'service' as const, name: 'web', spec: { addresses: '10.96.0.1:80', endpoints: '10.1.0.1:80 subset=v1, 10.1.0.2:80 subset=v2' } };

test('a valid state passes and yields the definitions the proxy would load', () => {
  const r = validator.validate([web, { kind: 'route', name: 'canary', spec: { service: 'web', backends: 'web/v1=90, web/v2=10' } }]);
  assert.equal(r.ok, true, JSON.stringify(r));
  if (!r.ok) return;
  assert.deepEqual(r.definitions.services.map((s) => s.name), ['web']);
  assert.deepEqual(r.definitions.routes[0]?.backends.map((b) => b.weight), [90, 10]);
});

test('the proxy validator\'s problems come back as object, field, value and expectation', () => {
  const r = validator.validate([{ ...web, spec: { ...web.spec, balancer: 'fastest' } }]);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.issues.length, 1);
  assert.deepEqual({ ...r.issues[0], expected: undefined }, { kind: 'service', name: 'web', field: 'balancer', value: 'fastest', expected: undefined });
  assert.match(r.issues[0]?.expected ?? '', /./);
});

test('cross-object rules hold: a route naming a missing service, a backend subset nobody is labelled with', () => {
  const r = validator.validate([web, { kind: 'route', name: 'r', spec: { service: 'web', backends: 'web/v3=10, api=90' } }]);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.ok(r.issues.length >= 1);
  for (const i of r.issues) assert.deepEqual([i.kind, i.name, i.field], ['route', 'r', 'backends'], JSON.stringify(i));
});

test('an unknown key is refused the way the file loader refuses it', () => {
  const r = validator.validate([{ ...web, spec: { ...web.spec, endpoint: 'x' } }]);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual([r.issues[0]?.kind, r.issues[0]?.name, r.issues[0]?.field], ['service', 'web', 'endpoint']);
});

test('mesh mTLS keys without an identity are refused, as a sidecar without identity_dir refuses them', () => {
  const r = validator.validate([{ kind: 'mesh', name: 'default', spec: { mtls_mode: 'strict' } }]);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual([r.issues[0]?.kind, r.issues[0]?.field], ['mesh', 'mtls_mode']);
});

test('cross-references to other sections name the object, not a line of the rendered document', () => {
  const r = validator.validate([web, { kind: 'service', name: 'api', spec: { addresses: '10.96.0.1:80', endpoints: '10.1.0.9:80' } }]);
  assert.equal(r.ok, false);
  if (r.ok) return;
  const text = JSON.stringify(r.issues);
  assert.doesNotMatch(text, /desired-state\.ini/);
  assert.match(text, /belongs to service (web|api)\)/);
});
