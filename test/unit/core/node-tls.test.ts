// src/core/node-tls.ts: node:tls is loaded on first use, so that an idle proxy without TLS material or an identity
// does not load it (docs/performance-notes.md, "Idle RSS ... second part").
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as tls from 'node:tls';
import { test } from 'node:test';
import { nodeTls } from '../../../src/core/node-tls.js';

test('nodeTls() is node:tls, the same module every time', () => {
  assert.equal(nodeTls(), nodeTls());
  assert.equal(nodeTls().createSecureContext, tls.createSecureContext);
  assert.equal(nodeTls().connect, tls.connect);
});

/** Runs `script` (an ES module) in a fresh node and returns what it printed as JSON. */
function inFreshNode(script: string): unknown {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as unknown;
}

const url = (rel: string): string => new URL(rel, import.meta.url).href;
const loaded = "process.moduleLoadList.includes('NativeModule tls')";

test('the proxy command, the runtime and the config loader load no node:tls until TLS is used', () => {
  const modules = [
    '../../../src/cli/proxy-command.js', '../../../src/proxy/proxy.js', '../../../src/proxy/runtime.js',
    '../../../src/config/load-snapshot.js', '../../../src/upstream/cluster-set.js', '../../../src/l4/mesh-termination.js',
  ].map(url);
  const script = `for (const m of ${JSON.stringify(modules)}) await import(m);
    const before = ${loaded};
    (await import(${JSON.stringify(url('../../../src/core/node-tls.js'))})).nodeTls();
    console.log(JSON.stringify({ before, after: ${loaded} }));`;
  // "after" shows that the check sees node:tls once it is loaded (so "before" can fail).
  assert.deepEqual(inFreshNode(script), { before: false, after: true });
});
