// The IPC peer of `workers = N` (src/proxy/workers/ipc-peer.ts) over a real Node IPC channel, the one a node:cluster
// Worker's send() delegates to: the process at the other end is SIGKILLed while requests keep going to it (as the
// admin scrapes and the control plane's reports do in the primary). Every request is answered or fails, none waits for
// its timeout, and no 'error' is emitted: node:cluster re-emits it on the Worker, where nobody listening made it a
// throw that crashed the primary in the window between the worker's death and its 'exit'.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { IpcPeer, type IpcChannel } from '../../../src/proxy/workers/ipc-peer.js';

/** A child that answers every request with its body (the worker side of the protocol, by hand). */
const ECHO = "process.on('message', (m) => { if (m.t === 'req') process.send({ t: 'res', id: m.id, ok: true, value: m.body }); });";

test('a worker killed while requests go to it: each is answered or fails at once; nothing is thrown or emitted', { timeout: 30_000 }, async () => {
  const child = spawn(process.execPath, ['-e', ECHO], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced' });
  const errors: unknown[] = [];
  // What node:cluster does with the process's 'error' (re-emit on the Worker); recorded here instead of thrown.
  child.on('error', (err) => { errors.push(err); });
  const peer = new IpcPeer(child as unknown as IpcChannel, 'worker 1');
  assert.equal(await peer.request('echo', 'hello', 10_000), 'hello');
  const exited = new Promise<NodeJS.Signals | null>((resolve) => { child.once('exit', (_code, signal) => { resolve(signal); }); });
  let gone = false;
  void exited.then(() => { gone = true; });
  // Requests from before the kill until after the exit (every turn of the event loop, so some land between the
  // channel's 'disconnect' and the process's 'exit', and some race the other end's death).
  const outcomes: Promise<'answered' | 'failed'>[] = [];
  let sentAfterKill = 0;
  let killed = false;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      outcomes.push(peer.request('echo', outcomes.length, 60_000).then(() => 'answered' as const, () => 'failed' as const));
      if (killed) sentAfterKill++;
      if (outcomes.length === 20) {
        child.kill('SIGKILL');
        killed = true;
      }
      if (gone && sentAfterKill > 20) {
        resolve();
        return;
      }
      setImmediate(tick);
    };
    tick();
  });
  assert.equal(await exited, 'SIGKILL');
  const started = Date.now();
  const results = await Promise.all(outcomes);
  assert.ok(Date.now() - started < 5_000, 'no request waited for its 60 s timeout');
  assert.ok(results.includes('failed'), 'the requests after the death failed');
  peer.close('worker 1 exited');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(errors, [], 'no error event on the worker process');
});
