// One end of the primary <-> worker channel (node:cluster's IPC, `serialization: 'advanced'`: structured clone, so a
// snapshot's definitions travel as they are). Requests carry an id and get one answer; notifications get none.
//   {t:'req', id, kind, body}          -> {t:'res', id, ok:true, value} | {t:'res', id, ok:false, error}
//   {t:'note', kind, body}
// Nothing here knows what the kinds mean: src/proxy/workers/primary.ts and worker.ts register them.
import { RemoraError } from '../../core/errors.js';

/** The channel: a cluster Worker in the primary, the process itself in a worker. */
export interface IpcChannel {
  send(message: unknown): void;
  on(event: 'message', listener: (message: unknown) => void): void;
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

  constructor(channel: IpcChannel) {
    this.#channel = channel;
    channel.on('message', (m) => { this.#onMessage(m); });
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
      if (!this.#send({ t: 'req', id, kind, body })) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new RemoraError('REMORA_ERR_INTERNAL', `the ${kind} request could not be sent (the worker is gone)`));
      }
    });
  }

  /** The other end is gone: every request waiting fails now. */
  close(reason: string): void {
    this.#closed = true;
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      this.#pending.delete(id);
      p.reject(new RemoraError('REMORA_ERR_INTERNAL', reason));
    }
  }

  #send(message: unknown): boolean {
    if (this.#closed) return false;
    try {
      this.#channel.send(message);
      return true;
    } catch {
      return false;
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
