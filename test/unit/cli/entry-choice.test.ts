import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';

// bin/entry-choice.cjs (plain CommonJS next to bin/remora), from dist/test/unit/cli/.
const choice = createRequire(import.meta.url)('../../../../bin/entry-choice.cjs') as {
  proxyBundle(argv: readonly string[], env: Record<string, string | undefined>, mtimeMs?: (path: string) => number): string | undefined;
  CLI: string;
};

const BUNDLE = join(choice.CLI, 'proxy-bundle.cjs');
const MODULES = join(choice.CLI, 'proxy-main.js');

function stat(times: Record<string, number>): (path: string) => number {
  return (path) => {
    const t = times[path];
    if (t === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return t;
  };
}

test('remora proxy runs the bundle when it is at least as new as the modules it was made from', () => {
  assert.equal(choice.proxyBundle(['proxy', '--config', 'x.ini'], {}, stat({ [BUNDLE]: 20, [MODULES]: 10 })), BUNDLE);
  assert.equal(choice.proxyBundle(['proxy'], {}, stat({ [BUNDLE]: 10, [MODULES]: 10 })), BUNDLE);
});

test('a stale or missing bundle, REMORA_PROXY_BUNDLE=off, or another command: the ES modules run', () => {
  assert.equal(choice.proxyBundle(['proxy'], {}, stat({ [BUNDLE]: 9, [MODULES]: 10 })), undefined, 'tsc ran after the bundle');
  assert.equal(choice.proxyBundle(['proxy'], {}, stat({ [MODULES]: 10 })), undefined, 'no bundle');
  assert.equal(choice.proxyBundle(['proxy'], {}, stat({ [BUNDLE]: 10 })), undefined, 'no modules');
  assert.equal(choice.proxyBundle(['proxy'], { REMORA_PROXY_BUNDLE: 'off' }, stat({ [BUNDLE]: 20, [MODULES]: 10 })), undefined);
  assert.equal(choice.proxyBundle(['proxy'], { REMORA_PROXY_BUNDLE: 'on' }, stat({ [BUNDLE]: 20, [MODULES]: 10 })), BUNDLE);
  for (const command of ['init', 'ca', 'control', 'ctl', 'explain', 'wait-ready', 'version', 'help']) {
    assert.equal(choice.proxyBundle([command, 'proxy'], {}, stat({ [BUNDLE]: 20, [MODULES]: 10 })), undefined, command);
  }
  assert.equal(choice.proxyBundle([], {}, stat({ [BUNDLE]: 20, [MODULES]: 10 })), undefined);
});
