// The listener's half of the redirect probes (src/proxy/redirect-prober.ts): a connection accepted with a probe's
// original destination reads "REMORA-PROBE <nonce>\n" and is answered "REMORA-PROBE-OK <nonce>\n" when the prober that
// dialed it says the nonce is this round's. In one process the prober is in the same process; with workers
// (`workers` > 1) the primary dials and any worker may accept, so a worker's ProbeResponder asks the primary.
import type { Socket } from 'node:net';
import { canonicalIp, type HostPort, type OriginalDst } from '../core/addr.js';
import type { Direction } from '../l4/accept-route.js';
import type { ProbeName, ProbeStatus } from './readiness.js';

/** The port the loopback probes dial (at 127.0.0.6 / ::6; never listened on: the rules must redirect it). */
export const LOOPBACK_PROBE_PORT = 15099;
/** A connection claimed as a probe must send its nonce line within this long. */
const CLAIM_READ_MS = 2_000;
const NONCE_LINE = /^REMORA-PROBE ([0-9a-f]{32})$/;

/** Is `nonce` this round's probe of that listener and destination (the probe is then seen)? */
export type ProbeCheck = (nonce: string, listener: Direction, address: string, port: number) => boolean | Promise<boolean>;

/** What readiness reads of the probes: the prober itself, or (in a worker) the primary's state mirrored. */
export interface ProbeStatusView {
  readonly intervalMs: number;
  status(): ReadonlyMap<ProbeName, ProbeStatus>;
}

/** Read the nonce line of a claimed probe connection and answer it when `check` says so; else close it. */
export function answerProbe(socket: Socket, direction: Direction, address: string, port: number, check: ProbeCheck, claimed: Set<Socket>): void {
  claimed.add(socket);
  let line = '';
  const timer = setTimeout(() => { socket.destroy(); }, CLAIM_READ_MS);
  socket.once('close', () => {
    clearTimeout(timer);
    claimed.delete(socket);
  });
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => {
    line += d;
    const i = line.indexOf('\n');
    if (i < 0) {
      if (line.length > 128) socket.destroy();
      return;
    }
    socket.pause();
    const nonce = NONCE_LINE.exec(line.slice(0, i))?.[1];
    if (nonce === undefined) {
      socket.destroy();
      return;
    }
    void Promise.resolve(check(nonce, direction, address, port)).catch(() => false).then((ok) => {
      // Not this round's probe (a stale one, or something else dialing the probe address): not answered.
      if (!ok) socket.destroy();
      else socket.end(`REMORA-PROBE-OK ${nonce}\n`);
    });
  });
  socket.on('end', () => { socket.destroy(); });
}

/** A worker's probe claims: the probe destinations come from the settings in force, the check from the primary. */
export class ProbeResponder {
  readonly #settings: () => { readonly intervalMs: number; readonly target: HostPort | undefined };
  readonly #check: ProbeCheck;
  readonly #claimed = new Set<Socket>();
  #stopped = false;

  constructor(o: { readonly settings: () => { readonly intervalMs: number; readonly target: HostPort | undefined }; readonly check: ProbeCheck }) {
    this.#settings = o.settings;
    this.#check = o.check;
  }

  /** As RedirectProber.claim(): true when the connection is a probe (answered here, never forwarded or counted). */
  claim(direction: Direction, socket: Socket, origDst: OriginalDst): boolean {
    if (!this.wants(direction, origDst)) return false;
    answerProbe(socket, direction, canonicalIp(origDst.address) ?? origDst.address, origDst.port, this.#check, this.#claimed);
    return true;
  }

  /** Whether claim() would take a connection to this original destination. */
  wants(direction: Direction, origDst: OriginalDst): boolean {
    if (this.#stopped) return false;
    const s = this.#settings();
    if (s.intervalMs <= 0) return false;
    const a = canonicalIp(origDst.address) ?? origDst.address;
    return direction === 'inbound'
      ? origDst.port === LOOPBACK_PROBE_PORT && (a === '127.0.0.6' || a === '::6')
      : s.target !== undefined && origDst.port === s.target.port && a === (canonicalIp(s.target.host) ?? s.target.host);
  }

  stop(): void {
    this.#stopped = true;
    for (const s of this.#claimed) s.destroy();
    this.#claimed.clear();
  }
}
