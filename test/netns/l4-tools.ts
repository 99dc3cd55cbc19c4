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
  default:
    process.stderr.write(`l4-tools: unknown tool "${tool}"\n`);
    process.exit(2);
}
