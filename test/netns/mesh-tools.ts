// Servers and clients of the mesh-* netns tests, run inside pods: `node dist/test/netns/mesh-tools.js <tool> ...`.
// Servers print "ready" once listening; clients print one JSON line with their result and are bounded in count and
// time (a deadline makes them report what they have and exit).
import http from 'node:http';
import { connect, createServer, type Socket } from 'node:net';

const [tool = '', ...args] = process.argv.slice(2);
const arg = (i: number, name: string): string => {
  const v = args[i];
  if (v === undefined) throw new Error(`${tool}: missing ${name}`);
  return v;
};
const result = (value: unknown): void => { process.stdout.write(`${JSON.stringify(value)}\n`); };
const deadline = (ms: number, onExpire: () => void): NodeJS.Timeout => setTimeout(onExpire, ms).unref();
const bump = (m: Record<string, number>, k: string): void => { m[k] = (m[k] ?? 0) + 1; };

switch (tool) {
  // http-echo HOST PORTS TAG: an HTTP/1.1 app on each port of PORTS ("8080,8081") answering every request with JSON:
  // the tag, the local port, method, path, the headers it received and `secret: "app-secret-body-TAG"` (a marker the
  // capture test looks for on the wire); a URL ending in "?short" gets "TAG\n" instead (load clients). Prints "served
  // PORT METHOD PATH" for each request (the test's record of what reached the app).
  case 'http-echo': {
    const host = arg(0, 'HOST');
    const ports = arg(1, 'PORTS').split(',').map(Number);
    const tag = arg(2, 'TAG');
    let listening = 0;
    for (const port of ports) {
      const server = http.createServer((req, res) => {
        process.stdout.write(`served ${port} ${req.method ?? ''} ${req.url ?? ''}\n`);
        req.resume();
        req.on('end', () => {
          const short = (req.url ?? '').endsWith('?short');
          const body = short ? `${tag}\n`
            : JSON.stringify({ tag, port, method: req.method, path: req.url, headers: req.headers, secret: `app-secret-body-${tag}` });
          res.writeHead(200, { 'content-type': short ? 'text/plain' : 'application/json', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        });
      });
      server.keepAliveTimeout = 60_000;
      server.listen({ host, port, ipv6Only: false }, () => {
        if (++listening === ports.length) process.stdout.write('ready\n');
      });
    }
    break;
  }
  // tcp-echo HOST PORT TAG: a TCP server answering every line with "TAG LINE\n"; prints "got PORT LINE" for each line
  // (the test's record of what reached the app). Closes its side after the client's.
  case 'tcp-echo': {
    const port = Number(arg(1, 'PORT'));
    const tag = arg(2, 'TAG');
    const server = createServer({ allowHalfOpen: true }, (s: Socket) => {
      s.on('error', () => undefined);
      let buf = '';
      s.setEncoding('latin1').on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          process.stdout.write(`got ${port} ${line}\n`);
          s.write(`${tag} ${line}\n`);
        }
      });
      s.on('end', () => { s.end(); });
    });
    server.listen({ host: arg(0, 'HOST'), port, ipv6Only: false }, () => { process.stdout.write('ready\n'); });
    break;
  }
  // churn tcp HOST PORT [PAUSE_MS] | churn http URL [PAUSE_MS]: a NEW connection for every exchange (tcp: send
  // "churn-N\n" to an echo server, expect a line ending in "churn-N", close; http: GET URL without keep-alive, expect
  // 200), one after the other PAUSE_MS apart (default 20), until SIGTERM/SIGINT, at most 20000 exchanges or 300 s.
  // Prints "ready" after the first success and at the end one JSON line: exchanges sent, ok, failures by kind. A
  // failure does not stop the loop (every failure is counted).
  case 'churn': {
    const mode = arg(0, 'tcp|http');
    const pause = Number(args[mode === 'tcp' ? 3 : 2] ?? '20');
    const MAX = 20_000;
    let sent = 0;
    let ok = 0;
    let stopping = false;
    let readyShown = false;
    let inFlight = false;
    const failures: Record<string, number> = {};
    const report = (extra: Record<string, unknown> = {}): void => {
      result({ mode, sent, ok, failures, ...extra });
      process.exit(0);
    };
    const done = (failure: string | undefined): void => {
      inFlight = false;
      if (failure === undefined) {
        ok++;
        if (!readyShown) { readyShown = true; process.stdout.write('ready\n'); }
      } else bump(failures, failure);
      if (stopping || sent >= MAX) report();
      else setTimeout(one, pause);
    };
    const tcpOnce = (): void => {
      const target = arg(1, 'HOST');
      const n = sent;
      const s: Socket = connect({ host: target, port: Number(arg(2, 'PORT')) });
      let buf = '';
      let settled = false;
      const settle = (failure: string | undefined): void => {
        if (settled) return;
        settled = true;
        s.destroy();
        done(failure);
      };
      s.setTimeout(10_000, () => { settle('timeout'); });
      s.on('connect', () => { s.write(`churn-${n}\n`); });
      s.setEncoding('latin1').on('data', (d: string) => {
        buf += d;
        const i = buf.indexOf('\n');
        if (i < 0) return;
        settle(buf.slice(0, i).endsWith(` churn-${n}`) ? undefined : 'bad-echo');
      });
      s.on('error', (err: NodeJS.ErrnoException) => { settle(err.code ?? 'error'); });
      s.on('close', () => { settle('closed-without-answer'); });
    };
    const httpOnce = (): void => {
      let settled = false;
      const settle = (failure: string | undefined): void => {
        if (settled) return;
        settled = true;
        done(failure);
      };
      const req = http.get(arg(1, 'URL'), { agent: false, headers: { connection: 'close' } }, (res) => {
        res.resume();
        res.on('end', () => { settle(res.statusCode === 200 ? undefined : `status-${res.statusCode ?? 0}`); });
        res.on('error', (err: NodeJS.ErrnoException) => { settle(err.code ?? 'response-error'); });
      });
      req.on('error', (err: NodeJS.ErrnoException) => { settle(err.code ?? 'error'); });
      req.setTimeout(10_000, () => { req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })); });
    };
    const one = (): void => {
      if (stopping || inFlight) return;
      inFlight = true;
      sent++;
      if (mode === 'tcp') tcpOnce();
      else httpOnce();
    };
    const stop = (): void => {
      stopping = true;
      if (!inFlight) report();
      else setTimeout(() => { bump(failures, 'unanswered-at-stop'); report(); }, 12_000).unref();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    deadline(300_000, () => { bump(failures, 'deadline'); report(); });
    one();
    break;
  }
  // exchange HOST PORT TEXT [SOURCE]: one TCP connection (from SOURCE when given): sends TEXT, shuts its write side,
  // reads the whole reply. Prints {reply, end, error?}: end = the server closed cleanly, error = a reset or a timeout.
  case 'exchange': {
    const source = args[3];
    const s = connect({ host: arg(0, 'HOST'), port: Number(arg(1, 'PORT')), allowHalfOpen: true, ...(source === undefined ? {} : { localAddress: source }) });
    let reply = '';
    const t = deadline(10_000, () => { result({ reply, end: false, error: 'deadline' }); process.exit(0); });
    s.setEncoding('utf8').on('data', (d: string) => { reply += d; });
    s.on('error', (err: NodeJS.ErrnoException) => { clearTimeout(t); result({ reply, end: false, error: err.code ?? err.message }); process.exit(0); });
    s.on('end', () => { clearTimeout(t); result({ reply, end: true }); process.exit(0); });
    s.end(arg(2, 'TEXT'));
    break;
  }
  default:
    process.stderr.write(`mesh-tools: unknown tool "${tool}"\n`);
    process.exit(2);
}
