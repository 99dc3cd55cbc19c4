// Bundles `remora proxy` into one CommonJS file, dist/src/cli/proxy-bundle.cjs, from the compiled modules in dist/
// (run after tsc: `npm run build`). bin/remora runs it for `remora proxy` when it is at least as new as
// dist/src/cli/proxy-main.js (else the ES modules, as for every other command). Why: one file read and compiled by
// the CommonJS loader instead of ~150 ES modules through the ESM loader keeps ~7 MB of RSS off an idle proxy
// (docs/performance-notes.md, "Idle RSS (issue 15 item 4)"). The bundle is the same code: no minification, no renaming
// beyond esbuild's scope-hoisting, the native addon and package.json still loaded from their paths at run time.
import { build } from 'esbuild';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist/src/cli/proxy-main.js');
// Next to main.js, so that paths relative to import.meta.url (../../../package.json, the addon) stay the same.
const outfile = join(root, 'dist/src/cli/proxy-bundle.cjs');

if (!existsSync(entry)) {
  process.stderr.write(`bundle-proxy: ${entry} is missing: run tsc first\n`);
  process.exit(1);
}

const result = await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // import.meta.url of every bundled module becomes the bundle's own URL (the same directory as main.js).
  define: { 'import.meta.url': '__remoraBundleUrl' },
  banner: { js: '"use strict";\nconst __remoraBundleUrl = require("node:url").pathToFileURL(__filename).href;' },
  // The addon is loaded by path at run time. The CSR code's packages (only `remora proxy --control` with spiffe_id
  // loads them) stay in node_modules, required from there when that code first runs: ~650 KiB less source to read
  // and keep for every proxy.
  external: ['*.node', '@peculiar/*', 'reflect-metadata', 'tsyringe'],
  logLevel: 'warning',
  metafile: true,
});
const bytes = statSync(outfile).size;
const inputs = Object.keys(result.metafile.inputs).length;
process.stdout.write(`bundle-proxy: ${outfile.slice(root.length + 1)} (${inputs} modules, ${(bytes / 1024).toFixed(0)} KiB)\n`);
