// docs/configuration.md carries one table per option set, rendered from the specs themselves. This test fails when
// the doc and the code disagree; REMORA_UPDATE_DOCS=1 rewrites the tables in place.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { initOptionSpecs } from '../../../src/config/init-options.js';
import type { OptionSpecs } from '../../../src/config/option-set.js';
import { proxyOptionSpecs } from '../../../src/config/proxy-options.js';

const DOC = new URL('../../../../docs/configuration.md', import.meta.url);

function table(section: string, specs: OptionSpecs): string {
  const rows = Object.values(specs).map((s) => {
    const flag = s.isSwitch === true ? `\`--${s.flag}\`` : `\`--${s.flag} ${s.valueName ?? 'VALUE'}\``;
    const def = s.defaultText === '' ? '""' : s.defaultText;
    return `| \`${s.key}\` | ${flag} | \`${s.env}\` | \`${def}\` | ${s.help.replace(/\|/g, '\\|')} |`;
  });
  return [
    `<!-- options:${section}:begin -->`,
    '| ini key | flag | environment | default | meaning |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    `<!-- options:${section}:end -->`,
  ].join('\n');
}

const SETS: readonly [string, OptionSpecs][] = [['init', initOptionSpecs], ['proxy', proxyOptionSpecs]];

test('docs/configuration.md documents every option of every command exactly as the code declares it', () => {
  let doc = readFileSync(DOC, 'utf8');
  for (const [section, specs] of SETS) {
    const expected = table(section, specs);
    const re = new RegExp(`<!-- options:${section}:begin -->[\\s\\S]*?<!-- options:${section}:end -->`);
    assert.ok(re.test(doc), `docs/configuration.md lacks the markers for [${section}]`);
    if (process.env['REMORA_UPDATE_DOCS'] === '1') {
      doc = doc.replace(re, expected);
      writeFileSync(DOC, doc);
    } else {
      assert.equal(re.exec(doc)?.[0], expected, `[${section}] table is stale: run REMORA_UPDATE_DOCS=1 npm run test:unit`);
    }
  }
});

test('the complete example file in docs/configuration.md is valid for both commands', async () => {
  const { parseIni, findSection } = await import('../../../src/config/ini-file.js');
  const { resolveOptions } = await import('../../../src/config/option-set.js');
  const doc = readFileSync(DOC, 'utf8');
  const example = /```ini\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(example !== undefined, 'no ini example');
  const parsed = parseIni(example, 'configuration.md');
  assert.deepEqual(parsed.issues, []);
  for (const [section, specs] of SETS) {
    const r = resolveOptions(specs, { flags: new Map(), env: {}, section: findSection(parsed.doc, section), file: 'configuration.md' });
    assert.deepEqual(r.issues, [], section);
  }
});

test('the HTTP example in docs/configuration.md (service, traffic policy, routes) loads as the proxy loads it', async () => {
  const { parseIni } = await import('../../../src/config/ini-file.js');
  const { loadSnapshotDefinitions } = await import('../../../src/config/load-snapshot.js');
  const doc = readFileSync(DOC, 'utf8');
  const examples = [...doc.matchAll(/```ini\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  const http = examples.find((e) => e.includes('[route '));
  assert.ok(http !== undefined, 'no HTTP example');
  const parsed = parseIni(http, 'configuration.md');
  assert.deepEqual(parsed.issues, []);
  const loaded = loadSnapshotDefinitions({ file: 'configuration.md', flags: new Map(), env: {}, readFile: () => Buffer.from(http) });
  assert.ok(loaded.ok, loaded.ok ? '' : JSON.stringify(loaded.issues));
  assert.deepEqual(loaded.definitions.services.map((x) => x.name), ['reviews']);
});
