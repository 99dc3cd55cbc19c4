// `remora proxy --config FILE` with bad [service]/[registry]/[route] sections: every problem is reported at once
// with file:line, nothing starts, exit code 2. tls_insecure_skip_verify = true starts, with a warning.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Mesh, netnsTestOptions, type Pod } from './harness.js';
import { tempDir, writeConfig } from './l4-helpers.js';
import { waitForLog } from './proxy-helpers.js';
import { REMORA_BIN, startProxy } from './remora-process.js';

const opts = netnsTestOptions();

describe('proxy configuration of services', opts, () => {
  let mesh: Mesh;
  let pod: Pod;
  const tmp = tempDir('remora-l4-config-');

  before(async () => {
    if (opts.skip !== undefined) return;
    mesh = await Mesh.create({ ipv6: false });
    pod = await mesh.addPod('p');
  });
  after(async () => {
    await mesh?.destroy();
    tmp.remove();
  });

  test('every bad section, key and value is reported with file:line; the proxy does not start (exit 2)', opts, async () => {
    const file = writeConfig(tmp.dir, 'bad.ini', [
      '[proxy]', 'detect_timeout = soon',
      '[registry]', 'mode = allow-all',
      '[service web]', 'addresses = 10.96.0.1:80', 'endpoints = 10.1.0.1:80', 'balancer = fastest',
      '[service tls]', 'addresses = 10.96.0.2:443', 'endpoints = 10.1.0.2:443', 'tls_origination = on', 'tls_ca_file = /nonexistent/ca.pem',
      '[route r]', 'service = missing',
      '[mystery]',
    ]);
    const r = await pod.exec([process.execPath, REMORA_BIN, 'proxy', '--config', file], { timeoutMs: 20_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /REMORA_ERR_CONFIG_INVALID: invalid configuration/);
    for (const want of [
      /bad\.ini:2: \[proxy\] detect_timeout = "soon"/,
      /bad\.ini:4: \[registry\] mode = "allow-all"/,
      /bad\.ini:8: \[service web\] balancer = "fastest"/,
      /bad\.ini:13: \[service tls\] tls_ca_file = "\/nonexistent\/ca\.pem": expected a readable file \(ENOENT\)/,
      /bad\.ini:15: \[route r\] service = "missing"/,
      /bad\.ini:16: \[mystery\]: expected a known section/,
    ]) {
      assert.match(r.stderr, want);
    }
  });

  test('tls_insecure_skip_verify = true starts, with a warning naming the service', opts, async () => {
    const file = writeConfig(tmp.dir, 'insecure.ini', [
      '[service lax]', 'addresses = 10.96.0.3:80', 'endpoints = 10.1.0.3:443', 'tls_origination = on', 'tls_insecure_skip_verify = true',
    ]);
    const proxy = await startProxy(pod, ['--config', file, '--admin-address', '127.0.0.1:15100'], { adminPort: 15100 });
    const [line] = await waitForLog(proxy, 'the skip-verify warning', (x) => x['service'] === 'lax' && x['event'] === 'tls.insecure-skip-verify');
    assert.equal(line?.['level'], 'warn');
    assert.equal(await proxy.stop(), 0);
  });
});
