// The redirect probes behind /ready: every readiness_probe_interval, connections are sent through the pod's nat rules
// and must arrive on this proxy's capture listeners, each carrying a fresh random nonce the listener checks. A probe
// passes only when the listener itself saw this round's nonce on a connection whose original destination (read with
// SO_ORIGINAL_DST, which only a NATed connection has) is the probe's destination, and the dialer got the answer.
//
//   loopback-ipv4  the proxy (its own uid) dials 127.0.0.6:15099 from 127.0.0.1. The rules send the proxy's
//                  connections to its own pod over lo to the inbound listener (REMORA_OUTPUT
//                  `! -d 127.0.0.1/32 -o lo -m owner --uid-owner <proxy uid> -j REMORA_IN_REDIRECT`, then REDIRECT to
//                  inbound_port). Proves: the nat OUTPUT jump, remora's output chain and the inbound redirect.
//   loopback-ipv6  the same from ::1 to [::6]:15099, when ::6 is on lo (remora init adds it with its IPv6 rules).
//   outbound       the helper (src/proxy/probe-helper.ts, another uid) dials readiness_probe_target: the path of an
//                  app's outbound connection, to the outbound listener. Proves: the OUTPUT jump, that the owner and
//                  loopback rules let a non-proxy uid through, the capture rule and REDIRECT to outbound_port.
//
// Not provable from inside the pod: nat PREROUTING (capture of connections arriving from outside). NAT is decided at
// a connection's first packet, at OUTPUT for a local socket, so no local connection ever meets nat PREROUTING;
// reading the rules needs CAP_NET_ADMIN, which the sidecar does not have. See docs/operations.md.
//
// The listeners hand every accepted connection to claim() first (one port comparison when it is not a probe).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { canonicalIp, formatHostPort, type HostPort, type OriginalDst } from '../core/addr.js';
import type { Logger } from '../core/log.js';
import type { Direction } from '../l4/accept-route.js';
import type { DialOutcome } from './probe-helper.js';
import { answerProbe, LOOPBACK_PROBE_PORT } from './probe-responder.js';
import { hasIpv4Route, hasIpv6Route, type ProbeName, type ProbeStatus } from './readiness.js';

/** The port the loopback probes dial (at 127.0.0.6 / ::6; never listened on: the rules must redirect it). */
export { LOOPBACK_PROBE_PORT };
/** A probe connection must come back within this long (capped at the interval). */
export const PROBE_TIMEOUT_MS = 3_000;
/** How often the settings are looked at again while probing is off (a reload may turn it on). */
const OFF_RECHECK_MS = 5_000;

export interface ProberSettings {
  /** readiness_probe_interval (ms); 0 = off. */
  readonly intervalMs: number;
  /** readiness_probe_target; undefined = no outbound probe. */
  readonly target: HostPort | undefined;
}

/** What the outbound probe needs of its helper (src/proxy/probe-helper.ts ProbeHelper; tests fake it). */
export interface OutboundDialer {
  /** The uid the helper's connections are made as. */
  readonly uid: number;
  /** Why the helper is gone, or undefined while it runs. */
  readonly exited: string | undefined;
  dial(host: string, port: number, nonce: string, timeoutMs: number): Promise<DialOutcome>;
}

export interface RedirectProberOptions {
  readonly log: Logger;
  /** The settings in force (read at every round: a reload changes them). */
  readonly settings: () => ProberSettings;
  readonly inboundPort: number;
  readonly outboundPort: number;
  /** The helper for the outbound probe, or why there is none. */
  readonly helper: OutboundDialer | { readonly unavailable: string };
  /** The inbound listener accepts IPv6 (bound to "::" without falling back to IPv4). */
  readonly inboundIpv6: boolean;
  /** Called after every round, when a probe fails, and whenever probing is switched off (readiness is evaluated again). */
  readonly onRound: () => void;
  readonly now?: () => number;
}

interface Expectation {
  readonly listener: Direction;
  readonly address: string;
  readonly port: number;
  seen: boolean;
}

interface Probe {
  readonly name: ProbeName;
  readonly listener: Direction;
  readonly address: string;
  readonly port: number;
  readonly dial: (nonce: string, timeoutMs: number) => Promise<DialOutcome>;
}

/** The in-process dial of a loopback probe (as the proxy's uid). */
function dialLocal(host: string, localAddress: string, port: number, nonce: string, timeoutMs: number): Promise<DialOutcome> {
  return new Promise((resolve) => {
    let reply = '';
    let done = false;
    const s = connect({ host, port, localAddress });
    const finish = (error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ reply: reply.split('\n')[0] ?? '', error });
    };
    const timer = setTimeout(() => { finish('ETIMEDOUT'); }, timeoutMs);
    s.setEncoding('latin1');
    s.on('connect', () => { s.write(`REMORA-PROBE ${nonce}\n`); });
    s.on('data', (d: string) => { reply += d; if (reply.includes('\n') || reply.length > 256) finish(); });
    s.on('end', () => { finish(reply.includes('\n') ? undefined : 'closed'); });
    s.on('error', (err: NodeJS.ErrnoException) => { finish(err.code ?? err.message); });
  });
}

function hasLoopbackV6Source(): boolean {
  return (networkInterfaces()['lo'] ?? []).some((a) => a.address === '::6');
}

function readProc(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export class RedirectProber {
  readonly #o: RedirectProberOptions;
  readonly #now: () => number;
  readonly #status = new Map<ProbeName, ProbeStatus>();
  readonly #pending = new Map<string, Expectation>();
  /** Ports a probe connection can have as original destination (empty while probing is off: claim() is one lookup). */
  #ports = new Set<number>();
  #target: HostPort | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #stopped = false;
  #intervalMs = 0;
  /** Claimed connections not closed yet (closed when the prober stops). */
  readonly #claimed = new Set<Socket>();

  constructor(o: RedirectProberOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** readiness_probe_interval in force (0 = off). */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  /** The probes' states (absent: not run here). */
  status(): ReadonlyMap<ProbeName, ProbeStatus> {
    return this.#status;
  }

  /** Start probing: the first round now; until it ends the probes are pending (not ready). */
  start(): void {
    const settings = this.#o.settings();
    this.#intervalMs = settings.intervalMs;
    if (settings.intervalMs > 0) {
      for (const p of this.#probes(settings.target)) this.#status.set(p.name, { state: 'pending', detail: 'the first round has not ended', passed: 0, failed: 0 });
    }
    this.#schedule(0);
  }

  /** Stop probing (the drain). The last results stay visible. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#ports = new Set();
    for (const s of this.#claimed) s.destroy();
    this.#claimed.clear();
  }

  /**
   * A connection accepted by a capture listener: when its original destination is a probe's, answer it here (never
   * forwarded, never counted as traffic) and return true. Hot path: one Set lookup for every other connection.
   */
  claim(direction: Direction, socket: Socket, origDst: OriginalDst): boolean {
    if (!this.wants(direction, origDst)) return false;
    this.#answer(direction, socket, canonicalIp(origDst.address) ?? origDst.address, origDst.port);
    return true;
  }

  /** Whether claim() would take a connection to this original destination (the native accept asks before a socket exists). */
  wants(direction: Direction, origDst: OriginalDst): boolean {
    if (!this.#ports.has(origDst.port)) return false;
    const a = canonicalIp(origDst.address) ?? origDst.address;
    return direction === 'inbound'
      ? origDst.port === LOOPBACK_PROBE_PORT && (a === '127.0.0.6' || a === '::6')
      : this.#target !== undefined && origDst.port === this.#target.port && a === (canonicalIp(this.#target.host) ?? this.#target.host);
  }

  #answer(direction: Direction, socket: Socket, address: string, port: number): void {
    answerProbe(socket, direction, address, port, (nonce, d, a, p) => this.check(nonce, d, a, p), this.#claimed);
  }

  /**
   * A probe connection read its nonce line on `listener`: true (and the probe is seen) when it is this round's probe
   * of that listener and destination. With workers the connection may be accepted by any worker: it asks the primary,
   * whose prober dialed it, through this (src/proxy/workers/).
   */
  check(nonce: string, listener: Direction, address: string, port: number): boolean {
    const exp = this.#pending.get(nonce);
    if (exp === undefined || exp.listener !== listener || exp.address !== address || exp.port !== port) return false;
    exp.seen = true;
    return true;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => { void this.#round(); }, ms);
    this.#timer.unref();
  }

  async #round(): Promise<void> {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    try {
      const settings = this.#o.settings();
      this.#intervalMs = settings.intervalMs;
      if (settings.intervalMs <= 0) {
        // Off: no probe runs, no result is kept (readiness is the listeners and the configuration).
        this.#ports = new Set();
        this.#status.clear();
        this.#o.onRound();
        this.#schedule(OFF_RECHECK_MS);
        return;
      }
      this.#target = settings.target;
      const timeoutMs = Math.min(PROBE_TIMEOUT_MS, settings.intervalMs);
      const probes = this.#probes(settings.target);
      this.#ports = new Set(probes.map((p) => p.port));
      // A failure counts at once (a flushed table makes the loopback probes fail in a millisecond, while the outbound
      // one waits for its timeout): readiness turns false without waiting for the slowest probe. Passes, and
      // whatever is left, are applied together at the end of the round.
      const results = await Promise.all(probes.map(async (p) => {
        const r = await this.#runOne(p, timeoutMs);
        if (r.state !== 'failed') return r;
        this.#mark(r.name, r.state, r.detail);
        this.#o.onRound();
        return undefined;
      }));
      for (const r of results) if (r !== undefined) this.#mark(r.name, r.state, r.detail);
      this.#o.onRound();
      this.#schedule(settings.intervalMs);
    } catch (err) {
      this.#o.log.error({ err }, 'readiness probe round failed');
      this.#schedule(OFF_RECHECK_MS);
    } finally {
      this.#running = false;
    }
  }

  /** This round's probes; the probes that cannot run are marked unavailable (or dropped when switched off). */
  #probes(target: HostPort | undefined): Probe[] {
    const out: Probe[] = [{
      name: 'loopback-ipv4', listener: 'inbound', address: '127.0.0.6', port: LOOPBACK_PROBE_PORT,
      dial: (nonce, t) => dialLocal('127.0.0.6', '127.0.0.1', LOOPBACK_PROBE_PORT, nonce, t),
    }];
    if (this.#o.inboundIpv6 && hasLoopbackV6Source()) {
      out.push({
        name: 'loopback-ipv6', listener: 'inbound', address: '::6', port: LOOPBACK_PROBE_PORT,
        dial: (nonce, t) => dialLocal('::6', '::1', LOOPBACK_PROBE_PORT, nonce, t),
      });
    } else {
      this.#status.delete('loopback-ipv6');
    }
    const helper = this.#o.helper;
    if (target === undefined) {
      this.#status.delete('outbound');
    } else if ('unavailable' in helper) {
      this.#mark('outbound', 'unavailable', helper.unavailable);
    } else if (helper.exited !== undefined) {
      this.#mark('outbound', 'unavailable', `the probe helper (uid ${helper.uid}) ${helper.exited}; it cannot be restarted without root`);
    } else {
      const address = canonicalIp(target.host) ?? target.host;
      out.push({
        name: 'outbound', listener: 'outbound', address, port: target.port,
        dial: (nonce, t) => helper.dial(target.host, target.port, nonce, t),
      });
    }
    return out;
  }

  async #runOne(p: Probe, timeoutMs: number): Promise<{ name: ProbeName; state: ProbeStatus['state']; detail: string }> {
    const nonce = randomBytes(16).toString('hex');
    const exp: Expectation = { listener: p.listener, address: p.address, port: p.port, seen: false };
    this.#pending.set(nonce, exp);
    let outcome: DialOutcome;
    try {
      outcome = await p.dial(nonce, timeoutMs);
    } finally {
      this.#pending.delete(nonce);
    }
    const listenerPort = p.listener === 'inbound' ? this.#o.inboundPort : this.#o.outboundPort;
    const dst = formatHostPort(p.address, p.port);
    if (exp.seen && outcome.error === undefined && outcome.reply === `REMORA-PROBE-OK ${nonce}`) {
      return { name: p.name, state: 'ok', detail: `${dst} was redirected to the ${p.listener} listener :${listenerPort}` };
    }
    if (p.name === 'outbound' && outcome.error === 'ENETUNREACH' && !this.#routed(p.address)) {
      // The kernel refused before netfilter saw a packet: this says nothing about the rules.
      return {
        name: p.name, state: 'unavailable',
        detail: `no route to ${p.address}: the kernel refuses the connection before the rules see it;`
          + ' set readiness_probe_target to an address the pod routes and the outbound rules capture',
      };
    }
    const who = p.name === 'outbound' && !('unavailable' in this.#o.helper) ? ` as uid ${this.#o.helper.uid}` : '';
    let why: string;
    if (exp.seen) why = `the ${p.listener} listener saw the probe but its answer did not come back (${outcome.error ?? 'bad reply'})`;
    else if (outcome.error === undefined) why = `${dst} answered, but not through this proxy's ${p.listener} listener :${listenerPort}`;
    else why = `connect${who} to ${dst}: ${outcome.error}: not redirected to the ${p.listener} listener :${listenerPort}`;
    return { name: p.name, state: 'failed', detail: why };
  }

  #routed(address: string): boolean {
    return address.includes(':') ? hasIpv6Route(readProc('/proc/net/ipv6_route'), address) : hasIpv4Route(readProc('/proc/net/route'), address);
  }

  #mark(name: ProbeName, state: ProbeStatus['state'], detail: string): void {
    const prev = this.#status.get(name);
    const at = state === 'unavailable' ? prev?.at : this.#now();
    this.#status.set(name, {
      state, detail, at,
      passed: (prev?.passed ?? 0) + (state === 'ok' ? 1 : 0),
      failed: (prev?.failed ?? 0) + (state === 'failed' ? 1 : 0),
    });
  }
}
