// The floor of a Node.js proxy: the least a sidecar written on node:net / node:http2 can do per connection and per
// request, with no remora code, run by quick-l4 / quick-l7 (`--floor`) as one more subject beside remora and HAProxy
// in the same topology. Whatever this floor cannot reach, no engine built on the same Node objects reaches either; the
// gap between it and remora is what remora's own code costs.
//
// It takes `remora proxy`'s command line (--config, --outbound-port, --admin-address; the rest is ignored), listens on
// the outbound capture port like remora (bound as root, then uid/gid 1337 so that the rules of `remora init` do not
// capture its own upstream connections), reads each connection's original destination with remora's addon, and:
//   - config with `http_engine = off` (quick-l4): forwards bytes both ways (two net.Sockets, backpressure,
//     half-close), to the original destination, or round-robin to the endpoints of the config's one service when the
//     original destination is its address (the bench's VIP);
//   - otherwise (quick-l7), by the client's first bytes:
//       * HTTP/1.1: per request, the head is found (no validation), a `Connection: close` line is dropped from the
//         upstream request so that the upstream connection is pooled (per original destination), the head and a
//         Content-Length body are written as received; the response is forwarded as received (plus `Connection:
//         close` when the client asked for it), framed by its Content-Length (chunked responses are not handled: the
//         bench's nginx sends Content-Length);
//       * h2c (the connection preface): node:http2 on both sides, one upstream session per downstream session, each
//         stream's headers and body passed on (the least node:http2 allows).
//   - with `--handles` (quick-l7 `--floor-handles`, HTTP/1.1 only): the same HTTP/1.1 forwarding without any
//     net.Socket: its own listening TCP handle, the accepted and the upstream TCP handles read through `onread` and
//     written with a `WriteWrap` each (bench/socket-lab.ts measured what that saves on a bare responder). Node's
//     internal handle classes (`process.binding('tcp_wrap' / 'stream_wrap')`): a measurement of what a socket-less
//     transport would give a proxy, not a pattern for product code.
// The admin address answers 200 to everything (quick-l4 / quick-l7 wait for /ready).
//
// Usage: node dist/bench/floor-proxy.js proxy --config FILE --outbound-port P --admin-address HOST:PORT [--handles]
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import {
  connect as h2connect, constants as h2, createServer as createH2Server, type ClientHttp2Session, type Http2Server, type IncomingHttpHeaders,
  type OutgoingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream,
} from 'node:http2';
import { createServer, Socket } from 'node:net';
import { socketFd } from '../src/core/socket-fd.js';
import { createOriginalDstReader } from '../src/interceptor/original-dst.js';

/** Both sockets forward to each other: backpressure, half-close, and an error on either destroys both. */
export function pipeBoth(down: Socket, up: Socket): void {
  const kill = (): void => { down.destroy(); up.destroy(); };
  down.on('error', kill);
  up.on('error', kill);
  down.on('data', (d: Buffer) => { if (!up.write(d)) down.pause(); });
  up.on('data', (d: Buffer) => { if (!down.write(d)) up.pause(); });
  up.on('drain', () => down.resume());
  down.on('drain', () => up.resume());
  down.on('end', () => up.end());
  up.on('end', () => down.end());
}

/** A TCP connection to host:port, half-open allowed, Nagle off. */
export function tcpTo(host: string, port: number): Socket {
  const s = new Socket({ allowHalfOpen: true });
  s.setNoDelay(true);
  s.connect({ host, port });
  return s;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');
const CONNECTION_CLOSE = Buffer.from('Connection: close\r\n');

/** The value of `name` (lower case, with its colon) in a latin1 head, or undefined. */
export function headerValue(head: string, name: string): string | undefined {
  const lower = head.toLowerCase();
  const at = lower.indexOf(`\r\n${name}`);
  if (at < 0) return undefined;
  const end = head.indexOf('\r\n', at + 2);
  return head.slice(at + 2 + name.length, end < 0 ? head.length : end).trim();
}

/** A latin1 head without its `name` field line (lower case, with its colon), when there is one. */
export function withoutLine(head: string, name: string): string {
  const at = head.toLowerCase().indexOf(`\r\n${name}`);
  return at < 0 ? head : head.slice(0, at) + head.slice(head.indexOf('\r\n', at + 2));
}

/** What the HTTP/1.1 floor needs of a connection, on either transport (net.Socket, or a TCP handle). */
interface FloorConn {
  /** Queued until connected (an upstream being dialed). */
  write(data: Buffer | string): void;
  /** FIN after what is written (then closed). */
  end(): void;
  destroy(): void;
}

/** One pooled upstream HTTP/1.1 connection; `owner` is the downstream connection whose response it is reading. */
interface PooledUpstream {
  readonly conn: FloorConn;
  owner: Http1Floor | undefined;
  release(): void;
}

/** The idle upstream connections of one transport, per original destination. */
class UpstreamPool<U extends PooledUpstream> {
  readonly #idle = new Map<string, U[]>();

  take(key: string): U | undefined {
    return this.#idle.get(key)?.pop();
  }

  put(key: string, up: U): void {
    let list = this.#idle.get(key);
    if (list === undefined) this.#idle.set(key, list = []);
    list.push(up);
  }

  forget(key: string, up: U): void {
    const list = this.#idle.get(key);
    const i = list?.indexOf(up) ?? -1;
    if (list !== undefined && i >= 0) list.splice(i, 1);
  }
}

/** A pooled upstream connection for `key` (host:port), taken from the transport's pool or dialed. */
type UpstreamSource = (key: string, host: string, port: number) => PooledUpstream;

const socketPool = new UpstreamPool<SocketUpstream>();

/** An upstream connection on a net.Socket (Node queues writes until it is connected). */
class SocketUpstream implements PooledUpstream {
  readonly conn: FloorConn;
  readonly #key: string;
  owner: Http1Floor | undefined;

  constructor(key: string, host: string, port: number) {
    this.#key = key;
    const socket = tcpTo(host, port);
    this.conn = socketConn(socket);
    socket.on('data', (d: Buffer) => { this.owner?.onResponseBytes(d); });
    socket.on('error', () => { this.owner?.fail(); });
    socket.on('close', () => {
      socketPool.forget(key, this);
      this.owner?.fail();
    });
  }

  release(): void {
    this.owner = undefined;
    socketPool.put(this.#key, this);
  }
}

function socketConn(socket: Socket): FloorConn {
  return {
    write: (data) => { if (typeof data === 'string') socket.write(data, 'latin1'); else socket.write(data); },
    end: () => { socket.end(); },
    destroy: () => { socket.destroy(); },
  };
}

const socketUpstream: UpstreamSource = (key, host, port) => socketPool.take(key) ?? new SocketUpstream(key, host, port);

/**
 * One downstream HTTP/1.1 connection: one request at a time over a pooled upstream connection. The transport feeds
 * it (onRequestBytes, onDownstreamEnd, onResponseBytes, fail); it writes through FloorConn only.
 */
class Http1Floor {
  readonly #down: FloorConn;
  readonly #host: string;
  readonly #port: number;
  readonly #key: string;
  readonly #upstream: UpstreamSource;
  #pending: Buffer = Buffer.alloc(0);
  #up: PooledUpstream | undefined;
  #closeAfter = false;
  /** The client sent FIN: end after the response in flight. */
  #eof = false;
  /** Response parsing: undefined = in the head; otherwise the body bytes still to come. */
  #bodyLeft: number | undefined;
  #respHead: Buffer = Buffer.alloc(0);

  constructor(down: FloorConn, host: string, port: number, upstream: UpstreamSource) {
    this.#down = down;
    this.#host = host;
    this.#port = port;
    this.#key = `${host}:${port}`;
    this.#upstream = upstream;
  }

  onRequestBytes(d: Buffer): void {
    this.#pending = this.#pending.length === 0 ? d : Buffer.concat([this.#pending, d]);
    this.#next();
  }

  onDownstreamEnd(): void {
    this.#eof = true;
    if (this.#up === undefined) this.#down.end();
  }

  /** Start the next request when the previous one is done and a whole head is here. */
  #next(): void {
    if (this.#up !== undefined) return;
    const end = this.#pending.indexOf(HEAD_END);
    if (end < 0) return;
    let head = this.#pending.toString('latin1', 0, end + 4);
    const bodyLength = Number(headerValue(head, 'content-length:') ?? 0);
    const total = end + 4 + bodyLength;
    if (this.#pending.length < total) return;
    const body = this.#pending.subarray(end + 4, total);
    this.#pending = this.#pending.subarray(total);
    this.#closeAfter = headerValue(head, 'connection:')?.toLowerCase() === 'close';
    if (this.#closeAfter) head = withoutLine(head, 'connection:');
    const up = this.#upstream(this.#key, this.#host, this.#port);
    up.owner = this;
    this.#up = up;
    this.#bodyLeft = undefined;
    this.#respHead = Buffer.alloc(0);
    up.conn.write(body.length === 0 ? head : Buffer.concat([Buffer.from(head, 'latin1'), body]));
  }

  onResponseBytes(d: Buffer): void {
    let chunk = d;
    if (this.#bodyLeft === undefined) {
      const buf = this.#respHead.length === 0 ? d : Buffer.concat([this.#respHead, d]);
      const end = buf.indexOf(HEAD_END);
      if (end < 0) {
        this.#respHead = buf;
        return;
      }
      const head = buf.toString('latin1', 0, end + 4);
      const cl = headerValue(head, 'content-length:');
      if (cl === undefined) {
        this.fail();
        return;
      }
      this.#bodyLeft = Number(cl) + end + 4;
      // The client asked to close: say so in the response (the upstream connection stays open for the pool).
      chunk = buf;
      if (this.#closeAfter) {
        const rest = buf.subarray(end + 2);
        const withoutConnection = withoutLine(head, 'connection:');
        chunk = Buffer.concat([Buffer.from(withoutConnection.slice(0, -2), 'latin1'), CONNECTION_CLOSE, rest]);
        this.#bodyLeft += chunk.length - buf.length;
      }
    }
    this.#bodyLeft -= chunk.length;
    this.#down.write(chunk);
    if (this.#bodyLeft > 0) return;
    const up = this.#up;
    this.#up = undefined;
    up?.release();
    if (this.#closeAfter || this.#eof) this.#down.end();
    else this.#next();
  }

  fail(): void {
    const up = this.#up;
    this.#up = undefined;
    if (up !== undefined) {
      up.owner = undefined;
      up.conn.destroy();
    }
    this.#down.destroy();
  }
}

const H2_DROP = new Set([':status', h2.HTTP2_HEADER_CONNECTION, 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

function responseHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':status': h[':status'] ?? 502 };
  for (const [k, v] of Object.entries(h)) if (!H2_DROP.has(k) && v !== undefined) out[k] = v;
  return out;
}

/** The original destination of the connection being handed to the HTTP/2 server ('session' fires inside emit). */
let pendingH2: { host: string; port: number } | undefined;
let h2server: Http2Server | undefined;

/** The shared HTTP/2 server: each session gets one upstream session, each stream is passed on through it. */
function makeH2Server(): Http2Server {
  const server = createH2Server();
  server.on('session', (session: ServerHttp2Session) => {
    const dst = pendingH2;
    if (dst === undefined) {
      session.destroy();
      return;
    }
    let upstream: ClientHttp2Session | undefined;
    session.on('error', () => undefined);
    session.on('close', () => { upstream?.close(); });
    session.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      if (upstream === undefined) {
        upstream = h2connect(`http://${dst.host}:${dst.port}`);
        upstream.on('error', () => undefined);
      }
      const req = upstream.request({ ...headers, ':authority': headers[':authority'] ?? dst.host });
      req.on('response', (h) => { if (!stream.destroyed) stream.respond(responseHeaders(h)); });
      req.on('error', () => { stream.destroy(); });
      stream.on('error', () => { req.destroy(); });
      req.pipe(stream);
      stream.pipe(req);
    });
  });
  return server;
}

/** One downstream h2c connection: node:http2 both ways (the sniffed preface goes back first). */
function h2Floor(down: Socket, host: string, port: number, first: Buffer): void {
  // Paused first: in flowing mode the unshifted bytes would be emitted to no listener.
  down.pause();
  down.unshift(first);
  pendingH2 = { host, port };
  try {
    (h2server ??= makeH2Server()).emit('connection', down);
  } finally {
    pendingH2 = undefined;
  }
}

// === the HTTP/1.1 floor on TCP handles (--handles) ===

export interface TcpHandle {
  onread: (buf: ArrayBuffer | undefined) => void;
  readonly fd: number;
  readStart(): number;
  readStop(): number;
  setNoDelay(on: boolean): number;
  writeBuffer(req: object, data: Buffer): number;
  writeLatin1String(req: object, data: string): number;
  shutdown(req: object): number;
  close(cb?: () => void): void;
  connect(req: object, address: string, port: number): number;
  connect6(req: object, address: string, port: number): number;
}
export interface TcpServerHandle {
  onconnection: (err: number, h: TcpHandle | undefined) => void;
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  listen(backlog: number): number;
  getsockname(out: { port?: number }): number;
}
export interface HandleBindings {
  readonly TCP: new (type: number) => TcpHandle & TcpServerHandle;
  readonly TCPConnectWrap: new () => { oncomplete?: (status: number) => void; address?: string; port?: number };
  readonly WriteWrap: new () => { handle?: TcpHandle; oncomplete?: (status: number) => void; async?: boolean; buffer?: Buffer | string };
  readonly ShutdownWrap: new () => { handle?: TcpHandle; oncomplete?: () => void };
  readonly state: { readonly [k: number]: number };
  readonly kReadBytesOrError: number;
  readonly kArrayBufferOffset: number;
  readonly kLastWriteWasAsync: number;
  readonly SOCKET: number;
  readonly SERVER: number;
}

/**
 * Node's internal TCP and stream handle classes (`process.binding('tcp_wrap' / 'stream_wrap')`), for the bench's
 * socket-less subjects (this file's --handles, bench/socket-lab.ts). Throws, saying so, on a Node without them.
 */
export function handleBindings(): HandleBindings {
  const binding = (process as unknown as { binding?: (name: string) => Record<string, unknown> }).binding;
  const tcp = binding?.('tcp_wrap');
  const stream = binding?.('stream_wrap');
  const constants = tcp?.['constants'] as { SOCKET?: number; SERVER?: number } | undefined;
  const state = stream?.['streamBaseState'];
  if (tcp === undefined || stream === undefined || typeof tcp['TCP'] !== 'function' || typeof stream['WriteWrap'] !== 'function'
    || constants?.SOCKET === undefined || constants.SERVER === undefined || state === undefined) {
    throw new Error(`Node ${process.version} does not expose the TCP handle classes (process.binding('tcp_wrap' / 'stream_wrap')) the socket-less bench subjects use`);
  }
  return {
    TCP: tcp['TCP'] as HandleBindings['TCP'], TCPConnectWrap: tcp['TCPConnectWrap'] as HandleBindings['TCPConnectWrap'],
    WriteWrap: stream['WriteWrap'] as HandleBindings['WriteWrap'], ShutdownWrap: stream['ShutdownWrap'] as HandleBindings['ShutdownWrap'],
    state: state as HandleBindings['state'], kReadBytesOrError: stream['kReadBytesOrError'] as number,
    kArrayBufferOffset: stream['kArrayBufferOffset'] as number, kLastWriteWasAsync: stream['kLastWriteWasAsync'] as number,
    SOCKET: constants.SOCKET, SERVER: constants.SERVER,
  };
}

/** One TCP handle as a FloorConn: reads to `onBytes` (EOF or a read error to `onEnd`); writes queued until connected. */
class HandleConn implements FloorConn {
  readonly #b: HandleBindings;
  readonly #h: TcpHandle;
  #closed = false;
  /** Writes made before the connect completed (an upstream being dialed); undefined once connected. */
  #queued: (Buffer | string)[] | undefined;
  onBytes: (d: Buffer) => void = () => undefined;
  onEnd: () => void = () => undefined;

  constructor(b: HandleBindings, h: TcpHandle, connected: boolean) {
    this.#b = b;
    this.#h = h;
    this.#queued = connected ? undefined : [];
    h.onread = (ab) => {
      const n = b.state[b.kReadBytesOrError] ?? -1;
      if (n < 0 || ab === undefined) this.onEnd();
      else if (n > 0) this.onBytes(Buffer.from(ab, b.state[b.kArrayBufferOffset] ?? 0, n));
    };
  }

  /** Nagle off, reads on, and what was queued goes out. */
  start(): void {
    this.#h.setNoDelay(true);
    this.#h.readStart();
    const queued = this.#queued ?? [];
    this.#queued = undefined;
    for (const d of queued) this.write(d);
  }

  write(data: Buffer | string): void {
    if (this.#closed) return;
    if (this.#queued !== undefined) {
      this.#queued.push(data);
      return;
    }
    const req = new this.#b.WriteWrap();
    req.handle = this.#h;
    req.async = false;
    req.buffer = data; // kept until the write completes (libuv reads an asynchronous write's bytes later), as Node does
    req.oncomplete = (status) => { if (status < 0) this.destroy(); };
    const err = typeof data === 'string' ? this.#h.writeLatin1String(req, data) : this.#h.writeBuffer(req, data);
    if (err !== 0) this.destroy();
  }

  end(): void {
    if (this.#closed) return;
    const req = new this.#b.ShutdownWrap();
    req.handle = this.#h;
    req.oncomplete = () => { this.destroy(); };
    if (this.#h.shutdown(req) !== 0) this.destroy();
  }

  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#h.readStop();
    this.#h.close();
  }
}

const handlePool = new UpstreamPool<HandleUpstream>();

/** An upstream connection on a TCP handle, connected with a TCPConnectWrap. */
class HandleUpstream implements PooledUpstream {
  readonly conn: HandleConn;
  readonly #key: string;
  owner: Http1Floor | undefined;

  constructor(b: HandleBindings, key: string, host: string, port: number) {
    this.#key = key;
    const h = new b.TCP(b.SOCKET);
    const conn = new HandleConn(b, h, false);
    this.conn = conn;
    const lost = (): void => {
      handlePool.forget(key, this);
      conn.destroy();
      this.owner?.fail();
    };
    conn.onBytes = (d) => { this.owner?.onResponseBytes(d); };
    conn.onEnd = lost;
    const req = new b.TCPConnectWrap();
    req.address = host;
    req.port = port;
    req.oncomplete = (status) => { if (status < 0) lost(); else conn.start(); };
    const err = host.includes(':') ? h.connect6(req, host, port) : h.connect(req, host, port);
    if (err !== 0) queueMicrotask(lost);
  }

  release(): void {
    this.owner = undefined;
    handlePool.put(this.#key, this);
  }
}

/** Listen on [::]:port with a TCP handle of our own; every accepted handle is forwarded by an Http1Floor. */
function listenWithHandles(port: number, readOriginalDst: (fd: number) => { originalDst: { address: string; port: number } } | null): void {
  const b = handleBindings();
  const upstream: UpstreamSource = (key, host, p) => handlePool.take(key) ?? new HandleUpstream(b, key, host, p);
  const server = new b.TCP(b.SERVER);
  if (server.bind6('::', port, 0) !== 0 || server.listen(1024) !== 0) throw new Error(`floor-proxy --handles: cannot listen on ${port}`);
  server.onconnection = (err, h) => {
    if (err !== 0 || h === undefined) return;
    const down = new HandleConn(b, h, true);
    let dst: { address: string; port: number } | undefined;
    try {
      dst = readOriginalDst(h.fd)?.originalDst;
    } catch {
      dst = undefined;
    }
    if (dst === undefined) {
      down.destroy();
      return;
    }
    const floor = new Http1Floor(down, unmapped(dst.address), dst.port, upstream);
    down.onBytes = (d) => { floor.onRequestBytes(d); };
    down.onEnd = () => { floor.onDownstreamEnd(); };
    down.start();
  };
}

function unmapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function args(argv: readonly string[]): { config: string; port: number; admin: string; handles: boolean } {
  const value = (name: string): string => {
    const i = argv.indexOf(name);
    const v = i < 0 ? undefined : argv[i + 1];
    if (v === undefined) throw new Error(`floor-proxy: ${name} is required`);
    return v;
  };
  const port = Number(value('--outbound-port'));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`floor-proxy: --outbound-port: expected a port number (1-65535), got ${value('--outbound-port')}`);
  const admin = value('--admin-address');
  const adminPort = Number(admin.slice(admin.lastIndexOf(':') + 1));
  if (!admin.includes(':') || !Number.isInteger(adminPort) || adminPort < 1 || adminPort > 65535) {
    throw new Error(`floor-proxy: --admin-address: expected HOST:PORT, got ${admin}`);
  }
  return { config: value('--config'), port, admin, handles: argv.includes('--handles') };
}

/**
 * The config's one service, as the bench writes it (`addresses = VIP:PORT`, `endpoints = A:P, B:P, ...`): connections
 * to the VIP go round-robin to the endpoints, the least a balancer does.
 */
export function serviceOf(ini: string): { vip: string; endpoints: { host: string; port: number }[] } | undefined {
  const vip = /^\s*addresses\s*=\s*(\S+)\s*$/m.exec(ini)?.[1];
  const list = /^\s*endpoints\s*=\s*(.+)$/m.exec(ini)?.[1];
  if (vip === undefined || list === undefined) return undefined;
  const endpoints = list.split(',').map((e) => e.trim()).map((e) => ({ host: e.slice(0, e.lastIndexOf(':')), port: Number(e.slice(e.lastIndexOf(':') + 1)) }));
  return { vip, endpoints };
}

function main(): void {
  const a = args(process.argv.slice(2));
  const ini = readFileSync(a.config, 'utf8');
  const l4 = /^\s*http_engine\s*=\s*off\s*$/m.test(ini);
  const service = serviceOf(ini);
  let next = 0;
  const readOriginalDst = createOriginalDstReader();
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (down) => {
    const fd = socketFd(down);
    const dst = fd === undefined ? null : readOriginalDst(fd)?.originalDst ?? null;
    if (dst === null) {
      down.resetAndDestroy();
      return;
    }
    if (l4) {
      const ep = service !== undefined && service.vip === `${dst.address}:${dst.port}` ? service.endpoints[next++ % service.endpoints.length] : undefined;
      pipeBoth(down, ep === undefined ? tcpTo(dst.address, dst.port) : tcpTo(ep.host, ep.port));
      return;
    }
    down.on('error', () => { down.destroy(); });
    down.once('data', (first: Buffer) => {
      if (first.length >= H2_PREFACE.length && first.subarray(0, H2_PREFACE.length).equals(H2_PREFACE)) h2Floor(down, dst.address, dst.port, first);
      else {
        const floor = new Http1Floor(socketConn(down), dst.address, dst.port, socketUpstream);
        down.on('data', (d: Buffer) => { floor.onRequestBytes(d); });
        down.on('error', () => { floor.fail(); });
        down.on('end', () => { floor.onDownstreamEnd(); });
        floor.onRequestBytes(first);
      }
    });
  });
  // A normal exit on SIGTERM, so that `node --cpu-prof` (quick-l7 --cpu-prof) writes the profile.
  process.on('SIGTERM', () => { process.exit(0); });
  const colon = a.admin.lastIndexOf(':');
  const admin = createHttpServer((_req, res) => { res.end('ok\n'); });
  const adminThenDrop = (): void => {
    admin.listen(Number(a.admin.slice(colon + 1)), a.admin.slice(0, colon), () => {
      process.setgid?.(1337);
      process.setuid?.(1337);
      process.stderr.write(`floor-proxy (${l4 ? 'l4' : a.handles ? 'l7 on TCP handles' : 'l7'}) listening on ${a.port}\n`);
    });
  };
  if (a.handles && !l4) {
    listenWithHandles(a.port, readOriginalDst);
    adminThenDrop();
    return;
  }
  server.listen({ host: '::', port: a.port, ipv6Only: false, backlog: 1024 }, adminThenDrop);
}

if (process.argv[1]?.endsWith('floor-proxy.js') === true) main();
