// One end of the primary <-> worker channel (node:cluster's IPC, `serialization: 'advanced'`: structured clone, so a
// snapshot's definitions travel as they are). Requests carry an id and get one answer; notifications get none.
//   {t:'req', id, kind, body}          -> {t:'res', id, ok:true, value} | {t:'res', id, ok:false, error}
//   {t:'note', kind, body}
// Nothing here knows what the kinds mean: src/proxy/workers/primary.ts and worker.ts register them.
//
// The other end can vanish at any moment (a worker SIGKILLed or OOM-killed, the primary killed). Node reports that in
// three ways, none of which may take this process down or leave a request waiting: the channel's 'disconnect' event
// (closes the peer: every waiting request fails now and later ones are not sent), and for a message sent before that
// event was handled, the send's error: ERR_IPC_CHANNEL_CLOSED once the channel is marked closed, EPIPE while the
// write still raced the other end's death. Without a callback Node emits those errors as an 'error' event on the
// ChildProcess, which node:cluster re-emits on the Worker, where an 'error' nobody listens to is thrown: the primary
// crashed when an admin scrape or a report went to a worker in the window between its death and its 'exit' (and so
// never logged worker.exited nor restarted it). So every send passes a callback, and an error fails that one request.
import { RemoraError } from '../../core/errors.js';

/**
 * The channel: a cluster Worker in the primary, the process itself in a worker. `send` always gets a callback: Node
 * then reports a failed send to it instead of emitting 'error' (see the top of this file).
 */
export interface IpcChannel {
  send(message: unknown, callback: (err: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): void;
  on(event: 'disconnect', listener: () => void): void;
}

type Handler = (body: unknown) => unknown;

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

function isMessage(m: unknown): m is { t: string; id?: number; kind?: string; body?: unknown; ok?: boolean; value?: unknown; error?: string } {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}

export class IpcPeer {
  readonly #channel: IpcChannel;
  readonly #handlers = new Map<string, Handler>();
  readonly #notes = new Map<string, (body: unknown) => void>();
  readonly #pending = new Map<number, Pending>();
  #seq = 0;
  #closed = false;

  /** `other`: who is at the other end, for the errors ('worker 2', 'the primary'). */
  constructor(channel: IpcChannel, other: string) {
    this.#channel = channel;
    channel.on('message', (m) => { this.#onMessage(m); });
    // The channel is gone for good (the other end died or disconnected): nothing sent from now on can be answered.
    // In the primary this comes before, or after, the worker's 'exit': either way its requests fail now.
    channel.on('disconnect', () => { this.close(`${other} closed the channel`); });
  }

  /** Answer requests of `kind` (the handler may return a promise; a throw is answered as an error). */
  handle(kind: string, handler: Handler): void {
    this.#handlers.set(kind, handler);
  }

  /** Hear notifications of `kind`. */
  onNote(kind: string, listener: (body: unknown) => void): void {
    this.#notes.set(kind, listener);
  }

  note(kind: string, body?: unknown): void {
    this.#send({ t: 'note', kind, body });
  }

  /** Ask the other end; rejects after `timeoutMs`, or when the channel closes first. */
  request(kind: string, body: unknown, timeoutMs: number): Promise<unknown> {
    if (this.#closed) return Promise.reject(new RemoraError('REMORA_ERR_INTERNAL', `the ${kind} request found the worker channel closed`));
    const id = ++this.#seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new RemoraError('REMORA_ERR_INTERNAL', `no answer to ${kind} within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.#pending.set(id, { resolve, reject, timer });
      const failed = (why: string): void => {
        if (!this.#pending.delete(id)) return;
        clearTimeout(timer);
        reject(new RemoraError('REMORA_ERR_INTERNAL', `the ${kind} request could not be sent (${why})`));
      };
      this.#send({ t: 'req', id, kind, body }, failed);
    });
  }

  /** The other end is gone: every request waiting fails now, and later ones at once (nothing more is sent). */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      this.#pending.delete(id);
      p.reject(new RemoraError('REMORA_ERR_INTERNAL', reason));
    }
  }

  /**
   * Send, never throwing nor letting Node emit 'error': `failed` hears why a message did not go out, at once (the
   * peer is closed, or the message cannot be serialized) or later (the channel closed or broke under the write).
   */
  #send(message: unknown, failed: (why: string) => void = () => undefined): void {
    if (this.#closed) {
      failed('the channel is closed');
      return;
    }
    try {
      this.#channel.send(message, (err) => { if (err !== null && err !== undefined) failed(err.message); });
    } catch (err) {
      failed(err instanceof Error ? err.message : String(err));
    }
  }

  #onMessage(m: unknown): void {
    if (!isMessage(m)) return;
    if (m.t === 'res' && typeof m.id === 'number') {
      const p = this.#pending.get(m.id);
      if (p === undefined) return;
      this.#pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok === true) p.resolve(m.value);
      else p.reject(new RemoraError('REMORA_ERR_INTERNAL', m.error ?? 'the other end failed'));
      return;
    }
    if (m.t === 'note' && typeof m.kind === 'string') {
      this.#notes.get(m.kind)?.(m.body);
      return;
    }
    if (m.t === 'req' && typeof m.id === 'number' && typeof m.kind === 'string') {
      const id = m.id;
      const handler = this.#handlers.get(m.kind);
      if (handler === undefined) {
        this.#send({ t: 'res', id, ok: false, error: `no handler for ${m.kind}` });
        return;
      }
      let out: unknown;
      try {
        out = handler(m.body);
      } catch (err) {
        this.#send({ t: 'res', id, ok: false, error: err instanceof Error ? err.message : String(err) });
        return;
      }
      void Promise.resolve(out).then(
        (value) => { this.#send({ t: 'res', id, ok: true, value }); },
        (err: unknown) => { this.#send({ t: 'res', id, ok: false, error: err instanceof Error ? err.message : String(err) }); },
      );
    }
  }
}
