// The control plane's side of the sync protocol (docs/control-plane.md#the-sync-protocol-sidecars):
//   GET  /api/v1/sync?name=POD&identity=ID&version=V   Server-Sent Events; a `snapshot` event
//        {"version":REV,"nonce":N,"ini":TEXT} whenever the sidecar's version is behind the store's revision
//   POST /api/v1/sync/ack {"name","identity","version","nonce","error"?}   ACK (no error) or NACK (the issues)
// Pushes are debounced: DEBOUNCE_MS after the last write, at most DEBOUNCE_MAX_MS after the first of a burst.
// Per sidecar (known by pod name and identity) it records the version sent, the version applied, the last NACK and
// when it was last heard of; a NACK is never counted as in sync (status NACKED until a later version is applied).
import { randomBytes } from 'node:crypto';
import type { Logger } from '../core/log.js';
import { renderState } from './control-objects.js';
import type { ControlStore } from './control-store.js';

export const DEBOUNCE_MS = 100;
export const DEBOUNCE_MAX_MS = 10_000;

export type SyncStatus = 'SYNCED' | 'STALE' | 'NACKED' | 'NOT SENT';

export interface SidecarView {
  readonly name: string;
  readonly identity: string;
  readonly connected: boolean;
  readonly status: SyncStatus;
  readonly versionSent: number;
  readonly versionApplied: number;
  readonly lastNackVersion?: number;
  readonly lastNackError?: string;
  /** ISO time the sidecar was last heard of (connected, ACK/NACK). */
  readonly lastSeen: string;
}

/** The stream a sidecar reads (an HTTP/2 or HTTP/1.1 response). */
export interface SyncStream {
  write(chunk: string): boolean;
}

interface Sidecar {
  name: string;
  identity: string;
  streams: Set<SyncStream>;
  versionSent: number;
  versionApplied: number;
  lastNonce: string;
  lastNackVersion?: number;
  lastNackError?: string;
  lastSeen: number;
}

export interface AckInput {
  readonly name: string;
  readonly identity: string;
  readonly version: number;
  readonly nonce?: string;
  readonly error?: string;
}

export class SidecarSync {
  readonly #store: ControlStore;
  readonly #log: Logger;
  readonly #sidecars = new Map<string, Sidecar>();
  readonly #debounceMs: number;
  readonly #debounceMaxMs: number;
  #timer: NodeJS.Timeout | undefined;
  #burstStart = 0;
  readonly #off: () => void;
  readonly #listeners = new Set<() => void>();
  #notifyQueued = false;

  constructor(store: ControlStore, log: Logger, options: { debounceMs?: number; debounceMaxMs?: number } = {}) {
    this.#store = store;
    this.#log = log;
    this.#debounceMs = options.debounceMs ?? DEBOUNCE_MS;
    this.#debounceMaxMs = options.debounceMaxMs ?? DEBOUNCE_MAX_MS;
    this.#off = store.subscribe(() => { this.#schedule(); });
  }

  /** Called (coalesced, once per tick) after any sidecar's state changed: connected, sent, ACK/NACK, disconnected. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  #changed(): void {
    if (this.#notifyQueued || this.#listeners.size === 0) return;
    this.#notifyQueued = true;
    setImmediate(() => {
      this.#notifyQueued = false;
      for (const l of [...this.#listeners]) l();
    });
  }

  static key(name: string, identity: string): string {
    return `${name}\u0000${identity}`;
  }

  #schedule(): void {
    const now = Date.now();
    if (this.#timer === undefined) this.#burstStart = now;
    else clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(this.#debounceMs, this.#burstStart + this.#debounceMaxMs - now));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.pushAll();
    }, wait);
    this.#timer.unref();
  }

  /** Send the current state to every connected sidecar that does not have it yet. */
  pushAll(): void {
    const revision = this.#store.revision;
    let text: string | undefined;
    for (const s of this.#sidecars.values()) {
      if (s.streams.size === 0 || s.versionSent >= revision) continue;
      text ??= renderState(this.#store.list()).text;
      this.#send(s, revision, text);
    }
  }

  #send(s: Sidecar, revision: number, ini: string): void {
    s.lastNonce = randomBytes(8).toString('hex');
    s.versionSent = revision;
    const data = JSON.stringify({ version: revision, nonce: s.lastNonce, ini });
    for (const stream of s.streams) stream.write(`id: ${revision}\nevent: snapshot\ndata: ${data}\n\n`);
    this.#changed();
    this.#log.debug({ event: 'control.sync.sent', sidecar: s.name, identity: s.identity, version: revision }, 'snapshot sent');
  }

  /** A sidecar connected: register the stream; send the state when its version is behind. Returns the disconnect function. */
  connect(name: string, identity: string, haveVersion: number, stream: SyncStream): () => void {
    const key = SidecarSync.key(name, identity);
    let s = this.#sidecars.get(key);
    if (s === undefined) {
      s = { name, identity, streams: new Set(), versionSent: 0, versionApplied: haveVersion, lastNonce: '', lastSeen: Date.now() };
      this.#sidecars.set(key, s);
    }
    s.streams.add(stream);
    s.lastSeen = Date.now();
    // What it says it has is what it applied (after a reconnect); it was sent at least that.
    if (haveVersion > 0) s.versionApplied = haveVersion;
    s.versionSent = haveVersion;
    this.#changed();
    this.#log.info({ event: 'control.sync.connected', sidecar: name, identity, version: haveVersion }, 'sidecar connected');
    stream.write(`event: hello\ndata: ${JSON.stringify({ revision: this.#store.revision })}\n\n`);
    const revision = this.#store.revision;
    if (haveVersion !== revision) this.#send(s, revision, renderState(this.#store.list()).text);
    const sidecar = s;
    return () => {
      sidecar.streams.delete(stream);
      sidecar.lastSeen = Date.now();
      this.#changed();
      this.#log.info({ event: 'control.sync.disconnected', sidecar: name, identity }, 'sidecar disconnected');
    };
  }

  /** Record an ACK or a NACK. False when the sidecar is unknown. */
  ack(input: AckInput): boolean {
    const s = this.#sidecars.get(SidecarSync.key(input.name, input.identity));
    if (s === undefined) return false;
    s.lastSeen = Date.now();
    this.#changed();
    if (input.error === undefined) {
      s.versionApplied = Math.max(s.versionApplied, input.version);
      this.#log.info({ event: 'control.sync.ack', sidecar: s.name, identity: s.identity, version: input.version }, 'sidecar applied the snapshot');
    } else {
      s.lastNackVersion = input.version;
      s.lastNackError = input.error;
      this.#log.warn({ event: 'control.sync.nack', sidecar: s.name, identity: s.identity, version: input.version, error: input.error }, 'sidecar rejected the snapshot');
    }
    return true;
  }

  list(): SidecarView[] {
    return [...this.#sidecars.values()].map((s) => {
      const status: SyncStatus = s.versionSent === 0 && s.versionApplied === 0 ? 'NOT SENT'
        : s.lastNackVersion !== undefined && s.lastNackVersion >= s.versionSent && s.versionApplied < s.versionSent ? 'NACKED'
          : s.versionApplied >= s.versionSent ? 'SYNCED' : 'STALE';
      return {
        name: s.name, identity: s.identity, connected: s.streams.size > 0, status, versionSent: s.versionSent, versionApplied: s.versionApplied,
        ...(s.lastNackVersion === undefined ? {} : { lastNackVersion: s.lastNackVersion }),
        ...(s.lastNackError === undefined ? {} : { lastNackError: s.lastNackError }),
        lastSeen: new Date(s.lastSeen).toISOString(),
      };
    }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.identity < b.identity ? -1 : 1));
  }

  close(): void {
    this.#off();
    this.#listeners.clear();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }
}
