import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseArgv } from '../../../src/cli/argv.js';
import { initOptionSpecs } from '../../../src/config/init-options.js';

test('flags with values, = form, switches and --help', () => {
  const r = parseArgv(['--outbound-port', '1', '--inbound-port=2', '--dry-run', '-h', '--config', 'x.ini'], initOptionSpecs, ['config']);
  assert.deepEqual(r.issues, []);
  assert.equal(r.help, true);
  assert.equal(r.flags.get('outbound-port')?.value, '1');
  assert.equal(r.flags.get('inbound-port')?.value, '2');
  assert.equal(r.flags.get('dry-run')?.value, 'true');
  assert.equal(r.flags.get('config')?.value, 'x.ini');
});

test('unknown flags, positional words, repeated flags and a missing value are usage issues', () => {
  const r = parseArgv(['--nope', '3', 'stray', '--outbound-port', '1', '--outbound-port', '2', '--inbound-port'], initOptionSpecs);
  assert.deepEqual(r.issues.map((i) => i.key), ['--nope', 'stray', '--outbound-port', '--inbound-port']);
});
