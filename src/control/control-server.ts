// `remora control` put together: the embedded store in DIR (locked) and the mesh CA in DIR (created on first start,
// the layout of `remora ca`), or with `--store etcd://...` the etcd store and the CA shared through etcd (etcd-ca.ts), a serving certificate issued by that CA for the listen address, an X.509-SVID for the
// validator (so that mTLS keys are checked as a sidecar with an identity checks them), and one TLS listener (HTTP/2
// with HTTP/1.1 fallback) answering the API.
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { formatHostPort, type HostPort } from '../core/addr.js';
import { RemoraError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { CaStore } from '../pki/ca-store.js';
import { ControlApi, type CertificateSigner } from './control-api.js';
import { checkCsr } from './csr.js';
import type { ControlStore } from './control-store.js';
import { EmbeddedStore } from './embedded-store.js';
import { openSharedCa } from './etcd-ca.js';
import { EtcdClient, type EtcdEndpoint } from './etcd-client.js';
import { EtcdStore } from './etcd-store.js';
import { MetricsAggregator } from './metrics-aggregator.js';
import { StatusAggregator } from './status-aggregator.js';
import { SidecarSync } from './sidecar-sync.js';
import { StateValidator } from './state-validator.js';
import { UiStatic } from './ui-static.js';
import type { TokenSet } from './token-auth.js';

const HOUR_MS = 3_600_000;
const ROOT_TTL_MS = 87_600 * HOUR_MS;
/** The serving certificate is issued at every start and renewed at half life while running. */
const SERVING_TTL_MS = 90 * 24 * HOUR_MS;
const VALIDATOR_TTL_MS = 90 * 24 * HOUR_MS;

export interface ControlServerOptions {
  /** The embedded store and the CA in this directory; or, with `etcd`, both in etcd (dataDir is then ignored). */
  readonly dataDir: string;
  /** `--store etcd://...`: the endpoints of the etcd cluster. */
  readonly etcd?: readonly EtcdEndpoint[];
  readonly listen: HostPort;
  readonly tokens: TokenSet;
  readonly trustDomain: string;
  /** Extra DNS names or IP addresses for the serving certificate. */
  readonly extraSans: readonly string[];
  readonly version: string;
  readonly log: Logger;
  readonly now?: () => number;
}

export interface ControlServer {
  /** The bound address (the port is the real one when 0 was asked). */
  readonly address: HostPort;
  readonly store: ControlStore;
  /** Re-issue the serving certificate and the validator's SVID when half their life has passed (run hourly). */
  renewCertificates(): Promise<boolean>;
  close(): Promise<void>;
}

/** How often the control plane looks at its own certificates. */
export const CERT_CHECK_MS = 3_600_000;

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

/** The names a client may use for the listen address: itself, or for a wildcard every local address, localhost and the host name. */
export function servingNames(listenHost: string, extra: readonly string[]): { dnsNames: string[]; ips: string[] } {
  const dns = new Set<string>();
  const ips = new Set<string>();
  const add = (name: string): void => {
    const bare = name.replace(/^\[|\]$/g, '');
    if (isIP(bare) !== 0) ips.add(bare);
    else if (bare !== '') dns.add(bare.toLowerCase());
  };
  if (isWildcard(listenHost)) {
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.address.includes('%')) add(a.address);
    add('127.0.0.1');
    if (listenHost === '::') add('::1');
    add('localhost');
    add(hostname());
  } else {
    add(listenHost);
  }
  for (const e of extra) add(e);
  return { dnsNames: [...dns], ips: [...ips] };
}

export async function startControlServer(o: ControlServerOptions): Promise<ControlServer> {
  const now = o.now ?? Date.now;
  const etcd = o.etcd === undefined ? undefined : new EtcdClient(o.etcd);
  const store: ControlStore = etcd !== undefined
    ? await EtcdStore.open(etcd, {
      onFailure: (err) => {
        o.log.fatal({ err, event: 'control.store.failed' }, 'the etcd store cannot follow etcd any more; stopping (a restart re-reads the state)');
        process.exit(1);
      },
      onWatchBroken: (err) => { o.log.warn({ err, event: 'control.store.watch-broken' }, 'the etcd watch broke; reopening it'); },
    })
    : await EmbeddedStore.open(o.dataDir, {
      onLockLost: (err) => {
        o.log.fatal({ err, event: 'control.lock.lost' }, 'the data directory lock was lost: another process may own it; stopping');
        process.exit(1);
      },
    });
  let server: Http2SecureServer | undefined;
  let removeCa = (): void => undefined;
  try {
    let ca: CaStore;
    if (etcd !== undefined) {
      const shared = await openSharedCa(etcd, { trustDomain: o.trustDomain, ttlMs: ROOT_TTL_MS, now: now() });
      ca = shared.ca;
      removeCa = shared.remove;
      if (shared.created) o.log.info({ event: 'control.ca.created', store: 'etcd', trustDomain: ca.trustDomain, serial: ca.activeRoot.serial }, 'created the mesh CA in etcd');
    } else if (CaStore.existingCaFiles(o.dataDir).length === 0) {
      ca = await CaStore.init(o.dataDir, { trustDomain: o.trustDomain, ttlMs: ROOT_TTL_MS, now: now() });
      o.log.info({ event: 'control.ca.created', dir: o.dataDir, trustDomain: o.trustDomain, serial: ca.activeRoot.serial }, 'created the mesh CA');
    } else {
      ca = CaStore.open(o.dataDir);
    }
    if (ca.activeRoot.notAfter <= now()) throw new RemoraError('REMORA_ERR_CA', `the mesh root in ${etcd === undefined ? o.dataDir : 'etcd'} expired; rotate it with remora ca rotate-root`);
    const authority = await ca.authority();
    removeCa(); // the key is in memory now
    const controlId = `spiffe://${ca.trustDomain}/ns/remora-system/sa/remora-control`;
    const names = servingNames(o.listen.host, o.extraSans);
    let serving = await authority.issueServer({ ...names, spiffeId: controlId, ttlMs: SERVING_TTL_MS, now: now() });
    let svid = await authority.issue({ spiffeId: controlId, ttlMs: VALIDATOR_TTL_MS, now: now() });
    const bundle = ca.trustBundle();
    const validator = new StateValidator({ identity: { certChain: svid.certPem, key: svid.keyPem, roots: bundle } });
    const sync = new SidecarSync(store, o.log);
    const certificates: CertificateSigner = {
      sign: async (csrPem, ttlMs) => {
        const check = await checkCsr(csrPem, ca.trustDomain);
        if (!check.ok) return check;
        const leaf = await authority.issueForKey(check.publicKey, { spiffeId: check.spiffeId, ttlMs, now: now() });
        return { ok: true, spiffeId: check.spiffeId, certChain: leaf.certPem, roots: bundle, serial: leaf.serial, notAfter: leaf.notAfter };
      },
    };
    const api = new ControlApi({
      store, validator, tokens: o.tokens, trustBundle: () => bundle, sync, certificates, version: o.version, log: o.log,
      metrics: new MetricsAggregator({ startedAt: now() }), status: new StatusAggregator(), now,
    });
    const ui = new UiStatic();
    const srv = createSecureServer({ cert: serving.certPem, key: serving.keyPem, allowHTTP1: true, minVersion: 'TLSv1.2' }, (req, res) => {
      if (!ui.handle(req, res)) api.handle(req, res);
    });
    server = srv;
    srv.on('sessionError', (err) => { o.log.debug({ err }, 'control: session error'); });
    await new Promise<void>((resolve, reject) => {
      srv.once('error', (err: NodeJS.ErrnoException) => {
        reject(new RemoraError('REMORA_ERR_LISTEN', `cannot listen on ${formatHostPort(o.listen.host, o.listen.port)}: ${err.code ?? err.message}`, { cause: err }));
      });
      srv.listen(o.listen.port, o.listen.host, () => { resolve(); });
    });
    const bound = srv.address();
    const address = typeof bound === 'object' && bound !== null ? { host: o.listen.host, port: bound.port } : o.listen;
    o.log.info({
      event: 'control.listening', address: formatHostPort(address.host, address.port), revision: store.revision,
      store: etcd === undefined ? `dir:${o.dataDir}` : `etcd://${etcd.endpoints}`,
      sans: [...names.dnsNames, ...names.ips], servingNotAfter: new Date(serving.notAfter).toISOString(),
    }, 'control plane listening');
    // Renewal at half life, checked hourly: new handshakes get the new certificate, open connections keep theirs.
    const half = (c: { notBefore: number; notAfter: number }): number => c.notBefore + (c.notAfter - c.notBefore) / 2;
    const renewCertificates = async (): Promise<boolean> => {
      const t = now();
      if (t < half(serving) && t < half(svid)) return false;
      serving = await authority.issueServer({ ...names, spiffeId: controlId, ttlMs: SERVING_TTL_MS, now: t });
      svid = await authority.issue({ spiffeId: controlId, ttlMs: VALIDATOR_TTL_MS, now: t });
      srv.setSecureContext({ cert: serving.certPem, key: serving.keyPem, minVersion: 'TLSv1.2' });
      validator.setIdentity({ certChain: svid.certPem, key: svid.keyPem, roots: bundle });
      o.log.info({ event: 'control.certificates.renewed', serial: serving.serial, notAfter: new Date(serving.notAfter).toISOString() }, 'serving certificate renewed');
      return true;
    };
    const renewTimer = setInterval(() => {
      renewCertificates().catch((err: unknown) => { o.log.error({ err, event: 'control.certificates.renew-failed' }, 'renewing the serving certificate failed'); });
    }, CERT_CHECK_MS);
    renewTimer.unref();
    const sessions = new Set<import('node:http2').ServerHttp2Session>();
    srv.on('session', (s) => { sessions.add(s); s.on('close', () => sessions.delete(s)); });
    const sockets = new Set<import('node:net').Socket>();
    srv.on('secureConnection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
    return {
      address,
      store,
      renewCertificates,
      close: async () => {
        clearInterval(renewTimer);
        sync.close();
        await new Promise<void>((resolve) => {
          srv.close(() => { resolve(); });
          for (const s of sessions) s.destroy();
          for (const s of sockets) s.destroy();
        });
        await store.close();
      },
    };
  } catch (err) {
    removeCa();
    server?.close();
    await store.close();
    throw err;
  }
}
