// A real `remora proxy` on loopback for tests, without iptables: startProxy() with the config validated by the real
// snapshot loader from INI text, listeners on 127.0.0.1 port 0, and an injected original-destination reader so each
// test decides where "the app dialed". The INI text can be replaced and reloaded (proxy.reload()), as SIGHUP would.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import type { SnapshotDefinitions } from '../../src/config/config-snapshot.js';
import { DEFAULT_OUTBOUND_PORT } from '../../src/config/init-options.js';
import { loadSnapshotDefinitions, type SnapshotLoad } from '../../src/config/load-snapshot.js';
import type { OriginalDst } from '../../src/core/addr.js';
import type { Direction } from '../../src/l4/accept-route.js';
import type { HttpHandoff } from '../../src/l4/http-handoff.js';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import type { DnsResolverLike } from '../../src/upstream/dns-discovery.js';

export const RIG_CONFIG = 'test.ini';

export interface RigOptions {
  /** detect_timeout (default 60 s). */
  readonly detectTimeout?: number;
  /** http_engine (default off: the L4 stages forward HTTP as opaque TCP). */
  readonly httpEngine?: boolean;
  readonly httpHandlers?: Partial<Record<Direction, HttpHandoff>>;
  readonly connectTimeout?: number;
  readonly idleTimeout?: number;
  readonly resolver?: DnsResolverLike;
  /** The admin listener's port (default: any free one, not reachable by the test). */
  readonly adminPort?: number;
  readonly drainTimeout?: number;
  /** drain_grace (default 0: the rig's proxies stop as soon as nothing is open). */
  readonly drainGrace?: number;
  /**
   * The level of the rig's logger (default debug: tests read the records). A bench sets what the CLI would use, so
   * that no debug record is built or kept.
   */
  readonly logLevel?: 'debug' | 'info' | 'warn';
}

export interface Rig {
  readonly proxy: Proxy;
  /** The outbound listener's port. */
  readonly port: number;
  /** The inbound listener's port. */
  readonly inboundPort: number;
  /** Where the next accepted connections "were going". */
  dst(address: string, port: number): void;
  /** Every log line, parsed. */
  readonly logs: Record<string, unknown>[];
  /** Replace the config text that the next reload reads. */
  setConfig(ini: string): void;
}

/**
 * Loopback overrides of [proxy] (ports 0 cannot be written in a config: listeners must be bound by the test). The
 * outbound port and the log level are overridden only while the config leaves them at their defaults, so that a test
 * can change them in the file (a reload that tries to move a listener; a reload that changes the log level).
 */
function loopback(defs: SnapshotDefinitions, opts: RigOptions): SnapshotDefinitions {
  const p = defs.proxy;
  return {
    ...defs,
    proxy: {
      ...p,
      outboundPort: p.outboundPort === DEFAULT_OUTBOUND_PORT ? 0 : p.outboundPort,
      inboundPort: 0, listenAddress: '127.0.0.1', uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0,
      adminAddress: { host: '127.0.0.1', port: opts.adminPort ?? 0 }, connectTimeout: opts.connectTimeout ?? 1_000,
      idleTimeout: opts.idleTimeout ?? 20_000, detectTimeout: opts.detectTimeout ?? 60_000, drainTimeout: opts.drainTimeout ?? 500,
      logLevel: p.logLevel === 'info' ? 'debug' : p.logLevel,
      httpEngine: opts.httpEngine ?? false,
      // No iptables here: no redirect probes (/ready follows the listeners), and no drain grace unless asked.
      drainGrace: opts.drainGrace ?? 0, readinessProbeInterval: 0,
    },
  };
}

export async function startRig(t: TestContext, ini: string, opts: RigOptions = {}): Promise<Rig> {
  let text = ini;
  let dst: OriginalDst = { family: 4, address: '127.0.0.1', port: 1 };
  const load = (): SnapshotLoad => {
    const r = loadSnapshotDefinitions({
      file: RIG_CONFIG, flags: new Map(), env: {},
      readFile: (p) => (p === RIG_CONFIG ? Buffer.from(text) : readFileSync(p)),
    });
    return r.ok ? { ...r, definitions: loopback(r.definitions, opts) } : r;
  };
  const first = load();
  assert.ok(first.ok, first.ok ? '' : JSON.stringify(first.issues, null, 2));
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: opts.logLevel ?? 'debug', formatters: { level: (label) => ({ level: label }) } },
    { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>); } });
  const proxy = await startProxy({
    log, definitions: first.definitions, configFile: RIG_CONFIG, reload: load, watchConfig: false, handleSignals: false,
    readOriginalDst: () => ({ originalDst: dst, peerAddress: undefined, peerPort: undefined }),
    ...(opts.httpHandlers === undefined ? {} : { httpHandlers: opts.httpHandlers }),
    ...(opts.resolver === undefined ? {} : { resolver: opts.resolver }),
  });
  t.after(async () => { await proxy.shutdown(); });
  const portOf = (name: string): number => {
    const address = proxy.stats().listeners[name]?.address ?? '';
    return Number(address.slice(address.lastIndexOf(':') + 1));
  };
  return {
    proxy, port: portOf('outbound'), inboundPort: portOf('inbound'), logs,
    dst: (address, port) => { dst = { family: address.includes(':') ? 6 : 4, address, port }; },
    setConfig: (next) => { text = next; },
  };
}
