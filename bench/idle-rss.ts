// Idle memory of `remora proxy` against a bare `node` (issue 15 item 4): start the proxy on loopback (no iptables, no
// netns: capture listeners on 127.0.0.1 free ports, readiness probes off) with an L4 config, an L7 config or a mesh
// mTLS identity, wait for /ready, wait --wait seconds, and read VmRSS / RssAnon / RssFile (/proc/PID/status) and
// Pss / Shared_Clean / Private_Dirty (/proc/PID/smaps_rollup); the same for `node -e 'setInterval(()=>{},1e9)'`.
// Every (variant, config) is started --starts times (alternating order between variants) and the median printed.
// With --watch S, one more start per (variant, config) is sampled every 5 s for S seconds (growth while idle).
//
// Usage (run it under the benchmark lock):
//   flock /tmp/remora-bench.lock node dist/bench/idle-rss.js [--configs l4,l7,mesh] [--starts 3] [--wait 5]
//     [--variant NAME=/path/to/bin/remora ...] [--variant-node-args NAME="--flag ..." ...] [--node-args "--flag ..."]
//     [--watch 60] [--json]
// Without --variant the build of this checkout (bin/remora) is the one variant, named "new". --node-args go to every
// proxy, --variant-node-args to one variant's (the same build can be two variants with different flags).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, loadAverage, median } from './proc.js';

type ConfigName = 'l4' | 'l7' | 'mesh';
const CONFIG_NAMES: readonly ConfigName[] = ['l4', 'l7', 'mesh'];

interface Variant { readonly name: string; readonly bin: string; readonly nodeArgs: readonly string[] }

/** One sample of a process's memory, in MB (1024 kB). */
interface MemSample {
  readonly vmRss: number;
  readonly rssAnon: number;
  readonly rssFile: number;
  readonly pss: number;
  readonly sharedClean: number;
  readonly privateDirty: number;
}

const argv = process.argv.slice(2);
function opt(name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? undefined : argv[i + 1];
}
function opts(name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) if (argv[i] === `--${name}` && argv[i + 1] !== undefined) out.push(argv[i + 1] as string);
  return out;
}

const REPO = new URL('../../', import.meta.url).pathname;
const configs = (opt('configs') ?? 'l4,l7,mesh').split(',').map((s) => s.trim()).filter((s): s is ConfigName => (CONFIG_NAMES as readonly string[]).includes(s));
const starts = Math.max(1, Math.min(20, Number(opt('starts') ?? 3)));
const waitS = Math.max(0, Math.min(120, Number(opt('wait') ?? 5)));
const watchS = Math.max(0, Math.min(600, Number(opt('watch') ?? 0)));
const nodeArgs = (opt('node-args') ?? '').split(' ').filter((s) => s !== '');
const asJson = argv.includes('--json');
const split = (o: string, v: string): [string, string] => {
  const eq = v.indexOf('=');
  if (eq <= 0) throw new Error(`--${o} ${v}: expected NAME=VALUE`);
  return [v.slice(0, eq), v.slice(eq + 1)];
};
const variantArgs = new Map(opts('variant-node-args').map((v) => split('variant-node-args', v)));
const variants: Variant[] = opts('variant').map((v) => {
  const [name, bin] = split('variant', v);
  return { name, bin, nodeArgs: (variantArgs.get(name) ?? '').split(' ').filter((s) => s !== '') };
});
if (variants.length === 0) variants.push({ name: 'new', bin: join(REPO, 'bin/remora'), nodeArgs: [] });

const sleep = (ms: number): Promise<void> => new Promise((r) => { setTimeout(r, ms); });

function kb(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
  return m === null ? Number.NaN : Number(m[1]) / 1024;
}

function sample(pid: number): MemSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  return {
    vmRss: kb(status, 'VmRSS'), rssAnon: kb(status, 'RssAnon'), rssFile: kb(status, 'RssFile'),
    pss: kb(rollup, 'Pss'), sharedClean: kb(rollup, 'Shared_Clean'), privateDirty: kb(rollup, 'Private_Dirty'),
  };
}

/** GET /ready over a raw socket (no node:http in this process's measurements' way); true on a 200. */
function ready(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    let head = '';
    const done = (ok: boolean): void => { s.destroy(); resolve(ok); };
    s.setTimeout(1000, () => { done(false); });
    s.on('error', () => { done(false); });
    s.on('connect', () => { s.write('GET /ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'); });
    s.on('data', (d: Buffer) => { head += d.toString('latin1'); if (head.includes('\r\n')) done(head.startsWith('HTTP/1.1 200')); });
    s.on('end', () => { done(head.startsWith('HTTP/1.1 200')); });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); }, 10_000);
    child.once('exit', () => { clearTimeout(t); resolve(); });
    child.kill('SIGTERM');
  });
}

let identityDir: string | undefined;
function meshIdentity(dir: string, bin: string): string {
  if (identityDir !== undefined) return identityDir;
  const ca = join(dir, 'ca');
  const out = join(dir, 'identity');
  execFileSync(process.execPath, [bin, 'ca', 'init', '--dir', ca], { stdio: 'ignore' });
  execFileSync(process.execPath, [bin, 'ca', 'issue', '--dir', ca, '--spiffe-id', 'spiffe://cluster.local/ns/bench/sa/idle', '--out', out, '--ttl', '2h'], { stdio: 'ignore' });
  identityDir = out;
  return out;
}

async function configText(name: ConfigName, dir: string, bin: string, admin: number): Promise<string> {
  const [outbound, inbound] = [await freePort(), await freePort()];
  const base = `[proxy]\noutbound_port = ${outbound}\ninbound_port = ${inbound}\nlisten_address = 127.0.0.1\n`
    + `admin_address = 127.0.0.1:${admin}\nuid = ${process.geteuid?.() ?? 0}\ngid = ${process.getegid?.() ?? 0}\n`
    + 'readiness_probe_interval = off\ndrain_grace = 0\n';
  const service = '[service idle]\naddresses = 10.255.0.10:8080\nendpoints = 127.0.0.1:1, 127.0.0.1:2\nbalancer = round-robin\n';
  switch (name) {
    case 'l4': return `${base}http_engine = off\n\n${service}protocol = opaque\n`;
    case 'l7': return `${base}http_engine = on\n\n${service}\n[route idle-split]\nservice = idle\nmatch_path_prefix = /\nbackends = idle\n`;
    case 'mesh': return `${base}http_engine = on\nidentity_dir = ${meshIdentity(dir, bin)}\nmtls_mode = permissive\n\n${service}mtls = true\n`;
  }
}

async function startAndWait(args: string[], admin: number | undefined): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, POD_NAME: 'idle-rss' } });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => { if (err.length < 4000) err += d.toString(); });
  if (admin !== undefined) {
    const t0 = Date.now();
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`proxy exited ${child.exitCode}: ${err}`);
      if (await ready(admin)) break;
      if (i >= 400 || Date.now() - t0 > 20_000) { await stop(child); throw new Error(`not ready in 20 s: ${err}`); }
      await sleep(50);
    }
  }
  return child;
}

async function measure(variant: Variant | undefined, config: ConfigName | undefined, dir: string, watch: number): Promise<{ at: MemSample; series: number[] }> {
  let child: ChildProcess;
  if (variant === undefined || config === undefined) {
    child = await startAndWait(['-e', 'setInterval(()=>{},1e9)'], undefined);
  } else {
    const admin = await freePort();
    const ini = join(dir, `${variant.name}-${config}.ini`);
    writeFileSync(ini, await configText(config, dir, variant.bin, admin));
    child = await startAndWait([...nodeArgs, ...variant.nodeArgs, variant.bin, 'proxy', '--config', ini, '--log-level', 'warn'], admin);
  }
  try {
    await sleep(waitS * 1000);
    const at = sample(child.pid ?? 0);
    const series: number[] = [];
    for (let t = 5; t <= watch; t += 5) {
      await sleep(5000);
      series.push(sample(child.pid ?? 0).vmRss);
    }
    return { at, series };
  } finally {
    await stop(child);
  }
}

function medianSample(xs: readonly MemSample[]): MemSample {
  const m = (f: keyof MemSample): number => median(xs.map((x) => x[f]));
  return { vmRss: m('vmRss'), rssAnon: m('rssAnon'), rssFile: m('rssFile'), pss: m('pss'), sharedClean: m('sharedClean'), privateDirty: m('privateDirty') };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'remora-idle-rss-'));
  const results = new Map<string, MemSample[]>();
  const add = (key: string, s: MemSample): void => { results.set(key, [...(results.get(key) ?? []), s]); };
  const load0 = loadAverage();
  try {
    for (let round = 0; round < starts; round++) {
      add('bare node', (await measure(undefined, undefined, dir, 0)).at);
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      for (const config of configs) for (const v of order) add(`${v.name} ${config}`, (await measure(v, config, dir, 0)).at);
    }
    const rows = [...results].map(([key, xs]) => ({ key, median: medianSample(xs), runs: xs.map((x) => x.vmRss) }));
    const watches: { key: string; series: number[] }[] = [];
    if (watchS > 0) {
      watches.push({ key: 'bare node', series: (await measure(undefined, undefined, dir, watchS)).series });
      for (const config of configs) for (const v of variants) watches.push({ key: `${v.name} ${config}`, series: (await measure(v, config, dir, watchS)).series });
    }
    const load1 = loadAverage();
    if (asJson) {
      process.stdout.write(`${JSON.stringify({ load: [load0, load1], waitS, starts, nodeArgs, rows, watches })}\n`);
      return;
    }
    const bare = rows.find((r) => r.key === 'bare node')?.median.vmRss ?? 0;
    process.stdout.write(`idle RSS, median of ${starts} starts, ${waitS} s after /ready (MB = 1024 kB); load average ${load0} -> ${load1}`
      + `${nodeArgs.length > 0 ? `; node args ${nodeArgs.join(' ')}` : ''}`
      + `${variants.filter((v) => v.nodeArgs.length > 0).map((v) => `; ${v.name}: ${v.nodeArgs.join(' ')}`).join('')}\n`);
    process.stdout.write('| process | VmRSS | over bare | RssAnon | RssFile | Pss | Shared_Clean | Private_Dirty | VmRSS per start |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n');
    for (const r of rows) {
      const s = r.median;
      process.stdout.write(`| ${r.key} | ${s.vmRss.toFixed(1)} | ${r.key === 'bare node' ? '' : `+${(s.vmRss - bare).toFixed(1)}`} | ${s.rssAnon.toFixed(1)} | ${s.rssFile.toFixed(1)} | `
        + `${s.pss.toFixed(1)} | ${s.sharedClean.toFixed(1)} | ${s.privateDirty.toFixed(1)} | ${r.runs.map((x) => x.toFixed(1)).join(' / ')} |\n`);
    }
    for (const w of watches) process.stdout.write(`watch ${w.key}: VmRSS every 5 s: ${w.series.map((x) => x.toFixed(1)).join(' ')}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
