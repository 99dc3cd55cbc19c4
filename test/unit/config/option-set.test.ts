import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initOptionSpecs } from '../../../src/config/init-options.js';
import { parseIni, findSection } from '../../../src/config/ini-file.js';
import { renderOptionHelp, resolveOptions } from '../../../src/config/option-set.js';
import { proxyOptionSpecs } from '../../../src/config/proxy-options.js';

const noFlags = new Map<string, { value: string }>();

test('defaults apply when nothing is given', () => {
  const r = resolveOptions(initOptionSpecs, { flags: noFlags, env: {} });
  assert.deepEqual(r.issues, []);
  assert.equal(r.values.outboundPort, 15001);
  assert.equal(r.values.inboundPort, 15006);
  assert.deepEqual(r.values.proxyUid, [1337]);
  assert.deepEqual(r.values.inboundPorts, { all: true });
  assert.equal(r.sources.outboundPort, 'default');
});

test('precedence: file < environment < flag', () => {
  const { doc } = parseIni('[init]\noutbound_port = 1000\ninbound_port = 2000\nproxy_uid = 7\n', 'f.ini');
  const r = resolveOptions(initOptionSpecs, {
    flags: new Map([['outbound-port', { value: '3000' }]]),
    env: { REMORA_OUTBOUND_PORT: '4000', REMORA_INBOUND_PORT: '5000' },
    section: findSection(doc, 'init'),
    file: 'f.ini',
  });
  assert.deepEqual(r.issues, []);
  assert.equal(r.values.outboundPort, 3000);
  assert.equal(r.sources.outboundPort, 'flag');
  assert.equal(r.values.inboundPort, 5000);
  assert.equal(r.sources.inboundPort, 'environment');
  assert.deepEqual(r.values.proxyUid, [7]);
  assert.equal(r.sources.proxyUid, 'file');
});

test('every bad value is reported with where it came from, even if a later layer overrides it', () => {
  const { doc } = parseIni('[init]\n\noutbound_port = 99999\nbogus = 1\n', '/etc/remora.ini');
  const r = resolveOptions(initOptionSpecs, {
    flags: new Map([['outbound-port', { value: '15001' }], ['proxy-uid', { value: 'istio' }]]),
    env: { REMORA_EXCLUDE_OUTBOUND_CIDRS: '10.0.0.1/8' },
    section: findSection(doc, 'init'),
    file: '/etc/remora.ini',
  });
  const rendered = r.issues.map((i) => `${i.source} ${i.key} ${i.expected}`);
  assert.equal(r.issues.length, 4, rendered.join('\n'));
  assert.ok(rendered.some((s) => s.startsWith('/etc/remora.ini:4 [init] bogus a known key')));
  assert.ok(rendered.some((s) => s.startsWith('/etc/remora.ini:3 [init] outbound_port a TCP port')));
  assert.ok(rendered.some((s) => s.startsWith('command line --proxy-uid numeric ids')));
  assert.ok(rendered.some((s) => s.includes('REMORA_EXCLUDE_OUTBOUND_CIDRS') && s.includes('did you mean 10.0.0.0/8')));
});

test('help lists every flag with its env, ini key and default', () => {
  for (const specs of [initOptionSpecs, proxyOptionSpecs]) {
    const help = renderOptionHelp(specs);
    for (const s of Object.values(specs)) {
      assert.ok(help.includes(`--${s.flag}`), s.flag);
      assert.ok(help.includes(s.env), s.env);
      assert.ok(help.includes(`ini key ${s.key}`), s.key);
      if (s.isSwitch !== true) assert.ok(help.includes(`(default: ${s.defaultText === '' ? '""' : s.defaultText})`), s.flag);
    }
  }
});
