// Small servers and clients of the l4-* netns tests, run inside pods: `node dist/test/netns/l4-tools.js <tool> ...`.
// Servers print "ready" once listening; clients print one JSON line with their result and are bounded in time.
import { connect, createServer } from 'node:net';

const [tool = '', ...args] = process.argv.slice(2);
const arg = (i: number, name: string): string => {
  const v = args[i];
  if (v === undefined) throw new Error(`${tool}: missing ${name}`);
  return v;
};
const result = (value: unknown): void => { process.stdout.write(`${JSON.stringify(value)}\n`); };

switch (tool) {
  // banner HOST PORT TEXT: a server-first server. Greets every connection with "TEXT\r\n" at once, answers each line
  // with "echo <line>\r\n", and closes after the client's FIN.
  case 'banner': {
    const text = arg(2, 'TEXT');
    const server = createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined);
      s.write(`${text}\r\n`);
      let buf = '';
      s.setEncoding('latin1').on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          s.write(`echo ${buf.slice(0, i).replace(/\r$/, '')}\r\n`);
          buf = buf.slice(i + 1);
        }
      });
      s.on('end', () => { s.end(); });
    });
    server.listen({ host: arg(0, 'HOST'), port: Number(arg(1, 'PORT')), ipv6Only: false }, () => { process.stdout.write('ready\n'); });
    break;
  }
  // first-byte HOST PORT [LINE]: connects, sends nothing, and measures the time until the server's first bytes (its
  // greeting). Then sends LINE (if given) and collects the reply until the server closes after the client's FIN.
  case 'first-byte': {
    const line = args[2];
    const started = performance.now();
    let connectedMs: number | undefined;
    let firstByteMs: number | undefined;
    let greeting = '';
    let rest = '';
    const s = connect({ host: arg(0, 'HOST'), port: Number(arg(1, 'PORT')), allowHalfOpen: true });
    const t = setTimeout(() => { result({ connectedMs, firstByteMs, greeting, rest, error: 'deadline' }); process.exit(1); }, 30_000);
    s.on('connect', () => { connectedMs = performance.now() - started; });
    s.on('data', (d: Buffer) => {
      if (firstByteMs === undefined) {
        firstByteMs = performance.now() - started;
        greeting = d.toString('latin1');
        if (line !== undefined) s.write(`${line}\r\n`);
        s.end();
        return;
      }
      rest += d.toString('latin1');
    });
    s.on('error', (err: NodeJS.ErrnoException) => { clearTimeout(t); result({ connectedMs, firstByteMs, greeting, rest, error: err.code }); });
    s.on('end', () => { clearTimeout(t); result({ connectedMs, firstByteMs, greeting, rest }); s.destroy(); });
    break;
  }
  // ttfb HOST PORT SECONDS WARMUP: one connection after the other, each closed as soon as the server's first bytes
  // (its greeting) arrive; WARMUP seconds unmeasured, then SECONDS measured. Prints {count, p50Ms, p99Ms, errors}:
  // the time from connect() to the first byte, for a server-first protocol.
  case 'ttfb': {
    const host = arg(0, 'HOST');
    const port = Number(arg(1, 'PORT'));
    const seconds = Number(arg(2, 'SECONDS'));
    const warmup = Number(arg(3, 'WARMUP'));
    const samples: number[] = [];
    let errors = 0;
    const startedAt = performance.now();
    const measureFrom = startedAt + warmup * 1000;
    const endAt = measureFrom + seconds * 1000;
    const finish = (): void => {
      samples.sort((x, y) => x - y);
      const pct = (p: number): number | undefined => samples[Math.min(samples.length, Math.max(1, Math.ceil((p / 100) * samples.length))) - 1];
      result({ count: samples.length, p50Ms: pct(50), p99Ms: pct(99), errors });
    };
    const one = (): void => {
      const t0 = performance.now();
      if (t0 >= endAt) { finish(); return; }
      const s = connect({ host, port });
      let done = false;
      const next = (ok: boolean): void => {
        if (done) return;
        done = true;
        const t1 = performance.now();
        if (t0 >= measureFrom) { if (ok) samples.push(t1 - t0); else errors++; }
        s.destroy();
        setImmediate(one);
      };
      s.once('data', () => { next(true); });
      s.on('error', () => { next(false); });
      s.on('close', () => { next(false); });
      s.setTimeout(5_000, () => { next(false); });
    };
    one();
    break;
  }
  default:
    process.stderr.write(`l4-tools: unknown tool "${tool}"\n`);
    process.exit(2);
}
