// src/core/lazy-builtins.ts: node:tls and node:http2 are loaded on first use, so that an idle proxy without TLS
// material or an identity does not load node:tls, and an HTTP engine that has seen no HTTP/2 connection does not load
// node:http2 (docs/performance-notes.md, "Idle RSS ... second part" and "third part").
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as dnsPromises from 'node:dns/promises';
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { nodeDnsPromises, nodeHttp2, nodeTls } from '../../../src/core/lazy-builtins.js';
import * as codes from '../../../src/l7/http/http2-codes.js';

const requireHere = createRequire(import.meta.url);

test('nodeTls() is node:tls, the module require() gives', () => {
  assert.equal(nodeTls(), requireHere('node:tls'));
  assert.equal(nodeTls().createSecureContext, tls.createSecureContext);
  assert.equal(nodeTls().connect, tls.connect);
});

test('nodeHttp2() is node:http2, the module require() gives; the codes used without it are its constants', () => {
  assert.equal(nodeHttp2(), requireHere('node:http2'));
  assert.equal(nodeHttp2().connect, http2.connect);
  assert.equal(nodeHttp2().createServer, http2.createServer);
  const c = http2.constants as Record<string, unknown>;
  for (const [name, value] of Object.entries(codes)) assert.equal(value, c[name], name);
  assert.equal(Object.keys(codes).length, 6);
});

test('nodeDnsPromises() is node:dns/promises, the module require() gives', () => {
  assert.equal(nodeDnsPromises(), requireHere('node:dns/promises'));
  assert.equal(nodeDnsPromises().Resolver, dnsPromises.Resolver);
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
    (await import(${JSON.stringify(url('../../../src/core/lazy-builtins.js'))})).nodeTls();
    console.log(JSON.stringify({ before, after: ${loaded} }));`;
  // "after" shows that the check sees node:tls once it is loaded (so "before" can fail).
  assert.deepEqual(inFreshNode(script), { before: false, after: true });
});

test('the proxy command, the runtime and the HTTP engine load no node:http2 until an HTTP/2 connection needs it', () => {
  const modules = [
    '../../../src/cli/proxy-command.js', '../../../src/proxy/proxy.js', '../../../src/proxy/runtime.js',
    '../../../src/l7/engine/http2-engine.js', '../../../src/l7/pool/http2-pool.js', '../../../src/l7/router/exchange.js',
    '../../../src/l7/router/local-replies.js',
  ].map(url);
  const h2 = "process.moduleLoadList.includes('NativeModule http2')";
  const script = `for (const m of ${JSON.stringify(modules)}) await import(m);
    const before = ${h2};
    (await import(${JSON.stringify(url('../../../src/core/lazy-builtins.js'))})).nodeHttp2();
    console.log(JSON.stringify({ before, after: ${h2} }));`;
  assert.deepEqual(inFreshNode(script), { before: false, after: true });
});
