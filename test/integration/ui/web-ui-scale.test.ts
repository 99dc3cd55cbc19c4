// The web UI at scale, in a real browser (Debian's chromium driven by playwright-core) against a real `remora control`
// (dist/, over TLS): 1,000 services and 1,000 routes in 10 namespaces in the desired state and golden metrics for
// 991 edges posted as a sidecar. Checks the drawn service graph (edges with their numbers, health in words, keyboard focus), that the
// whole mesh is too big to draw until a namespace is picked, the namespace filter of the Overview and the Services
// view, the virtualised tables (the DOM holds far fewer rows than the state; scrolling shows the last one), and
// Traffic shifting's 50 cards at most with a name filter.
// (The contract-14 columns are checked against the real status API in web-ui.test.ts and ui-demo.netns.test.ts.)
// Screenshots go to $REMORA_UI_SCREENSHOTS when set (docs/ui/).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ControlProcess, READ_TOKEN, WRITE_TOKEN, api, tempDir } from '../control/control-harness.js';

const CHROMIUM = process.env.REMORA_CHROMIUM ?? '/usr/bin/chromium';
const SIDECAR_TOKEN = 'sidecar-token-0123456789abcdef';
const WAIT = { timeout: 20_000 };
const N = 1_000;
const NAMESPACES = 10;

const skip = !existsSync(CHROMIUM) && process.env.CI !== 'true' ? `no chromium at ${CHROMIUM} (apt-get install chromium)` : false;

/** svc-0042.ns2: the namespace is the name's second label (how the UI reads namespaces from names). */
const svc = (i: number): string => `svc-${String(i).padStart(4, '0')}.ns${i % NAMESPACES}`;

async function openPage(browser: Browser, origin: string, errors: string[], external: string[]): Promise<Page> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => { errors.push(e.message); });
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text()); });
  page.on('request', (r) => { if (!r.url().startsWith(`${origin}/`)) external.push(r.url()); });
  await page.goto(origin);
  return page;
}

async function login(page: Page, token: string): Promise<void> {
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#live', { hasText: 'live' }).waitFor(WAIT);
}

test('the web UI at 1,000 services: the drawn graph with its numbers, the namespace filter, virtualised tables', { skip, timeout: 240_000 }, async () => {
  const tmp = tempDir('remora-ui-scale-');
  const shots = process.env.REMORA_UI_SCREENSHOTS ?? join(tmp.dir, 'shots');
  mkdirSync(shots, { recursive: true });
  const cp = new ControlProcess(join(tmp.dir, 'data'), ['--token', `sidecar:${SIDECAR_TOKEN}`]);
  let browser: Browser | undefined;
  const errors: string[] = [];
  const external: string[] = [];
  try {
    await cp.ready();
    const ca = cp.root;
    const writes = [];
    for (let i = 0; i < N; i++) {
      writes.push({ kind: 'service', name: svc(i), version: 0, spec: { addresses: `10.96.${Math.floor(i / 250)}.${i % 250}:80`, endpoints: `10.1.${Math.floor(i / 250)}.${i % 250}:8080 subset=v1` } });
      writes.push({ kind: 'route', name: svc(i), version: 0, spec: { service: svc(i), backends: `${svc(i)}/v1` } });
    }
    const seeded = await api(cp.url, ca, 'POST', '/api/v1/apply', { token: WRITE_TOKEN, body: JSON.stringify({ writes }) });
    assert.equal(seeded.status, 200, seeded.text);

    // Golden metrics: in each namespace k a binary tree of calls (service j of the namespace, svc-(10j+k), calls
    // its children 2j+1 and 2j+2), mTLS when the caller's index is even; and in ns1 a client workload "frontend.ns1"
    // calling the root svc-0001.ns1 with 100 requests, 10 of them 5xx (90 %: failing), all mTLS.
    const edge = (source: string, destination: string, mtls: boolean, requests: number[], latency: number[]) =>
      ({ reporter: 'destination', source, destination, mtls, requests, latency, tcpOpened: 0, tcpClosed: 0, tcpBytes: 0 });
    const edges = [edge('frontend.ns1', svc(1), true, [90, 0, 0, 10], [0, 0, 0, 50, 40, 10])];
    const perNs = N / NAMESPACES;
    for (let k = 0; k < NAMESPACES; k++) {
      for (let j = 1; j < perNs; j++) {
        const parent = NAMESPACES * Math.floor((j - 1) / 2) + k;
        edges.push(edge(svc(parent), svc(NAMESPACES * j + k), parent % 2 === 0, [20, 0, 0, 0], [0, 0, 20]));
      }
    }
    const post = async (seq: number, body: unknown[]): Promise<void> => {
      const r = await api(cp.url, ca, 'POST', '/api/v1/sync/metrics', { token: SIDECAR_TOKEN, body: JSON.stringify({ name: 'pod-load', identity: '', epoch: 'e1', seq, edges: body }) });
      assert.equal(r.status, 200, r.text);
    };
    // The first report of a sidecar is counted from zero (seq 1); the second adds the same again.
    await post(1, edges);
    await post(2, edges.map((e) => ({ ...e, requests: e.requests.map((x) => x * 2), latency: e.latency.map((x) => x * 2) })));
    const metrics = (await api(cp.url, ca, 'GET', '/api/v1/metrics?window=1m', { token: READ_TOKEN })).json as { services: { name: string; requests: number }[]; edges: unknown[] };
    const front = metrics.services.find((s) => s.name === svc(1));
    assert.equal(front?.requests, 200, 'svc-0001 (a root) gets only frontend\'s 200 requests');
    const servicesInMetrics = metrics.services.length;
    assert.equal(servicesInMetrics, N - NAMESPACES + 1, "every service but the 9 roots other than svc-0001 is called");

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const page = await openPage(browser, cp.url, errors, external);
    await login(page, READ_TOKEN);

    // The whole mesh is too big to draw: the page says so and the tables still list every service, virtualised.
    await page.locator('#graph-too-big').waitFor(WAIT);
    assert.equal(await page.locator('#mesh-graph').count(), 0);
    const svcBox = page.locator('.vbox:has(#metrics-services)');
    await page.locator(`.vbox[data-rows="${servicesInMetrics}"]:has(#metrics-services)`).waitFor(WAIT);
    const rendered = await page.locator('#metrics-services tbody tr[data-service]').count();
    assert.ok(rendered > 0 && rendered < 60, `${rendered} rows in the DOM for ${servicesInMetrics} services`);

    // Namespace ns1: the graph is drawn with its edges' numbers and the tables hold only ns1's services.
    await page.getByLabel('Namespace', { exact: true }).selectOption('ns1');
    await page.locator('#overview[data-namespace="ns1"]').waitFor(WAIT);
    const graphEdge = page.locator(`#mesh-graph g.edge[data-edge="frontend.ns1->${svc(1)}"]`);
    await graphEdge.waitFor(WAIT);
    assert.equal(await graphEdge.locator('[data-col="success"]').textContent(), '90.0%');
    assert.equal(await graphEdge.locator('[data-col="health"]').textContent(), 'failing');
    assert.notEqual(Number(await graphEdge.locator('[data-col="rps"]').textContent()), 0);
    assert.match(await graphEdge.locator('[data-col="latency"]').textContent() ?? '', /^p50 \d+(\.\d+)? · p95 \d+(\.\d+)? · p99 \d+(\.\d+)? ms$/);
    assert.equal(await graphEdge.locator('[data-col="mtls"]').textContent(), '✓ mTLS');
    const plainEdge = page.locator(`#mesh-graph g.edge[data-edge="${svc(1)}->${svc(11)}"]`);
    assert.equal(await plainEdge.locator('[data-col="mtls"]').textContent(), 'plaintext');
    assert.equal(await plainEdge.locator('[data-col="health"]').textContent(), 'healthy');
    assert.match(await page.locator(`#mesh-graph g.node[data-node="${svc(1)}"] [data-col="stat"]`).textContent() ?? '', /^failing · \d/);
    assert.equal(await page.locator('#mesh-graph g.node[data-node="frontend.ns1"] [data-col="stat"]').textContent(), 'workload (caller)');
    // ns1's nodes: its 100 services and frontend; its edges: the tree's 99 and frontend's.
    assert.equal(await page.locator('#mesh-graph g.node').count(), N / NAMESPACES + 1);
    assert.equal(await page.locator('#mesh-graph g.edge').count(), N / NAMESPACES - 1 + 1);
    await page.locator(`.vbox[data-rows="${N / NAMESPACES}"]:has(#metrics-services)`).waitFor(WAIT);
    assert.deepEqual(
      [...new Set((await page.locator('#metrics-services tbody tr[data-service]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-service') ?? ''))).map((n) => n.split('.')[1]))],
      ['ns1']);

    // Keyboard: Tab from the namespace selector reaches the graph's edges and nodes; the focused one's numbers are spelled out.
    await page.getByLabel('Namespace', { exact: true }).focus();
    let focused = '';
    for (let i = 0; i < 20 && focused === ''; i++) {
      await page.keyboard.press('Tab');
      const el = page.locator(':focus');
      focused = (await el.getAttribute('data-edge')) ?? (await el.getAttribute('data-node')) ?? '';
    }
    assert.notEqual(focused, '', 'Tab reaches the graph');
    assert.match(await page.locator('#graph-detail').textContent() ?? '', /success \d+\.\d%, [\d.<]+ rps, p50 [\d.]+ · p95 [\d.]+ · p99 [\d.]+ ms/);
    await graphEdge.focus();
    assert.match(await page.locator('#graph-detail').textContent() ?? '', new RegExp(`^edge frontend\\.ns1 to ${svc(1).replace('.', '\\.')}: failing, success 90\\.0%, .* mutual TLS, 200 requests`));
    await page.screenshot({ path: join(shots, 'graph.png'), fullPage: false });

    // Services: the namespace carries over (sessionStorage); all namespaces: 1,000 rows in the state, few in the DOM.
    await page.getByRole('button', { name: 'Services' }).click();
    await page.locator('.vbox[data-rows="100"]:has(#services-table)').waitFor(WAIT);
    assert.equal(await page.getByLabel('Namespace', { exact: true }).inputValue(), 'ns1');
    await page.getByLabel('Namespace', { exact: true }).selectOption('');
    const box = page.locator('.vbox:has(#services-table)');
    await page.locator(`.vbox[data-rows="${N}"]:has(#services-table)`).waitFor(WAIT);
    const inDom = await page.locator('#services-table tbody tr[data-service]').count();
    assert.ok(inDom > 0 && inDom < 60, `${inDom} service rows in the DOM for ${N}`);
    assert.equal(await page.locator(`#services-table tr[data-service="${svc(N - 1)}"]`).count(), 0, 'the last row is not rendered before scrolling');
    const first = [...Array(N).keys()].map(svc).sort()[0] ?? '';
    const last = [...Array(N).keys()].map(svc).sort().at(-1) ?? '';
    assert.equal(await page.locator(`#services-table tr[data-service="${first}"]`).count(), 1);
    await page.screenshot({ path: join(shots, 'services-1000.png'), fullPage: false });
    // Scrolling to the end shows the last service (and drops the first from the DOM).
    await box.evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await page.locator(`#services-table tr[data-service="${last}"]`).waitFor({ state: 'visible', ...WAIT });
    assert.ok(await page.locator(`#services-table tr[data-service="${last}"]`).isVisible());
    assert.equal(await page.locator(`#services-table tr[data-service="${first}"]`).count(), 0);
    assert.ok(await page.locator('#services-table tbody tr[data-service]').count() < 60);
    // The keyboard scrolls the box too: Home brings the first row back.
    await box.focus();
    await page.keyboard.press('Home');
    await page.locator(`#services-table tr[data-service="${first}"]`).waitFor({ state: 'visible', ...WAIT });
    assert.equal(await page.locator('#services-table').getAttribute('aria-rowcount'), String(N + 1));

    // The routes table is virtualised too.
    await page.locator(`.vbox[data-rows="${N}"]:has(#routes-table)`).waitFor(WAIT);
    const routeRows = await page.locator('#routes-table tbody tr[data-route]').count();
    assert.ok(routeRows > 0 && routeRows < 60, `${routeRows} route rows in the DOM for ${N}`);

    // Traffic shifting draws at most 50 route cards; the name filter finds any route.
    await page.getByRole('button', { name: 'Traffic shifting' }).click();
    await page.locator(`#traffic-count[data-routes="${N}"][data-shown="50"]`).waitFor(WAIT);
    assert.equal(await page.locator('.card[data-route]').count(), 50);
    await page.getByLabel('Route or service').fill(svc(N - 1).split('.')[0] ?? '');
    await page.locator('#traffic-count[data-routes="1"][data-shown="1"]').waitFor(WAIT);
    assert.equal(await page.locator(`.card[data-route="${svc(N - 1)}"] input[type=range][data-backend="${svc(N - 1)}/v1"]`).inputValue(), '1');

    // Back on the Overview, the namespace filter shows in the heading counts.
    await page.getByRole('button', { name: 'Overview' }).click();
    await page.getByLabel('Namespace', { exact: true }).selectOption('ns3');
    // ns3's root svc-0003.ns3 is called by no one: 99 services have metrics, and the root is drawn as a caller.
    await page.locator(`.vbox[data-rows="${N / NAMESPACES - 1}"]:has(#metrics-services)`).waitFor(WAIT);
    assert.equal(await page.locator(`#mesh-graph g.node[data-node="${svc(3)}"] [data-col="stat"]`).textContent(), 'workload (caller)');
    assert.equal(await page.locator('#mesh-graph g.node[data-node="frontend.ns1"]').count(), 0);
    assert.equal(await svcBox.count(), 1);

    assert.deepEqual(external, []);
    assert.deepEqual(errors, []);
  } catch (err) {
    process.stderr.write(`--- page errors ---\n${errors.join('\n')}\n--- control output ---\n${cp.output.slice(-3000)}\n`);
    throw err;
  } finally {
    await browser?.close();
    await cp.stop();
    tmp.remove();
  }
});
