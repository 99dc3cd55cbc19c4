// Small servers and clients the proxy netns tests run inside pods: `node dist/test/netns/proxy-tools.js <tool> ...`.
// Servers print one line "ready" on stdout once listening; clients print one JSON line with their result.
// Every client is bounded in time (it gives up and reports after a deadline) so a test can never hang on it.
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';

const [tool = '', ...args] = process.argv.slice(2);
const arg = (i: number, name: string): string => {
  const v = args[i];
  if (v === undefined) throw new Error(`${tool}: missing ${name}`);
  return v;
};
const ready = (): void => { process.stdout.write('ready\n'); };
const result = (value: unknown): void => { process.stdout.write(`${JSON.stringify(value)}\n`); };
/** Give up after this long; the test then sees the partial result instead of waiting forever. */
const deadline = (ms: number, onExpire: () => void): NodeJS.Timeout => setTimeout(onExpire, ms).unref();

function listenTcp(host: string, port: number, onConnection: (s: Socket) => void): void {
  const server = createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => undefined); onConnection(s); });
  server.listen({ host, port, ipv6Only: false }, ready);
}

function dial(host: string, port: number): Socket {
  return connect({ host, port, allowHalfOpen: true });
}

switch (tool) {
  // http-app HOST PORT TAG: answers every request with what the app sees of the connection.
  case 'http-app': {
    const tag = arg(2, 'TAG');
    const server = createHttpServer((req, res) => {
      const body = JSON.stringify({ tag, remote: req.socket.remoteAddress, local: req.socket.localAddress, localPort: req.socket.localPort });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    server.keepAliveTimeout = 1000;
    server.listen({ host: arg(0, 'HOST'), port: Number(arg(1, 'PORT')), ipv6Only: false }, ready);
    break;
  }
  // reply-after-end HOST PORT: reads until the client's FIN, then replies "got <n> bytes: <text>" and ends.
  case 'reply-after-end':
    listenTcp(arg(0, 'HOST'), Number(arg(1, 'PORT')), (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        s.end(`got ${Buffer.byteLength(text)} bytes: ${text}`);
      });
    });
    break;
  // close-first HOST PORT: says "bye" and shuts its write side at once; prints what it still receives afterwards.
  case 'close-first':
    listenTcp(arg(0, 'HOST'), Number(arg(1, 'PORT')), (s) => {
      let got = '';
      s.setEncoding('utf8').on('data', (d: string) => { got += d; });
      s.on('end', () => { result({ serverReceivedAfterItsFin: got }); s.destroy(); });
      s.end('bye');
    });
    break;
  // reset-on-data HOST PORT: resets (RST) the connection as soon as the first bytes arrive.
  case 'reset-on-data':
    listenTcp(arg(0, 'HOST'), Number(arg(1, 'PORT')), (s) => { s.once('data', () => s.resetAndDestroy()); });
    break;
  // send-then-end HOST PORT TEXT: sends TEXT, shuts its write side, reads the whole reply.
  case 'send-then-end': {
    const s = dial(arg(0, 'HOST'), Number(arg(1, 'PORT')));
    let reply = '';
    const t = deadline(10_000, () => { result({ reply, end: false, error: 'deadline' }); process.exit(1); });
    s.setEncoding('utf8').on('data', (d: string) => { reply += d; });
    s.on('error', (err: NodeJS.ErrnoException) => { clearTimeout(t); result({ reply, end: false, error: err.code }); });
    s.on('end', () => { clearTimeout(t); result({ reply, end: true }); s.destroy(); });
    s.end(arg(2, 'TEXT'));
    break;
  }
  // read-until-end-then-send HOST PORT TEXT: waits for the server's FIN, then sends TEXT and ends.
  case 'read-until-end-then-send': {
    const s = dial(arg(0, 'HOST'), Number(arg(1, 'PORT')));
    let reply = '';
    const t = deadline(10_000, () => { result({ reply, end: false, error: 'deadline' }); process.exit(1); });
    s.setEncoding('utf8').on('data', (d: string) => { reply += d; });
    s.on('error', (err: NodeJS.ErrnoException) => { clearTimeout(t); result({ reply, end: false, error: err.code }); });
    s.on('end', () => {
      s.end(arg(2, 'TEXT'), () => { clearTimeout(t); result({ reply, end: true }); });
    });
    break;
  }
  // many HOST PORT COUNT CONCURRENCY: COUNT short HTTP/1.0-style exchanges ("GET / HTTP/1.0", read until close).
  case 'many': {
    const host = arg(0, 'HOST');
    const port = Number(arg(1, 'PORT'));
    const count = Number(arg(2, 'COUNT'));
    const concurrency = Number(arg(3, 'CONCURRENCY'));
    let started = 0;
    let ok = 0;
    let failed = 0;
    const errors: Record<string, number> = {};
    const t = deadline(90_000, () => { result({ ok, failed, errors, error: 'deadline' }); process.exit(1); });
    const one = (): void => {
      if (started >= count) {
        if (ok + failed === count) { clearTimeout(t); result({ ok, failed, errors }); }
        return;
      }
      started++;
      const s = dial(host, port);
      let got = '';
      s.setEncoding('utf8').on('data', (d: string) => { got += d; });
      s.on('error', (err: NodeJS.ErrnoException) => {
        failed++;
        errors[err.code ?? 'unknown'] = (errors[err.code ?? 'unknown'] ?? 0) + 1;
        s.destroy();
        one();
      });
      s.on('end', () => {
        if (got.startsWith('HTTP/1.1 200')) ok++;
        else { failed++; errors['bad-reply'] = (errors['bad-reply'] ?? 0) + 1; }
        s.destroy();
        one();
      });
      s.end(`GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
    };
    for (let i = 0; i < concurrency; i++) one();
    break;
  }
  // hold HOST PORT: sends "part1" and prints "holding"; on SIGUSR1 sends "part2", ends, prints the reply.
  case 'hold': {
    const s = dial(arg(0, 'HOST'), Number(arg(1, 'PORT')));
    let reply = '';
    const t = deadline(60_000, () => { result({ reply, end: false, error: 'deadline' }); process.exit(1); });
    s.setEncoding('utf8').on('data', (d: string) => { reply += d; });
    s.on('error', (err: NodeJS.ErrnoException) => { clearTimeout(t); result({ reply, end: false, error: err.code }); process.exit(0); });
    s.on('end', () => { clearTimeout(t); result({ reply, end: true }); s.destroy(); });
    s.write('part1', () => { process.stdout.write('holding\n'); });
    process.on('SIGUSR1', () => { s.end('part2'); });
    break;
  }
  default:
    process.stderr.write(`proxy-tools: unknown tool "${tool}"\n`);
    process.exit(2);
}
