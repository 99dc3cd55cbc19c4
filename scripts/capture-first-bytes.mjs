#!/usr/bin/env node
// Records the first bytes real clients send on a fresh TCP connection, for the protocol-sniffer unit tests.
//
// For each recipe: listen on 127.0.0.1 on an ephemeral port, start the client against it, accept exactly one
// connection, record everything the client sends until it has been quiet for QUIET_MS (or closed, or MAX_MS passed),
// then close the connection, stop the client and write test/fixtures/captures/<name>.bin. The server never answers,
// so each capture is exactly the client's first flight (ClientHello, request line + headers, preface + SETTINGS...).
// test/fixtures/captures/MANIFEST.json records the command, tool version, size and sha256 of every capture.
//
// Usage: node scripts/capture-first-bytes.mjs [recipe-name ...]   (no names = all recipes)
// Needs: openssl, curl, nghttp (nghttp2-client), redis-cli on PATH. Touches only loopback.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';

const QUIET_MS = 400;
const MAX_MS = 5000;
const root = new URL('..', import.meta.url).pathname;
const outDir = join(root, 'test/fixtures/captures');

const LONG_PATH = '/' + 'a'.repeat(10_000);

/** A recipe starts the client against `port` and returns either a ChildProcess or a close() function. */
const RECIPES = {
  'openssl-tls12-sni-alpn': {
    tool: 'openssl',
    args: (port) => ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_2', '-servername', 'api.example.test', '-alpn', 'h2,http/1.1'],
  },
  'openssl-tls13-sni-alpn': {
    tool: 'openssl',
    args: (port) => ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-servername', 'api.example.test', '-alpn', 'h2,http/1.1'],
  },
  'openssl-tls13-no-sni': {
    tool: 'openssl',
    args: (port) => ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-noservername'],
  },
  'curl-https-resolve': {
    tool: 'curl',
    args: (port) => ['-sk', '--max-time', '3', '--resolve', `web.example.test:${port}:127.0.0.1`, `https://web.example.test:${port}/`],
  },
  'curl-http11-get': {
    tool: 'curl',
    args: (port) => ['-s', '--max-time', '3', '-H', 'X-Remora-Test: 1', `http://127.0.0.1:${port}/hello?x=1`],
  },
  'curl-http10-get': {
    tool: 'curl',
    args: (port) => ['-s', '-0', '--max-time', '3', `http://127.0.0.1:${port}/old`],
  },
  'curl-http11-post': {
    tool: 'curl',
    args: (port) => ['-s', '--max-time', '3', '--data-binary', '{"k":"v"}', '-H', 'Content-Type: application/json', `http://127.0.0.1:${port}/items`],
  },
  'curl-http11-upgrade-h2c': {
    tool: 'curl',
    args: (port) => ['-s', '--http2', '--max-time', '3', `http://127.0.0.1:${port}/up`],
  },
  'curl-http11-long-url': {
    tool: 'curl',
    args: (port) => ['-s', '--max-time', '3', `http://127.0.0.1:${port}${LONG_PATH}`],
  },
  'curl-h2-prior-knowledge': {
    tool: 'curl',
    args: (port) => ['-s', '--http2-prior-knowledge', '--max-time', '3', `http://127.0.0.1:${port}/h2`],
  },
  'nghttp-h2-prior-knowledge': {
    tool: 'nghttp',
    args: (port) => ['-t', '3', `http://127.0.0.1:${port}/nghttp`],
  },
  'redis-cli-ping': {
    tool: 'redis-cli',
    args: (port) => ['-h', '127.0.0.1', '-p', String(port), 'PING'],
  },
  'node-tls-sni-alpn': {
    tool: 'node',
    run: (port) => nodeTls(port, { servername: 'svc.example.test', ALPNProtocols: ['h2', 'http/1.1'] }),
    describe: "tls.connect({ servername: 'svc.example.test', ALPNProtocols: ['h2', 'http/1.1'] })",
  },
  // A ~2 KB ClientHello (the size of a post-quantum hybrid key share hello) from many long ALPN names; the
  // local OpenSSL 3.0 cannot offer ML-KEM key shares, so size is reached through ALPN instead.
  'node-tls-large-hello': {
    tool: 'node',
    run: (port) => nodeTls(port, { servername: 'big.example.test', ALPNProtocols: largeAlpnList() }),
    describe: 'tls.connect({ servername: "big.example.test", ALPNProtocols: 12 x 150-byte names + h2 + http/1.1 })',
  },
};

function largeAlpnList() {
  const names = [];
  for (let i = 0; i < 12; i++) names.push(`x-remora-${String(i).padStart(2, '0')}-` + 'p'.repeat(137));
  names.push('h2', 'http/1.1');
  return names;
}

function nodeTls(port, opts) {
  const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
  s.on('error', () => {});
  return () => s.destroy();
}

function toolVersion(tool) {
  const args = { openssl: ['version'], curl: ['--version'], nghttp: ['--version'], 'redis-cli': ['--version'] }[tool];
  if (tool === 'node') return `node ${process.version} (OpenSSL ${process.versions.openssl})`;
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  return (r.stdout || r.stderr || '').split('\n')[0].trim();
}

function capture(name, recipe) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let stopClient = () => {};
    let quietTimer;
    let finished = false;
    const server = createServer({ allowHalfOpen: true });
    const maxTimer = setTimeout(() => finish('max-time'), MAX_MS);

    function finish(why) {
      if (finished) return;
      finished = true;
      clearTimeout(quietTimer);
      clearTimeout(maxTimer);
      stopClient();
      server.close();
      const bytes = Buffer.concat(chunks);
      if (bytes.length === 0) reject(new Error(`${name}: client sent nothing (${why})`));
      else resolve({ bytes, why, segments: chunks.length });
    }

    server.once('connection', (sock) => {
      server.close(); // exactly one connection
      sock.on('data', (c) => {
        chunks.push(c);
        clearTimeout(quietTimer);
        quietTimer = setTimeout(() => { sock.destroy(); finish('quiet'); }, QUIET_MS);
      });
      sock.on('end', () => { sock.destroy(); finish('client-end'); });
      sock.on('error', () => finish('socket-error'));
    });
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      if (recipe.run) {
        stopClient = recipe.run(port);
      } else {
        const child = spawn(recipe.tool, recipe.args(port), { stdio: ['pipe', 'ignore', 'ignore'] });
        child.on('error', (e) => { if (!finished) { finished = true; clearTimeout(maxTimer); server.close(); reject(e); } });
        stopClient = () => { if (child.exitCode === null) child.kill('SIGTERM'); };
      }
    });
  });
}

function commandLine(recipe) {
  if (recipe.describe) return recipe.describe;
  return [recipe.tool, ...recipe.args('PORT')].map((a) => (a.length > 60 ? `${a.slice(0, 40)}…(${a.length} chars)` : a)).join(' ');
}

const wanted = process.argv.slice(2);
const names = wanted.length > 0 ? wanted : Object.keys(RECIPES);
mkdirSync(outDir, { recursive: true });
const manifestPath = join(outDir, 'MANIFEST.json');
const manifest = existsSync(manifestPath) ? JSON.parse(readFileSync(manifestPath, 'utf8')) : {};
let failed = 0;
for (const name of names) {
  const recipe = RECIPES[name];
  if (!recipe) { console.error(`unknown recipe ${name}; known: ${Object.keys(RECIPES).join(', ')}`); failed++; continue; }
  try {
    const { bytes, why, segments } = await capture(name, recipe);
    writeFileSync(join(outDir, `${name}.bin`), bytes);
    manifest[name] = {
      command: commandLine(recipe),
      tool: toolVersion(recipe.tool),
      bytes: bytes.length,
      reads: segments,
      stoppedBy: why,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    };
    console.log(`${name}: ${bytes.length} bytes in ${segments} read(s), stopped by ${why}`);
  } catch (e) {
    console.error(`${name}: FAILED: ${e.message}`);
    failed++;
  }
}
const sorted = Object.fromEntries(Object.keys(manifest).sort().map((k) => [k, manifest[k]]));
writeFileSync(manifestPath, JSON.stringify(sorted, null, 2) + '\n');
process.exit(failed === 0 ? 0 : 1);
