// gRPC through the engine (h2c passthrough): @grpc/grpc-js client and server, unary and server streaming, status
// and metadata in trailers, deadlines and cancellation carried to the server, and a gRPC-shaped local reply.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HTTP2_CODECS, listen, startProxy, waitFor, type ProxyUnderTest } from './harness.js';

const PROTO = `
syntax = "proto3";
package remora.test;
message EchoRequest { string text = 1; int32 count = 2; int32 delay_ms = 3; }
message EchoReply { string text = 1; int32 index = 2; }
service Echo {
  rpc Unary (EchoRequest) returns (EchoReply);
  rpc ServerStream (EchoRequest) returns (stream EchoReply);
}
`;

interface EchoRequest {
  text: string;
  count: number;
  delay_ms: number;
}
interface EchoReply {
  text: string;
  index: number;
}

type UnaryFn = (req: Partial<EchoRequest>, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: EchoReply) => void) => grpc.ClientUnaryCall;
type StreamFn = (req: Partial<EchoRequest>, md?: grpc.Metadata, opts?: grpc.CallOptions) => grpc.ClientReadableStream<EchoReply>;
interface EchoClient extends grpc.Client {
  Unary: UnaryFn;
  ServerStream: StreamFn;
}

function unary(client: EchoClient, req: Partial<EchoRequest>, md = new grpc.Metadata(), opts: grpc.CallOptions = {}): Promise<{ err: grpc.ServiceError | null; res?: EchoReply; trailers?: grpc.Metadata }> {
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const call = client.Unary(req, md, opts, (err, res) => {
      setImmediate(() => resolve(res === undefined ? { err, trailers } : { err, res, trailers }));
    });
    call.on('status', (s: grpc.StatusObject) => {
      trailers = s.metadata;
    });
  });
}

for (const codec of HTTP2_CODECS) describe(`gRPC through the engine (http2_codec = ${codec})`, () => {
  let dir: string;
  let server: grpc.Server;
  let proxy: ProxyUnderTest;
  let client: EchoClient;
  let Ctor: new (address: string, creds: grpc.ChannelCredentials) => EchoClient;
  let cancelledOnServer = 0;
  let lastMetadata: grpc.Metadata | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'remora-grpc-'));
    const protoPath = join(dir, 'echo.proto');
    writeFileSync(protoPath, PROTO);
    const def = protoLoader.loadSync(protoPath, { keepCase: true, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { remora: { test: { Echo: typeof grpc.Client & { service: grpc.ServiceDefinition } } } };
    const Echo = pkg.remora.test.Echo;
    server = new grpc.Server();
    server.addService(Echo.service, {
      Unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => {
        lastMetadata = call.metadata;
        const req = call.request;
        if (req.text === 'fail') {
          const md = new grpc.Metadata();
          md.set('x-detail', 'why');
          cb({ code: grpc.status.NOT_FOUND, details: 'no such thing', metadata: md } as grpc.ServiceError);
          return;
        }
        const reply = (): void => {
          const md = new grpc.Metadata();
          md.set('x-server-trailer', 'ok');
          cb(null, { text: `echo:${req.text}`, index: 0 }, md);
        };
        if (req.delay_ms > 0) {
          const t = setTimeout(reply, req.delay_ms);
          call.on('cancelled', () => {
            cancelledOnServer++;
            clearTimeout(t);
          });
        } else {
          reply();
        }
      },
      ServerStream: (call: grpc.ServerWritableStream<EchoRequest, EchoReply>) => {
        const req = call.request;
        let i = 0;
        const next = (): void => {
          if (call.cancelled) return;
          if (i >= req.count) {
            const md = new grpc.Metadata();
            md.set('x-stream-trailer', String(req.count));
            call.end(md);
            return;
          }
          call.write({ text: req.text, index: i++ });
          setTimeout(next, req.delay_ms);
        };
        next();
      },
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    proxy = await startProxy({ address: '127.0.0.1', port }, {}, { http2Codec: codec });
    Ctor = Echo as unknown as new (address: string, creds: grpc.ChannelCredentials) => EchoClient;
    client = new Ctor(`127.0.0.1:${proxy.port}`, grpc.credentials.createInsecure());
  });

  after(async () => {
    client.close();
    await proxy.close();
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  test('unary: reply, request metadata forwarded, trailer metadata and status OK', async () => {
    const md = new grpc.Metadata();
    md.set('x-client-md', 'v1');
    md.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    const r = await unary(client, { text: 'hi' }, md);
    assert.equal(r.err, null);
    assert.equal(r.res?.text, 'echo:hi');
    assert.deepEqual(r.trailers?.get('x-server-trailer'), ['ok']);
    assert.deepEqual(lastMetadata?.get('x-client-md'), ['v1']);
    assert.deepEqual(lastMetadata?.get('traceparent'), ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01']);
    assert.equal(lastMetadata?.get('x-request-id').length, 1);
  });

  test('unary: an error status and its metadata arrive in trailers', async () => {
    const r = await unary(client, { text: 'fail' });
    assert.equal(r.err?.code, grpc.status.NOT_FOUND);
    assert.equal(r.err?.details, 'no such thing');
    assert.deepEqual(r.err?.metadata.get('x-detail'), ['why']);
  });

  test('server streaming: every message in order, then the trailers', async () => {
    const got: EchoReply[] = [];
    const status = await new Promise<grpc.StatusObject>((resolve) => {
      const call = client.ServerStream({ text: 'tick', count: 20, delay_ms: 5 });
      call.on('data', (m: EchoReply) => got.push(m));
      call.on('status', resolve);
      call.on('error', () => {});
    });
    assert.equal(status.code, grpc.status.OK);
    assert.deepEqual(got.map((m) => m.index), Array.from({ length: 20 }, (_, i) => i));
    assert.deepEqual(status.metadata.get('x-stream-trailer'), ['20']);
  });

  test('many concurrent calls on one channel', async () => {
    const rs = await Promise.all(Array.from({ length: 100 }, (_, i) => unary(client, { text: `n${i}` })));
    rs.forEach((r, i) => assert.equal(r.res?.text, `echo:n${i}`));
  });

  test('a deadline cancels the call on the server too', async () => {
    const before = cancelledOnServer;
    const r = await unary(client, { text: 'slow', delay_ms: 5_000 }, new grpc.Metadata(), { deadline: Date.now() + 200 });
    assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
    await waitFor(() => cancelledOnServer !== before, 'the server to see the cancellation');
    assert.equal(cancelledOnServer, before + 1, 'the server saw the cancellation');
  });

  test('no upstream: the client gets UNAVAILABLE from a trailers-only local reply', async () => {
    const dead = net.createServer();
    const port = await listen(dead);
    dead.close();
    const p = await startProxy({ address: '127.0.0.1', port }, {}, { http2Codec: codec });
    const c = new Ctor(`127.0.0.1:${p.port}`, grpc.credentials.createInsecure());
    try {
      const r = await unary(c, { text: 'x' });
      assert.equal(r.err?.code, grpc.status.UNAVAILABLE);
      assert.deepEqual(r.err?.metadata.get('x-remora-error'), ['upstream-connect-failure']);
    } finally {
      c.close();
      await p.close();
    }
  });
});
