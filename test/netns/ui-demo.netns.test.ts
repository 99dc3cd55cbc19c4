// The web UI against the real thing (issue 14): a real `remora control` in its own pod, a client pod and a server
// pod with `remora init` rules and `remora proxy` sidecars subscribed over the network, mesh mTLS with certificates
// from the control plane's CA (CSR), two versions of web (http-app v1 :8081 and v2 :8082 in the server pod) and real
// traffic from the client pod to web's virtual address all along. Debian's chromium runs inside the control pod's
// network namespace (a wrapper runs it under `ip netns exec`; playwright-core drives it over its pipe) and opens the
// UI at the control plane's own address. The test logs in and sees:
// - the demo's services and live numbers: the graph's edge client -> web with a non-zero RPS, 100 % success and the
//   mTLS mark; web's endpoints healthy as the sidecars report them; the sidecars SYNCED, ready, with their SPIFFE
//   certificates' expiry;
// - a slider moved and applied: the route's weights in the API, every request of the client answered by v2 (the
//   sidecars' routing), and the measured split in the page counting v2's requests;
// - one-click rollback: the API, every request to v1 again, the page's measured v1 count growing;
// - a sidecar that cannot take the config (a third pod's sidecar without an identity, under mTLS) flagged NACKED with
//   its error.
// Screenshots go to $REMORA_UI_SCREENSHOTS when set (docs/ui/demo-*.png).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Mesh, netnsTestOptions, waitFor, type Pod } from './harness.js';
import { countBy, curlTag, tempDir, writeConfig } from './l4-helpers.js';
import { curl, initOk, startTool } from './proxy-helpers.js';
import { outputLines, REMORA_BIN, startProxy, type RunningProxy } from './remora-process.js';

const CHROMIUM = process.env.REMORA_CHROMIUM ?? '/usr/bin/chromium';
const base = netnsTestOptions();
const noBrowser = !existsSync(CHROMIUM) && process.env.CI === undefined ? `no chromium at ${CHROMIUM} (apt-get install chromium)` : undefined;
const opts = { ...base, ...(base.skip === undefined && noBrowser !== undefined ? { skip: noBrowser } : {}), timeout: 300_000 };

const WRITE_TOKEN = 'ui-demo-write-0123456789abcdef';
const SIDECAR_TOKEN = 'ui-demo-sidecar-0123456789abcdef';
const CONTROL_PORT = 15012;
const REQUESTS = 20;
const WAIT = { timeout: 30_000 };
const CLIENT_ID = 'spiffe://cluster.local/ns/demo/sa/client';
const SERVER_ID = 'spiffe://cluster.local/ns/demo/sa/server';

interface RouteJson { version: number; spec: Record<string, string> }

/** "measured 80.0% (412 req)" -> {share: 80, requests: 412}; undefined before a number shows. */
async function measured(page: Page, backend: string): Promise<{ share: number; requests: number } | undefined> {
  const text = await page.locator(`.card[data-route="web"] [data-measured="${backend}"]`).textContent() ?? '';
  const m = /^measured (\d+(?:\.\d)?)% \((\d+) req\)$/.exec(text);
  return m === null ? undefined : { share: Number(m[1]), requests: Number(m[2]) };
}

describe('web UI against real sidecars in network namespaces with real traffic', opts, () => {
  let mesh: Mesh;
  let cpPod: Pod;
  let client: Pod;
  let server: Pod;
  let legacy: Pod;
  let control: ChildProcess | undefined;
  let controlLines: string[] = [];
  const cars: RunningProxy[] = [];
  let vip = '';
  let browser: Browser | undefined;
  let page: Page;
  const pageErrors: string[] = [];
  const external: string[] = [];
  let stopTraffic = false;
  let traffic: Promise<number> = Promise.resolve(0);
  const tmp = tempDir('remora-ui-demo-');
  const dataDir = join(tmp.dir, 'control');
  const rootFile = join(dataDir, 'root-cert.pem');
  const shots = process.env.REMORA_UI_SCREENSHOTS ?? join(tmp.dir, 'shots');
  const url = (): string => `https://${cpPod.ip4}:${CONTROL_PORT}`;

  /** The control plane's API from inside its pod (curl, TLS verified against the mesh root). */
  async function apiGet<T>(path: string): Promise<T> {
    const r = await cpPod.exec(['curl', '-sS', '--max-time', '5', '--cacert', rootFile, '-H', `authorization: Bearer ${WRITE_TOKEN}`, `${url()}${path}`]);
    assert.equal(r.code, 0, `GET ${path}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  /** Which version answered each of REQUESTS requests from the client pod to web's address. */
  async function split(): Promise<Record<string, number>> {
    const tags: string[] = [];
    for (let i = 0; i < REQUESTS; i++) tags.push(await curlTag(client, vip, 80));
    return countBy(tags);
  }

  before(async () => {
    if (opts.skip !== undefined) return;
    mkdirSync(shots, { recursive: true });
    mesh = await Mesh.create({ ipv6: false });
    cpPod = await mesh.addPod('control');
    client = await mesh.addPod('client');
    server = await mesh.addPod('server');
    legacy = await mesh.addPod('legacy');
    vip = `${mesh.prefix4}.100`;
    const tokens = writeConfig(tmp.dir, 'tokens', [`write:${WRITE_TOKEN}`, `sidecar:${SIDECAR_TOKEN}`]);
    chmodSync(tokens, 0o600);
    control = cpPod.spawn([process.execPath, REMORA_BIN, 'control', '--data-dir', dataDir, '--listen', `${cpPod.ip4}:${CONTROL_PORT}`, '--tokens-file', tokens]);
    const lines = outputLines(control);
    controlLines = lines;
    await waitFor('remora control to listen', async () => {
      if (control?.exitCode !== null) throw new Error(`remora control exited: ${lines.join('\n')}`);
      return lines.some((l) => l.includes('"event":"control.listening"')) && existsSync(rootFile) ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100 });

    // The demo's mesh: web (v1, v2) over mesh mTLS, its route at 100/0.
    const meshIni = writeConfig(tmp.dir, 'mesh.ini', [
      '[service web]', `addresses = ${vip}:80`, 'protocol = http', 'mtls = true', `identities = ${SERVER_ID}`,
      `endpoints = ${server.ip4}:8081 subset=v1, ${server.ip4}:8082 subset=v2`,
      '', '[route web]', 'service = web', 'backends = web/v1=100, web/v2=0',
    ]);
    const applied = await cpPod.exec([process.execPath, REMORA_BIN, 'ctl', '--server', url(), '--token', WRITE_TOKEN, '--ca-file', rootFile, 'apply', '-f', meshIni]);
    assert.equal(applied.code, 0, applied.stderr);
    await startTool(server, ['http-app', '::', '8081', 'v1']);
    await startTool(server, ['http-app', '::', '8082', 'v2']);
    const subscribe = (pod: Pod, id: string | undefined): string => {
      const lines = ['[proxy]', `control = ${url()}`, `control_token = ${SIDECAR_TOKEN}`, `control_ca_file = ${rootFile}`];
      if (id !== undefined) {
        const dir = join(tmp.dir, `identity-${pod.name}`);
        mkdirSync(dir, { recursive: true });
        chownSync(dir, 1337, 1337);
        lines.push(`identity_dir = ${dir}`, `spiffe_id = ${id}`);
        if (pod === server) lines.push('mtls_mode = strict');
      }
      return writeConfig(tmp.dir, `${pod.name}.ini`, lines);
    };
    // The first certificate is fetched (CSR) before the proxy listens: the control port is not captured (as the demo).
    for (const pod of [client, server]) await initOk(pod, ['--exclude-outbound-ports', String(CONTROL_PORT)]);
    cars.push(await startProxy(client, ['--config', subscribe(client, CLIENT_ID)], { env: { POD_NAME: 'client' } }));
    cars.push(await startProxy(server, ['--config', subscribe(server, SERVER_ID)], { env: { POD_NAME: 'server' } }));
    await waitFor('both sidecars SYNCED', async () => {
      const v = await apiGet<{ sidecars: { name: string; status: string }[] }>('/api/v1/sidecars');
      return ['client', 'server'].every((n) => v.sidecars.some((x) => x.name === n && x.status === 'SYNCED')) ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    await waitFor('the client reaching web v1 through both sidecars', async () => ((await curl(client, vip, 80)).code === 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 250 });

    // Real traffic all along: one request after another from the client pod (bounded in count and time).
    const deadline = Date.now() + 280_000;
    traffic = (async () => {
      let n = 0;
      while (!stopTraffic && n < 20_000 && Date.now() < deadline) { await curl(client, vip, 80); n++; }
      return n;
    })();

    // chromium inside the control pod's network namespace (the pods' addresses exist only there and on the bridge).
    const wrapper = join(tmp.dir, 'chromium-in-pod.sh');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${cpPod.ns} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    browser = await chromium.launch({ executablePath: wrapper, args: ['--no-sandbox'] });
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 860 } });
    page = await context.newPage();
    page.on('pageerror', (e) => { pageErrors.push(e.message); });
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text()); });
    page.on('request', (r) => { if (!r.url().startsWith(`${url()}/`)) external.push(r.url()); });
    await page.goto(url());
  });

  after(async () => {
    if (opts.skip !== undefined) return;
    stopTraffic = true;
    await traffic.catch(() => 0);
    await browser?.close().catch(() => undefined);
    await mesh?.destroy();
    tmp.remove();
  });

  test('log in; the demo\'s services and live numbers: the graph edge client -> web over mTLS, endpoints, sidecars', async () => {
    try {
      await page.getByLabel('Token').fill(WRITE_TOKEN);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.locator('#live', { hasText: 'live' }).waitFor(WAIT);
      // The sidecars report golden metrics every 5 s; the Overview asks every 5 s.
      const edge = page.locator('#mesh-graph g.edge[data-edge="client->web"]');
      await edge.waitFor({ timeout: 60_000 });
      assert.equal(await edge.locator('[data-col="mtls"]').textContent(), '✓ mTLS');
      assert.ok(Number(await edge.locator('[data-col="rps"]').textContent()) > 0);
      assert.match(await edge.locator('[data-col="latency"]').textContent() ?? '', /^p50 [\d.]+ · p95 [\d.]+ · p99 [\d.]+ ms$/);
      // The success rate shown is the control plane's (a request the sidecars refused while they were starting would
      // count; the requests since all succeed): the page and the API agree, read around one refresh.
      await waitFor('the page\'s success rate of client -> web to equal the API\'s', async () => {
        const shown = await edge.locator('[data-col="success"]').textContent();
        const m = await apiGet<{ edges: { source: string; destination: string; successRate: number }[] }>('/api/v1/metrics?window=1m');
        const rate = m.edges.find((e) => e.source === 'client' && e.destination === 'web')?.successRate;
        return rate !== undefined && shown === `${(Math.round(rate * 1000) / 10).toFixed(1)}%` && rate > 0.9 ? true : undefined;
      }, { timeoutMs: 30_000, intervalMs: 500 });
      assert.match(await page.locator('#metrics-services tr[data-service="web"] [data-health]').textContent() ?? '', /^(healthy|degraded)$/);
      await page.screenshot({ path: join(shots, 'demo-overview.png'), fullPage: true });

      await page.getByRole('button', { name: 'Services' }).click();
      const ep = page.locator(`#endpoints-table tr[data-endpoint="web ${server.ip4}:8081"]`);
      await ep.locator('[data-col="health"]', { hasText: /^healthy on [1-9]/ }).waitFor(WAIT);
      assert.equal(await ep.locator('[data-col="labels"]').textContent(), 'subset=v1');

      await page.getByRole('button', { name: 'Sidecars' }).click();
      for (const [name, id] of [['client', CLIENT_ID], ['server', SERVER_ID]] as const) {
        const row = page.locator(`tr[data-sidecar="${name}"]`);
        await row.locator('[data-status="SYNCED"]').waitFor(WAIT);
        await row.locator('[data-ready="yes"]').waitFor(WAIT);
        await row.locator('[data-col="identity"]', { hasText: id }).waitFor(WAIT);
        // Certificates from the control plane's CA: valid for hours, so not within 7 days of expiry... unless the CA's
        // default lifetime is short; either way the page names it, and the root is far away.
        assert.match(await row.locator('[data-col="cert-expiry"]').getAttribute('data-expiry') ?? '', /^(ok|soon)$/);
        assert.equal(await row.locator('[data-col="root-expiry"]').getAttribute('data-expiry'), 'ok');
      }
    } catch (err) {
      process.stderr.write(`--- page errors ---\n${pageErrors.join('\n')}\n--- control ---\n${controlLines.slice(-30).join('\n')}\n`);
      throw err;
    }
  });

  test('a slider moved and applied: the sidecars route to v2 and the page\'s measured split counts it; rollback returns to v1', async () => {
    await page.getByRole('button', { name: 'Traffic shifting' }).click();
    const card = page.locator('.card[data-route="web"]');
    await page.getByLabel('Time window').selectOption('1m');
    const before = await waitFor('the measured split of web/v1', async () => {
      const m = await measured(page, 'web/v1');
      return m !== undefined && m.requests > 0 && m.share === 100 ? m : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    assert.deepEqual(await split(), { v1: REQUESTS });

    // The keyboard on v2's slider, then v1's to 0: the preview says 100 % v2 before anything is sent.
    const v2 = card.locator('input[type=range][data-backend="web/v2"]');
    await v2.focus();
    for (let i = 0; i < 100; i++) await page.keyboard.press('ArrowRight');
    await card.locator('input[type=range][data-backend="web/v1"]').fill('0');
    assert.equal(await card.locator('[data-preview="web/v2"]').textContent(), '100%');
    await card.getByRole('button', { name: 'Apply' }).click();
    await card.locator('[data-result="ok"]', { hasText: 'Applied' }).waitFor(WAIT);
    assert.equal((await apiGet<RouteJson>('/api/v1/routes/web')).spec.backends, 'web/v1=0, web/v2=100');
    await waitFor('the client sidecar routing to v2', async () => ((await curlTag(client, vip, 80)) === 'v2' ? true : undefined), { timeoutMs: 20_000, intervalMs: 100 });
    assert.deepEqual(await split(), { v2: REQUESTS });
    const shifted = await waitFor('the page to count requests to web/v2', async () => {
      const m = await measured(page, 'web/v2');
      return m !== undefined && m.requests >= REQUESTS ? m : undefined;
    }, { timeoutMs: 40_000, intervalMs: 250 });
    assert.ok(shifted.share > 0);
    await page.screenshot({ path: join(shots, 'demo-traffic.png'), fullPage: true });

    // One click back to the weights before the change.
    await card.locator('button[data-action="rollback"]', { hasText: 'Roll back to web/v1=100, web/v2=0' }).click();
    await card.locator('[data-result="ok"]', { hasText: 'Rolled back' }).waitFor(WAIT);
    assert.equal((await apiGet<RouteJson>('/api/v1/routes/web')).spec.backends, 'web/v1=100, web/v2=0');
    await waitFor('the client sidecar routing to v1', async () => ((await curlTag(client, vip, 80)) === 'v1' ? true : undefined), { timeoutMs: 20_000, intervalMs: 100 });
    assert.deepEqual(await split(), { v1: REQUESTS });
    const v1Before = (await measured(page, 'web/v1'))?.requests ?? 0;
    await waitFor('the page to count more requests to web/v1', async () => {
      const m = await measured(page, 'web/v1');
      return m !== undefined && m.requests >= v1Before + REQUESTS ? m : undefined;
    }, { timeoutMs: 40_000, intervalMs: 250 });
    assert.ok(before.requests > 0);
  });

  test('a sidecar that cannot apply the config (no identity under mTLS) is flagged NACKED with its error', async () => {
    const cfg = writeConfig(tmp.dir, 'legacy.ini', ['[proxy]', `control = ${url()}`, `control_token = ${SIDECAR_TOKEN}`, `control_ca_file = ${rootFile}`]);
    cars.push(await startProxy(legacy, ['--config', cfg], { env: { POD_NAME: 'legacy' } }));
    await page.getByRole('button', { name: /Sidecars/ }).click();
    await page.locator('tr[data-sidecar="legacy"] [data-status="NACKED"]').waitFor(WAIT);
    await page.locator('#nack-alert', { hasText: 'legacy' }).waitFor(WAIT);
    assert.match(await page.locator('tr[data-nack="legacy"]').textContent() ?? '', /identity_dir/);
    assert.match(await page.getByRole('button', { name: /Sidecars/ }).textContent() ?? '', /⚠/);
    // The others stay SYNCED.
    assert.equal(await page.locator('tr[data-sidecar="client"] [data-status]').textContent(), 'SYNCED');
    await page.screenshot({ path: join(shots, 'demo-sidecars.png'), fullPage: true });
    assert.deepEqual(external, []);
    assert.deepEqual(pageErrors, []);
  });
});
