import assert from 'node:assert/strict';
import { test } from 'node:test';
import ini from 'ini';
import { iniValue, objectShapeIssues, objectsOfIni, renderState } from '../../../src/control/control-objects.js';
import { parseIni } from '../../../src/config/ini-file.js';

test('iniValue writes a value so that the INI loader reads it back verbatim, or refuses it', () => {
  for (const v of ['10.0.0.1:80', 'a ; b', 'x#y', '"quoted"', "'q'", '  padded ', 'back\\slash', 'web subset=v1 weight=90, web subset=v2 weight=10', '']) {
    const text = iniValue(v);
    assert.notEqual(text, undefined, v);
    assert.equal(ini.unsafe(text ?? ''), v, v);
  }
  assert.equal(iniValue('two\nlines'), undefined);
});

test('shape checks name the object and the field; mesh objects take only mesh-wide [proxy] keys', () => {
  assert.deepEqual(objectShapeIssues('service', 'web', { endpoints: '10.0.0.1:80' }), []);
  assert.match(objectShapeIssues('service', 'bad name', {})[0]?.expected ?? '', /1-63 letters/);
  assert.match(objectShapeIssues('mesh', 'other', {})[0]?.expected ?? '', /"default"/);
  const [nonString] = objectShapeIssues('route', 'r', { backends: 3 });
  assert.deepEqual([nonString?.kind, nonString?.name, nonString?.field], ['route', 'r', 'backends']);
  assert.match(objectShapeIssues('mesh', 'default', { outbound_port: '15001' })[0]?.expected ?? '', /per-pod keys stay with each sidecar/);
  assert.deepEqual(objectShapeIssues('mesh', 'default', { mtls_mode: 'permissive' }), []);
  assert.match(objectShapeIssues('service', 'web', [])[0]?.expected ?? '', /an object of keys/);
  assert.match(objectShapeIssues('service', 'web', { 'bad key': 'x' })[0]?.expected ?? '', /a key of letters/);
});

test('renderState orders objects by kind and name, and maps every line back to its object and key', () => {
  const r = renderState([
    { kind: 'route', name: 'r1', spec: { service: 'web', backends: 'web-v1=90, web-v2=10' } },
    { kind: 'service', name: 'web', spec: { addresses: '10.96.0.1:80', note: 'a ; b' } },
    { kind: 'mesh', name: 'default', spec: { connect_timeout: '2s' } },
  ]);
  const { doc, issues } = parseIni(r.text, 'x');
  assert.deepEqual(issues, []);
  assert.deepEqual(doc.sections.slice(1).map((s) => s.name), ['proxy', 'service web', 'route r1']);
  assert.equal(doc.sections[2]?.entries.get('note')?.value, 'a ; b');
  const noteLine = doc.sections[2]?.entries.get('note')?.line ?? 0;
  assert.deepEqual(r.lines.get(noteLine), { kind: 'service', name: 'web', field: 'note' });
  assert.deepEqual(r.lines.get(doc.sections[3]?.line ?? 0), { kind: 'route', name: 'r1' });
});

test('objectsOfIni turns the static config sections into objects; per-pod [proxy] keys and [init] stay local', () => {
  const text = '[proxy]\noutbound_port = 15001\nconnect_timeout = 3s\n[init]\nipv6 = off\n[registry]\nmode = allow-any\n'
    + '[service web]\naddresses = 10.96.0.1:80\n[route r]\nservice = web\n[traffic-policy web]\nretries = 2\n[authorization a]\naction = allow\n';
  const p = objectsOfIni(text, 'f.ini');
  assert.deepEqual(p.issues, []);
  assert.deepEqual(p.objects.map((o) => `${o.kind}/${o.name}`), ['mesh/default', 'registry/default', 'service/web', 'route/r', 'traffic-policy/web', 'authorization/a']);
  assert.deepEqual(p.objects[0]?.spec, { connect_timeout: '3s' });
  assert.deepEqual(p.skipped.map((s) => s.key), ['[proxy] outbound_port', '[init]']);
  const bad = objectsOfIni('[widgets x]\na = 1\n[service bad name]\nx = 1\n', 'g.ini');
  assert.deepEqual(bad.issues.map((i) => i.source), ['g.ini:1', 'g.ini:3']);
});
