// docs/init.md documents every `remora init` option (flag, env, ini key, default) and the rule set it shows is the
// golden defaults file.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { initOptionSpecs } from '../../../src/config/init-options.js';

const docs = readFileSync(new URL('../../../../docs/init.md', import.meta.url), 'utf8');
const golden = readFileSync(new URL('../../../../test/netns/golden/defaults.rules', import.meta.url), 'utf8');

test('every init option has a row with its flag, env, ini key and default', () => {
  for (const s of Object.values(initOptionSpecs)) {
    const row = docs.split('\n').find((l) => l.startsWith(`| \`--${s.flag}\` |`));
    assert.ok(row !== undefined, `no row for --${s.flag}`);
    assert.ok(row.includes(`\`${s.env}\``), `${s.flag}: env ${s.env}`);
    assert.ok(row.includes(`\`${s.key}\``), `${s.flag}: key ${s.key}`);
    const def = s.isSwitch === true ? 'false' : s.defaultText === '' ? '""' : s.defaultText;
    assert.ok(row.includes(`\`${def}\``), `${s.flag}: default ${def}`);
  }
});

test('the rule set shown in section 1 is the IPv4 block of the golden defaults', () => {
  const shown = /## 1\. The rule set[\s\S]*?```\n([\s\S]*?)```/.exec(docs)?.[1] ?? '';
  const v4 = (golden.split(/^# IPv6: .*$/m)[0] ?? '').split('\n').filter((l) => l !== '' && !l.startsWith('#')).join('\n');
  assert.equal(shown.trim(), v4.trim());
});
