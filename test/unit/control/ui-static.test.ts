import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ApiRequest, ApiResponse } from '../../../src/control/control-api.js';
import { UI_DIR, UiStatic } from '../../../src/control/ui-static.js';

interface Sent { status: number; headers: Record<string, string | number>; body: string }

function call(ui: UiStatic, method: string, url: string): { handled: boolean; sent?: Sent } {
  const req = { method, url, headers: {}, on: () => req } as unknown as ApiRequest;
  let sent: Sent | undefined;
  const res: ApiResponse = {
    writeHead: (status, headers) => { sent = { status, headers, body: '' }; },
    write: () => true,
    end: (chunk) => { if (sent !== undefined) sent.body = chunk; },
    on: () => undefined,
  };
  const handled = ui.handle(req, res);
  return { handled, ...(sent === undefined ? {} : { sent }) };
}

test('the UI files and the vendored view library are served with a CSP of this origin only', () => {
  const ui = new UiStatic();
  const index = call(ui, 'GET', '/');
  assert.equal(index.handled, true);
  assert.equal(index.sent?.status, 200);
  assert.match(String(index.sent?.headers['content-type']), /^text\/html/);
  const csp = String(index.sent?.headers['content-security-policy']);
  const map = /<script type="importmap">([\s\S]*?)<\/script>/.exec(readFileSync(join(UI_DIR, 'index.html'), 'utf8'))?.[1] ?? '';
  const hash = createHash('sha256').update(map).digest('base64');
  assert.equal(csp, `default-src 'none'; script-src 'self' 'sha256-${hash}'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`);
  assert.equal(index.sent?.headers['x-content-type-options'], 'nosniff');
  // Every import the page makes resolves to a file served here (no external fetches).
  for (const target of Object.values((JSON.parse(map) as { imports: Record<string, string> }).imports)) {
    const r = call(ui, 'GET', target);
    assert.equal(r.sent?.status, 200, target);
    assert.match(String(r.sent?.headers['content-type']), /^text\/javascript/);
    assert.ok(!/(?:from|import)\s*\(?\s*["']https?:/.test(r.sent?.body ?? ''), `${target} imports nothing external`);
  }
  assert.equal(call(ui, 'GET', '/ui/app.js?v=1').sent?.status, 200);
  assert.equal(call(ui, 'HEAD', '/ui/style.css').sent?.body, '');
});

test('every file under ui/ (subfolders too) is served with its MIME type, and every module import of the page resolves to one', () => {
  const ui = new UiStatic();
  const seen = new Set<string>();
  const queue = ['/ui/app.js'];
  while (queue.length > 0) {
    const path = queue.shift() ?? '';
    if (seen.has(path)) continue;
    seen.add(path);
    const r = call(ui, 'GET', path);
    assert.equal(r.sent?.status, 200, path);
    assert.match(String(r.sent?.headers['content-type']), /^text\/javascript; charset=utf-8$/, path);
    assert.ok(typeof r.sent?.headers['content-security-policy'] === 'string', path);
    for (const m of (r.sent?.body ?? '').matchAll(/^import\s[^'"]*['"](\.{1,2}\/[^'"]+)['"]/gm)) {
      queue.push(new URL(m[1] ?? '', `https://x.invalid${path}`).pathname);
    }
  }
  // The views are modules in a subfolder, reached from app.js.
  assert.ok(seen.has('/ui/views/overview.js') && seen.has('/ui/lib/virtual-table.js'), [...seen].join());
  assert.match(String(call(ui, 'GET', '/ui/style.css').sent?.headers['content-type']), /^text\/css/);
  assert.equal(call(ui, 'GET', '/ui/views/').handled, false);
  assert.equal(call(ui, 'GET', '/ui/views/../../package.json').handled, false);
});

test('anything else falls through to the API (which answers 404 or the request)', () => {
  const ui = new UiStatic();
  assert.equal(call(ui, 'GET', '/api/v1/state').handled, false);
  assert.equal(call(ui, 'GET', '/ui/../package.json').handled, false);
  assert.equal(call(ui, 'GET', '/nothing').handled, false);
  assert.equal(call(ui, 'POST', '/').handled, false);
});
