#!/usr/bin/env node
// Runs the compiled tests with node:test: unit tests first (in parallel), then the netns tests one file at a time
// (each builds its own namespaces; running them serially keeps the 2-core CI machine from timing out peers).
// Usage: node scripts/run-tests.mjs [unit|netns] [name-filter]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const [tier = 'all', filter = ''] = process.argv.slice(2);

function find(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.js') && p.includes(filter)) out.push(p);
  }
  return out;
}

function runTier(name, files, concurrency) {
  if (files.length === 0) return 0;
  process.stdout.write(`\n# remora: ${name} tests (${files.length} files)\n`);
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...files], { stdio: 'inherit', cwd: root });
  return r.status ?? 1;
}

let status = 0;
if (tier === 'all' || tier === 'unit') status |= runTier('unit', find(join(root, 'dist/test/unit')), 2);
if (tier === 'all' || tier === 'integration') status |= runTier('integration', find(join(root, 'dist/test/integration')), 1);
if (tier === 'all' || tier === 'netns') status |= runTier('netns', find(join(root, 'dist/test/netns')), 1);
process.exit(status === 0 ? 0 : 1);
