// Which file bin/remora runs for a command line: the proxy's single-file bundle (dist/src/cli/proxy-bundle.cjs,
// scripts/bundle-proxy.mjs) for `remora proxy` when it is at least as new as the compiled modules it was made from
// (a `tsc` after it leaves it stale) and REMORA_PROXY_BUNDLE is not "off"; else undefined: the ES modules
// (dist/src/cli/main.js) run, as for every other command. `mtimeMs` is fs.statSync's, injectable for the unit test.
'use strict';
const { statSync } = require('node:fs');
const { join } = require('node:path');

const CLI = join(__dirname, '../dist/src/cli');

/**
 * @param {readonly string[]} argv the arguments after `remora`
 * @param {Record<string, string | undefined>} env
 * @param {(path: string) => number} [mtimeMs] throws when the file is missing
 * @returns {string | undefined} the bundle's path, or undefined
 */
function proxyBundle(argv, env, mtimeMs = (p) => statSync(p).mtimeMs) {
  if (argv[0] !== 'proxy' || env.REMORA_PROXY_BUNDLE === 'off') return undefined;
  const bundle = join(CLI, 'proxy-bundle.cjs');
  try {
    return mtimeMs(bundle) >= mtimeMs(join(CLI, 'proxy-main.js')) ? bundle : undefined;
  } catch {
    return undefined;
  }
}

module.exports = { proxyBundle, CLI };
