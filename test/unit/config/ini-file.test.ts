import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findSection, parseIni } from '../../../src/config/ini-file.js';

test('sections and keys keep their line numbers; values decoded like the ini package', () => {
  const { doc, issues } = parseIni('; comment\n[init]\noutbound_port = 15001\n\n[proxy]\nlog_level = "debug" ; note\nname = a b ; c\n', 'x.ini');
  assert.deepEqual(issues, []);
  const init = findSection(doc, 'init');
  assert.equal(init?.line, 2);
  assert.deepEqual(init?.entries.get('outbound_port'), { key: 'outbound_port', value: '15001', line: 3 });
  const proxy = findSection(doc, 'proxy');
  assert.equal(proxy?.entries.get('log_level')?.value, '"debug"'); // ini keeps quotes when a comment follows
  assert.equal(proxy?.entries.get('name')?.value, 'a b');
});

test('structural problems are reported with file and line, not thrown', () => {
  const { issues } = parseIni('[init]\nbad line\nk = 1\nk = 2\n[init]\n[]\n', 'y.ini');
  const sources = issues.map((i) => i.source);
  assert.deepEqual(sources, ['y.ini:2', 'y.ini:4', 'y.ini:5', 'y.ini:6']);
  assert.match(issues[1]?.expected ?? '', /already set at line 3/);
  assert.match(issues[2]?.expected ?? '', /already at line 1/);
});

test('section names are normalised (inner whitespace collapsed)', () => {
  const { doc } = parseIni('[service   web]\nk=v\n', 'z.ini');
  assert.ok(findSection(doc, 'service web'));
});
