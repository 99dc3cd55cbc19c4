// A loopback lab for what Node's `net.Socket` costs per connection and per request, below any proxy: the same
// minimal HTTP/1.1 responder (find the end of the head, answer 200 with 2 bytes) served two ways, each in its own
// child process loaded by wrk from this one:
//   socket: `net.createServer()`: a `net.Socket` per connection, reads as 'data', `end()` / `write()`;
//   handle: the listening handle's own `onconnection`: the accepted TCP handle read through `onread`, written with
//           one `WriteWrap`, shut down with one `ShutdownWrap`, closed: libuv and Node's C++ without the stream layer
//           (the handle classes from `process.binding('tcp_wrap' / 'stream_wrap')`, bench/floor-proxy.ts handleBindings;
//           a lab only, not product code).
// Per round, every subject in alternating order; CPU per request (user and system, from /proc) and wrk's rps.
// docs/performance-notes.md "Issue 15, fifteenth part" has the numbers and what they mean for the L7 rows.
//
// Usage: node dist/bench/socket-lab.js [--rounds N] [--duration S] [--loads close,ka] [--connections C]
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { handleBindings } from './floor-proxy.js';
import { cpuSplit, loadAverage, median, runTool } from './proc.js';

const RESPONSE_KA = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
const RESPONSE_CLOSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
const HEAD_END = Buffer.from('\r\n\r\n');

/** How many complete heads are in `chunk` (the lab's requests carry no body and arrive whole). */
function headsIn(chunk: Buffer): number {
  let n = 0;
  for (let at = chunk.indexOf(HEAD_END); at >= 0; at = chunk.indexOf(HEAD_END, at + 4)) n++;
  return n;
}

function wantsClose(chunk: Buffer): boolean {
  return chunk.indexOf('Connection: close') >= 0 || chunk.indexOf('connection: close') >= 0;
}

function serveWithSockets(port: number, ready: (port: number) => void): void {
  const server = createServer((s: Socket) => {
    s.setNoDelay(true);
    s.on('error', () => { s.destroy(); });
    s.on('data', (d: Buffer) => {
      const heads = headsIn(d);
      if (heads === 0) return;
      if (wantsClose(d)) s.end(RESPONSE_CLOSE);
      else for (let i = 0; i < heads; i++) s.write(RESPONSE_KA);
    });
  });
  server.listen(port, '127.0.0.1', () => { ready((server.address() as { port: number }).port); });
}

function serveWithHandles(port: number, ready: (port: number) => void): void {
  const b = handleBindings();
  const server = new b.TCP(b.SERVER);
  if (server.bind('127.0.0.1', port) !== 0 || server.listen(511) !== 0) throw new Error('handle lab: cannot listen');
  const noop = (): void => {};
  server.onconnection = (err, h) => {
    if (err !== 0 || h === undefined) return;
    h.setNoDelay(true);
    h.onread = (buf) => {
      const n = b.state[b.kReadBytesOrError] ?? -1;
      if (n < 0 || buf === undefined) { h.readStop(); h.close(); return; }
      const chunk = Buffer.from(buf, b.state[b.kArrayBufferOffset] ?? 0, n);
      const heads = headsIn(chunk);
      if (heads === 0) return;
      const close = wantsClose(chunk);
      for (let i = 0; i < heads; i++) {
        const w = new b.WriteWrap();
        w.handle = h;
        w.oncomplete = noop;
        w.async = false;
        h.writeBuffer(w, close ? RESPONSE_CLOSE : RESPONSE_KA);
      }
      if (close) {
        const s = new b.ShutdownWrap();
        s.handle = h;
        s.oncomplete = () => { h.readStop(); h.close(); };
        h.shutdown(s);
      }
    };
    h.readStart();
  };
  const out: { port?: number } = {};
  server.getsockname(out);
  ready(out.port ?? port);
}

interface Sample { readonly rps: number; readonly cpuUs: number; readonly userUs: number }

function startSubject(kind: string): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', kind], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.once('error', rej);
    child.stdout?.setEncoding('utf8').once('data', (d: string) => { res({ child, port: Number(d.trim()) }); });
  });
}

async function measure(port: number, pid: number, load: string, seconds: number, connections: number): Promise<Sample> {
  const before = cpuSplit(pid);
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, ...(load === 'close' ? ['-H', 'Connection: close'] : []), `http://127.0.0.1:${port}/`];
  const out = await runTool('wrk', args);
  const after = cpuSplit(pid);
  const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const per = (s: number): number => (total === 0 ? NaN : (s * 1e6) / total);
  return { rps, cpuUs: per(after.user + after.sys - before.user - before.sys), userUs: per(after.user - before.user) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    serve: { type: 'string' }, rounds: { type: 'string', default: '4' }, duration: { type: 'string', default: '5' },
    loads: { type: 'string', default: 'close,ka' }, connections: { type: 'string', default: '32' },
  } });
  if (values.serve !== undefined) {
    const ready = (p: number): void => { process.stdout.write(`${p}\n`); };
    if (values.serve === 'handle') serveWithHandles(0, ready);
    else serveWithSockets(0, ready);
    return;
  }
  const kinds = ['socket', 'handle'];
  const subjects = await Promise.all(kinds.map(async (k) => ({ kind: k, ...(await startSubject(k)) })));
  const results = new Map<string, Sample[]>();
  try {
    for (let round = 1; round <= Number(values.rounds); round++) {
      const order = round % 2 === 1 ? subjects : [...subjects].reverse();
      for (const load of values.loads.split(',')) {
        for (const s of order) {
          const r = await measure(s.port, s.child.pid ?? 0, load, Number(values.duration), Number(values.connections));
          const key = `${s.kind} ${load}`;
          results.set(key, [...(results.get(key) ?? []), r]);
          console.error(`[socket-lab] round ${round} ${key}: ${r.rps.toFixed(0)} rps, ${r.cpuUs.toFixed(1)} µs CPU/req (user ${r.userUs.toFixed(1)}), load ${loadAverage()}`);
        }
      }
    }
  } finally {
    for (const s of subjects) s.child.kill();
  }
  console.log('| subject, load | rps (median) | CPU per request (median) | user |\n|---|---:|---:|---:|');
  for (const [key, xs] of results) {
    console.log(`| ${key} | ${median(xs.map((x) => x.rps)).toFixed(0)} | ${median(xs.map((x) => x.cpuUs)).toFixed(1)} µs | ${median(xs.map((x) => x.userUs)).toFixed(1)} µs |`);
  }
}

main().catch((err: unknown) => { console.error('[socket-lab] failed:', err); process.exit(1); });
