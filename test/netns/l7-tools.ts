// Servers and clients of the l7-* netns tests, run inside pods: `node dist/test/netns/l7-tools.js <tool> ...`.
// Servers print "ready" once listening; clients print one JSON line with their result and are bounded in time (a
// deadline makes them report what they have and exit).
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { WebSocket, WebSocketServer } from 'ws';

const [tool = '', ...args] = process.argv.slice(2);
const arg = (i: number, name: string): string => {
  const v = args[i];
  if (v === undefined) throw new Error(`${tool}: missing ${name}`);
  return v;
};
const ready = (): void => { process.stdout.write('ready\n'); };
const result = (value: unknown): void => { process.stdout.write(`${JSON.stringify(value)}\n`); };
const deadline = (ms: number, onExpire: () => void): NodeJS.Timeout => setTimeout(onExpire, ms).unref();
const bump = (m: Record<string, number>, k: string): void => { m[k] = (m[k] ?? 0) + 1; };

const PROTO = `
syntax = "proto3";
package remora.test;
message EchoRequest { string text = 1; int32 count = 2; }
message EchoReply { string text = 1; int32 index = 2; string served_by = 3; }
service Echo {
  rpc Unary (EchoRequest) returns (EchoReply);
  rpc ServerStream (EchoRequest) returns (stream EchoReply);
  rpc ClientStream (stream EchoRequest) returns (EchoReply);
}
`;

interface EchoRequest { text: string; count: number }
interface EchoReply { text: string; index: number; served_by: string }
type EchoCtor = typeof grpc.Client & { service: grpc.ServiceDefinition };

function loadEcho(): EchoCtor {
  const dir = mkdtempSync(join(tmpdir(), 'remora-l7-proto-'));
  const file = join(dir, 'echo.proto');
  writeFileSync(file, PROTO);
  const def = protoLoader.loadSync(file, { keepCase: true, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { remora: { test: { Echo: EchoCtor } } };
  return pkg.remora.test.Echo;
}

/** Listen on HOST:PORT (dual-stack for "::"). */
function listenOn(server: http.Server | http2.Http2Server | ReturnType<typeof createServer>, host: string, port: number): void {
  server.listen({ host, port, ipv6Only: false }, ready);
}

switch (tool) {
  // http-tag HOST PORT TAG [MODE]: HTTP/1.1 app answering "TAG\n" (x-tag, x-big-len = length of x-big, x-method).
  // /delay/MS answers after MS. MODE: ok | fail (503) | flaky-503 (every other request 503) | flaky-reset (every
  // other request: the connection is reset, no response) | slow-MS (every request answered 200 after MS, whatever
  // the path). SIGUSR1 switches between the MODE and ok. /hold answers when the process gets SIGUSR2 (every held
  // response at once).
  case 'http-tag': {
    const tag = arg(2, 'TAG');
    const configured = args[3] ?? 'ok';
    let mode = configured;
    let n = 0;
    const slowMs = (): number => { const s = /^slow-(\d+)$/.exec(mode); return s === null ? 0 : Number(s[1]); };
    process.on('SIGUSR1', () => { mode = mode === 'ok' ? configured : 'ok'; process.stdout.write(`mode ${mode}\n`); });
    const held: (() => void)[] = [];
    process.on('SIGUSR2', () => { for (const send of held.splice(0)) send(); });
    const server = http.createServer({ maxHeaderSize: 256 * 1024, keepAliveTimeout: 30_000 }, (req, res) => {
      n++;
      req.resume();
      req.on('end', () => {
        if (mode === 'fail' || (mode === 'flaky-503' && n % 2 === 1)) {
          res.writeHead(503, { 'x-tag': tag, 'content-type': 'text/plain' });
          res.end(`${tag} failing\n`);
          return;
        }
        if (mode === 'flaky-reset' && n % 2 === 1) {
          req.socket.resetAndDestroy();
          return;
        }
        const big = req.headers['x-big'];
        const headers = {
          'x-tag': tag, 'x-method': req.method ?? '', 'x-big-len': String(typeof big === 'string' ? big.length : 0),
          'x-route-seen': String(req.headers['x-route'] ?? ''), 'content-type': 'text/plain',
        };
        const m = /^\/delay\/(\d+)/.exec(req.url ?? '');
        const send = (): void => { res.writeHead(200, headers); res.end(`${tag}\n`); };
        if (req.url === '/hold') {
          held.push(send);
          return;
        }
        const wait = (m === null ? 0 : Number(m[1])) + slowMs();
        if (wait === 0) send();
        else setTimeout(send, wait);
      });
    });
    listenOn(server, arg(0, 'HOST'), Number(arg(1, 'PORT')));
    break;
  }
  // idle-close HOST PORT TAG [DELAY_MS]: a raw HTTP/1.1 server (GET only, no bodies) that answers "TAG\n" after
  // DELAY_MS (default 0) with Content-Length and no Keep-Alive hint, and closes every connection that stays idle for
  // 1 s (the keep-alive race of the tests).
  case 'idle-close': {
    const tag = arg(2, 'TAG');
    const delay = Number(args[3] ?? '0');
    const body = `${tag}\n`;
    const server = createServer((s: Socket) => {
      s.on('error', () => undefined);
      let buf = '';
      let timer: NodeJS.Timeout | undefined;
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => { s.end(); }, 1_000);
      };
      arm();
      s.setEncoding('latin1').on('data', (d: string) => {
        clearTimeout(timer);
        buf += d;
        let i: number;
        const answer = (): void => {
          s.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
          arm();
        };
        while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
          buf = buf.slice(i + 4);
          if (delay > 0) setTimeout(answer, delay);
          else answer();
        }
      });
      s.on('close', () => { clearTimeout(timer); });
    });
    listenOn(server, arg(0, 'HOST'), Number(arg(1, 'PORT')));
    break;
  }
  // h2c-tag HOST PORT TAG: HTTP/2 with prior knowledge (h2c), answering "TAG\n" with x-tag and x-proto (/delay/MS:
  // after MS; /hold: when the process gets SIGUSR2).
  case 'h2c-tag': {
    const tag = arg(2, 'TAG');
    const held: (() => void)[] = [];
    process.on('SIGUSR2', () => { for (const send of held.splice(0)) send(); });
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      stream.resume();
      stream.on('end', () => {
        const send = (): void => {
          if (stream.destroyed) return;
          stream.respond({ ':status': 200, 'x-tag': tag, 'x-proto': 'h2', 'x-path': String(headers[':path']), 'content-type': 'text/plain' });
          stream.end(`${tag}\n`);
        };
        if (headers[':path'] === '/hold') {
          held.push(send);
          return;
        }
        const m = /^\/delay\/(\d+)/.exec(String(headers[':path']));
        if (m === null) send();
        else setTimeout(send, Number(m[1]));
      });
    });
    listenOn(server, arg(0, 'HOST'), Number(arg(1, 'PORT')));
    break;
  }
  // grpc-server HOST PORT TAG: the Echo service (unary, server streaming with trailers, client streaming); text
  // "fail" answers NOT_FOUND with trailer metadata.
  case 'grpc-server': {
    const tag = arg(2, 'TAG');
    const Echo = loadEcho();
    const server = new grpc.Server();
    server.addService(Echo.service, {
      Unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => {
        if (call.request.text === 'fail') {
          const md = new grpc.Metadata();
          md.set('x-detail', 'why');
          cb({ code: grpc.status.NOT_FOUND, details: 'no such thing', metadata: md } as grpc.ServiceError);
          return;
        }
        const md = new grpc.Metadata();
        md.set('x-server-trailer', 'ok');
        cb(null, { text: `echo:${call.request.text}`, index: 0, served_by: tag }, md);
      },
      ServerStream: (call: grpc.ServerWritableStream<EchoRequest, EchoReply>) => {
        for (let i = 0; i < call.request.count; i++) call.write({ text: call.request.text, index: i, served_by: tag });
        const md = new grpc.Metadata();
        md.set('x-stream-trailer', String(call.request.count));
        call.end(md);
      },
      ClientStream: (call: grpc.ServerReadableStream<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => {
        let n = 0;
        let text = '';
        call.on('data', (r: EchoRequest) => { n++; text += r.text; });
        call.on('end', () => { cb(null, { text, index: n, served_by: tag }); });
      },
    });
    const host = arg(0, 'HOST');
    server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${arg(1, 'PORT')}`, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err !== null) { process.stderr.write(`${String(err)}\n`); process.exit(1); }
      ready();
    });
    break;
  }
  // ws-echo HOST PORT: a WebSocket echo server.
  case 'ws-echo': {
    const server = http.createServer((_q, res) => { res.writeHead(426); res.end(); });
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => { ws.on('message', (data, binary) => { ws.send(data, { binary }); }); });
    listenOn(server, arg(0, 'HOST'), Number(arg(1, 'PORT')));
    break;
  }
  // load URL COUNT CONCURRENCY [NAME:VALUE ...]: COUNT GETs over CONCURRENCY keep-alive connections; counts bodies,
  // statuses, x-remora-error values and client errors.
  case 'load': {
    const url = arg(0, 'URL');
    const count = Number(arg(1, 'COUNT'));
    const concurrency = Number(arg(2, 'CONCURRENCY'));
    const headers: Record<string, string> = {};
    for (const h of args.slice(3)) { const i = h.indexOf(':'); headers[h.slice(0, i)] = h.slice(i + 1); }
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    const bodies: Record<string, number> = {};
    const statuses: Record<string, number> = {};
    const remoraErrors: Record<string, number> = {};
    const errors: Record<string, number> = {};
    let started = 0;
    let done = 0;
    const finish = (extra: Record<string, unknown> = {}): void => {
      result({ done, bodies, statuses, remoraErrors, errors, ...extra });
      agent.destroy();
      process.exit(0);
    };
    deadline(60_000, () => { finish({ error: 'deadline' }); });
    const one = (): void => {
      if (started >= count) return;
      started++;
      const req = http.get(url, { agent, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => { body += d; });
        res.on('end', () => {
          bump(statuses, String(res.statusCode));
          bump(bodies, body.trim());
          const e = res.headers['x-remora-error'];
          if (typeof e === 'string') bump(remoraErrors, e);
          next();
        });
        res.on('error', (err: NodeJS.ErrnoException) => { bump(errors, err.code ?? err.message); next(); });
      });
      req.on('error', (err: NodeJS.ErrnoException) => { bump(errors, err.code ?? err.message); next(); });
      req.setTimeout(10_000, () => { req.destroy(new Error('timeout')); });
    };
    const next = (): void => {
      done++;
      if (done === count) finish();
      else one();
    };
    for (let i = 0; i < concurrency; i++) one();
    break;
  }
  // race URL CLIENTS PER_CLIENT MIN_MS MAX_MS: CLIENTS clients, each on one keep-alive connection, sending PER_CLIENT
  // GETs one at a time with a random pause in [MIN_MS, MAX_MS] between them, all starting together (so requests come
  // in waves about a second apart and the proxy's pooled connections idle for about a second between waves).
  // Reports statuses and client errors.
  case 'race': {
    const url = arg(0, 'URL');
    const clients = Number(arg(1, 'CLIENTS'));
    const per = Number(arg(2, 'PER_CLIENT'));
    const min = Number(arg(3, 'MIN_MS'));
    const max = Number(arg(4, 'MAX_MS'));
    const statuses: Record<string, number> = {};
    const errors: Record<string, number> = {};
    const remoraErrors: Record<string, number> = {};
    let done = 0;
    let finished = 0;
    const agents: http.Agent[] = [];
    const finish = (extra: Record<string, unknown> = {}): void => {
      result({ done, statuses, remoraErrors, errors, ...extra });
      for (const a of agents) a.destroy();
      process.exit(0);
    };
    deadline(Math.ceil(per * max * 1.5) + 30_000, () => { finish({ error: 'deadline' }); });
    for (let c = 0; c < clients; c++) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      let sent = 0;
      const loop = (): void => {
        if (sent >= per) {
          if (++finished === clients) finish();
          return;
        }
        sent++;
        const req = http.get(url, { agent }, (res) => {
          res.resume();
          res.on('end', () => {
            bump(statuses, String(res.statusCode));
            const e = res.headers['x-remora-error'];
            if (typeof e === 'string') bump(remoraErrors, e);
            done++;
            setTimeout(loop, min + Math.random() * (max - min));
          });
        });
        req.on('error', (err: NodeJS.ErrnoException) => {
          bump(errors, err.code ?? err.message);
          done++;
          setTimeout(loop, min + Math.random() * (max - min));
        });
        req.setTimeout(10_000, () => { req.destroy(new Error('timeout')); });
      };
      loop();
    }
    break;
  }
  // grpc-client TARGET UNARY STREAM_COUNT: UNARY unary calls (two at a time), one server stream of STREAM_COUNT
  // messages, one client stream of 5 messages, and one call that fails with NOT_FOUND. Reports what came back.
  case 'grpc-client': {
    const Echo = loadEcho();
    const client = new Echo(arg(0, 'TARGET'), grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...a: unknown[]) => unknown>;
    const unaryCount = Number(arg(1, 'UNARY'));
    const streamCount = Number(arg(2, 'STREAM_COUNT'));
    deadline(30_000, () => { result({ error: 'deadline' }); process.exit(1); });
    const unary = (text: string): Promise<{ code: number; text?: string; details?: string; trailers: Record<string, unknown> }> =>
      new Promise((resolve) => {
        let trailers: Record<string, unknown> = {};
        const call = (client['Unary'] as (r: unknown, cb: (e: grpc.ServiceError | null, r?: EchoReply) => void) => grpc.ClientUnaryCall)(
          { text, count: 0 }, (err, reply) => {
            setImmediate(() => { resolve(err === null ? { code: 0, text: reply?.text ?? '', trailers } : { code: err.code, details: err.details, trailers }); });
          });
        call.on('status', (s: grpc.StatusObject) => { trailers = s.metadata.getMap(); });
      });
    void (async () => {
      const unaryResults: Record<string, number> = {};
      for (let i = 0; i < unaryCount; i += 2) {
        const rs = await Promise.all([unary(`u${i}`), unary(`u${i + 1}`)]);
        for (const r of rs) bump(unaryResults, r.code === 0 && r.text?.startsWith('echo:u') === true && r.trailers['x-server-trailer'] === 'ok' ? 'ok' : `bad:${JSON.stringify(r)}`);
      }
      const failed = await unary('fail');
      const stream = await new Promise<{ messages: number; inOrder: boolean; code: number; trailer: unknown }>((resolve) => {
        const call = (client['ServerStream'] as (r: unknown) => grpc.ClientReadableStream<EchoReply>)({ text: 's', count: streamCount });
        let messages = 0;
        let inOrder = true;
        call.on('data', (m: EchoReply) => { if (m.index !== messages) inOrder = false; messages++; });
        call.on('error', () => undefined);
        call.on('status', (s: grpc.StatusObject) => { resolve({ messages, inOrder, code: s.code, trailer: s.metadata.getMap()['x-stream-trailer'] }); });
      });
      const upload = await new Promise<{ code: number; text?: string; index?: number }>((resolve) => {
        const call = (client['ClientStream'] as (cb: (e: grpc.ServiceError | null, r?: EchoReply) => void) => grpc.ClientWritableStream<EchoRequest>)(
          (err, reply) => { resolve(err === null ? { code: 0, text: reply?.text ?? '', index: reply?.index ?? -1 } : { code: err.code }); });
        for (const t of ['a', 'b', 'c', 'd', 'e']) call.write({ text: t, count: 0 });
        call.end();
      });
      result({ unary: unaryResults, failed, stream, upload });
      client.close();
      process.exit(0);
    })();
    break;
  }
  // ws-client URL COUNT: opens a WebSocket, sends COUNT text messages and one 100 KiB binary message, checks the echoes.
  case 'ws-client': {
    const count = Number(arg(1, 'COUNT'));
    const ws = new WebSocket(arg(0, 'URL'));
    const got: string[] = [];
    let binaryOk = false;
    const big = Buffer.alloc(100 * 1024, 7);
    deadline(20_000, () => { result({ got: got.length, binaryOk, error: 'deadline' }); process.exit(1); });
    ws.on('open', () => {
      for (let i = 0; i < count; i++) ws.send(`m${i}`);
      ws.send(big);
    });
    ws.on('message', (data, binary) => {
      if (binary) {
        binaryOk = Buffer.isBuffer(data) && data.equals(big);
        ws.close(1000, 'done');
        return;
      }
      got.push(String(data));
    });
    ws.on('close', (code) => {
      result({ got: got.length, inOrder: got.every((m, i) => m === `m${i}`), binaryOk, closeCode: code });
      process.exit(0);
    });
    ws.on('error', (err) => { result({ got: got.length, binaryOk, error: err.message }); process.exit(1); });
    break;
  }
  // raw HOST PORT FILE [WAIT_MS]: sends the bytes of FILE, prints everything received until the server closes or
  // WAIT_MS (default 3000) pass.
  case 'raw': {
    const payload = readFileSync(arg(2, 'FILE'));
    const wait = Number(args[3] ?? '3000');
    const s = connect({ host: arg(0, 'HOST'), port: Number(arg(1, 'PORT')), allowHalfOpen: true });
    let text = '';
    const done = (closed: boolean, error?: string): void => {
      result({ text, closed, ...(error === undefined ? {} : { error }) });
      s.destroy();
      process.exit(0);
    };
    const t = setTimeout(() => { done(false); }, wait);
    s.setEncoding('latin1').on('data', (d: string) => { text += d; });
    s.on('end', () => { clearTimeout(t); done(true); });
    s.on('error', (err: NodeJS.ErrnoException) => { clearTimeout(t); done(true, err.code); });
    s.write(payload);
    break;
  }
  // flood HOST PORT FILE WINDOW_MS: writes FILE's bytes on one connection in one write and never reads; prints
  // "writing" once the write is queued, then, when every byte has reached the kernel or after WINDOW_MS, whichever
  // comes first, {"drained": bool, "unsent": bytes still in user space}, and exits. Against a peer that stops
  // reading, a payload larger than both kernels' buffers never drains.
  case 'flood': {
    const payload = readFileSync(arg(2, 'FILE'));
    const windowMs = Number(arg(3, 'WINDOW_MS'));
    const s = connect({ host: arg(0, 'HOST'), port: Number(arg(1, 'PORT')) });
    s.on('error', () => undefined);
    s.once('connect', () => {
      const report = (): void => { result({ drained: s.writableLength === 0, unsent: s.writableLength }); s.destroy(); process.exit(0); };
      const t = setTimeout(report, windowMs);
      if (s.write(payload)) { clearTimeout(t); report(); return; }
      process.stdout.write('writing\n');
      s.once('drain', () => { clearTimeout(t); report(); });
    });
    break;
  }
  // drain-probe URL h1|h2: on one connection (HTTP/1.1 keep-alive, or one HTTP/2 session), sends GET URL (which
  // answers late), prints "sent", and reports the response, whether the server asked to close (Connection: close /
  // GOAWAY), and whether the connection closed afterwards.
  case 'drain-probe': {
    const url = new URL(arg(0, 'URL'));
    const proto = arg(1, 'h1|h2');
    deadline(30_000, () => { result({ error: 'deadline' }); process.exit(1); });
    if (proto === 'h1') {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      // The request's socket, kept from its 'socket' event: `res.socket` may already be null at 'end' (Node detaches
      // a socket that closed before the 'end' handler ran), which crashed this probe without a result.
      let reqSocket: import('node:net').Socket | undefined;
      const req = http.get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => { body += d; });
        res.on('end', () => {
          const socket = reqSocket ?? res.socket;
          if (socket === null || socket === undefined) {
            result({ error: 'no socket' });
            process.exit(0);
          }
          const report = (closed: boolean): void => {
            result({ status: res.statusCode, body, connection: res.headers.connection, closed });
            process.exit(0);
          };
          if (socket.destroyed) report(true);
          else {
            socket.once('close', () => { report(true); });
            // Not unref'd: a keep-alive socket back in the agent is unref'd, and the probe must still report.
            setTimeout(() => { report(false); }, 5_000);
          }
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => { result({ error: err.code ?? err.message }); process.exit(0); });
      req.on('socket', (s) => { reqSocket = s; s.once('connect', () => { setTimeout(() => { process.stdout.write('sent\n'); }, 50); }); });
    } else {
      const session = http2.connect(url.origin);
      let goaway = false;
      session.on('goaway', () => { goaway = true; });
      session.on('error', () => undefined);
      const stream = session.request({ ':path': url.pathname });
      let status = 0;
      let body = '';
      stream.on('response', (h) => { status = Number(h[':status']); });
      stream.setEncoding('utf8').on('data', (d: string) => { body += d; });
      stream.on('end', () => {
        const report = (closed: boolean): void => { result({ status, body, goaway, closed }); process.exit(0); };
        if (session.closed || session.destroyed) report(true);
        else {
          session.once('close', () => { report(true); });
          setTimeout(() => { report(false); }, 5_000).unref();
        }
      });
      stream.on('error', (err: NodeJS.ErrnoException) => { result({ error: err.code ?? err.message, goaway }); process.exit(0); });
      session.once('connect', () => { setTimeout(() => { process.stdout.write('sent\n'); }, 50); });
    }
    break;
  }
  // echo HOST PORT TAG: a TCP server that answers every line with "TAG LINE\n" (opaque TCP for the steady client).
  // header-echo HOST PORT: HTTP/1.1 app answering 200 with the request's headers as one JSON object (lower-case
  // names; a repeated header's values joined with ", ").
  case 'header-echo': {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const body = JSON.stringify(req.headers);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    listenOn(server, arg(0, 'HOST'), Number(arg(1, 'PORT')));
    break;
  }
  // otlp-receiver HOST PORT: an OTLP/HTTP JSON trace receiver (POST /v1/traces answered 200 {}); prints one JSON line
  // per span received: {service, traceId, spanId, parentSpanId, name, kind, start, end, status, attrs: {key: value}}.
  // Anything else (another path, a body that is not OTLP JSON) is printed as {"bad": "..."} and answered 400.
  case 'otlp-receiver': {
    interface AnyValue { stringValue?: string; intValue?: string }
    interface Kv { key: string; value: AnyValue }
    interface Body { resourceSpans: { resource: { attributes: Kv[] }; scopeSpans: { spans: {
      traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; startTimeUnixNano: string; endTimeUnixNano: string;
      attributes: Kv[]; status: { code?: number } }[] }[] }[] }
    const flat = (kvs: Kv[]): Record<string, string> => Object.fromEntries(kvs.map((a) => [a.key, a.value.stringValue ?? a.value.intValue ?? '']));
    const server = http.createServer((req, res) => {
      let text = '';
      req.setEncoding('utf8').on('data', (d: string) => { text += d; }).on('end', () => {
        try {
          if (req.method !== 'POST' || req.url !== '/v1/traces' || req.headers['content-type'] !== 'application/json') throw new Error(`${req.method} ${req.url} ${req.headers['content-type']}`);
          const body = JSON.parse(text) as Body;
          for (const rs of body.resourceSpans) {
            const resource = flat(rs.resource.attributes);
            for (const ss of rs.scopeSpans) {
              for (const sp of ss.spans) {
                result({ service: resource['service.name'], traceId: sp.traceId, spanId: sp.spanId, parentSpanId: sp.parentSpanId ?? null, name: sp.name,
                  kind: sp.kind, start: sp.startTimeUnixNano, end: sp.endTimeUnixNano, status: sp.status.code ?? 0, attrs: flat(sp.attributes) });
              }
            }
          }
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{}');
        } catch (err) {
          result({ bad: String(err) });
          res.writeHead(400);
          res.end();
        }
      });
    });
    listenOn(server, arg(0, 'HOST'), Number(arg(1, 'PORT')));
    break;
  }
  case 'echo': {
    const tag = arg(2, 'TAG');
    const server = createServer((s: Socket) => {
      s.on('error', () => undefined);
      let buf = '';
      s.setEncoding('latin1').on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          s.write(`${tag} ${buf.slice(0, i)}\n`);
          buf = buf.slice(i + 1);
        }
      });
      s.on('end', () => { s.end(); });
    });
    listenOn(server, arg(0, 'HOST'), Number(arg(1, 'PORT')));
    break;
  }
  // steady h1|h2|tcp TARGET [PAUSE_MS]: ONE connection (an HTTP/1.1 keep-alive connection, one h2c session, or one TCP
  // connection to an echo server at TARGET = HOST:PORT) carrying one request (or line) after another, PAUSE_MS apart
  // (default 20), until SIGTERM/SIGINT; prints "ready" after the first answer and at the end one JSON line: requests
  // sent and answered, failures by kind, answers by body (tag), and how many connections were opened (1 = the
  // connection survived). A failed request ends the run (the connection is not replaced).
  case 'steady': {
    const mode = arg(0, 'h1|h2|tcp');
    const target = arg(1, 'TARGET');
    const pause = Number(args[2] ?? '20');
    let sent = 0;
    let ok = 0;
    let connections = 0;
    let stopping = false;
    let readyShown = false;
    const failures: Record<string, number> = {};
    const bodies: Record<string, number> = {};
    const report = (): void => {
      result({ mode, sent, ok, failures, bodies, connections });
      process.exit(0);
    };
    const answered = (body: string): void => {
      ok++;
      bump(bodies, body.trim().split(' ')[0] ?? '');
      if (!readyShown) { readyShown = true; ready(); }
      if (stopping) report();
    };
    const fail = (kind: string): void => {
      bump(failures, kind);
      stopping = true;
      report();
    };
    // Stop sending; report once the request in flight (if any) is answered, at most 5 s later.
    const stop = (): void => {
      stopping = true;
      if (ok + Object.values(failures).reduce((a, n) => a + n, 0) >= sent) report();
      else setTimeout(() => { bump(failures, 'unanswered-at-stop'); report(); }, 5_000).unref();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    deadline(600_000, () => { fail('deadline'); });
    if (mode === 'tcp') {
      const [host = '', port = '0'] = [target.slice(0, target.lastIndexOf(':')), target.slice(target.lastIndexOf(':') + 1)];
      const s = connect({ host, port: Number(port) });
      connections++;
      let buf = '';
      const send = (): void => {
        if (stopping) return;
        sent++;
        s.write(`line-${sent}\n`);
      };
      s.on('connect', send);
      s.setEncoding('latin1').on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (!line.endsWith(` line-${sent}`)) { fail('bad-echo'); return; }
          answered(line);
          setTimeout(send, pause);
        }
      });
      s.on('error', (err: NodeJS.ErrnoException) => { fail(err.code ?? 'error'); });
      s.on('close', () => { if (!stopping) fail('closed'); });
    } else if (mode === 'h1') {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const seen = new WeakSet<Socket>();
      const one = (): void => {
        if (stopping) return;
        sent++;
        const req = http.get(target, { agent }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => { body += d; });
          res.on('end', () => {
            if (res.statusCode !== 200) { fail(`status-${res.statusCode ?? 0}`); return; }
            answered(body);
            setTimeout(one, pause);
          });
        });
        req.on('socket', (s: Socket) => {
          if (seen.has(s)) return;
          seen.add(s);
          connections++;
        });
        req.on('error', (err: NodeJS.ErrnoException) => { fail(err.code ?? err.message); });
        req.setTimeout(10_000, () => { req.destroy(new Error('timeout')); });
      };
      one();
    } else {
      const session = http2.connect(target);
      connections++;
      session.on('error', (err: NodeJS.ErrnoException) => { fail(err.code ?? 'session-error'); });
      session.on('goaway', () => { if (!stopping) fail('goaway'); });
      const one = (): void => {
        if (stopping) return;
        sent++;
        const st = session.request({ ':path': '/' });
        let status = 0;
        let body = '';
        st.on('response', (h) => { status = Number(h[':status']); });
        st.setEncoding('utf8').on('data', (d: string) => { body += d; });
        st.on('end', () => {
          if (status !== 200) { fail(`status-${status}`); return; }
          answered(body);
          setTimeout(one, pause);
        });
        st.on('error', (err: NodeJS.ErrnoException) => { fail(err.code ?? 'stream-error'); });
      };
      one();
    }
    break;
  }
  default:
    process.stderr.write(`l7-tools: unknown tool "${tool}"\n`);
    process.exit(2);
}
