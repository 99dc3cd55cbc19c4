// A loopback lab for the proxy's CPU per connection with one connection per request (steadier than the netns bench on
// a shared machine; see docs/performance-notes.md "Connection setup ... second part"). Each subject runs in a child
// process pinned to CPU 0 (taskset): a remora build's startProxy() (its dist/, the original destination injected:
// this lab's upstream), or the "floor", a minimal Node.js forwarder with no remora code. This process, pinned to
// CPU 1, is the upstream (HTTP/1.1 keep-alive, `Connection: close` honoured) and the client (16 loops of connect ->
// GET with Connection: close -> read to the end). Per round every subject, in alternating order, proxies N
// connections; the subject's process.cpuUsage() and GC time (PerformanceObserver) per connection; paired differences
// against the first subject.
//
// Usage: taskset -c 1 node dist/bench/conn-lab.js l4|l7 ROUNDS N NAME=DIR[=INI]... (DIR "floor": the forwarder;
//   INI: extra config, "||" separating [proxy] lines from the sections after it, PORT = the upstream's port), e.g.
//   taskset -c 1 node dist/bench/conn-lab.js l4 8 2000 base=/tmp/base new=$PWD base2=/tmp/base floor=floor \
//     'opaque=/tmp/base=||[registry]\nport_protocols = PORT=opaque'
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type AddressInfo } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { pipeBoth, tcpTo } from './floor-proxy.js';

interface Usage { readonly cpu: number; readonly gcMs: number }
interface Subject { readonly name: string; readonly root: string; readonly ini: string; child?: ChildProcess; port?: number; readonly us: number[]; readonly gcUs: number[] }

const SELF = fileURLToPath(import.meta.url);

function observeGc(): () => number {
  let gcMs = 0;
  new PerformanceObserver((l) => { for (const e of l.getEntries()) gcMs += e.duration; }).observe({ entryTypes: ['gc'] });
  return () => gcMs;
}

function serveUsage(port: number, gc: () => number): void {
  process.on('message', (m) => {
    if (m === 'usage') {
      const u = process.cpuUsage();
      process.send?.({ cpu: u.user + u.system, gcMs: gc() } satisfies Usage);
    } else if (m === 'exit') {
      process.exit(0);
    }
  });
  process.send?.({ port });
}

async function remoraChild(root: string, mode: string, upstreamPort: number, extra: string): Promise<void> {
  const gc = observeGc();
  const [proxyExtra, sections] = extra.replace(/PORT/g, String(upstreamPort)).replace(/\\n/g, '\n').split('||');
  const ini = `[proxy]\nhttp_engine = ${mode === 'l7' ? 'on' : 'off'}\n${proxyExtra ?? ''}\n${sections ?? ''}\n`;
  const { startProxy } = await import(`${root}/dist/src/proxy/proxy.js`);
  const { loadSnapshotDefinitions } = await import(`${root}/dist/src/config/load-snapshot.js`);
  const { createLogger } = await import(`${root}/dist/src/core/log.js`);
  const r = loadSnapshotDefinitions({ file: 'lab.ini', flags: new Map(), env: {}, readFile: () => Buffer.from(ini) });
  if (r.ok !== true) throw new Error(JSON.stringify(r.issues));
  const p = r.definitions.proxy;
  const definitions = { ...r.definitions, proxy: { ...p, outboundPort: 0, inboundPort: 0, listenAddress: '127.0.0.1',
    uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0, adminAddress: { host: '127.0.0.1', port: 0 }, readinessProbeInterval: 0, drainGrace: 0 } };
  const dst = { family: 4, address: '127.0.0.1', port: upstreamPort };
  const proxy = await startProxy({ log: createLogger({ name: 'lab', level: 'warn', fd: 2 }), definitions, configFile: 'lab.ini',
    reload: () => r, watchConfig: false, handleSignals: false, readOriginalDst: () => dst });
  const address = String(proxy.stats().listeners.outbound.address);
  serveUsage(Number(address.slice(address.lastIndexOf(':') + 1)), gc);
}

function floorChild(upstreamPort: number): void {
  const gc = observeGc();
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (down) => {
    pipeBoth(down, tcpTo('127.0.0.1', upstreamPort));
  });
  server.listen(0, '127.0.0.1', () => { serveUsage((server.address() as AddressInfo).port, gc); });
}

const RESPONSE_KA = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
const RESPONSE_CLOSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n');

function exchange(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    let got = 0;
    s.on('connect', () => s.write(REQUEST));
    s.on('data', (d: Buffer) => { got += d.length; });
    s.on('error', () => undefined);
    s.on('close', () => { resolve(got > 0); });
    s.setTimeout(5_000, () => s.destroy());
  });
}

async function load(port: number, total: number): Promise<number> {
  let left = total;
  let ok = 0;
  await Promise.all(Array.from({ length: 16 }, async () => { while (left-- > 0) if (await exchange(port)) ok++; }));
  return ok;
}

const median = (x: readonly number[]): number => [...x].sort((a, b) => a - b)[x.length >> 1] ?? NaN;

async function driver(mode: string, rounds: number, n: number, specs: readonly string[]): Promise<void> {
  const upstream = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    let buf = '';
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, i);
        buf = buf.slice(i + 4);
        if (/connection: *close/i.test(head)) { s.end(RESPONSE_CLOSE); return; }
        s.write(RESPONSE_KA);
      }
    });
    s.on('end', () => s.end());
  });
  await new Promise<void>((resolve) => { upstream.listen(0, '127.0.0.1', resolve); });
  const upstreamPort = (upstream.address() as AddressInfo).port;
  const subjects: Subject[] = specs.map((a) => {
    const [name = '', root = '', ...ini] = a.split('=');
    return { name, root, ini: ini.join('='), us: [], gcUs: [] };
  });
  for (const s of subjects) {
    const child = spawn('taskset', ['-c', '0', process.execPath, SELF, 'child', s.root, mode, String(upstreamPort), s.ini],
      { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    s.child = child;
    s.port = await new Promise<number>((resolve) => { child.once('message', (m) => { resolve((m as { port: number }).port); }); });
  }
  const usage = (s: Subject): Promise<Usage> => new Promise((resolve) => {
    s.child?.once('message', (m) => { resolve(m as Usage); });
    s.child?.send('usage');
  });
  for (const s of subjects) await load(s.port ?? 0, 2_000); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const s of r % 2 === 0 ? subjects : [...subjects].reverse()) {
      const u0 = await usage(s);
      const ok = await load(s.port ?? 0, n);
      const u1 = await usage(s);
      s.us.push((u1.cpu - u0.cpu) / ok);
      s.gcUs.push(((u1.gcMs - u0.gcMs) * 1000) / ok);
    }
    process.stdout.write(`round ${r + 1}: ${subjects.map((s) => `${s.name} ${(s.us.at(-1) ?? 0).toFixed(1)} µs`).join(' | ')}\n`);
  }
  for (const s of subjects) {
    process.stdout.write(`${s.name}: ${median(s.us).toFixed(1)} µs CPU per connection, GC ${median(s.gcUs).toFixed(1)} µs per connection\n`);
  }
  const [first, ...rest] = subjects;
  for (const s of rest) {
    const d = s.us.map((x, i) => x - (first?.us[i] ?? 0));
    process.stdout.write(`${s.name} - ${first?.name}: paired median ${median(d).toFixed(1)} µs, lower in ${d.filter((x) => x < 0).length}/${d.length}\n`);
  }
  for (const s of subjects) s.child?.send('exit');
  upstream.close();
}

const argv = process.argv.slice(2);
if (argv[0] === 'child') {
  const [, root = '', mode = 'l4', port = '0', ini = ''] = argv;
  if (root === 'floor') floorChild(Number(port));
  else await remoraChild(root, mode, Number(port), ini);
} else {
  await driver(argv[0] ?? 'l4', Number(argv[1] ?? 8), Number(argv[2] ?? 2000), argv.slice(3));
  process.exit(0);
}
