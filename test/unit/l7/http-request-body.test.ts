import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { RequestBody, type BodySink } from '../../../src/l7/http/request-body.js';

class Sink implements BodySink {
  chunks: string[] = [];
  ended: readonly string[] | undefined;
  accept = true;
  write(chunk: Buffer): boolean {
    this.chunks.push(chunk.toString());
    return this.accept;
  }
  end(trailers: readonly string[]): void {
    this.ended = trailers;
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('streams to a reader, then replays everything to a second reader', async () => {
  const src = new PassThrough();
  const body = new RequestBody(src, undefined, () => ['X-T', '1'], 1024);
  const a = new Sink();
  body.reader()?.start(a);
  src.write('one,');
  src.write('two,');
  await tick();
  assert.deepEqual(a.chunks, ['one,', 'two,']);
  // attempt failed: a new reader replays, then continues live
  const b = new Sink();
  body.reader()?.start(b);
  assert.deepEqual(b.chunks, ['one,', 'two,']);
  src.end('three');
  await tick();
  assert.deepEqual(b.chunks, ['one,', 'two,', 'three']);
  assert.deepEqual(b.ended, ['X-T', '1']);
  assert.equal(a.ended, undefined, 'the first reader was detached');
  assert.equal(body.complete, true);
  assert.equal(body.replayable, true);
});

test('past the replay limit the body is no longer replayable', async () => {
  const src = new PassThrough();
  const body = new RequestBody(src, undefined, () => [], 8);
  const a = new Sink();
  body.reader()?.start(a);
  src.write('12345');
  await tick();
  assert.equal(body.replayable, true);
  src.write('67890');
  await tick();
  assert.equal(body.replayable, false);
  assert.deepEqual(a.chunks, ['12345', '67890'], 'the live reader still gets everything');
  assert.equal(body.reader(), undefined);
  src.write('x');
  await tick();
  assert.deepEqual(a.chunks, ['12345', '67890'], 'asking for a new reader detached the old one');
});

test('backpressure: a full sink pauses the source until resume()', async () => {
  const src = new PassThrough();
  const body = new RequestBody(src, undefined, () => [], 1024);
  const sink = new Sink();
  sink.accept = false;
  const r = body.reader();
  r?.start(sink);
  src.write('a');
  src.write('b');
  await tick();
  assert.deepEqual(sink.chunks, ['a'], 'paused after the first refused write');
  assert.equal(src.isPaused(), true);
  sink.accept = true;
  r?.resume();
  await tick();
  assert.deepEqual(sink.chunks, ['a', 'b']);
});

test('a replay stops at a full sink and continues on resume', async () => {
  const src = new PassThrough();
  const body = new RequestBody(src, 6, () => [], 1024);
  body.reader()?.start(new Sink());
  src.end('abcdef');
  await tick();
  const s = new Sink();
  s.accept = false;
  const r = body.reader();
  r?.start(s);
  assert.deepEqual(s.chunks, ['abcdef']);
  assert.equal(s.ended, undefined);
  s.accept = true;
  r?.resume();
  assert.deepEqual(s.ended, []);
});

test('an aborted source never ends the body', async () => {
  const src = new PassThrough();
  const body = new RequestBody(src, undefined, () => [], 1024, () => true);
  const s = new Sink();
  body.reader()?.start(s);
  src.end('partial');
  await tick();
  assert.deepEqual(s.chunks, ['partial']);
  assert.equal(s.ended, undefined);
  assert.equal(body.complete, false);
});

test('dispose drains the rest of the source', async () => {
  const src = new PassThrough();
  const body = new RequestBody(src, undefined, () => [], 1024);
  body.dispose();
  src.end('ignored');
  await tick();
  assert.equal(src.readableEnded, true);
});
