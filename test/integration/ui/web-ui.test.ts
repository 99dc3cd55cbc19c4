// The web UI in a real browser: Debian's chromium driven by playwright-core against a real `remora control` (dist/,
// over TLS) with a real `remora proxy --control` subscribed on loopback. Log in, see the Overview's golden metrics
// (from metrics reports posted as a sidecar) in two windows, see the services, shift weights with
// the keyboard and a slider, apply (seen in the page, the API and the sidecar's /config_dump), roll back, a 409 shown,
// a NACKed sidecar flagged, a read-only token refused. Screenshots go to $REMORA_UI_SCREENSHOTS when set (docs/ui/).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect, type ClientHttp2Session } from 'node:http2';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ControlProcess, READ_TOKEN, REMORA, WRITE_TOKEN, adminGet, api, freePorts, tempDir, waitFor } from '../control/control-harness.js';

const CHROMIUM = process.env.REMORA_CHROMIUM ?? '/usr/bin/chromium';
const SIDECAR_TOKEN = 'sidecar-token-0123456789abcdef';
const WAIT = { timeout: 15_000 };

interface SidecarJson { name: string; status: string; versionApplied: number }
interface RouteJson { version: number; spec: Record<string, string> }
interface DumpJson { routes: { name: string; backends: { weight: number }[] }[] }

const skip = !existsSync(CHROMIUM) && process.env.CI !== 'true' ? `no chromium at ${CHROMIUM} (apt-get install chromium)` : false;

test('the web UI: login, overview with golden metrics, services, traffic shifting with apply/rollback/409, sidecars with a NACK, read-only', { skip, timeout: 180_000 }, async () => {
  const tmp = tempDir('remora-ui-');
  const shots = process.env.REMORA_UI_SCREENSHOTS ?? join(tmp.dir, 'shots');
  mkdirSync(shots, { recursive: true });
  const [controlPort = 0, outbound = 0, inbound = 0, admin = 0] = await freePorts(4);
  const dataDir = join(tmp.dir, 'data');
  let cp = new ControlProcess(dataDir, ['--token', `sidecar:${SIDECAR_TOKEN}`], `127.0.0.1:${controlPort}`);
  const proxyIni = join(tmp.dir, 'proxy.ini');
  writeFileSync(proxyIni, `[proxy]\noutbound_port = ${outbound}\ninbound_port = ${inbound}\nlisten_address = 127.0.0.1\n`
    + `admin_address = 127.0.0.1:${admin}\nuid = ${process.geteuid?.() ?? 0}\ngid = ${process.getegid?.() ?? 0}\n`
    + 'readiness_probe_interval = off\ndrain_grace = 0\n');
  let proxy: ChildProcess | undefined;
  let proxyExit: Promise<unknown> = Promise.resolve();
  let proxyOut = '';
  let browser: Browser | undefined;
  let podB: ClientHttp2Session | undefined;
  const pageErrors: string[] = [];
  try {
    await cp.ready();
    const ca = cp.root;
    const get = async <T>(path: string): Promise<T> => (await api(cp.url, ca, 'GET', path, { token: READ_TOKEN })).json as T;
    const routeWeights = async (): Promise<string> => (await get<RouteJson>('/api/v1/routes/web')).spec.backends ?? '';
    const dumpWeights = async (): Promise<number[] | undefined> => ((await adminGet(admin, '/config_dump')).json as DumpJson).routes.find((r) => r.name === 'web')?.backends.map((b) => b.weight);

    const seeded = await api(cp.url, ca, 'POST', '/api/v1/apply', {
      token: WRITE_TOKEN,
      body: JSON.stringify({ writes: [
        { kind: 'service', name: 'web', version: 0, spec: { addresses: '10.96.0.10:80', protocol: 'http', endpoints: '10.1.0.1:8080 subset=v1, 10.1.0.2:8080 subset=v1, 10.1.0.3:8080 subset=v2' } },
        { kind: 'service', name: 'api', version: 0, spec: { addresses: '10.96.0.11:80', endpoints: '10.1.1.1:9000' } },
        { kind: 'route', name: 'web', version: 0, spec: { service: 'web', backends: 'web/v1=100, web/v2=0' } },
        { kind: 'route', name: 'api', version: 0, spec: { service: 'api', backends: 'api' } },
        { kind: 'authorization', name: 'deny-legacy', version: 0, spec: { action: 'deny', from_namespaces: 'legacy' } },
        { kind: 'authorization', name: 'audit-all', version: 0, spec: { action: 'audit', from_namespaces: '*' } },
      ] }),
    });
    assert.equal(seeded.status, 200, seeded.text);
    const child = spawn(process.execPath, [REMORA, 'proxy', '--config', proxyIni, '--control', cp.url, '--token', SIDECAR_TOKEN, '--control-ca-file', cp.rootFile],
      { env: { ...process.env, POD_NAME: 'pod-a' }, stdio: ['ignore', 'pipe', 'pipe'] });
    proxy = child;
    child.stdout.on('data', (d: Buffer) => { proxyOut += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { proxyOut += d.toString(); });
    proxyExit = new Promise((r) => { child.on('close', r); });
    await waitFor('pod-a SYNCED', async () => (await get<{ sidecars: SidecarJson[] }>('/api/v1/sidecars')).sidecars.find((s) => s.name === 'pod-a' && s.status === 'SYNCED'));
    assert.deepEqual(await dumpWeights(), [100, 0]);

    // A second sidecar, pod-b, subscribed on the sync stream by the test itself, sends one status report (contract-14,
    // POST /api/v1/sync/status) with known values: not ready, a certificate expiring in 3 days, an expired root, web's
    // 10.1.0.3 ejected, policy counts and 80/20 requests on route web. pod-a's own reports come every 5 s.
    podB = connect(cp.url, { ca });
    podB.on('error', () => undefined);
    const syncB = podB.request({ ':path': '/api/v1/sync?name=pod-b&identity=', authorization: `Bearer ${SIDECAR_TOKEN}` });
    syncB.on('data', () => undefined);
    syncB.on('error', () => undefined);
    await waitFor('pod-b subscribed', async () => (await get<{ sidecars: SidecarJson[] }>('/api/v1/sidecars')).sidecars.find((s) => s.name === 'pod-b'));
    const day = 86_400_000;
    const status = await api(cp.url, ca, 'POST', '/api/v1/sync/status', { token: SIDECAR_TOKEN, body: JSON.stringify({
      name: 'pod-b', identity: '', epoch: 'b1', seq: 1, ready: false, readyReason: 'not ready: test',
      certificate: { identity: 'spiffe://mesh.test/ns/shop/sa/cart', notAfter: new Date(Date.now() + 3 * day).toISOString(), serial: '0a1b2c' },
      rootsNotAfter: [new Date(Date.now() - day).toISOString(), new Date(Date.now() + 300 * day).toISOString()],
      endpoints: [{ service: 'web', address: '10.1.0.3:8080', labels: { subset: 'v2' }, weight: 1, healthy: false, ejected: true, ejections: 2, activeConnections: 0 }],
      policies: [{ name: 'deny-legacy', action: 'deny', allowed: 0, denied: 3, audited: 0, wouldDeny: 0 }, { name: 'audit-all', action: 'audit', allowed: 0, denied: 0, audited: 10, wouldDeny: 4 }],
      routes: [{ route: 'web', service: 'web', backends: [{ backend: 'web/v1', weight: 100, requests: 80 }, { backend: 'web/v2', weight: 0, requests: 20 }] }],
    }) });
    assert.equal(status.status, 200, status.text);

    // The page itself, fetched with TLS verified against the mesh root: the CSP allows this origin only.
    const index = await api(cp.url, ca, 'GET', '/');
    assert.equal(index.status, 200);
    const csp = String(index.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    assert.match(csp, /connect-src 'self'/);
    assert.equal((await api(cp.url, ca, 'GET', '/vendor/preact.js')).status, 200);
    const whoami = await api(cp.url, ca, 'GET', '/api/v1/whoami', { token: READ_TOKEN });
    assert.deepEqual(whoami.json, { scope: 'read' });

    // The browser accepts the mesh root by ignoreHTTPSErrors (trusting a private CA in headless chromium is not simple).
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const external: string[] = [];
    const origin = cp.url; // the restarted control plane below listens on the same port
    const open = async (): Promise<Page> => {
      const context = await browser!.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 800 } });
      const page = await context.newPage();
      page.on('pageerror', (e) => { pageErrors.push(e.message); });
      // 4xx answers the test provokes (401, 403, 409) are logged by chromium as 'Failed to load resource'; anything else fails.
      page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text()); });
      page.on('request', (r) => { if (!r.url().startsWith(`${origin}/`)) external.push(r.url()); });
      await page.goto(origin);
      return page;
    };
    const page = await open();

    // Login: a wrong token is refused with a message; the write token gets in.
    await page.getByLabel('Token').fill('not-a-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('#login-error', { hasText: 'does not accept this token' }).waitFor(WAIT);
    await page.screenshot({ path: join(shots, 'login.png') });
    await page.getByLabel('Token').fill(WRITE_TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('#live', { hasText: 'live' }).waitFor(WAIT);
    assert.equal(await page.locator('#scope').textContent(), 'write access');

    // The Overview is the default view. Nothing has carried traffic yet: the empty state says so.
    await page.locator('#metrics-empty').waitFor(WAIT);
    assert.equal(await page.getByRole('button', { name: 'Overview' }).getAttribute('aria-current'), 'page');
    assert.equal(await page.locator('#metrics-services tbody tr').count(), 0);

    // Golden metrics: a sidecar's reports with known counts (the spawned sidecar cannot carry traffic on loopback).
    // Reports are cumulative: the second one's deltas are added, so web gets 4+1 then 2+2 more requests: 9, 3 of them
    // 5xx (66.7 % success), latencies 6 in (10, 25] ms and 3 in (25, 50] ms; web -> api is 4 plaintext 2xx; cart
    // gets 100 requests in the first report, 3 of them 5xx (97 %: degraded).
    const edge = (reporter: string, source: string, destination: string, mtls: boolean, requests: number[], latency: number[], tcpOpened: number) =>
      ({ reporter, source, destination, mtls, requests, latency, tcpOpened, tcpClosed: 0, tcpBytes: 100 * tcpOpened });
    const report = async (seq: number, edges: unknown[]): Promise<void> => {
      const r = await api(cp.url, ca, 'POST', '/api/v1/sync/metrics', { token: SIDECAR_TOKEN, body: JSON.stringify({ name: 'pod-web', identity: '', epoch: 'e1', seq, edges }) });
      assert.equal(r.status, 200, r.text);
    };
    await report(1, [edge('destination', 'frontend', 'web', true, [4, 0, 0, 1], [0, 0, 0, 0, 3, 2], 1),
      edge('source', 'web', 'api', false, [2, 0, 0, 0], [0, 0, 0, 2], 1),
      edge('destination', 'frontend', 'cart', true, [97, 0, 0, 3], [0, 0, 90, 10], 0)]);
    await report(2, [edge('destination', 'frontend', 'web', true, [6, 0, 0, 3], [0, 0, 0, 0, 6, 3], 2),
      edge('source', 'web', 'api', false, [4, 0, 0, 0], [0, 0, 0, 4], 1)]);
    const metrics = await get<{ services: { name: string; requests: number; successRate: number }[] }>('/api/v1/metrics?window=1m');
    assert.deepEqual(metrics.services.map((s) => [s.name, s.requests, s.successRate]), [['api', 4, 1], ['cart', 100, 0.97], ['web', 9, 0.6667]]);
    const webStat = page.locator('#metrics-services tr[data-service="web"]');
    await webStat.waitFor(WAIT); // the next 5 s refresh
    assert.equal(await webStat.locator('[data-col="success"]').textContent(), '66.7%');
    assert.equal(await webStat.locator('[data-col="requests"]').textContent(), '9');
    assert.notEqual(Number(await webStat.locator('[data-col="rps"]').textContent()), 0);
    assert.match(await webStat.locator('[data-col="p99"]').textContent() ?? '', /^\d+(\.\d+)? ms$/);
    assert.equal(await webStat.locator('[data-col="tcp"]').textContent(), '2');
    assert.equal(await webStat.locator('[data-health]').textContent(), 'failing');
    const apiStat = page.locator('#metrics-services tr[data-service="api"]');
    assert.equal(await apiStat.locator('[data-health]').textContent(), 'healthy');
    assert.equal(await apiStat.locator('[data-col="success"]').textContent(), '100.0%');
    assert.equal(await page.locator('#metrics-services tr[data-service="cart"] [data-health]').textContent(), 'degraded');
    const webEdge = page.locator('#metrics-edges tr[data-edge="frontend->web"]');
    assert.match(await webEdge.locator('th').textContent() ?? '', /frontend\s*→\s*web/);
    assert.equal(await webEdge.locator('[data-col="success"]').textContent(), '66.7%');
    assert.match(await webEdge.locator('[data-col="p99"]').textContent() ?? '', / ms$/);
    assert.equal(await webEdge.locator('[data-col="mtls"]').textContent(), '✓ mTLS');
    assert.equal(await page.locator('#metrics-edges tr[data-edge="web->api"] [data-col="mtls"]').textContent(), 'plaintext');
    assert.equal(await page.locator('#metrics-empty').count(), 0);
    // A wider window holds the same requests.
    await page.getByLabel('Time window').selectOption('15m');
    await page.locator('#overview[data-window="15m"]').waitFor(WAIT);
    assert.equal(await webStat.locator('[data-col="requests"]').textContent(), '9');
    assert.equal(await webStat.locator('[data-col="success"]').textContent(), '66.7%');
    await page.screenshot({ path: join(shots, 'overview.png'), fullPage: true });

    // Services: endpoints, subsets, routes with their backends and weights.
    await page.getByRole('button', { name: 'Services' }).click();
    const webRow = page.locator('#services-table tr[data-service="web"]');
    await webRow.waitFor(WAIT);
    assert.match(await webRow.textContent() ?? '', /10\.1\.0\.3:8080/);
    assert.match(await webRow.locator('.subsets').textContent() ?? '', /v1 \(2 endpoints\)v2 \(1 endpoint\)/);
    assert.equal(await page.locator('#services-table tbody tr').count(), 2);
    const webRoute = page.locator('#routes-table tr[data-route="web"]');
    assert.equal(await webRoute.locator('[data-backend="web/v1"]').textContent(), 'web/v1 weight 100 (100%)');
    // Endpoint health as the sidecars report it: 10.1.0.3 ejected on pod-b, healthy on pod-a (once pod-a reported).
    const ep3 = page.locator('#endpoints-table tr[data-endpoint="web 10.1.0.3:8080"]');
    await ep3.locator('[data-col="health"]', { hasText: 'ejected on 1 of 2' }).waitFor(WAIT);
    assert.equal(await ep3.locator('[data-col="ejections"]').textContent(), '2');
    assert.equal(await ep3.locator('[data-col="labels"]').textContent(), 'subset=v2');
    assert.equal(await page.locator('#endpoints-table tr[data-endpoint="web 10.1.0.1:8080"] [data-col="health"]').textContent(), 'healthy on 1 of 1');
    assert.equal(await webRow.locator('[data-col="endpoint-health"]').textContent(), '1 of 3 ejected');
    // Choosing a service narrows the endpoints to it.
    await webRow.getByRole('button', { name: 'web' }).click();
    await page.locator('#endpoints-title', { hasText: 'Endpoints of web' }).waitFor(WAIT);
    assert.deepEqual(await page.locator('#endpoints-table tbody tr[data-endpoint]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-endpoint'))),
      ['web 10.1.0.1:8080', 'web 10.1.0.2:8080', 'web 10.1.0.3:8080']);
    await page.screenshot({ path: join(shots, 'services.png'), fullPage: true });

    // Traffic shifting: keyboard on one slider, fill on the other; the preview follows before anything is sent.
    await page.getByRole('button', { name: 'Traffic shifting' }).click();
    const card = page.locator('.card[data-route="web"]');
    // The measured split (pod-b's 80/20 requests) beside the configured 100/0.
    await page.getByLabel('Time window').selectOption('15m');
    await card.locator('[data-measured="web/v2"]', { hasText: 'measured 20.0% (20 req)' }).waitFor(WAIT);
    assert.equal(await card.locator('[data-measured="web/v1"]').textContent(), 'measured 80.0% (80 req)');
    assert.equal(await card.locator('[data-preview="web/v2"]').textContent(), '0%');
    const v2 = card.locator('input[type=range][data-backend="web/v2"]');
    await v2.focus();
    for (let i = 0; i < 10; i++) await page.keyboard.press('ArrowRight');
    assert.equal(await v2.inputValue(), '10');
    await card.locator('input[type=range][data-backend="web/v1"]').fill('90');
    assert.equal(await card.locator('[data-preview="web/v2"]').textContent(), '10%');
    assert.equal(await card.locator('[data-preview="web/v1"]').textContent(), '90%');
    assert.equal(await routeWeights(), 'web/v1=100, web/v2=0', 'nothing sent before Apply');
    await page.screenshot({ path: join(shots, 'traffic.png'), fullPage: true });
    await card.getByRole('button', { name: 'Apply' }).click();
    await card.locator('[data-result="ok"]', { hasText: 'Applied' }).waitFor(WAIT);
    assert.equal(await routeWeights(), 'web/v1=90, web/v2=10');
    await waitFor('the sidecar to route 90/10', async () => { const w = await dumpWeights(); return w?.join() === '90,10' ? w : undefined; });

    // One-click rollback to the weights before the change.
    const rollback = card.locator('button[data-action="rollback"]');
    await card.locator('button[data-action="rollback"]', { hasText: 'Roll back to web/v1=100, web/v2=0' }).waitFor(WAIT);
    await rollback.click();
    await card.locator('[data-result="ok"]', { hasText: 'Rolled back' }).waitFor(WAIT);
    assert.equal(await routeWeights(), 'web/v1=100, web/v2=0');
    await waitFor('the sidecar to route 100/0', async () => { const w = await dumpWeights(); return w?.join() === '100,0' ? w : undefined; });
    await page.getByRole('button', { name: 'Services' }).click();
    await webRoute.locator('[data-backend="web/v1"]', { hasText: 'weight 100 (100%)' }).waitFor(WAIT);

    // A concurrent change wins over a stale edit: the page sends the version it read and shows the 409.
    await page.getByRole('button', { name: 'Traffic shifting' }).click();
    await card.locator('input[type=range][data-backend="web/v2"]').fill('50');
    const current = await get<RouteJson>('/api/v1/routes/web');
    const other = await api(cp.url, ca, 'POST', '/api/v1/routes/web/weights', { token: WRITE_TOKEN, body: JSON.stringify({ weights: { 'web/v1': 80, 'web/v2': 20 }, version: current.version }) });
    assert.equal(other.status, 200, other.text);
    await card.locator('.sub', { hasText: 'the route changed since' }).waitFor(WAIT);
    await card.getByRole('button', { name: 'Apply' }).click();
    await card.locator('[role="alert"][data-result="error"]', { hasText: 'Conflict (409)' }).waitFor(WAIT);
    await page.screenshot({ path: join(shots, 'traffic-conflict.png'), fullPage: true });
    assert.equal(await routeWeights(), 'web/v1=80, web/v2=20', 'the stale edit was not applied');
    await card.getByRole('button', { name: 'Load the current weights' }).click();
    assert.equal(await card.locator('input[type=range][data-backend="web/v2"]').inputValue(), '20');

    // Sidecars: SYNCED, then a change it cannot apply (mtls without an identity) is flagged as NACKED with its error.
    await page.getByRole('button', { name: 'Sidecars' }).click();
    await page.locator('tr[data-sidecar="pod-a"] [data-status="SYNCED"]').waitFor(WAIT);
    const web = await get<RouteJson>('/api/v1/services/web');
    const mtls = await api(cp.url, ca, 'PUT', '/api/v1/services/web', { token: WRITE_TOKEN, body: JSON.stringify({ spec: { ...web.spec, mtls: 'true' }, version: web.version }) });
    assert.equal(mtls.status, 200, mtls.text);
    await page.locator('tr[data-sidecar="pod-a"] [data-status="NACKED"]').waitFor(WAIT);
    await page.locator('#nack-alert', { hasText: 'pod-a' }).waitFor(WAIT);
    assert.match(await page.locator('tr[data-nack="pod-a"]').textContent() ?? '', /identity_dir/);
    assert.match(await page.getByRole('button', { name: /Sidecars/ }).textContent() ?? '', /⚠/);
    // Readiness, certificate and root expiry: pod-b not ready, its certificate expires within 7 days, a root expired.
    const podBRow = page.locator('tr[data-sidecar="pod-b"]');
    assert.equal(await podBRow.locator('[data-ready]').textContent(), 'NOT READY');
    assert.equal(await podBRow.locator('[data-col="identity"]').textContent(), 'spiffe://mesh.test/ns/shop/sa/cart');
    assert.equal(await podBRow.locator('[data-col="cert-expiry"]').getAttribute('data-expiry'), 'soon');
    assert.match(await podBRow.locator('[data-col="cert-expiry"]').textContent() ?? '', /^expires in (2\.9|3\.0) days$/);
    assert.equal(await podBRow.locator('[data-col="root-expiry"]').getAttribute('data-expiry'), 'expired');
    assert.match(await podBRow.locator('[data-col="root-expiry"]').textContent() ?? '', /^EXPIRED/);
    assert.match(await page.locator('#expiry-alert').textContent() ?? '', /pod-b \(root expired\)/);
    await page.locator('tr[data-sidecar="pod-a"] [data-ready="yes"]').waitFor(WAIT);
    assert.equal(await page.locator('tr[data-sidecar="pod-a"] [data-col="cert-expiry"]').textContent(), 'no certificate');
    await page.screenshot({ path: join(shots, 'sidecars.png'), fullPage: true });

    // Policies: deny first, then audit, with their conditions (counts are not shown yet).
    await page.getByRole('button', { name: 'Policies' }).click();
    await page.locator('#policies-table tr[data-policy="deny-legacy"]').waitFor(WAIT);
    assert.deepEqual(await page.locator('#policies-table [data-action-kind]').allTextContents(), ['deny', 'audit']);
    assert.match(await page.locator('#policies-table tr[data-policy="deny-legacy"]').textContent() ?? '', /from_namespaces = legacy/);
    // Their counts over the window: pod-b's report (deny-legacy denied 3; audit-all audited 10, would deny 4).
    const denyRow = page.locator('#policies-table tr[data-policy="deny-legacy"]');
    await denyRow.locator('[data-col="denied"]', { hasText: '3' }).waitFor(WAIT);
    assert.equal(await denyRow.locator('[data-col="denied"]').textContent(), '3');
    assert.equal(await denyRow.locator('[data-col="would-deny"]').textContent(), 'n/a');
    const auditRow = page.locator('#policies-table tr[data-policy="audit-all"]');
    assert.equal(await auditRow.locator('[data-col="audited"]').textContent(), '10');
    assert.equal(await auditRow.locator('[data-col="would-deny"]').textContent(), '4');
    await page.getByLabel('Time window').selectOption('1m');
    await page.locator('#policies[data-window="1m"]').waitFor(WAIT);
    await page.screenshot({ path: join(shots, 'policies.png'), fullPage: true });

    // A read-only token sees everything and changes nothing: controls disabled with a note; the API answers 403.
    const viewer = await open();
    await viewer.getByLabel('Token').fill(READ_TOKEN);
    await viewer.getByRole('button', { name: 'Log in' }).click();
    await viewer.locator('#live', { hasText: 'live' }).waitFor(WAIT);
    assert.equal(await viewer.locator('#scope').textContent(), 'read-only');
    await viewer.getByRole('button', { name: 'Traffic shifting' }).click();
    await viewer.locator('#read-only-note').waitFor(WAIT);
    const vcard = viewer.locator('.card[data-route="web"]');
    assert.equal(await vcard.getByRole('button', { name: 'Apply' }).isDisabled(), true);
    assert.equal(await vcard.locator('input[type=range][data-backend="web/v1"]').isDisabled(), true);
    await viewer.screenshot({ path: join(shots, 'traffic-read-only.png'), fullPage: true });
    const refused = await viewer.evaluate(async (token) => {
      const r = await fetch('/api/v1/routes/web/weights', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ weights: { 'web/v1': 1, 'web/v2': 1 }, version: 1 }) });
      return r.status;
    }, READ_TOKEN);
    assert.equal(refused, 403);
    await viewer.getByRole('button', { name: 'Sidecars' }).click();
    await viewer.locator('tr[data-sidecar="pod-a"] [data-status="NACKED"]').waitFor(WAIT);

    // The session survives a reload (sessionStorage) and the page never fetched anything off this origin.
    await viewer.reload();
    await viewer.locator('#scope', { hasText: 'read-only' }).waitFor(WAIT);

    // The control plane restarts: the page says so, reconnects by itself and follows changes made after.
    await viewer.getByRole('button', { name: 'Services' }).click();
    await cp.stop();
    await viewer.locator('#live', { hasText: 'reconnecting' }).waitFor(WAIT);
    cp = new ControlProcess(dataDir, ['--token', `sidecar:${SIDECAR_TOKEN}`], `127.0.0.1:${controlPort}`);
    await cp.ready();
    await viewer.locator('#live', { hasText: 'live' }).waitFor({ timeout: 30_000 });
    const route = await get<RouteJson>('/api/v1/routes/web');
    const later = await api(cp.url, ca, 'POST', '/api/v1/routes/web/weights', { token: WRITE_TOKEN, body: JSON.stringify({ weights: { 'web/v1': 30, 'web/v2': 70 }, version: route.version }) });
    assert.equal(later.status, 200, later.text);
    await viewer.locator('#routes-table tr[data-route="web"] [data-backend="web/v2"]', { hasText: 'weight 70 (70%)' }).waitFor(WAIT);

    assert.deepEqual(external, []);
    assert.deepEqual(pageErrors, []);
  } catch (err) {
    process.stderr.write(`--- page errors ---\n${pageErrors.join('\n')}\n--- proxy output ---\n${proxyOut.slice(-3000)}\n--- control output ---\n${cp.output.slice(-3000)}\n`);
    throw err;
  } finally {
    podB?.destroy();
    await browser?.close();
    if (proxy !== undefined && proxy.exitCode === null && proxy.signalCode === null) {
      proxy.kill('SIGTERM');
      await Promise.race([proxyExit, new Promise((r) => { setTimeout(r, 10_000).unref(); })]);
      if (proxy.exitCode === null && proxy.signalCode === null) proxy.kill('SIGKILL');
    }
    await cp.stop();
    tmp.remove();
  }
});
