// The web UI's static files, served by `remora control` at `/` (docs/ui.md): ui/index.html at `/`, every file under the
// repository's ui/ folder (its subfolders too: ui/views/*.js, ui/lib/*.js) at `/ui/PATH` with a MIME type by its
// extension (files of other types are not served), and the view library (preact, preact/hooks, htm) from node_modules,
// each read once at start and served from memory: a path is only ever looked up in that map (no traversal). No external fetches: the page's Content-Security-Policy allows only this origin
// (and the page's one inline script, the import map, by its hash).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApiRequest, ApiResponse } from './control-api.js';

interface Asset { readonly type: string; readonly body: Buffer }

/** The repository's ui/ folder (this file is dist/src/control/ui-static.js). */
export const UI_DIR = fileURLToPath(new URL('../../../ui/', import.meta.url));

/** A file of an npm package (found from its main entry up to its package.json: htm does not export ./package.json). */
function vendorFile(pkg: string, file: string): Buffer {
  let dir = dirname(createRequire(import.meta.url).resolve(pkg));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === pkg) return readFileSync(join(dir, file));
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the package directory of ${pkg}`);
    dir = up;
  }
}

/** MIME types of the files served from ui/ (text only: ApiResponse.end takes a string; others are not served). */
const MIME: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

/** The files under dir (relative paths with '/'), recursively; dot files and folders skipped. */
function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory()) out.push(...listFiles(dir, rel));
    else if (e.isFile()) out.push(rel);
  }
  return out.sort();
}

/** The Content-Security-Policy of the UI: this origin only; inline scripts only by hash (the import map). */
export function contentSecurityPolicy(scriptHashes: readonly string[]): string {
  return [
    "default-src 'none'",
    `script-src 'self'${scriptHashes.map((h) => ` '${h}'`).join('')}`,
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export class UiStatic {
  readonly #assets = new Map<string, Asset>();
  readonly #csp: string;

  constructor(dir: string = UI_DIR) {
    const index = readFileSync(join(dir, 'index.html'));
    const hashes = [...index.toString('utf8').matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)]
      .map((m) => `sha256-${createHash('sha256').update(m[1] ?? '').digest('base64')}`);
    this.#csp = contentSecurityPolicy(hashes);
    const html = 'text/html; charset=utf-8';
    const js = 'text/javascript; charset=utf-8';
    this.#assets.set('/', { type: html, body: index });
    this.#assets.set('/index.html', { type: html, body: index });
    for (const rel of listFiles(dir)) {
      const dot = rel.lastIndexOf('.');
      const type = dot < 0 ? undefined : MIME[rel.slice(dot).toLowerCase()];
      if (type !== undefined) this.#assets.set(`/ui/${rel}`, { type, body: readFileSync(join(dir, rel)) });
    }
    this.#assets.set('/vendor/preact.js', { type: js, body: vendorFile('preact', 'dist/preact.module.js') });
    this.#assets.set('/vendor/preact-hooks.js', { type: js, body: vendorFile('preact', 'hooks/dist/hooks.module.js') });
    this.#assets.set('/vendor/htm.js', { type: js, body: vendorFile('htm', 'dist/htm.module.js') });
  }

  /** Answer a GET/HEAD of a UI file; false when the path is not one (the API answers it). */
  handle(req: ApiRequest, res: ApiResponse): boolean {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') return false;
    const path = new URL(req.url ?? '/', 'https://control.invalid').pathname;
    const asset = this.#assets.get(path);
    if (asset === undefined) return false;
    res.writeHead(200, {
      'content-type': asset.type,
      'content-length': asset.body.length,
      'content-security-policy': this.#csp,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'cache-control': 'no-cache',
    });
    res.end(method === 'HEAD' ? '' : asset.body.toString('utf8'));
    return true;
  }
}
