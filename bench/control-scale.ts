// Scale of the control plane (issue 13 §8), against the real `remora control` process (dist/):
//   1. N subscribers (default 100) in this process, each a real SyncClient on its own HTTP/2 connection; one write;
//      the time until every subscriber has applied it (and until the control plane has every ACK);
//   2. a desired state of S services with E endpoints each (default 10,000 x 10): the time of that write (one batch,
//      validated as a whole) and of one more small write on top of it, the control plane's RSS, and the time and heap
//      growth for a sidecar to validate a snapshot of that size (loadSnapshotDefinitions on the pushed text).
//   3. a real sidecar process (`remora proxy --control`) applying that snapshot: from its start to its ACK, and its RSS
//      then against the same proxy idle.
// Usage: node dist/bench/control-scale.js [--subscribers 100] [--services 10000] [--endpoints 10]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { freePort } from './proc.js';
import { loadSnapshotDefinitions } from '../src/config/load-snapshot.js';
import { SyncClient } from '../src/control/sync-client.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};
const SUBSCRIBERS = arg('subscribers', 100);
const SERVICES = arg('services', 10_000);
const ENDPOINTS = arg('endpoints', 10);
const TOKEN = 'bench-token-0123456789abcdef';
const REMORA = new URL('../../bin/remora', import.meta.url).pathname;

function call(url: string, ca: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(new URL(path, url), { method, ca, agent: false, headers: { authorization: `Bearer ${TOKEN}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => {
        let json: unknown;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, json, text });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'remora-control-scale-'));
  let out = '';
  const clients: SyncClient[] = [];
  const cp = spawn(process.execPath, [REMORA, 'control', '--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--token', TOKEN], { stdio: ['ignore', 'pipe', 'pipe'] });
  cp.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  cp.stderr.on('data', () => undefined);
  try {
    let port = 0;
    for (let i = 0; i < 400 && port === 0; i++) {
      port = Number(/"event":"control.listening","address":"127\.0\.0\.1:(\d+)"/.exec(out)?.[1] ?? 0);
      if (port === 0) await new Promise((r) => setTimeout(r, 25));
    }
    if (port === 0) throw new Error(`control did not start: ${out}`);
    const url = `https://127.0.0.1:${port}`;
    const ca = readFileSync(join(dir, 'data', 'root-cert.pem'), 'utf8');
    const log = pino({ level: 'silent' });

    // 1. fan-out to N subscribers
    const seen = new Map<number, number>(); // subscriber -> time it applied the target version
    let target = -1;
    for (let n = 0; n < SUBSCRIBERS; n++) {
      const c = new SyncClient({
        server: url, token: TOKEN, ca, name: `pod-${n}`, identity: () => '', log,
        apply: (s) => { if (s.version === target) seen.set(n, performance.now()); return { ok: true }; },
      });
      clients.push(c);
      c.start();
    }
    for (let i = 0; i < 400 && clients.some((c) => !c.connected); i++) await new Promise((r) => setTimeout(r, 25));
    const t0 = performance.now();
    const w = await call(url, ca, 'PUT', '/api/v1/services/web', { spec: { addresses: '10.96.0.10:80', endpoints: '10.1.0.1:8080' }, version: 0 });
    target = (w.json as { revision: number }).revision;
    for (let i = 0; i < 2000 && seen.size < SUBSCRIBERS; i++) await new Promise((r) => setTimeout(r, 5));
    const allApplied = Math.max(...seen.values()) - t0;
    let acked = 0;
    for (let i = 0; i < 400; i++) {
      const s = (await call(url, ca, 'GET', '/api/v1/sidecars')).json as { sidecars: { versionApplied: number }[] };
      acked = s.sidecars.filter((x) => x.versionApplied === target).length;
      if (acked === SUBSCRIBERS) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const allAcked = performance.now() - t0;
    process.stdout.write(`fan-out: ${SUBSCRIBERS} subscribers, one write -> all applied in ${allApplied.toFixed(0)} ms (incl. the 100 ms debounce), all ACKs recorded by ${allAcked.toFixed(0)} ms (${acked}/${SUBSCRIBERS})\n`);
    for (const c of clients) c.stop();
    clients.length = 0;

    // 2. a big state
    const rss0 = rssMiB(cp.pid ?? 0);
    const writes = [];
    for (let s = 0; s < SERVICES; s++) {
      const eps = Array.from({ length: ENDPOINTS }, (_, e) => `10.${(s >> 8) & 255}.${s & 255}.${e + 1}:8080`).join(', ');
      writes.push({ kind: 'service', name: `svc-${s}`, version: 0, spec: { addresses: `10.${100 + (s >> 16)}.${(s >> 8) & 255}.${s & 255}:80`, endpoints: eps } });
    }
    const t1 = performance.now();
    const big = await call(url, ca, 'POST', '/api/v1/apply', { writes });
    const bigMs = performance.now() - t1;
    if (big.status !== 200) throw new Error(`big apply: ${big.status} ${big.text.slice(0, 500)}`);
    const t2 = performance.now();
    const small = await call(url, ca, 'PUT', '/api/v1/services/one-more', { spec: { addresses: '10.200.0.1:80', endpoints: '10.201.0.1:80' }, version: 0 });
    const smallMs = performance.now() - t2;
    const rss1 = rssMiB(cp.pid ?? 0);
    const state = await call(url, ca, 'GET', '/api/v1/state?format=ini');
    process.stdout.write(`state: ${SERVICES} services x ${ENDPOINTS} endpoints: apply ${bigMs.toFixed(0)} ms (status ${big.status}); one more write on top ${smallMs.toFixed(0)} ms (status ${small.status}); control RSS ${rss0.toFixed(0)} -> ${rss1.toFixed(0)} MiB; snapshot ${(Buffer.byteLength(state.text) / 1048576).toFixed(1)} MiB of INI\n`);
    const heap0 = process.memoryUsage().heapUsed;
    const t3 = performance.now();
    const loaded = loadSnapshotDefinitions({ file: 's.ini', flags: new Map(), env: {}, readFile: () => Buffer.from(state.text) });
    const loadMs = performance.now() - t3;
    const heap1 = process.memoryUsage().heapUsed;
    process.stdout.write(`sidecar: validating that snapshot (loadSnapshotDefinitions) ${loadMs.toFixed(0)} ms, ok=${String(loaded.ok)}, heap +${((heap1 - heap0) / 1048576).toFixed(0)} MiB (definitions alive)\n`);

    // 3. a real sidecar (`remora proxy --control`) applying that snapshot: from its start to the control plane
    //    recording its ACK of the big revision (connect, receive, validate, build the runtime, swap, ACK), and its
    //    RSS then, against the same proxy idle without a control plane.
    const revision = (small.json as { revision: number }).revision;
    const idle = await runSidecar(dir, undefined, async () => undefined);
    const applied = await runSidecar(dir, { url, ca: join(dir, 'data', 'root-cert.pem') }, async () => {
      for (let i = 0; i < 1200; i++) {
        const list = (await call(url, ca, 'GET', '/api/v1/sidecars')).json as { sidecars: { name: string; versionApplied: number }[] };
        if (list.sidecars.some((x) => x.name === 'bench-sidecar' && x.versionApplied === revision)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('the sidecar did not apply the big snapshot within 60 s');
    });
    process.stdout.write(`sidecar process: idle ${idle.rss.toFixed(0)} MiB RSS (ready in ${idle.ms.toFixed(0)} ms); with the ${SERVICES}-service snapshot applied `
      + `${applied.rss.toFixed(0)} MiB RSS (+${(applied.rss - idle.rss).toFixed(0)} MiB), from process start to its ACK ${applied.ms.toFixed(0)} ms\n`);
  } finally {
    for (const c of clients) c.stop();
    cp.kill('SIGTERM');
    await new Promise((r) => { cp.on('close', r); });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Start `remora proxy` (readiness probes off, loopback ports), wait for `until` (or /ready), read its RSS, stop it. */
async function runSidecar(dir: string, control: { url: string; ca: string } | undefined, until: () => Promise<void>): Promise<{ ms: number; rss: number }> {
  const [outbound, inbound, admin] = [await freePort(), await freePort(), await freePort()];
  const ini = join(dir, `sidecar-${control === undefined ? 'idle' : 'control'}.ini`);
  writeFileSync(ini, `[proxy]\noutbound_port = ${outbound}\ninbound_port = ${inbound}\nlisten_address = 127.0.0.1\n`
    + `admin_address = 127.0.0.1:${admin}\nuid = ${process.geteuid?.() ?? 0}\ngid = ${process.getegid?.() ?? 0}\n`
    + 'readiness_probe_interval = off\ndrain_grace = 0\nlog_level = warn\n');
  const args = [REMORA, 'proxy', '--config', ini, ...(control === undefined ? [] : ['--control', control.url, '--token', TOKEN, '--control-ca-file', control.ca])];
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { env: { ...process.env, POD_NAME: 'bench-sidecar' }, stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    for (let i = 0; i < 600; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const req = httpGet(`http://127.0.0.1:${admin}/ready`, (res) => { res.resume(); resolve(res.statusCode === 200); });
        req.on('error', () => { resolve(false); });
      });
      if (ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await until();
    const ms = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 1000)); // let the runtime it replaced be collected before reading RSS
    return { ms, rss: rssMiB(child.pid ?? 0) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => { child.on('close', r); });
  }
}

await main();
