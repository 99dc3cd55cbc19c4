// The HTTP/1.1 pool's read path on sockets opened through the real connect stage: responses split at every byte
// boundary (the parser keeps partial heads and chunk-size lines across reads), body chunks that must stay intact while
// later reads arrive, backpressure with a slow consumer (pause/resume of the upstream socket), and a 101 hand-over
// whose socket, with the bytes that followed the head, is then read as an ordinary stream.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Http1Pool } from '../../../src/l7/pool/http1-pool.js';
import type {
  AttemptControl,
  UpstreamConnector,
  UpstreamFailure,
  UpstreamRequest,
  UpstreamResponse,
  UpstreamTarget,
} from '../../../src/l7/pool/pool-types.js';
import { DEFAULT_POOL_OPTIONS } from '../../../src/l7/pool/upstream-pools.js';
import { openConnection } from '../../../src/upstream/transport/connect.js';
import { listen } from './harness.js';

/**
 * The cluster connector's shape over the real connect stage (plain TCP): each pool connection adopts its socket into
 * direct reads (src/core/direct-reads.ts), one buffer shared by every such socket, as in the proxy.
 */
/** Every socket the connector handed to a pool. */
const opened: net.Socket[] = [];

const connector: UpstreamConnector = (target, settle) => {
  openConnection({ address: target.address, port: target.port }, {
    timeoutMs: 5_000,
    handler: {
      onUpstreamReady: (socket) => { opened.push(socket); settle(undefined, socket); },
      onUpstreamFailed: (_socket, f) => settle(f.error, undefined),
    },
  });
};

class Counters {
  readonly map = new Map<string, number>();
  increment(name: string, by = 1): void {
    this.map.set(name, (this.map.get(name) ?? 0) + by);
  }
  get(name: string): number {
    return this.map.get(name) ?? 0;
  }
}

interface Outcome {
  response: UpstreamResponse | undefined;
  chunks: Buffer[];
  trailers: string[] | undefined;
  failure: UpstreamFailure | undefined;
  pauses: number;
  /** Chunks delivered after the consumer refused one and before it resumed (pausing did not stop the reads). */
  whilePaused: number;
}

function request(method = 'GET', target = '/', tunnel = false): UpstreamRequest {
  return { method, target, authority: 'backend', scheme: 'http', headers: ['Host', 'backend'], body: undefined, bodyLength: undefined, tunnel };
}

/**
 * Run one request. `slow`: the consumer refuses every chunk (onData false) and resumes on a later turn of the event
 * loop, as a downstream socket that is never drained at once would.
 */
function exchange(pool: Http1Pool, req: UpstreamRequest, slow = false): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { response: undefined, chunks: [], trailers: undefined, failure: undefined, pauses: 0, whilePaused: 0 };
    let refused = false;
    let control: AttemptControl | undefined;
    control = pool.dispatch(req, {
      onInformational: () => {},
      onResponse: (r) => { out.response = r; },
      onReadEnd: () => {},
      onData: (chunk) => {
        out.chunks.push(chunk);
        if (!slow) return true;
        if (refused) out.whilePaused++;
        refused = true;
        out.pauses++;
        setImmediate(() => {
          refused = false;
          control?.resume();
        });
        return false;
      },
      onEnd: (trailers) => {
        out.trailers = trailers;
        resolve(out);
      },
      onTunnel: (_r, socket) => {
        socket.destroy();
        resolve(out);
      },
      onError: (f) => {
        out.failure = f;
        resolve(out);
      },
    }, false);
  });
}

/** A backend that answers each request with the bytes `answer` returns, written in the pieces it returns. */
function backend(answer: (n: number) => Buffer[]): net.Server {
  return net.createServer({ allowHalfOpen: true }, (s) => {
    s.setNoDelay(true);
    s.on('error', () => {});
    let buf = '';
    let n = 0;
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let end = buf.indexOf('\r\n\r\n');
      while (end >= 0) {
        buf = buf.slice(end + 4);
        const pieces = answer(n++);
        // Each piece after the pool has read the previous one (Nagle off): on loopback a piece is in the pool's
        // receive buffer once its write returns, and the second setImmediate runs after the next poll phase, which
        // reads it. Separate segments, separate reads upstream, without a timer.
        const writeNext = (i: number): void => {
          if (i >= pieces.length || s.destroyed) return;
          s.write(pieces[i] as Buffer, () => { setImmediate(() => { setImmediate(() => { writeNext(i + 1); }); }); });
        };
        writeNext(0);
        end = buf.indexOf('\r\n\r\n');
      }
    });
  });
}

describe('HTTP/1.1 pool read path', () => {
  const servers: net.Server[] = [];
  const pools: Http1Pool[] = [];

  function poolFor(port: number, stats: Counters): Http1Pool {
    const target: UpstreamTarget = { address: '127.0.0.1', port, protocol: 'http1', cluster: 'test' };
    const pool = new Http1Pool(target, connector, { ...DEFAULT_POOL_OPTIONS.http1, idleTimeoutMs: 60_000 }, stats, () => {});
    pools.push(pool);
    return pool;
  }

  async function serve(answer: (n: number) => Buffer[]): Promise<number> {
    const srv = backend(answer);
    servers.push(srv);
    return listen(srv);
  }

  before(() => {});
  after(() => {
    for (const p of pools) p.destroy();
    for (const s of servers) s.close();
  });

  test('a chunked response with trailers split at every byte boundary is parsed whole, on one reused connection', { timeout: 30_000 }, async () => {
    const body = 'hello, onread world';
    const wire = Buffer.from(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n' +
      `5\r\n${body.slice(0, 5)}\r\n${(body.length - 5).toString(16)}\r\n${body.slice(5)}\r\n0\r\nX-Trailer: t\r\n\r\n`,
      'latin1',
    );
    const port = await serve((n) => [wire.subarray(0, n + 1), wire.subarray(n + 1)].filter((b) => b.length > 0));
    const stats = new Counters();
    const pool = poolFor(port, stats);
    for (let split = 1; split <= wire.length; split++) {
      const out = await exchange(pool, request('GET', `/split/${split}`));
      assert.equal(out.failure, undefined, `split ${split}: ${out.failure?.error.message}`);
      assert.equal(out.response?.statusCode, 200, `split ${split}`);
      assert.deepEqual(out.response?.headers, ['Transfer-Encoding', 'chunked', 'X-A', 'b'], `split ${split}`);
      assert.equal(Buffer.concat(out.chunks).toString('latin1'), body, `split ${split}`);
      assert.deepEqual(out.trailers, ['X-Trailer', 't'], `split ${split}`);
    }
    assert.equal(stats.get('pool.http1.connect'), 1);
    assert.equal(stats.get('pool.http1.reused'), wire.length - 1);
    // The connection read directly: nothing listens for its stream's 'data' (a socket read as a stream has one).
    const socket = opened.at(-1) as net.Socket;
    assert.equal(socket.listenerCount('data'), 0);
  });

  test('a Content-Length response split at every byte boundary, the body byte by byte: chunks stay intact', { timeout: 30_000 }, async () => {
    const body = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz', 'latin1');
    const head = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1');
    const wire = Buffer.concat([head, body]);
    // Every byte its own write from `split` on: many reads within one response.
    const port = await serve((n) => {
      const split = (n % wire.length) + 1;
      const pieces = [wire.subarray(0, split)];
      for (let i = split; i < wire.length; i++) pieces.push(wire.subarray(i, i + 1));
      return pieces;
    });
    const stats = new Counters();
    const pool = poolFor(port, stats);
    for (let split = 1; split <= wire.length; split++) {
      const out = await exchange(pool, request());
      assert.equal(out.failure, undefined, `split ${split}`);
      assert.equal(out.response?.statusCode, 200, `split ${split}`);
      assert.equal(Buffer.concat(out.chunks).toString('latin1'), body.toString('latin1'), `split ${split}`);
    }
    assert.equal(stats.get('pool.http1.connect'), 1);
  });

  test('a 1 MiB body to a consumer that refuses every chunk arrives intact (pause/resume), and the connection is reused', { timeout: 30_000 }, async () => {
    const body = Buffer.alloc(1 << 20);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 11)) & 0xff;
    const head = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1');
    const port = await serve(() => [Buffer.concat([head, body])]);
    const stats = new Counters();
    const pool = poolFor(port, stats);
    const digest = createHash('sha256').update(body).digest('hex');
    const out = await exchange(pool, request(), true);
    assert.equal(out.failure, undefined);
    const got = Buffer.concat(out.chunks);
    assert.equal(got.length, body.length);
    assert.equal(createHash('sha256').update(got).digest('hex'), digest);
    assert.ok(out.pauses > 1, `paused ${out.pauses} times`);
    assert.equal(out.whilePaused, 0);
    const again = await exchange(pool, request());
    assert.equal(createHash('sha256').update(Buffer.concat(again.chunks)).digest('hex'), digest);
    assert.equal(stats.get('pool.http1.connect'), 1);
    assert.equal(stats.get('pool.http1.reused'), 1);
  });

  test('a 101 hands the socket over as a stream: bytes after the head and later reads arrive as data, then the FIN', { timeout: 10_000 }, async () => {
    const srv = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      s.once('data', () => {
        s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\nearly-');
        s.on('data', (d: Buffer) => s.write(Buffer.concat([Buffer.from('echo:'), d])));
        s.on('end', () => s.end());
      });
    });
    servers.push(srv);
    const port = await listen(srv);
    const pool = poolFor(port, new Counters());
    const received = await new Promise<string>((resolve, reject) => {
      pool.dispatch({ ...request('GET', '/ws', true), headers: ['Host', 'backend', 'Connection', 'Upgrade', 'Upgrade', 'test'] }, {
        onInformational: () => {},
        onResponse: () => reject(new Error('no response expected')),
        onData: () => true,
        onReadEnd: () => {},
        onEnd: () => reject(new Error('no end expected')),
        onError: (f) => reject(f.error),
        onTunnel: (res, socket, rest) => {
          assert.equal(res.statusCode, 101);
          let text = rest.toString('latin1');
          socket.on('data', (d: Buffer) => {
            text += d.toString('latin1');
            if (text.endsWith('echo:ping')) socket.end();
          });
          socket.on('end', () => resolve(text));
          socket.on('error', reject);
          socket.resume();
          socket.write('ping');
        },
      }, false);
    });
    assert.equal(received, 'early-echo:ping');
  });
});
